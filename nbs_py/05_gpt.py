# %% [markdown]
# # GPT-2
#
# > GPTConfig and GPT: embeddings, a stack of blocks, a final norm and a tied classifier; GPT-2's initialisation, the loss, sampling, and Hugging Face weights in and out.

# %%
#| default_exp model

# %% [markdown]
# Chapter 4 built a block that maps the residual stream $(B, T, C)$ to itself. A language model
# needs three more things around a stack of them:
#
# 1. a way **in**: token ids $(B, T)$ become vectors, through a learned token embedding `wte`
#    $(V, C)$ plus a learned position embedding `wpe` $(T_{max}, C)$, since attention itself does not
#    know the order of its inputs;
# 2. a way **out**: a final norm `ln_f` (the pre-norm stream grows through the stack, chapter 4)
#    and a linear classifier `lm_head` that scores every token of the vocabulary at every position,
#    the **logits** $(B, T, V)$;
# 3. a **loss**: the cross entropy between the logits at position $t$ and the token at $t+1$.
#
# This chapter writes them down with GPT-2's names (`transformer.wte`, `transformer.h.0.attn.c_attn`,
# ...), so that OpenAI's weights, as Hugging Face publishes them, load into our model, and a model
# we train loads into Hugging Face's. The last sections prove both, to $10^{-5}$.

# %%
#| export
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from gpt2book.attention import ATTN_IMPLS
from gpt2book.block import Block
from gpt2book.ffn import FFNS
from gpt2book.norms import NORMS, make_norm

# %%
import matplotlib.pyplot as plt
import tiktoken
from fastcore.test import test_close, test_eq, test_fail

# %% [markdown]
# ## The config
#
# Everything that fixes the model's shape lives in one dataclass. Its defaults are GPT-2 small;
# `norm`, `ffn` and `attn_impl` are the switches of chapters 1-3. OpenAI released GPT-2 in four
# sizes, which differ only in depth, width and number of heads (all use a 1024-token context and
# the 50,257-token BPE vocabulary). A config that cannot work (a width that does not split into
# heads, an unknown norm) fails when it is made, not deep inside a forward pass.

# %%
#| export
GPT_PRESETS = {  # OpenAI's four GPT-2 sizes (Radford et al., 2019, table 2)
    "gpt2":        dict(n_layer=12, n_head=12, n_embd=768),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-large":  dict(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-xl":     dict(n_layer=48, n_head=25, n_embd=1600),
}

