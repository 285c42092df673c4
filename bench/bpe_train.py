#!/usr/bin/env python
"""Training a byte-level BPE: the book's trainer (chapter 6) against Hugging Face `tokenizers` (Rust), on three corpora.

The corpora, each written to a file that every training reads afresh:

- `english`: the training works of the complete works of Shakespeare (chapter 7's `shakespeare_complete`, 4.6
  million characters, documents joined by <|endoftext|>);
- `cjk`: a Chinese-like text made here (seeded): 4,000 "words" of one to three characters drawn from 2,500 CJK
  ideographs, used with Zipf frequencies, in clauses of about 15 characters ended by `，` or `。`, a line every few
  sentences. GPT-2's regex makes each clause one pre-token, so pre-tokens are long (~45 bytes) and nearly all
  distinct;
- `long`: the English corpus with everything but letters removed, in lines of 20,000 letters: every pre-token is
  20,000 characters long.

Each training runs in a fresh process (its peak memory, the process's maximum resident set, is its own), with 1 or
2 workers: processes counting pre-tokens for the book's trainer (its merges run in one), `RAYON_NUM_THREADS` for
`tokenizers`. The two trainers alternate within each repeat, so a change in the machine's load hits both; the
table keeps the best of the repeats. Both use GPT-2's pre-tokenising regex. Then the naive trainer (the definition,
recounting every pair each round) against the book's on growing slices of the English corpus.

    python bench/bpe_train.py                     # writes nbs/data/bench_bpe.json (about 10 minutes)
    python bench/bpe_train.py --corpora long --vocab 2048 --repeats 1 --sizes --json /tmp/b.json   # a quick look
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EOT = "<|endoftext|>"
CORPORA = ("english", "cjk", "long")
DESCRIBE = {"english": "shakespeare_complete, training works, joined by <|endoftext|>",
            "cjk": "Chinese-like (seeded): Zipf words of 1-3 of 2,500 ideographs, clauses of 8-22 characters",
            "long": "the English corpus's first 1,000,000 letters, lines of 20,000: pre-tokens of 20,000 characters"}


def english() -> str:
    from gpt2book.prepare import split_documents
    return EOT.join(split_documents("shakespeare_complete", "train"))


def cjk(n_chars: int = 500_000, seed: int = 0) -> str:
    "A seeded Chinese-like text of about `n_chars` characters: Zipf-distributed words of 1-3 ideographs in clauses."
    rng = random.Random(seed)
    chars = [chr(c) for c in rng.sample(range(0x4E00, 0x9FA6), 2_500)]
    words = ["".join(rng.choices(chars, k=rng.choice((1, 2, 2, 2, 3)))) for _ in range(4_000)]
    weights = [1 / (r + 1) ** 1.1 for r in range(len(words))]
    out, n, sentences = [], 0, 0
    while n < n_chars:
        clause, length = [], rng.randint(8, 22)
        while sum(map(len, clause)) < length: clause.extend(rng.choices(words, weights))
        end = "。" if rng.random() < 0.35 else "，"
        sentences += end == "。"
        piece = "".join(clause) + end + ("\n" if end == "。" and sentences % 4 == 0 else "")
        out.append(piece); n += len(piece)
    return "".join(out)


def long_pretokens(text: str, line: int = 20_000, total: int = 1_000_000) -> str:
    "The letters of `text` alone, the first `total` of them, in lines of `line`: each line is one pre-token."
    letters = "".join(re.findall(r"[^\W\d_]+", text))[:total]
    return "\n".join(letters[i:i + line] for i in range(0, len(letters), line))


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
    return {"trainer": trainer, "vocab_size": vocab, "workers": workers, "chars": len(text),
            "seconds": round(seconds, 3), "merges": n_merges, "peak_mb": rss_mb("VmHWM"), "before_mb": base, **phases}


def rss_mb(field: str = "VmRSS") -> float:
    "This process's resident memory now (VmRSS), or its peak since it started (VmHWM; Linux), in MB."
    with open("/proc/self/status") as f:    # (getrusage's maxrss would also count the parent's memory before exec)
        return round(next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024, 1)


def in_process(trainer, vocab, chars, workers, timeout, corpus_file):
    "train_one in a fresh python process; its result (with the load average when it started), or a timeout record."
    cmd = [sys.executable, __file__, "--one", trainer, str(vocab), str(chars), str(workers), corpus_file]
    env = {**os.environ, "RAYON_NUM_THREADS": str(workers)}           # tokenizers' thread pool
    load = round(os.getloadavg()[0], 2)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True, env=env)
    except subprocess.TimeoutExpired:
        return {"trainer": trainer, "vocab_size": vocab, "workers": workers, "chars": chars, "seconds": None,
                "timed_out_s": timeout, "loadavg_1min": load}
    return {**json.loads(p.stdout.strip().splitlines()[-1]), "loadavg_1min": load}


def best_runs(runs: list) -> list:
    "One row per (corpus, trainer, vocab, workers): the fastest repeat, with how many there were and all their times."
    rows = {}
    for r in runs:
        k = (r["corpus"], r["trainer"], r["vocab_size"], r["workers"])
        best = rows.get(k)
        times = (best["all_seconds"] if best else []) + [r["seconds"]]
        if best is None or (r["seconds"] is not None and (best["seconds"] is None or r["seconds"] < best["seconds"])):
            best = dict(r)
        best["all_seconds"] = times
        rows[k] = best
    return list(rows.values())


def main(argv=None):
    from gpt2book.common import Parser, machine_info, positive_int
    from gpt2book.files import atomic_write_json
    ap = Parser(prog="python bench/bpe_train.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=CORPORA, help="which corpora")
    ap.add_argument("--vocab", type=positive_int, nargs="+", default=[2048, 8192], help="vocabulary sizes")
    ap.add_argument("--workers", type=positive_int, nargs="+", default=[1, 2],
                    help="processes counting pre-tokens (the book) and threads (tokenizers)")
    ap.add_argument("--repeats", type=positive_int, default=3, help="runs of each training; the best is kept")
    ap.add_argument("--sizes", type=int, nargs="*", default=[250_000, 1_000_000, 0],
                    help="English slices (characters; 0: all) for the naive-against-incremental curve")
    ap.add_argument("--size_merges", type=positive_int, default=128, help="merges of that curve")
    ap.add_argument("--timeout", type=positive_int, default=1800, help="seconds one training may take")
    ap.add_argument("--json", default=str(ROOT / "nbs" / "data" / "bench_bpe.json"))
    ap.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(train_one(a.one[0], int(a.one[1]), int(a.one[2]), int(a.one[3]), a.one[4])))
        return
    t0, machine = time.time(), machine_info()
    folder = Path(tempfile.mkdtemp())
    text = english()
    texts = {"english": text, "cjk": cjk(), "long": long_pretokens(text)}
    files, corpora = {}, {}
    for name in a.corpora:
        files[name] = folder / f"{name}.txt"
        files[name].write_text(texts[name], encoding="utf-8")
        corpora[name] = {"chars": len(texts[name]), "bytes": len(texts[name].encode()), "description": DESCRIBE[name]}
    runs = []
    for rep in range(a.repeats):
        for name in a.corpora:
            for vocab in a.vocab:
                for workers in a.workers:
                    for trainer in (("tokenizers", "incremental") if rep % 2 == 0 else ("incremental", "tokenizers")):
                        runs.append({"corpus": name, "repeat": rep,
                                     **in_process(trainer, vocab, 0, workers, a.timeout, str(files[name]))})
                        print(json.dumps(runs[-1]), flush=True)
    sizes = []
    if a.sizes and "english" in files:
        for n in a.sizes:
            for tr in ("incremental", "naive"):
                sizes.append(in_process(tr, 257 + a.size_merges, n, 1, a.timeout, str(files["english"])))
                print(json.dumps(sizes[-1]), flush=True)
    result = {"machine": {**machine, "loadavg_1min_before": machine.get("loadavg_1min"),
                          "loadavg_1min_after": round(os.getloadavg()[0], 2)},
              "corpora": corpora, "repeats": a.repeats, "best": best_runs(runs), "runs": runs,
              "sizes": sizes, "size_merges": a.size_merges, "wall_s": round(time.time() - t0, 1),
              "command": "python bench/bpe_train.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    atomic_write_json(a.json, result)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
