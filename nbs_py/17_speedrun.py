# %% [markdown]
# # The laptop speedrun
#
# > What the modern recipe (Muon, QK-norm, ReLU², an untied head, zero-initialised projections, a logit softcap, rotary positions) is worth for a character-level model on two CPU cores, measured as a record table: each change tried alone on top of the current record, each record below the target with p < 0.01 over five seeds.

# %%
#| default_exp muon

# %% [markdown]
# The seed project asked what other architectures do to GPT-2. Since GPT-2 the field has written its
# answer as a **record table**. modded-nanogpt (Keller Jordan and contributors) took the llm.c GPT-2
# (124M parameters, 8×H100, validation loss 3.28 on FineWeb) from 45 minutes to about 1.2 minutes,
# one measured change at a time: a tuned learning rate and rotary positions, then the Muon optimizer,
# then ReLU², QK-norm and zero-initialised projections, an untied head, value and embedding skips, a
# logit softcap, U-net skips, value embeddings... Each record is accepted only if its mean final loss
# beats the target with $p < 0.01$. nanochat (Karpathy, 2025) adopted most of the list: Muon for the
# matrices and AdamW for embeddings and head, rotary positions, QK-norm, ReLU², untied embeddings,
# parameter-free RMSNorm, a logit softcap. Those gains were measured on GPUs at GPT-2 scale. This
# chapter asks which of them survive at the scale a reader can run: the book's main job, a
# character-level model of 0.8M parameters trained for about a minute on a laptop CPU.
#
# The published gains (modded-nanogpt's record log, minutes on 8×H100 to 3.28) that the table at the
# end of this chapter is set against:
#
# | change | published record | published gain |
# |---|---|---|
# | tuned learning rate, rotary positions | 45 → 31.4 min | 1.43× |
# | Muon | 31.4 → 24.9 min | 1.26× |
# | ReLU², QK-norm, zero-initialised projections | 22.3 → 15.2 min | 1.47× |
# | untied head | 12.0 → 10.8 min | 1.11× |
# | value and embedding skips, momentum warm-up, logit softcap | 10.8 → 8.2 min | 1.32× |
#
# They are quoted from the record log as published, not measured here.

# %%
#| export
import math

import torch

# %%
#| hide
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from fastcore.test import test_close, test_eq, test_fail
from IPython.display import Markdown, display

from gpt2book.model import GPT, GPTConfig

# %% [markdown]
# ## Muon: orthogonalised momentum
#
# AdamW scales each weight's step by its own running gradient size. Muon (Jordan et al., 2024) treats
# a weight *matrix* as what it is, a linear map, and asks for the step that changes the map's outputs
# the most for a given size of change. Take the momentum $M$ (a running sum of gradients) and its
# singular value decomposition $M = U S V^\top$. The gradient step $-\eta M$ moves the map a lot along
# the few directions with large singular values and hardly at all along the rest; in a transformer's
# gradients a handful of directions dominate. Muon replaces $S$ by the identity and steps by
# $-\eta\, U V^\top$: every direction that the momentum points along moves by the same amount.
#
# An SVD per matrix per step is slow. Muon computes $U V^\top$ approximately with a few matrix
# products, the **Newton–Schulz iteration**. Scale $X_0 = M / \lVert M \rVert_F$, so that every
# singular value lies in $(0, 1]$; then repeat
#
# $$A = X X^\top, \qquad X \leftarrow a X + (b A + c A^2) X .$$
#
# $X$ keeps its singular vectors, and each singular value $s$ goes to $p(s) = a s + b s^3 + c s^5$.
# With $(a, b, c) = (3.4445, -4.7750, 2.0315)$ the polynomial is steep at 0 (slope 3.4445: small
# singular values grow fast) and keeps values near 1 in a band around 1; five steps take every
# singular value of a real gradient into roughly $[0.7, 1.2]$. Not exactly 1: Jordan found that a
# steeper polynomial that only lands *near* 1 trains as well as the exact $UV^\top$ and needs fewer
# steps. Working on the shorter side (`X X^T` of the wider orientation) keeps the products small.

# %%
#| export
NS_COEFFS = (3.4445, -4.7750, 2.0315)   # Jordan's quintic: slope 3.4445 at 0, values near 1 on [0.1, 1]

def newton_schulz(G, steps: int = 5, coeffs=NS_COEFFS, eps: float = 1e-7, dtype=None):
    "About U V^T for a 2-D G = U S V^T: Frobenius normalisation, then `steps` quintic Newton-Schulz steps."
    if G.dim() != 2:
        raise ValueError(f"newton_schulz orthogonalises matrices; got a tensor of shape {tuple(G.shape)}")
    a, b, c = coeffs
    X = G.to(dtype or G.dtype)
    tall = X.size(0) > X.size(1)
    if tall: X = X.T                            # iterate on the short side: X X^T is the smaller Gram matrix
    X = X / X.norm().clamp(min=eps)             # ||X||_2 <= ||X||_F = 1: every singular value in (0, 1]
    for _ in range(steps):
        A = X @ X.T                             # (m, m)
        B = torch.addmm(A, A, A, beta=b, alpha=c)   # b A + c A^2
        X = torch.addmm(X, B, X, beta=a)            # a X + (b A + c A^2) X: s -> a s + b s^3 + c s^5
    return X.T if tall else X


