# %% [markdown]
# # Mixture of experts
#
# > Many feed-forward networks per block and a router that sends each token to a few of them: more parameters for the same compute per token, the load-balancing loss that keeps the experts busy, and what it costs on a CPU.

# %%
#| default_exp moe

# %% [markdown]
# A dense model spends the same compute on every token: every weight of every FFN multiplies every
# token's vector. A **mixture of experts** (MoE; Shazeer et al. 2017, GShard 2020, Switch
# Transformer 2021, Mixtral 2024) replaces a block's FFN by $E$ FFNs, the *experts*, and a small
# **router** that picks, for each token, the $k$ experts that process it. The model has about $E$
# times the FFN parameters, but each token uses only $k$ of the $E$ experts: parameters grow, the
# compute per token does not. [The seed project](00_index.ipynb#the-seed-project) had a switch for a top-2 mixture of 8 experts, never
# tested; this chapter builds one that is.
#
# ## Routing
#
# For a token with vector $x \in \mathbb{R}^C$ (after the block's second norm), the router is one
# linear layer without bias, $W_r \in \mathbb{R}^{E \times C}$, giving a score per expert and, by a
# softmax over all $E$, a probability $p_e(x)$ per expert. The token goes to the $k$ experts with
# the largest scores, $\mathcal{T} = \operatorname{top-}k(W_r x)$, and their outputs are mixed with
# weights, the **gates** $g_e$:
#
# $$\mathrm{MoE}(x) = \sum_{e \in \mathcal{T}} g_e\, \mathrm{FFN}_e(x), \qquad
# g_e = \begin{cases} p_e(x) & k = 1 \text{ (Switch Transformer)} \\
# \dfrac{p_e(x)}{\sum_{j \in \mathcal{T}} p_j(x)} = \dfrac{e^{(W_r x)_e}}{\sum_{j \in \mathcal{T}} e^{(W_r x)_j}} & k \ge 2 \text{ (Mixtral: a softmax over the chosen } k) \end{cases}$$
#
# The gates are what the router learns from: the choice of $\mathcal{T}$ is discrete and passes no
# gradient, but the output depends smoothly on $g$, so the router is pushed to weigh the better
# expert more, and then to choose it. That is why $k = 1$ must not renormalise: over a single chosen
# expert the renormalised gate is $p_e / p_e = 1$ for every token, the output no longer depends on
# the router's weights at all, and the router gets no gradient from the task loss (only from the
# balancing loss below). Switch (Fedus et al. 2021) multiplies the expert's output by $p_e(x)$ itself.
# For $k \ge 2$ both are in use: Mixtral (like GShard's top-2) renormalises over the chosen experts,
# the layer's default (`renormalize=True`); OLMoE keeps the raw probabilities (`norm_topk_prob: false`
# in its Hugging Face config), which is `renormalize=False` here.
#
# ## Every token, exactly: dropless routing with a loop over experts
#
# The simplest exact implementation loops over the experts: gather the tokens that chose expert
# $e$ (and in which of their $k$ slots), run the expert on just those rows, scale by the gate and
# add the result back into the tokens' rows (`index_add_`). Every token is processed by exactly
# its $k$ experts, none is dropped, and a token's output depends on that token alone.
#
# Production systems do it differently, for speed on GPUs. GShard and Switch give each expert a
# fixed **capacity** (a capacity factor times the fair share $N k / E$ of the $N$ tokens) so that
# every expert's batch has a static shape, and **drop** the tokens past it (they skip the FFN and
# ride the residual stream): then a token's output depends on which other tokens were in the batch.
# Newer systems (MegaBlocks, 2022; the grouped GEMM kernels of current frameworks) are dropless:
# they sort the tokens by expert and run all experts as one grouped matrix multiplication of
# variable-size groups, which is our loop done in one kernel.

# %%
#| export
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gpt2book.block import BLOCK_FFNS
from gpt2book.common import SettingError, setting
from gpt2book.ffn import FFNS, make_ffn
from gpt2book.config import GPT2_124M, TRAIN_EXTENSIONS, TRAIN_PRESETS
from gpt2book.model import MODEL_EXTENSIONS
from gpt2book.train import HOOKS

# %%
import math

import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail

from pathlib import Path

from gpt2book.ffn import MLP


# %% [markdown]
# ## The load-balancing loss
#
# Left alone, routing collapses: an expert that is picked a little more often gets more gradient,
# gets better, and is picked even more, until a few experts do all the work and the rest are dead
# weight. The fix of GShard and Switch is an auxiliary loss that is smallest when the load is
# even. Over the $N$ tokens of a batch, let
#
# - $f_e$ be the fraction of the $N k$ routing slots that went to expert $e$ (counted, no gradient),
# - $P_e = \frac1N \sum_{\text{tokens}} p_e(x)$ the mean router probability of $e$ (softmax over all $E$; differentiable).
#
# $$\mathcal{L}_\text{balance} = E \sum_{e=1}^{E} f_e\, P_e .$$
#
# With an even load and even probabilities, $f_e = P_e = 1/E$ and $\mathcal{L}_\text{balance} = 1$;
# with every token on one expert that the router is sure of, it is $E$. But its *value* is not a
# measure of balance. While the router's probabilities are near uniform (as at the start of
# training), $P_e \approx 1/E$ and $\mathcal{L}_\text{balance} \approx \sum_e f_e = 1$ whatever the
# load, every token on one expert included; and it falls below 1 where the probability mass sits on
# the less-loaded experts (loads $(2/3, 1/3)$ with $P = (1/3, 2/3)$ give $8/9$). What it is for is its
# gradient, $\partial \mathcal{L}_\text{balance} / \partial P_e = E f_e$: it lowers the probability
# of each expert in proportion to its load, and so moves tokens off the busy ones. It is added to
# the training loss with a small weight (Switch: $\alpha = 0.01$; the trainer's `--aux_loss_weight`),
# and the validation loss stays the cross-entropy alone. To see how even a load is, we look at the
# load itself: each expert's share of the routing slots, the smallest and the largest share (each
# $1/E$ when even) and their coefficient of variation, the standard deviation of the shares over
# their mean (0 when even).
#
# ST-MoE (Zoph et al. 2022) adds a second auxiliary loss, the **router z-loss**: the mean over tokens
# of the squared log-sum-exp of the router's scores, with a weight of $10^{-3}$. It keeps the scores
# small, so that the router's exponentials stay accurate in low precision (it made their large
# models' training stable); the runs here are in float32 and do without it.

