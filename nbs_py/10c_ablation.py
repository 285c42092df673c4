# %% [markdown]
# # The ablation (c): GPT-2 vs SwiGLU + RMSNorm, done right
#
# > The experiment runner (run folders, locks, resuming, learning-rate sweeps, results files and the command line), and with it a 2x2 experiment {LayerNorm, RMSNorm} x {GELU MLP, SwiGLU}, parameter matched, each arm at its own best learning rate, three seeds (five where the difference is under 0.02 nats), every run annealed: what the data show.

# %%
#| default_exp experiments

# %% [markdown]
# [Part (a)](10a_ablation_stats.ipynb) said why the seed project's comparison could not carry its
# claim and built the statistics a fair one needs; [part (b)](10b_ablation_plots.ipynb) its figure.
# This part builds the runner that trains the experiment's runs, runs the 2x2 experiment with it,
# and reads the results.

# %%
#| export
import contextlib
import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gpt2book.checkpoint import checkpoint_step, checkpoints, load_chapters
from gpt2book.common import (CommandError, Parser, SettingError, book_path, check_settings, cpu_name, parse_settings,
                             setting, settings_parser, user_errors)
from gpt2book.files import atomic_write_json, atomic_write_text, folder_lock
from gpt2book.model import make_model
from gpt2book.stats import BASELINE, best_lrs, results_table
from gpt2book.config import command_line, make_config
from gpt2book.runlog import read_metrics
from gpt2book.train import padded_vocab, train

# %%
import math
import shutil
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import scipy.stats
from fastcore.test import test_close, test_eq, test_fail
from gpt2book.common import refusal as common_refusal
from IPython.display import Markdown, display

from gpt2book.optim import get_lr
from gpt2book.plots import plot_arms
from gpt2book.prepare import prepare
from gpt2book.stats import final_losses, machines_note, summary

# %% [markdown]
# ## Arms
#
# An **arm** is a name and the trainer settings that differ from the baseline; everything else
# (init, dropout, data, schedule, steps) is shared. The 2x2 of this chapter has four arms, named for
# what differs from GPT-2. The runner below takes any such dictionary: chapters 11 and 12 compare
# positions and mixtures of experts with it (`ARCHITECTURES`), and the book's experiments are
# listed by name in `EXPERIMENTS` for the command line. `ARM_NAMES` says in words what each arm is,
# for tables. Three seeds per arm is the design; where a conclusion rests on a difference under
# 0.02 nats, two more seeds at the chosen rates (`MORE_SEEDS`) make it five (below).

# %%
#| export
ABLATION = {  # arm name: the trainer settings that differ from the baseline (BASELINE = "gpt2", gpt2book.stats)
    "gpt2":           {},
    "rmsnorm":        dict(norm="rmsnorm"),
    "swiglu":         dict(ffn="swiglu"),
    "swiglu-rmsnorm": dict(norm="rmsnorm", ffn="swiglu"),
}
ARCHITECTURES = {  # chapters 11 and 12, at this chapter's scale (4 x 128: the dense FFN is 128 -> 512 -> 128)
    "gpt2":       {},
    "rope":       dict(pos="rope"),
    "nope":       dict(pos="none"),                                                # no positions: the causal mask alone
    "moe-active": dict(ffn="moe", n_expert=8, expert_top_k=2, expert_hidden=256),  # 2 of 8 experts of 256: dense compute
    "moe-total":  dict(ffn="moe", n_expert=8, expert_top_k=2, expert_hidden=64),   # 8 experts of 64: dense size
}
EXPERIMENTS = {"ablation": ABLATION, "architectures": ARCHITECTURES}
MORE_SEEDS = {  # 5 seeds where a conclusion rests on a difference under 0.02 nats: 2 more at the chosen rate
    "ablation": {"gpt2": (1340, 1341), "rmsnorm": (1340, 1341)},
    "architectures": {"gpt2": (1340, 1341), "moe-total": (1340, 1341)},
}
RESULTS = {name: f"nbs/data/{name}.csv" for name in EXPERIMENTS}  # committed: the chapters read them
PLOTS = {"ablation": "images/val-loss-gpt2-swiglu-rmsnorm.png", "architectures": "images/val-loss-architectures.png"}
ARM_NAMES = {"gpt2": "GPT-2 (LayerNorm + GELU MLP)", "rmsnorm": "RMSNorm + GELU MLP", "swiglu": "LayerNorm + SwiGLU",
             "swiglu-rmsnorm": "RMSNorm + SwiGLU", "rope": "rotary positions (RoPE)", "nope": "no positions (NoPE)",
             "moe-active": "MoE, 8 experts top-2, dense compute", "moe-total": "MoE, 8 experts top-2, dense size"}

# %%
ABLATION


# %% [markdown]
# ## The scale
#
# The bed is nanoGPT's CPU recipe, the trainer's `cpu` preset (chapter 9): character-level Tiny
# Shakespeare, 4 layers x 4 heads x 128 wide, context 64, batch 12, no dropout. nanoGPT's own recipe
# ends at a validation loss of 1.886 there after 2000 steps (run on this machine, chapter 9). The
# sweep has $4 \times 5 = 20$ runs to pick each
# arm's learning rate (factors of 2 from $5 \cdot 10^{-4}$ to $8 \cdot 10^{-3}$, so that the best rate lies
# inside the sweep, not at its edge) and $4 \times 2 = 8$ more for the extra seeds: 28 runs of the
# preset's 2000 steps (and one more for each time a best rate lands at the edge and the sweep
# widens). Two run side by side, one thread each; the whole sweep took 27 minutes on this book's
# 2-core build machine.
# The only settings that differ from the `cpu` preset are the arm, the learning rate (with
# `min_lr` a tenth of it, as in the preset), the seed, and a denser evaluation (every 100 steps).
#
# `Scale` holds those choices. A run is an arm, a learning rate and a seed; `run_job` turns it into
# what the runner needs, a run folder and the run's settings, written flat as chapter 9's
# `make_config` takes them (`make_config(preset, **settings)` is the run's config, checked when
# made). Runs live in `out/runs/ARM_lrLR_sSEED/`, shared by every experiment at this scale: the
# baseline runs of the ablation are also the baseline of chapters 11 and 12.

