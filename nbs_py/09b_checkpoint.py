# %% [markdown]
# # Training, part 2: checkpoints
# > What a checkpoint holds, writing and reading it safely, exact resume, and the weights of a run folder or a Hugging Face folder for whoever needs them.

# %%
#| default_exp checkpoint

# %% [markdown]
# Part 2 of chapter 9, after [the step](09a_step.ipynb); next: [the config](09c_config.ipynb).
#
# A checkpoint must hold everything the next step depends on, or a resumed run is a *different*
# run: the weights; the optimizer's moments (AdamW's $m$ and $v$, and its step count for the bias
# correction); the loss scaler's state (float16); the step number (the learning rate follows from
# it); the loader's position (else the resumed run sees the same batches twice, or skips some); and
# the random generators of Python, NumPy, PyTorch and CUDA (dropout masks), of every rank. Plus the
# config, so a resumed run can check it is building the same model, and the tokenizer, so the
# weights can be used without the data folder (chapter 14).
#
# It is written atomically (appendix A: a kill during the save leaves the previous checkpoint, never
# a truncated one) and read with `torch.load(weights_only=True)`, which refuses to unpickle anything
# but tensors and plain containers (a checkpoint from the internet cannot run code); that is why
# the generator states are stored as lists and tensors, not NumPy objects. Everything about
# checkpoints lives in one module, which the trainer, the sampling command (chapter 14) and the
# experiments (chapter 10) share. It is also where a model is *loaded*: `load_model` turns any of
# these folders into a model and its tokenizer, for the sampling and evaluation commands (chapters
# 14 and 15).

# %%
#| export
import dataclasses
import importlib
import json
import os
import random
import re
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from gpt2book.common import CommandError
from gpt2book.files import atomic_write
from gpt2book.model import config_from_hf, hf_files, hf_to_gpt2book, make_model, model_config
from gpt2book.tokenizer import tokenizer_from_dict

# %%
import shutil
import tempfile

from fastcore.test import test_eq, test_fail

from gpt2book.model import GPT, GPTConfig
from gpt2book.tokenizer import CharTokenizer


# %%
#| export
def rng_state() -> dict:
    "The state of every random generator this process uses, as tensors and plain containers."
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(mt), gauss], "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

