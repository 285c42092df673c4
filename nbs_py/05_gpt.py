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
import contextlib
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from fastcore.basics import patch
from safetensors.torch import load_file, save

from gpt2book.attention import ATTN_IMPLS
from gpt2book.block import BLOCK_FFNS, Block
from gpt2book.common import SettingError, check_settings, extended, setting
from gpt2book.ffn import GELUS
from gpt2book.files import atomic_write_bytes, atomic_write_json
from gpt2book.norms import NORMS, make_norm

# %%
import os
import shutil
import tempfile

import matplotlib.pyplot as plt
import tiktoken
from fastcore.test import test_close, test_eq, test_fail
from safetensors.torch import save_file


# %% [markdown]
# ## Positions
#
# Attention does not know the order of its inputs, so GPT-2 adds to each token's vector a learned
# vector for its position: row $t$ of a table `wpe` of shape $(T_{max}, C)$, trained like any
# other weight. The module is an embedding table whose `forward` takes the token vectors and the
# position of the first of them (not 0 during cached generation, below), and returns them with the
# position vectors added.
#
# It also returns a second thing, `None` here: a function for attention to apply to its queries and
# keys (chapter 1's `qk`). GPT-2 needs none; other ways of encoding positions work *inside*
# attention instead of on the input (chapter 11). This is the first of the model's **plug
# points**: the kinds of positions sit in a dict, `POSITIONS`, under their names; the config's `pos`
# picks one, and a later chapter adds a kind by adding an entry (`POSITIONS["rope"] = ...`), without
# editing this chapter. The module always sits at `transformer.wpe`, so GPT-2's table keeps the name
# of OpenAI's checkpoints.

# %%
#| export
class LearnedPositions(nn.Embedding):
    "GPT-2's positions: a learned vector for each of positions 0..block_size-1, added to the token vectors."
    def __init__(self, config):
        super().__init__(config.block_size, config.n_embd)     # (T_max, C): the weight is `transformer.wpe.weight`

    def forward(self, x, start: int = 0):
        "Token vectors x (B, T, C) at positions start.. -> (x + their position vectors, no function for q and k)."
        return x + super().forward(torch.arange(start, start + x.size(1), device=x.device)), None  # + (T, C)

POSITIONS = {"learned": LearnedPositions}   # config.pos -> module class; later chapters register more kinds

# %% [markdown]
# ## The config
#
# Everything that fixes the model's shape lives in one dataclass. Its defaults are GPT-2 small.
# `norm`, `ffn`, `gelu` and `attn_impl` are the choices of chapters 1-4 and `pos` the one above;
# the three that name a kind take their values from the registries, `NORMS` (chapter 2),
# `BLOCK_FFNS` (chapter 4) and `POSITIONS`, the dicts themselves, so a kind a later chapter
# registers is a valid value from then on.
# OpenAI released GPT-2 in four sizes, which differ only in depth, width and number of heads (all
# use a 1024-token context and the 50,257-token BPE vocabulary). A config that cannot work (a width
# that does not split into heads, an unknown norm) fails when it is made, not deep inside a
# forward pass: each field is declared with `setting` (appendix B), which records its help text
# and the values it may take, and `check_settings` holds every field to them.

# %%
#| export
GPT_PRESETS = {  # OpenAI's four GPT-2 sizes (Radford et al., 2019, table 2)
    "gpt2":        dict(n_layer=12, n_head=12, n_embd=768),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-large":  dict(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-xl":     dict(n_layer=48, n_head=25, n_embd=1600),
}


# %%
#| export
@dataclass
class GPTConfig:
    "Shape and kinds of parts of a GPT; the defaults are GPT-2 small (124M)."
    block_size: int = setting(1024, "longest context, in tokens", low=1)
    vocab_size: int = setting(50257, "token ids (GPT-2's BPE: 50,000 merges + 256 bytes + <|endoftext|>)", low=1)
    n_layer: int = setting(12, "transformer blocks", low=1)
    n_head: int = setting(12, "attention heads per block (n_embd must split into them)", low=1)
    n_embd: int = setting(768, "width of the residual stream", low=1)
    dropout: float = setting(0.0, "on embeddings, attention weights and both residual branches; training only",
                             low=0.0, high=0.99)
    bias: bool = setting(True, "biases in Linears and LayerNorms, as GPT-2")
    norm: str = setting("layernorm", "the norm: layernorm | rmsnorm (chapter 2)", choices=NORMS)
    ffn: str = setting("mlp", "the feed-forward network: mlp | swiglu | relu2 (chapter 3), or a kind a later chapter "
                              "registers (moe: chapter 12)", choices=BLOCK_FFNS)
    gelu: str = setting("tanh", "the MLP's GELU: tanh (GPT-2's approximation) | exact", choices=GELUS)
    attn_impl: str = setting("sdpa", "sdpa (fast) | explicit (chapter 1's softmax, for teaching)", choices=ATTN_IMPLS)
    pos: str = setting("learned", "positions: learned (GPT-2's table), or a kind a later chapter registers (rope, "
                                  "none: chapter 11)", choices=POSITIONS)

    def __post_init__(self):
        check_settings(self)          # types, choices and ranges, from each field's `setting` (appendix B)
        if self.n_embd % self.n_head:
            raise SettingError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}: "
                               f"each head gets n_embd // n_head channels")


