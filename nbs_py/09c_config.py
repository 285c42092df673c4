# %% [markdown]
# # Training, part 3: the config
# > One dataclass for every setting of a run, presets on top of it, the command line generated from it, and the registries through which later chapters add their variants.

# %%
#| default_exp config

# %% [markdown]
# Part 3 of chapter 9, after [checkpoints](09b_checkpoint.ipynb); next: [the run log](09d_runlog.ipynb).
#
# A run is described by one dataclass, `TrainConfig`. The model is not repeated in it: it holds a
# `GPTConfig` (chapter 5), the one home of the model's settings, and adds what only training needs,
# in four groups, one per concern. Every field is declared with `setting` (appendix B): its default,
# its line in `--help`, and the values it may take, which `TrainConfig` checks when it is made (and
# `GPTConfig` checks its own), before anything touches the disk.
#
# The chapters after this one add to the trainer without editing it. Each finds here the place it
# plugs into: `OPTIMIZERS` (chapter 17 adds Muon), `TRAIN_EXTENSIONS` (a chapter's own settings:
# the load-balancing weight of chapter 12, HellaSwag's of chapter 15, Muon's of chapter 17) and
# `TRAIN_PRESETS` (a preset per variant). Chapter 5's `MODEL_EXTENSIONS` does the same for the
# model's settings. The command line is generated from whatever is registered when it is read.

# %%
#| export
import argparse
import dataclasses
import difflib
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from gpt2book.checkpoint import checkpoints, weights_settings
from gpt2book.common import (CommandError, Parser, SettingError, add_settings, check_settings, distinct, extended,
                             setting)
from gpt2book.model import MODEL_EXTENSIONS, GPTConfig, looks_local, model_config
from gpt2book.optim import configure_optimizer
from gpt2book.prepare import SOURCES, default_data_dir
from gpt2book.step import DTYPES

# %%
import json
import tempfile

from fastcore.test import test_eq, test_fail

from gpt2book.common import refusal


# %% [markdown]
# ## The settings
#
# **The run**: where it writes, on what device and in what precision, and where its weights start.

# %%
#| export
@dataclass
class RunSettings:
    config: str = setting("cpu", "the preset the other values start from (see presets below)")
    out_dir: str = setting("", "run folder; '' -> out/<config>")
    device: str = setting("auto", "auto (cuda if present, else cpu) | cpu | cuda | cuda:N | mps")
    dtype: str = setting("auto", "auto (bfloat16 on GPUs that have it, float16 on older GPUs, float32 on CPUs) | "
                                 "float32 | bfloat16 | float16", choices=DTYPES)
    compile: bool = setting(False, "torch.compile the model (worth it on GPUs, not on a small CPU model)")
    threads: int = setting(0, "CPU threads of PyTorch's operators (torch.set_num_threads); 0: its default, one per "
                              "core or $OMP_NUM_THREADS", low=0)
    seed: int = setting(1337, "seed of the initialisation, the data order and dropout", low=0)
    resume: bool = setting(False, "continue from the newest readable checkpoint in out_dir")
    init_from: str = setting("", "start from pretrained weights: a Hugging Face name (gpt2) or folder, or a run folder")


# %% [markdown]
# **The data**: a prepared data set (chapter 7) by name, in `data/NAME` (or `$GPT2BOOK_DATA/NAME`)
# unless `data_dir` says where, and how the vocabulary is padded for the GPU.

# %%
#| export
@dataclass
class DataSettings:
    dataset: str = setting("shakespeare_char", "a data source name (gpt2book.prepare.SOURCES)")
    data_dir: str = setting("", "prepared shards; '' -> data/<dataset> ($GPT2BOOK_DATA/<dataset> if set)")
    vocab_multiple: int = setting(1, "pad the model's vocabulary to a multiple of this (64: 50257 -> 50304)", low=1)


# %% [markdown]
# **The optimisation.** Two sizes of batch matter and they are different things: `batch_size` is
# how many sequences *one process* pushes through the model in *one micro-step*, bounded by memory;
# `total_batch_size` is how many *tokens* one *optimizer step* sees, a hyperparameter (GPT-2 small:
# $2^{19} = 524{,}288$, as in GPT-3's table). Processes (`world_size`) and gradient accumulation close
# the gap: $\text{total} = \text{batch\_size} \times \text{block\_size} \times \text{world\_size}
# \times \text{grad\_accum}$.
#
# The optimizer is named, and looked up in a registry: chapter 8's AdamW is the one this chapter knows;
# a later chapter adds its own (`OPTIMIZERS["muon"]`, chapter 17). Each entry builds the optimizer for
# a model from the run's settings.