def set_rng_state(s: dict):
    "Restore what `rng_state` captured."
    random.setstate((s["python"][0], tuple(s["python"][1]), s["python"][2]))
    name, keys, pos, has_gauss, cached = s["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available(): torch.cuda.set_rng_state_all(s["cuda"])


# %%
random.seed(1); np.random.seed(1); torch.manual_seed(1)
saved = rng_state()
a = (random.random(), np.random.rand(), torch.rand(1).item())
set_rng_state(saved)
test_eq((random.random(), np.random.rand(), torch.rand(1).item()), a)

# %% [markdown]
# Checkpoints are files `ckpt_STEP.pt` in the run folder, the step zero-padded so that they also
# sort by name; the last `keep` are kept. Reading one is the place where a damaged file shows up (a
# disk that filled up, a copy that was cut short): resuming takes the newest checkpoint that can be
# read and moves a damaged one aside as `*.damaged` (appendix A shows it on a truncated file), and a
# reader that only wants the weights (sampling, `init_from`) skips it without renaming anything.

# %%
#| export
_CKPT_RE = re.compile(r"^ckpt_(\d+)\.pt$")

def checkpoint_step(path) -> int | None:
    "The step of a checkpoint file named `ckpt_STEP.pt`; None for any other name."
    m = _CKPT_RE.match(Path(path).name)
    return int(m.group(1)) if m else None

def checkpoints(folder) -> list[Path]:
    "The checkpoints `ckpt_STEP.pt` in `folder`, oldest first (by step)."
    found = [(checkpoint_step(p), p) for p in Path(folder).glob("ckpt_*.pt")]
    return [p for s, p in sorted(found) if s is not None]

def load_checkpoint(path) -> dict:
    "Load a checkpoint safely: tensors and plain containers only (`weights_only=True`), onto the CPU."
    return torch.load(path, map_location="cpu", weights_only=True)

def save_checkpoint(folder, step: int, ckpt: dict, keep: int = 3) -> Path:
    "Save `ckpt` as `folder/ckpt_STEP.pt` atomically; delete all but the newest `keep`."
    path = Path(folder) / f"ckpt_{step:07d}.pt"
    with atomic_write(path) as f: torch.save(ckpt, f)
    for old in checkpoints(folder)[:-keep]: old.unlink(missing_ok=True)
    return path


# %%
#| export
def newest_readable_checkpoint(folder, report=print, move_aside=True) -> tuple[Path | None, dict | None]:
    """(path, contents) of the newest checkpoint in `folder` that loads; damaged newer ones are reported and, with
    `move_aside` (the trainer resuming; not a reader that only loads weights), renamed *.damaged."""
    for path in reversed(checkpoints(folder)):
        try:
            return path, load_checkpoint(path)
        except Exception as e:
            why = f"{path} is damaged ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:120]})"
            if move_aside:
                aside = path.with_name(path.name + ".damaged")
                os.replace(path, aside)
                why += f"; moved it to {aside.name}"
            report(why + " and trying the one before")
    return None, None


# %%
tmp = Path(tempfile.mkdtemp())
for s_ in (100, 200, 300, 400): save_checkpoint(tmp, s_, {"step": s_, "w": torch.ones(2) * s_}, keep=2)
test_eq([p.name for p in checkpoints(tmp)], ["ckpt_0000300.pt", "ckpt_0000400.pt"])   # the newest two
test_eq(load_checkpoint(checkpoints(tmp)[-1])["w"], torch.tensor([400., 400.]))
test_eq(list(tmp.glob(".*tmp")), [])                                                  # no temporary left behind
test_eq([checkpoint_step(n) for n in ("ckpt_0000300.pt", "ckpt_12.pt", "ckpt_0000300.pt.damaged", "x.pt")],
        [300, 12, None, None])
shutil.rmtree(tmp)


# %% [markdown]
# What goes into a checkpoint, and back out of it. Restoring refuses a checkpoint of a different
# model, naming every difference (a setting added to the model after the checkpoint was written
# counts as its default, which is the model the checkpoint holds: new settings start switched
# off); a resumed run with a different number of processes cannot restore
# each rank's random stream, so it starts fresh streams that depend on the step (the batches are
# unaffected: the loader's position is global).

# %%
#| export
def checkpoint_state(step: int, model, optimizer, loader, scaler, rngs: list, config: dict, tokenizer: dict) -> dict:
    "Everything the next step depends on (see the chapter), as tensors and plain containers."
    return {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "loader": loader.state_dict(), "scaler": scaler.state_dict() if scaler else {}, "rng": rngs,
            "config": config, "model_config": dataclasses.asdict(model.config), "tokenizer": tokenizer}

def check_model_config(saved: dict, current: dict, path, defaults: dict | None = None) -> None:
    "Refuse to resume a checkpoint whose model differs from the run's, naming every difference; a setting it lacks is its default."
    saved = {**(defaults or {}), **saved}                   # (written before that setting existed)
    diff = {k: (saved.get(k), current.get(k)) for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)}
    if diff:
        what = ", ".join(f"{k}: checkpoint {a!r} vs run {b!r}" for k, (a, b) in diff.items())
        raise CommandError(f"{path} holds a different model ({what}): resume with the same model settings, "
                           "or start a new run in another --out_dir")

def restore_checkpoint(ckpt: dict, path, model, optimizer, loader, scaler, rank: int = 0, world_size: int = 1,
                       seed: int = 0) -> int:
    "Load `ckpt` into the run's objects and random generators; returns its step."
    defaults = {f.name: f.default for f in dataclasses.fields(model.config) if f.default is not dataclasses.MISSING}
    check_model_config(ckpt["model_config"], dataclasses.asdict(model.config), path, defaults)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    loader.load_state_dict(ckpt["loader"])
    if scaler and ckpt.get("scaler"): scaler.load_state_dict(ckpt["scaler"])
    if len(ckpt["rng"]) == world_size: set_rng_state(ckpt["rng"][rank])
    else: torch.manual_seed(seed + rank + ckpt["step"])       # another world size: fresh streams
    return ckpt["step"]


# %%
test_fail(lambda: check_model_config({"n_layer": 4, "ffn": "mlp"}, {"n_layer": 6, "ffn": "mlp"}, "ckpt.pt"),
          contains="n_layer: checkpoint 4 vs run 6")
