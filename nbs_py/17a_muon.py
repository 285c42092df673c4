# %% [markdown]
# # The laptop speedrun, part 1: Muon
#
# > What the modern recipe (Muon, QK-norm, ReLU², an untied head, zero-initialised projections, a logit softcap, U-net skips, rotary positions) and the size of the model are worth for a character-level model on two CPU cores, measured as a record table: each change tried alone on top of the current record, each record below the target with p < 0.01 over five seeds.

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
# | U-net skips | 7.8 → 7.2 min | 1.08× |
#
# They are quoted from the record log as published, not measured here.

# %%
#| export
import math
from dataclasses import dataclass

import torch

from gpt2book.common import SettingError, cpu_has_bf16, setting
from gpt2book.config import OPTIMIZERS, TRAIN_EXTENSIONS
from gpt2book.train import HOOKS

# %%
#| hide
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from fastcore.test import test_close, test_eq, test_fail
from IPython.display import Markdown, display

import gpt2book.positions  # noqa: F401  (registers pos=rope: chapter 11)
from gpt2book.config import make_config
from gpt2book.model import make_model, model_config

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
    "About U V^T for G = U S V^T, a matrix or a stack (k, rows, cols) of them: Frobenius normalisation, then `steps` quintic steps."
    if G.dim() not in (2, 3):
        raise ValueError(f"newton_schulz orthogonalises matrices (or a stack of them); got a tensor of shape {tuple(G.shape)}")
    a, b, c = coeffs
    mm_add = torch.addmm if G.dim() == 2 else torch.baddbmm   # C + A @ B in one call, for a matrix or a stack
    X = G.to(dtype or G.dtype)
    tall = X.size(-2) > X.size(-1)
    if tall: X = X.mT                           # iterate on the short side: X X^T is the smaller Gram matrix
    X = X / X.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)   # ||X||_2 <= ||X||_F = 1: every s in (0, 1]
    for _ in range(steps):
        A = X @ X.mT                            # (m, m)
        B = mm_add(A, A, A, beta=b, alpha=c)    # b A + c A^2
        X = mm_add(X, B, X, beta=a)             # a X + (b A + c A^2) X: s -> a s + b s^3 + c s^5
    return X.mT if tall else X


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
Gs = torch.randn(3, 64, 32)                                         # a stack: each matrix on its own
test_close(newton_schulz(Gs), torch.stack([newton_schulz(g) for g in Gs]), eps=1e-5)
test_fail(lambda: newton_schulz(torch.randn(2, 3, 4, 5)), contains="matrices")


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
                 weight_decay: float = 0.0, ns_steps: int = 5, ns_dtype: str = "bfloat16"):
        if not (lr >= 0 and 0 <= momentum < 1 and weight_decay >= 0 and ns_steps >= 1):
            raise ValueError(f"Muon needs lr >= 0, 0 <= momentum < 1, weight_decay >= 0 and ns_steps >= 1; got "
                             f"lr={lr}, momentum={momentum}, weight_decay={weight_decay}, ns_steps={ns_steps}")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                                      ns_steps=ns_steps, ns_dtype=ns_dtype, split=1))
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon updates matrices; a parameter of shape {tuple(p.shape)} belongs with AdamW")
                if p.size(0) % group["split"]:
                    raise ValueError(f"split={group['split']}: a matrix of {p.size(0)} rows is not that many blocks")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            mu, lr, shapes = group["momentum"], group["lr"], {}
            for p in group["params"]:
                if p.grad is None: continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.lerp_(p.grad, 1 - mu)                                       # B = mu B + (1 - mu) G
                update = p.grad.lerp(buf, mu) if group["nesterov"] else buf       # Nesterov: (1 - mu) G + mu B
                blocks = update.view(group["split"], -1, p.size(1))              # (split, rows / split, cols)
                shapes.setdefault(blocks.shape[1:], []).append((p, blocks))
            for (rows, cols), pairs in shapes.items():          # matrices (blocks) of one shape: one stacked iteration
                O = newton_schulz(torch.cat([b for _, b in pairs]), group["ns_steps"],
                                  dtype=getattr(torch, group["ns_dtype"]))      # (k, rows, cols)
                for (p, b), o in zip(pairs, O.split([len(b) for _, b in pairs])):
                    p.mul_(1 - lr * group["weight_decay"])                      # decoupled weight decay
                    p.add_(o.reshape(p.shape).to(p.dtype), alpha=-lr * max(1.0, rows / cols) ** 0.5)
        return loss