# %% [markdown]
# Later chapters add settings of their own (chapter 11 the rotary base `rope_theta`, chapter 12
# the experts' numbers). They do not edit `GPTConfig`: each appends a small dataclass of its
# settings to `MODEL_EXTENSIONS`, and `model_config` makes a config of `GPTConfig`'s fields
# followed by every registered extension's (`extended`, appendix B), each checked by its own
# `check`. So a config is always built one way, whatever has been imported; a setting that nobody
# registered is refused, in one line that lists the settings there are.

# %%
#| export
MODEL_EXTENSIONS = []   # settings dataclasses of later chapters' variants (each may define `check(config)`)

def model_config(**settings) -> GPTConfig:
    "A config with `settings`: GPTConfig's fields and those of every registered extension (the rest at their defaults)."
    cls = extended(GPTConfig, MODEL_EXTENSIONS)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(settings) - set(names))
    if unknown:
        raise SettingError(f"unknown model setting(s) {', '.join(unknown)}; the settings are {', '.join(names)} "
                           f"(a variant's settings come with its chapter's module: import it first)")
    return cls(**settings)


# %% [markdown]
# A config can start from one of the four sizes, with any field overridden; a misspelt field is an
# error that lists the real ones.

# %%
#| export
@patch(cls_method=True)
def from_preset(cls: GPTConfig, name, **overrides):
    "The GPT-2 size `name` (a key of GPT_PRESETS), with any setting overridden (see `model_config`)."
    if name not in GPT_PRESETS:
        raise ValueError(f"unknown preset {name!r}; use one of {list(GPT_PRESETS)}")
    return model_config(**{**GPT_PRESETS[name], **overrides})


# %%
test_eq(GPTConfig(), GPTConfig.from_preset("gpt2"))
cfg = GPTConfig.from_preset("gpt2-xl", norm="rmsnorm", ffn="swiglu", dropout=0.1)
test_eq((cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.norm, cfg.ffn), (48, 25, 1600, "rmsnorm", "swiglu"))
test_eq(asdict(model_config(n_layer=2)), asdict(GPTConfig(n_layer=2)))   # no extension registered yet: GPT-2's fields
test_fail(lambda: GPTConfig(n_embd=100, n_head=12), contains="divisible by n_head")
test_fail(lambda: GPTConfig(norm="batchnorm"), contains="layernorm, rmsnorm")
test_fail(lambda: GPTConfig(ffn="relu"), contains="mlp, swiglu, relu2")
test_fail(lambda: GPTConfig(pos="alibi"), contains="use one of learned")
test_fail(lambda: GPTConfig(attn_impl="flash"), contains="sdpa, explicit")
test_fail(lambda: GPTConfig(n_layer=0), contains="n_layer=0 must be at least 1")
test_fail(lambda: GPTConfig(dropout=float("nan")), contains="finite")
test_fail(lambda: model_config(rope_theta=500.0), contains="import it first")
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
# Why it works: the logit of token $j$ is the dot product of the final hidden vector with row $j$
# of the matrix, so the output layer scores the next token by how well the hidden state matches
# that token's vector, and the same matrix at the input maps a token to a vector of that space.
# Tokens that can follow the same contexts need similar output rows; tokens that appear in similar
# contexts get similar input rows from training; tying says these are one and the same geometry,
# and each row is trained by both roles (a rare token's input row, rarely updated as input, also
# learns each time it is *predicted*, or predicted against). Press & Wolf found the tied matrix
# behaves like the output embedding and gives lower perplexity than either untied one. The cell
# after the model shows the sharing: one tensor, whose gradient collects both uses.
#
# **Initialisation** (GPT-2, as in nanoGPT and Hugging Face): every Linear and Embedding weight is
# drawn from $\mathcal{N}(0, 0.02^2)$, biases start at zero, norms at the identity. The two
# projections that *write* into the residual stream, `c_proj` in attention and in the FFN, are
# scaled down further to $0.02/\sqrt{2L}$: the stream is a sum of $2L$ such contributions
# (chapter 4), each now of variance $1/(2L)$ of what it was, so that the sum of all $2L$ of them has
# about the variance of a single unscaled one, however deep the model.
# The rule goes by name, so SwiGLU's `c_proj` gets it exactly like the MLP's
# ([the seed project](00_index.ipynb#the-seed-project) scaled one arm and not the other).
#
# The constructor calls three small methods, `make_block`, `tie_weights` and `init_weights`, and
# the forward pass (below) three more, `blocks`, `logits` and the position module. They are the
# model's other plug points: a later variant that changes how the model is built or run (chapter
# 17's) is a subclass of `GPT` that overrides one of them, and `make_model` (end of the section)
# builds whichever class the config asks for. The class is written in pieces: the modules and
# their initialisation first, the forward pass next, the rest in later cells (fastcore's `@patch`
# adds a method to a class defined earlier; the exported module holds them all).

