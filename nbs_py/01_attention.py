# %% [markdown]
# # Attention
#
# > Scaled dot-product attention from first principles, then GPT-2's multi-head causal self-attention with its fused `c_attn` and `c_proj`.

# %%
#| default_exp attention

# %%
#| export
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# %%
import time

import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail

# %% [markdown]
# ## Why attention
#
# A language model reads a sequence of tokens and, at every position $t$, predicts token $t+1$.
# To do that, position $t$ needs information from the positions before it: in "the cat sat on the
# ...", the guess depends on "cat" and "sat", several tokens back. Every other layer of GPT-2 works
# on one position at a time (the feed-forward network, the norms), so **attention is the only place
# where tokens talk to each other**.
#
# The simplest way to let position $t$ see its past is to average it: $y_t = \frac{1}{t+1}\sum_{s \le t} x_s$.
# That is a matrix product with a lower-triangular weight matrix whose rows sum to one:

# %%
T = 5
w = torch.tril(torch.ones(T, T))  # (T, T): 1 where s <= t
w = w / w.sum(-1, keepdim=True)   # each row is a distribution over the past
w

# %% [markdown]
# The weights of an average are fixed: every past token counts the same. Attention keeps the form
# (a lower-triangular matrix of non-negative weights whose rows sum to one) but lets the **data**
# choose the weights. Every position emits three vectors, all linear functions of its input:
#
# - a **query** $q_t$: what am I looking for?
# - a **key** $k_s$: what do I contain?
# - a **value** $v_s$: what do I hand over if chosen?
#
# Position $t$ scores every past position by how well its key matches the query, $q_t \cdot k_s$,
# turns the scores into weights with a softmax, and takes the weighted sum of the values
# (Vaswani et al. 2017, *Attention Is All You Need*):
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}} + M\right) V,
# \qquad M_{ts} = \begin{cases} 0 & s \le t \\ -\infty & s > t \end{cases}$$
#
# The mask $M$ makes the model **causal**: $e^{-\infty} = 0$, so the future gets exactly zero weight.
# Without it the model could read the very token it is asked to predict during training.
# $d$ is the size of a query (the head size, `hs` below). Why divide by $\sqrt d$ comes next.

# %% [markdown]
# ## Why $\sqrt d$: the variance of a dot product grows with $d$
#
# Take $q$ and $k$ with independent components of mean 0 and variance 1. (That is a convenient
# scale, not GPT-2's at initialisation: there a query component is a sum of 768 unit-variance inputs
# times weights of standard deviation 0.02, so its variance is $768 \times 0.02^2 \approx 0.31$; training
# then makes queries and keys as large as the task needs, and the argument is about that.) Then
# $q \cdot k = \sum_{i=1}^{d} q_i k_i$ is a sum of $d$ independent terms of variance 1, so
# $\mathrm{Var}(q \cdot k) = d$: the scores' standard deviation grows like $\sqrt d$, whatever the
# components' own scale $\sigma^2$ (then it is $d\sigma^4$). Dividing by $\sqrt d$ takes the growth with
# the head size away. Let us check:

# %%
torch.manual_seed(0)
ds = [8, 16, 32, 64, 128, 256, 512, 1024]
var_raw, var_scaled = [], []
for d in ds:
    q, k = torch.randn(20_000, d), torch.randn(20_000, d)
    s = (q * k).sum(-1)  # 20,000 dot products
    var_raw.append(s.var().item())
    var_scaled.append((s / math.sqrt(d)).var().item())
for d, a, b in zip(ds, var_raw, var_scaled): print(f"d={d:5d}  Var(q.k)={a:8.1f}  Var(q.k/sqrt(d))={b:.3f}")
for d, a, b in zip(ds, var_raw, var_scaled):
    assert abs(a / d - 1) < 0.05 and abs(b - 1) < 0.05  # Var grows like d; scaled, it stays 1


# %% [markdown]
# Why does a large variance hurt? The softmax of scores spread over a range of $\pm 3\sqrt d$
# is nearly one-hot: one position takes all the weight and the gradient through the softmax,
# $\partial p_i / \partial s_j = p_i(\delta_{ij} - p_j)$, vanishes for all of them. Attention at
# initialisation would pick one random past token and be unable to learn to look elsewhere.
# Below: the largest softmax weight in a row of 64 scores, averaged over many rows, and the size of
# the softmax's Jacobian, with and without the scaling.