# %% [markdown]
# What the iteration does to singular values, first as the polynomial applied five times, then on a
# real matrix: a random $128 \times 512$ matrix with singular values spread over three orders of
# magnitude.

# %%
s = torch.linspace(0, 1, 501)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
for k in (1, 2, 3, 5):
    y = s.clone()
    for _ in range(k): y = NS_COEFFS[0] * y + NS_COEFFS[1] * y ** 3 + NS_COEFFS[2] * y ** 5
    ax1.plot(s, y, label=f"{k} step{'s' * (k > 1)}")
ax1.axhline(1, color="grey", lw=0.5); ax1.set_xlabel("singular value in"); ax1.set_ylabel("singular value out")
ax1.set_title("Newton-Schulz quintic, applied k times"); ax1.legend()
torch.manual_seed(0)
U, _ = torch.linalg.qr(torch.randn(128, 128)); V, _ = torch.linalg.qr(torch.randn(512, 128))
S = torch.logspace(0, -3, 128)                             # 1 ... 0.001
G = U @ torch.diag(S) @ V.T                                # (128, 512) with known singular values
out = torch.linalg.svdvals(newton_schulz(G))
ax2.loglog(S, out, ".", ms=3); ax2.set_xlabel("singular value of G (Frobenius-normalised: / %.2f)" % G.norm())
ax2.set_ylabel("after 5 steps"); ax2.set_title("a 128 x 512 matrix"); plt.tight_layout(); plt.show()
print(f"singular values in: {S.min():.0e} ... {S.max():.0f}; out: {out.min():.2f} ... {out.max():.2f}")

# %% [markdown]
# The large singular values all land in a band around 1; only those below about a thousandth of the
# Frobenius norm stay small (five steps of slope 3.4 multiply by at most $3.4^5 \approx 460$). The
# asserts check the claim on a random gradient-like matrix, whose singular values are not that
# extreme: the result's singular values lie in $[0.6, 1.25]$, so $O O^\top$ is close to the identity,
# the singular vectors are those of the SVD, and a tall matrix is handled through its transpose.

# %%
torch.manual_seed(1)
G = torch.randn(128, 512)
O = newton_schulz(G)
sv = torch.linalg.svdvals(O)
assert 0.6 < sv.min() and sv.max() < 1.25, sv
U, S, Vh = torch.linalg.svd(G, full_matrices=False)
test_close(torch.linalg.svdvals(U.T @ O @ Vh.T), sv, eps=1e-4)       # same singular vectors as G
assert (U.T @ O @ Vh.T - torch.diag(torch.diagonal(U.T @ O @ Vh.T))).abs().max() < 1e-4
test_close(newton_schulz(G.T), O.T, eps=1e-5)                       # tall: through the transpose
test_fail(lambda: newton_schulz(torch.randn(3, 4, 5)), contains="matrices")


# %% [markdown]
# ## The optimizer
#
# Muon is SGD with Nesterov momentum whose update is orthogonalised. For a weight $W$ of shape
# (rows, cols), with gradient $G$, momentum $\mu$ and learning rate $\eta$:
#
# $$B \leftarrow \mu B + (1 - \mu) G, \qquad \tilde B = (1 - \mu) G + \mu B \ \text{(Nesterov)}, \qquad
#   W \leftarrow (1 - \eta\lambda) W - \eta \sqrt{\max(1, \text{rows}/\text{cols})}\; \mathrm{NS}(\tilde B).$$
#
# (Whether $B$ is a sum or an average of gradients does not matter: Newton–Schulz divides by the
# norm first, so only the direction of $\tilde B$ counts.)
#
# The factor $\sqrt{\max(1, \text{rows}/\text{cols})}$ (Jordan's) gives a tall matrix's update the same
# root-mean-square per entry as a square one's. This is exactly the update of `torch.optim.Muon`,
# which recent PyTorch ships; we write our own to see every line and test the two against each other.
#
# Muon is for the hidden matrices only. The embedding is a lookup table, not a linear map of its
# input (each step touches a few rows), and the head maps to a probability distribution whose
# geometry the orthogonalisation ignores; both, and every vector (gains, biases), stay with AdamW,
# as in modded-nanogpt and nanochat.

