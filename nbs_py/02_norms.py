# %% [markdown]
# # Normalisation: LayerNorm and RMSNorm
#
# > LayerNorm (GPT-2) and RMSNorm (LLaMA) written out from their formulas, checked against PyTorch and tested for the invariances that tell them apart.

# %%
#| default_exp norms

# %%
#| export
import torch
import torch.nn as nn

# %%
from fastcore.test import test_close, test_eq, test_fail


# %%
#| export
class LayerNorm(nn.Module):
    "LayerNorm with an optional bias: y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim."
    def __init__(self, ndim, bias=True, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None
        self.eps = eps

    def forward(self, x):
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16/fp16 -> float32, float64 stays
        mean = xf.mean(-1, keepdim=True)               # (..., 1)
        var = xf.var(-1, keepdim=True, correction=0)   # (..., 1) biased variance, as in the paper
        y = (xf - mean) * torch.rsqrt(var + self.eps) * self.weight.to(xf.dtype)
        if self.bias is not None:
            y = y + self.bias.to(xf.dtype)
        return y.to(x.dtype)


# %%
#| export
class RMSNorm(nn.Module):
    "RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * weight; no centring, no bias."
    def __init__(self, ndim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.eps = eps

    def forward(self, x):
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16/fp16 -> float32, float64 stays
        ms = xf.pow(2).mean(-1, keepdim=True)  # (..., 1) mean square
        return (xf * torch.rsqrt(ms + self.eps) * self.weight.to(xf.dtype)).to(x.dtype)


# %%
#| export
NORMS = {"layernorm": LayerNorm, "rmsnorm": RMSNorm}

def make_norm(kind, ndim, bias=True):
    "The norm named `kind` over `ndim` features; `bias` applies to LayerNorm only (RMSNorm has none)."
    if kind not in NORMS:
        raise ValueError(f"norm={kind!r} is unknown; use one of {list(NORMS)}")
    return LayerNorm(ndim, bias=bias) if kind == "layernorm" else RMSNorm(ndim)


# %%
x = torch.randn(4, 16, 64, dtype=torch.float64)
ln, ref = LayerNorm(64).double(), nn.LayerNorm(64, eps=1e-5).double()
test_close(ln(x), ref(x), eps=1e-12)
rms, ref = RMSNorm(64).double(), nn.RMSNorm(64, eps=1e-5).double()
test_close(rms(x), ref(x), eps=1e-12)
test_fail(lambda: make_norm("batchnorm", 8), contains="layernorm")