# %%
#| export
@dataclass
class Scale:
    "The shared settings of every run of an experiment: a trainer preset plus overrides."
    preset: str = "cpu"
    lrs: tuple = (5e-4, 1e-3, 2e-3, 4e-3, 8e-3)  # the learning-rate sweep, per arm: factors of 2 from nanoGPT's 1e-3 both ways
    seeds: tuple = (1337, 1338, 1339)  # the first picks the learning rate; all are reported at it
    lr_floor: float = 0.1  # min_lr = lr_floor * lr: every arm anneals by the same factor
    overrides: dict = field(default_factory=lambda: dict(
        eval_interval=100, eval_iters=40, checkpoint_interval=500, log_interval=50,  # a denser curve
        keep_checkpoints=1, sample_tokens=0, device="cpu"))

def run_name(arm: str, lr: float, seed: int) -> str:
    "The folder name of one run: `swiglu-rmsnorm_lr0.001_s1337`."
    return f"{arm}_lr{lr:g}_s{seed}"

def run_job(scale: Scale, arms: dict, run: tuple, out_root) -> tuple[Path, dict]:
    "(run folder, settings) of one run (arm, lr, seed) of `arms`: what `run_one` and `run_all` take."
    arm, lr, seed = run
    if arm not in arms: raise ValueError(f"unknown arm {arm!r}; the arms are {list(arms)}")
    settings = {**scale.overrides, **arms[arm], "learning_rate": lr, "min_lr": lr * scale.lr_floor, "seed": seed}
    return Path(out_root) / run_name(arm, lr, seed), settings


# %% [markdown]
# A run of the sweep is one plain trainer command too: chapter 9's `command_line` writes the same
# settings as the arguments of `python -m gpt2book.train`, which read back to the same config.

# %%
run_dir, settings = run_job(Scale(), ABLATION, ("swiglu-rmsnorm", 1e-3, 1337), "out/runs")
cfg = make_config("cpu", **settings, out_dir=str(run_dir))
print("python -m gpt2book.train " + " ".join(command_line("cpu", {**settings, "out_dir": str(run_dir)})))
test_eq((cfg.model.norm, cfg.model.ffn, cfg.learning_rate, cfg.min_lr, cfg.seed, cfg.run_dir),
        ("rmsnorm", "swiglu", 1e-3, 1e-4, 1337, Path("out/runs/swiglu-rmsnorm_lr0.001_s1337")))
test_fail(lambda: run_job(Scale(), ABLATION, ("swiglu_rmsnorm", 1e-3, 0), "out"), contains="the arms are")


# %% [markdown]
# ### Parameter matched, asserted
#
# The arms must not differ in size, or the bigger one wins by size alone. SwiGLU's hidden width
# follows the 8/3 rule of chapter 3 (344 at width 128: three matrices of $128 \times 344$ against
# the MLP's two of $128 \times 512$); RMSNorm has a gain and no bias, and so has the `cpu` preset's
# LayerNorm (`bias=False`). Built from the very config each run uses (on PyTorch's `meta` device:
# shapes without memory or arithmetic), the four models are within 1%:

# %%
#| export
def arm_params(scale: Scale, vocab_size: int, arms: dict = ABLATION) -> dict:
    "{arm: (parameters, parameters a token uses)} of each arm's model at `scale` (they differ for mixtures of experts)."
    load_chapters()                                             # the arms use later chapters' variants (RoPE, MoE)
    out = {}
    for arm in arms:
        cfg = make_config(scale.preset, **run_job(scale, arms, (arm, scale.lrs[0], scale.seeds[0]), "")[1])
        with torch.device("meta"):
            model = make_model(dataclasses.replace(cfg.model, vocab_size=padded_vocab(vocab_size, cfg.vocab_multiple)))
        out[arm] = (model.num_params(), model.num_params(active=True))
    return out


# %%
params = arm_params(Scale(), vocab_size=66)  # Tiny Shakespeare: 65 characters + end-of-text
for arm, (n, _) in params.items():
    print(f"{arm:>15}: {n:,} parameters ({n / params[BASELINE][0] - 1:+.2%} vs gpt2)")
    assert abs(n / params[BASELINE][0] - 1) < 0.01, arm


# %% [markdown]
# ## The runner
#
# A run is finished when its newest checkpoint is at `max_steps` and its `metrics.jsonl` holds
# the evaluation of that step; then the runner skips it. A run with checkpoints but not finished
# (killed, or stopped by a signal) is continued with `resume`, which the trainer makes bitwise
# identical to an uninterrupted run (chapter 9). A runner holds an operating-system lock on the
# run's folder while it trains it (`folder_lock`, appendix A), so two runners (two terminals, or
# `--workers 2`) never train the same run twice, and a runner that dies, however it dies, leaves
# no lock behind.

# %%
#| export
class RunError(CommandError):
    "A run that failed or stopped before its end; the message says where its output is."

def run_finished(run_dir, max_steps: int) -> bool:
    "Did the run in `run_dir` reach `max_steps` and evaluate there?"
    run_dir = Path(run_dir).expanduser()
    ck, metrics = checkpoints(run_dir), run_dir / "metrics.jsonl"
    if not ck or checkpoint_step(ck[-1]) < max_steps or not metrics.exists(): return False
    return any(m.get("step") == max_steps and "val_loss" in m for m in read_metrics(metrics))


# %% [markdown]
# `run_one` trains one run to its end: the config `make_config(preset, **settings)` in the folder
# `run_dir`. With `subprocess_=False` it calls the trainer in this process (what the toy run below
# uses: no start-up cost); otherwise it starts the same config as `python -m gpt2book.train` with
# `threads` threads, which is how the sweep runs several at once, and appends the trainer's output
# to the run's `train.log`. Before it trains, it adds the machine (CPU model and threads) to the
# run's `machine.json`: the same command on another CPU model gives other numbers (below), so every
# row of a results file says where it was made. After it, the session's wall-clock seconds go to the
# run's `wall.jsonl` (one line per session: a run killed and resumed has two), so a study can say
# what it cost.

