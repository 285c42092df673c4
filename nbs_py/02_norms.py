# %% [markdown]
# # Normalisation: LayerNorm and RMSNorm
#
# > LayerNorm (GPT-2) and RMSNorm (the variant LLaMA uses) written out from their formulas, checked against PyTorch, and tested for the invariances that tell them apart.

# %%
#| default_exp norms

# %%
#| export
import torch
import torch.nn as nn

# %%
import math

import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail


# %% [markdown]
# ## Why normalise
#
# A GPT-2 block adds the output of attention and of the feed-forward network to a **residual
# stream** that runs through the whole model: $x \leftarrow x + f(x)$. Every block adds to it, so
# the scale of $x$ drifts from token to token and grows with depth, and a sublayer fed $x$
# directly would see inputs whose size depends on where it sits. GPT-2 puts a normalisation in
# front of every sublayer (**pre-norm**: $x \leftarrow x + f(\mathrm{norm}(x))$) and one after the
# last block, so each sublayer sees a vector of a known size, whatever the stream carries.
#
# Both norms below act on one token's vector $x \in \mathbb{R}^n$ at a time (the last dimension,
# `n_embd`), never across tokens or across the batch, so they behave the same in training and in
# generation, at any batch size.
#
# ## LayerNorm
#
# LayerNorm (Ba, Kiros & Hinton 2016) centres the vector and divides by its standard deviation,
# then applies a learned per-channel gain $\gamma$ and bias $\beta$:
#
# $$\mu = \frac1n \sum_{i=1}^n x_i, \qquad \sigma^2 = \frac1n \sum_{i=1}^n (x_i - \mu)^2, \qquad
# \mathrm{LN}(x) = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \odot \gamma + \beta$$
#
# $\sigma^2$ is the biased variance (divide by $n$, not $n - 1$), and $\epsilon = 10^{-5}$ (GPT-2's
# value) keeps the division finite for a constant vector. $\gamma$ starts at ones and $\beta$ at
# zeros, so at initialisation the output has mean 0 and variance (almost) 1.
#
# The statistics are computed in at least float32: in bfloat16 (7 stored mantissa bits) a mean over 768
# channels loses digits. Float64 input stays float64, so that the tests below can be exact. The
# bias is optional (nanoGPT's `bias=False` models drop it).

# %%
#| export
class LayerNorm(nn.Module):
    "LayerNorm over the last dim: (x - mean) / sqrt(var + eps) * weight + bias, computed in at least float32."
    def __init__(self, ndim, bias=True, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))                      # gain gamma
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None     # beta
        self.eps = eps

    def forward(self, x):
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16/fp16 -> float32; float64 stays
        mean = xf.mean(-1, keepdim=True)                # (..., 1)
        var = xf.var(-1, keepdim=True, correction=0)    # (..., 1) biased: divide by n
        y = (xf - mean) * torch.rsqrt(var + self.eps) * self.weight.to(xf.dtype)  # (..., n)
        if self.bias is not None:
            y = y + self.bias.to(xf.dtype)
        return y.to(x.dtype)


# %% [markdown]
# ## RMSNorm
#
# RMSNorm (Zhang & Sennrich 2019) drops the centring and the bias, and divides by the root mean
# square instead of the standard deviation:
#
# $$\mathrm{RMS}(x) = \sqrt{\frac1n \sum_{i=1}^n x_i^2 + \epsilon}, \qquad
# \mathrm{RMSNorm}(x) = \frac{x}{\mathrm{RMS}(x)} \odot \gamma$$
#
# One reduction instead of two and $n$ parameters instead of $2n$; its authors found re-scaling,
# not re-centring, to be what matters. LLaMA and most recent models use it. Like the seed
# project, we compute it in float32 even when the model runs in bfloat16, and cast the result back
# to the input's dtype.

