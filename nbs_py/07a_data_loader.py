# %% [markdown]
# # Data (a): the shard format and a loader that resumes exactly
#
# > A prepared data folder read back: the shard format (raw little-endian `uint16` tokens, `meta.json`), `load_meta`, and the memory-mapped `TokenLoader`, whose global batch does not depend on the number of processes and which resumes exactly: the one part of chapter 7 the trainer needs.

# %%
#| default_exp loader

# %% [markdown]
# Training reads the same tokens many times, from many processes. So we tokenize once, write the
# ids to disk in the simplest format there is, and let every process memory-map them. The whole
# idea fits in a few short cells: **text -> token ids -> a file of `uint16` -> (x, y) batches**.
# The rest of the chapter makes each arrow hold up for billions of tokens.
#
# The chapter writes three modules, one per job, in three parts, and each imports only the ones before it:
#
# | part | module | its job | who needs it |
# |---|---|---|---|
# | (a) this one | `gpt2book.loader` | read a data set: the shard format, `load_meta` and `TokenLoader` | the trainer (chapter 9) |
# | [(b)](07b_data_fetch.ipynb) | `gpt2book.fetch` | get a file: from a local mirror, the cache of earlier downloads, or the network | anything that reads a downloaded file (chapters 6, 14, 15) |
# | [(c)](07c_data_prepare.ipynb) | `gpt2book.prepare` | make a data set: sources, tokenizing, shards, `meta.json`, the command `data/prepare.py` | whoever makes data |
#
# The reader of the shards owns their format: `prepare` writes what the loader says a shard is, and
# the loader imports nothing that writes.

# %%
import json, shutil, tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import tiktoken
import torch
from fastcore.test import test_eq, test_fail

from gpt2book.prepare import prepare   # built in part (c) of this chapter: a black box until then

# %% [markdown]
# ## The idea in three steps
#
# **Text to token ids.** The opening lines of Tiny Shakespeare, through GPT-2's tokenizer from
# chapter 6:

# %%
opening = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
           "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n\n")
enc = tiktoken.get_encoding("gpt2")
ids = enc.encode_ordinary(opening)  # (N,) ints in range(50257)
print(len(opening), "characters ->", len(ids), "tokens:", ids[:12], "...")

# %% [markdown]
# **Token ids to a file.** GPT-2's largest id is 50,256, so two bytes per token are enough: `uint16`
# holds up to 65,535, half the size of `int32`. The file is nothing but the ids, little-endian, one
# after another, so token $i$ is at byte $2i$ and a memory map reads any window without loading the file.

# %%
tmp = Path(tempfile.mkdtemp())
np.array(ids, dtype="<u2").tofile(tmp / "opening.bin")            # 2 bytes per token, nothing else
print((tmp / "opening.bin").stat().st_size, "bytes for", len(ids), "tokens")
tokens = np.memmap(tmp / "opening.bin", dtype="<u2", mode="r")     # (N,) read lazily from disk
assert tokens.tolist() == ids

# %% [markdown]
# **A file to batches.** A training example is $T+1$ consecutive tokens: the model reads the first
# $T$ (`x`) and must predict, at every position, the token that follows (`y`: the same window
# shifted by one). A batch stacks $B$ windows cut from the file.

# %%
B, T = 2, 8
starts = [0, 2 * T]                                                  # where the B windows begin
buf = np.stack([tokens[s:s + T + 1] for s in starts]).astype(np.int64)  # (B, T+1)
x, y = torch.from_numpy(buf[:, :-1]), torch.from_numpy(buf[:, 1:])    # (B, T) each
print(x.shape, repr(enc.decode(x[0].tolist())), "->", repr(enc.decode(y[0].tolist())))
test_eq(x[:, 1:], y[:, :-1])

