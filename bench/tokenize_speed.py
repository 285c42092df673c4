#!/usr/bin/env python
"""Tokens/s of `prepare` against tiktoken's own `encode_ordinary_batch` on the same documents.

    python bench/tokenize_speed.py [--mb 8] [--repeats 5] [--text auto|web|shakespeare] [--out nbs/data/bench_tokenize.json]

The text (repeated up to about --mb megabytes; the JSON's `text` field says which was used):
- `web`: WikiText-2 (valid + test, split into articles) and the WebText documents of a local mirror
  ($GPT2BOOK_MIRROR with wikitext-2-raw/, webtext_train_10/ and webtext_valid_63tok.jsonl). The committed
  nbs/data/bench_tokenize.json was measured on this text (it predates the `text` field).
- `shakespeare`: the paragraphs of Tiny Shakespeare (about 7,200 short documents), fetched as every data set
  of the book is (downloaded once, or $GPT2BOOK_MIRROR/tinyshakespeare.txt offline): needs nothing else.
- `auto` (the default): `web` when the mirror holds those files, else `shakespeare`.
tiktoken's batch encoder with one thread per core, tokenizing only, is the reference (and a plain one-thread
loop of `encode_ordinary` shows what the threads add); `prepare` also reads the .jsonl, splits train/val, adds
end-of-text tokens and writes shards. Best of --repeats for each, the three interleaved. The JSON records the
machine (`gpt2book.common.machine_info()`, with the load average before and after); chapter 7 reads it.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import tiktoken

from gpt2book.fetch import mirror_dir
from gpt2book.loader import load_meta
from gpt2book.prepare import SOURCES, fetch, prepare
from gpt2book.files import atomic_write_json
from gpt2book.common import CommandError, Parser, machine_info, positive_int, user_errors


WEB_FILES = ("wikitext-2-raw/wiki.valid.raw", "wikitext-2-raw/wiki.test.raw", "webtext_train_10", "webtext_valid_63tok.jsonl")


def web_documents(mirror: Path):
    docs = []
    for f in ("wiki.valid.raw", "wiki.test.raw"):
        docs += [a for a in (mirror / "wikitext-2-raw" / f).read_text().split("\n = ") if a.strip()]
    docs += [p.read_text() for p in sorted((mirror / "webtext_train_10").glob("*.txt"))]
    docs += [json.loads(l)["text"] for l in open(mirror / "webtext_valid_63tok.jsonl")]
    return docs, "WikiText-2 articles and WebText documents"


def shakespeare_documents():
    text = fetch(SOURCES["shakespeare"]).read_text(encoding="utf-8")
    return [p for p in text.split("\n\n") if p.strip()], "Tiny Shakespeare, one document per paragraph"


def documents(kind: str, mb: float):
    "About `mb` MB of documents of `kind` (auto, web, shakespeare), repeated as needed, their size and a description."
    mirror = mirror_dir()
    have_web = mirror is not None and all((mirror / f).exists() for f in WEB_FILES)
    if kind == "web" and not have_web:
        raise CommandError(f"--text web needs $GPT2BOOK_MIRROR holding {', '.join(WEB_FILES)}; or use --text shakespeare")
    docs, what = web_documents(mirror) if kind == "web" or (kind == "auto" and have_web) else shakespeare_documents()
    out, size = [], 0
    while size < mb * 1e6:
        d = docs[len(out) % len(docs)]
        out.append(d); size += len(d.encode())
    return out, size, what


def megabytes(text: str) -> float:
    "An argparse type: a finite size in megabytes above 0."
    mb = float(text)
    if not 0 < mb < float("inf"): raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return mb


def main(argv=None):
    ap = Parser(prog="python bench/tokenize_speed.py", description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=megabytes, default=8, help="megabytes of text (default 8)")
    ap.add_argument("--repeats", type=positive_int, default=5)
    ap.add_argument("--text", choices=["auto", "web", "shakespeare"], default="auto", help="which documents (see above)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "nbs" / "data" / "bench_tokenize.json"))
    a = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    with user_errors(ap.prog, RuntimeError):              # offline, and no mirror: one line, exit 1
        docs, size, what = documents(a.text, a.mb)
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
    res = {"machine": {**machine_info(), "loadavg_1min_before": round(load0, 2),
                       "loadavg_1min_after": round(os.getloadavg()[0], 2)},
           "tiktoken": tiktoken.__version__, "command": " ".join(["python bench/tokenize_speed.py", *(sys.argv[1:] if argv is None else argv)]),
           "text": what, "text_mb": size / 1e6, "documents": len(docs), "tokens": n_tokens, "threads": threads,
           "tiktoken_s": best_tt, "prepare_s": best_prep, "tiktoken_1thread_s": best_one,
           "tiktoken_1thread_tok_s": n_tokens / best_one,
           "tiktoken_tok_s": n_tokens / best_tt, "prepare_tok_s": n_tokens / best_prep, "ratio": best_tt / best_prep}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out, res, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