# %%
#| export
def adamw(model, cfg, device_type: str):
    "Chapter 8's AdamW with the run's rate, weight decay and betas (fused on a GPU)."
    return configure_optimizer(model, cfg.learning_rate, cfg.weight_decay, (cfg.beta1, cfg.beta2), device_type)

OPTIMIZERS = {"adamw": adamw}   # name -> fn(model, cfg, device_type) -> optimizer; later chapters add theirs


# %%
#| export
@dataclass
class OptimSettings:
    batch_size: int = setting(12, "sequences per process per micro-step", low=1)
    total_batch_size: int = setting(0, "tokens per optimizer step; 0 -> batch_size * block_size * world_size", low=0)
    max_steps: int = setting(2000, "optimizer steps", low=1)
    learning_rate: float = setting(4e-3, "peak (nanoGPT: 1e-3; chapter 10's sweep found 4e-3 best here)", low=0.0)
    min_lr: float = setting(4e-4, "floor of the cosine: a tenth of the peak", low=0.0)
    warmup_steps: int = setting(100, "linear warmup, in steps", low=0)
    weight_decay: float = setting(0.1, "AdamW's decoupled weight decay, on matrices only", low=0.0)
    beta1: float = setting(0.9, "AdamW's first-moment decay", low=0.0, high=0.9999)
    beta2: float = setting(0.99, "AdamW's second-moment decay", low=0.0, high=0.99999)
    grad_clip: float = setting(1.0, "clip the gradient's global norm to this; 0: no clipping (the norm is still logged)",
                               low=0.0)
    optimizer: str = setting("adamw", "adamw (chapter 8) | a name a later chapter registers in OPTIMIZERS "
                                      "(muon, chapter 17)", choices=OPTIMIZERS)


# %% [markdown]
# **Logging, evaluation and checkpoints.**

# %%
#| export
@dataclass
class LogSettings:
    log_interval: int = setting(10, "steps between metrics.jsonl lines (and the only host syncs)", low=1)
    eval_interval: int = setting(250, "steps between evaluations (and at the last step)", low=1)
    eval_steps: tuple = setting((), "more steps to evaluate at, comma-separated (a scaling grid's budgets: 400,800)")
    eval_iters: int = setting(50, "validation batches per evaluation; 0: the whole split", low=0)
    final_eval_iters: int = setting(-1, "validation batches of the last evaluation, at max_steps (-1: eval_iters; "
                                        "0: the whole split)", low=-1)
    eval_batch_size: int = setting(0, "sequences per validation batch (0: batch_size); the whole split's loss does not "
                                      "depend on it, only its speed", low=0)
    eval_first: bool = setting(True, "also evaluate (and sample) before the first step: the initialisation's loss")
    checkpoint_interval: int = setting(500, "steps between checkpoints (and at the last step); 0: none, and the run "
                                            "cannot be resumed", low=0)
    keep_checkpoints: int = setting(3, "newest checkpoints kept in out_dir", low=1)
    plot: bool = setting(True, "draw loss.png at the end of the run")
    sample_tokens: int = setting(300, "tokens generated into samples.txt at each evaluation (0: none)", low=0)
    wandb: bool = setting(False, "log to Weights & Biases (rank 0; WANDB_MODE online/offline/disabled)")
    wandb_project: str = setting("gpt2book", "the Weights & Biases project")
    peak_tflops: float = setting(0.0, "one device's peak for MFU; 0 -> look the GPU up (CPU: MFU n/a)", low=0.0)


# %% [markdown]
# The four groups and the model make `TrainConfig`. Its defaults *are* the CPU default: nanoGPT's
# CPU recipe for character-level Tiny Shakespeare (4 layers, 4 heads, width 128, context 64, batch
# 12, no dropout, no biases, $\beta_2 = 0.99$, 2000 steps, exact GELU), with one change: a peak
# learning rate of $4 \cdot 10^{-3}$ instead of nanoGPT's $10^{-3}$, the best of the learning-rate
# sweep of chapter 10. The model's `vocab_size` is not a setting of a run: the data decides it (its
# tokenizer's vocabulary, padded to `vocab_multiple`) when the run is set up.