# %%
#| export
class RMSNorm(nn.Module):
    "RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight; no centring, no bias; computed in at least float32."
    def __init__(self, ndim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))  # gain gamma
        self.eps = eps

    def forward(self, x):
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16/fp16 -> float32; float64 stays
        ms = xf.pow(2).mean(-1, keepdim=True)  # (..., 1) mean square
        return (xf * torch.rsqrt(ms + self.eps) * self.weight.to(xf.dtype)).to(x.dtype)  # (..., n)


# %% [markdown]
# ## Equal to PyTorch's
#
# `torch.nn.LayerNorm` and `torch.nn.RMSNorm` implement the same formulas. With the same
# $\epsilon$ and the same (random, not just initial) gains and biases, ours must match them to
# rounding: $10^{-12}$ in float64, $10^{-5}$ in float32.

# %%
def randomised(norm):
    "Give a norm random gains (and biases), so the comparison tests them too."
    with torch.no_grad():
        for p in norm.parameters(): p.copy_(torch.randn_like(p))
    return norm

torch.manual_seed(0)
pairs = {"LayerNorm": (LayerNorm(64), nn.LayerNorm(64, eps=1e-5)),
         "LayerNorm, no bias": (LayerNorm(64, bias=False), nn.LayerNorm(64, eps=1e-5, bias=False)),
         "RMSNorm": (RMSNorm(64), nn.RMSNorm(64, eps=1e-5))}
for name, (ours, theirs) in pairs.items():
    theirs.load_state_dict(randomised(ours).state_dict())  # same parameters, same names
    for dtype, tol in [(torch.float64, 1e-12), (torch.float32, 1e-5)]:
        x = 3 * torch.randn(4, 16, 64, dtype=dtype) + 1  # (B, T, C), not already normalised
        diff = (ours.to(dtype)(x) - theirs.to(dtype)(x)).abs().max().item()
        print(f"{name:19s} {str(dtype):14s} max |ours - torch| = {diff:.1e}")
        assert diff < tol
test_eq(sum(p.numel() for p in LayerNorm(64).parameters()), 2 * 64)
test_eq(sum(p.numel() for p in RMSNorm(64).parameters()), 64)

# %% [markdown]
# ## What each norm forgets: invariances
#
# A norm's output does not depend on some properties of its input; those properties are
# invisible to the layer after it. Take one token's vector $x$, a scale $a > 0$ and a shift $b$
# (the same number added to every channel):
#
# - LayerNorm subtracts the mean, which absorbs $b$, and divides by the standard deviation, which
#   absorbs $a$: $\mathrm{LN}(a x + b) = \mathrm{LN}(x)$.
# - RMSNorm divides by the RMS, which absorbs $a$: $\mathrm{RMSNorm}(a x) = \mathrm{RMSNorm}(x)$.
#   But it does not subtract the mean, so a shift changes its output.
#
# With $\epsilon = 0$ the invariances are exact, up to float64 rounding:

# %%
torch.manual_seed(0)
x = torch.randn(8, 64, dtype=torch.float64)  # 8 tokens
ln, rms = LayerNorm(64, eps=0.0).double(), RMSNorm(64, eps=0.0).double()
for a in (0.01, 3.0, 1000.0):
    for b in (-5.0, 0.0, 2.0):
        test_close(ln(a * x + b), ln(x), eps=1e-10)    # LayerNorm: shift and scale
    test_close(rms(a * x), rms(x), eps=1e-10)          # RMSNorm: scale
shift_effect = (rms(x + 2.0) - rms(x)).abs().max().item()
print(f"max |RMSNorm(x + 2) - RMSNorm(x)| = {shift_effect:.2f}")
assert shift_effect > 0.5                              # RMSNorm: NOT shift

