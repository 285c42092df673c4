# %% [markdown]
# # The laptop speedrun, part 2: the recipe
#
# > The model changes of the modern recipe (QK-norm, an untied head, zero-initialised projections, a logit softcap, U-net skips), plugged into chapter 5's GPT without editing it, and the warm-up, constant, warm-down schedule.

# %%
#| default_exp recipe

# %% [markdown]
# Part 2 of chapter 17, after [Muon](17a_muon.ipynb); next: [the rules and the records](17c_speedrun.ipynb).

# %%
#| hide
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from fastcore.test import test_close, test_eq, test_fail
from IPython.display import Markdown, display

import gpt2book.positions  # noqa: F401  (registers pos=rope: chapter 11)
from gpt2book.config import make_config
from gpt2book.model import make_model, model_config
from gpt2book.muon import muon_split

# %% [markdown]
# ## The changes
#
# The rest of the modern recipe is small changes, most of them to the model. Two are kinds an
# earlier chapter already registered: **ReLU²** (chapter 3; So et al. 2021, `--ffn=relu2`), in place
# of GELU, cheaper to compute and, in Primer's search, better; and **rotary positions** (chapter 11,
# `--pos=rope`), positions as rotations of queries and keys instead of a learned table. The others
# are this chapter's own, each a setting whose default is GPT-2's:
#
# - **QK-norm** (`qk_norm`; Dehghani et al. 2023, Wortsman et al. 2023): queries and keys scaled to
#   unit RMS per head before they meet. An attention score is then at most $\sqrt{hs}$ in size, so no
#   softmax can saturate because weights grew; it is the usual cure for loss spikes at high learning
#   rates, which is where a speedrun lives.
# - **Untied head and zero-initialised projections** (`tie_embeddings=False`, `zero_init`): the head
#   gets its own $(V, C)$ matrix, so that the vector that reads a character need not also be the one
#   that predicts it; and every output projection (and an untied head) starts at zero, so that each
#   block starts as the identity, the first prediction is uniform (loss $\ln V$), and the first steps
#   train a shallow network that deepens as the projections grow.
# - **Logit softcap** (`logit_softcap`; Gemma 2): logits pass through $c \tanh(z / c)$, smooth and
#   bounded by $c$, so the model cannot buy confidence by inflating a few logits.
# - **U-net skips** (`unet_skips`; modded-nanogpt): the output of each block of the first half joins
#   the input of its mirror block in the second half (block 0's the last block's, block 1's the one
#   before it) times a learned weight that starts at 1, a short path from the early layers to the late
#   ones, as a U-Net joins its encoder to its decoder.
# - **An embedding skip** (`x0_skip`; modded-nanogpt mixes $x_0$ into every block): every block after
#   the first also reads the embedding's output $x_0$, times a learned weight that starts at 0, so a
#   deep block can see the characters themselves without the residual stream having to carry them.
# - **Value embeddings** (`value_embeds`; modded-nanogpt): the first and the last block each get a
#   token embedding table of their own whose row for each token is added to that block's attention
#   values, so what a head copies from a position can carry the token itself. The tables start at
#   zero (GPT-2's function at step 0) and are lookups, trained by AdamW like the embedding.
# - **Batch size**: the step's cost on a CPU grows less than linearly with the batch at this size (the
#   matrix products get more efficient), and Muon's orthogonalisation costs the same whatever the
#   batch, so a larger batch with fewer steps may win on the clock even where it loses per token.
# - **Three Newton–Schulz steps** instead of five: 40% less orthogonalisation per step, for singular
#   values further from 1 (the plot of [part 1](17a_muon.ipynb)).
# - **bfloat16 autocast** (chapter 9's `--dtype=bfloat16`) for the forward and backward passes, which
#   this CPU's AVX-512 BF16 instructions could make faster; **`torch.compile`** (`--compile`), and the
#   number of threads. These are kept only if they win end to end, start-up and compilation included.