# %%
def softmax_stats(scores):
    "Mean largest weight per row, and mean Frobenius norm of the softmax Jacobian diag(p) - p p^T."
    p = F.softmax(scores, dim=-1)  # (N, T)
    jac = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (N, T, T)
    return p.max(-1).values.mean().item(), jac.norm(dim=(-2, -1)).mean().item()

torch.manual_seed(0)
stats = {}
for d in ds:
    q, k = torch.randn(200, 1, d), torch.randn(200, 64, d)
    s = (q @ k.transpose(-2, -1)).squeeze(1)  # (200, 64) scores of one query against 64 keys
    stats[d] = softmax_stats(s), softmax_stats(s / math.sqrt(d))
for d, ((pr, jr), (ps, js)) in stats.items():
    print(f"d={d:5d}  raw: max p={pr:.2f} |J|={jr:.3f}   scaled: max p={ps:.2f} |J|={js:.3f}")
# unscaled, the softmax saturates as d grows (max weight -> 1, Jacobian -> 0); scaled, it does not
assert stats[1024][0][0] > 0.9 and stats[1024][0][1] < 0.1
assert all(abs(stats[d][1][0] - stats[8][1][0]) < 0.05 for d in ds)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.loglog(ds, var_raw, "o-", label=r"$q \cdot k$")
ax1.loglog(ds, var_scaled, "s-", label=r"$q \cdot k / \sqrt{d}$")
ax1.set(xlabel="head size d", ylabel="variance", title="Variance of attention scores")
ax1.legend()
ax2.semilogx(ds, [stats[d][0][0] for d in ds], "o-", label="unscaled")
ax2.semilogx(ds, [stats[d][1][0] for d in ds], "s-", label="scaled")
ax2.set(xlabel="head size d", ylabel="mean largest softmax weight", ylim=(0, 1.05),
        title="Unscaled scores make the softmax one-hot")
ax2.legend(); plt.tight_layout(); plt.show()


# %% [markdown]
# ## Scaled dot-product attention, written out
#
# The tensors carry a batch dimension `B` and a head dimension `nh` in front (multi-head attention
# follows below): queries, keys and values are `(B, nh, T, hs)`. The function returns the output
# and the attention weights, so that we can look at them. Dropout on the weights (randomly dropping
# whole "looks" at past tokens, a regulariser from the original Transformer) is the caller's
# choice: `dropout_p=0` means none, and a module passes 0 in eval mode.

# %%
#| export
def causal_mask(T, S, device=None):
    "(T, S) bool, True where query t may look at key s: the T queries are the last T of the S positions."
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)  # S == T: the lower triangle

def scaled_dot_product_attention(q, k, v, causal=True, dropout_p=0.0):
    "softmax(q k^T / sqrt(hs)) v, written out: q (B, nh, T, hs), k, v (B, nh, S, hs) -> output (B, nh, T, hs), weights (B, nh, T, S)."
    hs = q.size(-1)
    att = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, S) scores of every query against every key
    if causal:
        allowed = causal_mask(q.size(-2), k.size(-2), q.device)  # (T, S): query t sees keys up to its own position
        att = att.masked_fill(~allowed, float("-inf"))  # exp(-inf) = 0: the future gets exactly no weight
    att = F.softmax(att, dim=-1)  # (B, nh, T, S), each row sums to 1
    if dropout_p > 0.0:
        att = F.dropout(att, p=dropout_p, training=True)  # the caller passes 0 in eval mode
    y = att @ v  # (B, nh, T, hs) weighted sum of the values
    return y, att


# %% [markdown]
# With as many queries as keys ($T = S$), query $t$ sees keys $0..t$: the lower triangle. The mask is
# written for $T \le S$ too, which generation will need (chapter 5): when the keys of $S - T$ earlier
# positions are kept from before, the $T$ new queries are the *last* $T$ positions, and query $t$
# sees keys $0..S - T + t$.
#
# Shapes, and the two properties the definition promises: rows are distributions, and the future
# (the upper triangle) gets exactly zero weight.

# %%
torch.manual_seed(0)
B, nh, T, hs = 2, 3, 6, 8
q, k, v = torch.randn(3, B, nh, T, hs).unbind(0)
y, att = scaled_dot_product_attention(q, k, v)
print("q, k, v:", tuple(q.shape), " y:", tuple(y.shape), " att:", tuple(att.shape))
test_eq(y.shape, (B, nh, T, hs)); test_eq(att.shape, (B, nh, T, T))
test_close(att.sum(-1), torch.ones(B, nh, T))
assert (att.triu(diagonal=1) == 0).all()   # no weight on the future
assert (att[..., torch.ones(T, T, dtype=torch.bool).tril()] > 0).all()  # some weight on every past position


