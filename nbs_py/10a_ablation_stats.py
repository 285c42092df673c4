# %% [markdown]
# # The ablation (a): the statistics of a few seeds
#
# > The statistics of an experiment's results: best learning rates, confidence intervals, Welch's difference, the one-sided t-test, curve bands, steps to a target and the summary table; NumPy and SciPy only, no PyTorch.

# %%
#| default_exp stats

# %% [markdown]
# This book grew from the **seed project**, a from-scratch GPT-2 on GitHub,
# [veetil/gpt](https://github.com/veetil/gpt), that set out "to study the architecture,
# impacts of other architectures and scaling laws", trained with DDP on OpenWebText. Its README ends
# on one plot: a GPT-2 with SwiGLU and RMSNorm "reaches the validation loss of 50k iterations with 30k
# iterations". Its README itself lists caveats (one setting of the hyperparameters; dropout and the
# scaled initialisation in one arm only), and its code shows more. Read closely, the comparison
# could not carry that claim:
#
# - **both changes at once**: with one arm per change we cannot tell which one helped, or whether
#   one helped and the other hurt;
# - **unequal arms**: the variant kept LayerNorm as its final norm, had no dropout in its FFN where
#   the baseline had, and missed GPT-2's scaled initialisation of the output projection;
# - **one learning rate, one seed**: a difference of a few hundredths of a nat is the size of the
#   noise between two seeds of the same model, and an architecture that likes a larger learning
#   rate loses a comparison run at the other's;
# - **read at the peak learning rate**: at step 50k of a 600k-step cosine schedule the learning
#   rate is still 98.5% of its peak. Loss curves at high learning rate say little about where a run
#   ends up once the rate anneals.
#
# This chapter runs the experiment again at a scale two CPU cores afford in half an hour, with
# each of those defects removed:
#
# | defect | here |
# |---|---|
# | both changes at once | a 2x2 design: {LayerNorm, RMSNorm} x {GELU MLP, SwiGLU} |
# | final norm left as LayerNorm | `ln_f` is the configured norm (chapter 5) |
# | dropout, scaled init in one arm only | one rule for both FFNs: dropout after `c_proj`, `c_proj` init scaled by name (chapters 3, 5) |
# | parameters not matched | SwiGLU's width by the 8/3 rule, the match asserted in part (c) |
# | one learning rate | a sweep of 5 learning rates per arm; each arm is reported at its own best |
# | one seed | 3 seeds per arm at its best learning rate, 5 where a difference under 0.02 nats decides; 95% confidence intervals |
# | read at peak learning rate | every run anneals to the end of its own cosine schedule |
#
#
# The chapter comes in three parts, one module each, and each imports only the ones before it:
#
# | part | module | holds |
# |---|---|---|
# | (a) this one | `gpt2book.stats` | the **statistics**: best learning rates, intervals, differences, the summary table; plain NumPy and SciPy, no PyTorch |
# | [(b)](10b_ablation_plots.ipynb) | `gpt2book.plots` | the **figures** of an experiment's results |
# | [(c)](10c_ablation.ipynb) | `gpt2book.experiments` | the **runner** (run folders, locks, resuming, the sweep, the results file, the command line), then the experiment itself and what its data show |
#
# Chapters 11 to 13 use all three. The statistics come first because the runner needs one of them to
# run at all (which learning rate won), and because every claim of part (c) rests on them; they are
# checked here on made-up results with known answers.

# %%
#| export
import math

import numpy as np
import scipy.stats

from gpt2book.common import markdown_table

BASELINE = "gpt2"   # the arm every other arm of the book's experiments is compared with

# %%
import math

import numpy as np
import scipy.stats
from fastcore.test import test_close, test_eq, test_fail


# %% [markdown]
# ## Choosing the rate
#
# An experiment's results are rows, one per evaluation of each run: its arm, learning rate and seed,
# the step and the validation loss (part (c) writes them). A sweep trains every arm at every
# learning rate with a first seed; each arm's best learning rate is the one with the lowest final
# validation loss on that seed, and the other seeds then run at it. Choosing the rate is a question
# about the rows, not about running them, so its two functions start this module, which holds
# everything that computes with results:

# %%
#| export
def final_losses(rows) -> dict:
    "{(arm, lr, seed): validation loss at the run's last evaluation}."
    last = {}
    for r in rows:
        k = (r["arm"], r["lr"], r["seed"])
        if k not in last or r["step"] > last[k][0]: last[k] = (r["step"], r["val_loss"])
    return {k: v for k, (s, v) in last.items()}

def best_lrs(rows) -> dict:
    "{arm: the learning rate with the lowest final validation loss of the sweep's seed (each arm's first), where the other seeds then ran}."
    finals = final_losses(rows)
    first = {}
    for arm, lr, seed in finals: first[arm] = min(seed, first.get(arm, seed))
    by = {}
    for (arm, lr, seed), v in finals.items():
        if seed == first[arm]: by.setdefault(arm, {})[lr] = v   # one seed at every rate: a fair choice
    return {arm: min(lrs, key=lrs.get) for arm, lrs in by.items()}


# %% [markdown]
# ## The analysis
#
# Three small functions turn the rows into the answers.
#
# - `ci95`: the mean of $n$ seeds and its 95% confidence interval,
#   $\bar x \pm t_{0.975,\,n-1}\, s/\sqrt n$ with Student's $t$ (with 3 seeds $t = 4.303$: three
#   runs pin a mean down only loosely, and the intervals say so). The quantile comes from
#   `scipy.stats`, for any degrees of freedom, whole or not (Welch's, below, are not).
# - `steps_to_target`: the seed project's metric, the first step at which a curve reaches a target
#   loss, interpolated linearly between evaluations.
# - `curve_band`: the mean curve over seeds with its 95% band, for the plot.

# %%
#| export
def t975(df: float) -> float:
    "The 97.5% quantile of Student's t with `df` > 0 degrees of freedom (a real number: Welch's are not whole)."
    if not df > 0: raise ValueError(f"a confidence interval needs at least 2 values (df > 0), got df={df}")
    return float(scipy.stats.t.ppf(0.975, df))