@dataclass
class GPTConfig:
    "Shape and architecture switches of a GPT; the defaults are GPT-2 small (124M)."
    block_size: int = 1024   # longest context, in tokens (rows of the position embedding)
    vocab_size: int = 50257  # GPT-2's BPE: 50,000 merges + 256 bytes + <|endoftext|>
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0     # on embeddings, attention weights and both residual branches; training only
    bias: bool = True        # biases in Linears and LayerNorms, as GPT-2
    norm: str = "layernorm"  # a key of NORMS: "layernorm" | "rmsnorm"
    ffn: str = "mlp"         # a key of FFNS: "mlp" | "swiglu"
    attn_impl: str = "sdpa"  # "sdpa" (fast) | "explicit" (chapter 1's softmax, for teaching)

    def __post_init__(self):
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"GPTConfig.{name}={v!r} must be a positive integer")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}: "
                             f"each head gets n_embd // n_head channels")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout!r} must be in [0, 1)")
        for name, valid in (("norm", NORMS), ("ffn", FFNS), ("attn_impl", ATTN_IMPLS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name}={getattr(self, name)!r} is unknown; use one of {list(valid)}")

    @classmethod
    def from_preset(cls, name, **overrides):
        "The GPT-2 size `name` (a key of GPT_PRESETS), with any field overridden."
        if name not in GPT_PRESETS:
            raise ValueError(f"unknown preset {name!r}; use one of {list(GPT_PRESETS)}")
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ValueError(f"unknown GPTConfig field(s) {unknown}; the fields are {valid}")
        return cls(**{**GPT_PRESETS[name], **overrides})


# %%
test_eq(GPTConfig(), GPTConfig.from_preset("gpt2"))
cfg = GPTConfig.from_preset("gpt2-xl", norm="rmsnorm", ffn="swiglu", dropout=0.1)
test_eq((cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.norm, cfg.ffn), (48, 25, 1600, "rmsnorm", "swiglu"))
test_fail(lambda: GPTConfig(n_embd=100, n_head=12), contains="divisible by n_head")
test_fail(lambda: GPTConfig(norm="batchnorm"), contains="'layernorm', 'rmsnorm'")
test_fail(lambda: GPTConfig(ffn="moe"), contains="'mlp', 'swiglu'")
test_fail(lambda: GPTConfig(attn_impl="flash"), contains="'sdpa', 'explicit'")
test_fail(lambda: GPTConfig(n_layer=0), contains="positive integer")
test_fail(lambda: GPTConfig.from_preset("gpt3"), contains="gpt2-medium")
test_fail(lambda: GPTConfig.from_preset("gpt2", n_layers=6), contains="n_layer")


# %% [markdown]
# ## The model
#
# The module tree follows GPT-2's checkpoint names: everything but the head sits in a
# `transformer` dict (`wte`, `wpe`, `drop`, the blocks `h`, `ln_f`), and `lm_head` is outside it.
#
# **Weight tying** (Press & Wolf, 2017; GPT-2 does it): the classifier $(V, C)$ and the token
# embedding $(V, C)$ are *the same matrix*. Reading a token in and scoring it out use one vector
# per token; this saves $V \cdot C$ = 38.6M parameters in GPT-2 small, almost a third of it.
#
# **Initialisation** (GPT-2, as in nanoGPT and Hugging Face): every Linear and Embedding weight is
# drawn from $\mathcal{N}(0, 0.02^2)$, biases start at zero, norms at the identity. The two
# projections that *write* into the residual stream, `c_proj` in attention and in the FFN, are
# scaled down further to $0.02/\sqrt{2L}$: the stream is a sum of $2L$ such contributions
# (chapter 4), and the scaling keeps the variance of the sum near the variance of one term.
# The rule goes by name, so SwiGLU's `c_proj` gets it exactly like the MLP's (the seed project
# scaled one arm and not the other).

# %%
#| export
class GPT(nn.Module):
    "GPT-2: token + position embeddings, `n_layer` pre-norm blocks, a final norm and an LM head tied to `wte`."
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token id -> vector
            wpe=nn.Embedding(config.block_size, config.n_embd),  # position -> vector
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=make_norm(config.norm, config.n_embd, bias=config.bias),  # the configured kind, also here
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying: one (V, C) matrix in and out
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # attention's and the FFN's output projections, both arms
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def hidden(self, idx):
        "The final, normalised residual stream (B, T, C) for token ids `idx` (B, T)."
        if idx.dim() != 2:
            raise ValueError(f"idx must be token ids of shape (B, T), got shape {tuple(idx.shape)}")
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size={self.config.block_size}: the model has "
                             f"only {self.config.block_size} position embeddings. Crop the input to its last "
                             f"{self.config.block_size} tokens (generate does) or build a model with a larger block_size.")
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)  # (B, T, C)
        return self.transformer.ln_f(x)  # (B, T, C)

    def forward(self, idx, targets=None):
        "Logits (B, T, V) for token ids `idx` (B, T), and the cross entropy against `targets` (B, T) if given (-1: ignored)."
        logits = self.lm_head(self.hidden(idx))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss

    def num_params(self, non_embedding=False):
        """Number of parameters, each tensor counted once: `lm_head` shares `wte`'s matrix and adds nothing.
        `non_embedding=True` also leaves out the position embedding `wpe` (nanoGPT's convention; `wte`
        stays in because it doubles as the output layer)."""
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a shared tensor once
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        """Extend `idx` (B, T) by `max_new_tokens` sampled tokens; returns (B, T + max_new_tokens).
        `temperature` divides the logits (0 means greedy: always the most likely token); `top_k` keeps the
        k most likely tokens only. Samples in eval mode (no dropout) and restores the previous mode."""
        if temperature < 0:
            raise ValueError(f"temperature={temperature} must be >= 0 (0 is greedy decoding)")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k={top_k} must be a positive integer or None (no cut)")
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                idx_cond = idx[:, -self.config.block_size:]  # (B, <= block_size): the context the model can see
                logits = self.lm_head(self.hidden(idx_cond)[:, -1, :])  # (B, V): scores for the next token only
                if temperature == 0:
                    idx_next = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
                else:
                    logits = logits / temperature
                    if top_k is not None:
                        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1)
                        logits = logits.masked_fill(logits < kth, float("-inf"))
                    probs = F.softmax(logits, dim=-1)  # (B, V)
                    idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
                idx = torch.cat((idx, idx_next), dim=1)  # (B, T + 1)
        finally:
            self.train(was_training)
        return idx

    @classmethod
    def from_pretrained(cls, name_or_dir, **overrides):
        """A GPT with Hugging Face GPT-2 weights, in eval mode, from a local directory (config.json +
        model.safetensors, as `save_pretrained` writes) or a hub name such as "gpt2" or "gpt2-xl".
        `overrides` may set `dropout` and `attn_impl`."""
        config_file, weights_file = _pretrained_files(name_or_dir)
        model = cls(config_from_hf(json.loads(Path(config_file).read_text()), **overrides))
        load_hf_weights(model, load_file(weights_file))
        return model.eval()

    def save_pretrained(self, save_dir):
        "Write config.json + model.safetensors that `transformers.GPT2LMHeadModel.from_pretrained` loads."
        return save_hf(self, save_dir)


