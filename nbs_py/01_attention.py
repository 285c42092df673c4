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
import matplotlib.pyplot as plt
from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## Scaled dot-product attention

# %%
#| export
def scaled_dot_product_attention(q, k, v, causal=True, dropout_p=0.0):
    "softmax(q k^T / sqrt(hs)) v, written out; returns the output and the attention weights it used."
    hs = q.size(-1)
    att = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)
    if causal:
        T, S = q.size(-2), k.size(-2)
        # position t may look at positions 0..t only: mask the upper triangle before the softmax
        allowed = torch.ones(T, S, dtype=torch.bool, device=q.device).tril()  # (T, S)
        att = att.masked_fill(~allowed, float("-inf"))
    att = F.softmax(att, dim=-1)  # (B, nh, T, T), each row sums to 1
    if dropout_p > 0.0:
        # the caller decides: it passes dropout_p=0 in eval mode
        att = F.dropout(att, p=dropout_p, training=True)
    y = att @ v  # (B, nh, T, hs)
    return y, att


# %% [markdown]
# ## Multi-head causal self-attention

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
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)  # q, k, v for all heads in one matmul
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)      # mixes the heads back into the residual stream
        self.attn_dropout = nn.Dropout(dropout)   # on the attention weights
        self.resid_dropout = nn.Dropout(dropout)  # on the block's output

    def split_heads(self, x):
        "Project x (B, T, C) to q, k, v, each (B, nh, T, hs)."
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        return [t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)]  # 3 x (B, nh, T, hs)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.split_heads(x)  # (B, nh, T, hs)
        # attention dropout only while training: the seed project kept it on in eval and generation
        dropout_p = self.attn_dropout.p if self.training else 0.0
        if self.attn_impl == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:
            y, _ = scaled_dot_product_attention(q, k, v, causal=True, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))  # (B, T, C)


# %%
torch.manual_seed(0)
attn = CausalSelfAttention(64, 4, dropout=0.1).eval()
x = torch.randn(2, 8, 64)
test_eq(attn(x).shape, (2, 8, 64))
test_fail(lambda: CausalSelfAttention(64, 4, attn_impl="flash"), contains="sdpa")