# %%
#| export
class GPT(nn.Module):
    "GPT-2: token + position embeddings, `n_layer` pre-norm blocks, a final norm and an LM head tied to `wte`."
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token id -> vector
            wpe=POSITIONS[config.pos](config),                    # GPT-2: the learned position table
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([self.make_block(i) for i in range(config.n_layer)]),
            ln_f=make_norm(config.norm, config.n_embd, bias=config.bias),  # the configured kind, also here
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.tie_weights()
        self.init_weights()

    def make_block(self, i: int) -> nn.Module:
        "Block `i` of the stack."
        return Block(self.config)

    def tie_weights(self):
        self.lm_head.weight = self.transformer.wte.weight  # weight tying: one (V, C) matrix in and out

    def init_weights(self):
        "GPT-2's initialisation: N(0, 0.02) weights, zero biases, the output projections scaled by 1/sqrt(2L)."
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # attention's and every FFN's output projection
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


# %% [markdown]
# The forward pass. `hidden` runs the body: embed, add positions, the blocks, the final norm.
# `logits` turns the final hidden state into scores over the vocabulary: it is **the one place
# logits are made**, which `forward`, generation (below) and every evaluation call, so a variant
# that changes them (chapter 17 caps them) changes them everywhere at once. `forward` adds the
# loss. The optional `kv_cache` is for generation (below): it says how many positions came before
# these `T` tokens, so that they get the right positions, and it keeps every layer's keys and values.

# %%
#| export
@patch
def hidden(self: GPT, idx, kv_cache=None):
    "The final, normalised residual stream (B, T, C) for token ids `idx` (B, T)."
    if idx.dim() != 2:
        raise ValueError(f"idx must be token ids of shape (B, T), got shape {tuple(idx.shape)}")
    start, T = (kv_cache.pos if kv_cache is not None else 0), idx.size(1)
    if start + T > self.config.block_size:
        table = any(True for _ in self.transformer.wpe.parameters())
        raise ValueError(f"sequence length {start + T} exceeds block_size={self.config.block_size}: crop the input "
                         f"to its last {self.config.block_size} tokens (generate does) or build a model with a larger "
                         f"block_size{'' if table else ' (without a position table the weights load into it as they are)'}.")
    x, qk = self.transformer.wpe(self.transformer.wte(idx), start)    # (B, T, C); qk: None for GPT-2
    x = self.transformer.drop(x)
    x = self.blocks(x, qk, kv_cache)                                   # (B, T, C)
    if kv_cache is not None:
        kv_cache.pos += T
    return self.transformer.ln_f(x)                                     # (B, T, C)

@patch
def blocks(self: GPT, x, qk=None, kv_cache=None):
    "The stack: x (B, T, C) through every block in turn."
    for i, block in enumerate(self.transformer.h):
        x = block(x, qk, kv_cache.layer(i) if kv_cache is not None else None)  # (B, T, C)
    return x

@patch
def logits(self: GPT, h):
    "Scores (..., V) of every token for final hidden states h (..., C): the only place logits are made."
    return self.lm_head(h)

@patch
def forward(self: GPT, idx, targets=None, kv_cache=None):
    "Logits (B, T, V) for token ids `idx` (B, T), and the cross entropy against `targets` (B, T) if given (-1: ignored)."
    logits = self.logits(self.hidden(idx, kv_cache))  # (B, T, V)
    loss = None
    if targets is not None:
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
    return logits, loss


# %% [markdown]
# Some variants compute a second loss inside a module (chapter 12's mixture of experts: a
# load-balancing loss per layer). The model does not need to know which: a module that has one
# keeps it as a tensor attribute `aux_loss` after its forward pass, and `aux_loss()` averages those
# for the trainer, which adds it to the cross-entropy with a small weight. GPT-2 has none: `None`.
# `forward`'s loss stays the cross-entropy alone, so that validation numbers of all models compare.

# %%
#| export
@patch
def aux_loss(self: GPT):
    "The mean of the `aux_loss` tensors its modules set in the last forward pass (chapter 12); None if none did."
    losses = [m.aux_loss for m in self.modules() if isinstance(getattr(m, "aux_loss", None), torch.Tensor)]
    return torch.stack(losses).mean() if losses else None


# %% [markdown]
# `make_model` is the one way the book's code builds the model a config describes: GPT-2's `GPT`,
# or a subclass that a later chapter registered in `MODEL_CLASSES` for configs that need it (with
# a test that says when). The trainer, the checkpoint loader and the benchmarks all call it. A
# plain `GPTConfig` is completed with the registered extensions' defaults first.

# %%
#| export
MODEL_CLASSES = []   # (wants(config) -> bool, a GPT subclass) of later chapters; the last that wants a config wins

def make_model(config) -> GPT:
    "The model `config` describes: GPT, or the subclass a later chapter registered for it."
    if type(config) is not extended(GPTConfig, MODEL_EXTENSIONS):
        config = model_config(**asdict(config))   # e.g. a plain GPTConfig: the extensions' settings at their defaults
    cls = next((c for wants, c in reversed(MODEL_CLASSES) if wants(config)), GPT)
    return cls(config)


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
# Tying, seen from the gradient: the shared matrix receives the gradient of its use as the output
# layer *plus* that of its use as the embedding. An untied copy of the same model (two separate
# matrices with the same values) gets the two parts separately, and they add up to the tied one's.