# %% [markdown]
# Scale invariance needs $a > 0$: both norms are odd functions, $\mathrm{LN}(-x) = -\mathrm{LN}(x)$.
# And $\epsilon$ bends the invariance when the input's variance is not large against $\epsilon$:
# scaling $x$ by $a$ changes the output by the factor
# $\sqrt{(\sigma^2 + \epsilon) / (\sigma^2 + \epsilon / a^2)} \approx 1 - \epsilon / (2 a^2 \sigma^2)$.
# For $\sigma \approx 1$ and GPT-2's $\epsilon = 10^{-5}$ that is a 5% change at $a = 0.01$, and at
# $a = 100$ just the $5 \cdot 10^{-6}$ that $\epsilon$ takes off $\mathrm{LN}(x)$ itself:

# %%
ln_eps = LayerNorm(64).double()
test_close(ln(-x), -ln(x), eps=1e-10)
for a in (100.0, 0.01):
    change = ((ln_eps(a * x) - ln_eps(x)).norm() / ln_eps(x).norm()).item()
    print(f"a={a:6}: relative change of LN(a x) against LN(x): {change:.1e}  (eps=1e-5)")
assert ((ln_eps(0.01 * x) - ln_eps(x)).norm() / ln_eps(x).norm()) > 0.03  # eps matters for tiny inputs...
assert ((ln_eps(100 * x) - ln_eps(x)).norm() / ln_eps(x).norm()) < 1e-5   # ...hardly for normal-sized ones

# %% [markdown]
# ## The geometry: LayerNorm is RMSNorm after centring
#
# Centring is a projection: $x - \mu \mathbf{1}$ removes the component of $x$ along
# $\mathbf{1} = (1, \dots, 1)$. After centring, the mean square is the variance, so LayerNorm is
# RMSNorm applied to the centred vector:
#
# $$\mathrm{LN}(x) = \mathrm{RMSNorm}(x - \mu \mathbf{1}) \quad (\text{same } \gamma, \text{ no } \beta)$$
#
# Geometrically, RMSNorm puts every vector on the sphere of radius $\sqrt n$; LayerNorm first
# flattens it into the hyperplane $\sum_i x_i = 0$, so its outputs lie on a sphere of one
# dimension less. The identity, tested:

# %%
torch.manual_seed(0)
x = 2 * torch.randn(8, 64, dtype=torch.float64) + 0.7
ln, rms = LayerNorm(64, bias=False).double(), RMSNorm(64).double()
rms.load_state_dict(randomised(ln).state_dict())  # same gain gamma
test_close(ln(x), rms(x - x.mean(-1, keepdim=True)), eps=1e-12)

# %% [markdown]
# A picture of what each norm keeps. Take tokens whose vectors have different offsets (mean over
# channels) and scales (standard deviation over channels), and plot each token as a point
# (mean, std) before and after normalisation. LayerNorm sends every token to the single point
# (0, 1): offset and scale are gone. RMSNorm only fixes the root mean square, and since
# $\mathrm{RMS}^2 = \mu^2 + \sigma^2$, its outputs lie on the unit circle: a token's offset
# survives, traded against its spread.

# %%
torch.manual_seed(0)
n_tok, C = 400, 64
offsets = 4 * torch.rand(n_tok, 1) - 2       # mean of each token's vector, in [-2, 2]
scales = 0.2 + 2.8 * torch.rand(n_tok, 1)    # std of each token's vector, in [0.2, 3]
x = offsets + scales * torch.randn(n_tok, C, dtype=torch.float64)
outs = {"input": x, "LayerNorm": LayerNorm(C)(x), "RMSNorm": RMSNorm(C)(x)}
stats = {k: (v.mean(-1).detach(), v.std(-1, correction=0).detach()) for k, v in outs.items()}