# %% [markdown]
# A tiny GPT to look at shapes: vocabulary 100, context 16, 2 layers of width 32.

# %%
torch.manual_seed(0)
tiny = GPT(GPTConfig(block_size=16, vocab_size=100, n_layer=2, n_head=4, n_embd=32))
idx = torch.randint(0, 100, (3, 10))   # (B, T) token ids
logits, loss = tiny(idx)
test_eq(logits.shape, (3, 10, 100))    # (B, T, V): a score for every token at every position
assert loss is None
assert tiny.lm_head.weight is tiny.transformer.wte.weight  # tied: one tensor, two roles
print(tiny)

# %% [markdown]
# The context cannot be longer than the number of position embeddings, and the error says what
# to do:

# %%
test_fail(lambda: tiny(torch.zeros(1, 17, dtype=torch.long)), contains="Crop the input")
test_fail(lambda: tiny(torch.zeros(17, dtype=torch.long)), contains="shape (B, T)")

# %% [markdown]
# ## The initialisation, measured
#
# Every `c_proj` weight has standard deviation $0.02/\sqrt{2L}$, in both FFN arms, and every other
# matrix $0.02$. With $L = 4$ the target is $0.02/\sqrt 8 \approx 0.00707$:

# %%
for ffn in ("mlp", "swiglu"):
    torch.manual_seed(0)
    m = GPT(GPTConfig(block_size=64, vocab_size=512, n_layer=4, n_head=4, n_embd=128, ffn=ffn))
    for name, p in m.named_parameters():
        if name.endswith("c_proj.weight"):
            test_close(p.std().item(), 0.02 / math.sqrt(2 * 4), eps=3e-4)
        elif name.endswith("weight") and p.dim() == 2:  # c_attn, c_fc, wte, wpe
            test_close(p.std().item(), 0.02, eps=1e-3)
        elif name.endswith("bias"):
            assert torch.all(p == 0), name
    print(ffn, "mlp.c_proj std:", round(m.transformer.h[0].mlp.c_proj.weight.std().item(), 5),
          " attn.c_proj std:", round(m.transformer.h[0].attn.c_proj.weight.std().item(), 5))

# %% [markdown]
# ## The loss at initialisation
#
# With small random weights the logits are close to zero, so the model's prediction is close to
# uniform over the vocabulary and the cross entropy is close to $\ln V$: $\ln 50257 \approx 10.82$
# nats. A training run that starts far from this number has a bug (or a worse initialisation);
# it is the first line to check in a training log.