# %%
idx = torch.randint(0, 100, (2, 10))
tiny.zero_grad()
tiny(idx[:, :-1], idx[:, 1:])[1].backward()
untied = GPT(tiny.config); untied.load_state_dict(tiny.state_dict())
untied.lm_head.weight = nn.Parameter(tiny.lm_head.weight.detach().clone())   # now two matrices
untied(idx[:, :-1], idx[:, 1:])[1].backward()
as_output, as_input = untied.lm_head.weight.grad, untied.transformer.wte.weight.grad
test_close(tiny.transformer.wte.weight.grad, as_output + as_input, eps=1e-6)
rows_used = idx[:, :-1].unique()
assert as_input.abs().sum(1)[rows_used].min() > 0 and as_input.abs().sum() == as_input[rows_used].abs().sum()
print(f"output-layer gradient reaches {(as_output.abs().sum(1) > 0).sum().item()} of 100 rows, "
      f"the embedding gradient only the {len(rows_used)} tokens in the input")
tiny.zero_grad()

# %% [markdown]
# The context cannot be longer than `block_size`, and the error says what to do:

# %%
test_fail(lambda: tiny(torch.zeros(1, 17, dtype=torch.long)), contains="crop the input")
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
# Two variants of the count matter later: without the position table (`non_embedding=True`, the
# count of the training FLOPs in chapter 9 and of the scaling laws in chapter 13) and the
# parameters a single token uses (`active=True`). In GPT-2 every token uses every parameter; a
# module that leaves some idle for each token (chapter 12's mixture of experts) says how many
# through a method `inactive_params()`, which the count subtracts without knowing the module.

# %%
#| export
@patch
def num_params(self: GPT, non_embedding: bool = False, active: bool = False) -> int:
    """Number of parameters, each tensor counted once (`lm_head` shares `wte`'s matrix and adds nothing).
    `non_embedding`: without the position table `wpe` (nanoGPT's convention; a tied `wte` stays in because it
    doubles as the output layer, an untied one is a lookup and goes). `active`: without the parameters a token
    leaves idle (what modules report through `inactive_params()`, e.g. a mixture's unchosen experts)."""
    n = sum(p.numel() for p in self.parameters())  # parameters() yields a shared tensor once
    if non_embedding:
        n -= sum(p.numel() for p in self.transformer.wpe.parameters())   # the position table, if there is one
        if self.lm_head.weight is not self.transformer.wte.weight:
            n -= self.transformer.wte.weight.numel()                     # an untied wte is a lookup only
    if active:
        n -= sum(m.inactive_params() for m in self.modules() if hasattr(m, "inactive_params"))
    return n


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
# A language model gives a distribution over the next token; generation draws from it, appends the
# draw and repeats. Three knobs shape the distribution before the draw (chapter 14 shows each on a
# trained model's distributions):
#
# - the **temperature** $\tau$ divides the logits, $p_i \propto \exp(z_i / \tau)$: below 1 it
#   sharpens the distribution, above 1 it flattens it, and $\tau = 0$ means greedy decoding (the most
#   likely token, always);
# - **top-k** keeps only the $k$ most likely tokens;
# - **top-p** (nucleus sampling, Holtzman et al. 2019) keeps the smallest set of most likely tokens
#   whose probabilities add up to at least $p$: many candidates where the model is unsure, few
#   where it is sure.
#
# What is kept is renormalised; the draw uses an explicit random generator when one is given, so a
# seed reproduces the text without touching the global random state. Two edges: top-k keeps every
# token tied with the $k$-th largest logit (so it may keep more than $k$, as Hugging Face's
# `TopKLogitsWarper` does); and a temperature below $10^{-6}$ is treated as 0, greedy, because
# dividing float32 logits by it overflows them to infinity. Logits that hold NaN (a diverged or
# damaged model) are refused with a message rather than drawn from.

# %%
#| export
GREEDY_BELOW = 1e-6   # temperatures below this are greedy: dividing by them overflows float32 logits to inf

def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    "Probabilities (B, V) to sample the next token from, given logits (B, V): temperature, then top-k, then top-p."
    if not temperature >= GREEDY_BELOW:          # also refuses NaN
        raise ValueError(f"temperature={temperature}: next_token_probs needs a temperature >= {GREEDY_BELOW} (0 is greedy)")
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1) the k-th largest
        logits = logits.masked_fill(logits < kth, float("-inf"))             # ties with the k-th are kept
    probs = F.softmax(logits, dim=-1)                                           # (B, V)
    if top_p is not None and top_p < 1.0:
        p_sorted, order = probs.sort(dim=-1, descending=True)
        outside = p_sorted.cumsum(-1) - p_sorted >= top_p     # the mass before a token already reaches top_p
        probs = probs.scatter(-1, order, p_sorted.masked_fill(outside, 0.0))
        probs = probs / probs.sum(-1, keepdim=True)
    return probs