# %%
#| export
CPU_MODEL = dict(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False, gelu="exact")

@dataclass
class TrainConfig(LogSettings, OptimSettings, DataSettings, RunSettings):
    "Every setting of a run: the model (a GPTConfig) and how to train it. Defaults: the CPU default."
    model: GPTConfig = field(default_factory=lambda: model_config(**CPU_MODEL))

    def __post_init__(self):
        if isinstance(self.model, dict): self.model = model_config(**self.model)   # as config.json stores it
        self.eval_steps = tuple(self.eval_steps)                                  # (JSON stores a list)
        check_settings(self)
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in self.eval_steps):
            raise SettingError(f"eval_steps={self.eval_steps} must be steps, whole numbers >= 1")
        if self.min_lr > self.learning_rate:
            raise SettingError(f"min_lr={self.min_lr} must be at most learning_rate={self.learning_rate}")

    @property
    def run_dir(self) -> Path: return Path(self.out_dir or f"out/{self.config}").expanduser()
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir(self.dataset)


# %%
c = TrainConfig()
test_eq((c.config, c.model.n_layer, c.model.block_size, c.batch_size, c.max_steps, c.learning_rate),
        ("cpu", 4, 64, 12, 2000, 4e-3))
test_eq(c.run_dir, Path("out/cpu"))
test_eq(TrainConfig(out_dir="~/runs/a").run_dir, Path.home() / "runs" / "a")
test_fail(lambda: TrainConfig(dtype="float8"), contains="float32, bfloat16, float16")
test_fail(lambda: TrainConfig(eval_iters=-1), contains="eval_iters=-1 must be at least 0")
test_fail(lambda: TrainConfig(learning_rate=float("nan")), contains="finite")
test_fail(lambda: TrainConfig(optimizer="sgd"), contains="use one of adamw")
test_fail(lambda: TrainConfig(model=GPTConfig(n_embd=100, n_head=3)), contains="divisible")
test_eq(TrainConfig(**json.loads(json.dumps(asdict(c)))), c)           # config.json round trip

# %% [markdown]
# ### Settings a later chapter adds
#
# A chapter that needs a setting of its own writes it as a small dataclass and appends it to
# `TRAIN_EXTENSIONS`; `train_config_class` makes the one `TrainConfig` that holds every registered
# extension's fields too (appendix B's `extended`), and that is the class runs are made of. Here
# with a made-up extension, which we take out again:

# %%
#| export
TRAIN_EXTENSIONS: list = []    # settings dataclasses of later chapters (their fields join TrainConfig's)

def train_config_class() -> type:
    "TrainConfig with the fields of every registered extension (the chapters imported so far)."
    return extended(TrainConfig, TRAIN_EXTENSIONS)

def model_keys() -> tuple:
    "The names of the model's settings (chapter 5's and its extensions'), but vocab_size, which the data decides."
    return tuple(f.name for f in fields(extended(GPTConfig, MODEL_EXTENSIONS)) if f.name != "vocab_size")

def run_keys() -> tuple:
    "The names of a run's settings (TrainConfig's and its extensions'), but the model, which model_keys names."
    return tuple(f.name for f in fields(train_config_class()) if f.name != "model")


# %%
@dataclass
class Greeting:
    "A made-up chapter's setting."
    greet_every: int = setting(0, "say hello every N steps; 0: never", low=0)
TRAIN_EXTENSIONS.append(Greeting)
test_eq(train_config_class()(greet_every=5).greet_every, 5)
assert "greet_every" in run_keys() and "n_layer" in model_keys() and "vocab_size" not in model_keys()
test_fail(lambda: train_config_class()(greet_every=-1), contains="greet_every=-1 must be at least 0")
TRAIN_EXTENSIONS.remove(Greeting)
assert "greet_every" not in run_keys()


# %% [markdown]
# ## Presets, and settings written flat
#
# A config is usually made from a **preset**, a table of settings (below), plus settings on top, all
# written flat: `n_layer` belongs to the model, `max_steps` to the run, and `make_config` puts each
# where it belongs. An unknown name is refused with the names it is close to; `init_from` (starting
# from trained weights, later in this chapter) takes the model's settings from the weights.

