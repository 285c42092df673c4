# %% [markdown]
# # Scaling laws
#
# > How loss falls with model size and data, fitted on a laptop the way Chinchilla did it, tested on held-out larger runs, and the seed project's question asked again at every size.

# %%
#| default_exp scaling

# %% [markdown]
# The seed project's third aim was "to study ... scaling laws". A **scaling law** says how the loss
# a model reaches depends on what is spent on it: its number of parameters $N$, the number of
# training tokens $D$, and so the training compute $C$. Such laws are why anyone dares to train a
# large model: the small runs, fitted, predict the big one, and they say how to split a compute
# budget between a bigger model and more data.
#
# - **Kaplan et al. 2020** (*Scaling Laws for Neural Language Models*) found clean power laws in each
#   quantity when the others are not the bottleneck, $L(N) \propto N^{-0.076}$, $L(D) \propto
#   D^{-0.095}$, $L(C) \propto C^{-0.050}$, and concluded that a bigger budget should go mostly to a
#   bigger model.
# - **Hoffmann et al. 2022** (*Training Compute-Optimal Large Language Models*, "Chinchilla")
#   showed that conclusion came partly from how the runs were made: Kaplan's runs shared one
#   learning-rate schedule length and were read before their schedule ended, so the smaller
#   budgets were never annealed. With every run annealed to its own budget, three approaches
#   (1: the envelope of training curves; 2: **IsoFLOP profiles**, the loss against $N$ at fixed
#   compute; 3: a **parametric fit** of every run) agree that $N$ and $D$ should grow about equally
#   with compute, $N^* \propto C^{0.5}$, $D^* \propto C^{0.5}$: about **20 tokens per parameter**
#   at the optimum. Approach 3 fits
#
# $$L(N, D) = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}},$$
#
#   an irreducible loss $E$ (the entropy of the text) plus what a finite model and a finite data
#   set leave on the table; their fit gave $E = 1.69$, $A = 406.4$, $B = 410.7$, $\alpha = 0.34$,
#   $\beta = 0.28$.
# - **The compute**: training costs $C \approx 6ND$ FLOPs, the $6N$ per token of chapter 9 (forward
#   and backward through $N$ weights). Which $N$? Kaplan counted parameters without the embeddings,
#   Chinchilla with them. For GPT-2's 50,257-token vocabulary the token embedding is 38.6M of GPT-2
#   small's 124M, and for a small model it is most of the parameters while doing little of the
#   computation per token: counting it bends the small end of every curve. Our models read 66
#   characters, so the embedding is at most 1.2% of a model here and the choice hardly matters; we
#   use $N$ = parameters without the position table (`num_params(non_embedding=True)`, which keeps
#   the tied token embedding, as chapter 9's FLOPs count does), and for the compute the full count
#   of chapter 9, $C = (6N + 12LTC) \cdot D$, since at a context of 64 and these widths the
#   attention term is 8% to 30% of a token's FLOPs.
#
# This chapter fits both of Chinchilla's main approaches to runs that two CPU cores afford, tests
# the fit the way a scaling law must be tested (fitted without the largest model, it must predict
# it), and then asks the seed project's question (does SwiGLU + RMSNorm beat GPT-2?) at every size.

# %%
#| export
import argparse
import csv
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from gpt2book.experiments import (ABLATION, ARCHITECTURES, Scale, best_lrs, collect, final_losses, run_all, sweep,
                                  write_results)
from gpt2book.files import atomic_write, atomic_write_json
from gpt2book.train import config_from_args, flops_per_token, make_model

# %%
import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail

# %% [markdown]
# ## The sweep
#
# **Data.** The runs must not repeat their data much: Muennighoff et al. 2023 (*Scaling
# Data-Constrained Language Models*) found up to about 4 passes over the same data nearly as good
# as fresh data, and quickly worse beyond. Two CPU cores can afford models of up to ~2M parameters
# trained on a few million tokens, so the corpus is Tiny Shakespeare with the character tokenizer:
# its 1.0M training characters give 4.1M tokens in 4 passes, the longest budget here. (With
# GPT-2's tokenizer the same text is only 0.3M tokens.)
#
# **Sizes and budgets.** Six model sizes, from 2 layers of width 32 to 6 layers of width 160 (70
# times more parameters), each trained at five token budgets, from 250 to 4000 optimizer steps of
# 16 sequences of 64 characters (0.26M to 4.1M tokens). Every run has its own cosine schedule,
# annealed to a tenth of its peak at its own last step (Chinchilla's correction), and is evaluated
# on the whole validation split (108 batches of 16 x 64 characters).

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
# ## Approach 3: fitting $L(N, D)$
#
# Chinchilla fitted the five parameters by minimising the **Huber loss** of the residuals of the
# *log* loss,
#
# $$\min_{a, b, e, \alpha, \beta} \sum_{\text{runs } i} \mathrm{Huber}_\delta\Big(\mathrm{LSE}\big(a - \alpha \log N_i,\;
#   b - \beta \log D_i,\; e\big) - \log L_i\Big), \qquad A = e^a,\; B = e^b,\; E = e^e,$$
#
# with $\delta = 10^{-3}$ and L-BFGS started from a grid of initial values, keeping the best. The
# log-sum-exp is $\log(A/N^\alpha + B/D^\beta + E)$ written so that it stays finite; the log makes
# every run count by its relative error; the Huber loss, quadratic below $\delta$ and linear above,
# keeps a few outlying runs from pulling the fit. The gradient is short enough to write by hand:
# with $w_1, w_2, w_3$ the softmax weights of the three terms inside the log-sum-exp and $h_i$ the
# Huber loss's derivative at residual $i$ (the residual clipped to $\pm\delta$),
# $\partial/\partial a = \sum_i h_i w_{1i}$, $\partial/\partial \alpha = -\sum_i h_i w_{1i} \log N_i$, and
# likewise for $b, \beta$ and $e$. SciPy's quasi-Newton minimiser does the rest (BFGS: with five
# parameters the limited memory of L-BFGS buys nothing, and SciPy's BFGS is ten times faster here);
# the 4,500 points of Chinchilla's grid are scored first, and BFGS starts from the best eight.

# %%
#| export
LAW = ("E", "A", "B", "alpha", "beta")
GRID = dict(a=np.arange(0, 30, 5), b=np.arange(0, 30, 5), e=np.arange(-1, 1.5, 0.5),
            alpha=np.arange(0, 2.5, 0.5), beta=np.arange(0, 2.5, 0.5))   # Chinchilla's grid of starting points

def law_objective(p, logN, logD, logL, delta=1e-3):
    "(Huber loss of the log-loss residuals, its gradient) at p = (a, b, e, alpha, beta)."
    a, b, e, alpha, beta = p
    t = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])   # (3, n): log of each term
    top = t.max(0)
    w = np.exp(t - top)
    pred = top + np.log(w.sum(0))                                             # (n,) log(A/N^a + B/D^b + E)
    w /= w.sum(0)                                                             # (3, n) softmax weights
    r = pred - logL
    loss = np.where(np.abs(r) <= delta, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta)).sum()
    h = np.clip(r, -delta, delta)                                             # Huber's derivative
    grad = np.array([(h * w[0]).sum(), (h * w[1]).sum(), (h * w[2]).sum(),
                     -(h * w[0] * logN).sum(), -(h * w[1] * logD).sum()])
    return loss, grad

def law_loss(law: dict, N, D):
    "L(N, D) = E + A / N^alpha + B / D^beta."
    return law["E"] + law["A"] / np.asarray(N, float) ** law["alpha"] + law["B"] / np.asarray(D, float) ** law["beta"]


# %% [markdown]
# The hand-written gradient, checked against finite differences:

# %%
rng = np.random.default_rng(0)
logN, logD = np.log(rng.uniform(1e4, 1e6, 20)), np.log(rng.uniform(1e5, 1e7, 20))
logL = np.log(rng.uniform(1.5, 3.0, 20))
p0 = np.array([4.0, 6.0, 0.2, 0.4, 0.5])
_, g = law_objective(p0, logN, logD, logL, delta=0.1)
fd = [(law_objective(p0 + 1e-6 * np.eye(5)[k], logN, logD, logL, 0.1)[0]
       - law_objective(p0 - 1e-6 * np.eye(5)[k], logN, logD, logL, 0.1)[0]) / 2e-6 for k in range(5)]
test_close(g, np.array(fd), eps=1e-6)


# %%
#| export
def fit_law(N, D, L, delta=1e-3, starts=8, init=None) -> dict:
    "Chinchilla's approach 3: E, A, B, alpha, beta minimising the Huber loss of log-loss residuals (BFGS from the best of a grid)."
    from scipy.optimize import minimize
    logN, logD, logL = (np.log(np.asarray(x, float)) for x in (N, D, L))
    if init is None:
        grid = np.stack(np.meshgrid(*GRID.values(), indexing="ij"), -1).reshape(-1, 5)          # (4500, 5)
        scores = [law_objective(q, logN, logD, logL, delta)[0] for q in grid]
        p0s = grid[np.argsort(scores)[:starts]]
    else:
        p0s = [np.array([math.log(init["A"]), math.log(init["B"]), math.log(init["E"]), init["alpha"], init["beta"]])]
    opts = dict(gtol=1e-12, maxiter=2000)   # the objective is small (Huber with delta = 1e-3): a tight tolerance
    best = min((minimize(law_objective, p0, args=(logN, logD, logL, delta), jac=True, method="BFGS", options=opts)
                for p0 in p0s), key=lambda r: r.fun)
    a, b, e, alpha, beta = best.x
    return dict(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=float(alpha), beta=float(beta),
                objective=float(best.fun), n_runs=len(logL))


# %% [markdown]
# **Tested on data with a known answer.** Runs generated from a known law at our sizes and budgets,
# with 0.5% multiplicative noise (about the seed-to-seed spread of chapter 10's runs, 0.01 on 1.7),
# must give back the parameters that made them; without noise, exactly. The exponents and $E$ are
# what the chapter's conclusions rest on; $A$ and $B$ trade off against the exponents (a slightly
# larger $\alpha$ with a larger $A$ fits nearly as well), so they are recovered less tightly, which
# is also why Chinchilla reported intervals. The tolerances below are what this test guarantees.

# %%
def synthetic_runs(law, noise=0.005, seed=0):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(2.7e4, 1.86e6, 6), 5)                 # 6 sizes x 5 budgets, as in the sweep
    D = np.tile(np.geomspace(2.56e5, 4.1e6, 5), 6)
    return N, D, law_loss(law, N, D) * np.exp(rng.normal(0, noise, N.shape))

true = dict(E=1.35, A=120.0, B=900.0, alpha=0.45, beta=0.5)
N_, D_, L_ = synthetic_runs(true)
got = fit_law(N_, D_, L_)
print({k: round(got[k], 3) for k in LAW}, " true:", true)
test_close(got["E"], true["E"], eps=0.04); test_close(got["alpha"], true["alpha"], eps=0.03)
test_close(got["beta"], true["beta"], eps=0.03)
assert abs(np.log(law_loss(got, N_, D_) / law_loss(true, N_, D_))).max() < 0.005   # the fitted surface, within 0.5%
exact = fit_law(*synthetic_runs(true, noise=0.0))                                     # no noise: the exact law
for k in LAW: test_close(exact[k], true[k], eps=2e-3 * max(1, abs(true[k])))


# %% [markdown]
# **Intervals by the bootstrap.** Resample the runs with replacement, refit (from the full fit, one
# BFGS), and take the 2.5% and 97.5% quantiles of each parameter over the resamples. On the
# synthetic runs the intervals must hold the true exponents.