# %%
#| export
class Muon(torch.optim.Optimizer):
    "Muon (Jordan et al. 2024) for 2-D weights: Nesterov momentum, the update orthogonalised by `newton_schulz`."
    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 weight_decay: float = 0.0, ns_steps: int = 5, ns_dtype: str = "float32"):
        if not (lr >= 0 and 0 <= momentum < 1 and weight_decay >= 0 and ns_steps >= 1):
            raise ValueError(f"Muon needs lr >= 0, 0 <= momentum < 1, weight_decay >= 0 and ns_steps >= 1; got "
                             f"lr={lr}, momentum={momentum}, weight_decay={weight_decay}, ns_steps={ns_steps}")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                                      ns_steps=ns_steps, ns_dtype=ns_dtype))
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon updates matrices; a parameter of shape {tuple(p.shape)} belongs with AdamW")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            mu, lr = group["momentum"], group["lr"]
            for p in group["params"]:
                if p.grad is None: continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.lerp_(p.grad, 1 - mu)                                       # B = mu B + (1 - mu) G
                update = p.grad.lerp(buf, mu) if group["nesterov"] else buf       # Nesterov: (1 - mu) G + mu B
                O = newton_schulz(update, group["ns_steps"], dtype=getattr(torch, group["ns_dtype"]))
                p.mul_(1 - lr * group["weight_decay"])                          # decoupled weight decay
                p.add_(O.to(p.dtype), alpha=-lr * max(1.0, p.size(0) / p.size(1)) ** 0.5)
        return loss


# %% [markdown]
# Two checks. The update of one step from zero momentum is $\eta\sqrt{\max(1, r/c)}\,\mathrm{NS}(G)$,
# whose singular values sit near $\eta$ times that factor: orthogonal to a tolerance. And where the
# installed PyTorch has `torch.optim.Muon`, ten steps of ours and of PyTorch's on the same weights
# and gradients agree (PyTorch runs the iteration in bfloat16, so ours is asked for bfloat16 too).

# %%
torch.manual_seed(2)
W = torch.nn.Parameter(torch.randn(256, 64))
W0 = W.detach().clone()
W.grad = torch.randn(256, 64)
Muon([W], lr=0.1, weight_decay=0.0).step()
step_sv = torch.linalg.svdvals((W0 - W.detach()) / (0.1 * math.sqrt(256 / 64)))
assert 0.6 < step_sv.min() and step_sv.max() < 1.25, step_sv

def ten_steps(opt_cls, **kw):
    torch.manual_seed(3)
    w = torch.nn.Parameter(torch.randn(96, 32))
    opt = opt_cls([w], lr=0.02, momentum=0.95, weight_decay=0.01, **kw)
    g = torch.Generator().manual_seed(4)
    for _ in range(10):
        w.grad = torch.randn(96, 32, generator=g)
        opt.step()
    return w.detach()

if hasattr(torch.optim, "Muon"):
    test_close(ten_steps(Muon, ns_dtype="bfloat16"), ten_steps(torch.optim.Muon), eps=1e-6)
test_fail(lambda: Muon([torch.nn.Parameter(torch.zeros(3))]), contains="AdamW")


# %% [markdown]
# ## Muon and AdamW as one optimizer
#
# The trainer steps one optimizer, sets one learning rate per step and saves one state in its
# checkpoints. `Optimizers` holds several and looks like one: its `param_groups` are all of theirs,
# and its state is theirs in order. Each group may carry an `lr_ratio`, its peak learning rate over
# the run's: the trainer's schedule multiplies it (chapter 9's `train_step`), so Muon's matrices and
# AdamW's embeddings warm up and decay together, each from its own peak.

# %%
#| export
class Optimizers:
    "Several optimizers stepped as one: `param_groups`, `step`, `zero_grad` and the state of all of them."
    def __init__(self, *optimizers): self.optimizers = optimizers
    @property
    def param_groups(self): return [g for o in self.optimizers for g in o.param_groups]
    def step(self, closure=None):
        for o in self.optimizers: o.step()
    def zero_grad(self, set_to_none: bool = True):
        for o in self.optimizers: o.zero_grad(set_to_none=set_to_none)
    def state_dict(self): return {"optimizers": [o.state_dict() for o in self.optimizers]}
    def load_state_dict(self, state):
        if len(state.get("optimizers", ())) != len(self.optimizers):
            raise ValueError("the saved optimizer state is not this run's optimizer: resume with the same --optimizer")
        for o, s in zip(self.optimizers, state["optimizers"]): o.load_state_dict(s)


# %% [markdown]
# Which weights go where: the matrices inside the transformer blocks (`c_attn`, `c_proj`, `c_fc`)
# to Muon; everything else (the embedding, an untied head, gains and biases) to AdamW with chapter 8's
# groups (decay on matrices only).

# %%
#| export
def muon_split(model) -> tuple[list, list]:
    "(the blocks' 2-D weights, everything else): Muon's parameters and AdamW's."
    hidden = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() == 2 and ".h." in f".{n}"]
    ids = {id(p) for p in hidden}
    return hidden, [p for p in model.parameters() if p.requires_grad and id(p) not in ids]