# %% [markdown]
# And the output is the formula, checked the slow way: for one query at a time, a softmax over the
# keys it may see, then the weighted sum of their values, in plain loops.

# %%
def attention_by_loops(q, k, v):
    "Causal attention for one head, q, k, v (T, hs), one query at a time."
    out = []
    for t in range(q.size(0)):
        scores = torch.stack([q[t] @ k[s] / math.sqrt(q.size(-1)) for s in range(t + 1)])  # keys 0..t
        w = scores.exp() / scores.exp().sum()
        out.append(sum(w[s] * v[s] for s in range(t + 1)))
    return torch.stack(out)

for b in range(B):
    for h in range(nh):
        test_close(y[b, h], attention_by_loops(q[b, h], k[b, h], v[b, h]), eps=1e-5)

# %% [markdown]
# The last $T$ queries over all $S$ keys give the last $T$ rows of the full square computation:
# the mask for $T < S$ is the bottom of the triangle.

# %%
y_last, att_last = scaled_dot_product_attention(q[:, :, -2:], k, v)   # T = 2 queries, S = 6 keys
test_eq(att_last.shape, (B, nh, 2, T))
test_close(y_last, y[:, :, -2:], eps=1e-6)
test_eq(causal_mask(2, 4).tolist(), [[True, True, True, False], [True, True, True, True]])

# %% [markdown]
# ## Looking at attention weights
#
# A heatmap makes the weights readable. Random queries and keys give random patterns, so let us
# build queries and keys that mean something: take the characters of "to be or not to be", give
# each character a one-hot vector, and use it as both query and key. A query then matches exactly the
# keys of the same character, and each position attends to **earlier occurrences of its own
# character** (and itself). The second "be" finds the first one; "n" has no past match and looks only
# at itself.

# %%
text = "to be or not to be"
chars = sorted(set(text))
onehot = F.one_hot(torch.tensor([chars.index(c) for c in text]), len(chars)).double()  # (T, vocab)
qk = 8.0 * onehot[None, None]  # (1, 1, T, vocab): large, so a match dominates the softmax
y, att_text = scaled_dot_product_attention(qk, qk, qk)
att_text = att_text[0, 0]  # (T, T)
i_b2 = text.rindex("b")
assert att_text[i_b2, text.index("b")] > 0.45 and att_text[i_b2, i_b2] > 0.45  # "b" looks at both b's
assert att_text[text.index("n"), text.index("n")] > 0.99                     # "n" only at itself

# %%
torch.manual_seed(0)
rand_attn_q, rand_attn_k, _ = torch.randn(3, 1, 1, 16, 64).unbind(0)
_, att_rand = scaled_dot_product_attention(rand_attn_q, rand_attn_k, rand_attn_k)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6))
ax1.imshow(att_text, cmap="viridis")
labels = [c if c != " " else "␣" for c in text]
ax1.set_xticks(range(len(text)), labels); ax1.set_yticks(range(len(text)), labels)
ax1.set(xlabel="key (attended to)", ylabel="query (attending)", title="One-hot queries and keys")
im = ax2.imshow(att_rand[0, 0], cmap="viridis")
ax2.set(xlabel="key position", ylabel="query position", title="Random q, k (d=64)")
fig.colorbar(im, ax=ax2, fraction=0.046); plt.tight_layout(); plt.show()


# %% [markdown]
# Both maps are lower-triangular: the mask at work. On the left, each row lights up the earlier
# copies of its own character; on the right, random vectors give weights with no structure.
#
# ## Agreeing with PyTorch's kernel
#
# PyTorch ships the same operation as `F.scaled_dot_product_attention`, with fused kernels
# (FlashAttention on GPUs, a blocked kernel on CPUs) that never store the `(T, T)` matrix. The
# written-out path must agree with it, causal and not, to rounding: $10^{-10}$ in float64 and
# $10^{-5}$ in float32.

# %%
def max_diff_vs_torch(dtype, causal):
    g = torch.Generator().manual_seed(1)
    q, k, v = torch.randn(3, 2, 4, 32, 16, generator=g, dtype=dtype).unbind(0)  # (B, nh, T, hs) each
    ours, _ = scaled_dot_product_attention(q, k, v, causal=causal)
    theirs = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return (ours - theirs).abs().max().item()