# %%
torch.manual_seed(0)
m = GPT(GPTConfig(block_size=64, vocab_size=50257, n_layer=2, n_head=4, n_embd=64))
idx = torch.randint(0, 50257, (4, 64))
_, loss = m(idx[:, :-1], targets=idx[:, 1:])
print(f"loss at init {loss.item():.4f}, ln(V) = {math.log(50257):.4f}")
test_close(loss.item(), math.log(50257), eps=0.05)

# %% [markdown]
# `ignore_index=-1` lets a data loader mark positions that carry no target (padding): they do not
# count.

# %%
targets = idx[:, 1:].clone()
targets[:, 32:] = -1
_, l_half = m(idx[:, :-1], targets)
logits, _ = m(idx[:, :-1])
test_close(l_half, F.cross_entropy(logits[:, :32].flatten(0, 1), idx[:, 1:33].flatten()), eps=1e-5)

# %% [markdown]
# ## Dropout only while training
#
# Dropout is on in `train()` mode and off in `eval()` mode, everywhere: embeddings, attention
# weights (which the seed project left on in evaluation and sampling), and both residual branches.
# In eval mode a model built with `dropout=0.5` computes exactly what the same weights compute
# without dropout, for either attention path.

# %%
for impl in ("sdpa", "explicit"):
    cfg = GPTConfig(block_size=16, vocab_size=100, n_layer=2, n_head=4, n_embd=32, attn_impl=impl)
    torch.manual_seed(0)
    noisy = GPT(GPTConfig(**{**cfg.__dict__, "dropout": 0.5}))
    clean = GPT(cfg); clean.load_state_dict(noisy.state_dict())
    idx = torch.randint(0, 100, (2, 16))
    assert not torch.equal(noisy.train()(idx)[0], noisy(idx)[0])   # training: random masks
    torch.testing.assert_close(noisy.eval()(idx)[0], clean.eval()(idx)[0])  # eval: no dropout at all


# %% [markdown]
# ## Counting parameters
#
# `num_params` counts every tensor once, so the tied head is not counted twice. GPT-2 small has
# exactly 124,439,808 parameters. We build the four sizes on PyTorch's `meta` device, which records
# shapes and allocates nothing, so counting GPT-2 XL's 1.5 billion parameters takes milliseconds.

# %%
def count(config):
    with torch.device("meta"):
        return GPT(config).num_params()

test_eq(count(GPTConfig()), 124_439_808)
rows = []
for name in GPT_PRESETS:
    cfg = GPTConfig.from_preset(name)
    n, n_var = count(cfg), count(GPTConfig.from_preset(name, norm="rmsnorm", ffn="swiglu"))
    rows.append((name, cfg.n_layer, cfg.n_head, cfg.n_embd, n, n_var))
print(f"{'preset':12} {'layers':>6} {'heads':>5} {'width':>5} {'GPT-2':>14} {'SwiGLU+RMSNorm':>15} {'diff':>7}")
for name, L, H, C, n, n_var in rows:
    print(f"{name:12} {L:6} {H:5} {C:5} {n:14,} {n_var:15,} {(n_var - n) / n:+7.3%}")

# %% [markdown]
# The SwiGLU + RMSNorm variant stays within 1% of GPT-2 at every size (chapter 3 chose SwiGLU's
# width for this), so the comparison in chapter 10 is between architectures of equal size.
# With `non_embedding=True` the count leaves out `wpe` (1024 x 768 = 786,432 for GPT-2 small):

# %%
for name, L, H, C, n, n_var in rows:
    assert abs(n_var - n) / n < 0.01, (name, n, n_var)
with torch.device("meta"):
    small = GPT(GPTConfig())
test_eq(small.num_params() - small.num_params(non_embedding=True), 1024 * 768)

# %% [markdown]
# ## Sampling
#
# A language model gives a distribution over the next token; `generate` draws from it, appends the
# draw and repeats. Two knobs shape the distribution before the draw: the **temperature** $\tau$
# divides the logits, $p_i \propto \exp(z_i / \tau)$ (below 1 sharpens it, above 1 flattens it,
# $\tau \to 0$ is greedy decoding), and **top-k** keeps only the $k$ most likely tokens. The
# context is cropped to the last `block_size` tokens, so generation can run past the context length.
# Here is what temperature does to one set of logits:

# %%
z = torch.tensor([3.0, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0])
fig, ax = plt.subplots(figsize=(6, 3))
for i, tau in enumerate((0.5, 1.0, 2.0)):
    ax.bar(torch.arange(8) + (i - 1) * 0.27, F.softmax(z / tau, dim=-1), width=0.27, label=f"$\\tau$ = {tau}")
ax.set_xlabel("token (by logit)"); ax.set_ylabel("probability"); ax.legend()
ax.set_title("Temperature: sharper below 1, flatter above"); plt.show()

# %% [markdown]
# A small untrained GPT with GPT-2's vocabulary, decoded with GPT-2's tokenizer (tiktoken). An
# untrained model knows nothing, so the text is noise; chapter 9 returns to this cell's question
# with a trained model.

# %%
enc = tiktoken.get_encoding("gpt2")
torch.manual_seed(0)
m = GPT(GPTConfig(block_size=32, vocab_size=enc.n_vocab, n_layer=2, n_head=4, n_embd=64))
prompt = torch.tensor([enc.encode_ordinary("The meaning of life is")])  # (1, 5)
out = m.generate(prompt, max_new_tokens=12, temperature=1.0, top_k=50, generator=torch.Generator().manual_seed(0))
test_eq(out.shape, (1, 5 + 12))
assert torch.equal(out[:, :5], prompt)  # the prompt is kept
print(enc.decode(out[0].tolist()))

# %% [markdown]
# The properties that make `generate` trustworthy: the same generator seed gives the same text;
# temperature 0 is the argmax of the logits; top-k 1 is greedy too; sampling runs without dropout
# and leaves the model in the mode it found it in; and it runs past `block_size` by cropping.

# %%
g = lambda: torch.Generator().manual_seed(1)
test_eq(m.generate(prompt, 4, generator=g()), m.generate(prompt, 4, generator=g()))
greedy = m.generate(prompt, 4, temperature=0)
test_eq(m.generate(prompt, 4, top_k=1, generator=g()), greedy)
test_eq(greedy[0, 5], m(prompt)[0][0, -1].argmax())
m.train()
m.generate(prompt, 1)
assert m.training  # mode restored
long = torch.randint(0, enc.n_vocab, (1, 30))
test_eq(m.eval().generate(long, 4, temperature=0).shape, (1, 34))  # 34 > block_size = 32
test_fail(lambda: m.generate(prompt, 1, temperature=-1), contains="temperature")

# %% [markdown]
# ## Hugging Face weights in and out
#
# OpenAI's GPT-2 weights are on the Hugging Face Hub (`gpt2`, `gpt2-medium`, `gpt2-large`,
# `gpt2-xl`), as a `config.json` and a `model.safetensors`. Our names are GPT-2's, so loading is a
# renaming with three wrinkles:
#
# - **Two key layouts.** `transformers.GPT2LMHeadModel` nests the body under `transformer.`
#   (`transformer.h.0.attn.c_attn.weight`); the original hub checkpoints do not (`h.0.attn.c_attn.weight`).
# - **Conv1D.** OpenAI's code, and Hugging Face's port of it, stores the four big matrices of a block
#   (`c_attn`, `attn.c_proj`, `c_fc`, `mlp.c_proj`) as `(in, out)`; `nn.Linear` stores `(out, in)`.
#   They are transposed on the way in and on the way out.
# - **Buffers that are not weights.** Old checkpoints carry the causal mask (`attn.bias`,
#   `attn.masked_bias`); our attention builds its mask itself, so they are skipped.
#
# The head is tied to `wte`, so it is not stored: `transformers` ties it again when it loads.

# %%
#| export
HF_CONV1D = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")  # stored (in, out)
HF_BUFFERS = (".attn.bias", ".attn.masked_bias")  # the causal mask in old checkpoints, not a weight