# %% [markdown]
# Two checks. The update of one step from zero momentum is $\eta\sqrt{\max(1, r/c)}\,\mathrm{NS}(G)$,
# whose singular values sit near $\eta$ times that factor: orthogonal to a tolerance. And where the
# installed PyTorch has `torch.optim.Muon`, ten steps of ours and of PyTorch's on the same weights
# and gradients agree (PyTorch runs the iteration in bfloat16, and so does ours by default).

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
    test_close(ten_steps(Muon), ten_steps(torch.optim.Muon), eps=1e-6)
test_fail(lambda: Muon([torch.nn.Parameter(torch.zeros(3))]), contains="AdamW")

# %% [markdown]
# ## What the orthogonalisation costs on a CPU
#
# Muon's extra work is the Newton–Schulz products. For an $m \times n$ matrix with $m \le n$ one step
# costs $2m^2 n + m^3$ multiply-adds ($X X^\top$, $A^2$, $B X$), five steps five times that. The
# linear layers themselves cost $mn$ per token each way, three times over for the forward and backward
# passes. With GPT-2-sized batches of a million tokens the orthogonalisation is a rounding error; with
# the main job's batch of $12 \times 64 = 768$ characters it is not:

# %%
ms = json.loads(Path("data/muon_step.json").read_text())
shapes = [tuple(s) for s in ms["shapes"]]
ns_macs = sum(5 * (2 * min(r, c) ** 2 * max(r, c) + min(r, c) ** 3) for r, c in shapes)
layer_macs = 3 * 768 * sum(r * c for r, c in shapes)            # forward + backward of the same matrices
print(f"{len(shapes)} matrices; Newton-Schulz {ns_macs / 1e9:.2f} G multiply-adds per step, "
      f"the layers' own matmuls {layer_macs / 1e9:.2f} G: {ns_macs / layer_macs:.0%}")
assert 0.5 < ns_macs / layer_macs < 0.8


# %% [markdown]
# Two economies, both PyTorch's own choices or modded-nanogpt's, cut the price. The matrices of one
# shape (every block's `c_attn`, say) are **stacked** and orthogonalised in one batched product,
# `torch.baddbmm` instead of `torch.addmm` (the `mm_add` above), so a step makes four calls per
# iteration where it made sixteen. And the iteration can run in **bfloat16**: Newton–Schulz is
# self-correcting (each step pulls the singular values back towards its band), so it tolerates 8-bit
# mantissas, and GPUs, and CPUs with bfloat16 instructions (AVX-512 BF16, AMX), multiply them
# faster. A CPU without them does the opposite: PyTorch converts every element in software, and the
# product is thirty to forty times *slower* than in float32. So the trainer's `--muon_ns_dtype=auto` asks
# PyTorch what the CPU has and picks bfloat16 only where it is fast (`ns_dtype_for`).
# `bench/muon_step.py` times the four ways and the whole step; here on two machines that both call
# themselves "AMD EPYC", one with AVX-512 BF16 and one with AVX2 only (appendix B's `cpu_name`
# tells them apart):

# %%
def show_muon_step(path):
    ms_ = json.loads(Path(path).read_text())
    m_ = ms_["machine"]
    cap = m_.get("cpu_capability", "not recorded; bfloat16 faster than float32 says BF16")
    print(f"{m_['cpu']} ({cap}), {m_['threads']} threads, median of {ms_['reps']}:")
    for how, t in ms_["ns_ms"].items(): print(f"  Newton-Schulz, {how:26} {t:7.2f} ms per step")
    for name, t in ms_["step_ms"].items(): print(f"  the whole trainer step, {name:25} {t:7.1f} ms")
    return ms_

fast, avx2 = show_muon_step("data/muon_step.json"), show_muon_step("data/muon_step_avx2.json")
assert fast["ns_ms"]["stacked by shape, bfloat16"] < 0.7 * fast["ns_ms"]["one at a time, float32"]   # recorded results
assert avx2["ns_ms"]["stacked by shape, bfloat16"] > 10 * avx2["ns_ms"]["stacked by shape, float32"]
assert avx2["auto_ns_dtype"] == "float32"                                   # what the trainer's auto chose there (below)