# %%
#| export
def bootstrap_law(N, D, L, law: dict, n_boot=200, seed=0, delta=1e-3) -> dict:
    "{param: (2.5%, 97.5%) quantiles} of refits of `law` on runs resampled with replacement."
    rng = np.random.default_rng(seed)
    N, D, L = (np.asarray(x, float) for x in (N, D, L))
    fits = []
    for _ in range(n_boot):
        i = rng.integers(0, len(L), len(L))
        fits.append(fit_law(N[i], D[i], L[i], delta, init=law))
    return {k: tuple(float(q) for q in np.quantile([f[k] for f in fits], [0.025, 0.975])) for k in LAW}


# %%
ci = bootstrap_law(N_, D_, L_, got, n_boot=30)
print({k: tuple(round(x, 3) for x in v) for k, v in ci.items()})
for k in ("E", "alpha", "beta"):
    assert ci[k][0] <= true[k] <= ci[k][1], (k, ci[k], true[k])


# %% [markdown]
# ## Approach 2: IsoFLOP profiles
#
# At a fixed compute $C$, a small model sees many tokens and a big one few; somewhere between is the
# best loss. Chinchilla trained, for each of several budgets $C$, models of many sizes, each for
# $D = C / (6N)$ tokens, and fitted a parabola to the loss against $\log N$: its minimum is the
# compute-optimal size $N^*(C)$, with $D^* = C / (6N^*)$. Over the budgets, $N^* \propto C^a$ and
# $D^* \propto C^b$ (they found $a \approx b \approx 0.5$).
#
# Our grid has five budgets per size rather than runs at exactly equal compute, so the profile at
# compute $C$ reads each size's loss at $D = C / c_N$ ($c_N$ the size's FLOPs per token) by
# interpolating linearly in $(\log D, \log L)$ between that size's annealed runs, and only where
# $D$ lies between its shortest and longest run: no extrapolation. Each profile needs at least
# three sizes, and the parabola is fitted to the five sizes around its lowest loss (a parabola in
# $\log N$ describes a profile near its minimum, not across decades).

# %%
#| export
def loss_at_tokens(tokens, losses, D):
    "A size's loss at `D` tokens, interpolated in log-log between its runs (`tokens`, `losses`); None outside them."
    t, l = np.log(np.asarray(tokens, float)), np.log(np.asarray(losses, float))
    order = np.argsort(t)
    if not t.min() <= math.log(D) <= t.max(): return None
    return float(np.exp(np.interp(math.log(D), t[order], l[order])))

def isoflop_profiles(runs: list[dict], levels) -> dict:
    "{C: [(N, L), ...]} for each compute level: every size whose runs span D = C / flops_per_token."
    by_size = {}
    for r in runs: by_size.setdefault(r["n_params"], []).append(r)
    out = {}
    for C in levels:
        pts = []
        for n, rs in sorted(by_size.items()):
            L = loss_at_tokens([r["tokens"] for r in rs], [r["val_loss"] for r in rs], C / rs[0]["flops_per_token"])
            if L is not None: pts.append((n, L))
        if len(pts) >= 3: out[C] = pts
    return out