# %%
#| export
def balance_loss(probs, chosen, n_expert):
    "Switch/GShard load-balancing loss E * sum_e f_e P_e: probs (N, E) router softmax, chosen (N, k) expert ids."
    f = torch.bincount(chosen.flatten(), minlength=n_expert).to(probs.dtype) / chosen.numel()  # (E,) share of slots
    P = probs.mean(0)                                                                           # (E,) mean probability
    return n_expert * (f * P).sum()

def load_spread(tokens_per_expert) -> dict:
    "How even one layer's load (E,) is: the smallest and largest share of the slots (even: 1/E) and their coefficient of variation (even: 0)."
    n = torch.as_tensor(tokens_per_expert, dtype=torch.float64)
    share = n / n.sum()
    return {"min_share": share.min().item(), "max_share": share.max().item(), "cv": (share.std(correction=0) / share.mean()).item()}


# %%
E = 4
even = torch.full((8, E), 1 / E)
test_close(balance_loss(even, torch.arange(8).view(8, 1) % E, E), torch.tensor(1.0))       # even: 1
collapsed = F.one_hot(torch.zeros(8, dtype=torch.long), E).float()
test_close(balance_loss(collapsed, torch.zeros(8, 1, dtype=torch.long), E), torch.tensor(float(E)))  # one sure expert: E
one_expert = torch.zeros(8, 1, dtype=torch.long)                                   # every token on expert 0 ...
test_close(balance_loss(even, one_expert, E), torch.tensor(1.0))                   # ... with uniform probabilities: 1
near = (torch.full((8, E), 1 / E) + 0.01 * torch.randn(8, E, generator=torch.Generator().manual_seed(0))).softmax(-1)
print(f"every token on one expert, near-uniform probabilities: {balance_loss(near, one_expert, E).item():.3f}")
P = torch.tensor([[1 / 3, 2 / 3]]).repeat(3, 1)                                     # the mass on the lighter expert
test_close(balance_loss(P, torch.tensor([[0], [0], [1]]), 2), torch.tensor(8 / 9))  # loads 2/3, 1/3: below 1
P = torch.full((6, E), 1 / E, requires_grad=True)
chosen = torch.tensor([[0], [0], [0], [1], [2], [3]])                              # loads 1/2, 1/6, 1/6, 1/6
balance_loss(P, chosen, E).backward()
test_close(P.grad.sum(0), E * torch.tensor([1 / 2, 1 / 6, 1 / 6, 1 / 6]))           # dL/dP_e = E f_e: pushes the busy expert down
test_eq(load_spread([2, 2, 2, 2]), {"min_share": 0.25, "max_share": 0.25, "cv": 0.0})
test_close(load_spread([6, 0, 0, 0])["cv"], math.sqrt(3))                           # all on one of 4: sqrt(E - 1)


# %% [markdown]
# ## The layer
#
# `MoE` holds the router and the experts, named so that a state dict says what is what
# (`mlp.router.weight`, `mlp.experts.3.c_fc.weight`; it sits in the block's `mlp` slot). Each expert
# is one of the book's FFNs, `MLP` or `SwiGLU`, with its own hidden width: by default the dense
# FFN's ($4C$, or SwiGLU's $\frac83 C$), the convention of Switch and Mixtral. The whole router, its
# matrix product and its softmax, computes in float32 even under autocast (a ranking of few, close
# scores is where bfloat16's 3 digits would decide the routing; Switch computes its router in float32
# for the same reason).
# After each forward the layer keeps its balancing loss (`aux_loss`, with gradient, for the
# trainer) and how many tokens each expert got (`tokens_per_expert`, for the plots). These are the
# protocols of chapter 5's model: its `aux_loss()` averages every module's `aux_loss`, and its
# `num_params(active=True)` subtracts what a module's `inactive_params()` says a token leaves idle,
# here the $E - k$ experts it does not choose. The model never names the mixture.

# %%
#| export
class MoE(nn.Module):
    "Top-k mixture of `n_expert` FFNs (the book's MLP or SwiGLU) behind a linear router; dropless, exact."
    def __init__(self, n_embd, n_expert=8, top_k=2, expert="mlp", hidden=None, dropout=0.0, bias=True, gelu="tanh",
                 renormalize=True):
        super().__init__()
        if not 1 <= top_k <= n_expert:
            raise ValueError(f"top_k={top_k} must be between 1 and n_expert={n_expert}")
        self.n_expert, self.top_k = n_expert, top_k
        self.renormalize = renormalize and top_k > 1   # Mixtral's gates for k >= 2; k = 1: the probability (Switch)
        self.router = nn.Linear(n_embd, n_expert, bias=False)
        self.experts = nn.ModuleList(make_ffn(expert, n_embd, dropout, bias, hidden, gelu) for _ in range(n_expert))
        self.aux_loss = self.tokens_per_expert = None   # set by forward

    def inactive_params(self) -> int:
        "Parameters a token leaves idle: the n_expert - top_k experts it does not choose."
        return (self.n_expert - self.top_k) * sum(p.numel() for p in self.experts[0].parameters())

    def route(self, x):
        "Router probabilities (N, E), the chosen experts (N, k) and their gates (N, k) for tokens x (N, C)."
        with torch.autocast(x.device.type, enabled=False):           # float32 even under autocast
            probs = F.linear(x.float(), self.router.weight.float()).softmax(dim=-1)   # (N, E)
        top_p, chosen = probs.topk(self.top_k, dim=-1)               # (N, k) each, best first
        if self.renormalize: top_p = top_p / top_p.sum(-1, keepdim=True)   # softmax over the chosen k
        return probs, chosen, top_p                                   # gates (N, k)

    def forward(self, x):
        B, T, C = x.shape
        xf = x.reshape(B * T, C)                                      # (N, C): each token on its own
        probs, chosen, gates = self.route(xf)
        out = torch.zeros_like(xf)
        for e, expert in enumerate(self.experts):                     # an expert with no token still runs
            tok, slot = torch.where(chosen == e)                      # (n_e,) tokens that chose e, and the slot
            y = expert(xf[tok]) * gates[tok, slot, None]              # (n_e, C)
            out.index_add_(0, tok, y.to(out.dtype))                   # (on 0 rows, so DDP sees every weight used)
        self.aux_loss = balance_loss(probs, chosen, self.n_expert)
        self.tokens_per_expert = torch.bincount(chosen.flatten(), minlength=self.n_expert).detach()
        return out.view(B, T, C)


