# %% [markdown]
# # The optimizer: AdamW, a schedule, and clipping
# > AdamW with weight decay on the matrices only, linear warmup then cosine decay, and gradient clipping: the three knobs GPT-2's training turns.

# %%
#| default_exp optim

# %% [markdown]
# A model is only as good as the way it is trained. GPT-2, GPT-3, nanoGPT and almost every
# language model since train with the same three pieces, and this chapter builds each one and
# checks it:
#
# 1. **AdamW**: Adam's per-parameter step sizes, with weight decay applied *directly to the
#    weights* and only to the weight *matrices*.
# 2. **A learning-rate schedule**: a short linear warmup, then a cosine decay down to a floor.
# 3. **Gradient clipping**: if the gradient of a step is unusually large, shrink it.
#
# The trainer (next chapter) calls `configure_optimizer` once and `get_lr` every step.

# %%
#| export
import math
import inspect

import torch
from torch import nn

# %%
import matplotlib.pyplot as plt
from fastcore.test import test_eq, test_close, test_fail


# %% [markdown]
# ## AdamW
#
# Adam keeps two running averages per parameter: of the gradient $g_t$ (the *momentum* $m_t$) and
# of its square (the *second moment* $v_t$), and divides one by the square root of the other, so
# each parameter moves by roughly the learning rate $\eta$ whatever the scale of its gradient:
#
# $$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$$
# $$\hat m_t = \frac{m_t}{1-\beta_1^t},\quad \hat v_t = \frac{v_t}{1-\beta_2^t},\qquad
#   \theta_t = \theta_{t-1} - \eta\left(\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon} + \lambda\,\theta_{t-1}\right)$$
#
# The last term is the *decoupled* weight decay of AdamW (Loshchilov & Hutter, 2019): the weights
# shrink by $\eta\lambda$ of themselves every step. Plain Adam with L2 regularisation would add
# $\lambda\theta$ to the gradient instead, where the division by $\sqrt{\hat v}$ would rescale it
# differently for every parameter; AdamW keeps the decay a clean pull towards zero.
#
# GPT-3 (and nanoGPT after it) use $\beta_2 = 0.95$ rather than Adam's default $0.999$: a shorter
# memory of the squared gradient reacts faster when gradients suddenly grow, which keeps large
# runs stable.
#
# ### Which parameters decay
#
# Weight decay is a prior that says "weights should be small". That makes sense for the
# **matrices** (linear layers and embeddings: every parameter with 2 or more dimensions), whose
# size sets how strongly features mix. It makes no sense for the **vectors**:
#
# - the *gains* of LayerNorm/RMSNorm multiply a normalised activation; pulling them towards zero
#   fights the very normalisation they exist to rescale, and
# - the *biases* are shifts, there are few of them, and shrinking them regularises nothing.
#
# So the rule is simply: decay every parameter with `dim() >= 2`, none with `dim() < 2`. The tied
# embedding / LM head is one tensor and is decayed once.

# %%
#| export
def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    "Two AdamW groups: matrices (`dim() >= 2`, decayed) and vectors (biases, norm gains: not)."
    params = [p for p in model.parameters() if p.requires_grad]  # parameters() yields a tied tensor once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


# %% [markdown]
# A small model with the same kinds of parameters as GPT (an embedding tied to an output layer,
# a norm, a linear layer with a bias) shows the split:

# %%
class Tiny(nn.Module):
    def __init__(self, vocab=11, n_embd=8):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)           # (V, C): matrix, decayed
        self.ln = nn.LayerNorm(n_embd)                   # gain and bias (C,): vectors
        self.fc = nn.Linear(n_embd, n_embd)              # weight (C, C) and bias (C,)
        self.head = nn.Linear(n_embd, vocab, bias=False)
        self.head.weight = self.wte.weight               # tied, as in GPT-2

tiny = Tiny()
groups = param_groups(tiny, 0.1)
[[tuple(p.shape) for p in g["params"]] for g in groups]

# %%
test_eq([len(g["params"]) for g in groups], [2, 3])     # wte (= head) and fc.weight | ln.weight, ln.bias, fc.bias
test_eq([g["weight_decay"] for g in groups], [0.1, 0.0])
n_total = sum(p.numel() for p in tiny.parameters())
test_eq(sum(p.numel() for g in groups for p in g["params"]), n_total)  # every parameter once, the tied one once


# %% [markdown]
# ### Fused AdamW
#
# PyTorch's AdamW has three implementations: a Python loop over the parameters, `foreach` (a few
# batched kernels over lists of tensors) and `fused` (one kernel that does the whole update for
# every parameter). The fused one is the fastest on GPUs, and since PyTorch 2.4 it also exists for
# the CPU, where it is several times faster than the loop for a small model's many small tensors
# (measured below). We use it wherever the installed PyTorch offers it.