def ci95(values) -> tuple[float, float, float]:
    "(mean, low, high): the mean of independent `values` and its 95% confidence interval (Student's t)."
    v = np.asarray(values, dtype=float)
    if len(v) < 2: return float(v.mean()), math.nan, math.nan
    h = t975(len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(v.mean() - h), float(v.mean() + h)


# %%
#| export
def steps_to_target(steps, losses, target: float) -> float | None:
    "First step at which the curve (`steps`, `losses`) reaches `target`, linear between evaluations; None if never."
    s, l = np.asarray(steps, float), np.asarray(losses, float)
    hit = np.flatnonzero(l <= target)
    if len(hit) == 0: return None
    i = hit[0]
    if i == 0: return float(s[0])
    return float(s[i-1] + (l[i-1] - target) / (l[i-1] - l[i]) * (s[i] - s[i-1]))

def curve_band(rows, arm: str, lr: float) -> tuple:
    "(steps, mean, low, high) over the seeds of `arm` at `lr`; low/high is the 95% interval at each step."
    seeds = sorted({r["seed"] for r in rows if r["arm"] == arm and r["lr"] == lr})
    by_seed = {s: {r["step"]: r["val_loss"] for r in rows if r["arm"] == arm and r["lr"] == lr and r["seed"] == s}
               for s in seeds}
    steps = sorted(set.intersection(*(set(c) for c in by_seed.values())))
    band = np.array([ci95([by_seed[s][t] for s in seeds]) for t in steps]).reshape(-1, 3)
    return np.array(steps), band[:, 0], band[:, 1], band[:, 2]


# %% [markdown]
# Each is checked on inputs with known answers. Two quantiles of $t$ need no table: with one
# degree of freedom $t$ is the Cauchy distribution, $t_{0.975} = \tan(0.475\pi)$; with two its
# distribution function is $\tfrac12 + t / (2\sqrt{2 + t^2})$, so $t_{0.975} = 0.95\sqrt{2 / (1 - 0.95^2)}$.
# With many, $t$ becomes the normal distribution.

# %%
test_close(t975(1), math.tan(0.475 * math.pi), eps=1e-9)                    # 12.706
test_close(t975(2), 0.95 * math.sqrt(2 / (1 - 0.95 ** 2)), eps=1e-9)        # 4.303
test_close(t975(1e6), scipy.stats.norm.ppf(0.975), eps=1e-5)               # -> the normal 1.960
assert t975(2) > t975(2.5) > t975(3)                                        # real degrees of freedom, in between
m, lo, hi = ci95([1.0, 2.0, 3.0])  # mean 2, s = 1: 2 +- t(2) / sqrt(3)
test_close((m, lo, hi), (2.0, 2 - t975(2) / math.sqrt(3), 2 + t975(2) / math.sqrt(3)), eps=1e-12)
assert math.isnan(ci95([1.0])[1])
test_fail(lambda: t975(0), contains="at least 2 values")
rng = np.random.default_rng(0)  # coverage: ~95% of intervals from 3 normal draws hold the true mean
cover = np.mean([lo <= 0 <= hi for _, lo, hi in (ci95(rng.normal(size=3)) for _ in range(4000))])
assert 0.93 < cover < 0.97, cover

# %%
steps = [0, 100, 200, 300]
test_eq(steps_to_target(steps, [4.0, 3.0, 2.0, 1.0], 2.5), 150.0)  # halfway between 3.0 and 2.0
test_eq(steps_to_target(steps, [4.0, 3.0, 2.0, 1.0], 2.0), 200.0)  # an evaluation lands on it
test_eq(steps_to_target(steps, [4.0, 3.0, 2.0, 1.0], 0.5), None)   # never reached
test_eq(steps_to_target(steps, [4.0, 3.0, 2.0, 1.0], 9.0), 0.0)
# a curve that is the baseline shifted left by 50 steps reaches every target 50 steps earlier
base = lambda t: 3 * np.exp(-np.asarray(t) / 400) + 1
grid = np.arange(0, 2001, 10)
test_close(steps_to_target(grid, base(grid), 1.5) - steps_to_target(grid, base(grid + 50), 1.5), 50, eps=1)

# %%
syn = [dict(arm="a", lr=1.0, seed=s, step=t, val_loss=v)
       for s, off in ((1, -0.1), (2, 0.0), (3, 0.1)) for t, v in ((0, 3.0 + off), (10, 2.0 + off))]
st, mean, lo, hi = curve_band(syn, "a", 1.0)
test_eq(list(st), [0, 10]); test_close(mean, [3.0, 2.0], eps=1e-12)
test_close(hi - mean, [t975(2) * 0.1 / math.sqrt(3)] * 2, eps=1e-9)
test_eq(best_lrs(syn + [dict(arm="a", lr=2.0, seed=1, step=10, val_loss=1.5)]), {"a": 2.0})
# chosen on the sweep's seed alone: a rate run with one lucky seed does not beat the 3-seed mean of the chosen one later
test_eq(best_lrs(syn + [dict(arm="a", lr=2.0, seed=1, step=10, val_loss=1.95)]), {"a": 1.0})


# %% [markdown]
# ## The summary table
#
# For each arm at its best learning rate: the number of seeds, the final validation loss with its
# 95% interval, the difference from the baseline with the interval of that difference, and the
# seed project's metric, labelled for what it is: the step at which each seed's curve first
# reaches the baseline's final mean loss (the mean over the arm's seeds and its 95% interval), and
# the speed-up that implies.
#
# That step is read off runs scheduled for 2000 steps, at a step where their learning rate has not
# yet reached its floor: it is not what a run scheduled to end there would reach. A run annealed to
# end at step $s$ usually ends lower than a longer run read at step $s$ (the end of the cosine is
# where the loss drops most; chapter 13 measures both and finds exceptions where the rate was badly
# chosen), so where annealing helps, this count **overstates** the steps an arm needs and
# **understates** its speed-up. The bias is small when the crossing is late in the schedule, where
# the rate is already near its floor, and large for a curve read at its peak learning rate, the seed
# project's case: there every loss is still high by an amount that annealing would remove, and the
# comparison says how fast the curves fall at that rate, not where the runs end.
#
# The interval of a difference of two means is **Welch's**: the standard error from both samples'
# variances, $s_d^2 = s_x^2/n_x + s_y^2/n_y$, which need not be equal, and Student's $t$ at the
# Welch-Satterthwaite degrees of freedom
#
# $$\nu = \frac{\left(s_x^2/n_x + s_y^2/n_y\right)^2}{\frac{(s_x^2/n_x)^2}{n_x - 1} + \frac{(s_y^2/n_y)^2}{n_y - 1}},$$
#
# between $\min(n_x, n_y) - 1$ and $n_x + n_y - 2$ and rarely a whole number. (An earlier version of
# this chapter rounded $\nu$ down to read a table, which widened every interval a little.)

# %%
#| export
def welch_ci95(x, y) -> tuple[float, float, float]:
    "(mean(x) - mean(y), low, high): the difference of two means and its 95% interval by Welch's t (unequal variances)."
    x, y = np.asarray(x, float), np.asarray(y, float)
    d = float(x.mean() - y.mean())
    if min(len(x), len(y)) < 2: return d, math.nan, math.nan
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)                  # squared standard errors
    if vx + vy == 0: return d, d, d                                           # no spread at all: nothing to widen
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))  # Welch-Satterthwaite, not rounded
    h = t975(df) * math.sqrt(vx + vy)
    return d, d - h, d + h