def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    "The next token ids (B, 1) for logits (B, V): the argmax below GREEDY_BELOW (0), else a draw from `next_token_probs`."
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature={temperature} must be a finite number >= 0 (0 is greedy decoding)")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k} must be a positive integer or None (no cut)")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p} must be in (0, 1] or None (no cut)")
    if torch.isnan(logits).any():
        raise ValueError("the model's logits hold NaN: its weights are damaged or its training diverged")
    if temperature < GREEDY_BELOW:
        return logits.argmax(dim=-1, keepdim=True)
    return torch.multinomial(next_token_probs(logits, temperature, top_k, top_p), 1, generator=generator)


# %% [markdown]
# Here is what temperature does to one set of logits, and what top-k and top-p keep of them:

# %%
z = torch.tensor([3.0, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0])
fig, ax = plt.subplots(figsize=(6, 3))
for i, tau in enumerate((0.5, 1.0, 2.0)):
    ax.bar(torch.arange(8) + (i - 1) * 0.27, next_token_probs(z[None], tau)[0], width=0.27, label=f"$\\tau$ = {tau}")
ax.set_xlabel("token (by logit)"); ax.set_ylabel("probability"); ax.legend()
ax.set_title("Temperature: sharper below 1, flatter above"); plt.show()
p = next_token_probs(z[None])[0]
test_close(next_token_probs(z[None], top_k=3)[0][:3], p[:3] / p[:3].sum())
kept = (next_token_probs(z[None], top_p=0.8)[0] > 0).sum().item()
assert p[:kept - 1].sum() < 0.8 <= p[:kept].sum()       # the smallest prefix reaching 0.8
test_eq(sample_next(z[None], temperature=0).item(), 0)
test_eq(sample_next(z[None], temperature=1e-9).item(), 0)                 # tiny: greedy, not inf / inf
test_eq((next_token_probs(torch.tensor([[2.0, 1.0, 1.0, 0.0]]), top_k=2)[0] > 0).sum().item(), 3)  # the tie is kept
test_fail(lambda: sample_next(z[None], top_p=0), contains="top_p")
test_fail(lambda: sample_next(z[None], temperature=float("nan")), contains="finite")
test_fail(lambda: sample_next(torch.tensor([[0.0, float("nan")]])), contains="NaN")


# %% [markdown]
# ## Generating fast: the KV cache
#
# The obvious generation loop feeds the whole context through the model for every new token and
# keeps only the last position's logits. Everything it computes for the earlier positions is thrown
# away, and it is the same every time: the model is causal, so the keys and values of position $s$
# depend on tokens $0..s$ only and never change as the text grows. Computing token $t + 1$ from a
# context of $t$ tokens costs $O(t)$ in every matrix multiplication (all $t$ positions again) and
# $O(t^2)$ in attention (every position against every earlier one).
#
# A **KV cache** keeps, for every layer, the keys and values of the positions already seen. A new
# token then goes through the model alone: its own query, key and value are computed, its key and
# value appended to the cache, and its query attends over all the cached keys. The cost per new
# token is $O(1)$ in the matrix multiplications and $O(t)$ in attention: generating $N$ tokens
# costs $O(N^2)$ in all instead of $O(N^3)$. The price is memory: $2 \times n_\text{layer}
# \times t \times C$ numbers per sequence, 75 MB for GPT-2 small at 1024 tokens in float32.
#
# The first pass (the prompt) fills the cache for all its positions at once. Positions come from
# the cache (`pos`: how many positions it holds), so learned positions and rotary ones are both
# right. When the text outgrows `block_size`, the model cannot see all of it: from then on every
# step recomputes the last `block_size` tokens, as the uncached loop does, so the two give the
# same tokens at any length (a cache that slides would give different logits with learned
# positions, whose table says where the window starts).

# %%
#| export
class KVCache:
    "Keys and values of every layer for the `pos` positions seen so far: (B, nh, max_len, hs) buffers filled in order."
    def __init__(self, max_len: int):
        self.max_len, self.pos, self.kv = max_len, 0, {}

    def layer(self, i: int):
        "The view of layer `i` that its attention calls `update` on."
        return _LayerKV(self, i)

class _LayerKV:
    def __init__(self, cache, i): self.cache, self.i = cache, i

    def update(self, k, v):
        "Store the keys and values (B, nh, T, hs) of the next T positions; return all of them so far, (B, nh, pos + T, hs)."
        c, T = self.cache, k.size(2)
        if self.i not in c.kv:   # allocated on first use, in the dtype and on the device of the keys
            c.kv[self.i] = (k.new_zeros(*k.shape[:2], c.max_len, k.size(3)), v.new_zeros(*v.shape[:2], c.max_len, v.size(3)))
        K, V = c.kv[self.i]
        K[:, :, c.pos:c.pos + T], V[:, :, c.pos:c.pos + T] = k, v
        return K[:, :, :c.pos + T], V[:, :, :c.pos + T]


# %%
#| export
@contextlib.contextmanager
def eval_mode(model: nn.Module):
    "Run the block with `model` in eval mode (no dropout), then put it back in the mode it was in."
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