# %% [markdown]
# That is the whole pipeline. Making it real takes the rest of the chapter, in the order a
# trainer meets it: this part is the first step, [part (b)](07b_data_fetch.ipynb) the way a file is
# fetched, and [part (c)](07c_data_prepare.ipynb) the rest:
#
# 1. **The loader** reads a prepared folder: **shards** (files of a fixed number of tokens, 100 M
#    by default: `train_000000.bin`, `train_000001.bin`, ..., `val_000000.bin`) and **`meta.json`**,
#    which says what the shards hold. `TokenLoader` picks the windows: a shuffled order that every
#    process agrees on, so that the global batch of a step is the same on 1 or 8 GPUs, and a state
#    small enough to resume exactly from a checkpoint. Here `prepare` is a black box, as it is for
#    the trainer in chapter 9.
# 2. **Sources**: Tiny Shakespeare is one file; Shakespeare's complete works are 42 files in an
#    archive; OpenWebText and FineWeb-Edu are millions of documents streamed from the Hugging Face
#    Hub; a reader's own `.txt`, `.jsonl` and `.parquet` files too. Each needs a train/validation split.
# 3. **`prepare`** tokenizes on every core and writes the shards and `meta.json`.
# 4. **Under the hood**, at the end: how a prepare killed after hours resumes without redoing the
#    finished shards, the lock that keeps two processes from preparing one folder at once, the
#    command line `python data/prepare.py NAME_OR_PATHS... [--out DIR]`, and how fast it all is.
#
# Our shards are headerless, like nanoGPT's `train.bin`: raw tokens, with `meta.json` saying what a
# header would. llm.c's `.bin` shards instead begin with a header of 256 `int32` (the magic number
# 20240520, a version, the token count) before the same `uint16` tokens, so its files and ours are
# not interchangeable.

# %% [markdown]
# ## Reading a prepared folder: `load_meta` and `TokenLoader`
#
# A prepared data set is a folder. `prepare(source, folder)` makes one; here is Tiny Shakespeare
# as characters (`python data/prepare.py shakespeare_char` does the same into `data/shakespeare_char/`):

# %%
dc = prepare("shakespeare_char", tmp / "shakespeare_char", progress=False)
print(sorted(p.name for p in dc.iterdir()))
meta_c = json.loads((dc / "meta.json").read_text())
print(json.dumps({k: meta_c[k] for k in ("format", "dtype", "vocab_size", "eot", "split")}))
print(json.dumps(meta_c["splits"]["val"]))

# %% [markdown]
# `meta.json` holds the tokenizer (for characters, the vocabulary itself), the vocabulary size,
# and for each split its token count and its shards, each with its size and sha256. The loader's
# module starts from it, and from the format of the shards, which it owns: the writer in part (c)
# imports it from here.

# %%
#| export
import json
from pathlib import Path

import numpy as np
import torch

from gpt2book.tokenizer import Tokenizer, tokenizer_from_dict

# %% [markdown]
# **The format.** Tokens are little-endian `uint16` on every machine (and `meta.json` says so);
# shard `i` of a split is the file `{split}_{i:06d}.bin`; `meta.json`'s `"format"` names the version
# of all this, and a folder of another version is refused.

# %%
#| export
DTYPE = np.dtype("<u2")       # little-endian uint16: the shards' one format
FORMAT = "gpt2book-shards-1"  # meta.json's "format": what load_meta accepts

def shard_name(split: str, i: int) -> str:
    "The file name of shard `i` of `split`: train_000000.bin, train_000001.bin, ..."
    return f"{split}_{i:06d}.bin"


# %% [markdown]
# `load_meta` is the one place that says "this folder is not prepared": the error names the
# command that prepares it.

# %%
#| export
def load_meta(data_dir) -> dict:
    "The meta.json of a prepared data folder: vocab_size, tokenizer (a dict for tokenizer_from_dict), splits, ..."
    data_dir = Path(data_dir)
    path = data_dir / "meta.json"
    if not path.exists():
        raise FileNotFoundError(f"{data_dir} is not a prepared data folder (no meta.json). Make it with: "
                                f"python data/prepare.py {data_dir.name} --out {data_dir} (or your files in place of "
                                f"{data_dir.name}; python data/prepare.py --help lists the sources)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has format {meta.get('format')!r}, not {FORMAT}; prepare the data again")
    return meta