def hf_to_gpt2book(sd):
    "A Hugging Face GPT-2 state dict (either key layout) renamed and transposed to gpt2book's names; the tied head is dropped."
    if "lm_head.weight" in sd:
        wte = sd.get("transformer.wte.weight", sd.get("wte.weight"))
        if wte is not None and not torch.equal(sd["lm_head.weight"], wte):
            raise ValueError("this checkpoint's lm_head is not tied to its token embedding; gpt2book's GPT ties them")
    out = {}
    for k, v in sd.items():
        if k == "lm_head.weight" or k.endswith(HF_BUFFERS):
            continue
        k = "transformer." + k.removeprefix("transformer.")  # the bare hub layout lacks the prefix
        out[k] = v.t() if k.endswith(HF_CONV1D) else v
    return out

def load_hf_weights(model, sd):
    "Copy a Hugging Face GPT-2 state dict into `model`, checking that every name and shape matches."
    theirs, ours = hf_to_gpt2book(sd), dict(model.named_parameters())  # named_parameters: wte once, not lm_head
    missing, unexpected = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    if missing or unexpected:
        raise ValueError(f"the checkpoint does not fit GPT({model.config}): missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]} ({len(missing)} and {len(unexpected)} in all)")
    with torch.no_grad():
        for k, p in ours.items():
            if theirs[k].shape != p.shape:
                raise ValueError(f"{k}: the checkpoint has shape {tuple(theirs[k].shape)}, the model {tuple(p.shape)}")
            p.copy_(theirs[k])


# %% [markdown]
# The config goes the same way. Only the GPT-2 architecture has a Hugging Face GPT-2 config:
# `rmsnorm`, `swiglu` or `bias=False` cannot be expressed in it, so `save_pretrained` refuses them
# (and says so) rather than writing a file that would load as a different model. Reading, we
# refuse the `GPT2Config` options that change the computation in ways our model does not have.

# %%
#| export
def check_gpt2_architecture(config):
    "Raise unless `config` is the GPT-2 architecture (LayerNorm, GELU MLP, biases), the one Hugging Face's GPT-2 can hold."
    problems = [f"{k}={getattr(config, k)!r} (GPT-2: {v!r})"
                for k, v in (("norm", "layernorm"), ("ffn", "mlp"), ("bias", True)) if getattr(config, k) != v]
    if problems:
        raise ValueError(f"Hugging Face's GPT-2 cannot express {', '.join(problems)}: only the GPT-2 architecture "
                         f"can be saved in its format. Keep this variant in gpt2book's own checkpoints instead.")

def hf_config(model):
    "The config.json of `transformers.GPT2LMHeadModel` for `model` (a GPT of the GPT-2 architecture)."
    c = model.config
    check_gpt2_architecture(c)
    eot = min(50256, c.vocab_size - 1)  # GPT-2's <|endoftext|>, kept inside a smaller vocabulary
    return dict(model_type="gpt2", architectures=["GPT2LMHeadModel"], activation_function="gelu_new",
                n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer, n_head=c.n_head, n_inner=None,
                vocab_size=c.vocab_size, layer_norm_epsilon=model.transformer.ln_f.eps,
                resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.dropout,
                bos_token_id=eot, eos_token_id=eot, tie_word_embeddings=True,
                dtype=str(model.transformer.wte.weight.dtype).removeprefix("torch."))

