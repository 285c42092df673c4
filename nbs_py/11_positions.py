# %% [markdown]
# # Positions: learned tables and rotary embeddings
#
# > Why attention needs to be told where a token is, GPT-2's learned position table, rotary position embeddings (RoPE) from first principles, and what each does beyond the length it was trained on.

# %%
#| default_exp positions

# %% [markdown]
# [The seed project](00_index.ipynb#the-seed-project) set out to study "other architectures", and had a
# switch for rotary position embeddings that worked only when a sequence filled the whole context.
# This chapter builds RoPE properly, as the option `GPTConfig(pos="rope")`, and compares it with
# GPT-2's learned positions in a fair experiment.
#
# ## Attention does not know the order of its inputs
#
# Look at attention (chapter 1) without positions: a token's query is scored against every key,
# the scores are normalised, the values averaged. Nothing in that computation depends on *where*
# a key sits, only on *what* it is. Shuffle the tokens, and every output is shuffled the same way:
# attention without a mask is **permutation-equivariant**. With the causal mask, the output at
# position $t$ depends on the *set* of tokens $0..t$ and on the token at $t$ itself, not on their
# order: "dog bites man" and "man bites dog" look the same to the last token.

# %%
#| export
import torch
import torch.nn as nn

# %%
import math

import matplotlib.pyplot as plt
import torch.nn.functional as F
from fastcore.test import test_close, test_eq, test_fail

from gpt2book.attention import CausalSelfAttention

# %%
torch.manual_seed(0)
attn = CausalSelfAttention(n_embd=32, n_head=4).eval()
x = torch.randn(1, 6, 32)                      # 6 tokens, no position information in them
perm = torch.tensor([3, 0, 4, 1, 2])           # a shuffle of the first five
x_shuffled = torch.cat([x[:, perm], x[:, 5:]], dim=1)
with torch.no_grad():
    y, y_shuffled = attn(x), attn(x_shuffled)
test_close(y_shuffled[:, 5], y[:, 5], eps=1e-6)     # the last token cannot tell the orders apart
assert not torch.allclose(y_shuffled[:, :5], y[:, :5])  # (the earlier ones see different prefixes)
# without the mask, attention is exactly permutation-equivariant
q, k, v = attn.split_heads(x)
out = F.scaled_dot_product_attention(q, k, v)            # (1, nh, 6, hs), no mask
qs, ks, vs = attn.split_heads(x[:, torch.tensor([5, 3, 0, 4, 1, 2])])
test_close(F.scaled_dot_product_attention(qs, ks, vs), out[:, :, [5, 3, 0, 4, 1, 2]], eps=1e-6)