# %% [markdown]
# The layer is the formula: one token at a time, by hand, against the batched loop, for top-2
# (Mixtral's gates, renormalised and not) and for top-1 (Switch's gate, the probability itself).

# %%
torch.manual_seed(0)
x = torch.randn(2, 5, 16)
for k, renormalize in ((2, True), (2, False), (1, True)):
    moe = MoE(n_embd=16, n_expert=4, top_k=k, renormalize=renormalize).eval()
    y = moe(x)
    test_eq(y.shape, x.shape)
    for b in range(2):
        for t in range(5):
            scores = moe.router(x[b, t])                               # (E,)
            top = scores.topk(k).indices
            g = scores[top].softmax(-1) if k > 1 and renormalize else scores.softmax(-1)[top]
            by_hand = sum(g[j] * moe.experts[int(e)](x[b, t]) for j, e in enumerate(top))
            test_close(y[b, t], by_hand, eps=1e-5)
    test_eq(int(moe.tokens_per_expert.sum()), 2 * 5 * k)               # N tokens x k slots
print("tokens per expert:", moe.tokens_per_expert.tolist(), " balance loss:", round(moe.aux_loss.item(), 3))

# %% [markdown]
# **Dropless means batch-independent.** A sequence gives the same output alone and in a batch with
# other sequences. Against it, a capacity-limited router (written here only to show the difference,
# not exported): with a capacity factor of 1, a token whose expert is full is dropped, and which
# tokens are dropped depends on the rest of the batch.

# %%
torch.manual_seed(1)
moe = MoE(n_embd=16, n_expert=4, top_k=1).eval()
seq = torch.randn(1, 6, 16)
others = torch.randn(7, 6, 16)
with torch.no_grad():
    alone, batched = moe(seq), moe(torch.cat([seq, others]))[:1]
test_close(batched, alone, eps=1e-6)

def capacity_moe(moe, x, capacity_factor=1.0):
    "Switch-style top-1 routing with a fixed capacity per expert; tokens past it are dropped (output 0)."
    xf = x.reshape(-1, x.size(-1))
    _, chosen, gates = moe.route(xf)
    cap = math.ceil(capacity_factor * len(xf) / moe.n_expert)
    out = torch.zeros_like(xf)
    for e, expert in enumerate(moe.experts):
        tok = torch.where(chosen[:, 0] == e)[0][:cap]                 # first come, first served
        out[tok] = expert(xf[tok]) * gates[tok, 0, None]
    return out.view_as(x)

with torch.no_grad():
    cap_alone, cap_batched = capacity_moe(moe, seq), capacity_moe(moe, torch.cat([seq, others]))[:1]
dropped = (cap_batched == 0).all(-1).sum().item()
print(f"capacity routing: {dropped} of 6 tokens of the sequence dropped in the batch of 8, "
      f"{(cap_alone == 0).all(-1).sum().item()} when alone")
assert not torch.allclose(cap_batched, cap_alone)


# %% [markdown]
# ## We register `ffn="moe"`
#
# Chapter 4's block builds its feed-forward slot with the function `BLOCK_FFNS` holds under
# `config.ffn`, and chapter 5's config takes its `ffn` choices from that dict. So the mixture
# joins the model by one entry, `BLOCK_FFNS["moe"]`, a function that builds an `MoE` from the
# config. Its four settings join the config the same way as chapter 11's `rope_theta`: a dataclass
# appended to `MODEL_EXTENSIONS` (the same names, defaults and help texts the command line shows),
# whose `check` refuses more experts per token than there are.

# %%
#| export
@dataclass
class MoESettings:
    "Chapter 12's model settings: the mixture of experts (`ffn=moe`)."
    n_expert: int = setting(8, "ffn=moe: experts per block", low=1)
    expert_top_k: int = setting(2, "ffn=moe: experts per token", low=1)
    expert_ffn: str = setting("mlp", "ffn=moe: each expert's kind, mlp | swiglu", choices=FFNS)
    expert_hidden: int = setting(0, "ffn=moe: each expert's hidden width; 0: the dense FFN's (4C, or SwiGLU's 8C/3)",
                                 low=0)

    def check(self):
        if self.expert_top_k > self.n_expert:
            raise SettingError(f"expert_top_k={self.expert_top_k} must be at most n_expert={self.n_expert}")

def moe_ffn(config) -> MoE:
    "The feed-forward slot of a block with ffn='moe': a mixture of the config's experts."
    return MoE(config.n_embd, config.n_expert, config.expert_top_k, config.expert_ffn,
               config.expert_hidden or None, config.dropout, config.bias, config.gelu)

BLOCK_FFNS["moe"] = moe_ffn
MODEL_EXTENSIONS.append(MoESettings)


# %% [markdown]
# Two helpers find the mixture in a model and report it, for the trainer's log (below) and for
# this chapter's checks: `moe_layers` lists a model's MoE layers, and `moe_stats` is the dict a
# training line gets (the balancing loss and the tokens each expert got; nothing for a dense model).

# %%
#| export
def moe_layers(model) -> list:
    "The MoE layers of `model`, in order (none for a dense model)."
    return [m for m in model.modules() if isinstance(m, MoE)]

def moe_stats(model, aux_loss) -> dict:
    "What a training line records of a mixture: the balancing loss and each layer's tokens per expert; {} if dense."
    layers = moe_layers(model)
    if not layers: return {}
    return {"aux_loss": aux_loss, "expert_tokens": [m.tokens_per_expert.tolist() for m in layers]}