# %%
#| export
@patch
@torch.no_grad()
def generate(self: GPT, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
             stop_token=None, use_cache=True):
    """Extend `idx` (B, T) by up to `max_new_tokens` tokens; returns (B, T + n). `temperature`, `top_k`, `top_p`:
    see `next_token_probs` (temperature 0 is greedy). Stops early once every row has produced `stop_token`.
    Runs in eval mode (no dropout) and restores the previous mode; `use_cache=False` recomputes every step."""
    bs = self.config.block_size
    cache, done = KVCache(bs) if use_cache else None, torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    with eval_mode(self):
        for _ in range(max_new_tokens):
            if cache is not None and idx.size(1) <= bs:
                h = self.hidden(idx[:, cache.pos:], cache)[:, -1]   # only the tokens the cache has not seen
            else:
                h = self.hidden(idx[:, -bs:])[:, -1]                # no cache, or past the context: the last bs tokens
            idx_next = sample_next(self.logits(h), temperature, top_k, top_p, generator)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)                 # (B, T + 1)
            if stop_token is not None:
                done |= idx_next[:, 0] == stop_token
                if done.all(): break
    return idx


# %% [markdown]
# **The cache changes nothing but the speed.** Every logit of a cached pass equals the uncached
# model's at the same position (to float rounding), for every kind of positions registered (here
# GPT-2's; chapter 11 runs the same check for its own), for a prompt followed by one token at a
# time and for a batch; greedy generation gives the same tokens with and without the cache, also
# past `block_size`.

# %%
for pos in POSITIONS:
    torch.manual_seed(0)
    m = GPT(GPTConfig(block_size=32, vocab_size=100, n_layer=2, n_head=4, n_embd=32, pos=pos)).eval()
    seq = torch.randint(0, 100, (3, 20))
    full = m(seq)[0]                                                   # (3, 20, V), no cache
    cache = KVCache(32)
    pieces = [m(seq[:, :12], kv_cache=cache)[0]] + [m(seq[:, t:t + 1], kv_cache=cache)[0] for t in range(12, 20)]
    test_eq(cache.pos, 20)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-5)
    for n in (10, 40):                                                 # within, and past, block_size = 32
        a = m.generate(seq[:, :8], n, temperature=0)
        test_eq(a, m.generate(seq[:, :8], n, temperature=0, use_cache=False))
    print(f"pos={pos}: cached logits == uncached; greedy tokens equal at 18 and 48 tokens")

# %% [markdown]
# A small untrained GPT with GPT-2's vocabulary. The tokenizer is chapter 6's subject; here we only
# need it to turn text into ids and back, so we call tiktoken, the library chapter 6 wraps. An
# untrained model knows nothing, so the text is noise (chapter 14 samples from trained models).

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
# and leaves the model in the mode it found it in; it runs past `block_size` by cropping; and it
# stops once every row has produced the stop token.

# %%
g = lambda: torch.Generator().manual_seed(1)
test_eq(m.generate(prompt, 4, generator=g()), m.generate(prompt, 4, generator=g()))
greedy = m.generate(prompt, 4, temperature=0)
test_eq(m.generate(prompt, 4, top_k=1, generator=g()), greedy)
test_eq(m.generate(prompt, 4, top_p=1e-6, generator=g()), greedy)   # a nucleus of one token is greedy too
test_eq(greedy[0, 5], m(prompt)[0][0, -1].argmax())
m.train()
m.generate(prompt, 1)
assert m.training  # mode restored
long = torch.randint(0, enc.n_vocab, (1, 30))
test_eq(m.eval().generate(long, 4, temperature=0).shape, (1, 34))  # 34 > block_size = 32
test_eq(m.generate(prompt, 10, temperature=0, stop_token=int(greedy[0, 5])).shape, (1, 6))  # stopped after 1
test_fail(lambda: m.generate(prompt, 1, temperature=-1), contains="temperature")


# %% [markdown]
# ### Text in, text out
#
# `generate` works on ids. With a tokenizer (anything with `encode`, `decode`, an end-of-text id
# `eot` and a `vocab_size`: chapter 6 builds two), a prompt becomes ids, the model continues them,
# and the new ids become text. An empty prompt starts where every document starts, at end-of-text.
# Ids past the tokenizer's vocabulary are dropped: a vocabulary padded for speed (chapter 9's
# `vocab_multiple`) has ids that stand for no text. This pair of functions is what the trainer's
# samples (chapter 9) and `python -m gpt2book.sample` (chapter 14) both call.

# %%
#| export
def continuation(model: GPT, tok, prompt: str = "", max_new_tokens: int = 300, temperature=0.8, top_k=200, top_p=None,
                 generator=None, stop_at_eot: bool = True, use_cache: bool = True) -> list[int]:
    "The ids `model` writes after `prompt` (tokenized by `tok`): up to `max_new_tokens`, cut before end-of-text if `stop_at_eot`."
    ids = tok.encode(prompt) if prompt else [tok.eot]
    idx = torch.tensor([ids], device=next(model.parameters()).device)                      # (1, T)
    top_k = min(top_k, model.config.vocab_size) if top_k else None
    out = model.generate(idx, max_new_tokens, temperature, top_k, top_p, generator,
                         stop_token=tok.eot if stop_at_eot else None, use_cache=use_cache)  # (1, T + n)
    new = out[0, len(ids):].tolist()
    if stop_at_eot and tok.eot in new:
        new = new[:new.index(tok.eot)]
    return [i for i in new if i < tok.vocab_size]