# %%
#| export
def configure_optimizer(model: nn.Module, lr: float, weight_decay: float,
                        betas: tuple[float, float] = (0.9, 0.95), device_type: str = "cpu",
                        eps: float = 1e-8) -> torch.optim.AdamW:
    "AdamW over `param_groups(model, weight_decay)`, fused on CUDA and CPU when PyTorch has it."
    fused = device_type in ("cuda", "cpu") and "fused" in inspect.signature(torch.optim.AdamW).parameters
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=tuple(betas), eps=eps,
                             fused=fused or None)


# %%
opt = configure_optimizer(tiny, lr=1e-3, weight_decay=0.1)
test_eq(opt.defaults["betas"], (0.9, 0.95))
assert opt.defaults["fused"]
test_eq([g["weight_decay"] for g in opt.param_groups], [0.1, 0.0])

# %% [markdown]
# What does decay do? With a zero gradient Adam's term vanishes, so one step multiplies the decayed
# weights by exactly $1 - \eta\lambda$ and leaves the vectors alone:

# %%
tiny = Tiny()
with torch.no_grad(): tiny.ln.weight.fill_(2.0)
before = {n: p.detach().clone() for n, p in tiny.named_parameters()}
opt = configure_optimizer(tiny, lr=0.1, weight_decay=0.5)
for p in tiny.parameters(): p.grad = torch.zeros_like(p)
opt.step()
test_close(tiny.fc.weight.detach(), before["fc.weight"] * (1 - 0.1 * 0.5), eps=1e-7)
test_close(tiny.wte.weight.detach(), before["wte.weight"] * (1 - 0.1 * 0.5), eps=1e-7)
assert torch.equal(tiny.ln.weight, before["ln.weight"])   # the gain keeps its 2.0
assert torch.equal(tiny.fc.bias, before["fc.bias"])


# %% [markdown]
# The fused and the plain implementations compute the same update (to float rounding). Here on a
# real step with random gradients, and the fused one's speed on this CPU:

# %%
def adamw_steps(**kw):
    torch.manual_seed(0)
    m = Tiny(vocab=300, n_embd=64)
    o = torch.optim.AdamW(param_groups(m, 0.1), lr=1e-2, betas=(0.9, 0.95), **kw)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        for p in m.parameters(): p.grad = torch.randn(p.shape, generator=g)
        o.step()
    return m

for a, b in zip(adamw_steps(foreach=False).parameters(), adamw_steps(fused=True).parameters()):
    test_close(a.detach(), b.detach(), eps=1e-6)

# %%
import time


# %%
def time_step(**kw):
    ps = [nn.Parameter(torch.randn(128, 128)) for _ in range(24)] + [nn.Parameter(torch.randn(128)) for _ in range(40)]
    o = torch.optim.AdamW(ps, lr=1e-3, **kw)
    for p in ps: p.grad = torch.randn_like(p)
    for _ in range(3): o.step()
    t = time.perf_counter()
    for _ in range(50): o.step()
    return (time.perf_counter() - t) / 50 * 1e3

{k: f"{time_step(**kw):.2f} ms" for k, kw in [("loop", dict(foreach=False)), ("foreach", dict(foreach=True)), ("fused", dict(fused=True))]}


# %% [markdown]
# ## The learning-rate schedule: warmup, then cosine
#
# At step 0 the weights are random and Adam's second-moment estimate rests on a single gradient,
# so the first updates are the least reliable; a full-size learning rate then can throw the model
# somewhere it never recovers from. **Warmup** raises the rate linearly from almost zero to its
# peak $\eta_{max}$ over `warmup_steps`. After that a **cosine decay** lowers it smoothly to a floor
# $\eta_{min}$ (GPT-3 and nanoGPT use $\eta_{min} = \eta_{max}/10$) at `max_steps`, and it stays there:
#
# $$\eta(s) = \begin{cases}
#   \eta_{max}\,\dfrac{s+1}{w} & s < w \\[4pt]
#   \eta_{min} + \tfrac12\left(1+\cos\left(\pi\,\dfrac{s-w}{S-w}\right)\right)(\eta_{max}-\eta_{min}) & w \le s \le S \\[4pt]
#   \eta_{min} & s > S
# \end{cases}$$
#
# The $s+1$ makes the very first step use $\eta_{max}/w$ rather than zero (a step with a zero rate
# would be wasted). The end of the decay matters for comparisons: a loss read while the rate is
# still near its peak has not *annealed* yet, and the low-rate tail is where much of the final
# improvement happens ([the seed project](00_index.ipynb#the-seed-project) compared models at 50k steps of a 600k-step cosine, with
# the rate still at 98.5% of its peak).

