"""Tests of gpt2book.data that do not fit a notebook cell: killing a real prepare, the CLI, every input format.

They need only what the book fetches itself: Tiny Shakespeare (downloaded, or $GPT2BOOK_MIRROR/tinyshakespeare.txt
offline) and tiktoken's GPT-2 files ($TIKTOKEN_CACHE_DIR offline). Every other document is made here from Tiny
Shakespeare's lines, with odd ones among them (empty, unicode, ...), in temporary folders; a test that needs a
mirror of a Hub data set writes one and points $GPT2BOOK_MIRROR at it. Without network and mirror they skip, saying why.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tiktoken
import torch

from gpt2book.data import SOURCES, TokenLoader, fetch, load_meta, prepare

ROOT = Path(__file__).resolve().parents[1]
ODD = ["", "naïve café, “quoted”, ½ — Ω≈ç√", "注意力就是你所需要的一切。", "👩‍👩‍👧‍👦 🤖🚀", " ",
       "<|endoftext|> is only text here", "windows line ends\r\nend\r\n", "\u200b zero width", "x", "\n\n\n"]


def make_documents(text, n, seed=0, max_lines=100):
    "`n` documents: runs of 1..`max_lines` consecutive lines of `text` (log-uniform), every 50th one of ODD."
    rng, lines = random.Random(seed), text.splitlines(keepends=True)
    docs = []
    for i in range(n):
        if i % 50 == 7:
            docs.append(ODD[(i // 50) % len(ODD)])
        else:
            start = rng.randrange(len(lines))
            docs.append("".join(lines[start:start + int(max_lines ** rng.random())]))
    return docs


@pytest.fixture(scope="module")
def docs():
    "5,000 web-like documents of 1 to 100 lines (about 0.9 M GPT-2 tokens), some empty, some unicode."
    try:
        text = fetch(SOURCES["shakespeare"]).read_text(encoding="utf-8")
    except RuntimeError as e:  # offline, and no $GPT2BOOK_MIRROR/tinyshakespeare.txt
        pytest.skip(f"Tiny Shakespeare cannot be had here, and the test documents are made from it: {e}")
    return make_documents(text, 5000)


def write_jsonl(path, docs):
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}) + "\n")
    return path


def files_of(d):
    return {p.name: p.read_bytes() for p in sorted(Path(d).iterdir())}


def cli(*args, env=None):
    return subprocess.run([sys.executable, str(ROOT / "data" / "prepare.py"), *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_documents_are_varied(docs):
    "The generated documents hold what the other tests rely on: empty ones, unicode, lengths over orders of magnitude."
    assert docs.count("") >= 5 and any("👩" in d for d in docs) and any("\r\n" in d for d in docs)
    lens = sorted(len(d) for d in docs if d)
    assert lens[0] <= 2 and lens[-1] >= 2000  # characters: from 1 to thousands


def test_killed_prepare_resumes_to_identical_shards(tmp_path, docs):
    src = write_jsonl(tmp_path / "in.jsonl", docs)  # ~3 MB, ~0.9 M tokens
    opts = dict(shard_tokens=20_000, chunk_chars=1 << 14, workers=1)
    ref = prepare(src, tmp_path / "ref", progress=False, **opts)
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "data" / "prepare.py"), str(src), "--out", str(out), "--quiet",
           "--shard-tokens", "20000", "--chunk-chars", str(1 << 14), "--workers", "1"]
    # kill it in the middle of the first shard, then after a few shards are finished
    for wait_for in ("train_000000.bin.tmp", "train_000004.bin"):
        p = subprocess.Popen(cmd)
        while not (out / wait_for).exists() and p.poll() is None:
            time.sleep(0.002)
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert not (out / "meta.json").exists(), "prepare finished before it was killed: make the input larger"
    # A kill can also land between writing tokens and recording them, between recording a full shard and
    # renaming it, or in the middle of writing the progress file; those windows are microseconds wide, so
    # build the states they leave behind explicitly:
    st = json.loads((out / "progress.json.partial").read_text())["splits"]["train"]
    with open(out / f"train_{len(st['done']):06d}.bin.tmp", "ab") as f:
        f.write(b"\x01\x02" * 999)  # tokens appended after the last progress record
    (out / f"train_{len(st['done']) + 1:06d}.bin.tmp").write_bytes(b"\x03\x04" * 10)  # a shard begun after it
    last = out / st["done"][-1]["file"]
    os.replace(last, f"{last}.tmp")  # recorded as done, not yet renamed
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / f".progress.json.partial.{int(dead.stdout)}.0badcafe.tmp").write_text("{")  # a killed atomic write
    kept = {f.name: f.stat().st_ino for f in out.glob("train_*.bin")}
    assert len(kept) >= 4
    r = subprocess.run(cmd)
    assert r.returncode == 0
    assert files_of(out) == files_of(ref)  # same names, same bytes (meta.json included), no leftovers
    for name, ino in kept.items():  # finished shards were kept, not redone
        assert (out / name).stat().st_ino == ino


def test_formats_share_one_path(tmp_path, docs):
    some = docs[:300]  # 6 empty documents among them: skipped, and not counted
    (tmp_path / "txt").mkdir()
    for i, d in enumerate(some):
        (tmp_path / "txt" / f"{i:04d}.txt").write_text(d, encoding="utf-8")
    write_jsonl(tmp_path / "in.jsonl", some)
    pq.write_table(pa.table({"text": some}), tmp_path / "in.parquet", row_group_size=64)
    outs = [prepare(src, tmp_path / f"out_{k}", progress=False, shard_tokens=5000)
            for k, src in enumerate([tmp_path / "txt", tmp_path / "in.jsonl", tmp_path / "in.parquet"])]
    shards = [{k: v for k, v in files_of(o).items() if k.endswith(".bin")} for o in outs]
    assert len(shards[0]) > 2 and shards[0] == shards[1] == shards[2]
    enc = tiktoken.get_encoding("gpt2")
    meta = load_meta(outs[1])
    train = np.concatenate([np.fromfile(outs[1] / s["file"], "<u2") for s in meta["splits"]["train"]["shards"]])
    nonempty = [d for d in some if d]
    want = [t for i, d in enumerate(nonempty) if i % 10 for t in [50256] + enc.encode_ordinary(d)]
    assert train.tolist() == want
    n_val = len(range(0, len(nonempty), 10))
    assert (meta["splits"]["train"]["documents"], meta["splits"]["val"]["documents"]) == (len(nonempty) - n_val, n_val)


def test_openwebtext_from_a_parquet_mirror(tmp_path, docs, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "openwebtext").mkdir(parents=True)
    for i in range(2):  # openwebtext's schema: one `text` column, split over files
        pq.write_table(pa.table({"text": docs[i * 2500:(i + 1) * 2500]}),
                       mirror / "openwebtext" / f"plain_text-train-{i:05d}-of-00002.parquet")
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(mirror))
    out = prepare("openwebtext", tmp_path / "owt", progress=False)
    meta = load_meta(out)
    assert meta["input"]["source"] == "openwebtext" and meta["tokenizer"] == {"name": "gpt2"}
    assert meta["input"]["mirror"] == ["plain_text-train-00000-of-00002.parquet", "plain_text-train-00001-of-00002.parquet"]
    n = sum(1 for d in docs if d)
    assert meta["splits"]["val"]["documents"] == len(range(0, n, 2000))  # every 2000th non-empty document
    assert meta["splits"]["train"]["documents"] == n - meta["splits"]["val"]["documents"]
    enc = tiktoken.get_encoding("gpt2")
    val = np.concatenate([np.fromfile(out / s["file"], "<u2") for s in meta["splits"]["val"]["shards"]])
    assert val.tolist() == [t for d in [d for d in docs if d][::2000] for t in [50256] + enc.encode_ordinary(d)]


def test_refusals_leave_nothing_behind(tmp_path):
    r = cli("tiny_shakespeare", "--out", tmp_path / "x")
    assert r.returncode == 2 and "shakespeare_char" in r.stderr and "fineweb-edu-10B" in r.stderr
    bad = tmp_path / "bad.jsonl"
    good_line = json.dumps({"text": "fine"}).encode() + b"\n"
    bad.write_bytes(good_line + b'{"text": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=f"bad.jsonl is not UTF-8: byte {len(good_line) + 13}"):
        prepare(bad, tmp_path / "x", progress=False)
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ValueError, match="empty input"):
        prepare(tmp_path / "empty.jsonl", tmp_path / "x", progress=False)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty input"):
        prepare(tmp_path / "empty.txt", tmp_path / "x", progress=False)
    huge = tmp_path / "unicode.txt"  # 70,000 distinct characters: more ids than uint16 holds
    huge.write_text("".join(chr(c) for c in range(0x4E00, 0x4E00 + 70_000) if not 0xD800 <= c < 0xE000), encoding="utf-8")
    with pytest.raises(ValueError, match="too large for uint16"):
        prepare(huge, tmp_path / "x", tokenizer="char", progress=False)
    (tmp_path / "notes.md").write_text("hi")
    with pytest.raises(ValueError, match="unsupported file type"):
        prepare(tmp_path / "notes.md", tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_single_txt_splits_by_position_and_char_override(tmp_path):
    src = tmp_path / "book.txt"
    src.write_text("To be, or not to be, that is the question.\n" * 50)
    r = cli(src, "--tokenizer", "char", "--quiet", env={"GPT2BOOK_DATA": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr
    meta = load_meta(tmp_path / "data" / "book")
    assert meta["split"] == {"by": "position", "val_fraction": 0.1}
    n = len(src.read_text())
    assert (meta["splits"]["train"]["tokens"], meta["splits"]["val"]["tokens"]) == (int(n * 0.9), n - int(n * 0.9))
    with pytest.raises(FileExistsError, match="--force"):  # a different data set in the same folder
        prepare(src, tmp_path / "data" / "book", tokenizer="gpt2", progress=False)


def test_char_tokenizer_on_many_unicode_documents(tmp_path, docs):
    "A char vocabulary built from documents with emoji and CJK round-trips every document."
    some = [d for d in docs[:500] if d]
    out = prepare(write_jsonl(tmp_path / "in.jsonl", some), tmp_path / "c", tokenizer="char", progress=False)
    meta = load_meta(out)
    tok = TokenLoader(out, "val", 1, 8).tokenizer
    assert tok.vocab_size == meta["vocab_size"] == len(set("".join(some))) + 1
    val = np.fromfile(out / meta["splits"]["val"]["shards"][0]["file"], "<u2").tolist()
    assert val == [t for d in some[::10] for t in [tok.eot] + tok.encode(d)]


def test_loader_reads_the_stream_across_shards_and_resumes_across_world_sizes(tmp_path, docs):
    out = prepare(write_jsonl(tmp_path / "in.jsonl", docs[:2000]), tmp_path / "d", shard_tokens=7_000, progress=False)
    meta = load_meta(out)
    assert len(meta["splits"]["train"]["shards"]) > 10
    stream = np.concatenate([np.fromfile(out / s["file"], "<u2") for s in meta["splits"]["train"]["shards"]])
    T, B = 100, 3
    l = TokenLoader(out, "train", B, T, seed=1)
    seen = []
    for _ in range(l.n_seqs // B + 2):  # a bit more than an epoch
        ids = l.seq_ids(l.pos, B)
        x, y = l.next_batch()
        for i, xi, yi in zip(ids, x, y):  # each row is the stream at its sequence's offset
            assert xi.tolist() == stream[i * T:i * T + T].tolist() and yi.tolist() == stream[i * T + 1:i * T + T + 1].tolist()
        seen += ids.tolist()
    assert sorted(seen[:l.n_seqs]) == list(range(l.n_seqs))  # the first epoch is a permutation
    # saved by 1 rank after 3 steps, resumed on 3 ranks: the same global stream continues
    one = TokenLoader(out, "train", 6, T, seed=1)
    for _ in range(3):
        one.next_batch()
    sd = one.state_dict()
    ranks = [TokenLoader(out, "train", 2, T, rank=r, world_size=3, seed=1) for r in range(3)]
    for rk in ranks:
        rk.load_state_dict(sd)
    assert torch.equal(one.next_batch()[0], torch.cat([rk.next_batch()[0] for rk in ranks]))
    with pytest.raises(ValueError, match="seed"):
        TokenLoader(out, "train", 6, T, seed=2).load_state_dict(sd)
    with pytest.raises(ValueError, match="rank"):
        TokenLoader(out, "train", 6, T, rank=2, world_size=2)


def test_the_book_fetches_its_data_offline_from_the_mirror_only(tmp_path, monkeypatch):
    "With $GPT2BOOK_MIRROR holding only tinyshakespeare.txt and an empty cache, both Shakespeare sources prepare."
    try:
        ts = fetch(SOURCES["shakespeare"])
    except RuntimeError as e:
        pytest.skip(f"Tiny Shakespeare cannot be had here: {e}")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "tinyshakespeare.txt").write_bytes(ts.read_bytes())
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(tmp_path / "m"))
    monkeypatch.setenv("GPT2BOOK_CACHE", str(tmp_path / "empty_cache"))
    c = load_meta(prepare("shakespeare_char", tmp_path / "c", progress=False))
    g = load_meta(prepare("shakespeare", tmp_path / "g", progress=False))
    assert (c["splits"]["train"]["tokens"], c["splits"]["val"]["tokens"]) == (1003854, 111540)
    assert (g["splits"]["train"]["tokens"], g["splits"]["val"]["tokens"]) == (301966, 36059)
    assert not (tmp_path / "empty_cache").exists()  # nothing downloaded