# LayerNorm: every token has mean 0 and std 1; RMSNorm: mean^2 + std^2 = 1
# (up to eps: a token of std 0.2 comes out with std 1 - eps / (2 * 0.2**2) = 0.99988)
test_close(stats["LayerNorm"][0], torch.zeros(n_tok), eps=1e-6)
test_close(stats["LayerNorm"][1], torch.ones(n_tok), eps=1e-3)
m, s = stats["RMSNorm"]
test_close(m**2 + s**2, torch.ones(n_tok), eps=1e-3)
assert m.abs().max() > 0.5  # and the offset survives RMSNorm

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharex=True, sharey=True)
theta = torch.linspace(0, math.pi, 200)
for ax, (name, (m, s)) in zip(axes, stats.items()):
    ax.scatter(m, s, s=8, alpha=0.5)
    ax.plot(torch.cos(theta), torch.sin(theta), "k--", lw=0.8, label=r"$\mu^2 + \sigma^2 = 1$")
    ax.set(title=name, xlabel=r"mean over channels $\mu$", xlim=(-2.5, 2.5), ylim=(0, 3.2))
axes[0].set_ylabel(r"std over channels $\sigma$"); axes[0].legend(loc="upper left")
plt.suptitle("400 tokens before and after normalisation"); plt.tight_layout(); plt.show()

# %% [markdown]
# ## Low precision: compute in float32
#
# Training runs in bfloat16 autocast, and a bfloat16 number has 8 significant bits (7 stored, plus the implicit leading one: about 2 to 3
# decimal digits): rounding to the nearest bfloat16 is off by up to $2^{-8}$ relative. Squaring,
# averaging and taking the reciprocal square root in bfloat16 rounds at each step. Our RMSNorm
# upcasts to float32, so the only bfloat16 rounding is the final cast of the output: every output
# is within $2^{-8}$ of the exact result. A norm computed in bfloat16 throughout does worse:

# %%
torch.manual_seed(0)
x16 = (3 * torch.randn(64, 768) + 0.5).bfloat16()  # 64 tokens, GPT-2 small's width
exact = RMSNorm(768).double()(x16.double())          # float64 reference for the same bf16 input
ours = RMSNorm(768)(x16)
naive = x16 * torch.rsqrt(x16.pow(2).mean(-1, keepdim=True) + 1e-5)  # every step in bfloat16
test_eq(ours.dtype, torch.bfloat16)
rel = lambda y: ((y.double() - exact).abs() / exact.abs().clamp_min(1e-30))
print(f"ours : max rel error {rel(ours).max().item():.2e}, mean {rel(ours).mean().item():.2e}")
print(f"naive: max rel error {rel(naive).max().item():.2e}, mean {rel(naive).mean().item():.2e}")
assert rel(ours).max() <= 2**-8 * (1 + 1e-4)   # one rounding: within bf16's unit roundoff of exact
assert rel(naive).max() > 2**-8 and rel(naive).mean() > 1.2 * rel(ours).mean()  # several roundings

# %% [markdown]
# LayerNorm gets the same treatment, so the comparison between the two norms in the ablation
# chapter is not a comparison of precisions:

# %%
ours_ln = LayerNorm(768)(x16)
exact_ln = LayerNorm(768).double()(x16.double())
test_eq(ours_ln.dtype, torch.bfloat16)
assert ((ours_ln.double() - exact_ln).abs() / exact_ln.abs().clamp_min(1e-30)).max() <= 2**-8 * (1 + 1e-4)

# %% [markdown]
# ## The same formulas, fused: what the model runs
#
# Written out, LayerNorm is five passes over the tensor (mean, variance, subtract, scale, shift),
# each a separate kernel that reads and writes the whole activation, and autograd stores the
# intermediate results of each for the backward pass. PyTorch's `F.layer_norm` and `F.rms_norm`
# compute the same formulas in one kernel forward and one backward. On the CPU default model of
# the training chapter the written-out LayerNorm costs about a quarter of a training step; with the
# fused kernel the whole step is close to 25% faster (measured in the training chapter, against
# nanoGPT).
#
# So the classes above stay what they are, the reference that explains the formula and that the
# tests check; the model uses `FusedLayerNorm` and `FusedRMSNorm`. They are subclasses: the same
# parameters under the same names (`weight`, `bias`, so checkpoints and Hugging Face weights load
# into either), the same `eps`, the same rule of computing in at least float32, and only
# `forward` differs.

# %%
#| export
import torch.nn.functional as F