# %% [markdown]
# **Gradients reach every part**: the experts through their outputs, the router through the
# gates and through the balancing loss; an expert that no token chose still gets a (zero)
# gradient, so distributed training (DDP) never finds an unused parameter.
#
# **The router learns from the task loss**, with one expert per token as with two. The gradient of
# the cross-entropy alone (no balancing loss) with respect to the routers' weights, in a small GPT,
# for top-2 and top-1, and for top-1 with the gate renormalised over its one expert (the mistake
# this chapter once made: `renormalize` forced on after the layer is built). The renormalised top-1
# gate is exactly 1 for every token:

# %%
torch.manual_seed(0)
moe = MoE(n_embd=16, n_expert=8, top_k=2)
x = torch.randn(1, 3, 16)                      # 3 tokens x 2 slots: at most 6 of 8 experts used
(moe(x).pow(2).sum() + 0.01 * moe.aux_loss).backward()
unused = [e for e in range(8) if moe.tokens_per_expert[e] == 0]
assert unused, "every expert was used: the check below proves nothing"
for e, expert in enumerate(moe.experts):
    for p in expert.parameters():
        assert p.grad is not None and (p.grad.abs().sum() > 0) == (e not in unused)
assert moe.router.weight.grad.abs().sum() > 0
print("experts with no token (zero gradient, but a gradient):", unused)
test_fail(lambda: MoE(16, n_expert=4, top_k=5), contains="between 1 and n_expert")

# %%
from gpt2book.model import make_model, model_config


# %%
def router_grad(top_k: int, renormalize: bool | None = None) -> float:
    "Norm of the cross-entropy's gradient (no balancing loss) with respect to every router weight of a small MoE GPT."
    torch.manual_seed(0)
    model = make_model(model_config(block_size=32, vocab_size=66, n_layer=2, n_head=2, n_embd=32, ffn="moe", n_expert=4,
                                    expert_top_k=top_k))
    for m in moe_layers(model): m.renormalize = m.renormalize if renormalize is None else renormalize
    idx = torch.randint(0, 66, (4, 33), generator=torch.Generator().manual_seed(1))
    _, loss = model(idx[:, :-1], idx[:, 1:])
    loss.backward()
    if top_k == 1 and renormalize:
        test_eq(moe_layers(model)[0].route(torch.randn(8, 32))[2].detach(), torch.ones(8, 1))   # every gate exactly 1
    return torch.cat([m.router.weight.grad.flatten() for m in moe_layers(model)]).norm().item()

g2, g1, g1_renorm = router_grad(2), router_grad(1), router_grad(1, renormalize=True)
print(f"router gradient from the cross-entropy alone: top-2 {g2:.3g}, top-1 (gate = probability) {g1:.3g}, "
      f"top-1 renormalised {g1_renorm:.3g}")
assert g1 > 1e-3 and g2 > 1e-3 and g1_renorm < 1e-6 * g1


# %% [markdown]
# ## Counting parameters: total and active
#
# A token passes through the router and $k$ of the $E$ experts. With $P_\text{expert}$ the parameters
# of one expert (`expert_params`), a layer has $E \cdot P_\text{expert}$ expert parameters but each
# token uses $k \cdot P_\text{expert}$ of them, plus the router's $EC$. The **active** parameters per token are what sets the compute,
# $6 N_\text{active}$ FLOPs per token in training (chapter 9), and what MFU counts.
#
# Two ways of comparing an MoE with a dense model follow, and the experiment below runs both:
#
# - **matched active parameters** (the same compute per token): $k$ experts of width $4C / k$ each
#   have the dense FFN's weights between them; the model holds $E / k$ times the dense FFN's
#   parameters. This is the MoE promise: more parameters for free.
# - **matched total parameters** (the same memory): $E$ experts of width $4C / E$; each token uses
#   only $k / E$ of the FFN compute. This asks whether routing beats a dense layer of the same size.

# %%
#| export
def expert_params(moe: MoE) -> int:
    "Parameters of one expert."
    return sum(p.numel() for p in moe.experts[0].parameters())

def moe_active_params(moe: MoE) -> int:
    "Parameters a token uses in `moe`: the router and top_k experts."
    return moe.router.weight.numel() + moe.top_k * expert_params(moe)