for dtype, tol in [(torch.float64, 1e-10), (torch.float32, 1e-5)]:
    for causal in (True, False):
        diff = max_diff_vs_torch(dtype, causal)
        print(f"{str(dtype):14s} causal={causal!s:5s} max |ours - F.sdpa| = {diff:.1e}")
        assert diff < tol

# %% [markdown]
# The written-out path stores the weights: `B * nh * T * T` numbers per layer, kept for the backward
# pass. For GPT-2 small (12 heads, context 1024) at batch 12 that is, per layer, in float32:

# %%
print(f"{12 * 12 * 1024 * 1024 * 4 / 2**20:.0f} MiB of attention weights per layer")


# %% [markdown]
# ## The idea behind FlashAttention: never write the `(T, T)` matrix
#
# On a GPU the arithmetic of attention is cheap; what costs is **memory traffic**. The written-out
# version writes the scores `(T, T)` to the GPU's main memory, reads them back for the softmax,
# writes the weights, reads them again for `att @ v`, and keeps them for the backward pass: four
# passes over a matrix that, at $T = 1024$, is far larger than the queries, keys and values
# together. FlashAttention (Dao et al. 2022) computes the same output **tile by tile** in the
# GPU's small fast memory (SRAM), without ever writing the matrix out.
#
# What makes tiling possible is the **online softmax**. Go through the keys in blocks; for each
# query keep three running numbers: the largest score seen so far $m$, the sum of
# $e^{s - m}$ so far $\ell$, and the weighted sum of values so far $o$ (unnormalised). When a new
# block has a larger maximum $m'$, everything kept so far is rescaled by $e^{m - m'}$; at the end,
# $o / \ell$ is the exact softmax-weighted average. The backward pass recomputes the tiles from
# $q, k, v$ instead of storing them: more arithmetic, much less memory traffic, which on a GPU is
# faster. Written out in a few lines, one block of keys at a time:

# %%
def attention_by_key_blocks(q, k, v, block=16):
    "Causal softmax(q k^T / sqrt(hs)) v for q, k, v (T, hs), one block of keys at a time (the online softmax)."
    T, hs = q.shape
    m = torch.full((T, 1), float("-inf"))      # running max of each query's scores
    l = torch.zeros(T, 1)                      # running sum of exp(score - m)
    o = torch.zeros(T, hs)                     # running sum of exp(score - m) * value
    for start in range(0, T, block):
        s = q @ k[start:start + block].T / math.sqrt(hs)                 # (T, block): one tile of scores
        future = torch.arange(start, start + s.size(1))[None] > torch.arange(T)[:, None]
        s = s.masked_fill(future, float("-inf"))
        m_new = torch.maximum(m, s.max(-1, keepdim=True).values)
        scale = torch.exp(m - m_new).nan_to_num(0.0)                      # rescale what was kept (0 at the start)
        p = torch.exp(s - m_new)                                          # (T, block)
        l = l * scale + p.sum(-1, keepdim=True)
        o = o * scale + p @ v[start:start + block]
        m = m_new
    return o / l

torch.manual_seed(0)
qb, kb, vb = torch.randn(3, 64, 32, dtype=torch.float64).unbind(0)
tiled = attention_by_key_blocks(qb, kb, vb)
full, _ = scaled_dot_product_attention(qb[None, None], kb[None, None], vb[None, None])
test_close(tiled, full[0, 0], eps=1e-12)                                  # the same numbers, exactly (float64)
print(f"largest tile held at once: 64 x 16 scores, against 64 x 64 for the whole matrix")

# %% [markdown]
# PyTorch's `F.scaled_dot_product_attention` picks such a kernel when one is available (FlashAttention
# or a memory-efficient kernel on GPUs, a blocked kernel on CPUs), which is why training uses it; the
# explicit path stays for teaching and testing. A rough timing of one forward on this CPU (the
# figures depend on the machine; the fused kernel's main gain is memory, which this small example
# does not strain):

# %%
q, k, v = torch.randn(3, 1, 12, 256, 64).unbind(0)
for name, fn in [("explicit", lambda: scaled_dot_product_attention(q, k, v)),
                 ("F.sdpa", lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))]:
    fn(); t0 = time.perf_counter()
    for _ in range(5): fn()
    print(f"{name:9s} {(time.perf_counter() - t0) / 5 * 1e3:6.2f} ms  (B=1, nh=12, T=256, hs=64)")