def configure_muon(model, lr: float, muon_lr: float, weight_decay: float, betas=(0.9, 0.95),
                   momentum: float = 0.95, eps: float = 1e-8) -> Optimizers:
    "Muon at `muon_lr` for the blocks' matrices, AdamW at `lr` for the rest; the groups carry their ratio to `lr`."
    hidden, rest = muon_split(model)
    adamw = torch.optim.AdamW([{"params": [p for p in rest if p.dim() >= 2], "weight_decay": weight_decay},
                               {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0}],
                              lr=lr, betas=tuple(betas), eps=eps)
    muon = Muon(hidden, lr=muon_lr, momentum=momentum, weight_decay=weight_decay)
    for g in muon.param_groups: g["lr_ratio"] = muon_lr / lr if lr else 1.0
    return Optimizers(muon, adamw)


# %%
m = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32, bias=False, tie_embeddings=False))
hidden, rest = muon_split(m)
test_eq(len(hidden), 2 * 4)                                     # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
assert any(p is m.transformer.wte.weight for p in rest) and any(p is m.lm_head.weight for p in rest)
opt = configure_muon(m, lr=4e-3, muon_lr=0.02, weight_decay=0.1)
test_eq([g.get("lr_ratio", 1.0) for g in opt.param_groups], [5.0, 1.0, 1.0])
test_eq(sum(p.numel() for g in opt.param_groups for p in g["params"]), m.num_params())   # every weight once

# %% [markdown]
# ## The other changes
#
# The rest of the modern recipe is small changes to the model, each a switch of `GPTConfig` whose
# code sits in the chapter of the part it changes, its default GPT-2's.
#
# - **QK-norm** (chapter 1; Dehghani et al. 2023, Wortsman et al. 2023): queries and keys scaled to
#   unit RMS per head before they meet. An attention score is then at most $\sqrt{hs}$ in size, so no
#   softmax can saturate because weights grew; it is the usual cure for loss spikes at high learning
#   rates, which is where a speedrun lives.
# - **ReLU²** (chapter 3; So et al. 2021): $\mathrm{relu}(x)^2$ in place of GELU, cheaper to compute and,
#   in Primer's search, better.
# - **Untied head and zero-initialised projections** (chapter 5): the head gets its own $(V, C)$ matrix,
#   so that the vector that reads a character need not also be the one that predicts it; and every
#   output projection starts at zero, so that each block starts as the identity and the first steps
#   train a shallow network that deepens as the projections grow.
# - **Logit softcap** (chapter 5; Gemma 2): logits pass through $c \tanh(z / c)$, smooth and bounded by
#   $c$, so the model cannot buy confidence by inflating a few logits.
# - **Rotary positions** (chapter 11): positions as rotations of queries and keys instead of a learned
#   table.
# - **Batch size**: the step's cost on a CPU grows less than linearly with the batch at this size (the
#   matrix products get more efficient), and Muon's orthogonalisation costs the same whatever the
#   batch, so a larger batch with fewer steps may win on the clock even where it loses per token.
#
# Two of them are pictured: the activations, and the softcap against the identity.

# %%
z = torch.linspace(-3, 3, 301)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
ax1.plot(z, torch.nn.functional.gelu(z), label="GELU (GPT-2)")
ax1.plot(z, torch.relu(z) ** 2, label="ReLU² (Primer)")
ax1.set_ylim(-0.5, 4); ax1.set_title("the MLP's activation"); ax1.legend()
zz = torch.linspace(-60, 60, 301)
ax2.plot(zz, zz, color="grey", lw=0.8, label="no cap")
ax2.plot(zz, 15 * torch.tanh(zz / 15), label="softcap 15")
ax2.set_ylim(-30, 30); ax2.set_xlabel("logit"); ax2.set_title("logit softcap c tanh(z / c)"); ax2.legend()
plt.tight_layout(); plt.show()

# %% [markdown]
# ## The rules
#
# The rules are written before the first record, after modded-nanogpt's.
#
# - **Task**: character-level Tiny Shakespeare with nanoGPT's split, the main job's data (chapter 7).
#   **Target**: validation loss at most 1.75 nats per character on the **whole** validation split
#   (`--eval_iters=0`: every one of its 111,540 characters, not the main job's 50-batch estimate).
# - **Baseline, record 0**: the main job's recipe (chapter 9: GPT-2's architecture, 4 layers, width
#   128, AdamW at 4e-3, 100 warm-up steps, cosine to a tenth), run for as many steps as it needs to
#   reach the target. The main job itself (2,000 steps) stops short of it.
# - **A record** is a fixed recipe whose mean final loss is below the target with $p < 0.01$ over at
#   least 5 seeds (a one-sided $t$-test of the mean against 1.75, as modded-nanogpt requires). Its
#   time is the mean wall time of those runs, each a whole process (`python -m gpt2book.train ...`,
#   start-up and data loading included) on a quiet machine, interleaved with the main job and the
#   baseline; the load average is recorded with every run. The number that counts is the ratio to
#   the baseline timed in the same sitting; absolute seconds are for the machine named.
# - **Every change is tried alone** on top of the current record, with the learning rate (and the
#   number of steps) re-tuned; what does not help is recorded too, with its numbers.