def config_from_hf(hf, dropout=0.0, attn_impl="sdpa"):
    "A GPTConfig from a Hugging Face GPT-2 config.json dict; refuses options gpt2book's GPT does not implement."
    if hf.get("model_type") != "gpt2":
        raise ValueError(f"model_type={hf.get('model_type')!r}: from_pretrained loads GPT-2 checkpoints only")
    n_embd = hf["n_embd"]
    unsupported = {  # option: (value in this checkpoint, the values our GPT computes)
        "activation_function": (hf.get("activation_function", "gelu_new"), ("gelu_new", "gelu_pytorch_tanh")),
        "n_inner": (hf.get("n_inner"), (None, 4 * n_embd)),
        "layer_norm_epsilon": (hf.get("layer_norm_epsilon", 1e-5), (1e-5,)),
        "tie_word_embeddings": (hf.get("tie_word_embeddings", True), (True,)),
        "scale_attn_weights": (hf.get("scale_attn_weights", True), (True,)),
        "scale_attn_by_inverse_layer_idx": (hf.get("scale_attn_by_inverse_layer_idx", False), (False,)),
    }
    bad = [f"{k}={v!r} (supported: {ok})" for k, (v, ok) in unsupported.items() if v not in ok]
    if bad:
        raise ValueError(f"this GPT-2 checkpoint uses options gpt2book's GPT does not implement: {'; '.join(bad)}")
    return GPTConfig(block_size=hf["n_positions"], vocab_size=hf["vocab_size"], n_layer=hf["n_layer"],
                     n_head=hf["n_head"], n_embd=n_embd, dropout=dropout, attn_impl=attn_impl)


# %% [markdown]
# Saving writes both files into a fresh temporary directory next to the target and then renames
# it into place (or, when the target exists, renames each file into it), so a crash never leaves
# a half-written checkpoint behind. Loading takes a directory, or a hub name that `huggingface_hub`
# downloads (and caches) where the network allows.

# %%
#| export
def save_hf(model, save_dir):
    "Write `model` as config.json + model.safetensors in Hugging Face GPT-2's layout, atomically; returns the directory."
    config = hf_config(model)  # refuses non-GPT-2 variants before anything touches the disk
    sd = {k: (p.t() if k.endswith(HF_CONV1D) else p).detach().cpu().contiguous()
          for k, p in model.named_parameters()}  # wte once: the tied head is not stored
    save_dir = Path(save_dir)
    if save_dir.exists() and not save_dir.is_dir():
        raise NotADirectoryError(f"{save_dir} exists and is not a directory; pass a directory path")
    save_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{save_dir.name}.tmp", dir=save_dir.parent))
    try:
        save_file(sd, tmp / "model.safetensors", metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if save_dir.exists():
            for f in ("model.safetensors", "config.json"):
                os.replace(tmp / f, save_dir / f)
        else:
            os.replace(tmp, save_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return save_dir

def _pretrained_files(name_or_dir):
    "(config.json, model.safetensors) of a local directory, or of a hub model fetched by huggingface_hub."
    path = Path(name_or_dir)
    if path.is_dir():
        files = path / "config.json", path / "model.safetensors"
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"{f} is missing: from_pretrained reads a directory holding config.json and "
                                        f"model.safetensors, as save_pretrained writes it")
        return files
    try:
        from huggingface_hub import hf_hub_download
        return tuple(hf_hub_download(str(name_or_dir), f) for f in ("config.json", "model.safetensors"))
    except Exception as e:
        raise OSError(f"{str(name_or_dir)!r} is not a local directory, and fetching it from the Hugging Face Hub failed "
                      f"({type(e).__name__}: {e}). Pass a directory holding config.json and model.safetensors, e.g. one "
                      f"made with `hf download {name_or_dir} config.json model.safetensors --local-dir DIR` on a machine "
                      f"with network access, or allow network access (HF_HUB_OFFLINE unset).") from e


# %% [markdown]
# ### Proof 1: our logits are Hugging Face's
#
# We build a randomly initialised `transformers.GPT2LMHeadModel` of a small config, perturb every
# parameter (so that the norms' weights and biases are not just ones and zeros and a missed
# parameter would show), save it with `transformers`' own `save_pretrained`, and load the directory
# into our GPT. In float32, in eval mode, the logits agree to $10^{-5}$.

# %%
import transformers

transformers.utils.logging.disable_progress_bar()  # no loading bars in the book
hf_cfg = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=32, vocab_size=100,
                                 bos_token_id=99, eos_token_id=99)
torch.manual_seed(0)
hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
with torch.no_grad():
    for p in hf.parameters():
        p.add_(0.05 * torch.randn_like(p))
tmp = Path(tempfile.mkdtemp())
hf.save_pretrained(tmp / "hf")
ours = GPT.from_pretrained(tmp / "hf")
assert not ours.training
idx = torch.randint(0, 100, (3, 32))
with torch.no_grad():
    ref = hf(idx).logits