# %% [markdown]
# ## Multi-head causal self-attention
#
# One attention computes one weighted average per position: one kind of "look". Multi-head
# attention runs `n_head` attentions side by side, each on its own slice of `hs = n_embd / n_head`
# channels, so that one head can follow the previous token while another follows the subject of
# the sentence. The outputs of the heads are concatenated and mixed by an output projection.
#
# GPT-2 implements the query, key and value projections of all heads as **one** linear layer,
# `c_attn` with weight `(3C, C)`: one big matrix multiplication is faster than three, and the
# parameter names match OpenAI's checkpoint. The output is split into $q, k, v$ (`C` channels
# each) and each is reshaped into heads:
#
# `(B, T, 3C)` $\to$ 3 × `(B, T, C)` $\to$ 3 × `(B, T, nh, hs)` $\to$ transpose $\to$ 3 × `(B, nh, T, hs)`.
#
# After attention the heads are put side by side again, `(B, T, C)`, and `c_proj` (weight `(C, C)`)
# maps the result back into the residual stream. (GPT-2's own code uses a `Conv1D` that stores
# these weights transposed; loading its checkpoint transposes them, see the GPT chapter.)
#
# `attn_impl` chooses the attention kernel: `"sdpa"` (PyTorch's fused kernel, the default) or
# `"explicit"` (the function above). Dropout, on the attention weights and on the output, acts
# **only in training mode**. [The seed project](00_index.ipynb#the-seed-project) passed its dropout rate to the kernel unconditionally,
# so attention dropout stayed on during evaluation and generation; here the rate passed is
# `0.0` whenever `self.training` is false.
#
# `forward` takes two optional inputs that later chapters use and that change nothing when absent.
# `qk` is a function applied to the queries and to the keys after `split_heads`: a **plug point**
# for schemes that encode positions by transforming them (chapter 11's rotary embeddings register
# one; this chapter knows nothing about them). `kv_cache` hands back the keys and values of earlier
# positions during generation so that only the new token's are computed (chapter 5). With a cache
# there are fewer queries than keys, which is why `attend` builds the mask for that case itself.
# The methods are small on purpose: a later variant subclasses the class and overrides one of them
# (chapter 17's QK-norm overrides `split_heads`).

# %%
#| export
ATTN_IMPLS = ("sdpa", "explicit")

class CausalSelfAttention(nn.Module):
    "GPT-2's multi-head causal self-attention: fused q, k, v projection `c_attn`, output projection `c_proj`."
    def __init__(self, n_embd, n_head, dropout=0.0, bias=True, attn_impl="sdpa"):
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}: each head gets n_embd // n_head channels")
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl={attn_impl!r} is unknown; use one of {ATTN_IMPLS}")
        self.n_embd, self.n_head, self.attn_impl = n_embd, n_head, attn_impl
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)  # q, k, v of all heads in one matmul
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)      # mixes the heads back into the residual stream
        self.attn_dropout = nn.Dropout(dropout)   # its rate p is used on the attention weights, by either kernel
        self.resid_dropout = nn.Dropout(dropout)  # on the output, before it joins the residual stream

    def split_heads(self, x):
        "Project x (B, T, C) to queries, keys and values, each (B, nh, T, hs)."
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        return [t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)]  # 3 x (B, nh, T, hs)

    def attend(self, q, k, v):
        "Causal attention of q (B, nh, T, hs) over k, v (B, nh, S, hs), the queries being the last T positions."
        dropout_p = self.attn_dropout.p if self.training else 0.0  # never in eval or generation
        T, S = q.size(-2), k.size(-2)
        if self.attn_impl == "explicit":
            return scaled_dot_product_attention(q, k, v, causal=True, dropout_p=dropout_p)[0]
        if T == S:   # training, and the first pass of generation
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        # generation past the first pass: new queries over cached keys (is_causal would align the mask top-left)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(T, S, q.device), dropout_p=dropout_p)

    def forward(self, x, qk=None, kv_cache=None):
        "x (B, T, C) -> (B, T, C). `qk`: a function applied to queries and keys (chapter 11); `kv_cache`: the past (chapter 5)."
        B, T, C = x.shape
        q, k, v = self.split_heads(x)  # 3 x (B, nh, T, hs)
        if qk is not None:
            q, k = qk(q), qk(k)         # e.g. rotary positions rotate queries and keys (chapter 11)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)                        # (B, nh, S, hs): earlier positions, then these T
        y = self.attend(q, k, v)                                # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)        # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))               # (B, T, C)


