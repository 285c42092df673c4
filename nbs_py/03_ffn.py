# %% [markdown]
# # The feed-forward network: GPT-2's MLP and SwiGLU
#
# > GPT-2's 4x GELU MLP and the SwiGLU that replaces it in recent models, with SwiGLU's hidden width chosen so that both have the same number of parameters, and dropout and initialisation applied to both alike.

# %%
#| default_exp ffn

# %%
#| export
import torch.nn as nn
import torch.nn.functional as F

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
from fastcore.test import test_close, test_eq, test_fail


# %% [markdown]
# ## Why a feed-forward network
#
# Attention moves information between positions, but it is (apart from the softmax) a weighted
# average of linear projections: it mixes, it does not compute much. The **feed-forward network**
# (FFN) that follows it in every block is where each position, on its own, transforms what it has
# gathered: a two-layer network applied to every token's vector independently,
#
# $$\mathrm{FFN}(x) = W_2\, \phi(W_1 x + b_1) + b_2, \qquad W_1 \in \mathbb{R}^{4C \times C},\;
# W_2 \in \mathbb{R}^{C \times 4C}$$
#
# with a nonlinearity $\phi$ and a hidden layer 4 times wider than the model (`C = n_embd`). It holds
# two thirds of a block's parameters: $8C^2$ weights against attention's $4C^2$.
#
# ## GELU, and the tanh approximation GPT-2 used
#
# GPT-2's $\phi$ is the GELU (Hendrycks & Gimpel 2016): the input times the probability that a
# standard normal variable is below it, $\mathrm{GELU}(x) = x\,\Phi(x)$. A smooth ReLU: close to 0
# for negative $x$, close to $x$ for positive $x$, with a small dip below zero. Computing $\Phi$
# needs the error function, so GPT-2 (like BERT) used a tanh approximation:
#
# $$\mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\left(1 + \mathrm{erf}(x/\sqrt2)\right) \approx
# \tfrac{x}{2}\left(1 + \tanh\!\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right)$$
#
# Its weights were trained with the approximation, so we use it too (Hugging Face calls it
# `gelu_new`; PyTorch `nn.GELU(approximate="tanh")`). SwiGLU, below, uses the SiLU (or Swish),
# $\mathrm{SiLU}(x) = x\,\sigma(x)$, a close relative. The formulas written out, checked against
# PyTorch's:

# %%
def gelu_exact(x): return x / 2 * (1 + torch.erf(x / math.sqrt(2)))
def gelu_tanh(x):  return x / 2 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
def silu(x):       return x * torch.sigmoid(x)

x = torch.linspace(-6, 6, 10_001, dtype=torch.float64)
# 1e-9, not 1e-12: PyTorch's vectorised erf has more than one CPU code path, and on this book's build
# machine some processes got one that differs from F.gelu's by up to 3e-11 (still 10^4 below float32's precision)
test_close(gelu_exact(x), F.gelu(x), eps=1e-9)
test_close(gelu_tanh(x), F.gelu(x, approximate="tanh"), eps=1e-9)
test_close(silu(x), F.silu(x), eps=1e-12)
approx_err = (gelu_tanh(x) - gelu_exact(x)).abs()
print(f"max |GELU_tanh - GELU| = {approx_err.max().item():.1e} at x = {x[approx_err.argmax()].item():.2f}")
assert approx_err.max() < 1e-3

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
xs = torch.linspace(-4, 4, 801, dtype=torch.float64)
for fn, name, style in [(gelu_exact, r"GELU $x\Phi(x)$", "-"), (gelu_tanh, "GELU, tanh approx.", "--"),
                        (silu, r"SiLU $x\sigma(x)$", "-"), (F.relu, "ReLU", ":")]:
    ax1.plot(xs, fn(xs), style, label=name)
ax1.set(xlabel="x", title="Activations", ylim=(-1, 4)); ax1.legend(); ax1.grid(alpha=0.3)
ax2.plot(xs, gelu_tanh(xs) - gelu_exact(xs))
ax2.set(xlabel="x", title="GELU tanh approximation minus exact GELU"); ax2.grid(alpha=0.3)
plt.tight_layout(); plt.show()

# %% [markdown]
# The approximation differs from the exact GELU by less than $10^{-3}$ everywhere: small, but
# not zero, which is why loading GPT-2's weights needs the same one to reproduce its logits.
#
# The approximation was made to be *cheaper* than the error function, in 2016, on GPUs. On the CPU
# this book is built on it is the opposite: PyTorch's exact GELU kernel is about five times faster
# forward and twice as fast backward (measured below; it depends on the CPU and the PyTorch build).
# So the MLP takes the form as an option, `gelu="tanh"` (GPT-2's, the default, and what its weights
# need) or `gelu="exact"` (nanoGPT's, and the book's CPU default model, which is trained from
# scratch and loses nothing by it; Hugging Face calls it `gelu`).

