# %% [markdown]
# # The transformer block
# > Attention and the feed-forward network on a residual stream, each behind a norm: GPT-2's pre-norm block, with the norm and the FFN chosen by the config.

# %%
#| default_exp block

# %% [markdown]
# The last three chapters built the parts: causal self-attention (where tokens talk to each
# other), a norm (LayerNorm or RMSNorm) and a feed-forward network (GPT-2's MLP or SwiGLU, where
# each token thinks on its own). A **block** wires them together, and GPT-2 is nothing but a stack
# of identical blocks between an embedding and a classifier.
#
# ## The residual stream
#
# The central object of a transformer is the **residual stream**: one vector of width $C$
# (`n_embd`) per position, $x \in \mathbb{R}^{B \times T \times C}$. The embedding writes the
# first version of it; every block *reads* it, computes something and *adds* the result back:
#
# $$x \leftarrow x + \mathrm{attn}(\mathrm{norm}_1(x)), \qquad x \leftarrow x + \mathrm{ffn}(\mathrm{norm}_2(x)).$$
#
# Nothing is ever overwritten. Each sub-layer only contributes a delta, which is why the stream
# can be read as a sum: $x_L = x_0 + \sum_{\ell} \Delta_\ell$. The gradient has the same
# shortcut: $\partial x_L / \partial x_0 = I + \dots$, so a signal from the loss reaches the
# first layer without passing through any of the others.
#
# ## Pre-norm or post-norm
#
# The original transformer (Vaswani et al., 2017) and GPT-1 put the norm *after* the addition,
# **post-norm**: $x \leftarrow \mathrm{norm}(x + \mathrm{sublayer}(x))$. Then every path from the
# output back to the input goes through $2L$ norms, and deep post-norm stacks are hard to train
# without a careful learning-rate warmup (Xiong et al., 2020, *On Layer Normalization in the
# Transformer Architecture*). GPT-2 moved the norm to the *input* of each sub-layer,
# **pre-norm**, and added one final norm after the last block (`ln_f`, next chapter). The residual
# path is then a clean sum, as above. We build pre-norm, and below we prove the two properties
# that make the difference.

# %%
#| export
import torch.nn as nn

from gpt2book.attention import CausalSelfAttention
from gpt2book.ffn import FFNS, make_ffn
from gpt2book.norms import make_norm

# %%
import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import torch
from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## The block
#
# `Block` takes a config object and reads eight fields from it: `n_embd`, `n_head`, `dropout`,
# `bias`, `norm` (`"layernorm"` or `"rmsnorm"`), `ffn` (`"mlp"`, `"swiglu"` or `"relu2"`), `gelu`
# (the MLP's `"tanh"` or `"exact"` GELU) and `attn_impl` (`"sdpa"` or `"explicit"`). In practice
# that is the `GPTConfig` of the next chapter, but the block does not import it (the arrows point
# one way: block -> model); any object with those attributes will do. The names of the four parts,
# `ln_1`, `attn`, `ln_2` and `mlp`, are GPT-2's own, so Hugging Face checkpoints map onto ours name
# for name. `mlp` keeps its name whatever FFN it holds: it is the block's feed-forward slot.
#
# Two **plug points** let later chapters put other parts into the block without editing it. The
# feed-forward slot is built by the function that `BLOCK_FFNS` holds under `config.ffn`: chapter
# 3's kinds to start with; a later chapter registers a builder of its own under a new name (chapter
# 12's mixture of experts, `BLOCK_FFNS["moe"]`), and `GPTConfig` (next chapter) takes its `ffn`
# choices from this very dict, so the new name becomes a valid setting. And the attention class is
# an argument, so a variant of attention is a subclass handed in (chapter 17's QK-norm).
#
# `forward` passes two optional inputs through to attention: a function for the queries and keys
# (`qk`, chapter 11's rotary positions) and a layer's KV cache (chapter 5).

# %%
#| export
def dense_ffn(config):
    "Chapter 3's FFN that `config.ffn` names, with the config's width, dropout, bias and GELU."
    return make_ffn(config.ffn, config.n_embd, dropout=config.dropout, bias=config.bias, gelu=config.gelu)

BLOCK_FFNS = dict.fromkeys(FFNS, dense_ffn)   # config.ffn -> fn(config) -> the block's FFN; later chapters add kinds

