# %% [markdown]
# # The feed-forward network: GPT-2's MLP and SwiGLU
#
# > GPT-2's 4x GELU MLP and the SwiGLU that replaces it, with a hidden width chosen so both have the same number of parameters.

# %%
#| default_exp ffn

# %%
#| export
import torch
import torch.nn as nn
import torch.nn.functional as F

# %%
from fastcore.test import test_eq, test_fail


# %%
#| export
class MLP(nn.Module):
    "GPT-2's feed-forward network: c_fc C -> 4C, GELU (tanh approximation), c_proj 4C -> C, dropout."
    def __init__(self, n_embd, dropout=0.0, bias=True):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU(approximate="tanh")  # the approximation GPT-2 was trained with
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        h = self.gelu(self.c_fc(x))            # (B, T, 4C)
        return self.dropout(self.c_proj(h))    # (B, T, C)


# %%
#| export
def swiglu_hidden(n_embd, multiple_of=8):
    "SwiGLU hidden width with the MLP's weight count: 8/3 * n_embd, rounded to the nearest multiple of `multiple_of`."
    if n_embd < 1 or multiple_of < 1:
        raise ValueError(f"n_embd={n_embd} and multiple_of={multiple_of} must be positive integers")
    # 3 C H weights (gate, up, down) = 8 C^2 (MLP's up and down)  =>  H = 8C/3
    return multiple_of * max(1, round(8 * n_embd / 3 / multiple_of))


# %%
#| export
class SwiGLU(nn.Module):
    "SwiGLU FFN (Shazeer 2020): c_proj(silu(x W_gate) * (x W_up)), gate and up fused in `c_fc`, dropout after c_proj."
    def __init__(self, n_embd, dropout=0.0, bias=True, hidden=None):
        super().__init__()
        self.hidden = hidden or swiglu_hidden(n_embd)
        self.c_fc = nn.Linear(n_embd, 2 * self.hidden, bias=bias)  # gate and up in one matmul
        self.c_proj = nn.Linear(self.hidden, n_embd, bias=bias)     # same name as MLP's: same scaled init
        self.dropout = nn.Dropout(dropout)                          # same place as MLP's

    def forward(self, x):
        gate, up = self.c_fc(x).chunk(2, dim=-1)        # 2 x (B, T, H)
        return self.dropout(self.c_proj(F.silu(gate) * up))  # (B, T, C)


# %%
#| export
FFNS = {"mlp": MLP, "swiglu": SwiGLU}

def make_ffn(kind, n_embd, dropout=0.0, bias=True):
    "The feed-forward network named `kind` (a key of FFNS)."
    if kind not in FFNS:
        raise ValueError(f"ffn={kind!r} is unknown; use one of {list(FFNS)}")
    return FFNS[kind](n_embd, dropout=dropout, bias=bias)


# %%
test_eq(swiglu_hidden(768), 2048)
x = torch.randn(2, 5, 64)
for kind in FFNS: test_eq(make_ffn(kind, 64)(x).shape, x.shape)
test_fail(lambda: make_ffn("moe", 64), contains="swiglu")