# %%
#| export
def get_lr(step: int, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    "Learning rate for optimizer step `step` (0-based): linear warmup, cosine decay to `min_lr`, then flat."
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    ratio = (step - warmup_steps) / max(1, max_steps - warmup_steps)    # 0 -> 1 over the decay
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))                     # 1 -> 0
    return min_lr + coeff * (max_lr - min_lr)


# %% [markdown]
# The values at the corners of the formula, for GPT-2 small's settings in this book
# (peak $6\times10^{-4}$, floor $6\times10^{-5}$, 700 warmup steps, 19,073 steps = 10B tokens at
# 524,288 tokens a step):

# %%
kw = dict(max_lr=6e-4, min_lr=6e-5, warmup_steps=700, max_steps=19073)
test_close(get_lr(0, **kw), 6e-4 / 700)                    # the first step is not wasted
test_close(get_lr(349, **kw), 6e-4 * 350 / 700)            # half way up
test_close(get_lr(699, **kw), 6e-4)                        # peak at the end of warmup
test_close(get_lr(700, **kw), 6e-4)                        # cosine starts at the peak
test_close(get_lr(700 + (19073 - 700) // 2, **kw), (6e-4 + 6e-5) / 2, eps=1e-7)  # half way down: the mean
test_close(get_lr(19073, **kw), 6e-5)
test_eq(get_lr(10**6, **kw), 6e-5)                         # flat after the end
lrs = [get_lr(s, **kw) for s in range(20000)]
assert all(a <= b for a, b in zip(lrs[:700], lrs[1:700]))          # warmup rises
assert all(a >= b for a, b in zip(lrs[700:], lrs[701:]))           # then never rises again
assert min(lrs[700:]) >= 6e-5 and max(lrs) <= 6e-4          # the decay never goes under the floor

# %%
fig, axs = plt.subplots(1, 2, figsize=(10, 3))
axs[0].plot(lrs); axs[0].set(title="gpt2-124m: 700 warmup, cosine to 19,073", xlabel="step", ylabel="learning rate")
axs[0].axvline(700, ls=":", c="gray")
cpu = [get_lr(s, 4e-3, 4e-4, 100, 2000) for s in range(2200)]     # the trainer's CPU default (chapter 9)
axs[1].plot(cpu, c="C1"); axs[1].set(title="cpu default: 4e-3, 100 warmup, cosine to 4e-4 at 2,000", xlabel="step")
axs[1].axvline(2000, ls=":", c="gray")
plt.tight_layout()

# %% [markdown]
# ## Gradient clipping
#
# Now and then a batch produces a gradient many times larger than usual (a rare token, an unlucky
# sequence). Adam would normalise most of it away, but not all, and its moment estimates would
# carry the spike for many steps. Clipping caps the **global** norm of the gradient, the norm of
# all gradients concatenated into one vector,
# $\lVert g\rVert = \sqrt{\sum_i \lVert g_i\rVert^2}$, at a threshold $c$ (1.0 for GPT-2/GPT-3):
# if $\lVert g\rVert > c$ every gradient is multiplied by $c/\lVert g\rVert$, so the direction of
# the step is kept and only its length changes. PyTorch's `clip_grad_norm_` does exactly this and
# returns the norm *before* clipping; the trainer logs it as `grad_norm`, the first number to look
# at when a run misbehaves.

# %%
tiny = Tiny()
g = torch.Generator().manual_seed(0)
for p in tiny.parameters(): p.grad = torch.randn(p.shape, generator=g) * 3
grads = [p.grad.clone() for p in tiny.parameters()]
norm = torch.sqrt(sum((gr ** 2).sum() for gr in grads))
returned = nn.utils.clip_grad_norm_(tiny.parameters(), max_norm=1.0)
test_close(returned, norm)                                                   # the norm before clipping
test_close(torch.sqrt(sum((p.grad ** 2).sum() for p in tiny.parameters())), 1.0, eps=1e-5)  # after: exactly c
for p, gr in zip(tiny.parameters(), grads): test_close(p.grad, gr / norm, eps=1e-6)        # same direction
nn.utils.clip_grad_norm_(tiny.parameters(), max_norm=10.0)                   # below the cap: untouched
test_close(torch.sqrt(sum((p.grad ** 2).sum() for p in tiny.parameters())), 1.0, eps=1e-5)

# %% [markdown]
# Those three pieces are all the optimisation GPT-2 needs. The next chapter wires them into a
# training loop that runs on a laptop and on a node of eight GPUs.
