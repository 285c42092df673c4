#!/usr/bin/env python
"""Tokens/s of `prepare` against tiktoken's own `encode_ordinary_batch` on the same documents.

    python bench/tokenize_speed.py [--mb 8] [--repeats 3] [--out nbs/data/bench_tokenize.json]

The text is WikiText-2 (valid + test, split into articles) and WebText documents from $GPT2BOOK_MIRROR,
repeated up to about --mb megabytes. tiktoken's batch encoder with one thread per core, tokenizing only,
is the reference (and a plain one-thread loop of `encode_ordinary` shows what the threads add); `prepare` also reads the .jsonl, splits train/val, adds end-of-text tokens and writes shards.
Best of --repeats for each, the two interleaved. Chapter 7 reads the JSON this writes.
"""
import os
import sys


import argparse, json, platform, tempfile, time
from pathlib import Path

import tiktoken

from gpt2book.data import prepare, load_meta
from gpt2book.files import atomic_write_json


def documents(mirror: Path, mb: float):
    docs = []
    for f in ("wiki.valid.raw", "wiki.test.raw"):
        docs += [a for a in (mirror / "wikitext-2-raw" / f).read_text().split("\n = ") if a.strip()]
    docs += [p.read_text() for p in sorted((mirror / "webtext_train_10").glob("*.txt"))]
    docs += [json.loads(l)["text"] for l in open(mirror / "webtext_valid_63tok.jsonl")]
    out, size = [], 0
    while size < mb * 1e6:
        d = docs[len(out) % len(docs)]
        out.append(d); size += len(d.encode())
    return out, size


def cpu_name():
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "nbs" / "data" / "bench_tokenize.json"))
    a = ap.parse_args()
    mirror = Path(os.environ.get("GPT2BOOK_MIRROR", ""))
    if not (mirror / "wikitext-2-raw").is_dir():
        sys.exit("set GPT2BOOK_MIRROR to the folder holding wikitext-2-raw/ and webtext_* (see its README)")
    docs, size = documents(mirror, a.mb)
    threads = os.cpu_count() or 1
    enc = tiktoken.get_encoding("gpt2")
    enc.encode_ordinary_batch(docs[:100], num_threads=threads)  # warm up
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "bench.jsonl"
        with open(src, "w") as f:
            for d in docs:
                f.write(json.dumps({"text": d}) + "\n")
        best_tt = best_prep = best_one = float("inf")
        for _ in range(a.repeats):  # interleaved, so that load from other processes hits both alike
            t0 = time.perf_counter()
            ids = enc.encode_ordinary_batch(docs, num_threads=threads)
            best_tt = min(best_tt, time.perf_counter() - t0)
            n_tokens = sum(map(len, ids))
            t0 = time.perf_counter()
            for d in docs:  # one thread, no pool: what the threads are measured against
                enc.encode_ordinary(d)
            best_one = min(best_one, time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = prepare(src, Path(tmp) / "out", force=True, progress=False)
            best_prep = min(best_prep, time.perf_counter() - t0)
        meta = load_meta(out)
        n_docs = sum(1 for d in docs if d)
        got = sum(s["tokens"] for s in meta["splits"].values())
        assert got == n_tokens + n_docs, f"prepare wrote {got} tokens, tiktoken + one eot per document gives {n_tokens + n_docs}"
    res = {"machine": f"{cpu_name()}, {threads} cores, {platform.system()}",
           "load_average_1min": os.getloadavg()[0], "python": platform.python_version(),
           "tiktoken": tiktoken.__version__, "command": " ".join(["python bench/tokenize_speed.py", *sys.argv[1:]]),
           "text_mb": size / 1e6, "documents": len(docs), "tokens": n_tokens, "threads": threads,
           "tiktoken_s": best_tt, "prepare_s": best_prep, "tiktoken_1thread_s": best_one,
           "tiktoken_1thread_tok_s": n_tokens / best_one,
           "tiktoken_tok_s": n_tokens / best_tt, "prepare_tok_s": n_tokens / best_prep, "ratio": best_tt / best_prep}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out, res, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