# %% [markdown]
# > **Module `gpt2book.speedrun`**: the speedrun's rules and records: the target, each record as the
# > change it makes, the settings of any record, and the record table with its one-sided tests.
#
# A record is written as the change it makes to the record before it. `record_settings` adds the
# changes up, from the `cpu` preset (the main job) to the named record; changes that were tried and
# not kept build on the last kept record, and the next record does not inherit them. Every record but
# the baseline also runs lean: one evaluation, at the end, on the whole validation split, no samples,
# one checkpoint (that change is itself record 1, so the table shows what it is worth).

# %%
#| export speedrun
TARGET = 1.75                       # nats per character, whole validation split
COLUMNS = ["sitting", "record", "seed", "steps", "val_loss", "wall_s", "load1", "threads", "cpu", "settings"]

def lean(steps: int) -> dict:
    "Run `steps` steps and evaluate once, at the end, on the whole split; no samples; one checkpoint; log every 50."
    return dict(max_steps=steps, eval_interval=steps, checkpoint_interval=steps, eval_iters=0, eval_first=False,
                sample_tokens=0, log_interval=50)


# %%
#| export speedrun
RECORDS = [   # (name, the change, its settings over the last kept record, kept)
    ("baseline", "the main job's recipe (chapter 9), run to the target", dict(max_steps=2350, eval_iters=0), True),
    ("lean", "evaluate once, at the end; no samples, one checkpoint", lean(2350), True),
    ("muon", "Muon (lr 0.04) for the blocks' matrices, AdamW for the rest", dict(optimizer="muon", muon_lr=0.04, **lean(950)), True),
    ("rope", "rotary positions instead of the learned table", dict(pos="rope", **lean(850)), True),
    ("qk-norm", "unit-RMS queries and keys", dict(qk_norm=True, **lean(720)), True),
    ("warmup 30", "30 warm-up steps instead of 100", dict(warmup_steps=30, **lean(640)), True),
    ("relu2", "ReLU² instead of GELU", dict(ffn="relu2"), False),
    ("zero-init", "output projections start at zero", dict(zero_init=True), False),
    ("untied head", "the head its own matrix", dict(tie_embeddings=False), False),
    ("softcap 15", "logits capped at 15", dict(logit_softcap=15.0), False),
    ("batch 24", "batches of 24, half the steps", dict(batch_size=24, **lean(320)), False),
]

def record_settings(name: str) -> dict:
    "The trainer settings (over the cpu preset) of record `name`: the kept changes before it, then its own."
    settings = {}
    for n, _, change, kept in RECORDS:
        if n == name: return {**settings, **change}
        if kept: settings = {**settings, **change}
    raise KeyError(f"no record {name!r}; the records are {[r[0] for r in RECORDS]}")


# %% [markdown]
# RoPE's record inherits Muon; a change tried and not kept builds on the last record and is gone
# from the next one:

# %%
test_eq(record_settings("rope")["optimizer"], "muon")
test_eq(record_settings("relu2")["max_steps"], record_settings("warmup 30")["max_steps"])
assert "ffn" not in record_settings("batch 24") and record_settings("batch 24")["qk_norm"]
test_fail(lambda: record_settings("adam"), contains="the records are")

# %% [markdown]
# ## The test of a record
#
# With $n$ seeds of mean $\bar L$ and standard deviation $s$, the one-sided $t$-test asks how likely
# a mean this far below the target would be if the recipe's true mean loss were the target itself:
# $t = (\bar L - 1.75) / (s / \sqrt n)$ and $p = F_{t,\,n-1}(t)$. A record needs $p < 0.01$: with
# five seeds of spread 0.005, a mean of 1.744 or lower. The time is the mean wall time with its 95%
# interval, and the ratio to the baseline of the same sitting, with an interval from both runs'
# spreads (the delta method on the logarithm of the ratio).

# %%
#| export speedrun
import math

import pandas as pd
from scipy import stats as st

def below_target(losses, target: float = TARGET) -> float:
    "One-sided p-value that the mean of `losses` is below `target` (t-test, n - 1 degrees of freedom)."
    x = pd.Series(losses, dtype=float)
    if len(x) < 2: return math.nan
    se = x.std(ddof=1) / math.sqrt(len(x))
    if se == 0: return 0.0 if x.mean() < target else 1.0
    return float(st.t.cdf((x.mean() - target) / se, len(x) - 1))

def ratio_interval(a, b, level: float = 0.95) -> tuple[float, float, float]:
    "mean(a) / mean(b) with a delta-method interval on its logarithm: (ratio, low, high)."
    a, b = pd.Series(a, dtype=float), pd.Series(b, dtype=float)
    r = a.mean() / b.mean()
    se = math.sqrt(a.var(ddof=1) / (len(a) * a.mean() ** 2) + b.var(ddof=1) / (len(b) * b.mean() ** 2))
    z = st.t.ppf(0.5 + level / 2, min(len(a), len(b)) - 1)
    return r, r * math.exp(-z * se), r * math.exp(z * se)