# %% [markdown]
# Checked against SciPy's own Welch test, which computes it its own way, and against the hand
# computation for two samples of equal size and spread (then $\nu = 2n - 2$, Student's pooled test):

# %%
x, y = [1.70, 1.68, 1.72], [1.74, 1.73, 1.755, 1.72]
d, lo, hi = welch_ci95(x, y)
ref = scipy.stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
test_close((lo, hi), (ref.low, ref.high), eps=1e-12)
test_close(d, np.mean(x) - np.mean(y), eps=1e-15)
d, lo, hi = welch_ci95([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])   # n = 3 each, s = 1 each: nu = 4, s_d = sqrt(2/3)
test_close((d, hi - d), (-1.0, t975(4) * math.sqrt(2 / 3)), eps=1e-12)
assert math.isnan(welch_ci95([1.0], [2.0, 3.0])[1])


# %% [markdown]
# A question of another kind comes later in the book: chapter 17's speedrun asks whether a recipe's
# mean loss over a few seeds is below a fixed target. That is the one-sided $t$-test of one sample:
# with $n$ values of mean $\bar x$ and standard deviation $s$, $t = (\bar x - \text{target}) / (s/\sqrt n)$
# and $p = F_{t,\,n-1}(t)$, the probability of a mean this far below the target if the true mean were
# the target itself. `p_below` computes it beside the intervals, so that the book's $t$ distribution
# lives in this one module.

# %%
#| export
def p_below(values, target: float) -> float:
    "One-sided p-value that the mean of `values` is below `target` (Student's t, n - 1 degrees of freedom); NaN for one value."
    v = np.asarray(values, dtype=float)
    if len(v) < 2: return math.nan
    se = v.std(ddof=1) / math.sqrt(len(v))
    if se == 0: return 0.0 if v.mean() < target else 1.0                    # no spread: the mean says it all
    return float(scipy.stats.t.cdf((v.mean() - target) / se, len(v) - 1))


# %% [markdown]
# Checked against SciPy's one-sample test, which computes it its own way:

# %%
x = [1.736, 1.740, 1.744, 1.738, 1.742]
test_close(p_below(x, 1.75), scipy.stats.ttest_1samp(x, 1.75, alternative="less").pvalue, eps=1e-12)
assert p_below(x, 1.75) < 0.01 < p_below([v + 0.008 for v in x], 1.75)    # 1.740 passes at 1.75, 1.748 does not
test_eq((p_below([1.7, 1.7], 1.75), p_below([1.8, 1.8], 1.75)), (0.0, 1.0))
assert math.isnan(p_below([1.7], 1.75))


# %% [markdown]
# `summary` makes one record per arm, and `results_table` writes the records (through appendix B's
# `markdown_table`, every column left-aligned) as the markdown table that this chapter, chapters 11
# and 12 and the README show (the README's tables are made by `tools/results_tables.py` from the
# committed results files, with this function).