torch.testing.assert_close(ours(idx)[0], ref, rtol=0, atol=1e-5)
print("max |ours - HF|:", (ours(idx)[0] - ref).abs().max().item())

# %% [markdown]
# The original hub checkpoints use the bare layout and carry the mask buffers. We write one
# (the same weights under `h.0...` names, plus `attn.bias` and `attn.masked_bias`) and load it too:

# %%
sd = {k.removeprefix("transformer."): v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"}
for i in range(hf_cfg.n_layer):
    sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(32, 32)).view(1, 1, 32, 32)
    sd[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
(tmp / "bare").mkdir()
save_file(sd, tmp / "bare" / "model.safetensors", metadata={"format": "pt"})
shutil.copy(tmp / "hf" / "config.json", tmp / "bare" / "config.json")
assert "h.0.attn.c_attn.weight" in sd and "transformer.wte.weight" not in sd
torch.testing.assert_close(GPT.from_pretrained(tmp / "bare")(idx)[0], ref, rtol=0, atol=1e-5)

# %% [markdown]
# ### Proof 2: Hugging Face loads ours, and the round trip is exact
#
# A gpt2book model (its own init, perturbed) goes out with `save_pretrained`, into
# `transformers`, out again with `transformers`' `save_pretrained`, and back into gpt2book.
# Every tensor comes back bit for bit, and on the way Hugging Face computes our logits.

# %%
torch.manual_seed(1)
src = GPT(GPTConfig(block_size=32, vocab_size=100, n_layer=2, n_head=4, n_embd=64)).eval()
with torch.no_grad():
    for p in src.parameters():
        p.add_(0.05 * torch.randn_like(p))
src.save_pretrained(tmp / "ours")
print(sorted(f.name for f in (tmp / "ours").iterdir()))
hf2 = transformers.GPT2LMHeadModel.from_pretrained(tmp / "ours").eval()
with torch.no_grad():
    torch.testing.assert_close(hf2(idx).logits, src(idx)[0], rtol=0, atol=1e-5)
hf2.save_pretrained(tmp / "ours_via_hf")
back = GPT.from_pretrained(tmp / "ours_via_hf")
sd_src, sd_back = src.state_dict(), back.state_dict()
test_eq(sorted(sd_src), sorted(sd_back))
assert all(torch.equal(sd_src[k], sd_back[k]) for k in sd_src)

# %% [markdown]
# Saving into an existing directory replaces the two files; saving a variant GPT-2 cannot express
# is refused before anything is written; a directory without weights, or a hub name without a
# network, gets an error that says what to pass instead.

# %%
src.save_pretrained(tmp / "ours")
assert all(torch.equal(a, b) for a, b in zip(GPT.from_pretrained(tmp / "ours").state_dict().values(), sd_src.values()))
variant = GPT(GPTConfig(block_size=32, vocab_size=100, n_layer=2, n_head=4, n_embd=64, norm="rmsnorm", ffn="swiglu"))
test_fail(lambda: variant.save_pretrained(tmp / "variant"), contains="norm='rmsnorm'")
assert not (tmp / "variant").exists()
(tmp / "empty").mkdir()
test_fail(lambda: GPT.from_pretrained(tmp / "empty"), contains="config.json")
if os.environ.get("HF_HUB_OFFLINE") == "1":
    test_fail(lambda: GPT.from_pretrained("gpt2"), contains="--local-dir")
test_fail(lambda: config_from_hf({**hf_cfg.to_dict(), "activation_function": "relu"}), contains="activation_function")
shutil.rmtree(tmp)

# %% [markdown]
# With a network, OpenAI's GPT-2 is one line away (this cell does not run in the tests: it
# downloads 548 MB):

# %%
#| eval: false
model = GPT.from_pretrained("gpt2")
enc = tiktoken.get_encoding("gpt2")
prompt = torch.tensor([enc.encode_ordinary("Hello, I'm a language model,")])
print(enc.decode(model.generate(prompt, max_new_tokens=30, top_k=50)[0].tolist()))
