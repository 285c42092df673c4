#!/usr/bin/env python
"""Training a byte-level BPE: the book's trainer (chapter 6), its naive version, and Hugging Face `tokenizers` (Rust).

All three train on the same text, the training works of the complete works of Shakespeare (chapter 7's
`shakespeare_complete`, 4.6 million characters, documents joined by <|endoftext|>), with GPT-2's pre-tokenising
regex, to vocabularies of 512, 2,048 and 8,192 ids. Each training runs in a fresh process (so that its peak memory,
the process's maximum resident set, is its own), one after the other in one run of this script, and the book's
trainer records where its time goes (counting pre-tokens, in --workers processes, then merging). Then the two
Python trainers on growing slices of the corpus, at a fixed number of merges.

    python bench/bpe_train.py                     # writes nbs/data/bench_bpe.json
    python bench/bpe_train.py --vocab 512 --sizes 0 --json /tmp/b.json   # a quick look
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EOT = "<|endoftext|>"


def corpus() -> str:
    from gpt2book.prepare import split_documents
    return EOT.join(split_documents("shakespeare_complete", "train"))


def train_one(trainer: str, vocab: int, chars: int, workers: int, corpus_file: str) -> dict:
    "Train in this process; seconds (and the book's phases) and the peak memory of this process."
    text = Path(corpus_file).read_text(encoding="utf-8")[:chars or None]
    base = rss_mb()                                   # the interpreter, its libraries and the corpus: not training
    t0 = time.perf_counter()
    phases = {}
    if trainer == "tokenizers":
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tr = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOT], show_progress=False,
                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(text.split(EOT), trainer=tr)
        n_merges = len(json.loads(tok.to_str())["model"]["merges"])
    else:
        from gpt2book.tokenizer import pretoken_counts_parallel, train_merges, train_merges_naive
        counts = pretoken_counts_parallel(text, [EOT], workers)
        phases["count_s"] = round(time.perf_counter() - t0, 3)
        merges = (train_merges if trainer == "incremental" else train_merges_naive)(counts, vocab - 257)
        phases["merge_s"] = round(time.perf_counter() - t0 - phases["count_s"], 3)
        n_merges = len(merges)
    seconds = time.perf_counter() - t0
    return {"trainer": trainer, "vocab_size": vocab, "chars": len(text), "seconds": round(seconds, 3),
            "merges": n_merges, "peak_mb": rss_mb("VmHWM"), "before_mb": base, **phases}


def rss_mb(field: str = "VmRSS") -> float:
    "This process's resident memory now (VmRSS), or its peak since it started (VmHWM; Linux), in MB."
    with open("/proc/self/status") as f:    # (getrusage's maxrss would also count the parent's memory before exec)
        return round(next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024, 1)


def in_process(trainer, vocab, chars, workers, timeout, corpus_file):
    "train_one in a fresh python process; its result, or a record of the time limit it hit."
    cmd = [sys.executable, __file__, "--one", trainer, str(vocab), str(chars), str(workers), corpus_file]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"trainer": trainer, "vocab_size": vocab, "chars": chars, "seconds": None, "timed_out_s": timeout}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None):
    from gpt2book.common import Parser, machine_info, positive_int
    from gpt2book.files import atomic_write_json
    ap = Parser(prog="python bench/bpe_train.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", type=positive_int, nargs="+", default=[512, 2048, 8192], help="vocabulary sizes")
    ap.add_argument("--trainers", nargs="+", default=["tokenizers", "incremental", "naive"],
                    choices=["tokenizers", "incremental", "naive"])
    ap.add_argument("--sizes", type=int, nargs="*", default=[250_000, 500_000, 1_000_000, 2_000_000, 0],
                    help="corpus slices (characters; 0: all) for the time-against-size curve")
    ap.add_argument("--size_merges", type=positive_int, default=256, help="merges of the size curve")
    ap.add_argument("--workers", type=positive_int, default=2, help="processes counting pre-tokens (the book's trainers)")
    ap.add_argument("--timeout", type=positive_int, default=3600, help="seconds one training may take")
    ap.add_argument("--json", default=str(ROOT / "nbs" / "data" / "bench_bpe.json"))
    ap.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(train_one(a.one[0], int(a.one[1]), int(a.one[2]), int(a.one[3]), a.one[4])))
        return
    t0, load0 = time.time(), os.getloadavg()[0]
    text = corpus()
    corpus_file = Path(tempfile.mkdtemp()) / "corpus.txt"      # each training reads it: no archive in its memory
    corpus_file.write_text(text, encoding="utf-8")
    runs = []
    for vocab in a.vocab:
        for trainer in a.trainers:
            runs.append(in_process(trainer, vocab, 0, a.workers, a.timeout, str(corpus_file)))
            print(json.dumps(runs[-1]), flush=True)
    sizes = [in_process(tr, 257 + a.size_merges, n, a.workers, a.timeout, str(corpus_file))
             for n in a.sizes for tr in ("incremental", "naive")]
    for s in sizes: print(json.dumps(s), flush=True)
    result = {"machine": {**machine_info(), "loadavg_1min_before": round(load0, 2),
                          "loadavg_1min_after": round(os.getloadavg()[0], 2)},
              "corpus": "shakespeare_complete, training works", "corpus_chars": len(text),
              "workers": a.workers, "runs": runs, "sizes": sizes, "size_merges": a.size_merges,
              "wall_s": round(time.time() - t0, 1),
              "command": "python bench/bpe_train.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    atomic_write_json(a.json, result)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