# %% [markdown]
# With its bfloat16 instructions, the first machine's Muon step costs 1.3 times AdamW's; on the
# second, bfloat16 would make it fifteen times AdamW's, and float32 keeps it at 1.4. (The first
# sittings of this chapter's records ran on the first machine, with bfloat16; later sittings name
# their machine and its instructions in every row.)

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
                   momentum: float = 0.95, eps: float = 1e-8, ns_steps: int = 5, muon_weight_decay: float | None = None,
                   split_qkv: bool = False, embed_lr: float | None = None, head_lr: float | None = None,
                   ns_dtype: str = "bfloat16") -> Optimizers:
    """Muon at `muon_lr` for the blocks' matrices (weight decay `muon_weight_decay`, default `weight_decay`; with
    `split_qkv` each c_attn's query, key and value blocks orthogonalised apart), AdamW at `lr` for the rest (the token
    embedding at `embed_lr` and an untied head at `head_lr` where given); the groups carry their ratio to `lr`."""
    hidden, rest = muon_split(model)
    named = dict(model.named_parameters())                      # a tied head is wte's matrix, named once as wte
    if head_lr is not None and "lm_head.weight" not in named:
        raise ValueError("head_lr: this model's head is its token embedding (tied); untie it (tie_embeddings=False) "
                         "or give the embedding its rate with embed_lr")
    own = {id(named[n]): r for n, r in (("transformer.wte.weight", embed_lr), ("lm_head.weight", head_lr)) if r is not None}
    ratio = lambda r: r / lr if lr else 1.0
    adamw = torch.optim.AdamW([{"params": [p for p in rest if p.dim() >= 2 and id(p) not in own], "weight_decay": weight_decay},
                               {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
                               *({"params": [p], "weight_decay": weight_decay, "lr": own[id(p)], "lr_ratio": ratio(own[id(p)])}
                                 for p in rest if id(p) in own)],
                              lr=lr, betas=tuple(betas), eps=eps)
    qkv = {id(p) for n, p in model.named_parameters() if split_qkv and n.endswith("attn.c_attn.weight")}
    groups = [{"params": [p for p in hidden if id(p) not in qkv]}, {"params": [p for p in hidden if id(p) in qkv], "split": 3}]
    muon = Muon([g for g in groups if g["params"]], lr=muon_lr, momentum=momentum, ns_steps=ns_steps, ns_dtype=ns_dtype,
                weight_decay=weight_decay if muon_weight_decay is None else muon_weight_decay)
    for g in muon.param_groups: g["lr_ratio"] = ratio(muon_lr)
    return Optimizers(muon, adamw)


# %%
m = make_model(model_config(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32, bias=False))
hidden, rest = muon_split(m)
test_eq(len(hidden), 2 * 4)                                     # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
assert any(p is m.transformer.wte.weight for p in rest)         # (an untied head joins it too: below)
opt = configure_muon(m, lr=4e-3, muon_lr=0.02, weight_decay=0.1)
test_eq([g.get("lr_ratio", 1.0) for g in opt.param_groups], [5.0, 1.0, 1.0])
test_eq(sum(p.numel() for g in opt.param_groups for p in g["params"]), m.num_params())   # every weight once


# %% [markdown]
# We register Muon with chapter 9's trainer: its settings join the run's (`TRAIN_EXTENSIONS`:
# `--muon_lr`, `--muon_momentum`, `--muon_ns_steps` and the three knobs below), and
# `OPTIMIZERS["muon"]` builds it for a run, so `--optimizer=muon` is a valid setting from the moment
# this module is imported.
#
# Four knobs that the speedrun's later records try, each off by default:
#
# - **A momentum warm-up** (`--muon_momentum_warmup=N`; modded-nanogpt raises Muon's momentum from
#   0.85 to 0.95 over its first 300 steps). Early gradients change direction fast, and a long memory
#   of them slows the first descent; the momentum rises linearly with the step, set before each
#   step by a function registered in chapter 9's `HOOKS.before_step`, so a resumed run gets the
#   same momentum at the same step.
# - **Queries, keys and values orthogonalised apart** (`--muon_split_qkv`). `c_attn` is three
#   matrices stacked, $(3C, C)$; orthogonalising the stack makes the three share one set of
#   singular directions and sizes. Split, each $(C, C)$ block gets its own orthogonal update,
#   as if they were three separate layers (modded-nanogpt's later records do this).
# - **Muon's own weight decay** (`--muon_weight_decay`): by default the run's `weight_decay`, the
#   same as AdamW's; a record may sweep it alone.
# - **The embedding's and an untied head's own rates** (`--embed_lr`, `--head_lr`). An embedding
#   row moves only when its token appears, a head row on every step; modded-nanogpt gives the two
#   rates that differ by almost a hundredfold. A fair test of an untied head tunes both.

# %%
#| export
@dataclass
class MuonSettings:
    "Chapter 17's training settings: Muon's."
    muon_lr: float = setting(0.02, "optimizer=muon: the matrices' peak learning rate (learning_rate stays AdamW's)",
                             low=0.0)
    muon_momentum: float = setting(0.95, "optimizer=muon: Muon's Nesterov momentum", low=0.0, high=0.9999)
    muon_ns_steps: int = setting(5, "optimizer=muon: Newton-Schulz steps per update (chapter 17)", low=1, high=20)
    muon_weight_decay: float = setting(-1.0, "optimizer=muon: the matrices' decoupled weight decay (-1: weight_decay, "
                                             "as AdamW's)", low=-1.0)
    muon_momentum_warmup: int = setting(0, "optimizer=muon: steps over which the momentum rises linearly from "
                                           "muon_momentum_start to muon_momentum (0: none)", low=0)
    muon_momentum_start: float = setting(0.85, "optimizer=muon: the momentum at step 0 of a warm-up", low=0.0, high=0.9999)
    muon_split_qkv: bool = setting(False, "optimizer=muon: orthogonalise the query, key and value blocks of c_attn apart")
    embed_lr: float = setting(-1.0, "optimizer=muon: the token embedding's peak AdamW rate (-1: learning_rate)", low=-1.0)
    head_lr: float = setting(-1.0, "optimizer=muon: an untied head's peak AdamW rate (-1: learning_rate)", low=-1.0)
    muon_ns_dtype: str = setting("auto", "optimizer=muon: the Newton-Schulz iteration's dtype; auto: bfloat16 on GPUs "
                                         "and on CPUs with bfloat16 instructions, float32 on others",
                                 choices=("auto", "bfloat16", "float32"))

    def check(self):
        if self.head_lr >= 0 and getattr(self.model, "tie_embeddings", True):     # GPT-2 ties; chapter 17b can untie
            raise SettingError(f"head_lr={self.head_lr}: this model's head is its token embedding (tied); add "
                               f"tie_embeddings=False (chapter 17), or give the shared matrix its rate with embed_lr")

def ns_dtype_for(device_type: str, setting: str = "auto") -> str:
    "The Newton-Schulz dtype a run uses: `setting`, or for auto bfloat16 where it is fast (GPUs, CPUs with BF16), else float32."
    if setting != "auto": return setting
    return "bfloat16" if device_type == "cuda" or (device_type == "cpu" and cpu_has_bf16()) else "float32"

def muon_optimizer(model, cfg, device_type: str) -> Optimizers:
    "A run's optimizer for `--optimizer=muon`: Muon for the blocks' matrices, AdamW (the run's) for the rest."
    return configure_muon(model, cfg.learning_rate, cfg.muon_lr, cfg.weight_decay, (cfg.beta1, cfg.beta2),
                          cfg.muon_momentum, ns_steps=cfg.muon_ns_steps, split_qkv=cfg.muon_split_qkv,
                          ns_dtype=ns_dtype_for(device_type, cfg.muon_ns_dtype),
                          muon_weight_decay=None if cfg.muon_weight_decay < 0 else cfg.muon_weight_decay,
                          embed_lr=None if cfg.embed_lr < 0 else cfg.embed_lr, head_lr=None if cfg.head_lr < 0 else cfg.head_lr)

def muon_momentum(cfg, step: int) -> float:
    "Muon's momentum at `step`: muon_momentum, or on its way there from muon_momentum_start during the warm-up."
    f = min(step / cfg.muon_momentum_warmup, 1.0) if cfg.muon_momentum_warmup else 1.0
    return (1 - f) * cfg.muon_momentum_start + f * cfg.muon_momentum

def warm_momentum(s) -> None:
    "Before each step of a Muon run with a momentum warm-up: set Muon's momentum for this step."
    if s.cfg.optimizer != "muon" or not s.cfg.muon_momentum_warmup: return
    for group in s.optimizer.optimizers[0].param_groups: group["momentum"] = muon_momentum(s.cfg, s.step)

OPTIMIZERS["muon"] = muon_optimizer
TRAIN_EXTENSIONS.append(MuonSettings)
HOOKS.before_step.append(warm_momentum)

# %% [markdown]
# The three knobs, checked. The momentum warm-up is a straight line from 0.85 to 0.95 and then
# flat. Split, each block of a `c_attn` update is orthogonal on its own (its singular values near
# one), which the stacked update is not; a matrix whose rows are not three blocks is refused. And
# Muon's weight decay is its own when set, AdamW's when not:

# %%
cfg = make_config("cpu", optimizer="muon", muon_momentum_warmup=300)
test_eq([round(muon_momentum(cfg, s), 4) for s in (0, 150, 300, 1000)], [0.85, 0.9, 0.95, 0.95])
test_eq(muon_momentum(make_config("cpu", optimizer="muon"), 0), 0.95)                  # no warm-up: 0.95 from step 0
test_eq([ns_dtype_for("cuda"), ns_dtype_for("cpu", "bfloat16")], ["bfloat16", "bfloat16"])
test_eq(ns_dtype_for("cpu"), "bfloat16" if cpu_has_bf16() else "float32")              # auto: what this CPU does fast

torch.manual_seed(5)
m = make_model(model_config(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=32, bias=False))
c_attn = m.transformer.h[0].attn.c_attn.weight                                          # (3C, C) = (96, 32)
def first_update(split_qkv):
    with torch.no_grad(): w0 = c_attn.detach().clone()
    opt = configure_muon(m, lr=1e-3, muon_lr=0.1, weight_decay=0.0, split_qkv=split_qkv)
    for p in m.parameters(): p.grad = torch.randn_like(p)
    opt.step(); opt.zero_grad()
    step_ = (w0 - c_attn.detach()) / 0.1
    with torch.no_grad(): c_attn.copy_(w0)
    return step_
blocks = first_update(True).view(3, 32, 32)
sv = torch.linalg.svdvals(blocks)                                                        # (3, 32)
assert 0.6 < sv.min() and sv.max() < 1.25                                                # each block orthogonal alone
assert torch.linalg.svdvals(first_update(False).view(3, 32, 32)).min() < 0.5            # the stacked update's blocks are not
test_eq([g["split"] for g in configure_muon(m, 1e-3, 0.1, 0.0, split_qkv=True).optimizers[0].param_groups], [1, 3])
test_fail(lambda: Muon([{"params": [torch.nn.Parameter(torch.zeros(10, 4))], "split": 3}]), contains="not that many blocks")
wd = lambda **kw: {g["weight_decay"] for g in configure_muon(m, 1e-3, 0.1, 0.1, **kw).optimizers[0].param_groups}
test_eq((wd(), wd(muon_weight_decay=0.0)), ({0.1}, {0.0}))
groups = configure_muon(m, 1e-3, 0.1, 0.1, embed_lr=5e-2).optimizers[1].param_groups
test_eq([(len(g["params"]), g["lr"], g.get("lr_ratio", 1.0)) for g in groups][-1], (1, 5e-2, 50.0))
assert groups[-1]["params"][0] is m.transformer.wte.weight                               # the embedding alone, at its own rate
test_fail(lambda: configure_muon(m, 1e-3, 0.1, 0.1, head_lr=1e-2), contains="tied")     # a tied head has no rate of its own
test_fail(lambda: make_config("cpu", optimizer="muon", head_lr=1e-2), contains="tie_embeddings=False")   # refused when read

# %% [markdown]
# Next: [part 2](17b_recipe.ipynb), the model changes of the modern recipe; then [part 3](17c_speedrun.ipynb), the rules and the record table.