# %% [markdown]
# A language model must know order, so positions are written into the inputs of attention.
#
# ## GPT-2: a learned table
#
# GPT-2 adds a learned vector per position to each token's embedding, before the first block:
# `x = wte[token] + wpe[position]`, with `wpe` a `(block_size, C)` table trained like any other
# weight (chapter 5). It is simple and it works; it has two weaknesses:
#
# - there is no vector for a position the table does not have: a GPT-2 trained with a context of
#   1024 cannot read token 1025 at all, and positions that training rarely reached (the last rows,
#   if most documents are short) are poorly trained;
# - position enters once, at the bottom, mixed into the content: every layer that wants to use
#   "how far apart are these two tokens" must first learn to extract it.
#
# ## Rotary position embeddings
#
# RoPE (Su et al. 2021, *RoFormer*) writes position into the queries and keys of every layer,
# by rotating them, and in a way that makes the attention score depend on the positions only
# through their *difference*.
#
# **In two dimensions.** Take a query $q \in \mathbb{R}^2$ at position $m$ and a key $k$ at
# position $n$, and rotate each by an angle proportional to its position, $R(m\theta)\,q$ and
# $R(n\theta)\,k$, with $R(\alpha)$ the rotation by $\alpha$. A rotation is orthogonal,
# $R(\alpha)^\top = R(-\alpha)$, and rotations compose by adding angles, so
#
# $$\big(R(m\theta)\,q\big)^\top \big(R(n\theta)\,k\big) = q^\top R(-m\theta)\,R(n\theta)\,k = q^\top R\big((n - m)\theta\big)\,k .$$
#
# The score depends on $m$ and $n$ only through $n - m$: **relative position**, although each vector
# was rotated by its own absolute position. And rotations keep lengths, so the content's size is
# untouched.
#
# **In $d$ dimensions.** Split the head's $d$ channels into $d/2$ pairs and rotate each pair $i$ at
# its own frequency
#
# $$\theta_i = \Theta^{-2i/d}, \qquad i = 0, 1, \dots, d/2 - 1, \qquad \Theta = 10000 .$$
#
# Pair 0 turns by one radian per position, the last pair by about $1/\Theta$: a range of
# wavelengths from $2\pi$ to about $2\pi\Theta$ positions, like the hands of a clock, so that both
# "the previous token" and "forty tokens back" are easy to express. The score is a sum over pairs,
# each depending on $n - m$ only, so the whole score does too.
#
# **Which channels form a pair** is a convention: RoFormer pairs neighbours $(0, 1), (2, 3), \dots$;
# GPT-NeoX, LLaMA's Hugging Face port and most code today pair channel $i$ with $i + d/2$, which
# needs no reshaping. The two differ by a fixed permutation of the channels, which the learned
# projections absorb; we use the second. Rotating pair $(x_i, x_{i+d/2})$ by $\alpha_i$ is
#
# $$\begin{pmatrix} x_i \\ x_{i + d/2} \end{pmatrix} \mapsto
# \begin{pmatrix} x_i \cos\alpha_i - x_{i+d/2} \sin\alpha_i \\ x_{i+d/2} \cos\alpha_i + x_i \sin\alpha_i \end{pmatrix}
# \quad\Longleftrightarrow\quad x \odot \cos\alpha + \mathrm{rotate\_half}(x) \odot \sin\alpha,$$
#
# with $\mathrm{rotate\_half}(x) = (-x_{d/2:}, x_{:d/2})$ and the angles $\alpha_i = m\theta_i$
# repeated for both halves.

# %%
#| export
def rope_angles(head_size: int, n_pos: int, theta: float = 10000.0) -> torch.Tensor:
    "Rotation angles (n_pos, head_size): position m times theta^(-2i/d) for pair i, repeated for both halves."
    if head_size % 2:
        raise ValueError(f"rotary embeddings rotate pairs of channels: head_size={head_size} must be even")
    i = torch.arange(head_size // 2, dtype=torch.float64)
    freqs = theta ** (-2 * i / head_size)                                    # (d/2,) one frequency per pair
    angles = torch.outer(torch.arange(n_pos, dtype=torch.float64), freqs)    # (n_pos, d/2)
    return torch.cat([angles, angles], dim=-1)                               # (n_pos, d): pair i is (i, i + d/2)

def rotate_half(x):
    "(x1, x2) -> (-x2, x1) on the last dim's two halves: a quarter turn of every pair (i, i + d/2)."
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)

def apply_rope(x, cos, sin):
    "Rotate the pairs of x (..., T, d) by the angles whose cos and sin are given, (T, d) each."
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)


# %% [markdown]
# The angles are computed in float64 and their cosines and sines stored in float32: at position
# 8000 the angle of pair 0 is 8000 radians, and float32's angle would be off by about $10^{-3}$.
#
# First the 2D picture, checked against a rotation matrix; then the property that makes RoPE work,
# in 64 dimensions: shift both positions by the same amount and the score does not move, to
# rounding, while changing the offset does change it.

# %%
ang = rope_angles(2, 10)                                  # d = 2: one pair, theta_0 = 1 radian per position
v = torch.tensor([[1.0, 0.0]])
cos, sin = ang.cos().float(), ang.sin().float()
m = 3
R = torch.tensor([[math.cos(m), -math.sin(m)], [math.sin(m), math.cos(m)]])
test_close(apply_rope(v, cos[m:m + 1], sin[m:m + 1]), (R @ v.T).T, eps=1e-6)