older = {"n_layer": 4}                                   # a checkpoint from before the model had `x0_skip`
check_model_config(older, {"n_layer": 4, "x0_skip": False}, "ckpt.pt", defaults={"x0_skip": False})   # resumes
test_fail(lambda: check_model_config(older, {"n_layer": 4, "x0_skip": True}, "ckpt.pt", defaults={"x0_skip": False}),
          contains="x0_skip: checkpoint False vs run True")


# %% [markdown]
# Other commands want only the weights: `python -m gpt2book.sample --model out/cpu` (chapter 14) and
# `--init_from=out/cpu` (below), from one of three places: a run folder (its newest readable
# checkpoint), a folder in Hugging Face's format (chapter 5's `save_pretrained`), or a Hugging Face
# hub name (`gpt2`). `load_weights` reads any of them into the same three things: the model's
# settings, a state dict in gpt2book's names, and the tokenizer the ids belong to. Which tokenizer:
# a checkpoint names it; a checkpoint from before checkpoints did falls back on the run's data
# folder, found the way the trainer finds it (`data/NAME`, or `$GPT2BOOK_DATA/NAME`); a Hugging Face
# folder holds GPT-2's tokens unless its `config.json` names another tokenizer, and a vocabulary of
# another size that names none is refused, since no one can tell which text its ids stand for. A
# damaged or truncated weights file is a one-line error, like every other problem here.

# %%
#| export
def _tokenizer_of_data(folder: Path) -> dict:
    from gpt2book.prepare import default_data_dir    # only for checkpoints that do not name their tokenizer
    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
    meta = Path(cfg.get("data_dir") or default_data_dir(cfg.get("dataset", "?"))) / "meta.json"
    if not meta.exists():
        raise CommandError(f"{folder}'s checkpoint does not name its tokenizer, and its data folder ({meta.parent}) "
                           f"is gone: prepare that data again (python data/prepare.py ...) or retrain")
    return json.loads(meta.read_text())["tokenizer"]

def _hf_tokenizer(hf: dict, source) -> dict:
    if hf.get("gpt2book_tokenizer"): return hf["gpt2book_tokenizer"]
    if hf.get("vocab_size") in (50257, 50304): return {"name": "gpt2"}      # GPT-2's, padded or not
    raise CommandError(f"{source}: its vocabulary has {hf.get('vocab_size')} ids, not GPT-2's 50,257, and its config.json "
                       f"does not name its tokenizer (gpt2book_tokenizer): no one can tell which text its ids stand for")


# %%
#| export
WHERE = ("a run folder (ckpt_*.pt, as python -m gpt2book.train writes), a Hugging Face folder (config.json + "
         "model.safetensors, as save_pretrained writes) or a hub name such as gpt2")

def _run_weights(path: Path) -> tuple[dict, dict, dict]:
    damaged = []
    _, ckpt = newest_readable_checkpoint(path, report=damaged.append, move_aside=False)
    if ckpt is None:
        why = [d.removesuffix(" and trying the one before") for d in damaged]
        raise CommandError("; ".join([f"{path} holds no readable checkpoint", *why, "train it again, or pass another model"]))
    for d in damaged: print(d, file=sys.stderr)      # a newer checkpoint was skipped: say so
    return ckpt["model_config"], ckpt["model"], ckpt.get("tokenizer") or _tokenizer_of_data(path)

def _hf_weights(source) -> tuple[dict, dict, dict]:
    try:
        config_file, weights_file = hf_files(source)
        hf = json.loads(Path(config_file).read_text())
        settings = dataclasses.asdict(config_from_hf(hf))
        sd = hf_to_gpt2book(load_file(str(weights_file)))
    except FileNotFoundError as e:
        raise CommandError(str(e)) from None
    except (OSError, ValueError) as e:
        raise CommandError(f"{source}: {e}") from None
    except Exception as e:                          # safetensors' own error: a damaged or truncated file
        raise CommandError(f"{source}: cannot read its weights ({type(e).__name__}: {str(e)[:100]}); the file is "
                           f"damaged or not a safetensors file") from None
    sd["lm_head.weight"] = sd["transformer.wte.weight"]              # tied: the head is the embedding
    return settings, sd, _hf_tokenizer(hf, source)