def _at_least_float32(x):
    return x.to(torch.promote_types(x.dtype, torch.float32))  # bf16/fp16 -> float32; float32/64 stay (no copy)

class FusedLayerNorm(LayerNorm):
    "`LayerNorm`'s parameters and formula, computed by PyTorch's fused `F.layer_norm` kernel."
    def forward(self, x):
        xf = _at_least_float32(x)
        bias = None if self.bias is None else self.bias.to(xf.dtype)
        return F.layer_norm(xf, (xf.size(-1),), self.weight.to(xf.dtype), bias, self.eps).to(x.dtype)

class FusedRMSNorm(RMSNorm):
    "`RMSNorm`'s parameters and formula, computed by PyTorch's fused `F.rms_norm` kernel."
    def forward(self, x):
        xf = _at_least_float32(x)
        return F.rms_norm(xf, (xf.size(-1),), self.weight.to(xf.dtype), self.eps).to(x.dtype)


# %% [markdown]
# Fused and written out agree to rounding, forward and backward (the gradients of the input and of
# both parameters), in float64, float32 and, through the float32 upcast, bfloat16:

# %%
torch.manual_seed(0)
for ref_cls, fused_cls, kw in [(LayerNorm, FusedLayerNorm, {}), (LayerNorm, FusedLayerNorm, {"bias": False}),
                               (RMSNorm, FusedRMSNorm, {})]:
    ref = randomised(ref_cls(64, **kw)); fused = fused_cls(64, **kw)
    fused.load_state_dict(ref.state_dict())  # same names: one state dict fits both
    for dtype, tol in [(torch.float64, 1e-12), (torch.float32, 1e-5), (torch.bfloat16, 1e-2)]:
        x = (3 * torch.randn(4, 16, 64) + 1).to(dtype).requires_grad_()
        y_ref, y_fused = ref.to(dtype)(x), fused.to(dtype)(x)
        test_eq(y_fused.dtype, dtype)
        test_close(y_fused.float(), y_ref.float(), eps=tol)
        g = torch.randn_like(y_ref)
        grads_ref = torch.autograd.grad(y_ref, [x, *ref.parameters()], g)
        grads_fused = torch.autograd.grad(y_fused, [x, *fused.parameters()], g)
        for a, b in zip(grads_ref, grads_fused): test_close(b.float(), a.float(), eps=tol * 10)
    print(f"{fused_cls.__name__:15s} {kw or ''} == {ref_cls.__name__}, forward and backward")
    ref.float(); fused.float()

# %% [markdown]
# ## Choosing a norm by name
#
# The model's config names the norm (`norm="layernorm"` or `"rmsnorm"`); `make_norm` builds its
# fused version. The same choice applies everywhere a norm sits, including the final norm after
# the last block ([the seed project](00_index.ipynb#the-seed-project) left that one a LayerNorm in its RMSNorm arm). `bias` applies to
# LayerNorm only: RMSNorm has no bias.

# %%
#| export
NORMS = {"layernorm": FusedLayerNorm, "rmsnorm": FusedRMSNorm}

def make_norm(kind, ndim, bias=True):
    "The (fused) norm named `kind` (a key of NORMS) over `ndim` features; `bias` applies to LayerNorm only."
    if kind not in NORMS:
        raise ValueError(f"norm={kind!r} is unknown; use one of {list(NORMS)}")
    return FusedLayerNorm(ndim, bias=bias) if kind == "layernorm" else FusedRMSNorm(ndim)


# %%
assert isinstance(make_norm("layernorm", 8), FusedLayerNorm) and make_norm("layernorm", 8).bias is not None
assert make_norm("layernorm", 8, bias=False).bias is None
assert isinstance(make_norm("rmsnorm", 8, bias=True), FusedRMSNorm)
test_fail(lambda: make_norm("batchnorm", 8), contains="'layernorm', 'rmsnorm'")

# %% [markdown]
# Next: the feed-forward network, the other sublayer of a block.