def block_ffn(config):
    "The feed-forward slot of a block: what the builder `BLOCK_FFNS[config.ffn]` makes."
    if config.ffn not in BLOCK_FFNS:
        raise ValueError(f"ffn={config.ffn!r} is unknown; use one of {list(BLOCK_FFNS)}")
    return BLOCK_FFNS[config.ffn](config)

class Block(nn.Module):
    "GPT-2's pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)); norm and FFN kinds from `config`."
    def __init__(self, config, attention=CausalSelfAttention):
        super().__init__()
        self.ln_1 = make_norm(config.norm, config.n_embd, bias=config.bias)
        self.attn = attention(config.n_embd, config.n_head, dropout=config.dropout, bias=config.bias,
                              attn_impl=config.attn_impl)
        self.ln_2 = make_norm(config.norm, config.n_embd, bias=config.bias)
        self.mlp = block_ffn(config)

    def forward(self, x, qk=None, kv_cache=None):
        x = x + self.attn(self.ln_1(x), qk, kv_cache)    # (B, T, C): tokens exchange information
        x = x + self.mlp(self.ln_2(x))                   # (B, T, C): each token is transformed on its own
        return x


# %% [markdown]
# A block maps the stream to a stream of the same shape, so blocks stack. With GPT-2 small's width
# (768, 12 heads) and the four choices of norm and FFN:

# %%
def block_config(norm="layernorm", ffn="mlp", n_embd=768, n_head=12, dropout=0.0, bias=True, attn_impl="sdpa"):
    return SimpleNamespace(n_embd=n_embd, n_head=n_head, dropout=dropout, bias=bias,
                           norm=norm, ffn=ffn, gelu="tanh", attn_impl=attn_impl)

torch.manual_seed(0)
x = torch.randn(2, 16, 768)  # (B, T, C)
counts = {}
for norm in ("layernorm", "rmsnorm"):
    for ffn in ("mlp", "swiglu"):
        blk = Block(block_config(norm, ffn))
        y = blk(x)
        test_eq(y.shape, x.shape)  # (B, T, C) in, (B, T, C) out
        counts[norm, ffn] = sum(p.numel() for p in blk.parameters())
        print(f"{norm:9} + {ffn:6}: {type(blk.ln_1).__name__:9} {type(blk.mlp).__name__:6} "
              f"out {tuple(y.shape)}  {counts[norm, ffn]:,} parameters")

# %% [markdown]
# The four blocks differ by less than 0.1% in size: SwiGLU's hidden width was chosen to match the
# MLP's weights (chapter 3), and RMSNorm only drops the norms' biases. So a comparison of the four
# variants compares architectures, not parameter budgets.

# %%
base = counts["layernorm", "mlp"]
for k, n in counts.items():
    assert abs(n - base) / base < 1e-3, (k, n, base)
# RMSNorm has no bias: exactly 2 x 768 fewer parameters than LayerNorm
test_eq(counts["layernorm", "mlp"] - counts["rmsnorm", "mlp"], 2 * 768)

# %% [markdown]
# A bad choice is caught by the parts and names the valid ones:

# %%
test_fail(lambda: Block(block_config(norm="batchnorm")), contains="layernorm")
test_fail(lambda: Block(block_config(ffn="relu")), contains="swiglu")
test_fail(lambda: Block(block_config(attn_impl="flash")), contains="sdpa")

# %% [markdown]
# ## Causality survives the block
#
# Attention is the only place where positions mix, and it is causal; norms and the FFN act on each
# position alone. So a block is causal too: changing the last token leaves every earlier output
# bit-identical.

# %%
blk = Block(block_config(n_embd=64, n_head=4, attn_impl="explicit")).eval()
x = torch.randn(1, 8, 64)
x2 = x.clone(); x2[:, -1] = torch.randn(64)
y, y2 = blk(x), blk(x2)
assert torch.equal(y[:, :-1], y2[:, :-1])
assert not torch.allclose(y[:, -1], y2[:, -1])


# %% [markdown]
# ## Why pre-norm: the identity is one step away
#
# A pre-norm block whose two output projections (`c_proj`, in attention and FFN) are zero adds
# nothing to the stream: it *is* the identity. A deep pre-norm network can therefore start close to
# a shallow one and grow into its depth; GPT-2's initialisation (next chapter) leans on this by
# shrinking exactly those `c_proj` weights. A post-norm block cannot be the identity: its output
# always passes through a norm, which rescales every vector to length about $\sqrt{C}$.