# %%
#| export
def _check_names(settings: dict):
    known = model_keys() + run_keys()
    for k in settings:
        if k not in known:
            close = difflib.get_close_matches(k, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise SettingError(f"unknown setting {k}{hint}; python -m gpt2book.train --help lists them all")

def make_config(preset: str = "cpu", **settings) -> TrainConfig:
    "The TrainConfig of `preset` (a key of TRAIN_PRESETS) with `settings` on top, written flat; checked now."
    if preset not in TRAIN_PRESETS:
        raise SettingError(f"unknown preset {preset!r}; the presets are {', '.join(TRAIN_PRESETS)}")
    _check_names(settings)
    flat, keys = {**TRAIN_PRESETS[preset], **settings, "config": preset}, model_keys()
    model = {k: flat.pop(k) for k in list(flat) if k in keys}
    if flat.get("init_from"):      # the weights fix the model; only what they leave free may be set
        model = pretrained_settings(flat["init_from"], {k: v for k, v in settings.items() if k in keys})
        flat["vocab_multiple"] = 1
    return train_config_class()(**flat, model=model_config(**{**CPU_MODEL, **model}))


# %% [markdown]
# Presets are settings on top of the defaults. `gpt2-124m` is GPT-2 small trained the way GPT-3's
# paper and build-nanogpt train it: 524,288 tokens a step, peak learning rate $6\times10^{-4}$ with
# 700 warmup steps and cosine to $6\times10^{-5}$ at 19,073 steps (10B tokens: one pass over
# FineWeb-Edu's 10B sample, or 1.1 passes over OpenWebText's 9B), AdamW $(0.9, 0.95)$, weight decay
# 0.1, clipping at 1.0, GPT-2's tanh GELU, bfloat16, `torch.compile`, and the vocabulary padded from
# 50,257 to 50,304 $= 786 \times 64$ so the LM-head matmul hits the GPU's fast tile sizes (the 47
# extra tokens never occur in the data, so training pushes their logits down). Its micro-batch of 32
# sequences of 1024 fits an 80 GB GPU; on 8 GPUs that is 2 accumulation steps, on one GPU 16. The
# variants change one thing each: the SwiGLU + RMSNorm arm of chapter 10, rotary positions (chapter
# 11), a mixture of experts with the dense model's compute per token (chapter 12).
# `gpt2-124m-ft-shakespeare` fine-tunes OpenAI's GPT-2 small on Tiny Shakespeare (chapter 14).

# %%
#| export
GPT2_124M = dict(
    dataset="openwebtext", n_layer=12, n_head=12, n_embd=768, block_size=1024, dropout=0.0, bias=True, gelu="tanh",
    vocab_multiple=64, batch_size=32, total_batch_size=524_288, max_steps=19_073,
    learning_rate=6e-4, min_lr=6e-5, warmup_steps=700, weight_decay=0.1, beta1=0.9, beta2=0.95,
    grad_clip=1.0, dtype="auto", compile=True, log_interval=10, eval_interval=500, eval_iters=80,
    checkpoint_interval=1000, keep_checkpoints=3, sample_tokens=64)

TRAIN_PRESETS: dict[str, dict] = {   # later chapters add a preset per variant (rope, moe, speedrun)
    "cpu": {},                                                   # the defaults of TrainConfig
    "gpt2-124m": GPT2_124M,
    "gpt2-124m-swiglu-rmsnorm": {**GPT2_124M, "norm": "rmsnorm", "ffn": "swiglu"},    # chapter 10
    # chapter 14: OpenAI's GPT-2 small, fine-tuned on Tiny Shakespeare (GPT-2 tokens), as nanoGPT's finetune_shakespeare
    "gpt2-124m-ft-shakespeare": dict(init_from="gpt2", dataset="shakespeare", dtype="auto", compile=True, batch_size=4,
                                     block_size=1024, total_batch_size=32_768, max_steps=40, learning_rate=3e-5,
                                     min_lr=3e-5, warmup_steps=0, eval_interval=10, eval_iters=40, checkpoint_interval=20,
                                     sample_tokens=200, dropout=0.1, log_interval=1),
}

# %%
g = make_config("gpt2-124m", max_steps=50, learning_rate=3e-4)
test_eq((g.model.n_layer, g.model.gelu, g.max_steps, g.learning_rate, g.total_batch_size), (12, "tanh", 50, 3e-4, 524288))
test_eq(make_config(n_layer=2, ffn="swiglu").model, model_config(**{**CPU_MODEL, "n_layer": 2, "ffn": "swiglu"}))
test_fail(lambda: make_config(learning_rtae=3e-4), contains="did you mean learning_rate")
test_fail(lambda: make_config(ffn="foo"), contains="ffn='foo' is unknown")
test_fail(lambda: make_config("gpt5"), contains="gpt2-124m")
test_fail(lambda: make_config(vocab_size=100), contains="unknown setting vocab_size")

# %% [markdown]
# ## Starting from trained weights: `init_from`
#
# With `init_from` the weights come from elsewhere: OpenAI's GPT-2 through Hugging Face (`gpt2`,
# `gpt2-medium`, ..., or a folder that `save_pretrained` wrote), or the newest checkpoint of one of
# our run folders. The weights fix the model: its settings are read from them when the config is
# made (`make_config`, before anything else happens), and a model setting given explicitly that
# disagrees is refused, since the weights cannot be made into another model. What they leave free:
# `dropout` (fine-tuning often adds some), `attn_impl`, and `block_size`, which may shrink (the
# position table is cropped, nanoGPT's `crop_block_size`) and, for rotary positions, also grow
# (rotations are computed for any position; chapter 11 shows how far that carries). The run's
# `config.json` records the settings the model really has. Chapter 14 fine-tunes with it.

# %%
#| export
FREE_MODEL_KEYS = ("dropout", "attn_impl", "block_size")   # what init_from lets a run change

def _weights_settings(source: str) -> dict:
    "weights_settings, its refusal a SettingError where `source` names nothing here, a CommandError where a download failed."
    try:
        return weights_settings(source)
    except CommandError as e:
        if looks_local(source) or Path(source).expanduser().exists(): raise SettingError(f"--init_from={e}") from None
        raise CommandError(f"--init_from={e}") from None        # a hub name that could not be fetched: not a typo

def pretrained_settings(source: str, explicit: dict) -> dict:
    "The model settings for `init_from=source`: the weights', with the free keys of `explicit`; a clash is refused."
    weights = _weights_settings(source)
    clash = {k: (v, weights[k]) for k, v in explicit.items() if k not in FREE_MODEL_KEYS and v != weights.get(k)}
    block = explicit.get("block_size", weights["block_size"])
    if block > weights["block_size"] and weights["pos"] != "rope":
        raise SettingError(f"--block_size={block}: these weights have learned positions for {weights['block_size']} "
                           f"tokens, and a position table cannot grow (rotary weights, pos=rope, can): use at most "
                           f"{weights['block_size']}")
    if clash:
        what = ", ".join(f"--{k}={a} (the weights: {b})" for k, (a, b) in clash.items())
        raise SettingError(f"--init_from={source} fixes the model's settings; drop {what}")
    return {**weights, **{k: explicit[k] for k in FREE_MODEL_KEYS if k in explicit}}


# %% [markdown]
# (The tiny run of [part 5](09e_train.ipynb) shows `init_from` at work: its settings come with its
# weights; dropout may change, the width may not.)

# %% [markdown]
# ## The command line
#
# `python -m gpt2book.train [--config NAME] [--key=value ...]`. `--config NAME` picks a preset,
# then every `--key=value` sets one field, the model's fields by their own names (`--n_layer=8`).
# The parser is generated from the dataclasses: one option per field, its type, its choices and its
# help text from the field's `setting`, so the command line cannot disagree with the code. Values
# are typed: `--max_steps=200` is an int, `--bias=false` a bool (`true/false/1/0/yes/no`); a bare
# `--resume` or `--compile` sets a bool to true. Everything is checked while the command line is
# read, before any data or folder is touched; a mistake is one line and exit status 2, with the
# close matches of an unknown name: a typo like `--learning_rtae` must not start an eight-GPU run
# with the default learning rate, and `--ffn=foo` must not prepare a data set first.

# %% [markdown]
# What can be known before anything is written is checked here too, so that a mistake costs a second,
# not a prepared data set and a built model: the batch arithmetic (`total_batch_size` must be a
# multiple of what the processes push through per micro-step, `grad_accum_steps`); a data set that
# names nothing (neither a known source nor a prepared folder); an `out_dir` that is a file; and
# `--resume` with nothing to resume, which is refused rather than quietly starting afresh.

# %%
#| export
def grad_accum_steps(cfg: TrainConfig, world_size: int = 1) -> int:
    "Micro-steps per optimizer step so that one step sees `total_batch_size` tokens over all processes."
    per_micro = cfg.batch_size * cfg.model.block_size * world_size
    total = cfg.total_batch_size or per_micro
    if total % per_micro:
        raise SettingError(f"total_batch_size={total} is not a multiple of batch_size*block_size*world_size = "
                           f"{cfg.batch_size}*{cfg.model.block_size}*{world_size} = {per_micro}: choose a multiple of "
                           f"{per_micro} or another batch_size")
    return total // per_micro

def check_run(cfg: TrainConfig, world_size: int = 1) -> None:
    "Refuse, with a SettingError, a run whose settings name nothing or cannot work, before anything is written."
    grad_accum_steps(cfg, world_size)
    if not cfg.init_from and cfg.dataset not in SOURCES and not (cfg.data_path / "meta.json").exists():
        raise SettingError(f"unknown dataset {cfg.dataset!r} and no prepared data in {cfg.data_path}: use one of "
                           f"{', '.join(SOURCES)}, or --data_dir=FOLDER for data prepared with "
                           f"python data/prepare.py FILES --out FOLDER")
    if cfg.run_dir.exists() and not cfg.run_dir.is_dir():
        raise SettingError(f"--out_dir={cfg.run_dir} is a file: name a folder for the run's outputs")
    if cfg.resume and not checkpoints(cfg.run_dir):
        raise SettingError(f"--resume: {cfg.run_dir} holds no checkpoint to continue from; drop --resume to start "
                           f"a new run there, or name the run folder with --out_dir")


# %%
g = make_config(batch_size=32, total_batch_size=524_288, block_size=1024)       # GPT-2 small
test_eq([grad_accum_steps(g, w) for w in (1, 8)], [16, 2])
test_fail(lambda: grad_accum_steps(make_config(total_batch_size=100)), contains="not a multiple of")
test_fail(lambda: check_run(make_config(dataset="missing")), contains="unknown dataset 'missing'")
tmp = Path(tempfile.mkdtemp())
(tmp / "file").write_text("x")
test_fail(lambda: check_run(make_config(out_dir=str(tmp / "file"))), contains="is a file")
test_fail(lambda: check_run(make_config(out_dir=str(tmp / "new"), resume=True)), contains="holds no checkpoint")
assert not (tmp / "new").exists()

# %% [markdown]
# The parser itself: one group of options per settings class, the model's and the run's, and one
# more for each extension a later chapter registered (titled with its docstring), each option
# generated by appendix B's `add_settings`.

# %%
#| export
HELP_EXAMPLES = """examples:
  python -m gpt2book.train                                    # the CPU default: Tiny Shakespeare, under 2 minutes
  python -m gpt2book.train --max_steps=500 --out_dir=out/short
  python -m gpt2book.train --resume                           # continue out/cpu from its newest checkpoint
  python -m gpt2book.train --pos=rope --ffn=moe --n_expert=8 --expert_top_k=2 --optimizer=muon
  OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 -m gpt2book.train      # DDP on a CPU (gloo)
  torchrun --standalone --nproc_per_node=8 -m gpt2book.train --config gpt2-124m     # GPT-2 small, 8 GPUs
  python -m gpt2book.train --config gpt2-124m-ft-shakespeare  # fine-tune OpenAI's GPT-2 (a GPU, a network)"""

def _groups() -> list[tuple[str, type]]:
    "(title, settings class) of every group of options, the extensions' after the class they extend."
    title = lambda c: (c.__doc__ or c.__name__).split("\n")[0].rstrip(".")
    return ([("run settings", RunSettings), ("data settings", DataSettings), ("model settings (chapter 5)", GPTConfig)]
            + [(f"model: {title(c)}", c) for c in distinct(MODEL_EXTENSIONS)]
            + [("optimisation settings", OptimSettings), ("log settings", LogSettings)]
            + [(title(c), c) for c in distinct(TRAIN_EXTENSIONS)])

def parser() -> Parser:
    "The command line of `python -m gpt2book.train`, generated from the settings classes and their extensions."
    presets = "\n".join(f"  {k:<26} {', '.join(f'{a}={b}' for a, b in v.items())[:150] or 'the defaults'}"
                        for k, v in TRAIN_PRESETS.items())
    p = Parser(prog="python -m gpt2book.train", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Train a GPT (chapter 9 of gpt2book). Every setting is --key=value; a bool may be given "
                           "bare (--resume).", epilog=f"presets (--config NAME):\n{presets}\n\n{HELP_EXAMPLES}")
    p.add_argument("--config", default="cpu", choices=list(TRAIN_PRESETS), metavar="NAME", help="a preset (below)")
    defaults = {**asdict(train_config_class()()), **CPU_MODEL}
    for title, cls in _groups():
        add_settings(p.add_argument_group(title), cls, defaults, skip=("config", "vocab_size", "model"))
    return p


# %% [markdown]
# `config_from_args` reads the command line into a `TrainConfig` through `make_config`, so a program
# and a command line get the same checks. A usage error or a bad setting is one line and status 2
# (appendix B); the command (`main`, in [part 5](09e_train.ipynb)) gives a problem found while
# running (no data, a damaged checkpoint, a download that failed) one line and status 1.

# %%
#| export
def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    "The TrainConfig of a command line `[--config NAME] [--key=value ...]`, checked; a usage error exits with status 2."
    p = parser()
    args, unknown = p.parse_known_args(argv)
    if unknown:
        key = unknown[0].split("=")[0].lstrip("-").replace("-", "_")
        close = difflib.get_close_matches(key, model_keys() + run_keys(), n=3)
        p.error(f"unknown option {unknown[0].split('=')[0]}" + (f" (did you mean {', '.join('--' + c for c in close)}?)"
                                                               if close else ""))
    settings = {k: v for k, v in vars(args).items() if k != "config"}
    try:
        cfg = make_config(args.config, **settings)
        check_run(cfg, int(os.environ.get("WORLD_SIZE", 1)))
        return cfg
    except SettingError as e:
        p.error(str(e))

def command_line(preset: str, settings: dict) -> list[str]:
    "The arguments of `python -m gpt2book.train` that make `make_config(preset, **settings)` (to start a run as a process)."
    text = lambda v: ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
    return [f"--config={preset}"] + [f"--{k}={text(v)}" for k, v in settings.items()]


# %%
c = config_from_args([])
test_eq((c.config, c.model.n_layer, c.model.block_size, c.batch_size, c.max_steps), ("cpu", 4, 64, 12, 2000))
c = config_from_args(["--config", "gpt2-124m", "--max_steps=50", "--compile=false", "--learning_rate", "3e-4"])
test_eq((c.model.n_layer, c.max_steps, c.compile, c.learning_rate, c.total_batch_size), (12, 50, False, 3e-4, 524288))
test_eq(config_from_args(["--config=gpt2-124m-swiglu-rmsnorm"]).model.ffn, "swiglu")

def refused(argv):
    "What the command prints for `argv`: one line, exit status 2 (appendix B's `refusal`)."
    status, line = refusal(config_from_args, argv)
    assert status == 2, status
    return line

print(refused(["--learning_rtae=3e-4"]))
assert "did you mean --learning_rate" in refused(["--learning_rtae=3e-4"])
assert "invalid int value: 'ten'" in refused(["--max_steps=ten"])
assert "invalid bool value: 'maybe'" in refused(["--bias=maybe"])
assert "'foo'" in refused(["--ffn=foo"]) and "mlp" in refused(["--ffn=foo"])
assert "n_embd=100 must be divisible by n_head=3" in refused(["--n_embd=100", "--n_head=3"])
assert "finite" in refused(["--learning_rate=nan"])
assert "gpt2-124m" in refused(["--config=gpt5"])
assert "not a multiple" in refused(["--total_batch_size=100"])
assert "unknown dataset 'missing'" in refused(["--dataset=missing"])
assert "holds no checkpoint" in refused(["--resume", f"--out_dir={tmp / 'none'}"])
assert "is a file" in refused([f"--out_dir={tmp / 'file'}"])
test_eq(config_from_args(command_line("cpu", dict(n_layer=3, learning_rate=2e-3, eval_steps=(40, 80)))),
        make_config(n_layer=3, learning_rate=2e-3, eval_steps=(40, 80)))

# %% [markdown]
# `--help` lists every setting in its group with its type, default and help text, then the presets
# and examples:

# %%
help_text = parser().format_help()
print(help_text[:1500], "...")
for name in model_keys() + run_keys(): assert f"--{name}" in help_text, name

# %% [markdown]
# Next: [the run log](09d_runlog.ipynb), what a run writes while it trains.