# %%
#| export
def arms_in(rows) -> list:
    "The arms of `rows`, in order of first appearance."
    return list(dict.fromkeys(r["arm"] for r in rows))

def crossings(rows, arm: str, lr: float, target: float) -> list:
    "Per seed of `arm` at `lr`: the first step its curve reaches `target` (linear between evaluations; None: never)."
    seeds = sorted({r["seed"] for r in rows if r["arm"] == arm and r["lr"] == lr})
    curve = lambda s: sorted((r["step"], r["val_loss"]) for r in rows if (r["arm"], r["lr"], r["seed"]) == (arm, lr, s))
    return [steps_to_target(*zip(*curve(s)), target) for s in seeds]

def summary(rows, baseline: str = BASELINE) -> list[dict]:
    "One dict per arm at its best learning rate: final loss + CI, difference to the baseline + CI, steps to the baseline's final loss + CI."
    best, finals = best_lrs(rows), final_losses(rows)
    seeds_final = lambda arm: [v for (a, lr, s), v in sorted(finals.items()) if a == arm and lr == best[arm]]
    base = seeds_final(baseline)
    last = max(r["step"] for r in rows if r["arm"] == baseline and r["lr"] == best[baseline])
    out = []
    for arm in arms_in(rows):
        x = seeds_final(arm)
        m, lo, hi = ci95(x)
        d, d_lo, d_hi = welch_ci95(x, base)
        cross = [last] if arm == baseline else crossings(rows, arm, best[arm], float(np.mean(base)))
        missed = sum(c is None for c in cross)
        reach, r_lo, r_hi = (None, None, None) if missed else ci95(cross) if arm != baseline else (last, None, None)
        out.append(dict(arm=arm, lr=best[arm], seeds=len(x), val_loss=m, ci_low=lo, ci_high=hi,
                        diff=d, diff_low=d_lo, diff_high=d_hi, steps_to_baseline=reach, steps_low=r_lo, steps_high=r_hi,
                        not_reached=missed, speedup=(last / reach) if reach else None, last_step=last))
    return out


# %%
#| export
def _reach_cell(r) -> str:
    "The steps cell of one arm: mean [95% CI] and the speed-up with its interval, or how many seeds never got there."
    if r["not_reached"]: return f"not reached by {r['not_reached']} of {r['seeds']} seeds"
    if r["steps_low"] is None: return f"{r['steps_to_baseline']:.0f}"
    last, lo, hi = r["last_step"], r["steps_low"], r["steps_high"]
    up = lambda s: f"{last / s:.2f}" if s > 0 else "∞"
    return f"{r['steps_to_baseline']:.0f} [{lo:.0f}, {hi:.0f}]: {r['speedup']:.2f}× [{up(hi)}, {up(lo)}]"

def results_table(rows, names: dict | None = None, params: dict | None = None, baseline: str = BASELINE,
                  label: str = "GPT-2", digits: int = 3) -> str:
    "`summary(rows)` as a markdown table: `names` {arm: words}, `params` {arm: (total, active)}, `label` the baseline's short name."
    names, f = names or {}, lambda v, sign="": f"{v:{sign}.{digits}f}"
    tab = summary(rows, baseline)
    head = ["arm", *(["parameters"] if params else []), "best lr", "seeds", "val loss [95% CI]", f"vs {label} [95% CI]",
            f"steps to {label}'s final loss, read off the {tab[0]['last_step']}-step curves (not annealed there) [95% CI]"]
    lines = []
    for r in tab:
        cells = [names.get(r["arm"], r["arm"])]
        if params:
            total, active = params[r["arm"]]
            cells.append(f"{total:,}" + (f" ({active:,} active)" if active != total else ""))
        diff = "–" if r["arm"] == baseline else f"{f(r['diff'], '+')} [{f(r['diff_low'], '+')}, {f(r['diff_high'], '+')}]"
        cells += [f"{r['lr']:g}", str(r["seeds"]), f"{f(r['val_loss'])} [{f(r['ci_low'])}, {f(r['ci_high'])}]", diff,
                  _reach_cell(r)]
        lines.append(cells)
    return markdown_table(lines, head, align="l" * len(head))