# %% [markdown]
# The loader is the batch-cutting of the first section, made exact. It sees a split as one long
# token stream (its shards, memory-mapped, end to end) and cuts it into
# $S = \lfloor (N-1)/T \rfloor$ non-overlapping sequences of $T+1$ tokens: sequence $i$ is tokens
# $[iT, iT+T]$, `x` its first $T$ tokens and `y` its last $T$ (the next token at every position).
# Neighbouring sequences share one token, and a sequence may cross a shard border; the reader stitches it.

# %% [markdown]
# **Checks.** On opening, every shard's size must match `meta.json`; the first time a shard is
# read, its largest id must be below the vocabulary size. A mismatch names the shard and the fix.
# Two small functions do the checking, and a third moves a batch to the device: on CUDA the batch
# is copied from pinned (page-locked) memory with `non_blocking=True`, so the copy overlaps with the
# GPU still computing the previous step.

# %%
#| export
def open_shards(data_dir: Path, shards: list) -> list:
    "Memory maps of `shards` (meta.json's list for one split) in `data_dir`, each file's size checked against it."
    maps = []
    for sh in shards:
        path = data_dir / sh["file"]
        size = path.stat().st_size if path.exists() else None
        if size != sh["tokens"] * DTYPE.itemsize:
            raise ValueError(f"{path}: {'missing' if size is None else f'{size} bytes'}, meta.json says "
                             f"{sh['tokens'] * DTYPE.itemsize}; the data folder is damaged, prepare it again "
                             f"(python data/prepare.py ... --out {data_dir} --force)")
        maps.append(np.memmap(path, dtype=DTYPE, mode="r"))
    return maps

def check_ids(shard, vocab_size: int) -> None:
    "An error if the memory-mapped `shard` holds an id >= `vocab_size`: it does not belong to the data set."
    top = int(shard.max())
    if top >= vocab_size:
        raise ValueError(f"{shard.filename} holds id {top} >= vocab_size {vocab_size} of "
                         f"meta.json; the shard does not belong to this data set, prepare it again")

def to_device(x, y, device: torch.device):
    "Two (rows, T) int64 arrays as tensors on `device` (through pinned memory on CUDA)."
    x, y = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())  # own memory: x and y never alias the maps
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


# %% [markdown]
# The class reads, in order:
#
# **Reading.** Tokens `start..start+n-1` of the split: find the shard that holds `start`
# (`starts` is each shard's first token), read, and go on into the next shard while tokens are missing.
#
# **Order.** The loader serves an endless stream of sequence ids: epoch $e$ is a permutation of
# $0..S-1$ drawn from a generator seeded with `(seed, e)` (or $0..S-1$ in order with
# `shuffle=False`). Position $k$ of the stream is sequence $\text{perm}_{\lfloor k/S \rfloor}[k \bmod S]$.
#
# **Ranks.** Each `next_batch()` consumes the next `batch_size * world_size` positions of that one
# stream, and rank $r$ takes positions $[rB, (r+1)B)$ of them. So the global batch of a step is the
# same whatever the number of processes: 2 ranks x 1 call read exactly the sequences that 1 rank x 2
# calls reads (the trainer's DDP equivalence test rests on this), ranks never overlap, and together
# they cover the global batch.
#
# **Evaluation** wants the opposite of training: the same batches every time, in order, without
# disturbing the training stream. `batch(i)` is batch $i$ of the split read in order: sequences
# $iB, iB+1, \dots$, up to $S-1$ for the last one, which may be shorter. It does not depend on
# `shuffle`, `rank` or the stream position, and does not move it. Consecutive sequences are
# consecutive in the file, so the batch is one read of $rows \cdot T + 1$ tokens, reshaped.
#
# **Resume.** The whole state is the stream position $k$ (a global count, not per rank), so
# `state_dict()` is tiny, and `load_state_dict` continues at exactly the next batch, even with a
# different number of processes. The settings that decide the order must match; the error says which.