def score(q, k, m, n, d=64):
    "q . k after rotating q to position m and k to position n."
    ang = rope_angles(d, max(m, n) + 1)
    c, s = ang.cos().float(), ang.sin().float()
    return (apply_rope(q, c[m], s[m]) * apply_rope(k, c[n], s[n])).sum().item()

torch.manual_seed(0)
q, k = torch.randn(64), torch.randn(64)
for m, n in [(0, 5), (10, 15), (100, 105), (1000, 1005)]:
    print(f"m={m:5d} n={n:5d}  n-m={n - m}  score {score(q, k, m, n):+.5f}")
    assert abs(score(q, k, m, n) - score(q, k, 0, 5)) < 1e-3     # only n - m matters
assert abs(score(q, k, 0, 6) - score(q, k, 0, 5)) > 0.1            # and it does matter
test_close(apply_rope(q, cos[7:8].repeat(1, 32), sin[7:8].repeat(1, 32)).norm(), q.norm(), eps=1e-4)  # lengths kept
test_fail(lambda: rope_angles(7, 4), contains="even")

# %% [markdown]
# What the rotations look like: the cosine of every pair's angle against position. The first pairs
# turn fast and repeat every few tokens, the last ones barely move over the whole context. A query
# and a key that are the same vector score highest at offset zero and, summed over all the
# frequencies, less and less on average as they move apart (RoFormer's "long-term decay"): right
# panel, for the all-ones vector of the paper and for random vectors.