# %%
C = 128
dense = MLP(C)
n_dense = sum(p.numel() for p in dense.parameters())
matched_active = MoE(C, n_expert=8, top_k=2, hidden=4 * C // 2)
matched_total = MoE(C, n_expert=8, top_k=2, hidden=4 * C // 8)
for name, m in [("matched active", matched_active), ("matched total", matched_total)]:
    total = sum(p.numel() for p in m.parameters())
    print(f"{name:15s} total {total:8,d} ({total / n_dense:.2f} x dense), active {moe_active_params(m):7,d} "
          f"({moe_active_params(m) / n_dense:.2f} x dense); dense FFN {n_dense:,d}")
assert abs(moe_active_params(matched_active) / n_dense - 1) < 0.03    # same compute (+ router, biases)
assert abs(sum(p.numel() for p in matched_total.parameters()) / n_dense - 1) < 0.03  # same size

# %% [markdown]
# ## In the model: `ffn="moe"`
#
# A block's feed-forward slot (`mlp`) holds the mixture when `ffn="moe"` (the builder registered
# above), with `n_expert`, `expert_top_k`, the experts' kind `expert_ffn` and width `expert_hidden`
# (0: the dense FFN's). The parameter names say what is what, the initialisation is GPT-2's (every
# expert's `c_proj` scaled like the MLP's), and the model counts its parameters both ways:

# %%
torch.manual_seed(0)
dense = make_model(model_config(block_size=64, vocab_size=66, n_layer=4, n_head=4, n_embd=128, bias=False))
moe_gpt = make_model(model_config(block_size=64, vocab_size=66, n_layer=4, n_head=4, n_embd=128, bias=False,
                                  ffn="moe", n_expert=8, expert_top_k=2, expert_hidden=256))
names = [n for n, _ in moe_gpt.named_parameters()]
assert "transformer.h.0.mlp.router.weight" in names and "transformer.h.3.mlp.experts.7.c_proj.weight" in names
print(f"dense: {dense.num_params():,} parameters; MoE: {moe_gpt.num_params():,} in all, "
      f"{moe_gpt.num_params(active=True):,} active per token")
test_close(moe_gpt.num_params(active=True) / dense.num_params(), 1.0, eps=0.01)   # the same compute per token
std = moe_gpt.transformer.h[0].mlp.experts[5].c_proj.weight.std().item()
test_close(std, 0.02 / math.sqrt(2 * 4), eps=1e-3)                                 # GPT-2's scaled init, per expert
test_fail(lambda: model_config(ffn="moe", n_expert=2, expert_top_k=3), contains="at most n_expert")
dense(torch.zeros(1, 8, dtype=torch.long)); moe_gpt(torch.zeros(1, 8, dtype=torch.long))
assert dense.aux_loss() is None and moe_stats(dense, None) == {}
assert torch.equal(moe_gpt.aux_loss(), torch.stack([m.aux_loss for m in moe_layers(moe_gpt)]).mean())
test_eq(len(moe_stats(moe_gpt, 1.0)["expert_tokens"]), 4)                          # one list per layer

# %% [markdown]
# The training FLOPs of chapter 9, which MFU divides by, count the active parameters: a token does
# not pay for the experts it skips.

# %%
from gpt2book.step import flops_per_token

# %%
test_eq(flops_per_token(moe_gpt) - flops_per_token(dense),
        6 * (moe_gpt.num_params(non_embedding=True, active=True) - dense.num_params(non_embedding=True)))


# %% [markdown]
# ## We register the mixture with the trainer
#
# In training, the model's `aux_loss()` averages the layers' balancing losses, and the trainer adds
# a weight times it to the cross-entropy; the validation loss is the cross-entropy alone. Chapter
# 9's trainer knows nothing of mixtures; it offers plug points, and we register three things: the
# setting `aux_loss_weight` (a dataclass in `TRAIN_EXTENSIONS`, so `--aux_loss_weight` exists), the
# weight the run uses (`HOOKS.aux_weight`), and `moe_stats` among the fields of a training line
# (`HOOKS.log`: `aux_loss`, and the tokens each expert got as `expert_tokens`, in `metrics.jsonl`).
# And a preset: GPT-2 small with eight experts of which a token uses two, each of half the MLP's
# width, so the same compute per token as the dense model (`--config=gpt2-124m-moe`).

# %%
#| export
@dataclass
class MoETrainSettings:
    "Chapter 12's training setting: the weight of the load-balancing loss."
    aux_loss_weight: float = setting(0.01, "ffn=moe: weight of the load-balancing loss added to the training loss",
                                     low=0.0)

TRAIN_EXTENSIONS.append(MoETrainSettings)
HOOKS.aux_weight = lambda cfg: cfg.aux_loss_weight
HOOKS.log.append(moe_stats)
TRAIN_PRESETS["gpt2-124m-moe"] = {**GPT2_124M, "ffn": "moe", "n_expert": 8, "expert_top_k": 2, "expert_hidden": 1536}

# %% [markdown]
# A few steps of a tiny run (top-1), to see the lines:

# %%
import tempfile
from gpt2book.config import make_config
from gpt2book.prepare import prepare
from gpt2book.runlog import read_metrics
from gpt2book.train import train

# %%
work = Path(tempfile.mkdtemp())
data_dir = prepare("shakespeare_char", out_dir=work / "data", progress=False)
run = train(make_config(data_dir=str(data_dir), out_dir=str(work / "moe"), n_layer=2, n_head=2, n_embd=32, block_size=32,
                        batch_size=8, max_steps=20, log_interval=10, eval_interval=20, sample_tokens=0, ffn="moe",
                        n_expert=4, expert_top_k=1))
lines = read_metrics(work / "moe" / "metrics.jsonl")
print(*lines[1:3], sep="\n")
assert all(m["aux_loss"] > 0 for m in lines if "aux_loss" in m) and "aux_loss" not in lines[-1]
test_eq(run["step"], 20)
test_eq(len(lines[1]["expert_tokens"]), 2); test_eq(sum(lines[1]["expert_tokens"][0]), 8 * 32)   # 2 layers; top-1
print("load of layer 0 at step 10:", {k: round(v, 3) for k, v in load_spread(lines[1]["expert_tokens"][0]).items()})

# %% [markdown]
# ## Where the tokens go: expert load, early and late
#
# `metrics.jsonl` records, every 50 steps, how many of the step's tokens each expert of each layer
# received (from the last micro-batch: 12 x 64 tokens x 2 slots). Here from the experiment's
# `moe-active` run at its best learning rate (seed 1337), copied next to the chapter:

# %%
import json

import numpy as np

# %%
lines = [m for m in read_metrics("data/moe_active_metrics.jsonl") if "expert_tokens" in m]
early, late = lines[0], lines[-1]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, m in zip(axes, (early, late)):
    load = np.array(m["expert_tokens"])                                  # (layers, experts)
    for l, row in enumerate(load):
        ax.bar(np.arange(8) + l * 0.2 - 0.3, row / row.sum(), width=0.2, label=f"layer {l}")
    ax.axhline(1 / 8, c="gray", ls=":", label="even: 1/8")
    ax.set(title=f"step {m['step']} (balancing loss {m['aux_loss']:.3f})", xlabel="expert")
axes[0].set_ylabel("share of the routing slots"); axes[0].legend(fontsize=8); plt.tight_layout(); plt.show()
spread = lambda m: [load_spread(layer) for layer in m["expert_tokens"]]           # one dict per layer
for m in (early, late):
    print(f"step {m['step']:4d}: per layer, smallest share " + ", ".join(f"{x['min_share']:.3f}" for x in spread(m))
          + "; largest " + ", ".join(f"{x['max_share']:.3f}" for x in spread(m))
          + "; coefficient of variation " + ", ".join(f"{x['cv']:.2f}" for x in spread(m)) + f" (even: 1/8 = 0.125 and 0)")
assert all(x["min_share"] > 0.025 and x["max_share"] < 0.25 and x["cv"] < 0.5 for m in lines[2:] for x in spread(m))   # recorded result
assert all(1 < m["aux_loss"] < 1.1 for m in lines)                        # recorded result

# %% [markdown]
# At the start the router, a random linear layer, sends tokens unevenly: some experts get about
# twice their fair share of $1/8$. From step 150 on, in every record (one batch of 768 tokens each,
# so the shares are themselves a little noisy), no expert of any layer gets less than 2.8% of the
# slots or more than 24%, and the coefficient of variation stays under 0.5: every expert is in use,
# none is dead weight. (The balancing loss itself stays near 1 throughout, 1.03 to 1.08: the
# shares, not the loss, say the load is even.)
#
# ### Without the balancing loss: the control
#
# Is that the balancing loss's doing, or would the load stay even anyway? The same run without it
# (`--aux_loss_weight=0`, everything else the `moe-active` arm's at its best rate), three seeds, on
# this book's second build machine (an AMD EPYC, one thread per run; the run above was made on the
# Intel Xeon of the experiment):
#
# ```bash
# for seed in 1337 1338 1339; do
#   OMP_NUM_THREADS=1 python -m gpt2book.train --config=cpu --eval_interval=100 --eval_iters=40 \
#     --checkpoint_interval=500 --log_interval=50 --keep_checkpoints=1 --sample_tokens=0 --device=cpu \
#     --ffn=moe --n_expert=8 --expert_top_k=2 --expert_hidden=256 --learning_rate=0.002 --min_lr=0.0002 \
#     --seed=$seed --aux_loss_weight=0.0 --out_dir=out/controls/moe-active-noaux_lr0.002_s$seed
#   cp out/controls/moe-active-noaux_lr0.002_s$seed/metrics.jsonl nbs/data/moe_active_noaux_metrics_s$seed.jsonl
# done
# ```

# %%
from gpt2book.experiments import read_results
from gpt2book.stats import ci95, welch_ci95

# %%
controls = {int(f.stem.rsplit("_s", 1)[1]): read_metrics(f) for f in sorted(Path("data").glob("moe_active_noaux_metrics_s*.jsonl"))}
loads = lambda ms: [m for m in ms if "expert_tokens" in m]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, (title, runs) in zip(axes, (("with the balancing loss (0.01), seed 1337", {1337: lines}),
                                    ("without it, seeds " + ", ".join(map(str, controls)), {s: loads(ms) for s, ms in controls.items()}))):
    for seed, ms in runs.items():
        for l in range(4):
            ax.plot([m["step"] for m in ms], [spread(m)[l]["max_share"] for m in ms], c=f"C{l}", lw=0.8,
                    label=f"layer {l}" if seed == min(runs) else None)
    ax.axhline(1 / 8, c="gray", ls=":"); ax.set(title=title, xlabel="step"); ax.grid(alpha=0.3)
axes[0].set_ylabel("largest share of one expert"); axes[0].legend(fontsize=8); plt.tight_layout(); plt.show()
for seed, ms in controls.items():
    end = spread(loads(ms)[-1])
    print(f"no balancing loss, seed {seed}, step {loads(ms)[-1]['step']}: smallest share per layer "
          + ", ".join(f"{x['min_share']:.3f}" for x in end) + "; largest " + ", ".join(f"{x['max_share']:.3f}" for x in end)
          + "; CV " + ", ".join(f"{x['cv']:.2f}" for x in end))
aux_end = spread(lines[-1])
print("with it, seed 1337, step 2000: CV " + ", ".join(f"{x['cv']:.2f}" for x in aux_end))
finals = {s: [m for m in ms if "val_loss" in m][-1]["val_loss"] for s, ms in controls.items()}
with_aux = [r["val_loss"] for r in read_results("data/architectures.csv")
            if r["arm"] == "moe-active" and r["lr"] == 0.002 and r["step"] == 2000]
(m0, lo0, hi0), (m1, lo1, hi1) = ci95(list(finals.values())), ci95(with_aux)
d, dlo, dhi = welch_ci95(list(finals.values()), with_aux)
print(f"final val loss without the balancing loss (AMD) {m0:.3f} [{lo0:.3f}, {hi0:.3f}], with it (Intel) {m1:.3f} [{lo1:.3f}, {hi1:.3f}]: "
      f"{d:+.3f} [{dlo:+.3f}, {dhi:+.3f}]")
# recorded result: the top layer's load is far from even without the balancing loss, in every seed; the loss across machines: an interval holding 0
assert all(spread(loads(ms)[-1])[3]["cv"] > 1 and spread(loads(ms)[-1])[3]["max_share"] > 0.4 for ms in controls.values())
assert all(x["cv"] < 0.5 for x in aux_end) and dlo < 0 < dhi

# %% [markdown]
# Without the balancing loss the load drifts apart, most in the upper layers. At step 2000 the top
# layer's busiest expert takes 42% to 45% of the slots (three seeds), while two or three of its
# eight get 1% or less; its coefficient of variation is 1.09 to 1.48, against 0.07 with the
# balancing loss, and from step 550 on it never falls below 1.0 in any seed. The first layer stays
# fairly even (0.21 to 0.41). So routing does not collapse onto one expert here, but it does leave
# experts nearly idle, which is what the balancing loss is for. (The balancing loss, computed and
# logged though not trained on, rises to 1.68 to 1.88 in these runs: once the router is confident,
# its value does track an uneven load.) What an uneven load costs is parameters that hardly train;
# on hardware where each expert lives on its own device, it also costs the time of the busiest one.
#
# The validation loss is another matter. Without the balancing loss the three seeds end at 1.698
# [1.678, 1.718], with it (the experiment's three seeds) at 1.693 [1.673, 1.713], a difference of
# $+0.005$ $[-0.013, +0.023]$. That interval holds zero, but it is not evidence of a tie: it sets
# runs of two machines against each other (the control on the AMD machine, the runs with the
# balancing loss on the Intel one; another CPU rounds differently, so the same seed there is not
# the same run), three seeds a side, and all it says is that these runs cannot tell. The next
# section measures the difference on one machine.
#
# ### With and without the balancing loss, on one machine
#
# The design: the `moe-active` arm exactly as the experiment below trains it (the runner's
# `run_job`: the `cpu` preset with the experiment's overrides, its best learning rate
# $2 \cdot 10^{-3}$, every run annealed to a tenth of it), once with the balancing loss at its
# weight 0.01 and once with `--aux_loss_weight=0`, five seeds each (1337 to 1341; the seed sets
# the initialisation and the order of the batches, the same in both arms), all ten runs on the same
# machine with one thread each, the two runs of a seed side by side. What is compared is the final
# validation loss (step 2000, the cross-entropy alone in both arms): the difference of the two
# arms' means, without minus with, with Welch's 95% interval, which gives each arm its own standard
# deviation and takes the t quantile at the Welch–Satterthwaite degrees of freedom,
#
# $$\nu = \frac{(s_1^2/n_1 + s_2^2/n_2)^2}{\dfrac{(s_1^2/n_1)^2}{n_1 - 1} + \dfrac{(s_2^2/n_2)^2}{n_2 - 1}},$$
#
# between $\min(n_1, n_2) - 1 = 4$ and $n_1 + n_2 - 2 = 8$. An interval that excludes zero says
# which arm is ahead; one that holds zero is not a tie either, but a bound on how large the
# difference can be, in either direction.
#
# ```bash
# python bench/aux_loss.py --workers 2   # trains out/aux_loss/moe-active{,-noaux}_lr0.002_s{1337..1341} if needed,
#                                        # then writes nbs/data/moe_aux_loss.json (every run's metrics, machine, wall time)
# ```

# %%
from gpt2book.stats import t975


# %%
def welch_df(x, y) -> float:
    "Welch-Satterthwaite degrees of freedom of mean(x) - mean(y), each sample with its own variance."
    vx, vy = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)                  # squared standard errors
    return (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))