def record_table(rows: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    "One line per (sitting, record): seeds, mean loss and SD, p below the target, mean seconds, ratios to the baseline and main job."
    out = []
    for (sitting, name), g in rows.groupby(["sitting", "record"], sort=False):
        base = rows[(rows.sitting == sitting) & (rows.record == baseline)]
        main = rows[(rows.sitting == sitting) & (rows.record == "main job")]
        r, lo, hi = ratio_interval(g.wall_s, base.wall_s) if len(base) > 1 else (math.nan,) * 3
        mr, mlo, mhi = ratio_interval(g.wall_s, main.wall_s) if len(main) > 1 else (math.nan,) * 3
        half = st.t.ppf(0.975, len(g) - 1) * g.wall_s.std(ddof=1) / math.sqrt(len(g)) if len(g) > 1 else math.nan
        out.append(dict(sitting=sitting, record=name, steps=int(g.steps.iloc[0]), seeds=len(g),
                        loss=g.val_loss.mean(), loss_sd=g.val_loss.std(ddof=1), p=below_target(g.val_loss),
                        seconds=g.wall_s.mean(), seconds_ci=half, ratio=r, ratio_low=lo, ratio_high=hi,
                        main_ratio=mr, main_low=mlo, main_high=mhi, load=g.load1.mean()))
    return pd.DataFrame(out)


# %% [markdown]
# A change that is not kept is judged against the record it was tried on, seed by seed: the mean of
# the paired differences in loss, with a $t$ interval, and the ratio of the mean times.

# %%
#| export speedrun
def paired_delta(rows: pd.DataFrame, name: str, against: str) -> dict:
    "Loss of `name` minus `against` on the seeds both ran (mean, 95% t interval), and the ratio of their mean times."
    a = rows[rows.record == name].set_index("seed")
    b = rows[rows.record == against].set_index("seed").loc[a.index]
    d = a.val_loss - b.val_loss
    half = st.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else math.nan
    return dict(change=name, seeds=len(d), delta=d.mean(), ci_low=d.mean() - half, ci_high=d.mean() + half,
                time_ratio=a.wall_s.mean() / b.wall_s.mean())


# %% [markdown]
# The test on made-up seeds: a recipe at 1.740 ± 0.004 passes, one at 1.748 does not, and the ratio
# of two equal timings is 1 with an interval around it.

# %%
test_eq(below_target([1.736, 1.740, 1.744, 1.738, 1.742]) < 0.01, True)
test_eq(below_target([1.744, 1.748, 1.752, 1.746, 1.750]) < 0.01, False)
r, lo, hi = ratio_interval([10.0, 10.2, 9.8], [10.1, 9.9, 10.0])
assert lo < 1 < hi and abs(r - 1) < 0.01
fake = pd.DataFrame(dict(record=["a"] * 3 + ["b"] * 3, seed=[1, 2, 3] * 2, val_loss=[1.70, 1.71, 1.72, 1.74, 1.74, 1.75],
                        wall_s=[10.0] * 3 + [20.0] * 3))
d = paired_delta(fake, "b", "a")
test_close(d["delta"], 0.0333, eps=1e-3); assert 0 < d["ci_low"] < d["ci_high"]; test_eq(d["time_ratio"], 2.0)


# %% [markdown]
# The table as the chapter and the README print it: one line per record and per change tried, its
# seeds, mean loss with its SD, the $p$-value, mean seconds with a 95% interval, and the time ratio to
# the baseline and to the main job of the same sitting.

# %%
#| export speedrun
def table_markdown(table: pd.DataFrame, kept: dict) -> list[str]:
    "Markdown lines of `record_table`'s output; `kept` maps a name to whether it became a record."
    out = ["| # | record or change tried | steps | seeds | loss (SD) | p < 1.75 | seconds [95%] | / baseline [95%] | / main job [95%] |",
           "|---:|---|---:|---:|---|---:|---|---|---|"]
    k = 0
    for r in table.itertuples():
        if r.record == "main job": continue
        label = (r.record if r.p < 0.01 else f"{r.record} (fails the test)") if kept.get(r.record, False) \
            else f"*{r.record} (not kept)*"
        num = str(k) if kept.get(r.record, False) else ""
        k += kept.get(r.record, False)
        p = "n/a" if math.isnan(r.p) else ("< 0.0001" if r.p < 1e-4 else f"{r.p:.4f}")
        out.append(f"| {num} | {label} | {r.steps:,} | {r.seeds} | {r.loss:.4f} ({r.loss_sd:.4f}) | {p} | "
                   f"{r.seconds:.1f} [±{r.seconds_ci:.1f}] | {r.ratio:.2f} [{r.ratio_low:.2f}, {r.ratio_high:.2f}] | "
                   f"{r.main_ratio:.2f} [{r.main_low:.2f}, {r.main_high:.2f}] |")
    return out


# %% [markdown]
# ## Choosing what to time: the exploration
#
# Timing needs a quiet machine; choosing steps and rates does not, since a run's loss does not
# depend on how busy the machine is. So the choices were made first, on one seed (1337) and one
# thread, on this machine while chapter 13's study kept both cores busy (load average 3 to 7): 27
# runs of `python bench/speedrun.py explore` (their wall times say nothing), kept in
# `nbs/data/speedrun_explore.csv`. One seed is no test, and nothing below is concluded from these
# runs alone: each choice they suggested was then timed and tested on five seeds.

# %%
ex = pd.read_csv(Path("data/speedrun_explore.csv"))
show = ["steps", "optimizer", "muon_lr", "pos", "qk_norm", "ffn", "zero_init", "tie_embeddings", "logit_softcap",
        "batch_size", "warmup_steps", "learning_rate", "val_loss"]
print(ex[show].to_string(index=False))
mu = ex[(ex.optimizer == "muon") & (ex.steps == 1000) & (ex.pos == "learned") & ~ex.qk_norm & (ex.ffn == "mlp")
        & ~ex.zero_init & ex.tie_embeddings & (ex.logit_softcap == 0) & (ex.learning_rate == 0.004)]
best_rate = mu.loc[mu.val_loss.idxmin(), "muon_lr"]
test_eq(best_rate, 0.04)                                                    # recorded result: the sweep's best
assert ex[(ex.optimizer == "muon") & (ex.steps == 2000)].val_loss.min() < ex[ex.optimizer == "adamw"].val_loss.min()

# %% [markdown]
# What they suggested. **Muon** is the large change: at 2,000 steps it ends at 1.616 where AdamW
# (its rate 4e-3, chapter 10's sweep) ends at about 1.77, and on this seed it reaches the target in
# about 950 steps against AdamW's 2,300 (five seeds decide below). Its rate, swept by factors of 2 at 1,000 steps, is best at 0.04 (0.01:
# 1.740, 0.02: 1.728, 0.04: 1.717, 0.08: 1.838), with AdamW's part kept at 4e-3 (8e-3: 1.743).
# On top of Muon at 0.02 and 1,000 steps, one seed each: **rotary positions** 1.688 and **QK-norm**
# 1.705 (against 1.728), then zero-initialised projections 1.723 (within one seed's noise),
# an untied head 1.736 and a softcap of 15 1.739 (slightly worse), and **ReLU²** 1.787, clearly worse.
# QK-norm did not make a higher Muon rate work (0.08 with QK-norm: 1.800 at 800 steps). With
# Muon, RoPE and QK-norm at 600 steps, 30 warm-up steps instead of 100 gave 1.742 against 1.753.
# Batches of 24 at half the steps lost per token (1.773 at 320 steps against about 1.745 at 640).
#
# The timed table that follows tries each of these on five seeds (three for the ones not kept).

# %% [markdown]
# ## The records
#
# Every run below is a whole `python -m gpt2book.train` process, timed by `bench/speedrun.py` in one
# sitting on a quiet machine: for each seed in turn, the main job, the baseline, every record and
# every change tried, so that a slow minute slows all of them alike. The exact command:
#
# ```bash
# python bench/speedrun.py records        # writes nbs/data/speedrun.csv and speedrun_curves.csv
# ```
#
# and any one record can be run by hand: `python bench/speedrun.py explore NAME --set k=v ...`, or,
# for the last one, `python -m gpt2book.train --config=speedrun`.

# %%
rows = pd.read_csv(Path("data/speedrun.csv"))
table = record_table(rows)
kept = {n: k for n, _, _, k in RECORDS}
sitting = rows.sitting.iloc[-1]
print(f"sitting {sitting}: {rows.cpu.iloc[0]}, {rows.threads.iloc[0]} threads, load average "
      f"{rows.load1.min():.2f} to {rows.load1.max():.2f} at the runs' starts")
display(Markdown("\n".join(table_markdown(table[table.sitting == sitting], kept))))
tt = table[table.sitting == sitting].set_index("record")
assert tt.loc["baseline", "p"] < 0.01 and tt.loc["lean", "p"] < 0.01        # recorded result: records 0 and 1 pass
assert all(tt.loc[n, "p"] >= 0.01 for n in ("muon", "rope", "qk-norm", "warmup 30"))   # ... and no later one does
assert tt.loc["muon", "seconds"] < 0.6 * tt.loc["baseline", "seconds"] and tt.loc["muon", "loss"] < TARGET

# %% [markdown]
# Each change not kept, against the last record it was tried on, on the same seeds (negative: lower
# loss than the record):

# %%
now = rows[rows.sitting == sitting]
last = [n for n, _, _, k in RECORDS if k][-1]
deltas = pd.DataFrame([paired_delta(now, n, last) for n, _, _, k in RECORDS if not k and n in set(now.record)])
print(deltas.to_string(index=False, float_format=lambda x: f"{x:+.4f}" if abs(x) < 1 else f"{x:.3f}"))

# %% [markdown]
# Loss against the clock, for the baseline, the fastest record that passes its test and the last
# change kept: the training loss of the step at each
# line a process logged (every 10 steps for the baseline, 50 for the lean records) against seconds
# since the run began, each seed a line, and the final validation losses as points. The curves start after the
# process's start-up (importing PyTorch, reading the data, building the model), which the table's
# seconds include.

# %%
curves = pd.read_csv(Path("data/speedrun_curves.csv"))
t = table[(table.sitting == sitting) & table.record.map(kept).fillna(False).astype(bool)]
fastest = t[t.p < 0.01].sort_values("seconds").record.iloc[0]          # the fastest recipe that passes its test
fig, ax = plt.subplots(figsize=(8, 4))
for name, colour in dict.fromkeys([("baseline", "C0"), (fastest, "C2"), (last, "C3")]):
    c = curves[(curves.sitting == sitting) & (curves.record == name)]
    for i, (seed, g) in enumerate(c.groupby("seed")):
        tr = g[g.loss.notna()]
        ax.plot(tr.elapsed_s, tr.loss, color=colour, lw=0.8, alpha=0.7, label=name if i == 0 else None)
        ev = g[g.val_loss.notna()].tail(1)
        ax.plot(ev.elapsed_s, ev.val_loss, "o", color=colour, ms=4)
ax.axhline(TARGET, color="grey", ls="--", lw=0.8, label=f"target {TARGET}")
ax.set_ylim(1.3, 2.6); ax.set_xlabel("seconds since the run began"); ax.set_ylabel("loss (nats per character)")
ax.set_title("training loss (lines) and final validation loss (points)"); ax.legend(); plt.tight_layout(); plt.show()

# %% [markdown]
# ## What this sitting established, and what it did not
#
# The numbers are in the table above; what they say, read with the rule's test:
#
# - **Two records pass.** The baseline (the main job's recipe at 2,350 steps) is below 1.75 with
#   $p < 0.01$, and so is the same run evaluated once at the end ("lean": bit for bit the same loss,
#   since evaluation never touches the training), which takes about three quarters of the
#   baseline's time: a quarter of the baseline's wall time was spent evaluating on the whole split and
#   generating samples every 250 steps.
# - **Muon, RoPE and QK-norm reach the target on average but not with $p < 0.01$** at the step counts
#   that one seed suggested (950, 850 and 720 steps). Their means are 1.73 to 1.74, below 1.75, but
#   their seed-to-seed spread is 0.009 to 0.014 nats, three to four and a half times AdamW's 0.003 at 2,350 steps,
#   and five seeds of that spread need a mean near 1.73 or lower to pass. On the clock they are
#   the largest gains measured: Muon's 950 steps take about half the baseline's time even though a
#   Muon step costs about 1.6 times an AdamW step here (the Newton–Schulz products are as large as
#   the model's own), and RoPE and QK-norm each shorten the run further. The recipes that would pass
#   need more steps than were timed; this sitting does not say how many.
# - **30 warm-up steps** (the last change kept, `--config=speedrun`) lands above the target on
#   average at 640 steps, so it is not a record. At about half of the main job's time it is the
#   fastest recipe tried, but the goal (the target in at most half the main job's time, with
#   $p < 0.01$) is **not met** by this edition.
# - **Not kept**, each on two seeds against the last change on the same seeds: ReLU² is worse (as in
#   the exploration, where it was 0.06 nats behind GELU), batches of 24 at half the steps lose about
#   0.026 nats for a 6% shorter run, and an untied head, zero-initialised projections and a softcap
#   of 15 are within 0.007 nats of it with intervals across zero: ties on two seeds.
#
# Set against modded-nanogpt's published record log: there, Muon gave 1.26×, rotary positions
# (with a tuned rate) 1.43×, ReLU², QK-norm and zero-init together 1.47×, the untied head 1.11×.
# Here, at 0.8M parameters and 768-character batches on two CPU cores, Muon and rotary positions
# carry the gain in time (each well beyond its published factor in steps, Muon less so in seconds
# because its orthogonalisation is not cheap next to so small a model), QK-norm helps, and ReLU²,
# which modded-nanogpt and nanochat both adopted, loses. Why it loses here this chapter does not
# test; what it shows is that a published gain at GPT-2 scale is a hypothesis at this one.
#
# **`torch.compile` and threads**, measured in chapter 9 rather than as records: compiling saves
# about 1 ms of a 28 ms step on the machine that measured it and costs 2.6 s with a warm cache (36 s
# cold), more than it saves in a 640-step run, so it stays off; two threads make a step 1.65× faster
# than one on this machine (chapter 9's profile), so every run here used both cores.