# %%
#| export
def machines_note(rows) -> str:
    "Which machine made which runs of `rows` (the `machine` column), in a sentence."
    runs = {}
    for r in rows: runs.setdefault(r.get("machine") or "a machine not recorded", {}).setdefault(r["arm"], set()).add((r["lr"], r["seed"]))
    if len(runs) == 1: return f"Every run on {next(iter(runs))}."
    main = max(runs, key=lambda m: sum(map(len, runs[m].values())))
    def which(arm, rs):
        every = {(r["lr"], r["seed"]) for r in rows if r["arm"] == arm}
        return f"every {arm} run" if rs == every else f"{arm} seeds {', '.join(str(s) for _, s in sorted(rs))}"
    others = "; ".join(f"{m}: {', '.join(which(a, rs) for a, rs in arms.items())}" for m, arms in runs.items() if m != main)
    return f"Made on {others}; every other run on {main}."


# %% [markdown]
# On made-up rows with known answers: an arm 0.5 lower than the baseline at every point of every
# seed is 0.5 lower, beyond the noise, and reaches the baseline's final loss where the baseline's
# curve is 0.5 higher (each seed at its own step: 4, 5 and 6); the table says so in its cells.

# %%
test_eq([r["arm"] for r in summary(syn, baseline="a")], ["a"])
syn2 = [dict(r, arm=arm, val_loss=r["val_loss"] + d) for r in syn for arm, d in (("gpt2", 0.0), ("swiglu", -0.5))]
tab = {r["arm"]: r for r in summary(syn2)}
test_close(tab["swiglu"]["diff"], -0.5, eps=1e-12)
assert tab["swiglu"]["diff_high"] < 0 < tab["gpt2"]["diff_high"]
test_eq(tab["gpt2"]["steps_to_baseline"], 10)
test_close(crossings(syn2, "swiglu", 1.0, 2.0), [4.0, 5.0, 6.0], eps=1e-9)        # 2.4 -> 1.4, 2.5 -> 1.5, 2.6 -> 1.6 over 10 steps
table = results_table(syn2, {"gpt2": "GPT-2"}, {"gpt2": (100, 100), "swiglu": (120, 60)})
print(table)
lines = table.splitlines()
test_eq(lines[0], "| arm | parameters | best lr | seeds | val loss [95% CI] | vs GPT-2 [95% CI] | steps to GPT-2's final loss, "
                  "read off the 10-step curves (not annealed there) [95% CI] |")
test_eq(lines[2], f"| GPT-2 | 100 | 1 | 3 | 2.000 [{2 - t975(2) * 0.1 / math.sqrt(3):.3f}, {2 + t975(2) * 0.1 / math.sqrt(3):.3f}] | – | 10 |")
_, d_lo, d_hi = welch_ci95([1.4, 1.5, 1.6], [1.9, 2.0, 2.1])               # the seeds' final losses
_, s_lo, s_hi = ci95([4.0, 5.0, 6.0])                                        # the seeds' crossings
assert lines[3].startswith("| swiglu | 120 (60 active) | 1 | 3 | 1.500 [") and lines[3].endswith(
    f"| -0.500 [{d_lo:+.3f}, {d_hi:+.3f}] | 5 [{s_lo:.0f}, {s_hi:.0f}]: 2.00× [{10 / s_hi:.2f}, {10 / s_lo:.2f}] |")
slow = [dict(r, arm="slow", val_loss=r["val_loss"] + 0.05) for r in syn2 if r["arm"] == "gpt2"]
test_eq(summary(syn2 + slow)[-1]["not_reached"], 2)                          # two of its seeds end above 2.0
test_eq(machines_note([dict(r, machine="A") for r in syn2]), "Every run on A.")
test_eq(machines_note([dict(r, machine="B" if r["arm"] == "swiglu" and r["seed"] == 3 else "A") for r in syn2]),
        "Made on B: swiglu seeds 3; every other run on A.")

# %% [markdown]
# Next, [part (b)](10b_ablation_plots.ipynb): the same rows as a figure; then
# [part (c)](10c_ablation.ipynb): the runs that make them, and what they show.