# %% [markdown]
# We plug them into chapter 5's model without editing it. The seven settings are a dataclass that we
# register in `MODEL_EXTENSIONS` (so `model_config` and the trainer's command line know them).
# QK-norm is a subclass of chapter 1's attention that overrides `split_heads`, so the queries and
# keys are normalised before anything else touches them (chapter 11's rotation comes after); value
# embeddings are a small class mixed into either attention, whose `split_heads` adds a table's rows
# to the values. The others are a subclass of `GPT` that overrides the small methods chapter 5 built
# the model from: `make_block` (the QK-norm attention), `tie_weights` (untied: the head keeps its
# own matrix), `init_weights` (GPT-2's initialisation first, every random draw of it, then the
# zeros), `blocks` (the U-net and the embedding skip), `hidden` (each pass's value-embedding rows,
# set on the two attentions for that pass only), `num_params` (the tables are lookups) and `logits`
# (the softcap: the one place logits are made, so generation and evaluation sample and score the
# capped logits that training saw). We register the class in `MODEL_CLASSES` for configs that turn
# any of the seven on; `make_model` builds plain `GPT` for all others.

# %%
#| export
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from gpt2book.attention import CausalSelfAttention
from gpt2book.block import Block
from gpt2book.common import setting
from gpt2book.model import GPT, MODEL_CLASSES, MODEL_EXTENSIONS


# %%
#| export
@dataclass
class RecipeSettings:
    "Chapter 17's model settings: changes from after GPT-2 that the speedrun tries; the defaults are GPT-2's."
    qk_norm: bool = setting(False, "unit-RMS queries and keys in every head (chapter 17)")
    tie_embeddings: bool = setting(True, "the LM head is wte's matrix (GPT-2); false: its own matrix (chapter 17)")
    zero_init: bool = setting(False, "output projections (and an untied head) start at zero (chapter 17)")
    logit_softcap: float = setting(0.0, "logits -> cap * tanh(logits / cap); 0: off (chapter 17)", low=0.0)
    unet_skips: bool = setting(False, "U-net skips: block i's output joins the input of its mirror block n_layer-1-i, "
                                      "with a learned weight (chapter 17)")
    x0_skip: bool = setting(False, "every block after the first also reads the embedding's output x0, times a learned "
                                   "weight that starts at 0 (chapter 17)")
    value_embeds: bool = setting(False, "the first and the last block add a token embedding of their own, zero at the "
                                        "start, to their attention's values (chapter 17)")

class QKNormAttention(CausalSelfAttention):
    "Chapter 1's attention with QK-norm: each head's queries and keys at unit RMS before they meet."
    def split_heads(self, x):
        q, k, v = super().split_heads(x)                                           # 3 x (B, nh, T, hs)
        return F.rms_norm(q, (q.size(-1),)), F.rms_norm(k, (k.size(-1),)), v       # |q.k| / sqrt(hs) <= sqrt(hs)

class ValueEmbedded:
    "An attention (mixed in first) whose values get `ve` (B, T, C) added: the model sets it for one forward pass."
    ve = None
    def split_heads(self, x):
        q, k, v = super().split_heads(x)                                           # 3 x (B, nh, T, hs)
        if self.ve is None: return q, k, v
        return q, k, v + self.ve.view(*self.ve.shape[:2], v.size(1), v.size(3)).transpose(1, 2)

class ValueEmbeddedAttention(ValueEmbedded, CausalSelfAttention): "Chapter 1's attention with value embeddings."
class ValueEmbeddedQKNormAttention(ValueEmbedded, QKNormAttention): "QK-norm attention with value embeddings."