# %%
#| export
def run_one(run_dir, settings: dict, preset: str = "cpu", threads: int = 1, subprocess_: bool = True,
            quiet: bool = True) -> str:
    "Train `make_config(preset, **settings)` in `run_dir` to its end unless it is finished or another runner holds it: 'done', 'skipped' or 'busy'."
    run_dir = Path(run_dir).expanduser()
    settings = {**settings, "out_dir": str(run_dir)}
    load_chapters()                                             # any chapter's variant can be an arm
    cfg = make_config(preset, **settings)                       # every setting checked before anything else
    if run_finished(run_dir, cfg.max_steps): return "skipped"
    with folder_lock(run_dir, blocking=False, name="runner.lock") as mine:
        if not mine: return "busy"
        if run_finished(run_dir, cfg.max_steps): return "skipped"   # finished while we looked
        resume = bool(checkpoints(run_dir))                      # killed or stopped before: continue it
        record_machine(run_dir, threads if subprocess_ else torch.get_num_threads())
        t0 = time.perf_counter()
        try:
            if subprocess_: _train_process(run_dir, preset, {**settings, "resume": resume}, threads, quiet)
            else: train(dataclasses.replace(cfg, resume=resume))
        finally:
            record_wall(run_dir, time.perf_counter() - t0)
    if not run_finished(run_dir, cfg.max_steps):
        raise RunError(f"run {run_dir} stopped before step {cfg.max_steps}; run it again to resume it")
    return "done"


# %%
#| export
def record_machine(run_dir: Path, threads: int) -> None:
    "Add this machine (CPU model, the run's threads) to run_dir/machine.json, the list of machines that trained the run."
    path = Path(run_dir) / "machine.json"
    seen = json.loads(path.read_text()) if path.exists() else []
    me = f"{cpu_name()}, {threads} thread{'s' if threads > 1 else ''}"
    if me not in seen: atomic_write_json(path, [*seen, me])

def record_wall(run_dir: Path, seconds: float) -> None:
    "Add one session's wall-clock seconds to run_dir/wall.jsonl (a run resumed twice has three lines)."
    path = Path(run_dir) / "wall.jsonl"
    old = path.read_text() if path.exists() else ""
    atomic_write_text(path, old + json.dumps({"wall_s": round(seconds, 1)}) + "\n")

def run_machine(run_dir) -> str:
    "The machines that trained the run in `run_dir`, joined by ' + ' ('' where none was recorded)."
    path = Path(run_dir).expanduser() / "machine.json"
    seen = json.loads(path.read_text()) if path.exists() else []
    if isinstance(seen, dict):          # the form chapter 13's first study script wrote: one machine
        seen = [f"{seen['cpu']}, {seen['threads']} thread{'s' if seen['threads'] > 1 else ''}"]
    return " + ".join(seen)

def run_record(run_dir) -> dict:
    "{'machine': what trained the run, 'wall_s': its wall-clock seconds in all (None: not recorded)}."
    path = Path(run_dir).expanduser() / "wall.jsonl"
    wall = sum(json.loads(l)["wall_s"] for l in path.read_text().splitlines()) if path.exists() else None
    return {"machine": run_machine(run_dir), "wall_s": None if wall is None else round(wall, 1)}

def _train_process(run_dir: Path, preset: str, settings: dict, threads: int, quiet: bool):
    "`python -m gpt2book.train` with `settings` and OMP_NUM_THREADS=threads; with `quiet`, its output goes to train.log."
    log = run_dir / "train.log"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with (open(log, "a") if quiet else contextlib.nullcontext()) as out:
        r = subprocess.run([sys.executable, "-m", "gpt2book.train", *command_line(preset, settings)], env=env,
                           stdout=out, stderr=subprocess.STDOUT if quiet else None)
    if r.returncode != 0:
        last = ([l for l in log.read_text().splitlines() if l.strip()] or [""])[-1] if quiet else ""
        where = f"its output is in {log}" if quiet else "its output is above"
        raise RunError(f"run {run_dir} failed (exit {r.returncode}{': ' + last if last else ''}); {where}")


# %% [markdown]
# `run_all` trains a list of runs, `workers` at a time, each with its share of the cores. It checks
# every run's settings before it starts any; a run that fails (a diverging learning rate) is
# reported and does not stop the others; a run another runner holds is waited for, then found
# finished (or taken over, if that runner died).