def complete(model: GPT, tok, prompt: str = "", **kw) -> str:
    "`prompt` followed by the model's continuation of it (see `continuation` for the settings)."
    return prompt + tok.decode(continuation(model, tok, prompt, **kw))


# %%
class Tiktoken:   # the few attributes `complete` needs, from tiktoken itself (chapter 6 wraps it properly)
    def __init__(self, enc): self.encode, self.decode, self.eot, self.vocab_size = enc.encode_ordinary, enc.decode, enc.eot_token, enc.n_vocab

text = complete(m, Tiktoken(enc), "The meaning of life is", max_new_tokens=12, generator=torch.Generator().manual_seed(0))
print(text)
assert text.startswith("The meaning of life is")
test_eq(complete(m, Tiktoken(enc), "Hi", max_new_tokens=5, temperature=0),
        "Hi" + enc.decode(m.generate(torch.tensor([enc.encode_ordinary("Hi")]), 5, temperature=0)[0, 1:].tolist()))

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
# `rmsnorm`, `swiglu`, `bias=False`, any kind a later chapter registers and any setting a later
# chapter adds (away from its default) cannot be expressed in it (the exact GELU can: Hugging Face
# calls it `gelu`, and the tanh one `gelu_new`), so `save_pretrained` refuses them (and says so)
# rather than writing a file that would load as a different model. Reading, we refuse the
# `GPT2Config` options that change the computation in ways our model does not have.

# %%
#| export
HF_GELU = {"tanh": "gelu_new", "exact": "gelu"}  # our gelu -> Hugging Face's activation_function

GPT2_KINDS = dict(norm="layernorm", ffn="mlp", bias=True, pos="learned")   # what Hugging Face's GPT-2 computes

def check_gpt2_architecture(config):
    "Raise unless `config` is the GPT-2 architecture (GPT2_KINDS, every later chapter's setting at its default)."
    own = {f.name for f in fields(GPTConfig)}
    problems = [f"{k}={getattr(config, k)!r} (GPT-2: {v!r})" for k, v in GPT2_KINDS.items() if getattr(config, k) != v]
    problems += [f"{f.name}={getattr(config, f.name)!r} (GPT-2: {f.default!r})" for f in fields(config)
                 if f.name not in own and getattr(config, f.name) != f.default]
    if problems:
        raise ValueError(f"Hugging Face's GPT-2 cannot express {', '.join(problems)}: only the GPT-2 architecture "
                         f"can be saved in its format. Keep this variant in gpt2book's own checkpoints instead.")

