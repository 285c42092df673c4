# %% [markdown]
# # The ablation (b): the figure
#
# > The figures of an experiment's results, drawn with matplotlib from the statistics of `gpt2book.stats`.

# %%
#| default_exp plots

# %% [markdown]
# The validation curves of every arm at its best learning rate: the mean over the seeds with its
# 95% band ([part (a)](10a_ablation_stats.ipynb)'s `curve_band`), the whole run and its end zoomed.
# Figures are a module of their own, apart from the numbers: a program that only needs the numbers,
# like the README's tables, does not load a plotting library. [Part (c)](10c_ablation.ipynb) draws
# the experiment's real results with it.

# %%
#| export
from pathlib import Path

import matplotlib.pyplot as plt

from gpt2book.files import atomic_write
from gpt2book.stats import arms_in, best_lrs, curve_band


# %%
#| export
def plot_arms(rows, path=None, zoom_from: float = 0.3):
    "Validation curves of every arm at its best learning rate (mean and 95% band over seeds), full and zoomed on the end."
    best = best_lrs(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for arm in arms_in(rows):
        st, mean, lo, hi = curve_band(rows, arm, best[arm])
        n = len({r["seed"] for r in rows if r["arm"] == arm and r["lr"] == best[arm]})
        for ax in axes:
            ax.plot(st, mean, label=f"{arm} (lr {best[arm]:g}, {n} seeds)")
            if n > 1: ax.fill_between(st, lo, hi, alpha=0.25)
    axes[0].set_title("validation loss")
    cut = int(zoom_from * max(r["step"] for r in rows))
    axes[1].set_xlim(cut, None)
    ends = [r["val_loss"] for r in rows if r["step"] >= cut]
    axes[1].set_ylim(min(ends) - 0.01, max(ends) + 0.01)
    axes[1].set_title("the end, zoomed (band: 95% CI over seeds)")
    for ax in axes: ax.set_xlabel("step"); ax.set_ylabel("val loss"); ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    if path:
        with atomic_write(path) as f: fig.savefig(f, dpi=120, format=Path(path).suffix[1:] or "png")
    return fig


# %%
import math, shutil, tempfile

from fastcore.test import test_eq

# %% [markdown]
# Made-up curves of two arms, three seeds each at one rate, and one seed at a rate that lost: the
# figure shows each arm at its best rate, with its seeds' band, and is written atomically when given
# a path.

# %%
rows = [dict(arm=arm, lr=lr, seed=s, step=t, val_loss=3 * math.exp(-t / 400) + end + (lr == 2e-3) * 0.1 + 0.01 * (s - 2))
        for arm, end in (("gpt2", 1.2), ("swiglu", 1.15)) for lr in (1e-3, 2e-3) for s in (1, 2, 3)
        if lr == 1e-3 or s == 1 for t in range(0, 2001, 100)]
tmp = Path(tempfile.mkdtemp())
fig = plot_arms(rows, tmp / "arms.png")
test_eq([l.get_text() for l in fig.axes[0].get_legend().get_texts()], ["gpt2 (lr 0.001, 3 seeds)", "swiglu (lr 0.001, 3 seeds)"])
assert (tmp / "arms.png").stat().st_size > 0 and not list(tmp.glob("*.tmp*"))
plt.show()
shutil.rmtree(tmp)
