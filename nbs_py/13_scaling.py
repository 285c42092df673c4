# %% [markdown]
# # Scaling laws
#
# > How loss falls with model size and data, fitted on a laptop the way Chinchilla did it, tested on held-out larger runs, and the seed project's question asked again at every size.

# %%
#| default_exp scaling

# %%
#| export
import argparse
import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from gpt2book.experiments import (ABLATION, ARCHITECTURES, Scale, best_lrs, collect, final_losses, run_all, sweep,
                                  write_results)
from gpt2book.files import atomic_write, atomic_write_json
from gpt2book.train import config_from_args, make_model, read_metrics

# %%
from fastcore.test import test_close, test_eq, test_fail

# %% [markdown]
# ## The sweep
#
# Six model sizes, from 2 layers of width 32 to 6 layers of width 160 (75 times more parameters),
# each trained at five token budgets, from 250 to 4000 optimizer steps of 16 sequences of 64
# characters (0.26M to 4.1M tokens). Every run has its own cosine schedule, annealed to a tenth of
# its peak at its own last step, and is evaluated on the whole validation split.

# %%
#| export
SIZES = {  # name: (n_layer, n_head, n_embd)
    "L2C32": (2, 2, 32), "L2C48": (2, 3, 48), "L3C64": (3, 4, 64),
    "L4C96": (4, 4, 96), "L4C128": (4, 4, 128), "L6C160": (6, 5, 160),
}
BUDGETS = (250, 500, 1000, 2000, 4000)   # optimizer steps of batch_size x block_size = 1024 tokens
LR_BUDGET = 1000                         # the budget of the learning-rate sweeps
ARCHS = {"gpt2": ABLATION["gpt2"], "swiglu-rmsnorm": ABLATION["swiglu-rmsnorm"], "rope": ARCHITECTURES["rope"],
         "moe": dict(ffn="moe", n_expert=8, expert_top_k=2)}   # experts of width 4C / 2: the dense compute (chapter 12)
SCALE = Scale(preset="cpu", lrs=(1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2), seeds=(1337, 1338, 1339), lr_floor=0.1,
              overrides=dict(batch_size=16, block_size=64, eval_interval=250, eval_iters=108,   # 108 x 16 x 64: all of val
                             checkpoint_interval=250, log_interval=50, keep_checkpoints=1, sample_tokens=0,
                             device="cpu"))
NOISE_BUDGETS = (250, 500, 1000)         # the largest size is run with 3 seeds at these budgets
RESULTS, CURVES, FIT = "nbs/data/scaling.csv", "nbs/data/scaling_curves.csv", "nbs/data/scaling_fit.json"

def arm_name(arch, size, steps):
    "The arm of one (architecture, size, budget): `gpt2-L4C128-2000`."
    return f"{arch}-{size}-{steps}"