# %%
class PostNormBlock(Block):
    "The original transformer's ordering, for comparison only: norm(x + sublayer(x))."
    def forward(self, x):
        x = self.ln_1(x + self.attn(x))
        return self.ln_2(x + self.mlp(x))

cfg = block_config(n_embd=64, n_head=4)
pre, post = Block(cfg), PostNormBlock(cfg)
post.load_state_dict(pre.state_dict())  # same weights, different wiring
with torch.no_grad():
    for blk in (pre, post):
        for proj in (blk.attn.c_proj, blk.mlp.c_proj):
            proj.weight.zero_(); proj.bias.zero_()
x = 3 * torch.randn(2, 8, 64)
assert torch.equal(pre(x), x)                      # pre-norm: exactly the identity
assert not torch.allclose(post(x), x, atol=1e-1)   # post-norm: the input is renormalised
test_eq(post(x).norm(dim=-1).mean().round(decimals=2).item(), round(math.sqrt(64), 2))


# %% [markdown]
# ## The residual stream through a stack
#
# What happens to the stream's size as it passes through many blocks? Below, 24 blocks of width
# 64 with PyTorch's default initialisation (the GPT-2 initialisation of the next chapter makes the
# deltas much smaller, which would flatten both curves). Post-norm pins the stream to length
# $\sqrt{C} = 8$ after every block. Pre-norm lets it grow as the blocks add their deltas: that is
# the sum $x_0 + \sum_\ell \Delta_\ell$ at work, and it is why a pre-norm model needs one more norm,
# `ln_f`, before the classifier.

# %%
def stream_norms(block_cls, n_layer=24, n_embd=64, seed=0):
    "Mean L2 norm of the residual stream after each of `n_layer` blocks (index 0: the input)."
    torch.manual_seed(seed)
    blocks = [block_cls(block_config(n_embd=n_embd, n_head=4)) for _ in range(n_layer)]
    x = torch.randn(4, 32, n_embd)  # (B, T, C), norm about sqrt(C)
    norms = [x.norm(dim=-1).mean().item()]
    with torch.no_grad():
        for blk in blocks:
            x = blk(x)
            norms.append(x.norm(dim=-1).mean().item())
    return norms

pre_norms, post_norms = stream_norms(Block), stream_norms(PostNormBlock)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(pre_norms, marker=".", label="pre-norm (GPT-2)")
ax.plot(post_norms, marker=".", label="post-norm (2017 transformer)")
ax.set_xlabel("blocks passed"); ax.set_ylabel("mean $\\|x\\|_2$ per position")
ax.set_title("The residual stream through 24 blocks, width 64"); ax.legend(); plt.show()

# %%
assert pre_norms[-1] > 1.3 * pre_norms[0]  # the pre-norm stream accumulates the blocks' deltas
assert all(abs(n - 8.0) < 0.01 for n in post_norms[1:])  # post-norm: renormalised after each block

# %% [markdown]
# ## Dropout only while training
#
# The block inherits dropout from its parts: attention weights, attention output and FFN output.
# In training mode two passes differ; in eval mode dropout is off everywhere (attention dropout
# included, which [the seed project](00_index.ipynb#the-seed-project) got wrong), so two passes are identical and equal to a block
# built without dropout.

# %%
for impl in ("sdpa", "explicit"):
    torch.manual_seed(0)
    drop = Block(block_config(n_embd=64, n_head=4, dropout=0.5, attn_impl=impl))
    nodrop = Block(block_config(n_embd=64, n_head=4, dropout=0.0, attn_impl=impl))
    nodrop.load_state_dict(drop.state_dict())
    x = torch.randn(2, 8, 64)
    assert not torch.equal(drop.train()(x), drop(x))      # training: random masks
    assert torch.equal(drop.eval()(x), drop(x))           # eval: deterministic
    torch.testing.assert_close(drop(x), nodrop.eval()(x)) # ... and the same as no dropout at all

# %% [markdown]
# Next: stack `n_layer` of these between an embedding and a classifier, and we have GPT-2.