# %%
#| export
def run_all(jobs: list, preset: str = "cpu", workers: int = 2, subprocess_: bool = True, threads: int | None = None) -> dict:
    """Train `jobs`, a list of (run_dir, settings), `workers` at a time, each with `threads` threads (default: its share
    of the cores); wait for the ones another runner holds. Returns {run_dir: 'done' | 'skipped' | 'failed: why'}."""
    load_chapters()                                             # any chapter's variant can be an arm
    for run_dir, settings in jobs: make_config(preset, **{**settings, "out_dir": str(run_dir)})   # refuse early
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    threads = threads or max(1, cores // workers)
    def one(job):
        try: return run_one(*job, preset, threads, subprocess_)
        except CommandError as e: return f"failed: {e}"        # RunError, or the trainer's TrainError in-process
    out, todo = {}, list(jobs)
    while todo:
        if workers == 1 or not subprocess_:
            status = [one(job) for job in todo]
        else:
            with ThreadPoolExecutor(workers) as ex: status = list(ex.map(one, todo))
        for (run_dir, _), st in zip(todo, status): print(f"{Path(run_dir).name}: {st}", flush=True)
        out.update({run_dir: st for (run_dir, _), st in zip(todo, status) if st != "busy"})
        todo = [job for job, st in zip(todo, status) if st == "busy"]
        if todo: time.sleep(2)
    return out


# %% [markdown]
# ## Collecting the results
#
# `collect` reads every evaluation of the finished runs among some run folders (an unfinished or
# failed run is not a result). An experiment's rows name the run by its arm, learning rate and seed
# rather than its folder: arm, learning rate, seed, step, validation loss, and the machine that
# trained it. The results file is written atomically (appendix A), so a half-written results file
# never exists.

# %%
#| export
RESULT_FIELDS = ("arm", "lr", "seed", "step", "val_loss", "machine")

def collect(run_dirs) -> list[dict]:
    "One dict per evaluation of each finished run in `run_dirs`: run_dir (as given), step, val_loss and whatever else it evaluated."
    rows = []
    for given in run_dirs:
        run_dir = Path(given).expanduser()
        if not (run_dir / "config.json").exists(): continue
        if not run_finished(run_dir, json.loads((run_dir / "config.json").read_text())["max_steps"]):
            continue                                      # unfinished, or failed: not a result
        rows += [{"run_dir": given, **m} for m in read_metrics(run_dir / "metrics.jsonl") if "val_loss" in m]
    return rows

def arm_rows(out_root, runs) -> list[dict]:
    "Rows (RESULT_FIELDS) of every evaluation of the finished runs among `runs`, a list of (arm, lr, seed)."
    where = {Path(out_root) / run_name(*run): run for run in runs}
    return [dict(zip(RESULT_FIELDS, (*where[m["run_dir"]], m["step"], m["val_loss"], run_machine(m["run_dir"]))))
            for m in collect(where)]


# %%
#| export
def write_results(rows, path, fields=RESULT_FIELDS):
    "Write `rows` as CSV to `path`, atomically."
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader(); w.writerows(rows)
    atomic_write_text(path, buf.getvalue())

def read_results(path) -> list[dict]:
    "The rows of a results CSV, with numbers parsed; a CommandError if `path` is not one."
    try:
        with open(path, newline="") as f:
            return [dict(r, lr=float(r["lr"]), seed=int(r["seed"]), step=int(r["step"]), val_loss=float(r["val_loss"]),
                         machine=r.get("machine") or "") for r in csv.DictReader(f)]
    except (KeyError, ValueError, TypeError) as e:      # a column missing, or not a number
        raise CommandError(f"{path} is not a results file (a CSV of {', '.join(RESULT_FIELDS)}): "
                           f"{type(e).__name__}: {str(e)[:80]}") from None

def merge_results(path, rows) -> list[dict]:
    "Put `rows` into the results file `path` (made if missing): they replace the rows of the same runs, the others stay."
    run = lambda r: (r["arm"], r["lr"], r["seed"])
    new = {run(r) for r in rows}
    old = [r for r in read_results(path) if run(r) not in new] if Path(path).exists() else []
    order = {arm: i for i, arm in enumerate(dict.fromkeys(r["arm"] for r in old + rows))}
    merged = sorted(old + list(rows), key=lambda r: order[r["arm"]])      # stable: each arm's runs stay in order
    write_results(merged, path)
    return merged


# %% [markdown]
# ## The sweep
#
# Phase 1 trains every arm at every learning rate with the first seed. Each arm's best learning
# rate is the one with the lowest final validation loss; if that is the largest or the smallest rate
# tried, the best is not known to be inside the sweep, and phase 1 goes on with the next rate out
# (twice or half the edge) for that arm until it is. Phase 2 trains the other seeds at the best
# rate, and the experiment's `MORE_SEEDS` of an arm there too. The rows go into the results file
# with `merge_results`: a sweep of some of the arms (`--arms`) replaces their rows and keeps the
# others'. (Picking the rate on seed 1 and then averaging seed 1 in, favours every arm a little, the
# same way for each; the other seeds are untouched by the choice.)
#
# Each arm's best rate is `best_lrs` of [part (a)](10a_ablation_stats.ipynb).

# %% [markdown]
# With it, the sweep: `train_runs` gives `run_all` the jobs of a list of runs and answers by
# run, and `sweep` is the two phases.

# %%
#| export
def train_runs(scale: Scale, arms: dict, runs: list, out_root, workers: int = 2, subprocess_: bool = True,
               threads: int | None = None) -> dict:
    "`run_all` over `runs`, a list of (arm, lr, seed) of `arms`: {run: status}."
    jobs = {run: run_job(scale, arms, run, out_root) for run in runs}
    status = run_all(list(jobs.values()), scale.preset, workers, subprocess_, threads)
    return {run: status[job[0]] for run, job in jobs.items()}

def _widen(lrs: dict, best: dict) -> bool:
    "Add the next rate out for every arm whose best rate is at the edge of its sweep; whether any was added."
    wider = False
    for arm, tried in lrs.items():
        if arm not in best: raise RunError(f"every learning rate of arm {arm} failed: see the logs of its runs")
        if len(tried) > 1 and best[arm] in (tried[0], tried[-1]):       # at an edge: go one step further
            lrs[arm] = sorted([*tried, best[arm] * (2 if best[arm] == tried[-1] else 0.5)])
            wider = True
    return wider


# %%
#| export
def sweep(arms: dict, scale: Scale | None = None, out_root="out/runs", results=None, workers: int = 2,
          subprocess_: bool = True, more_seeds: dict | None = None, threads: int | None = None) -> list[dict]:
    "Learning rates (phase 1, widened until each arm's best is inside), then seeds at each best rate; merge into `results`."
    scale, train = scale or Scale(), lambda runs: train_runs(scale, arms, runs, out_root, workers, subprocess_, threads)
    lrs, status = {arm: sorted(scale.lrs) for arm in arms}, {}
    while True:                                            # phase 1
        phase1 = [(arm, lr, scale.seeds[0]) for lr in sorted({l for v in lrs.values() for l in v})
                  for arm in arms if lr in lrs[arm]]
        status.update(train(phase1))
        best = best_lrs(arm_rows(out_root, phase1))       # over finished runs; a failed rate bounds the sweep
        if not _widen(lrs, best): break
    phase2 = [(arm, best[arm], seed) for seed in scale.seeds[1:] for arm in arms]
    phase2 += [(arm, best[arm], seed) for arm, seeds in (more_seeds or {}).items() if arm in arms for seed in seeds]
    status.update(train(phase2))
    failed = {run_name(*r): st for r, st in status.items() if r in phase2 and st.startswith("failed")}
    if failed: raise RunError(f"runs at the chosen learning rates failed: {failed}")
    rows = sorted(arm_rows(out_root, phase1 + phase2), key=lambda r: list(arms).index(r["arm"]))   # arm by arm
    return merge_results(results, rows) if results else rows


# %% [markdown]
# ### A toy run of the runner, in seconds
#
# The same code at a scale that runs in seconds: two arms, one layer 16 wide, 20 steps, two learning
# rates and two seeds, in this process. It must write a row per evaluation, skip finished runs when run
# again, and continue an unfinished run from its checkpoint to the same numbers as an uninterrupted
# one.

# %%
tmp = Path(tempfile.mkdtemp())
data_dir = prepare("shakespeare_char", out_dir=tmp / "shakespeare_char", progress=False)
toy = Scale(lrs=(1e-3, 3e-3), seeds=(1, 2), overrides=dict(
    data_dir=str(data_dir), n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_steps=20, warmup_steps=2,
    eval_interval=10, eval_iters=2, checkpoint_interval=10, log_interval=10, keep_checkpoints=2,
    sample_tokens=0, device="cpu"))
toy_arms = {k: ABLATION[k] for k in ("gpt2", "swiglu-rmsnorm")}
rows = sweep(toy_arms, toy, tmp / "runs", tmp / "toy.csv", workers=1, subprocess_=False)
n_runs = len(final_losses(rows))
# phase 1: 2 arms x at least 2 lrs (more if a best rate sat at an edge); phase 2: 2 arms x 1 more seed
assert n_runs >= 2 * 2 + 2 and len(rows) == 3 * n_runs    # 3 evaluations each (steps 0, 10, 20)
for arm, lr in best_lrs(rows).items():                     # every best rate is inside its sweep
    tried = sorted({r["lr"] for r in rows if r["arm"] == arm and r["seed"] == 1})
    assert tried[0] < lr < tried[-1], (arm, lr, tried)
test_eq(read_results(tmp / "toy.csv"), rows)
test_eq(sorted({r["step"] for r in rows}), [0, 10, 20])

# %% [markdown]
# Run again, everything is there and nothing trains; a run whose newest checkpoint is at step 10
# (as if it had been killed right after saving it) is continued from there to the very numbers of
# the uninterrupted run.

# %%
job = run_job(toy, toy_arms, ("gpt2", 1e-3, 1), tmp / "runs")
test_eq(run_one(*job, subprocess_=False), "skipped")
test_eq(sweep(toy_arms, toy, tmp / "runs", workers=1, subprocess_=False), rows)   # nothing trains
cut = tmp / "cut" / job[0].name
cut.mkdir(parents=True)
for f in ("ckpt_0000010.pt", "config.json", "metrics.jsonl"): (cut / f).write_bytes((job[0] / f).read_bytes())
assert not run_finished(cut, 20)
test_eq(run_one(cut, job[1], subprocess_=False), "done")
test_eq([(m["step"], m["val_loss"]) for m in collect([cut])], [(m["step"], m["val_loss"]) for m in collect([job[0]])])

# %% [markdown]
# A real kill of a training process, or two runners racing for the same runs, cannot be staged
# cleanly inside a notebook cell, so the test suite does them for real
# (`tests/test_experiments.py`): it SIGKILLs a training subprocess after its first checkpoint,
# hands the run to the runner, and checks that the resumed run's rows equal an uninterrupted run's,
# bit for bit; and it starts two sweeps at once over folders holding stale lock files.

# %% [markdown]
# ## The results
#
# The sweep ran as one command on this book's build machine (2 CPU cores, an Intel Xeon, one thread
# per run), and wrote `nbs/data/ablation.csv`: one row per evaluation of each run, with the machine
# that made it. This chapter only reads that file; rerunning the chapter trains nothing.
#
# ```bash
# python -m gpt2book.experiments sweep --experiment ablation --workers 2     # 27 minutes here, on 2 cores
# python -m gpt2book.experiments run --experiment ablation --arm swiglu --lr 0.004 --seed 1338   # one run again, alone
# ```
#
# RMSNorm's difference from GPT-2 came out under 0.02 nats with three seeds, so both got two more
# seeds at their chosen rate (`MORE_SEEDS`; a new sweep runs them too). They were trained later, on a
# second machine (an AMD EPYC, one thread per run, about 3 minutes a run beside other work), each
# with `run ... --results`, which puts a run's rows into the results file:
#
# ```bash
# for arm in gpt2 rmsnorm; do for seed in 1340 1341; do
#   python -m gpt2book.experiments run --experiment ablation --arm $arm --lr 0.004 --seed $seed \
#     --results nbs/data/ablation.csv
# done; done
# ```
#
# `bench/reproduce_row.py` does the second command of the first block in a temporary folder and
# compares the rows it prints with the file's; its records are below, one from each machine.

# %%
results = read_results("data/ablation.csv")
print(f"{len(results)} rows, {len(final_losses(results))} runs")
best = best_lrs(results)
finals = final_losses(results)
for arm, lr in best.items():
    tried = sorted({l for (a, l, s) in finals if a == arm})
    assert set(Scale().lrs) <= set(tried), f"{arm}: the sweep is incomplete"
    assert tried[0] < lr < tried[-1], f"{arm}'s best rate {lr} is at the edge of the rates tried: widen the sweep"
    want = len(Scale().seeds) + len(MORE_SEEDS["ablation"].get(arm, ()))
    assert sum(1 for (a, l, s) in finals if (a, l) == (arm, lr)) == want, f"{arm}: seeds missing"
best

# %% [markdown]
# Is a row of that file what the command makes? The record of `bench/reproduce_row.py`:

# %%
reps = {f: json.loads(Path(f"data/{f}").read_text()) for f in ("reproduce_ablation_row.json", "reproduce_ablation_row_amd.json")}
for f, rep in reps.items():
    print(f"{rep['command']} on {rep['machine']['cpu']}\n-> {rep['bitwise_equal']} of {rep['rows']} rows bit for bit equal to "
          f"{rep['results_file']} (max |difference| {rep['max_abs_diff']:.2g}; {rep['wall_s']:.0f} s)")
rep = reps["reproduce_ablation_row.json"]
assert rep["bitwise_equal"] == rep["rows"] > 0 and rep["machine"]["cpu"].startswith("Intel")  # recorded result
amd = reps["reproduce_ablation_row_amd.json"]
assert amd["machine"]["cpu"].startswith("AMD") and amd["bitwise_equal"] < amd["rows"]           # recorded result

# %% [markdown]
# ### The learning-rate sweep
#
# Each arm's final loss against the learning rate (seed 1337). An arm compared at another arm's
# best rate can look worse than it is: this is the picture that the seed project's single rate
# could not show.

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for arm in ABLATION:
    pts = sorted((lr, v) for (a, lr, s), v in finals.items() if a == arm and s == Scale().seeds[0])
    ax.plot(*zip(*pts), "o-", label=arm)
ax.set_xscale("log"); ax.set_xlabel("peak learning rate"); ax.set_ylabel("final val loss")
ax.set_title("learning-rate sweep (seed 1337)"); ax.legend(); plt.tight_layout(); plt.show()

# %% [markdown]
# ### Validation loss of the four arms
#
# Mean over the seeds (3, or 5) at each arm's best learning rate, with the 95% band, drawn by
# `plot_arms` of [part (b)](10b_ablation_plots.ipynb):

# %%
plot_arms(results)
plt.show()

# %% [markdown]
# The README shows this figure; `python -m gpt2book.experiments plot --experiment ablation` writes it to
# `images/val-loss-gpt2-swiglu-rmsnorm.png` from the results file (the sweep does too when it ends).
#
# ### The table

# %%
display(Markdown(results_table(results, ARM_NAMES, params)))
print(machines_note([r for r in results if r["lr"] == best[r["arm"]]]))

# %%
tab = {r["arm"]: r for r in summary(results)}
at = lambda arm, lr: finals[(arm, lr, Scale().seeds[0])]
lead_1e3, lead_best = at("gpt2", 1e-3) - at("swiglu", 1e-3), -tab["swiglu"]["diff"]
print(f"SwiGLU's lead at lr 1e-3 (seed 1337): {lead_1e3:.3f}; at each arm's best rate (all seeds): {lead_best:.3f} "
      f"-> {1 - lead_best / lead_1e3:.0%} of the lead at 1e-3 came from the rate")
print("swiglu-rmsnorm at 4e-3 vs 8e-3 (seed 1337):", round(at("swiglu-rmsnorm", 4e-3), 4), round(at("swiglu-rmsnorm", 8e-3), 4))
# recorded result: the statements of the next section, checked against the committed file
assert tab["swiglu"]["diff_high"] < 0                                  # SwiGLU: better, beyond the noise
assert tab["rmsnorm"]["diff_low"] < 0 < tab["rmsnorm"]["diff_high"]    # RMSNorm: within the noise
assert tab["swiglu-rmsnorm"]["diff_low"] < 0 < tab["swiglu-rmsnorm"]["diff_high"]  # both: within the (wide) noise
assert 1.1 < tab["swiglu"]["speedup"] < 1.3 and lead_1e3 > 2 * lead_best
for arm in ("swiglu", "swiglu-rmsnorm"):      # how far from annealed each curve is where it crosses GPT-2's final loss
    r = tab[arm]
    at_cross = get_lr(round(r["steps_to_baseline"]), r["lr"], r["lr"] / 10, 100, 2000)
    print(f"{arm}: the rate at step {r['steps_to_baseline']:.0f} is {at_cross / r['lr']:.0%} of its peak (its floor: 10%)")

# %% [markdown]
# ## What the data show
#
# - **The learning rate first.** Three arms want $4 \cdot 10^{-3}$, four times nanoGPT's rate for
#   its character model; SwiGLU + RMSNorm edges ahead at $8 \cdot 10^{-3}$ (1.695 against 1.699 at
#   $4 \cdot 10^{-3}$, one seed each: a flat top). At a single rate of $10^{-3}$ (the seed project's
#   situation: one rate for all) SwiGLU led the GELU MLP by about 0.13 (one seed); at each arm's best
#   rate the lead is about 0.04. Two thirds of the apparent gain were the rate, not the architecture:
#   SwiGLU copes better with a rate that is too low for both.
# - **SwiGLU helps, beyond the noise.** At the best rate the GELU MLP ends at 1.728 [1.714, 1.742]
#   (5 seeds) and SwiGLU at 1.686 [1.671, 1.701] (3 seeds), a difference of $-0.042$ with a 95%
#   interval of $[-0.057, -0.027]$, which excludes zero. With the same parameter count (SwiGLU +0.5% here).
# - **RMSNorm does nothing measurable here.** LayerNorm vs RMSNorm with the MLP, 5 seeds each:
#   $-0.008$, interval $[-0.023, +0.006]$, a tie (with 3 seeds it was $-0.010$ $[-0.021, +0.002]$).
#   The two extra seeds of each came from the second machine and spread more than the first three
#   (GPT-2: 1.714 and 1.746 against 1.726 to 1.729): three seeds had under-estimated the noise, and
#   the interval of GPT-2's own mean widened from $\pm 0.003$ to $\pm 0.014$. RMSNorm's case is speed
#   (one reduction instead of two), and that does not show here either: PyTorch's fused `F.rms_norm`
#   is no faster than `F.layer_norm` on the Intel machine (a training step of 48 against 44 ms with
#   one thread, `bench/arms_speed.py`, chapter 12).
# - **Both together are not better than SwiGLU alone**: $-0.031$, interval $[-0.072, +0.010]$. The
#   interval is wide because the three seeds at $8 \cdot 10^{-3}$ spread from 1.679 to 1.718: a rate
#   near the edge of stability buys a little on average and costs a lot of seed-to-seed variance.
#   Three seeds cannot separate it from the baseline, let alone from SwiGLU alone.
# - **The seed project's metric, labelled for what it is**: SwiGLU's 2000-step curves reach the
#   baseline's final loss at step 1684 [1565, 1804] on average over its seeds (1.19× [1.11, 1.28]
#   fewer steps), SwiGLU + RMSNorm's at 1764 [1620, 1908] (1.13× [1.05, 1.23]); one of RMSNorm's
#   five curves never gets there. These are read off runs scheduled for 2000 steps, where the rate
#   is still 13-16% of its peak against a floor of 10% (printed above), not measured on runs annealed
#   to end there; where annealing helps, such runs would get there sooner, so the counts are
#   upper bounds on the steps and the speed-ups lower bounds, near the truth because the crossings
#   are late in the schedule. The seed project claimed 50k/30k = 1.67x, read at peak learning rate
#   with one seed and a confounded comparison. At this scale the number is about 1.1-1.3x, and all
#   of it comes from SwiGLU.
# - **Rows from two machines.** The first three seeds of every arm were made on an Intel Xeon, the
#   two more of GPT-2 and RMSNorm on an AMD EPYC. The same command is bit for bit the same run only on
#   the same CPU model with the same thread count: run on the AMD machine, the reproduced row agrees
#   with the Intel one at 1 of its 21 evaluations and differs by up to 0.025 elsewhere (the second
#   record above), as much as two seeds differ. The comparison stays balanced (both arms got their
#   extra seeds there), but a machine effect cannot be told from a seed effect with two seeds per
#   machine.
# - **What this does not show**: a 0.8M-parameter character model on 1M characters is not GPT-2
#   small on OpenWebText. Differences between FFNs are known to change with scale and data, and
#   three seeds give wide intervals. Chapter 13 asks the question again across model sizes; the
#   commands below run the same design at 124M.

# %% [markdown]
# ## Full scale: the 124M 2x2 on 8 GPUs
#
# The same design at GPT-2 small on OpenWebText. Each arm is the trainer's `gpt2-124m` preset with
# the arm's `--norm` and `--ffn`; a learning-rate sweep first, then seeds at each arm's best rate.
# Each run of 10B tokens (19,073 steps of 524,288 tokens) anneals to its end. wandb groups the runs
# of one arm together:
#
# ```bash
# python data/prepare.py openwebtext          # once: ~9B tokens of shards in data/openwebtext
# for arm in "layernorm mlp" "rmsnorm mlp" "layernorm swiglu" "rmsnorm swiglu"; do
#   set -- $arm
#   for lr in 6e-4 1.2e-3 2.4e-3; do
#     WANDB_RUN_GROUP="$1-$2" torchrun --standalone --nproc_per_node=8 -m gpt2book.train \
#       --config gpt2-124m --norm=$1 --ffn=$2 --learning_rate=$lr --min_lr=$(python -c "print($lr/10)") \
#       --seed=1337 --wandb=true --out_dir=out/abl124m/$1-$2_lr${lr}_s1337
#   done
# done
# # then, at each arm's best rate, seeds 1338 and 1339 the same way
# ```
#
# The sweep runs are full length on purpose: a shortened schedule anneals earlier and favours a
# different rate, and the whole point is that each arm ends annealed at its own best rate. (If an
# arm's best rate lands at the edge of the sweep, as at the CPU scale above before we widened it,
# add the next rate.) What it costs is read off the trainer's measured speed (chapter 9's
# benchmark on one H100):

# %%
b = json.loads(Path("train/bench_gpu_h100_gpt2-124m.json").read_text())
tps = b["tokens_per_s"]
tokens = 19_073 * 524_288  # one run: 10B tokens
gpu_h = tokens / tps / 3600  # GPU hours at the measured one-GPU speed (8 GPUs: an eighth of the wall time)
runs = 4 * 3 + 4 * 2
print(f"measured: {tps:,.0f} tokens/s on one {b['device_name']} ({b['mfu']:.1%} MFU, {b['ms_per_step']:.0f} ms/step)")
print(f"one 10B-token run: {gpu_h:.1f} GPU hours ({gpu_h / 8:.2f} h on 8 GPUs); "
      f"the {runs}-run 2x2 (3 rates x 4 arms, then 2 more seeds x 4 arms): {runs * gpu_h:,.0f} GPU hours")

# %% [markdown]
# ## The command line
#
# `python -m gpt2book.experiments` has three sub-commands, each with its settings (appendix B's
# `settings_parser`; one `--snake_case` option per field). `sweep --experiment NAME` runs (or
# continues) one of the book's experiments (`ablation`, `architectures`), or some of its arms
# (`--arms`), puts their rows into its results file, draws its figure and prints the summary
# table. `run --experiment NAME --arm ARM --lr LR --seed SEED` trains one run of it and prints its
# rows, which reproduces any row of a results file (on the same CPU model), and with `--results`
# puts them into that file. `plot --experiment NAME` redraws the figure and the table from the
# committed results. The run folders are where `--out` says (relative to the current folder, as the
# trainer's `out/`); the results file and the figure the chapters read are the book's own, in its
# repository wherever the command is started, unless `--results` and `--plot` name others.
#
# Making the settings checks everything the command line can tell: an experiment or an arm that
# is not one, a count out of range, every setting of the run (chapter 9's `make_config`), a file to
# read that is not there, a folder to write into that is not there. Each is a usage error (one line,
# exit status 2) before anything runs. A run that fails, or a results file that is not one, is one
# line and status 1.

# %%
#| export
PROG = "python -m gpt2book.experiments"
EXAMPLES = f"""examples:
  {PROG} sweep --experiment ablation --workers 2
  {PROG} sweep --experiment architectures --arms nope --workers 1 --threads 1
  {PROG} run --experiment architectures --arm rope --lr 0.004 --seed 1338
  {PROG} run --experiment ablation --arm gpt2 --lr 0.004 --seed 1340 --results nbs/data/ablation.csv
  {PROG} plot --experiment ablation"""

@dataclass(kw_only=True)
class ExperimentSettings:
    "Which experiment; what every sub-command takes."
    experiment: str = setting(dataclasses.MISSING, f"one of the book's experiments ({', '.join(EXPERIMENTS)})",
                              choices=EXPERIMENTS)
    def __post_init__(self): check_settings(self)

    def check_folder(self, name: str) -> None:
        "SettingError if the file that setting `name` names is to go into a folder that is not there."
        if (v := getattr(self, name)) and not (folder := Path(v).expanduser().parent).is_dir():
            raise SettingError(f"--{name}={v}: no such folder {folder}; make it, or name another file")


# %% [markdown]
# The settings of each sub-command: `sweep`'s arms must be the experiment's, `run`'s arm too, and
# `run` builds its run's config (which checks every setting of the trainer); `plot` needs a results
# file that is there.

# %%
#| export
@dataclass(kw_only=True)
class SweepSettings(ExperimentSettings):
    "`sweep`: run or continue a whole experiment (or some of its arms), then write its results CSV and figure."
    workers: int = setting(2, "runs side by side", low=1)
    threads: int = setting(0, "threads of each run (0: the cores shared among the workers)", low=0)
    arms: tuple[str, ...] = setting((), "only these arms (none: all); the results file keeps the others' rows")
    out: str = setting("out/runs", "the folder of the runs")
    results: str = setting("", "the results CSV to write into ('': the experiment's, nbs/data/NAME.csv in the book)")
    plot: str = setting("", "the figure to write ('': the experiment's, in the book's images/)")
    def __post_init__(self):
        super().__post_init__()
        arms = EXPERIMENTS[self.experiment]
        if unknown := [a for a in self.arms if a not in arms]:
            raise SettingError(f"--arms: {', '.join(map(repr, unknown))} not an arm of {self.experiment}: {', '.join(arms)}")
        for name in ("results", "plot"): self.check_folder(name)

@dataclass(kw_only=True)
class RunSettings(ExperimentSettings):
    "`run`: train (or continue) one run of an experiment and print its rows."
    arm: str = setting(dataclasses.MISSING, "the arm (one of the experiment's)")
    lr: float = setting(dataclasses.MISSING, "the peak learning rate")
    seed: int = setting(dataclasses.MISSING, "the seed")
    out: str = setting("out/runs", "the folder of the runs")
    threads: int = setting(1, "threads of the run (the sweeps on 2 cores used 1 per run; the same count on the same "
                              "CPU model reproduces their rows bit for bit)", low=1)
    results: str = setting("", "also put the run's rows into this results CSV, replacing the run's rows there ('': no)")
    def __post_init__(self):
        super().__post_init__()
        if self.arm not in (arms := EXPERIMENTS[self.experiment]):
            raise SettingError(f"--arm: {self.arm!r} is not an arm of {self.experiment}: {', '.join(arms)}")
        self.check_folder("results")
        load_chapters()                                         # any chapter's variant can be an arm
        run_dir, settings = self.job()
        make_config(Scale().preset, **settings, out_dir=str(run_dir))   # every setting of the run, checked now

    def job(self) -> tuple[Path, dict]:
        "(run folder, settings) of the run, as `run_job` makes them."
        return run_job(Scale(), EXPERIMENTS[self.experiment], (self.arm, self.lr, self.seed), Path(self.out).expanduser())

@dataclass(kw_only=True)
class PlotSettings(ExperimentSettings):
    "`plot`: draw the figure and print the table from a results CSV."
    results: str = setting("", "the results CSV to read ('': the experiment's, nbs/data/NAME.csv in the book)")
    plot: str = setting("", "the figure to write ('': the experiment's, in the book's images/)")
    def __post_init__(self):
        super().__post_init__()
        if self.results and not Path(self.results).expanduser().is_file():
            raise SettingError(f"--results={self.results}: no such file; run `{PROG} sweep --experiment "
                               f"{self.experiment}` first, or name a results file")
        self.check_folder("plot")

COMMANDS = {"sweep": (SweepSettings, "run or continue a whole experiment, then write its results CSV and figure"),
            "run": (RunSettings, "train (or continue) one run of an experiment and print its rows"),
            "plot": (PlotSettings, "draw the figure and print the table from a results CSV")}

def parser() -> Parser:
    "The command line of `python -m gpt2book.experiments`, made from its settings."
    return settings_parser(PROG, COMMANDS, "Run the book's experiments: learning-rate sweeps and seeds of named arms.",
                           EXAMPLES)


# %% [markdown]
# Each sub-command is then a small function of its settings. The files a sweep writes and a plot
# reads default to the book's own (appendix B's `book_path`).

# %%
#| export
def book_file(given: str, default: str) -> Path:
    "The file a setting names, or `default` (such as RESULTS['ablation']) in the book's repository."
    return Path(given).expanduser() if given else book_path(default)

def run_command(s: RunSettings) -> None:
    "`run`: train one run of an experiment (or find it finished) and print its rows as CSV."
    (run_dir, settings), preset = s.job(), Scale().preset
    print("python -m gpt2book.train " + " ".join(command_line(preset, {**settings, "out_dir": str(run_dir)})), flush=True)
    run_one(run_dir, settings, preset, threads=s.threads, quiet=False)
    rows = arm_rows(run_dir.parent, [(s.arm, s.lr, s.seed)])
    w = csv.DictWriter(sys.stdout, fieldnames=RESULT_FIELDS, lineterminator="\n"); w.writeheader(); w.writerows(rows)
    if s.results: merge_results(s.results, rows); print(f"wrote its rows into {s.results}")

def results_command(name: str, s: SweepSettings | PlotSettings) -> None:
    "`sweep` (run the experiment, write its results) or `plot` (read them); then the figure and the table."
    results, plot = book_file(s.results, RESULTS[s.experiment]), book_file(s.plot, PLOTS[s.experiment])
    if name == "sweep":
        arms = EXPERIMENTS[s.experiment]
        rows = sweep({a: arms[a] for a in s.arms or arms}, out_root=Path(s.out).expanduser(), results=results,
                     workers=s.workers, more_seeds=MORE_SEEDS.get(s.experiment), threads=s.threads or None)
    elif not results.exists():
        raise CommandError(f"no results file {results}: run `{PROG} sweep --experiment {s.experiment}` first")
    else: rows = read_results(results)
    if BASELINE not in {r["arm"] for r in rows}:
        raise CommandError(f"{results} holds no runs of the baseline arm {BASELINE}: it is not an experiment's results")
    from gpt2book.plots import plot_arms               # matplotlib: only for the figure
    plot_arms(rows, plot)
    print(f"wrote {plot}\n\n{results_table(rows, ARM_NAMES)}")

def main(argv: list[str] | None = None) -> None:
    "The `python -m gpt2book.experiments` command."
    load_chapters()                                             # any chapter's variant can be an arm
    name, s = parse_settings(parser(), COMMANDS, argv)          # a wrong setting: one line, exit status 2
    with user_errors(PROG, OSError):
        run_command(s) if name == "run" else results_command(name, s)


# %% [markdown]
# The commands' refusals, as a reader would meet them (each one line on stderr, and its exit
# status):

# %%
refusal = lambda argv: common_refusal(main, argv)        # appendix B: (exit status, the one line)

for argv in (["run", "--experiment=ablation", "--arm=rope", "--lr=1e-3", "--seed=1"],
             ["run", "--experiment=ablation", "--arm=gpt2", "--lr=nan", "--seed=1"],
             ["sweep", "--experiment=ablation", "--workers=0"],
             ["sweep", "--experiment=ablation", "--results=no/such/folder/ablation.csv"],
             ["plot", "--experiment=ablation", "--results=no/such/results.csv"],
             ["plot", "--experiment=ablation", "--results=data/bench_arms.json"]):
    print(*refusal(argv))
test_eq(refusal(["run", "--experiment=ablation", "--arm=rope", "--lr=1e-3", "--seed=1"])[0], 2)
assert "must be a finite number" in refusal(["run", "--experiment=ablation", "--arm=gpt2", "--lr=nan", "--seed=1"])[1]
test_eq(refusal(["plot", "--experiment=ablation", "--results=no/such/results.csv"])[0], 2)
test_eq(refusal(["plot", "--experiment=ablation", "--results=data/bench_arms.json"])[0], 1)
assert "is not a results file" in refusal(["plot", "--experiment=ablation", "--results=data/bench_arms.json"])[1]

# %%
#| export
#| eval: false
if __name__ == "__main__" and "ipykernel" not in sys.modules:  # a Jupyter kernel runs a notebook as __main__ too
    main()

# %%
shutil.rmtree(tmp)