def scaling_arms(arch):
    "Every (size, budget) of `arch` as an arm of the experiment runner: trainer settings by name."
    if arch not in ARCHS: raise ValueError(f"unknown architecture {arch!r}; use one of {list(ARCHS)}")
    out = {}
    for size, (n_layer, n_head, n_embd) in SIZES.items():
        moe = {"expert_hidden": 4 * n_embd // ARCHS[arch]["expert_top_k"]} if ARCHS[arch].get("ffn") == "moe" else {}
        for steps in BUDGETS:
            out[arm_name(arch, size, steps)] = {**ARCHS[arch], **moe, "n_layer": n_layer, "n_head": n_head,
                                                "n_embd": n_embd, "max_steps": steps, "warmup_steps": steps // 20}
    return out


# %% [markdown]
# The learning rate is swept at both ends of the size range and interpolated between: for the
# smallest and the largest model, at 1000 steps, factors of two from $10^{-3}$ (widened until the
# best is inside the sweep, as in chapter 10); in between, the best rate is interpolated linearly in
# $\log N$, on a log scale (a power law in $N$ through the two measured optima).

# %%
#| export
def lr_rule(n_params: dict, best_small: float, best_large: float) -> dict:
    "{size: peak learning rate}: log-linear in log N between the best rates of the smallest and largest size."
    sizes = list(n_params)
    lo, hi = math.log(n_params[sizes[0]]), math.log(n_params[sizes[-1]])
    out = {}
    for size, n in n_params.items():
        t = (math.log(n) - lo) / (hi - lo)
        out[size] = float(f"{math.exp((1 - t) * math.log(best_small) + t * math.log(best_large)):.3g}")
    return out

def size_params(vocab_size: int = 66, arch: str = "gpt2") -> dict:
    "{size: (non-embedding parameters, active non-embedding parameters, all parameters)} of each size's model."
    out = {}
    for size in SIZES:
        args = [f"--{k}={v}" for k, v in {**SCALE.overrides, **scaling_arms(arch)[arm_name(arch, size, BUDGETS[0])]}.items()]
        m = make_model(config_from_args(args), vocab_size)
        out[size] = (m.num_params(non_embedding=True), m.num_params(non_embedding=True, active=True), m.num_params())
    return out


# %%
ps = size_params()
for size, (n, na, total) in ps.items(): print(f"{size:7s} N = {n:9,d} non-embedding ({total:9,d} in all)")
rule = lr_rule({s: v[0] for s, v in ps.items()}, 8e-3, 2e-3)
test_eq((rule["L2C32"], rule["L6C160"]), (8e-3, 2e-3))
assert 2e-3 < rule["L4C96"] < 8e-3
test_close(ps["L6C160"][0] / ps["L2C32"][0], 75, eps=10)          # the sizes span about 75x


# %% [markdown]
# `scaling_sweep` runs one architecture: the two learning-rate sweeps (with `sweep` of chapter 10,
# one seed), the rule, then the whole grid at the rule's rates, and two more seeds of the largest
# size at the three shortest budgets for the seed-to-seed noise. Runs are ordered longest first,
# so that two workers finish together. Every run is a plain trainer command under `out/scaling/`,
# resumable and locked like the runs of chapter 10.

# %%
#| export
def _cost(arm, arms):
    o = arms[arm]
    return o["n_layer"] * o["n_embd"] ** 2 * o["max_steps"]

def scaling_sweep(arch="gpt2", out_root="out/scaling", workers=2, scale=SCALE, subprocess_=True):
    "LR sweeps at both ends, the rule, the grid, and seeds for the noise; returns (runs, lrs) with runs a list of (arm, lr, seed)."
    arms, sizes = scaling_arms(arch), list(SIZES)
    ends = {arm_name(arch, s, LR_BUDGET): arms[arm_name(arch, s, LR_BUDGET)] for s in (sizes[0], sizes[-1])}
    lr_rows = sweep(ends, dataclasses.replace(scale, seeds=scale.seeds[:1]), out_root, workers=workers,
                    subprocess_=subprocess_)
    best = best_lrs(lr_rows)
    n = {s: v[1] for s, v in size_params(arch=arch).items()}     # active non-embedding parameters
    lrs = lr_rule(n, best[arm_name(arch, sizes[0], LR_BUDGET)], best[arm_name(arch, sizes[-1], LR_BUDGET)])
    grid = [(arm_name(arch, s, b), lrs[s], scale.seeds[0]) for s in sizes for b in BUDGETS]
    noise = [(arm_name(arch, sizes[-1], b), lrs[sizes[-1]], seed) for b in NOISE_BUDGETS for seed in scale.seeds[1:]]
    todo = sorted(grid + noise, key=lambda r: -_cost(r[0], arms))
    run_all(scale, todo, out_root, arms, workers, subprocess_)
    sweep_runs = sorted({(r["arm"], r["lr"], r["seed"]) for r in lr_rows})
    return sweep_runs + grid + noise, lrs


# %% [markdown]
# ## The results files
#
# `scaling.csv` has one row per run: the architecture, the size and its parameter counts (without
# the position table: `n_params`; for a mixture of experts also the active count), the tokens of the
# schedule, the seed, the peak learning rate, the role of the run (`lr-sweep`, `grid`, `noise`) and
# its final, annealed validation loss. `scaling_curves.csv` has every evaluation of every run, for
# the runs cut from a longer schedule.

# %%
#| export
RUN_FIELDS = ("arch", "size", "n_layer", "n_head", "n_embd", "n_params", "n_active", "n_total", "steps", "tokens",
              "seed", "lr", "role", "val_loss")
CURVE_FIELDS = ("arch", "size", "steps", "seed", "lr", "step", "tokens", "val_loss")

def scaling_rows(arch, runs, lrs, out_root="out/scaling"):
    "(one row per finished run, one row per evaluation) of `runs` (a list of (arm, lr, seed)) of `arch`; `lrs`: the rule's rates."
    arms, params = scaling_arms(arch), size_params(arch=arch)
    tokens_per_step = SCALE.overrides["batch_size"] * SCALE.overrides["block_size"]
    curves = collect(out_root, runs)
    finals = final_losses(curves)
    out, curve_rows = [], []
    for (arm, lr, seed) in runs:
        if (arm, lr, seed) not in finals: continue
        o = arms[arm]
        size = arm.split("-")[-2]
        role = "noise" if seed != SCALE.seeds[0] else "grid" if lr == lrs[size] else "lr-sweep"
        n, na, nt = params[size]
        out.append(dict(arch=arch, size=size, n_layer=o["n_layer"], n_head=o["n_head"], n_embd=o["n_embd"], n_params=n,
                        n_active=na, n_total=nt, steps=o["max_steps"], tokens=o["max_steps"] * tokens_per_step,
                        seed=seed, lr=lr, role=role, val_loss=finals[(arm, lr, seed)]))
    for r in curves:
        o = arms[r["arm"]]
        curve_rows.append(dict(arch=arch, size=r["arm"].split("-")[-2], steps=o["max_steps"], seed=r["seed"], lr=r["lr"],
                               step=r["step"], tokens=r["step"] * tokens_per_step, val_loss=r["val_loss"]))
    return out, curve_rows


def _merge(path, rows, fields, arch):
    "Rows of `path` for other architectures, then `rows` (this architecture's), written atomically."
    keep = []
    if Path(path).exists():
        with open(path, newline="") as f: keep = [r for r in csv.DictReader(f) if r["arch"] != arch]
    write_results(keep + rows, path, fields)


# %% [markdown]
# ## The command line
#
# `python -m gpt2book.scaling sweep --arch ARCH` runs (or continues) one architecture's sweep and
# writes its rows into `nbs/data/scaling.csv` and `scaling_curves.csv` (rows of other architectures
# are kept); `fit` fits the laws to the results file and writes `scaling_fit.json` and the plots.

# %%
#| export
def main(argv=None):
    "The `python -m gpt2book.scaling` command."
    p = argparse.ArgumentParser(prog="python -m gpt2book.scaling", description="Scaling-law sweeps and fits (chapter 13).",
                                epilog="examples:\n  python -m gpt2book.scaling sweep --arch gpt2 --workers 2\n"
                                       "  python -m gpt2book.scaling sweep --arch swiglu-rmsnorm",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("sweep", help="run or continue one architecture's sweep, then write its rows of the results files")
    a.add_argument("--arch", default="gpt2", choices=list(ARCHS))
    a.add_argument("--workers", type=int, default=2, help="runs side by side, each with cores/workers threads (default 2)")
    a.add_argument("--out", default="out/scaling", help="folder of the runs (default out/scaling)")
    a.add_argument("--results", default=RESULTS)
    a.add_argument("--curves", default=CURVES)
    args = p.parse_args(argv)
    runs, lrs = scaling_sweep(args.arch, args.out, args.workers)
    rows, curves = scaling_rows(args.arch, runs, lrs, args.out)
    _merge(args.results, rows, RUN_FIELDS, args.arch)
    _merge(args.curves, curves, CURVE_FIELDS, args.arch)
    print(f"{args.arch}: {len(rows)} runs; learning rates {lrs}; wrote {args.results} and {args.curves}")


# %%
#| export
#| eval: false
if __name__ == "__main__": main()