# %%
#| export
class RecipeGPT(GPT):
    "GPT-2 with RecipeSettings' changes: QK-norm, an untied head, zero-initialised projections, softcap, U-net and x0 skips."
    def __init__(self, config):
        super().__init__(config)
        if config.unet_skips:   # one weight per pair of mirrored blocks, starting at 1 (no random draw)
            self.skip_weights = nn.Parameter(torch.ones(config.n_layer // 2))
        if config.x0_skip:      # one weight per block after the first, starting at 0: GPT-2's function at step 0
            self.x0_weights = nn.Parameter(torch.zeros(config.n_layer - 1))
        if config.value_embeds: # a (V, C) table for the first and the last block, zero (no random draw)
            self.value_embeds = nn.ModuleDict({str(i): nn.Embedding.from_pretrained(
                torch.zeros(config.vocab_size, config.n_embd), freeze=False) for i in self.ve_blocks()})

    def ve_blocks(self) -> list[int]: return sorted({0, self.config.n_layer - 1})

    def make_block(self, i: int) -> nn.Module:
        ve = self.config.value_embeds and i in self.ve_blocks()
        return Block(self.config, attention=(ValueEmbeddedQKNormAttention if ve else QKNormAttention) if self.config.qk_norm
                     else (ValueEmbeddedAttention if ve else CausalSelfAttention))
    def hidden(self, idx, kv_cache=None):
        if not self.config.value_embeds: return super().hidden(idx, kv_cache)
        attns = {int(i): self.transformer.h[int(i)].attn for i in self.value_embeds}
        for i, a in attns.items(): a.ve = self.value_embeds[str(i)](idx)          # (B, T, C): this pass's tokens
        try: return super().hidden(idx, kv_cache)
        finally:
            for a in attns.values(): a.ve = None
    def num_params(self, non_embedding: bool = False, active: bool = False) -> int:
        n = super().num_params(non_embedding, active)                      # value embeddings are lookups too
        return n - sum(p.numel() for p in self.value_embeds.parameters()) if non_embedding and self.config.value_embeds else n

    def tie_weights(self):
        if self.config.tie_embeddings: super().tie_weights()

    def init_weights(self):
        super().init_weights()                                  # GPT-2's draws, all of them: the same random stream
        if self.config.zero_init:
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"): nn.init.zeros_(p)   # each block starts as the identity
            if not self.config.tie_embeddings: nn.init.zeros_(self.lm_head.weight)   # uniform at step 0: log V

    def blocks(self, x, qk=None, kv_cache=None):
        c = self.config
        if not (c.unet_skips or c.x0_skip): return super().blocks(x, qk, kv_cache)
        n, half, skips, x0 = c.n_layer, c.n_layer // 2, [], x   # x0: the embedding's output (B, T, C)
        for i, block in enumerate(self.transformer.h):
            if c.unet_skips and i >= n - half:                  # + the output of block n-1-i
                x = x + self.skip_weights[i - (n - half)] * skips.pop()
            if c.x0_skip and i > 0: x = x + self.x0_weights[i - 1] * x0
            x = block(x, qk, kv_cache.layer(i) if kv_cache is not None else None)   # (B, T, C)
            if c.unet_skips and i < half: skips.append(x)
        return x

    def logits(self, h):
        logits = super().logits(h)                              # (..., V)
        if self.config.logit_softcap:                           # smoothly bounded to (-cap, cap)
            cap = self.config.logit_softcap
            logits = cap * torch.tanh(logits / cap)
        return logits


# %%
#| export
def wants_recipe(config) -> bool:
    "Whether `config` turns on any of RecipeSettings' changes (else GPT-2's GPT builds it)."
    return any(getattr(config, f.name) != f.default for f in fields(RecipeSettings))

MODEL_EXTENSIONS.append(RecipeSettings)
MODEL_CLASSES.append((wants_recipe, RecipeGPT))

# %% [markdown]
# Each does what it says. The untied head is one more $(V, C)$ matrix, and `wte` becomes a lookup
# (no longer counted as a non-embedding parameter); zero-initialised, the first prediction is
# uniform; the softcap bounds the logits however large the head's weights; the U-net's last block
# reads block 2's output plus block 0's; the embedding skip starts as GPT-2 (its weights at zero) and adds $x_0$ to every later block's
# input; value embeddings start as GPT-2 too and, once set, move exactly the values of the first and
# last block; a config with none of the seven builds GPT-2's `GPT`.

# %%
tiny = dict(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32, bias=False)
torch.manual_seed(0)
idx = torch.randint(0, 65, (2, 16))
m = make_model(model_config(**tiny, tie_embeddings=False, zero_init=True))
assert type(m) is RecipeGPT and type(make_model(model_config(**tiny))).__name__ == "GPT"
assert m.lm_head.weight is not m.transformer.wte.weight
assert any(p is m.lm_head.weight for p in muon_split(m)[1])                         # Muon leaves the head to AdamW
test_eq(m.num_params() - make_model(model_config(**tiny)).num_params(), 65 * 32)     # one more (V, C) matrix
test_eq(m.num_params(non_embedding=True), m.num_params() - 65 * 32 - 16 * 32)       # wte is now a lookup only
test_close(m(idx, idx)[1].item(), math.log(65), eps=1e-5)                            # zero head: uniform, ln V
assert all((b.attn.c_proj.weight == 0).all() and (b.mlp.c_proj.weight == 0).all() for b in m.transformer.h)
capped = make_model(model_config(**tiny, logit_softcap=2.0))
with torch.no_grad(): capped.lm_head.weight.mul_(1000)                               # logits far beyond the cap
assert capped(idx)[0].abs().max() <= 2.0
g = capped.generate(idx[:, :4], 1, temperature=1.0, generator=torch.Generator().manual_seed(0))  # samples capped logits
unet = make_model(model_config(**{**tiny, "n_layer": 4}, unet_skips=True))
test_eq(unet.num_params() - make_model(model_config(**{**tiny, "n_layer": 4})).num_params(), 2)  # a weight per pair
seen, outs = [], []
hooks = [b.register_forward_pre_hook(lambda mod, a: seen.append(a[0])) for b in unet.transformer.h]
hooks += [b.register_forward_hook(lambda mod, a, out: outs.append(out)) for b in unet.transformer.h]
unet(idx)
test_close(seen[3], outs[2] + outs[0], eps=1e-6)          # the last block's input: block 2's output + block 0's
test_close(seen[2], outs[1] + outs[1], eps=1e-6)          # block 2's: block 1's output, and again as its skip
for h in hooks: h.remove()
torch.manual_seed(1); plain = make_model(model_config(**{**tiny, "n_layer": 3}))
torch.manual_seed(1); x0m = make_model(model_config(**{**tiny, "n_layer": 3}, x0_skip=True))
assert torch.equal(x0m(idx)[0], plain(idx)[0])                    # weights at 0: GPT-2's function, the same random draws
with torch.no_grad(): x0m.x0_weights.fill_(1.0)
seen = []
hooks = [b.register_forward_pre_hook(lambda mod, a: seen.append(a[0])) for b in x0m.transformer.h]
x0m(idx)
test_close(seen[2], x0m.transformer.h[1](seen[1]) + seen[0], eps=1e-6)   # block 2 reads block 1's output + x0
for h in hooks: h.remove()
for qkn in (False, True):
    torch.manual_seed(1); base = make_model(model_config(**{**tiny, "n_layer": 3}, qk_norm=qkn))
    torch.manual_seed(1); vem = make_model(model_config(**{**tiny, "n_layer": 3}, qk_norm=qkn, value_embeds=True))
    assert torch.equal(vem(idx)[0], base(idx)[0])                                 # zero tables: GPT-2's function
    test_eq(vem.num_params() - base.num_params(), 2 * 65 * 32)                     # two (V, C) tables ...
    test_eq(vem.num_params(non_embedding=True), base.num_params(non_embedding=True))   # ... lookups, not counted
    with torch.no_grad(): vem.value_embeds["2"].weight.normal_()
    _, _, v = vem.transformer.h[2].attn.split_heads(torch.zeros(2, 16, 32))        # no table set outside a pass
    assert (v == 0).all() and not torch.equal(vem(idx)[0], base(idx)[0])             # a table set: the output moves
    assert all(getattr(b.attn, "ve", None) is None for b in vem.transformer.h)        # ... for that pass only
    test_eq(vem.generate(idx[:1, :4], 6, top_k=1), vem.generate(idx[:1, :4], 6, top_k=1, use_cache=False))  # the cache too
qk = make_model(model_config(**tiny, qk_norm=True))
q, k, _ = qk.transformer.h[0].attn.split_heads(torch.randn(2, 5, 32) * 100)
test_close(q.pow(2).mean(-1), torch.ones(2, 2, 5), eps=1e-3)                        # unit RMS per head

# %% [markdown]
# Two of them are pictured: the activations, and the softcap against the identity.

# %%
z = torch.linspace(-3, 3, 301)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
ax1.plot(z, torch.nn.functional.gelu(z), label="GELU (GPT-2)")
ax1.plot(z, torch.relu(z) ** 2, label="ReLU² (Primer)")
ax1.set_ylim(-0.5, 4); ax1.set_title("the MLP's activation"); ax1.legend()
zz = torch.linspace(-60, 60, 301)
ax2.plot(zz, zz, color="grey", lw=0.8, label="no cap")
ax2.plot(zz, 15 * torch.tanh(zz / 15), label="softcap 15")
ax2.set_ylim(-30, 30); ax2.set_xlabel("logit"); ax2.set_title("logit softcap c tanh(z / c)"); ax2.legend()
plt.tight_layout(); plt.show()

# %% [markdown]
# ## The schedule: warm up, hold, warm down
#
# Chapter 8's schedule warms up linearly and then follows a cosine down to a tenth of the peak. The
# speedruns moved to another shape: **warm-up, constant, linear warm-down** (WSD; nanochat holds its
# peak and decays linearly over the last 65% of the steps to 5% of it, modded-nanogpt's cooldown
# takes the last 45%). The rate stays at its peak for longer, where the loss falls fastest per
# step, and the straight warm-down at the end does the annealing that the cosine spreads over the
# whole run. `--lr_schedule=wsd` with `--warmdown=F` (the share of the steps the warm-down takes)
# and chapter 8's `min_lr` as its floor; the setting is a training setting of this chapter,
# registered like Muon's, and the rule replaces chapter 9's `HOOKS.lr`, which calls chapter 8's
# cosine for every run that keeps `--lr_schedule=cosine`.

# %%
#| export
from gpt2book.config import TRAIN_EXTENSIONS
from gpt2book.optim import get_lr
from gpt2book.train import HOOKS


# %%
#| export
@dataclass
class ScheduleSettings:
    "Chapter 17's training settings: the shape of the learning rate after the warm-up."
    lr_schedule: str = setting("cosine", "after the warm-up: cosine to min_lr (chapter 8), or wsd: hold the peak, then "
                                         "linear to min_lr over the last `warmdown` of the steps (chapter 17)",
                               choices=("cosine", "wsd"))
    warmdown: float = setting(0.65, "lr_schedule=wsd: the share of the steps the linear warm-down takes", low=0.0, high=1.0)

def wsd_lr(step: int, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int, warmdown: float) -> float:
    "Learning rate of optimizer step `step` (0-based): chapter 8's linear warm-up, the peak, then linear to `min_lr`."
    if step < warmup_steps: return max_lr * (step + 1) / warmup_steps
    start = max(warmup_steps, max_steps - round(warmdown * max_steps))        # the warm-down's first step
    if step <= start: return max_lr
    return min_lr + (max_lr - min_lr) * max(0, max_steps - step) / max(1, max_steps - start)

def schedule_lr(cfg, step: int) -> float:
    "The run's learning rate at `step`: chapter 8's cosine, or `wsd_lr`."
    if cfg.lr_schedule == "wsd":
        return wsd_lr(step, cfg.learning_rate, cfg.min_lr, cfg.warmup_steps, cfg.max_steps, cfg.warmdown)
    return get_lr(step, cfg.learning_rate, cfg.min_lr, cfg.warmup_steps, cfg.max_steps)

TRAIN_EXTENSIONS.append(ScheduleSettings)
HOOKS.lr = schedule_lr

# %% [markdown]
# The two shapes over a run of 860 steps (the last record's) with 30 warm-up steps: WSD holds the
# peak for 301 steps and then falls in a straight line to the same floor the cosine reaches. A run
# that keeps the cosine gets chapter 8's numbers exactly.

# %%
cos_cfg = make_config("cpu", max_steps=860, warmup_steps=30)
wsd_cfg = make_config("cpu", max_steps=860, warmup_steps=30, lr_schedule="wsd")
steps = range(860)
cos_lr, wsd = [schedule_lr(cos_cfg, s) for s in steps], [schedule_lr(wsd_cfg, s) for s in steps]
test_eq(cos_lr, [get_lr(s, 4e-3, 4e-4, 30, 860) for s in steps])                  # cosine: chapter 8's, exactly
test_eq(wsd[:30], cos_lr[:30])                                                     # the same warm-up
assert wsd[30:301] == [4e-3] * 271 and wsd[301] == 4e-3 and wsd[302] < 4e-3          # the peak, held to step 301
test_close(wsd[-1], 4e-4 + (4e-3 - 4e-4) / 559, eps=1e-12)                         # the last step: one above the floor
assert all(a > b for a, b in zip(wsd[301:], wsd[302:]))                           # straight down from there
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(steps, cos_lr, label="cosine to a tenth (chapter 8)"); ax.plot(steps, wsd, label="WSD, warm-down 65%")
ax.set(xlabel="step", ylabel="learning rate"); ax.legend(); ax.grid(alpha=0.3); plt.show()