def hf_config(model):
    "The config.json of `transformers.GPT2LMHeadModel` for `model` (a GPT of the GPT-2 architecture)."
    c = model.config
    check_gpt2_architecture(c)
    eot = min(50256, c.vocab_size - 1)  # GPT-2's <|endoftext|>, kept inside a smaller vocabulary
    return dict(model_type="gpt2", architectures=["GPT2LMHeadModel"], activation_function=HF_GELU[c.gelu],
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
    act = hf.get("activation_function", "gelu_new")
    unsupported = {  # option: (value in this checkpoint, the values our GPT computes)
        "activation_function": (act, ("gelu_new", "gelu_pytorch_tanh", "gelu")),
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
                     n_head=hf["n_head"], n_embd=n_embd, dropout=dropout, attn_impl=attn_impl,
                     gelu="exact" if act == "gelu" else "tanh")


# %% [markdown]
# Saving writes each file atomically (appendix A: a temporary file, fsync'd, renamed into place),
# the weights first and the config last, so a crash never leaves a half-written file behind, and a
# directory whose `config.json` is new has new weights too. Loading takes a directory, or a hub name
# that `huggingface_hub` downloads (and caches) where the network allows.

# %%
#| export
def save_hf(model, save_dir, tokenizer: dict | None = None):
    """Write `model` as config.json + model.safetensors in Hugging Face GPT-2's layout, atomically; returns the directory.
    `tokenizer` (a tokenizer's `to_dict()`, chapter 6) is recorded as `gpt2book_tokenizer` unless it is GPT-2's."""
    config = hf_config(model)  # refuses non-GPT-2 variants before anything touches the disk
    if tokenizer is not None and tokenizer.get("name") != "gpt2":
        config["gpt2book_tokenizer"] = tokenizer   # the ids are not GPT-2's tokens: say whose they are
    sd = {k: (p.t() if k.endswith(HF_CONV1D) else p).detach().cpu().contiguous()
          for k, p in model.named_parameters()}  # wte once: the tied head is not stored
    save_dir = Path(save_dir)
    if save_dir.exists() and not save_dir.is_dir():
        raise NotADirectoryError(f"{save_dir} exists and is not a directory; pass a directory path")
    atomic_write_bytes(save_dir / "model.safetensors", save(sd, metadata={"format": "pt"}))
    atomic_write_json(save_dir / "config.json", config)
    return save_dir



# %% [markdown]
# Loading takes a local folder or a hub name; the model's own `from_pretrained` and `save_pretrained` are thin methods over these functions.
# A name that looks like a path (`./x`, `~/x`, or `out/cpuu` when `out/` exists here) and is not a
# folder is refused at once: a typo of a folder must not be sent to the Hub as a model name. A model
# trained on other tokens than GPT-2's (the character-level models of this book) records its
# tokenizer in `config.json`, so that whoever loads it knows which text its ids stand for.

# %%
#| export
def looks_local(spec) -> bool:
    "A path, not a hub name: it starts with . / ~, or its first part is a folder here (out/cpu; not openai-community/gpt2)."
    s = str(spec)
    return s.startswith((".", "/", "~")) or ("/" in s and Path(s.split("/")[0]).expanduser().is_dir())

def hf_files(source, names=("config.json", "model.safetensors")) -> tuple[Path, ...]:
    "The files `names` of a local folder, or of a hub model fetched by huggingface_hub; a typo of a path never goes to the hub."
    path = Path(source).expanduser()
    if path.is_dir():
        for f in (path / n for n in names):
            if not f.is_file():
                raise FileNotFoundError(f"{f} is missing: a Hugging Face folder holds config.json and model.safetensors, "
                                        f"as save_pretrained writes them")
        return tuple(path / n for n in names)
    if looks_local(source) or path.exists():
        raise FileNotFoundError(f"{source}: no such folder (pass a run folder, a folder save_pretrained wrote, or a hub "
                                f"name such as gpt2)")
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import logging as hub_logging
        hub_logging.set_verbosity_error()          # its retries on a dead network would print a line each
        return tuple(Path(hf_hub_download(str(source), n)) for n in names)
    except Exception as e:
        raise OSError(f"{str(source)!r} is not a local folder, and fetching it from the Hugging Face Hub failed "
                      f"({type(e).__name__}). Pass a folder holding config.json and model.safetensors, e.g. one "
                      f"made with `hf download {source} config.json model.safetensors --local-dir DIR` on a machine "
                      f"with network access, or allow network access (HF_HUB_OFFLINE unset).") from e

@patch(cls_method=True)
def from_pretrained(cls: GPT, name_or_dir, **overrides):
    """A GPT with Hugging Face GPT-2 weights, in eval mode, from a local directory (config.json +
    model.safetensors, as `save_pretrained` writes) or a hub name such as "gpt2" or "gpt2-xl".
    `overrides` may set `dropout` and `attn_impl`."""
    config_file, weights_file = hf_files(name_or_dir)
    model = cls(config_from_hf(json.loads(Path(config_file).read_text()), **overrides))
    load_hf_weights(model, load_file(weights_file))
    return model.eval()

@patch
def save_pretrained(self: GPT, save_dir, tokenizer: dict | None = None):
    "Write config.json + model.safetensors that `transformers.GPT2LMHeadModel.from_pretrained` loads (see `save_hf`)."
    return save_hf(self, save_dir, tokenizer)


# %% [markdown]
# ### Proof 1: our logits are Hugging Face's
#
# We build a randomly initialised `transformers.GPT2LMHeadModel` of a small config, perturb every
# parameter (so that the norms' weights and biases are not just ones and zeros and a missed
# parameter would show), save it with `transformers`' own `save_pretrained`, and load the directory
# into our GPT. In float32, in eval mode, the logits agree to $10^{-5}$.

# %%
import transformers

# %%
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
test_fail(lambda: check_gpt2_architecture(GPTConfig(bias=False)), contains="bias=False (GPT-2: True)")
test_fail(lambda: GPT.from_pretrained("./no-such-model"), contains="no such folder")   # never sent to the hub
test_fail(lambda: GPT.from_pretrained(str(tmp) + "/ourz"), contains="no such folder")
assert not (tmp / "variant").exists()
(tmp / "empty").mkdir()
test_fail(lambda: GPT.from_pretrained(tmp / "empty"), contains="config.json")
if os.environ.get("HF_HUB_OFFLINE") == "1":
    test_fail(lambda: GPT.from_pretrained("gpt2"), contains="--local-dir")
test_fail(lambda: config_from_hf({**hf_cfg.to_dict(), "activation_function": "relu"}), contains="activation_function")
shutil.rmtree(tmp)

# %% [markdown]
# With a network, OpenAI's GPT-2 is one line away (it downloads 548 MB once; offline, the cell says
# why it cannot, instead of stopping the notebook):

# %%
try:
    model = GPT.from_pretrained("gpt2")
    enc = tiktoken.get_encoding("gpt2")
    prompt = torch.tensor([enc.encode_ordinary("Hello, I'm a language model,")])
    print(enc.decode(model.generate(prompt, max_new_tokens=30, top_k=50)[0].tolist()))
except OSError as e:
    print(f"GPT-2's weights are not available here: {str(e)[:300]}...")