def isoflop_optimum(points, window=5) -> dict | None:
    "Fit L = p0 + p1 x + p2 x^2 in x = log N to the `window` sizes around the lowest loss; its minimum N* (None if none)."
    points = sorted(points)
    i = min(range(len(points)), key=lambda k: points[k][1])
    lo = min(max(0, i - window // 2), max(0, len(points) - window))
    points = points[lo:lo + window]                        # a parabola describes a profile near its minimum only
    x, y = np.log([n for n, _ in points]), np.array([l for _, l in points])
    p2, p1, p0 = np.polyfit(x, y, 2)
    if p2 <= 0: return None
    x_opt = -p1 / (2 * p2)
    if not x.min() <= x_opt <= x.max(): return None
    return dict(N_opt=float(math.exp(x_opt)), L_opt=float(p0 + p1 * x_opt + p2 * x_opt ** 2), coef=(p2, p1, p0))

def power_fit(x, y) -> tuple[float, float]:
    "(k, a) of y = k x^a, least squares in log-log."
    a, logk = np.polyfit(np.log(x), np.log(y), 1)
    return float(math.exp(logk)), float(a)


# %% [markdown]
# Tested on runs from a known law: along a fixed compute $C = 6ND$, the law's minimum over $N$
# solves $\alpha A / N^\alpha = \beta B / D^\beta$, which gives $N^* = G (C/6)^{\beta/(\alpha+\beta)}$
# with $G = (\alpha A / \beta B)^{1/(\alpha+\beta)}$ (Chinchilla's appendix). The profiles of a
# dense grid of sizes recover that exponent.

# %%
law = dict(E=1.3, A=50.0, B=400.0, alpha=0.4, beta=0.4)
sizes = np.geomspace(1e4, 1e7, 25)
grid_runs = [dict(n_params=n, tokens=d, flops_per_token=6 * n, val_loss=float(law_loss(law, n, d)))
             for n in sizes for d in np.geomspace(1e4, 1e9, 40)]
prof = isoflop_profiles(grid_runs, np.geomspace(1e11, 1e14, 6))
opt = {C: isoflop_optimum(p) for C, p in prof.items()}
_, a_exp = power_fit([C for C in opt if opt[C]], [o["N_opt"] for o in opt.values() if o])
print(f"N* ~ C^{a_exp:.3f}; the law says beta / (alpha + beta) = {law['beta'] / (law['alpha'] + law['beta']):.3f}")
test_close(a_exp, law["beta"] / (law["alpha"] + law["beta"]), eps=0.02)
test_eq(loss_at_tokens([1e3, 1e5], [4.0, 1.0], 1e4), 2.0)                # halfway in log-log
test_eq(loss_at_tokens([1e3, 1e5], [4.0, 1.0], 1e6), None)               # no extrapolation


# %% [markdown]
# ## The compute multiplier
#
# The seed project's question, at a given size: how much more compute does GPT-2 need to reach
# the loss SwiGLU + RMSNorm reaches? With the baseline's law, solve $L_\text{base}(N, D') = L$ for
# $D'$: $D' = \big(B / (L - E - A/N^\alpha)\big)^{1/\beta}$. At the same $N$ the compute is
# proportional to $D$, so $D'/D$ is the **compute multiplier** of the variant; 1 means no gain, 1.2
# means the baseline needs 20% more compute for the same loss. (If $L$ is below what the baseline
# can reach at that size with any amount of data, $E + A/N^\alpha$, the multiplier is infinite.)

# %%
#| export
def tokens_for_loss(law: dict, N, L):
    "D such that law(N, D) = L; inf where L is out of reach at size N."
    gap = np.asarray(L, float) - law["E"] - law["A"] / np.asarray(N, float) ** law["alpha"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap > 0, (law["B"] / np.where(gap > 0, gap, 1.0)) ** (1 / law["beta"]), np.inf)

def compute_multiplier(base_law: dict, N, D, L_variant):
    "How many times more tokens (compute, at equal N) the baseline needs to reach the variant's loss L_variant at (N, D)."
    return tokens_for_loss(base_law, N, L_variant) / np.asarray(D, float)


# %%
test_close(compute_multiplier(law, 1e5, 1e6, law_loss(law, 1e5, 2e6)), 2.0, eps=1e-9)   # the baseline's own loss at 2x the data
assert np.isinf(compute_multiplier(law, 1e5, 1e6, law["E"] + law["A"] / 1e5 ** 0.4 - 1e-3))


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
if __name__ == "__main__" and "ipykernel" not in sys.modules:  # a Jupyter kernel runs a notebook as __main__ too
    main()