# %%
#| export
def load_weights(source) -> tuple[dict, dict, dict]:
    "(model settings, state dict for GPT.load_state_dict, tokenizer dict) from a run folder, a Hugging Face folder or hub name."
    path = Path(source).expanduser()
    if path.is_file():
        raise CommandError(f"{source} is a file; pass the folder that holds the model: {WHERE}")
    if path.is_dir() and checkpoints(path):
        settings, sd, tok = _run_weights(path)
    elif path.is_dir() and not (path / "model.safetensors").exists():
        raise CommandError(f"{source} holds no model (no ckpt_*.pt, no model.safetensors); pass {WHERE}")
    else:
        settings, sd, tok = _hf_weights(source)
    bad = [k for k, t in sd.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:                                          # a diverged run: it would write (and score) nonsense
        raise CommandError(f"{source}: its weights hold NaN or infinity ({', '.join(bad[:3])}): the run diverged or "
                           f"the file is damaged; pass an earlier checkpoint or another model")
    return settings, sd, tok

def load_state(model, sd: dict, source) -> None:
    "Load `sd` into `model`; weights of other shapes than the model's settings say are one CommandError."
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise CommandError(f"{source}: its weights do not fit its settings ({' '.join(str(e).split())[:200]})") from None

def weights_settings(source) -> dict:
    "The model settings (GPTConfig fields) of the weights at `source`, reading as little as it can."
    path = Path(source).expanduser()
    if path.is_dir() and checkpoints(path):
        saved = json.loads((path / "config.json").read_text()) if (path / "config.json").exists() else {}
        if isinstance(saved.get("model"), dict): return saved["model"]   # what the run recorded: no weights read
    if path.is_dir() and (path / "model.safetensors").exists() or not path.exists():
        try:
            (config_file,) = hf_files(source, ("config.json",))
            return dataclasses.asdict(config_from_hf(json.loads(Path(config_file).read_text())))
        except FileNotFoundError as e: raise CommandError(str(e)) from None
        except (OSError, ValueError) as e: raise CommandError(f"{source}: {e}") from None
    return load_weights(path)[0]                     # an old run folder, or the refusals of load_weights


# %% [markdown]
# With the weights, their settings and their tokenizer, `load_model` builds the model
# (`make_model`, chapter 5, the one way the book builds a model from its settings) and returns it
# ready to use. The settings of a variant (rotary positions, experts, chapter 17's switches) belong to
# the chapter that teaches it, which adds them when it is imported (chapter 5's `MODEL_EXTENSIONS`):
# so a command that loads *any* model first imports every chapter that plugs something in,
# `load_chapters`, the book's one composition point. (The list is checked by a test: a module that
# registers a variant and is missing here fails it.)

# %%
#| export
PLUG_INS = ("positions", "moe", "eval", "muon", "recipe", "speedrun")   # the chapters that register variants (11, 12, 15, 17)

def load_chapters() -> None:
    "Import every chapter that plugs a variant into the model or the trainer, so that all of them can be named."
    for name in PLUG_INS: importlib.import_module(f"gpt2book.{name}")

def load_model(spec, device: str = "cpu"):
    "(GPT in eval mode on `device`, tokenizer) from a run folder, a Hugging Face folder or a hub name (`~` expanded)."
    load_chapters()
    settings, state, tok = load_weights(spec)
    model = make_model(model_config(**settings))
    load_state(model, state, spec)
    return model.to(device).eval(), tokenizer_from_dict(tok)


# %% [markdown]
# A model trained by the book, loaded back: the tiny model of [part 1](09a_step.ipynb) saved as a
# checkpoint of a run folder, then `load_model` on that folder gives the same logits.

# %%
torch.manual_seed(0)
m = GPT(GPTConfig(block_size=16, vocab_size=5, n_layer=1, n_head=2, n_embd=8, bias=False))
run = Path(tempfile.mkdtemp())
tok = CharTokenizer("abcd")
(run / "config.json").write_text(json.dumps({"model": dataclasses.asdict(m.config)}))
save_checkpoint(run, 1, {"step": 1, "model": m.state_dict(), "model_config": dataclasses.asdict(m.config),
                         "tokenizer": tok.to_dict()})
loaded, ltok = load_model(run)
x = torch.randint(0, 5, (2, 16))
with torch.no_grad(): assert torch.equal(loaded(x)[0], m.eval()(x)[0])
test_eq(ltok.decode([0, 1]), "ab")
test_fail(lambda: load_model(run / "config.json"), contains="is a file")