# %% [markdown]
# The shapes along the way, for a batch of 2 sequences of 8 tokens, width 64 and 4 heads:

# %%
torch.manual_seed(0)
attn = CausalSelfAttention(n_embd=64, n_head=4).eval()
x = torch.randn(2, 8, 64)
qkv = attn.c_attn(x)
q, k, v = attn.split_heads(x)
y = attn(x)
print("x      ", tuple(x.shape), "\nc_attn ", tuple(qkv.shape), "\nq, k, v", tuple(q.shape),
      "\ny      ", tuple(y.shape))
test_eq(qkv.shape, (2, 8, 3 * 64)); test_eq(q.shape, (2, 4, 8, 16)); test_eq(y.shape, x.shape)
# parameters: c_attn 3C*C + 3C, c_proj C*C + C
test_eq(sum(p.numel() for p in attn.parameters()), 4 * 64 * 64 + 4 * 64)


# %% [markdown]
# ## Testing the module
#
# **The two kernels agree.** Two modules with the same weights, one per `attn_impl`:

# %%
def twin_modules(dtype, **kw):
    torch.manual_seed(0)
    a = CausalSelfAttention(48, 6, attn_impl="sdpa", **kw).to(dtype).eval()
    b = CausalSelfAttention(48, 6, attn_impl="explicit", **kw).to(dtype).eval()
    b.load_state_dict(a.state_dict())
    return a, b

for dtype, tol in [(torch.float64, 1e-10), (torch.float32, 1e-5)]:
    for bias in (True, False):
        a, b = twin_modules(dtype, bias=bias)
        x = torch.randn(3, 20, 48, dtype=dtype)
        diff = (a(x) - b(x)).abs().max().item()
        print(f"{str(dtype):14s} bias={bias!s:5s} max |sdpa - explicit| = {diff:.1e}")
        assert diff < tol

# %% [markdown]
# **Causality.** Changing the tokens after position $t$ must leave the outputs at positions
# $0..t$ unchanged, not just close: bit for bit, for both kernels.

# %%
for impl in ATTN_IMPLS:
    torch.manual_seed(0)
    m = CausalSelfAttention(48, 6, attn_impl=impl).eval()
    x = torch.randn(2, 16, 48)
    for t in (0, 5, 14):
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn_like(x2[:, t + 1:])  # a different future
        y, y2 = m(x), m(x2)
        assert torch.equal(y[:, :t + 1], y2[:, :t + 1]), (impl, t)  # the past is bit-identical
        assert not torch.allclose(y[:, t + 1:], y2[:, t + 1:])      # and the future did change
print("causal, bit for bit:", ATTN_IMPLS)

# %% [markdown]
# **Dropout only in training.** With `dropout=0.5`, two forwards in training mode differ (dropout is
# really there, on both kernels), while in eval mode two forwards are identical and equal to a
# module without dropout.

# %%
for impl in ATTN_IMPLS:
    torch.manual_seed(0)
    m = CausalSelfAttention(48, 6, dropout=0.5, attn_impl=impl)
    ref = CausalSelfAttention(48, 6, dropout=0.0, attn_impl=impl)
    ref.load_state_dict(m.state_dict())
    x = torch.randn(2, 16, 48)
    m.train()
    assert not torch.equal(m(x), m(x))
    m.eval(); ref.eval()
    assert torch.equal(m(x), m(x))
    test_close(m(x), ref(x), eps=1e-6)
print("dropout off in eval:", ATTN_IMPLS)

# %% [markdown]
# Attention dropout alone (with the output dropout off) must also be off in eval mode, which is
# exactly the seed project's bug:

# %%
torch.manual_seed(0)
m = CausalSelfAttention(48, 6, dropout=0.5).eval()
m.resid_dropout.p = 0.0  # leave only the attention-weight dropout
x = torch.randn(2, 16, 48)
assert torch.equal(m(x), m(x))
m.train()
assert not torch.equal(m(x), m(x))

# %% [markdown]
# **Bad configurations** fail early, saying what to do:

# %%
test_fail(lambda: CausalSelfAttention(64, 4, attn_impl="flash"), contains="sdpa")
test_fail(lambda: CausalSelfAttention(64, 5), contains="divisible")

# %% [markdown]
# Next: the normalisation layers that sit in front of attention in every block.