# %%
xg = torch.randn(768, 512)   # the CPU default model's hidden activations: 12 x 64 tokens, 4 x 128 wide
gy = torch.randn_like(xg)
for approximate in ("none", "tanh"):
    F.gelu(xg, approximate=approximate)
    t0 = time.perf_counter()
    for _ in range(50): F.gelu(xg, approximate=approximate)
    t1 = time.perf_counter()
    for _ in range(50): torch.ops.aten.gelu_backward(gy, xg, approximate=approximate)
    t2 = time.perf_counter()
    print(f"approximate={approximate!r:7}: forward {(t1 - t0) / 50 * 1e3:.3f} ms, backward {(t2 - t1) / 50 * 1e3:.3f} ms "
          f"(768 x 512, this machine)")
#
# ## GPT-2's MLP
#
# The layer names are GPT-2's: `c_fc` ("fully connected", $C \to 4C$) and `c_proj` (the projection
# back, $4C \to C$). Dropout acts on the output, before it is added to the residual stream. The
# hidden width is $4C$ unless `hidden` says otherwise (the experts of a mixture, chapter 12, are
# narrower MLPs).

# %%
#| export
GELUS = {"tanh": "tanh", "exact": "none"}  # our name -> PyTorch's `approximate`

class MLP(nn.Module):
    "GPT-2's feed-forward network: c_fc C -> H (4C), GELU (tanh approximation by default), c_proj H -> C, dropout."
    def __init__(self, n_embd, dropout=0.0, bias=True, hidden=None, gelu="tanh"):
        super().__init__()
        self.hidden = 4 * n_embd if hidden is None else hidden  # GPT-2: 4C; a mixture of experts uses narrower ones
        if not (isinstance(self.hidden, int) and self.hidden > 0):
            raise ValueError(f"hidden={hidden!r} must be a positive integer (or None for 4 * n_embd)")
        if gelu not in GELUS:
            raise ValueError(f"gelu={gelu!r} is unknown; use one of {list(GELUS)}")
        self.c_fc = nn.Linear(n_embd, self.hidden, bias=bias)
        self.act = nn.GELU(approximate=GELUS[gelu])  # "tanh": the approximation GPT-2 was trained with
        self.c_proj = nn.Linear(self.hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        h = self.act(self.c_fc(x))           # (B, T, 4C)
        return self.dropout(self.c_proj(h))  # (B, T, C)


# %%
torch.manual_seed(0)
mlp = MLP(64).eval()
x = torch.randn(2, 8, 64)
print("x", tuple(x.shape), "-> c_fc", tuple(mlp.c_fc(x).shape), "-> c_proj", tuple(mlp(x).shape))
test_eq(mlp(x).shape, x.shape)
test_close(mlp(x), mlp.c_proj(gelu_tanh(mlp.c_fc(x))), eps=1e-5)  # the formula, nothing more
exact = MLP(64, gelu="exact").eval(); exact.load_state_dict(mlp.state_dict())
test_close(exact(x), mlp.c_proj(gelu_exact(mlp.c_fc(x))), eps=1e-5)
test_fail(lambda: MLP(64, gelu="relu"), contains="'tanh', 'exact'")
# each token is processed alone: changing token 3 changes output 3 only
x2 = x.clone(); x2[:, 3] += 1
changed = (mlp(x2) != mlp(x)).any(-1)  # (B, T)
assert changed[:, 3].all() and not changed[:, :3].any() and not changed[:, 4:].any()


# %% [markdown]
# ## SwiGLU
#
# A **gated linear unit** (Dauphin et al. 2017) multiplies two linear projections of the input,
# one passed through a nonlinearity acting as a gate. Shazeer (2020, *GLU Variants Improve
# Transformer*) tried several as the Transformer's FFN and found SwiGLU, with the Swish/SiLU as
# gate, among the best; PaLM and LLaMA adopted it:
#
# $$\mathrm{SwiGLU}(x) = W_2 \left(\mathrm{SiLU}(W_g x) \odot W_u x\right), \qquad
# W_g, W_u \in \mathbb{R}^{H \times C},\; W_2 \in \mathbb{R}^{C \times H}$$
#
# Three matrices instead of two, so at equal parameter count the hidden width $H$ must be smaller
# than the MLP's $4C$ (next section).
#
# **One fused input projection.** $W_g x$ and $W_u x$ read the same input, so we stack $W_g$ and
# $W_u$ into one `c_fc` of shape $(2H, C)$, do one matrix multiplication and split the result in
# two halves, just as attention's `c_attn` fuses $q$, $k$ and $v$. One large matmul keeps a GPU
# busier than two small ones. It changes nothing else: under GPT-2's initialisation (every weight
# drawn independently from $\mathcal N(0, 0.02^2)$) the fused matrix is distributed exactly as two
# separate ones, and AdamW treats every element on its own.
#
# **Names.** LLaMA calls these `gate_proj`, `up_proj`, `down_proj`; we keep GPT-2's `c_fc` and
# `c_proj`, so that every rule written by name (GPT-2's scaled initialisation of `c_proj`, weight
# decay groups) applies to both FFNs the same way. **Biases** follow the same `bias` switch as the
# MLP (GPT-2 has them; [the seed project](00_index.ipynb#the-seed-project)'s SwiGLU had none, one more difference between its arms).

# %%
#| export
def swiglu_hidden(n_embd, multiple_of=8):
    "SwiGLU hidden width with the MLP's weight count: 8/3 * n_embd, rounded to the nearest multiple of `multiple_of`."
    if not (isinstance(n_embd, int) and isinstance(multiple_of, int) and n_embd > 0 and multiple_of > 0):
        raise ValueError(f"n_embd={n_embd!r} and multiple_of={multiple_of!r} must be positive integers")
    # weights: 3 C H (gate, up, down) = 8 C^2 (MLP's c_fc and c_proj)  =>  H = 8C/3
    return multiple_of * max(1, int(8 * n_embd / (3 * multiple_of) + 0.5))  # nearest, halves up


# %%
#| export
class SwiGLU(nn.Module):
    "SwiGLU FFN (Shazeer 2020): c_proj(silu(gate) * up), gate and up from one fused `c_fc` C -> 2H, dropout after c_proj."
    def __init__(self, n_embd, dropout=0.0, bias=True, hidden=None):
        super().__init__()
        self.hidden = swiglu_hidden(n_embd) if hidden is None else hidden
        if not (isinstance(self.hidden, int) and self.hidden > 0):
            raise ValueError(f"hidden={hidden!r} must be a positive integer (or None for swiglu_hidden(n_embd))")
        self.c_fc = nn.Linear(n_embd, 2 * self.hidden, bias=bias)  # W_g and W_u stacked: one matmul
        self.c_proj = nn.Linear(self.hidden, n_embd, bias=bias)     # W_2; MLP's name, so the same scaled init
        self.dropout = nn.Dropout(dropout)                          # at the same place as MLP's

    def forward(self, x):
        gate, up = self.c_fc(x).chunk(2, dim=-1)              # 2 x (B, T, H)
        return self.dropout(self.c_proj(F.silu(gate) * up))  # (B, T, C)


# %% [markdown]
# The fused layer computes the three-matrix formula: split `c_fc`'s weight into $W_g$ (first $H$
# rows) and $W_u$ (last $H$ rows) and compare.

# %%
torch.manual_seed(0)
sw = SwiGLU(64).eval()
H = sw.hidden
x = torch.randn(2, 8, 64, dtype=torch.float64)
sw = sw.double()
W_g, W_u = sw.c_fc.weight[:H], sw.c_fc.weight[H:]   # (H, C) each
b_g, b_u = sw.c_fc.bias[:H], sw.c_fc.bias[H:]
by_formula = sw.c_proj(silu(x @ W_g.T + b_g) * (x @ W_u.T + b_u))
print("x", tuple(x.shape), "-> c_fc", tuple(sw.c_fc(x).shape), "-> gate, up", (2, 8, H), "-> out", tuple(sw(x).shape))
test_close(sw(x), by_formula, eps=1e-12)
test_eq(sw(x).shape, x.shape)


# %% [markdown]
# ## Matching the parameter count: the 8/3 rule
#
# A comparison of the two FFNs is only fair at equal size. Count the weights (biases later):
#
# - MLP: $C \cdot 4C + 4C \cdot C = 8C^2$
# - SwiGLU: $C \cdot H + C \cdot H + H \cdot C = 3CH$
#
# Equal when $3CH = 8C^2$, that is $H = \frac{8}{3} C$: two thirds of the MLP's $4C$, because there
# are three matrices instead of two. For GPT-2 small, $\frac83 \cdot 768 = 2048$ exactly (the width
# Shazeer used for the same $C$).
#
# **Rounding.** $\frac83 C$ is an integer only when 3 divides $C$. We round to the **nearest
# multiple of 8**: matrix dimensions that are multiples of 8 let fp16/bf16 matrix multiplications
# use the GPU's tensor cores at full speed (NVIDIA's guidance for its matmul libraries), and
# *nearest* (not up) keeps the count as close as the multiple allows. The rounding moves $H$ by at
# most 4, so the weight counts differ by at most $3C \cdot 4 = 12C$, a relative difference of at
# most $12C / 8C^2 = 1.5 / C$: under 1% for any $C \ge 150$. LLaMA's rule (round $H$ **up** to a
# multiple of 256) is coarser: fine at LLaMA's widths ($C = 4096$: +0.8%), but 3% to 5% too
# big at GPT-2's medium and large widths, and 50% at $C = 128$ (the table's last columns).
#
# **Biases.** With biases the MLP adds $4C + C$, SwiGLU $2H + C \approx \frac{19}{3} C$: a
# difference of order $C$ against $8C^2$ weights, negligible.
#
# The seed project took $H = \lfloor \frac{8}{3} \cdot 768 \rfloor = 2048$, which works for 768; at
# $C = 1024$, $\lfloor 2730.7 \rfloor = 2730$ is not a multiple of 8.
#
# The exact counts, from the modules themselves, for GPT-2's four widths and a small width:

# %%
def n_params(cls, C, **kw):
    "Parameters of cls(C, **kw), built on the meta device: shapes only, no memory, no initialisation."
    with torch.device("meta"): return sum(p.numel() for p in cls(C, **kw).parameters())

def llama_hidden(C, multiple_of=256): return multiple_of * math.ceil(8 * C / 3 / multiple_of)

rows = []
print(f"{'':12s}{'C':>6s}{'8C/3':>9s}{'H':>6s}{'MLP params':>13s}{'SwiGLU params':>15s}{'diff':>8s}"
      f"{'no-bias diff':>14s}{'LLaMA H':>9s}{'LLaMA diff':>12s}")
for name, C in [("small width", 128), ("gpt2", 768), ("gpt2-medium", 1024), ("gpt2-large", 1280), ("gpt2-xl", 1600)]:
    H = swiglu_hidden(C)
    mlp_n, sw_n = n_params(MLP, C), n_params(SwiGLU, C)
    mlp_nb, sw_nb = n_params(MLP, C, bias=False), n_params(SwiGLU, C, bias=False)
    test_eq(mlp_n, 8 * C * C + 5 * C); test_eq(sw_n, 3 * C * H + 2 * H + C)  # the formulas above
    test_eq(mlp_nb, 8 * C * C); test_eq(sw_nb, 3 * C * H)
    rel, rel_nb = sw_n / mlp_n - 1, sw_nb / mlp_nb - 1
    rel_llama = 3 * C * llama_hidden(C) / (8 * C * C) - 1
    rows.append((C, H, rel, rel_nb, rel_llama))
    print(f"{name:12s}{C:6d}{8 * C / 3:9.1f}{H:6d}{mlp_n:13,d}{sw_n:15,d}{rel:+8.2%}{rel_nb:+14.2%}"
          f"{llama_hidden(C):9d}{rel_llama:+12.2%}")
    assert H % 8 == 0 and abs(rel) < 0.01 and abs(rel_nb) < 0.01  # matched within 1%
test_eq(swiglu_hidden(768), 2048)

# %% [markdown]
# Every width is matched to better than 1%, with and without biases; LLaMA's coarser rounding would
# miss by 2% to 5% at the larger GPT-2 widths. The bound $1.5/C$ holds for every width, not just these:

# %%
for C in range(16, 2049):
    H = swiglu_hidden(C)
    assert H % 8 == 0 and abs(3 * C * H / (8 * C * C) - 1) <= 1.5 / C + 1e-12, C

# %% [markdown]
# ## A fair comparison: dropout and initialisation in both arms
#
# The ablation chapter compares GPT-2 with and without SwiGLU. The seed project's comparison was
# confounded here: its SwiGLU had **no dropout** where the MLP had dropout 0.1 (a regulariser on one
# arm only), and its output projection was named differently (`w2`), so the GPT-2 rule "scale the
# initialisation of every `c_proj.weight` by $1/\sqrt{2 n_\text{layer}}$" skipped SwiGLU's: one arm
# started with residual branches $\sqrt{2 n_\text{layer}} \approx 5$ times larger.
#
# Here both FFNs end in a layer named `c_proj` followed by the same dropout. The GPT chapter applies
# the initialisation by name; this chapter checks that the name hits exactly the output projection
# in each arm:

# %%
for cls in (MLP, SwiGLU):
    names = [n for n, _ in cls(64).named_parameters() if n.endswith("c_proj.weight")]
    test_eq(names, ["c_proj.weight"])  # one match: the matrix that writes into the residual stream
    test_eq(cls(64).c_proj.out_features, 64)

# %% [markdown]
# And dropout acts on the output in both arms, in training only: with `dropout=0.5`, about half of
# the output entries are zeroed in training mode, none in eval mode, and eval outputs are identical
# from call to call.

# %%
torch.manual_seed(0)
x = torch.randn(4, 32, 64)
for cls in (MLP, SwiGLU):
    m = cls(64, dropout=0.5)
    m.train()
    frac_zero = (m(x) == 0).float().mean().item()
    m.eval()
    print(f"{cls.__name__:6s} zeroed in training: {frac_zero:.3f}, in eval: {(m(x) == 0).float().mean().item():.3f}")
    assert abs(frac_zero - 0.5) < 0.03
    assert not (m(x) == 0).any() and torch.equal(m(x), m(x))


# %% [markdown]
# ## ReLU²: the simplest activation that has won since
#
# Primer (So et al., 2021) searched over transformer variants and found that squaring a ReLU,
# $\mathrm{relu}(x)^2$, beat GELU in the same MLP at no cost; modded-nanogpt's speedrun and nanochat
# use it. It is the same `c_fc`, `c_proj` and width as GPT-2's MLP, so it is GPT-2's MLP with one line
# changed. Chapter 17 measures what it is worth here.

# %%
#| export
class ReLUSquared(nn.Module):
    "relu(x)^2 (So et al. 2021): zero below 0 like a ReLU, but smooth at 0 and growing quadratically above."
    def forward(self, x): return F.relu(x).square()

class ReLU2MLP(MLP):
    "GPT-2's MLP with ReLU² in place of GELU (Primer; modded-nanogpt and nanochat): same layers, same width."
    def __init__(self, n_embd, dropout=0.0, bias=True, hidden=None):
        super().__init__(n_embd, dropout=dropout, bias=bias, hidden=hidden)
        self.act = ReLUSquared()


# %%
x = torch.linspace(-2, 2, 5)
test_eq(ReLUSquared()(x), torch.tensor([0.0, 0.0, 0.0, 1.0, 4.0]))
m = ReLU2MLP(64, bias=False)
test_eq(sum(p.numel() for p in m.parameters()), sum(p.numel() for p in MLP(64, bias=False).parameters()))

# %% [markdown]
# ## Choosing an FFN by name
#
# The model's config names the FFN (`ffn="mlp"`, `"swiglu"` or `"relu2"`); `make_ffn` builds it with
# the same dropout and bias arguments whichever it is. (A fourth kind, `"moe"`, a mixture of these
# FFNs, is chapter 12's; the block builds it.)

# %%
#| export
FFNS = {"mlp": MLP, "swiglu": SwiGLU, "relu2": ReLU2MLP}

def make_ffn(kind, n_embd, dropout=0.0, bias=True, hidden=None, gelu="tanh"):
    "The feed-forward network named `kind` (a key of FFNS), with the same dropout and bias rule for every kind."
    if kind not in FFNS:
        raise ValueError(f"ffn={kind!r} is unknown; use one of {list(FFNS)}")
    extra = {"gelu": gelu} if kind == "mlp" else {}  # SwiGLU's gate is a SiLU, ReLU²'s no GELU: nothing to choose
    return FFNS[kind](n_embd, dropout=dropout, bias=bias, hidden=hidden, **extra)


# %%
x = torch.randn(2, 5, 64)
for kind, cls in FFNS.items():
    m = make_ffn(kind, 64, dropout=0.1, bias=False)
    assert type(m) is cls and m.dropout.p == 0.1 and m.c_fc.bias is None and m.c_proj.bias is None
    test_eq(m(x).shape, x.shape)
test_eq(make_ffn("mlp", 64, hidden=96).c_fc.out_features, 96)      # an expert-sized MLP
test_eq(make_ffn("swiglu", 64, hidden=96).c_fc.out_features, 2 * 96)
test_fail(lambda: make_ffn("relu", 64), contains="'mlp', 'swiglu', 'relu2'")
test_fail(lambda: MLP(64, hidden=0), contains="positive")
test_fail(lambda: swiglu_hidden(0), contains="positive")
test_fail(lambda: SwiGLU(64, hidden=0), contains="positive")

# %% [markdown]
# Next: attention, a norm and an FFN make a block.