a, b = [1.70, 1.71, 1.69, 1.72, 1.70], [1.69, 1.69, 1.70, 1.68, 1.69]
d, lo, hi = welch_ci95(a, b)
test_close(hi - d, t975(welch_df(a, b)) * math.sqrt(np.var(a, ddof=1) / 5 + np.var(b, ddof=1) / 5), eps=1e-12)
assert 4 <= welch_df(a, b) <= 8 and abs(welch_df(a, a) - 8) < 1e-9                  # equal spreads: n1 + n2 - 2

# %%
aux_file = Path("data/moe_aux_loss.json")
study = json.loads(aux_file.read_text()) if aux_file.exists() else None
if study is None:
    print(f"{aux_file} is not made yet: `python bench/aux_loss.py --workers 2` trains the ten runs and writes it; "
          "until then the only comparison is the cross-machine one above")
else:
    final = {arm: {r["seed"]: r["val_loss"] for r in study["runs"] if r["arm"] == arm} for arm in ("with", "without")}
    for arm, by_seed in final.items():
        m_, lo_, hi_ = ci95(list(by_seed.values()))
        print(f"{arm:7s} the balancing loss: {m_:.4f} [{lo_:.4f}, {hi_:.4f}], SD {np.std(list(by_seed.values()), ddof=1):.4f}; "
              + ", ".join(f"{s}: {v:.4f}" for s, v in by_seed.items()))
    x, y = list(final["without"].values()), list(final["with"].values())
    d, lo, hi = welch_ci95(x, y)
    print(f"without - with: {d:+.4f} [{lo:+.4f}, {hi:+.4f}] (Welch, {welch_df(x, y):.1f} degrees of freedom)")
    walls = [r["wall_s"] for r in study["runs"]]
    print(f"machine: {', '.join(study['machines'])}; {len(walls)} runs of {min(walls) / 60:.1f} to {max(walls) / 60:.1f} "
          f"minutes, {study['wall_s'] / 60:.0f} minutes in all with {study['machine']['workers']} side by side")
    assert sorted(final["with"]) == sorted(final["without"]) and len(x) == 5 and len(study["machines"]) == 1  # recorded result
    assert all(r["step"] == 2000 for r in study["runs"])                                                  # recorded result
    test_close(study["summary"]["difference"]["mean"], d, eps=1e-12)              # the file's summary is these numbers