# %%
#| export
class TokenLoader:
    "Serve (x, y) int64 batches of shape (batch_size, block_size) from a prepared split; see chapter 7 for the order."
    def __init__(self, data_dir, split, batch_size, block_size, rank=0, world_size=1, seed=0, device="cpu",
                 shuffle=True):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
        if batch_size < 1 or block_size < 1:
            raise ValueError(f"batch_size={batch_size} and block_size={block_size} must both be at least 1")
        self.data_dir, self.meta = Path(data_dir), load_meta(data_dir)
        if split not in self.meta["splits"]:
            raise ValueError(f"split {split!r} not in {self.data_dir}; use one of {list(self.meta['splits'])}")
        self.split, self.B, self.T = split, batch_size, block_size
        self.rank, self.world_size, self.seed, self.shuffle = rank, world_size, seed, shuffle
        self.device = torch.device(device)
        self.vocab_size = self.meta["vocab_size"]
        self.shards = open_shards(self.data_dir, self.meta["splits"][split]["shards"])  # sizes checked against meta.json
        self._checked = set()                                         # shards whose ids were checked
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])  # (n_shards + 1,) first token of each shard
        self.n_tokens = int(self.starts[-1])
        self.n_seqs = (self.n_tokens - 1) // block_size
        if self.n_seqs < 1:
            raise ValueError(f"the {split} split has {self.n_tokens} tokens, fewer than block_size + 1 = {block_size + 1}")
        self.pos, self._perms = 0, {}  # pos: the global stream position (next_batch advances it)

    def _shard(self, j):
        if j not in self._checked:  # first read of this shard: are its ids valid for this vocabulary?
            check_ids(self.shards[j], self.vocab_size)
            self._checked.add(j)
        return self.shards[j]

    def _read(self, start, n):
        "Tokens start..start+n-1 of the split, across shard borders: (n,) uint16."
        out, j = [], int(np.searchsorted(self.starts, start, side="right")) - 1
        while n:
            lo = start - self.starts[j]
            piece = self._shard(j)[lo: lo + n]
            out.append(piece); start += len(piece); n -= len(piece); j += 1
        return np.concatenate(out) if len(out) > 1 else out[0]

    def _perm(self, epoch):
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n_seqs)}
        return self._perms[epoch]

    def seq_ids(self, start, n):
        "Sequence ids at stream positions start..start+n-1: (n,) int64."
        k = np.arange(start, start + n)
        if not self.shuffle:
            return k % self.n_seqs
        return np.array([self._perm(int(e))[i] for e, i in zip(k // self.n_seqs, k % self.n_seqs)], dtype=np.int64)

    def next_batch(self):
        "This rank's (x, y), each (batch_size, block_size) int64 on `device`; advances the global stream."
        ids = self.seq_ids(self.pos + self.rank * self.B, self.B)  # (B,) this rank's slice of the global batch
        buf = np.stack([self._read(int(i) * self.T, self.T + 1) for i in ids]).astype(np.int64)  # (B, T+1)
        self.pos += self.B * self.world_size
        return to_device(buf[:, :-1], buf[:, 1:], self.device)  # (B, T) each

    @property
    def n_batches(self) -> int:
        "How many batches `batch(i)` serves: ceil(n_seqs / batch_size)."
        return -(-self.n_seqs // self.B)

    def batch(self, i: int):
        "Batch `i` of the split in order: (x, y), each (rows, block_size) int64, rows = batch_size except maybe for the last."
        if not 0 <= i < self.n_batches:
            raise IndexError(f"batch {i}: the {self.split} split of {self.data_dir} has {self.n_batches} batches of "
                             f"{self.B} sequences of {self.T} tokens; ask for one in 0..{self.n_batches - 1}")
        first = i * self.B
        rows = min(self.B, self.n_seqs - first)
        buf = self._read(first * self.T, rows * self.T + 1).astype(np.int64)  # (rows*T + 1,)
        return to_device(buf[:-1].reshape(rows, self.T), buf[1:].reshape(rows, self.T), self.device)  # (rows, T) each

    def state_dict(self):
        return {"split": self.split, "pos": self.pos, "seed": self.seed, "shuffle": self.shuffle,
                "block_size": self.T, "n_tokens": self.n_tokens}

    def load_state_dict(self, sd):
        mine = self.state_dict()
        for k in ("split", "seed", "shuffle", "block_size", "n_tokens"):
            if sd[k] != mine[k]:
                raise ValueError(f"loader state has {k}={sd[k]!r} but this loader has {mine[k]!r}; "
                                 "resume with the data and settings of the run that saved it")
        self.pos = int(sd["pos"])

    @property
    def tokenizer(self) -> Tokenizer:
        return tokenizer_from_dict(self.meta["tokenizer"])

    def __repr__(self):
        return (f"TokenLoader({self.data_dir}, {self.split}: {self.n_tokens:,} tokens in {len(self.shards)} shard(s), "
                f"{self.n_seqs:,} sequences of {self.T}; B={self.B}, rank {self.rank}/{self.world_size})")


# %% [markdown]
# A batch from Tiny Shakespeare: `y` is `x` shifted by one character.

# %%
dl = TokenLoader(dc, "train", batch_size=4, block_size=8)
x, y = dl.next_batch()                                    # (4, 8) each
print(dl); print(x.shape, x.dtype); print(x[0].tolist(), "->", y[0].tolist())
test_eq((x.shape, y.shape, x.dtype), ((4, 8), (4, 8), torch.int64))
test_eq(x[:, 1:], y[:, :-1])
print(repr(dl.tokenizer.decode(x[0].tolist())), "->", repr(dl.tokenizer.decode(y[0].tolist())))

# %% [markdown]
# The promises, proved on the same text cut into shards of 100,000 tokens (11 train shards, so
# sequences cross borders): every row is the stream at its sequence's offset; ranks are disjoint
# and 2 ranks x 1 call = 1 rank x 2 calls; a resumed loader gives the identical next batch; an
# epoch visits every sequence once, and the seed fixes the order.

# %%
ds = prepare("shakespeare_char", tmp / "shards_of_100k", shard_tokens=100_000, progress=False)
files = [ds / sh["file"] for sh in load_meta(ds)["splits"]["train"]["shards"]]
stream = np.concatenate([np.fromfile(f, dtype="<u2") for f in files])   # (1003854,) the split, end to end
print(len(files), "train shards:", [f.name for f in files[:2]], "...")
a = TokenLoader(ds, "train", 4, 64)
ids = a.seq_ids(0, 4); x, y = a.next_batch()                            # (4,) ids; (4, 64) each
for i, xi, yi in zip(ids, x, y):
    test_eq(xi.tolist(), stream[i * 64:i * 64 + 64].tolist()); test_eq(yi.tolist(), stream[i * 64 + 1:i * 64 + 65].tolist())


# %%
def batches(world_size, calls, **kw):
    loaders = [TokenLoader(ds, "train", 4, 64, rank=r, world_size=world_size, **kw) for r in range(world_size)]
    return [torch.cat([l.next_batch()[0] for l in loaders]) for _ in range(calls)]  # (world_size*B, T) per call

one = torch.cat(batches(1, 4)); two = torch.cat(batches(2, 2)); four = torch.cat(batches(4, 1))
test_eq(one, two); test_eq(one, four)                                  # world-size independent
test_eq(len({tuple(r) for r in two.tolist()}), len(two))              # no sequence twice
for _ in range(4): a.next_batch()
sd = json.loads(json.dumps(a.state_dict()))                            # through JSON, as a checkpoint might
b = TokenLoader(ds, "train", 4, 64); b.load_state_dict(sd)
xa, ya = a.next_batch(); xb, yb = b.next_batch()
test_eq(xa, xb); test_eq(ya, yb)                                       # resume: the identical next batch
e = TokenLoader(ds, "train", 1, 256, seed=3)
test_eq(sorted(e.seq_ids(0, e.n_seqs).tolist()), list(range(e.n_seqs)))  # one epoch = every sequence once
assert (e.seq_ids(0, 50) != TokenLoader(ds, "train", 1, 256, seed=4).seq_ids(0, 50)).any()
assert (e.seq_ids(0, 50) != e.seq_ids(e.n_seqs, 50)).any()             # each epoch its own order

# %% [markdown]
# `batch(i)` is what an unshuffled loader's `next_batch()` serves at its $(i+1)$-th call, whatever
# the loader's own rank, shuffling and position; the last batch holds what is left, and one more is
# an error. All of them together are the split's sequences, once each.

# %%
v = TokenLoader(ds, "val", 8, 64, shuffle=False)
in_order = [v.next_batch() for _ in range(3)]                          # 3 x ((8, 64), (8, 64))
w = TokenLoader(ds, "val", 8, 64, rank=1, world_size=2, seed=5)       # shuffled, rank 1: no matter
for i, (xs, ys) in enumerate(in_order):
    xb, yb = w.batch(i)
    assert torch.equal(xb, xs) and torch.equal(yb, ys)
test_eq((w.pos, v.pos), (0, 24))                                       # batch() leaves the stream alone
last = w.batch(w.n_batches - 1)[0]
print(f"{w.n_seqs:,} sequences -> {w.n_batches} batches of 8, the last of {len(last)}")
test_eq(sum(len(w.batch(i)[0]) for i in range(w.n_batches)), w.n_seqs)
test_fail(lambda: w.batch(w.n_batches), contains=f"ask for one in 0..{w.n_batches - 1}")

# %% [markdown]
# Which rank reads which sequences: the global batch of each step (8 sequences, batch size 4 on 2
# ranks) is 8 consecutive positions of the shuffled stream; rank 0 takes the first half, rank 1
# the second. With one rank and 8 sequences per step the same positions come out in the same order.

# %%
W, B, steps = 2, 4, 5
fig, ax = plt.subplots(figsize=(9, 2.6))
loaders = [TokenLoader(ds, "train", B, 64, rank=r, world_size=W) for r in range(W)]
for s in range(steps):
    for r, l in enumerate(loaders):
        for j, i in enumerate(l.seq_ids(s * W * B + r * B, B)):           # what rank r reads at step s
            ax.add_patch(plt.Rectangle((s * W * B + r * B + j, 0), 1, 1, facecolor=f"C{r}", edgecolor="w", lw=0.5))
            ax.text(s * W * B + r * B + j + 0.47, 0.5, str(i), rotation=90, ha="center", va="center", fontsize=7, color="w")
for s in range(steps + 1):
    ax.axvline(s * W * B, color="k", lw=2)
ax.set_xlim(0, steps * W * B); ax.set_ylim(0, 1); ax.set_yticks([])
ax.set_xlabel("position in the shuffled sequence stream (numbers: sequence ids; black lines: steps)")
ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=f"C{r}") for r in range(W)], labels=[f"rank {r}" for r in range(W)],
          loc="upper right", bbox_to_anchor=(1, 1.35), ncol=2)
plt.tight_layout(); plt.show()

# %% [markdown]
# A damaged folder is a clear error, not silent garbage: a truncated shard, a shard with ids beyond
# the vocabulary, a folder never prepared.

# %%
broken = tmp / "broken"; shutil.copytree(dc, broken)
with open(broken / "val_000000.bin", "r+b") as f: f.truncate(1000)
test_fail(lambda: TokenLoader(broken, "val", 2, 8), contains="damaged")
np.arange(1000, dtype="<u2").tofile(broken / "val_000000.bin")       # ids up to 999 in a 66-id vocabulary
meta_b = json.loads((broken / "meta.json").read_text())
meta_b["splits"]["val"]["shards"][0]["tokens"] = 1000
(broken / "meta.json").write_text(json.dumps(meta_b))
test_fail(lambda: TokenLoader(broken, "val", 2, 8).next_batch(), contains="vocab_size 66")
test_fail(lambda: TokenLoader(broken, "val", 2, 8).batch(0), contains="vocab_size 66")
test_fail(lambda: TokenLoader(tmp / "never" / "shakespeare_char", "train", 2, 8), contains="python data/prepare.py shakespeare_char")

# %% [markdown]
# That is all the trainer needs. [Part (b)](07b_data_fetch.ipynb) gets the files that data sets
# are made from, and [part (c)](07c_data_prepare.ipynb) opens the black box, `prepare`.

# %%
shutil.rmtree(tmp)