# %%
ang = rope_angles(64, 256)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
im = ax1.imshow(ang[:, :32].cos().T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
ax1.set(xlabel="position m", ylabel="pair i", title=r"$\cos(m\,\theta_i)$, $\theta_i = 10000^{-2i/64}$")
fig.colorbar(im, ax=ax1, fraction=0.046)
offsets = torch.arange(0, 256)
c, s = ang.cos().float(), ang.sin().float()
ones = torch.ones(64)
rel_ones = [(apply_rope(ones, c[0], s[0]) * apply_rope(ones, c[o], s[o])).sum().item() / 64 for o in offsets]
g = torch.Generator().manual_seed(0)
rnd = torch.randn(200, 64, generator=g)
rel_rnd = [((apply_rope(rnd, c[0], s[0]) * apply_rope(rnd, c[o], s[o])).sum(-1) / rnd.pow(2).sum(-1)).mean().item()
           for o in offsets]
ax2.plot(offsets, rel_ones, label="q = k = all ones")
ax2.plot(offsets, rel_rnd, label="q = k, random (mean of 200)")
ax2.set(xlabel="offset n - m", ylabel="score / score at offset 0", title="Score of a vector with itself, moved apart")
ax2.legend(); ax2.grid(alpha=0.3); plt.tight_layout(); plt.show()
assert rel_ones[0] == max(rel_ones) and abs(rel_ones[0] - 1) < 1e-5 and max(rel_ones[128:]) < 0.6 < min(rel_ones[:10])


# %% [markdown]
# ## The module
#
# The model computes the tables once for `block_size` positions and keeps them as buffers (moved
# with the model to its device, but not saved in checkpoints: they are a function of the config).
# A forward pass of `T` tokens starting at position `start` (generation with a KV cache starts past
# 0, chapter 14) takes rows `start .. start + T - 1`. Each attention layer rotates its queries and
# keys after splitting the heads and before the scores (chapter 1's `CausalSelfAttention` takes the
# `(cos, sin)` pair); values are not rotated, and nothing is added to the residual stream.

# %%
#| export
class RotaryEmbedding(nn.Module):
    "cos and sin of the rotary angles for positions 0..n_pos-1 (buffers, not parameters); call with (start, T)."
    def __init__(self, head_size: int, n_pos: int, theta: float = 10000.0):
        super().__init__()
        ang = rope_angles(head_size, n_pos, theta)
        self.register_buffer("cos", ang.cos().float(), persistent=False)  # (n_pos, hs)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def forward(self, start: int, T: int):
        if start + T > self.cos.size(0):
            raise ValueError(f"positions {start}..{start + T - 1} are past the {self.cos.size(0)} this table holds")
        return self.cos[start:start + T], self.sin[start:start + T]   # (T, hs) each


# %%
rope = RotaryEmbedding(head_size=16, n_pos=32)
c, s = rope(4, 8)
test_eq(c.shape, (8, 16)); test_eq(list(rope.state_dict()), [])     # nothing to save
test_close(c, torch.cos(rope_angles(16, 12)[4:]).float(), eps=1e-7)
test_fail(lambda: rope(30, 8), contains="past the 32")

# %% [markdown]
# ## In the model: `GPTConfig(pos="rope")`
#
# With `pos="rope"` the model has no `wpe` table (chapter 5): the token embedding goes into the
# blocks as it is, and every attention layer rotates its queries and keys. GPT-2 itself
# (`pos="learned"`, the default) is untouched: same parameters, same names, same Hugging Face
# round trip (chapter 5 proves it).
#
# The seed project's rotary embeddings worked only when a sequence filled the whole context: their
# tables had exactly `block_size` rows and were multiplied into sequences of any length. Here a
# forward pass of `T` tokens takes the first `T` rows, so the model runs at every length up to
# `block_size`. And since the model is causal, a prefix gives the same outputs alone as inside a
# longer sequence:

# %%
from gpt2book.model import GPT, GPTConfig

# %%
torch.manual_seed(0)
rope_model = GPT(GPTConfig(block_size=32, vocab_size=50, n_layer=2, n_head=4, n_embd=32, pos="rope")).eval()
learned = GPT(GPTConfig(block_size=32, vocab_size=50, n_layer=2, n_head=4, n_embd=32))
test_eq(rope_model.num_params(), learned.num_params() - 32 * 32)                 # no position table
assert "transformer.wpe.weight" not in rope_model.state_dict() and "transformer.wpe.weight" in learned.state_dict()
idx = torch.randint(0, 50, (2, 32))
with torch.no_grad():
    full = rope_model(idx)[0]                                                    # (2, 32, 50)
    for T in (1, 5, 17, 31, 32):
        torch.testing.assert_close(rope_model(idx[:, :T])[0], full[:, :T], rtol=0, atol=1e-5)
print("every length from 1 to block_size works, and a prefix alone gives the prefix's outputs")
test_fail(lambda: rope_model(torch.zeros(1, 33, dtype=torch.long)), contains="larger block_size")

# %% [markdown]
# Inside the model the relative property holds layer by layer: the attention scores of a
# sequence are the same whether it sits at positions 0..7 or at positions 9..16 of the table (a
# learned table gives different vectors at different positions, so its scores would change):

# %%
blk = rope_model.transformer.h[0].attn
x = torch.randn(1, 8, 32)
q, k, _ = blk.split_heads(x)                                                     # (1, nh, 8, hs)
c, s = rope_model.rope(0, 17)
at0 = apply_rope(q, c[:8], s[:8]) @ apply_rope(k, c[:8], s[:8]).transpose(-2, -1)  # positions 0..7
at9 = apply_rope(q, c[9:], s[9:]) @ apply_rope(k, c[9:], s[9:]).transpose(-2, -1)  # positions 9..16
test_close(at0, at9, eps=1e-4)

# %% [markdown]
# ## Beyond the training length
#
# A model trained on 64-character windows, asked to read 128: what does each kind of position do
# past position 63? GPT-2's table has no row 64. To see what a learned table does there, we give it
# rows that were never trained, drawn like the initialisation (the case of a table allocated
# longer than the texts it was trained on). RoPE needs nothing: the rotation of position 100 is
# computed like any other. `bench/extrapolate.py` measures the loss at every position of 800
# validation windows, for the best runs of the experiment below (seed 1337 of each at its best
# learning rate), once with 64-character windows and once with 128:
#
# ```bash
# python bench/extrapolate.py out/runs/gpt2_lr0.004_s1337 out/runs/rope_lr0.004_s1337   # writes nbs/data/positions_extrapolation.json
# ```

# %%
import json
from pathlib import Path

# %%
ext = json.loads(Path("data/positions_extrapolation.json").read_text())
fig, ax = plt.subplots(figsize=(9, 3.8))
for name, r in ext["runs"].items():
    ax.plot(range(r["block_size"] * 2), r["loss_2x"], label=f"{r['pos']}: windows of {2 * r['block_size']}")
    ax.plot(range(r["block_size"]), r["loss_1x"], ":", c=ax.lines[-1].get_color(), label=f"{r['pos']}: windows of {r['block_size']}")
ax.axvline(63.5, c="gray", lw=0.8); ax.text(65, ax.get_ylim()[1] * 0.95, "past the training length", fontsize=8, va="top")
ax.set(xlabel="position in the window", ylabel="loss (nats/char)", title="Loss per position, trained on 64 characters")
ax.legend(fontsize=8); ax.grid(alpha=0.3); plt.show()
for name, r in ext["runs"].items():
    print(f"{r['pos']:8s}: positions 0-63: {r['mean_2x_first_half']:.3f} (in 64-windows {r['mean_1x']:.3f}); "
          f"positions 64-127: {r['mean_2x_second_half']:.3f}")

# %%
by = {r["pos"]: r for r in ext["runs"].values()}
assert by["learned"]["mean_2x_second_half"] - by["learned"]["mean_2x_first_half"] > 1.0   # recorded result: collapses
assert by["rope"]["mean_2x_second_half"] < by["learned"]["mean_2x_second_half"] - 0.8    # recorded result: degrades far less

# %% [markdown]
# Within the trained length, both do what they learned, and the loss falls with position (more
# context, better guesses). Past it, the learned table's untrained rows are noise added to every
# token, and the model falls apart: the loss jumps above what the same model does at position 0,
# with a single character of context. The rotary model keeps working, but worse than inside: its
# attention meets offsets it never saw (up to 127 instead of 63), and it degrades by the amount
# printed above, still far better than a learned table. Extending a context further is a field of its own (position
# interpolation, NTK-aware scaling of $\Theta$, YaRN), all of which start from RoPE.
#
# ## The experiment: learned positions against RoPE
#
# At the scale of chapter 10 (character-level Tiny Shakespeare, 4 layers x 128, context 64, 2000
# steps, every run annealed), with everything else equal, each arm at its own best learning rate
# of a sweep, and three seeds at that rate. The same runner as chapter 10, with the arms of
# `ARCHITECTURES`; the GPT-2 runs are the very runs of chapter 10's baseline (they share a folder):
#
# ```bash
# python -m gpt2book.experiments sweep architectures --workers 2
# ```

# %%
from IPython.display import Markdown, display

from gpt2book.experiments import ARCHITECTURES, ARM_NAMES, Scale, arm_params, read_results
from gpt2book.plots import plot_arms
from gpt2book.stats import results_table, summary

# %% [markdown]
# The table is chapter 10's (`results_table`, the one the README shows): each arm at its best
# learning rate, the final loss of three seeds with its 95% interval, the difference from GPT-2
# with Welch's interval, and the steps each needs to reach GPT-2's final loss.

# %%
arch = read_results("data/architectures.csv")
pos_rows = [r for r in arch if r["arm"] in ("gpt2", "rope")]
display(Markdown(results_table(pos_rows, ARM_NAMES, arm_params(Scale(), 66, ARCHITECTURES), digits=4)))
tab = {r["arm"]: r for r in summary(pos_rows)}
lr_tried = sorted({r["lr"] for r in pos_rows if r["arm"] == "rope"})
assert lr_tried[0] < tab["rope"]["lr"] < lr_tried[-1]                       # the best rate inside the sweep
assert tab["rope"]["diff_high"] < 0                                         # recorded result: beyond the noise
plot_arms(pos_rows); plt.show()

# %% [markdown]
# RoPE wins here, clearly: about 0.06 nats lower at the end, with a 95% interval that excludes
# zero, and GPT-2's final loss reached about a fifth sooner. A model of 64-character contexts
# spends a lot of its capacity on *where* a character is relative to the others (the previous
# character, the start of the word, the line); RoPE puts exactly that into every layer's attention,
# where a learned table must be learned first and then carried up through the layers. The gain
# at the scale of GPT-2 small is the subject of the preset `gpt2-124m-rope` (chapter 9), not run for
# this book, and of chapter 13's scaling sweep.