# %%
if study is not None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    for r in study["runs"]:
        c = "C0" if r["arm"] == "with" else "C3"
        ev = [m for m in r["metrics"] if "val_loss" in m and m["step"] >= r["step"] // 2]
        ax1.plot([m["step"] for m in ev], [m["val_loss"] for m in ev], c=c, lw=0.8,
                 label=f"{r['arm']} the balancing loss" if r["seed"] == study["seeds"][0] else None)
        ld = loads(r["metrics"])
        ax2.plot([m["step"] for m in ld], [spread(m)[-1]["cv"] for m in ld], c=c, lw=0.8)
    ax1.set(xlabel="step", ylabel="validation loss", title="Every seed, second half of the run"); ax1.legend(fontsize=8)
    ax2.set(xlabel="step", ylabel="coefficient of variation", title="Load of the top layer's experts (even: 0)")
    for ax in (ax1, ax2): ax.grid(alpha=0.3)
    plt.tight_layout(); plt.show()

# %% [markdown]
# On one machine, five seeds a side, the balancing loss costs or gains nothing that these runs can
# resolve: without it the runs end at 1.704 [1.691, 1.718], with it at 1.698 [1.682, 1.713], and
# the difference, without minus with, is $+0.007$ $[-0.011, +0.024]$ nats (Welch, 7.8 degrees of
# freedom). That is a bound, not a tie: switching the balancing loss off changes this model's loss
# by at most about a hundredth in its favour or two hundredths against it, and a difference of that
# size would need many more seeds to resolve. (The losses are the experiment's own 40-batch
# estimates, the first 28% of the validation split, the same for both arms.) What the balancing loss
# does change is the load, clearly, in every seed (right): without it the top layer's coefficient
# of variation ends between 1.09 and 1.52, with it between 0.10 and 0.22.

# %%
if study is not None:
    cv = {arm: [spread(loads(r["metrics"])[-1])[-1]["cv"] for r in study["runs"] if r["arm"] == arm] for arm in ("with", "without")}
    print("top layer's CV at step 2000: " + "; ".join(f"{arm}: " + ", ".join(f"{v:.2f}" for v in vs) for arm, vs in cv.items()))
    assert lo < 0 < hi and hi < 0.03 and lo > -0.02                        # recorded result: a bound of about +-0.02
    assert min(cv["without"]) > 1 and max(cv["with"]) < 0.3                # recorded result: the load, in every seed

# %% [markdown]
# ## The experiment: a mixture of experts against the dense model
#
# At the scale of chapter 10, two mixtures of 8 MLP experts with top-2 routing, against the dense
# GPT-2 (`ARCHITECTURES` in chapter 10; each arm at its own best learning rate, three seeds, five
# where the difference from GPT-2 came out under 0.02 nats):
#
# - `moe-active`: experts of width 256 (half the MLP's 512): the same FFN compute per token as the
#   dense model, 4 times the FFN parameters;
# - `moe-total`: experts of width 64: the same parameters as the dense model, a quarter of its FFN
#   compute per token.
#
# The first three seeds of every arm were made on the Intel Xeon build machine (`sweep
# architectures`); `moe-total` ended $+0.017$ $[-0.041, +0.074]$ from GPT-2 there, under 0.02 nats,
# so it and GPT-2 got two more seeds each on the AMD EPYC machine, one thread per run
# (`MORE_SEEDS`):
#
# ```bash
# for arm in gpt2 moe-total; do for seed in 1340 1341; do
#   python -m gpt2book.experiments run --experiment architectures --arm $arm --lr 0.004 --seed $seed --results nbs/data/architectures.csv
# done; done
# ```

# %%
from IPython.display import Markdown, display

from gpt2book.experiments import ARCHITECTURES, ARM_NAMES, Scale, arm_params, read_results
from gpt2book.plots import plot_arms
from gpt2book.stats import machines_note, results_table, summary

# %%
arch = read_results("data/architectures.csv")
moe_rows = [r for r in arch if r["arm"] in ("gpt2", "moe-active", "moe-total")]
display(Markdown(results_table(moe_rows, ARM_NAMES, arm_params(Scale(), 66, ARCHITECTURES), digits=4)))
tab = {r["arm"]: r for r in summary(moe_rows)}
print(machines_note([r for r in moe_rows if r["lr"] == tab[r["arm"]]["lr"]]))
assert tab["moe-active"]["diff_high"] < 0                                   # recorded result: beyond the noise
assert tab["moe-total"]["diff_low"] < 0 < tab["moe-total"]["diff_high"]     # recorded result: within it
assert tab["moe-total"]["seeds"] == tab["gpt2"]["seeds"] == 5
plot_arms(moe_rows); plt.show()

# %% [markdown]
# With the dense model's compute per token and four times its FFN parameters, the mixture ends
# lower than the dense model, $-0.035$ $[-0.052, -0.018]$, beyond the noise: more parameters,
# trained on the same tokens with the same arithmetic per token, did help. With the dense model's
# parameters and a quarter of its FFN compute, it ends level with it: $+0.013$ $[-0.010, +0.035]$
# over five seeds each, a tie (routing did not buy more than the compute it saved, at this scale);
# most of its seeds' curves never reach GPT-2's mean final loss. The dense model and `moe-total` have
# 0.80M parameters, `moe-active` 2.38M (0.81M of them active per token), all on 1M characters;
# mixtures are built to pay off at scales where memory is cheap and compute is not.
#
# ## The honest cost: time per step on this machine
#
# Fewer FLOPs per token is not fewer seconds. The loop over experts runs eight small matrix
# multiplications where the dense model runs one large one, plus the gathering and scattering of
# tokens and the router; on two CPU cores and at width 128, that overhead dominates.
# `bench/arms_speed.py` times every arm of chapters 10 to 12 with the trainer's own step, one thread
# (as the sweeps ran) and all cores, in interleaved rounds:
#
# ```bash
# python bench/arms_speed.py        # writes nbs/data/bench_arms.json
# ```

# %%
bench = json.loads(Path("data/bench_arms.json").read_text())
m = bench["machine"]
print(f"{m['cpu']}, {m['cpu_count']} cores; load average {m['loadavg_1min_before']} before, {m['loadavg_1min_after']} after")
for arm in ("gpt2", "moe-active", "moe-total"):
    b = bench["arms"][arm]
    print(f"{arm:10s} {b['ms_per_step_1_thread']:6.1f} ms/step with 1 thread, {b['ms_per_step_all_threads']:6.1f} with "
          f"{m['cpu_count']}; {b['flops_per_token']:,} FLOPs/token "
          f"({b['flops_per_token'] / bench['arms']['gpt2']['flops_per_token']:.2f}x gpt2's)")
slow = bench["arms"]["moe-active"]["ms_per_step_1_thread"] / bench["arms"]["gpt2"]["ms_per_step_1_thread"]
rounds = [a / b for a, b in zip(bench["arms"]["moe-active"]["rounds_1_thread"], bench["arms"]["gpt2"]["rounds_1_thread"])]
r = tab["moe-active"]
print(f"moe-active: the same FLOPs per token, {slow:.2f}x the time per step (rounds {min(rounds):.2f} to {max(rounds):.2f})")
print(f"moe-active: {r['speedup']:.2f}x [{2000 / r['steps_high']:.2f}, {2000 / r['steps_low']:.2f}] fewer steps to GPT-2's final "
      f"loss -> {r['speedup'] / slow:.2f}x [{2000 / r['steps_high'] / slow:.2f}, {2000 / r['steps_low'] / slow:.2f}] in wall-clock time")
assert slow > 1.1 and bench["arms"]["moe-total"]["ms_per_step_1_thread"] > bench["arms"]["gpt2"]["ms_per_step_1_thread"]  # recorded result
assert 2000 / r["steps_low"] / slow < 1                                   # recorded result: slower in wall-clock time

# %% [markdown]
# On the Intel machine of the experiment, the mixture at the dense model's compute per token takes
# about 1.6 times the dense model's time per step with one thread and nearly twice with two, and the
# mixture at the dense model's size, with a little over half its FLOPs per token, is still slower
# than it. So the 1.17x fewer steps of the results above (read off curves that are not annealed
# there, chapter 10) are about 0.75x in wall-clock time, slower than the dense model even at the
# upper end of their interval (printed above; the interval is over the seeds, the time ratio a
# median over three rounds): measured in seconds, the dense model wins at this scale. What a mixture buys is a model with more parameters at the same
# FLOPs per token; turning that into time needs hardware and kernels that run the experts' small
# matrix multiplications as efficiently as one large one (grouped GEMMs on GPUs, experts spread over
# devices), which is where mixtures are used.
