# %% [markdown]
# # Using the model: generation and fine-tuning
#
# > Loading a trained model from a run folder, a Hugging Face folder or the hub; generating text fast with a KV cache and the sampling controls; `python -m gpt2book.sample`; and fine-tuning from pretrained weights.

# %%
#| default_exp sample

# %% [markdown]
# A trained model is only useful once it writes. This chapter is about that last step:
#
# ```bash
# python -m gpt2book.train                                   # chapter 9: a run folder, out/cpu
# python -m gpt2book.sample --prompt "ROMEO:"                # this chapter: text from it
# python -m gpt2book.train --config gpt2-124m-ft-shakespeare # this chapter: fine-tune OpenAI's GPT-2 (a GPU)
# ```
#
# The plan: load a model from wherever it lives; make generation fast with the KV cache, measured
# at GPT-2 small's size; train a small model here, in seconds, and look at what the sampling
# controls (temperature, top-k, top-p, the seed, the stop token) do to its next-token
# distribution; the command `python -m gpt2book.sample`; and last, fine-tuning: starting a run
# from weights someone already trained.

# %%
#| export
import argparse
import json
import sys
import time
from pathlib import Path

import torch

from gpt2book.checkpoint import checkpoints, newest_readable_checkpoint
from gpt2book.model import GPT, GPTConfig
from gpt2book.tokenizer import GPT2Tokenizer, tokenizer_from_dict

# %%
import contextlib
import io
import math
import os
import shutil
import subprocess
import tempfile

import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail

from gpt2book.loader import load_meta
from gpt2book.prepare import SOURCES, fetch, prepare
from gpt2book.model import next_token_probs
from gpt2book.train import (TRAIN_PRESETS, TrainError, config_from_args, grad_accum_steps, pretrained_weights,
                            read_metrics, train)


# %% [markdown]
# ## Loading a model
#
# A model can come from three places, and `load_model` takes any of them:
#
# - **a run folder** of the trainer (chapter 9): the newest checkpoint that can be read holds the
#   model's config, its weights and its tokenizer (a run saved before checkpoints carried the
#   tokenizer falls back to the `meta.json` of the data folder its `config.json` names);
# - **a Hugging Face folder** (`config.json` + `model.safetensors`, as `save_pretrained` writes
#   it), with GPT-2's tokenizer;
# - **a hub name** such as `gpt2`, downloaded by `huggingface_hub` where there is a network.
#
# It returns the model in eval mode on `device`, and the tokenizer. What goes wrong is a
# `ModelError` whose message says what to pass instead.

# %%
#| export
class ModelError(Exception):
    "A model that cannot be loaded, with a message that says what to pass instead."

def _tokenizer_of_run(run_dir: Path, ckpt: dict):
    if "tokenizer" in ckpt:
        return tokenizer_from_dict(ckpt["tokenizer"])
    cfg = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else {}
    meta = Path(cfg.get("data_dir") or f"data/{cfg.get('dataset', '')}") / "meta.json"
    if not meta.exists():
        raise ModelError(f"{run_dir}'s checkpoint does not name its tokenizer, and its data folder ({meta.parent}) is "
                         f"gone: prepare that data again (python data/prepare.py ...) or retrain")
    return tokenizer_from_dict(json.loads(meta.read_text())["tokenizer"])

def _looks_local(spec) -> bool:
    "A path, not a hub name: starts with . / ~, or its first part is a folder here (out/cpu; not openai-community/gpt2)."
    s = str(spec)
    return s.startswith((".", "/", "~")) or ("/" in s and Path(s.split("/")[0]).is_dir())

def load_model(spec, device: str = "cpu"):
    "(GPT in eval mode on `device`, tokenizer) from a run folder, a Hugging Face folder or a hub name."
    path = Path(spec)
    if path.is_dir() and checkpoints(path):
        _, ckpt = newest_readable_checkpoint(path, report=lambda msg: print(msg, file=sys.stderr), move_aside=False)
        if ckpt is None:
            raise ModelError(f"{path} holds no readable checkpoint (every ckpt_*.pt was damaged)")
        model = GPT(GPTConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        return model.to(device).eval(), _tokenizer_of_run(path, ckpt)
    if path.is_dir() and not (path / "config.json").exists():
        raise ModelError(f"{path} is neither a run folder (no ckpt_*.pt) nor a Hugging Face folder (no config.json): "
                         f"pass a folder that `python -m gpt2book.train` or `save_pretrained` wrote, or a hub name (gpt2)")
    if not path.exists() and _looks_local(spec):
        raise ModelError(f"{spec}: no such folder (a run folder, a Hugging Face folder, or a hub name such as gpt2)")
    try:
        model = GPT.from_pretrained(spec)
        tok = GPT2Tokenizer()
    except (OSError, ValueError, RuntimeError) as e:   # RuntimeError: tiktoken's files cannot be had
        raise ModelError(str(e)) from None
    return model.to(device).eval(), tok


# %%
tmp = Path(tempfile.mkdtemp())
torch.manual_seed(0)
GPT(GPTConfig(block_size=32, vocab_size=50257, n_layer=1, n_head=2, n_embd=16)).save_pretrained(tmp / "hf")
m, tok = load_model(tmp / "hf")
test_eq((m.config.n_layer, tok.name, m.training), (1, "gpt2", False))
test_fail(lambda: load_model(tmp / "nothing-here"), contains="no such folder")
(tmp / "empty").mkdir()
test_fail(lambda: load_model(tmp / "empty"), contains="neither a run folder")
shutil.rmtree(tmp)

# %% [markdown]
# ## Generating fast: the KV cache
#
# Chapter 5 built `generate` with a KV cache; here is why it matters, measured at GPT-2 small's
# size. To choose token $T + 1$ the model needs the logits of the last position only. Without a
# cache it runs the whole context of $T$ tokens through all its layers for every new token, and
# throws away everything but the last position. But the model is causal: the keys and values of
# position $s$, in every layer, depend on tokens $0..s$ only, so they are the same at every step.
# **The cache keeps them**: two tensors of shape `(B, n_head, T, head_size)` per layer. A new token
# then goes through the model alone: its query, key and value are computed (one row through each
# matrix), its key and value appended to the cache, and its query attends over all $T$ cached keys.
#
# The cost of one new token, at a context of $T$ tokens:
#
# | | without the cache | with the cache |
# |---|---|---|
# | the matrix multiplications (QKV, projections, MLP): $2N$ FLOPs per position | $O(T)$: all $T$ positions again | $O(1)$: one position |
# | attention: $4C$ FLOPs per (query, key) pair per layer | $O(T^2)$: every position against every earlier one | $O(T)$: one query against $T$ keys |
# | the output layer (the last position only, in both) | $2CV$ | $2CV$ |
#
# where $N$ counts the weights in the blocks (85M for GPT-2 small; the embeddings are looked up,
# not multiplied). Generating $n$ tokens thus costs $O(n^3)$ in attention and $O(n^2)$ elsewhere
# without the cache, $O(n^2)$ and $O(n)$ with it. The price is memory: $2 \times n_\text{layer}
# \times T \times C$ numbers per sequence.

# %%
L, C, V, T_max = 12, 768, 50257, 1024                             # GPT-2 small
N = 12 * L * C * C                                                # weights in the blocks' matrices: 85M
def flops_per_new_token(T, cache):
    mm = 2 * N * (1 if cache else T)                              # matrix multiplications
    attn = 4 * L * C * (T if cache else T * (T + 1) / 2)          # causal: query t sees t keys
    return mm + attn + 2 * C * V                                  # + the output layer, last position only
for T in (16, 256, 1024):
    a, b = flops_per_new_token(T, False), flops_per_new_token(T, True)
    print(f"T = {T:4d}: {a / 1e9:7.2f} GFLOPs without the cache, {b / 1e9:.2f} with it: {a / b:5.0f}x fewer")
print(f"the cache at T = {T_max}: {2 * L * T_max * C * 4 / 2**20:.0f} MiB per sequence in float32")
test_eq(N, 84_934_656)


# %% [markdown]
# **The cache changes nothing but the speed.** Chapter 5 tested that the model's logits over a
# sequence are the same whether it is fed at once or a token at a time through a cache. Here the
# claim is tested on `generate` itself: a forward hook on `lm_head` records the logits of every
# step `generate` takes, with the cache and without, for learned and for rotary positions, within
# and past `block_size` (where both recompute the last `block_size` tokens).

# %%
def generate_logits(model, idx, n, **kw):
    "(tokens (B, T + n), the logits of each step (n, B, V)) of `model.generate`, recorded by a hook on lm_head."
    seen = []
    hook = model.lm_head.register_forward_hook(lambda mod, inp, out: seen.append(out.detach()))
    try:
        out = model.generate(idx, n, **kw)
    finally:
        hook.remove()
    return out, torch.stack(seen)

for pos in ("learned", "rope"):
    torch.manual_seed(0)
    m = GPT(GPTConfig(block_size=32, vocab_size=100, n_layer=2, n_head=4, n_embd=32, pos=pos))
    prompt = torch.randint(0, 100, (2, 6))                                        # (B=2, 6)
    for n in (20, 40):                                                            # to 26 and 46 > block_size
        a, la = generate_logits(m, prompt, n, temperature=0)
        b, lb = generate_logits(m, prompt, n, temperature=0, use_cache=False)
        test_eq(a, b)                                                             # the same greedy tokens
        torch.testing.assert_close(la, lb, rtol=0, atol=1e-5)                     # (n, 2, 100): the same logits
    print(f"pos={pos}: generate's logits with and without the cache agree to 1e-5 ({la.shape[0]} steps), tokens equal")
    g = lambda: torch.Generator().manual_seed(3)      # sampling too: the same seed draws the same tokens either way
    test_eq(m.generate(prompt, 20, top_k=10, generator=g()), m.generate(prompt, 20, top_k=10, generator=g(), use_cache=False))

# %% [markdown]
# ### Measured at GPT-2 small's size
#
# `bench/generate_speed.py` times `generate` on GPT-2 small's shape (12 layers, 12 heads, 768 wide,
# block 1024, 50,257 tokens: 124M parameters; random weights, which take as long as trained ones;
# float32, batch 1, eval mode): greedy decoding from a 16-token prompt to 384 tokens, once with the
# cache and once without, with a hook stamping the time of every step; then one step at longer
# contexts, up to 1000 tokens. It wrote `data/bench_generate.json`, which is plotted here:
#
# ```bash
# python bench/generate_speed.py        # about 4 minutes here; writes nbs/data/bench_generate.json
# ```

# %%
bench = json.loads(Path("data/bench_generate.json").read_text())
mach, gen, ctx = bench["machine"], bench["generate"], bench["context"]
print(f"{mach['cpu']}, {mach['cpu_count']} cores, {mach['threads']} torch thread, torch {mach['torch']}; 1-minute load "
      f"average {mach['loadavg_1min_before']} before, {mach['loadavg_1min_after']} after ({bench['command']})")
steps = {k: gen[k]["step_s"] for k in ("cached", "uncached")}
positions = list(range(gen["prompt_tokens"], gen["prompt_tokens"] + gen["new_tokens"]))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for k, c in (("uncached", "C3"), ("cached", "C0")):
    ax1.plot(positions[1:], [s * 1e3 for s in steps[k][1:]], c, lw=1, label=f"{k}: {gen[k]['tokens_per_s']:.1f} tokens/s")
    ax2.plot(ctx["context"], [1 / s for s in ctx[f"{k}_step_s"]], "o-", c=c, label=k)
ax1.set(xlabel="context length (tokens)", ylabel="time for the next token (ms)", yscale="log",
        title=f"generate, {gen['prompt_tokens']} to {gen['prompt_tokens'] + gen['new_tokens']} tokens")
ax2.set(xlabel="context length (tokens)", ylabel="tokens/s", xscale="log", yscale="log",
        title="one step at a longer context")
for ax in (ax1, ax2): ax.grid(alpha=0.3, which="both"); ax.legend()
fig.suptitle(f"GPT-2 small's shape, float32, batch 1, on {mach['cpu_count']} busy cores of an {mach['cpu']}")
plt.tight_layout(); plt.show()

# %% [markdown]
# Without the cache the time per token grows in proportion to the context: the matrix
# multiplications over all $T$ positions dominate (attention's $T^2$ term is about a tenth of the
# work even at 1000 tokens). With the cache it barely moves. The first step of each run (left out
# of the plot) also reads the 16-token prompt; the jumps in the uncached curve are other jobs
# taking the core for a while.

# %%
c, u = gen["cached"], gen["uncached"]
print(f"{gen['new_tokens']} new tokens: {c['total_s']:.1f} s with the cache ({c['tokens_per_s']:.1f} tokens/s), "
      f"{u['total_s']:.1f} s without ({u['tokens_per_s']:.2f} tokens/s): {u['total_s'] / c['total_s']:.1f}x")
for T, cs, us in zip(ctx["context"], ctx["cached_step_s"], ctx["uncached_step_s"]):
    print(f"context {T:4d}: {cs * 1e3:6.1f} ms with the cache, {us * 1e3:7.1f} ms without: {us / cs:5.1f}x")
test_eq(gen["same_tokens"], True)                                         # recorded: the same 368 greedy tokens
assert all(cs < us for cs, us in zip(ctx["cached_step_s"], ctx["uncached_step_s"]))
assert ctx["uncached_step_s"][-1] > 8 * ctx["uncached_step_s"][0]        # 32 -> 1000 tokens: grows with T
assert ctx["cached_step_s"][-1] < 2.5 * ctx["cached_step_s"][0]          # ... and hardly with the cache

# %% [markdown]
# The speed-up is real but far below the ratio of FLOPs in the table above (hundreds of times at
# long contexts): a cached step does little arithmetic, under 0.3 GFLOPs, but must still read
# every weight once, 124M float32 numbers, 0.5 GB, from memory. Batch-1 generation is limited by
# memory bandwidth, not by arithmetic. The two rates this machine reached, from the file:

# %%
gb = bench["model"]["params"] * 4 / 1e9
print(f"cached step, context 32: {gb:.2f} GB of weights in {ctx['cached_step_s'][0] * 1e3:.0f} ms = "
      f"{gb / ctx['cached_step_s'][0]:.1f} GB/s read")
T = ctx["context"][-1]
print(f"uncached step, context {T}: {flops_per_new_token(T, False) / 1e9:.0f} GFLOPs in "
      f"{ctx['uncached_step_s'][-1]:.2f} s = {flops_per_new_token(T, False) / ctx['uncached_step_s'][-1] / 1e9:.0f} GFLOP/s")
print(f"at context {T}: {flops_per_new_token(T, False) / flops_per_new_token(T, True):.0f}x fewer FLOPs with the cache, "
      f"{ctx['uncached_step_s'][-1] / ctx['cached_step_s'][-1]:.0f}x faster")

# %% [markdown]
# That is also why GPUs serve many sequences at once: a batch of 32 reads the weights once for 32
# tokens. And why the benchmark uses one thread: this machine was busy with other jobs (the load
# average above is several times its 2 cores), and a second thread that waits for a core held by
# another process slows every matrix multiplication down. Measured at a 256-token context:

# %%
thr = bench["threads_at_context_256"]
for n, t in thr.items():
    print(f"{n} thread(s): {t['cached_step_s'] * 1e3:6.1f} ms per token with the cache, "
          f"{t['uncached_step_s'] * 1e3:7.1f} ms without")
assert thr["2"]["cached_step_s"] > thr["1"]["cached_step_s"]              # recorded: on a busy machine

# %% [markdown]
# ## A model to sample from, trained here
#
# To look at sampling we need a model whose predictions mean something, small enough to train
# here in seconds. Tiny Shakespeare is one long text; cut at its blank lines it is 7,222
# speeches, each a speaker's name and what they say. Prepared as separate documents (chapter 7),
# every speech starts after an end-of-text token, so the model also learns where a speech ends:
# which the stop token will use. Characters as tokens, 66 of them with end-of-text.

# %%
work = Path(tempfile.mkdtemp())
text = fetch(SOURCES["shakespeare_char"]).read_text()                    # Tiny Shakespeare, from chapter 7's sources
speeches = [s.strip("\n") + "\n" for s in text.split("\n\n") if s.strip()]
with open(work / "speeches.jsonl", "w") as f:
    f.writelines(json.dumps({"text": s}) + "\n" for s in speeches)
speech_data = prepare([work / "speeches.jsonl"], out_dir=work / "speeches", tokenizer="char", progress=False)
meta = load_meta(speech_data)
print(len(speeches), "speeches, e.g.", repr(speeches[1]), "|", meta["vocab_size"], "ids,",
      {s: v["documents"] for s, v in meta["splits"].items()})
test_eq((len(speeches), meta["vocab_size"], meta["eot"]), (7222, 66, 65))

# %% [markdown]
# The models of this chapter are tiny; one thread runs them fast, and keeps them fast on a machine
# that other jobs keep busy, as the one this chapter was run on (see above). The runs here leave
# the trainer's progress bar out of the page (its log lines stay). Then 500 steps of the trainer
# (chapter 9) on 2 layers of width 64, well under a minute here:

# %%
threads0 = torch.get_num_threads()                                        # restored at the end
torch.set_num_threads(1)
def run(args):
    "`python -m gpt2book.train` with `args`, in this process, without the progress bar (on stderr)."
    with contextlib.redirect_stderr(io.StringIO()):
        return train(config_from_args(args))

speech_run = work / "speech-run"
s = run(["--n_layer=2", "--n_head=4", "--n_embd=64", "--block_size=64", "--batch_size=32",
         "--max_steps=500", "--warmup_steps=30", "--learning_rate=1e-2", "--log_interval=100",
         "--eval_interval=250", "--eval_iters=20", "--checkpoint_interval=500", "--sample_tokens=0",
         f"--data_dir={speech_data}", f"--out_dir={speech_run}"])
model, tok = load_model(speech_run)
print(f"validation loss {s['val_loss']:.2f} nats per character after {s['step']} steps ({s['elapsed_s']:.0f} s); {tok}")
assert s["val_loss"] < 2.2


# %% [markdown]
# ## The sampling controls
#
# At every step the model gives logits, one per token of the vocabulary; softmax turns them into
# a distribution, and the next token is drawn from it. `next_token_probs` (chapter 5) is that
# distribution after the controls, and `generate` draws from it. Here they are on what our model
# says after two prompts: one where the next character is nearly certain, one where it is open.

# %%
def show(i):
    "A readable label for token id `i` of the character tokenizer."
    return {" ": "sp", "\n": "\\n"}.get(tok.decode([i]), "eot" if i == tok.eot else tok.decode([i]))

@torch.no_grad()
def last_logits(prompt):
    "The logits (1, V) of the token after `prompt`."
    return model(torch.tensor([tok.encode(prompt)]))[0][:, -1]

sure, open_ = "ROMEO:\nWhat say yo", "ROMEO:\n"
for p in (sure, open_):
    probs = next_token_probs(last_logits(p))[0]                           # (V,)
    top = probs.topk(5)
    print(f"{p!r:24} -> " + ", ".join(f"{show(i)} {v:.3f}" for v, i in zip(top.values.tolist(), top.indices.tolist())))

# %% [markdown]
# **Temperature** divides the logits before the softmax: below 1 it sharpens the distribution
# (towards the most likely token, which temperature 0 picks outright: greedy decoding), above 1 it
# flattens it (towards uniform). It never changes the order of the tokens.

# %%
logits = last_logits(open_)
temps = (0.5, 1.0, 2.0)
order = next_token_probs(logits)[0].argsort(descending=True)[:16]         # the 16 likeliest at temperature 1
fig, ax = plt.subplots(figsize=(10, 3.5))
entropy = {}
for j, t in enumerate(temps):
    p = next_token_probs(logits, temperature=t)[0]
    entropy[t] = -(p * p.clamp_min(1e-12).log2()).sum().item()
    ax.bar(torch.arange(16) + (j - 1) * 0.27, p[order], width=0.27, label=f"temperature {t}: entropy {entropy[t]:.2f} bits")
ax.set_xticks(range(16), [show(i) for i in order.tolist()])
ax.set(xlabel="next character", ylabel="probability", title=f"After {open_!r}: temperature reshapes, keeps the order")
ax.legend(); plt.show()
assert entropy[0.5] < entropy[1.0] < entropy[2.0] < math.log2(66)   # sharper to flatter, never past uniform
for t in temps: test_eq(next_token_probs(logits, temperature=t).argmax(), logits.argmax())
assert next_token_probs(logits, temperature=0.01).max() > 0.999      # towards greedy

# %% [markdown]
# **Top-k** keeps the $k$ likeliest tokens and renormalises; **top-p** (nucleus sampling, Holtzman
# et al. 2019) keeps the smallest set of likeliest tokens whose probabilities add up to at least
# $p$. The difference shows when the model's certainty changes: top-k keeps 5 tokens after both
# prompts; top-p = 0.9 keeps one token where the model is sure and many where it is not. Both cut
# off the long tail of unlikely tokens, where a sampler's mistakes come from.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
kept = {}
for ax, p_ in zip(axes, (sure, open_)):
    lg = last_logits(p_)
    probs, order = next_token_probs(lg)[0].sort(descending=True)            # (V,) sorted
    kept[p_] = {"top_k=5": int((next_token_probs(lg, top_k=5) > 0).sum()),
                "top_p=0.9": int((next_token_probs(lg, top_p=0.9) > 0).sum())}
    ax.bar(range(30), probs[:30], color=["C0" if i < kept[p_]["top_p=0.9"] else "C7" for i in range(30)])
    ax.plot(range(30), probs.cumsum(0)[:30], "k.-", lw=1, label="cumulative probability")
    ax.axhline(0.9, c="C0", ls=":", lw=1); ax.axvline(4.5, c="C3", ls="--", lw=1, label="top_k = 5 keeps left of this")
    ax.set_xticks(range(30), [show(i) for i in order[:30].tolist()], fontsize=7)
    ax.set(title=f"after {p_!r}: top_p = 0.9 keeps {kept[p_]['top_p=0.9']} (blue)", xlabel="next character, likeliest first")
axes[0].set_ylabel("probability"); axes[0].legend(loc="center right"); plt.tight_layout(); plt.show()
print(kept)

# %% [markdown]
# The claims, checked on both distributions: top-k keeps exactly $k$ tokens, top-p keeps the
# smallest prefix of the sorted distribution whose mass reaches $p$, and both renormalise.

# %%
for p_ in (sure, open_):
    lg = last_logits(p_)
    probs = next_token_probs(lg)[0].sort(descending=True).values
    n = kept[p_]["top_p=0.9"]
    assert probs[:n - 1].sum() < 0.9 <= probs[:n].sum()                   # the smallest prefix reaching 0.9
    test_eq(kept[p_]["top_k=5"], 5)
    for kw in ({"top_k": 5}, {"top_p": 0.9}): test_close(next_token_probs(lg, **kw).sum(), 1.0, eps=1e-6)
test_eq(kept[sure]["top_p=0.9"], 1)                                       # sure: the nucleus is one token
assert kept[open_]["top_p=0.9"] > 10                                      # open: many

# %% [markdown]
# What the controls do to whole texts: greedy decoding (temperature 0) is the likeliest character
# at every step, and it soon repeats itself; sampling at 0.8 with top-k 200 (nanoGPT's defaults,
# and those of the command below) writes something that looks like a play; `<|endoftext|>` is
# where the model ended a speech and began the next (the stop token, below, ends the text there).

# %%
prompt = torch.tensor([tok.encode("ROMEO:\n")])                            # (1, 7)
greedy = tok.decode(model.generate(prompt, 120, temperature=0)[0].tolist())
sampled = tok.decode(model.generate(prompt, 120, temperature=0.8, top_k=200,
                                    generator=torch.Generator().manual_seed(0))[0].tolist())
print(f"greedy:\n{greedy}\n\ntemperature 0.8, top-k 200:\n{sampled}")


# %% [markdown]
# **The seed.** Sampling draws from a random number generator; `generate` takes a
# `torch.Generator`, so the same seed gives the same text, and leaves the global random state
# alone. A different seed, a different text.

# %%
def draw(seed, n=60):
    g = torch.Generator().manual_seed(seed)
    return tok.decode(model.generate(prompt, n, temperature=0.8, top_k=200, generator=g)[0].tolist())
test_eq(draw(1), draw(1))
assert draw(1) != draw(2)
state = torch.get_rng_state(); draw(3); assert torch.equal(state, torch.get_rng_state())
print(repr(draw(1)), "\n", repr(draw(2)))

# %% [markdown]
# **The stop token.** A document ends with end-of-text, and a model trained on documents learns
# to write it when a speech is done. `generate(..., stop_token=eot)` stops as soon as it has
# (for a batch: once every row has); without it the model goes on into the next speech.

# %%
start = torch.tensor([[tok.eot]])                                          # an empty prompt: a new document
g = lambda: torch.Generator().manual_seed(5)
stopped = model.generate(start, 500, temperature=0.8, generator=g(), stop_token=tok.eot)[0].tolist()
longer = model.generate(start, len(stopped) + 40, temperature=0.8, generator=g())[0].tolist()
print(f"with stop_token=eot: {len(stopped) - 1} tokens\n{tok.decode(stopped)}\n\nwithout:\n{tok.decode(longer)}")
test_eq(stopped[-1], tok.eot)                                             # it stopped at the end of a speech
assert len(stopped) < 501 and tok.eot not in stopped[1:-1]
test_eq(longer[:len(stopped)], stopped)                                   # the same draws, then on past the end

# %% [markdown]
# ## What the model looks at: its attention
#
# Chapter 1 drew attention weights for hand-made queries and keys. Here are the weights of the model
# just trained, for every head of both layers, on the start of a speech. The weights come from
# running the blocks one by one and, in each, chapter 1's written-out attention on the layer's
# queries and keys (the model itself uses PyTorch's fused kernel, which computes the same numbers
# without keeping them).

# %%
from gpt2book.attention import scaled_dot_product_attention


# %%
@torch.no_grad()
def attention_maps(model, idx):
    "The attention weights (n_layer, nh, T, T) of `model` on token ids `idx` (1, T)."
    tf = model.transformer
    x = tf.wte(idx) + tf.wpe(torch.arange(idx.size(1)))             # (1, T, C): learned positions
    maps = []
    for block in tf.h:
        q, k, v = block.attn.split_heads(block.ln_1(x))               # 3 x (1, nh, T, hs)
        maps.append(scaled_dot_product_attention(q, k, v)[1][0])      # (nh, T, T)
        x = block(x)
    return torch.stack(maps)

text_in = "ROMEO:\nWhat say you to my suit?\n"
ids = torch.tensor([[tok.eot, *tok.encode(text_in)]])                  # as in training: a speech starts after eot
maps = attention_maps(model, ids)                                      # (2, 4, T, T)
test_close(maps.sum(-1), torch.ones(maps.shape[:-1]), eps=1e-5)        # distributions
assert (maps.triu(1) == 0).all()                                       # causal
labels = ["eot"] + [show(i) for i in tok.encode(text_in)]
fig, axes = plt.subplots(2, 4, figsize=(15, 7.5))
for (l, h), ax in zip([(l, h) for l in range(2) for h in range(4)], axes.flat):
    ax.imshow(maps[l, h], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"layer {l}, head {h}", fontsize=9)
    ax.set_xticks(range(len(labels)), labels, fontsize=5, rotation=90); ax.set_yticks(range(len(labels)), labels, fontsize=5)
plt.tight_layout(); plt.show()

# %% [markdown]
# Some heads look mostly at the previous character or two (a bright line just under the diagonal),
# some spread over the whole line, some go back to the start of the speech or to the last newline.
# Measured on these tokens, the share of each head's weight on the previous character:

# %%
prev = torch.stack([maps[:, :, t, t - 1] for t in range(1, maps.size(-1))], -1).mean(-1)   # (2, 4)
for l in range(2):
    print(f"layer {l}: " + "  ".join(f"head {h}: {prev[l, h]:.2f}" for h in range(4)))
l_best, h_best = divmod(int(prev.argmax()), 4)
print(f"the most 'previous character' head: layer {l_best}, head {h_best} ({prev.max():.2f} of its weight)")


# %% [markdown]
# ## `python -m gpt2book.sample`
#
# The command puts these together: load a model (`--model`: a run folder, a Hugging Face folder or
# a hub name), encode the prompt, sample `--num_samples` texts from one seeded generator (so the
# same seed gives the same texts), stop each at end-of-text, and print them. What goes wrong (no
# such model, a prompt the tokenizer cannot encode, no network for a hub name, a bad setting) ends
# the command with exit status 2 and one line that says what to do, no traceback.
#
# First the prompt: an empty prompt starts a new document from end-of-text; a character model
# can only encode the characters of its training text.

# %%
#| export
def encode_prompt(tok, prompt: str) -> list[int]:
    "Token ids of `prompt` (an empty prompt: end-of-text, where a document starts); ModelError if `tok` cannot encode it."
    if prompt == "":
        return [tok.eot]
    try:
        return tok.encode(prompt)
    except ValueError as e:                      # the character tokenizer: a character it has never seen
        raise ModelError(f"the prompt cannot be encoded: {str(e).split(';')[0]}; this character model knows only "
                         f"the characters of its training text") from None

def continuation(model, tok, prompt="\n", max_new_tokens=300, temperature=0.8, top_k=200, top_p=None, generator=None,
                 stop_at_eot=True, use_cache=True) -> list[int]:
    "The ids the model writes after `prompt`: up to `max_new_tokens`, cut before end-of-text if `stop_at_eot`."
    ids = encode_prompt(tok, prompt)
    idx = torch.tensor([ids], device=next(model.parameters()).device)                      # (1, T)
    out = model.generate(idx, max_new_tokens, temperature, top_k, top_p, generator,
                         stop_token=tok.eot if stop_at_eot else None, use_cache=use_cache)  # (1, T + n)
    new = out[0, len(ids):].tolist()
    if stop_at_eot and tok.eot in new:
        new = new[:new.index(tok.eot)]
    return [i for i in new if i < tok.vocab_size]     # ids of a padded vocabulary (vocab_multiple) are no text

def complete(model, tok, prompt="\n", **kw) -> str:
    "`prompt` followed by the model's continuation of it (see `continuation` for the settings)."
    return prompt + tok.decode(continuation(model, tok, prompt, **kw))


# %%
test_eq(encode_prompt(tok, ""), [tok.eot])
test_eq(tok.decode(encode_prompt(tok, "ROMEO:\n")), "ROMEO:\n")
test_fail(lambda: encode_prompt(tok, "Roméo"), contains="character 'é' (U+00E9) at position 3")
text1 = complete(model, tok, "", max_new_tokens=500, temperature=0.8, top_k=None, generator=g())
test_eq(text1, tok.decode(stopped[1:-1]))                                 # generate's draws, cut at end-of-text
print(complete(model, tok, "JULIET:\n", max_new_tokens=200, generator=torch.Generator().manual_seed(0)))

# %% [markdown]
# The command line, nanoGPT's `sample.py` with a `--help`: the same defaults (a newline as the
# prompt, temperature 0.8, top-k 200, seed 1337), and `--model` takes any of the three places a
# model can be. It prints the texts on stdout and what it loaded and how fast it ran on stderr.

# %%
#| export
SAMPLE_EXAMPLES = """examples:
  python -m gpt2book.sample                                   # out/cpu, the run `python -m gpt2book.train` writes
  python -m gpt2book.sample --prompt=$'ROMEO:\\n' --num_samples=3 --seed=7
  python -m gpt2book.sample --model=out/gpt2-124m-ft-shakespeare --prompt="To be"
  python -m gpt2book.sample --model=gpt2 --prompt="Hello, I'm a language model," --top_p=0.9   # OpenAI's GPT-2
  python -m gpt2book.sample --temperature=0 --no_cache         # greedy, recomputing the context every token"""

DEFAULT_MODEL = "out/cpu"   # where `python -m gpt2book.train` writes its CPU default

def parser() -> argparse.ArgumentParser:
    "The arguments of `python -m gpt2book.sample`."
    p = argparse.ArgumentParser(prog="python -m gpt2book.sample", epilog=SAMPLE_EXAMPLES,
                                description="Sample text from a GPT (chapter 14 of gpt2book).",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL, help="a run folder (its newest checkpoint), a Hugging Face folder "
                   "(config.json + model.safetensors) or a hub name such as gpt2 (default: out/cpu)")
    p.add_argument("--prompt", default="\n", help='the text to continue (default: a newline; "" starts a new document)')
    p.add_argument("--max_new_tokens", type=int, default=300, help="tokens per sample at most (default: 300)")
    p.add_argument("--temperature", type=float, default=0.8, help="< 1 sharper, > 1 flatter, 0 greedy (default: 0.8)")
    p.add_argument("--top_k", type=int, default=200, help="sample from the k likeliest tokens; 0: all (default: 200)")
    p.add_argument("--top_p", type=float, default=1.0, help="sample from the likeliest tokens that together reach "
                   "this probability; 1: all (default: 1)")
    p.add_argument("--num_samples", type=int, default=1, help="texts to write (default: 1)")
    p.add_argument("--seed", type=int, default=1337, help="the same seed writes the same texts (default: 1337)")
    p.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu) | cpu | cuda | cuda:N | mps")
    p.add_argument("--no_cache", action="store_true", help="recompute the whole context for every token (slow)")
    p.add_argument("--no_stop", action="store_true", help="go on past end-of-text")
    return p


# %% [markdown]
# Settings out of range are refused before anything is loaded, and the device is checked.

# %%
#| export
def check_args(a) -> None:
    "Raise ModelError for settings `python -m gpt2book.sample` cannot use."
    bad = [msg for cond, msg in (
        (a.max_new_tokens < 0, f"--max_new_tokens={a.max_new_tokens} must be >= 0"),
        (a.temperature < 0, f"--temperature={a.temperature} must be >= 0 (0 is greedy)"),
        (a.top_k < 0, f"--top_k={a.top_k} must be >= 0 (0: no cut)"),
        (not 0 < a.top_p <= 1, f"--top_p={a.top_p} must be in (0, 1] (1: no cut)"),
        (a.num_samples < 1, f"--num_samples={a.num_samples} must be >= 1")) if cond]
    if bad:
        raise ModelError("; ".join(bad))

def pick_device(name: str = "auto") -> str:
    "`name`, or for auto the best device here; ModelError if this machine has no such device."
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        torch.empty(1, device=name)
    except (RuntimeError, AssertionError) as e:      # no such device, or torch built without it
        raise ModelError(f"--device={name} cannot be used here ({e}); use auto, cpu, cuda, cuda:N or mps") from None
    return name


# %%
args = parser().parse_args(["--top_p=0", "--num_samples=0"])
test_fail(lambda: check_args(args), contains="--top_p=0.0 must be in (0, 1] (1: no cut); --num_samples=0 must be >= 1")
check_args(parser().parse_args([]))
test_eq(pick_device("cpu"), "cpu")
test_fail(lambda: pick_device("tpu"), contains="--device=tpu cannot be used here")


# %% [markdown]
# And `main`: everything that can go wrong for a user is a `ModelError`, printed as one line on
# stderr with exit status 2 (what argparse does for a bad flag).

# %%
#| export
def main(argv: list[str] | None = None) -> list[str]:
    "The `python -m gpt2book.sample` command; returns the texts it printed."
    a = parser().parse_args(argv)
    try:
        check_args(a)
        device = pick_device(a.device)
        if a.model == DEFAULT_MODEL and not Path(a.model).exists():   # a new user's first try: not a hub name
            raise ModelError(f"{a.model}: no such folder: train a model first (`python -m gpt2book.train` writes "
                             f"{DEFAULT_MODEL}), or pass --model=RUN_DIR, a Hugging Face folder or a hub name (gpt2)")
        model, tok = load_model(a.model, device)
        encode_prompt(tok, a.prompt)                     # refuse an unencodable prompt before printing anything
        print(f"{a.model}: {model.num_params():,} parameters, {tok.name} tokenizer ({tok.vocab_size:,} ids), {device}",
              file=sys.stderr)
        gen, texts, n, t0 = torch.Generator(device).manual_seed(a.seed), [], 0, time.perf_counter()
        for i in range(a.num_samples):
            new = continuation(model, tok, a.prompt, a.max_new_tokens, a.temperature, a.top_k or None,
                               a.top_p if a.top_p < 1 else None, gen, not a.no_stop, not a.no_cache)
            texts.append(a.prompt + tok.decode(new)); n += len(new)
            print(texts[-1] + ("\n---------------" if i < a.num_samples - 1 else ""), flush=True)
    except ModelError as e:
        print(f"gpt2book.sample: error: {' '.join(str(e).split())}", file=sys.stderr)
        raise SystemExit(2)
    s = max(time.perf_counter() - t0, 1e-9)
    print(f"{n} tokens in {s:.2f} s ({n / s:.1f} tokens/s, KV cache {'off' if a.no_cache else 'on'})", file=sys.stderr)
    return texts


# %% [markdown]
# In a Jupyter kernel, a notebook also runs as `__main__`; the guard keeps this cell (which makes
# `python -m gpt2book.sample` work) from sampling with the kernel's own arguments.

# %%
#| export
#| eval: false
if __name__ == "__main__" and "ipykernel" not in sys.modules:
    main()

# %% [markdown]
# The help, then the command for real on the run trained above, twice with the same seed:

# %%
print(parser().format_help())

# %%
root = Path.cwd().parent
env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
def cli(*args):
    return subprocess.run([sys.executable, "-m", "gpt2book.sample", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)
r1 = cli(f"--model={speech_run}", "--prompt=ROMEO:\n", "--num_samples=2", "--seed=7", "--max_new_tokens=200")
r2 = cli(f"--model={speech_run}", "--prompt=ROMEO:\n", "--num_samples=2", "--seed=7", "--max_new_tokens=200")
print(r1.stdout, "\n[stderr]", r1.stderr)
test_eq((r1.returncode, r2.returncode), (0, 0))
test_eq(r1.stdout, r2.stdout)                                              # the same seed, the same texts
test_eq(r1.stdout.count("ROMEO:\n"), 2)

# %% [markdown]
# The refusals, each one line: no such folder; a folder that holds no model; a character the
# model cannot encode; a hub name without a network (here `HF_HUB_OFFLINE=1`, and an empty
# Hugging Face cache so that no earlier download answers).

# %%
(work / "not-a-model").mkdir()
cases = {"missing": [f"--model={work / 'no-such-run'}"], "neither": [f"--model={work / 'not-a-model'}"],
         "prompt": [f"--model={speech_run}", "--prompt=Roméo"], "hub": ["--model=gpt2"], "setting": ["--top_p=2"]}
offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(work / "empty-hf-cache")}
for name, args in cases.items():
    env_ = {**env, **offline} if name == "hub" else env
    r = subprocess.run([sys.executable, "-m", "gpt2book.sample", *args], capture_output=True, text=True, env=env_)
    print(f"{name:8} exit {r.returncode}: {r.stderr.strip()[:230]}{'...' if len(r.stderr.strip()) > 230 else ''}")
    test_eq((r.returncode, r.stdout, len(r.stderr.strip().splitlines())), (2, "", 1))
    assert r.stderr.startswith("gpt2book.sample: error: ") and "Traceback" not in r.stderr

# %% [markdown]
# ## Fine-tuning from pretrained weights
#
# Pretraining GPT-2 small takes hours on eight GPUs (chapter 9); OpenAI did it once and published
# the weights. **Fine-tuning** starts from such weights instead of random ones and trains further
# on a smaller text, usually with a smaller learning rate: the model keeps what it learned about
# language and adapts to the new text in minutes. The trainer's `--init_from` does it:
#
# - `--init_from=gpt2` (or `gpt2-medium` ... `gpt2-xl`, or `openai-community/gpt2`): OpenAI's
#   weights from the Hugging Face Hub, through `GPT.from_pretrained` (chapter 5);
# - `--init_from=FOLDER` holding `config.json` and `model.safetensors` (a Hugging Face folder, as
#   `save_pretrained` writes, or `hf download gpt2 config.json model.safetensors --local-dir
#   FOLDER` on a machine with a network): the same path without the download;
# - `--init_from=RUN_DIR`: the newest checkpoint of one of our own runs.
#
# The model's settings then come from the weights: an explicit `--n_layer` (or any shape) that
# disagrees with them is refused, only `dropout`, `attn_impl` and a smaller `block_size` (the
# position table is cut) may change. The data must be in the weights' tokenizer. Optimizer,
# schedule, step count and data position all start fresh: it is a new run, not a resume.
#
# nanoGPT's `config/finetune_shakespeare.py` fine-tunes GPT-2 XL (1.5B) on Tiny Shakespeare in
# GPT-2 tokens: 20 iterations of 32,768 tokens (batch 1 x 32 accumulation steps x 1024 tokens,
# about 2 epochs of the 301,966 training tokens), at a constant learning rate of 3e-5, evaluating
# every 5 iterations on 40 batches, saving only when the validation loss improves. The preset
# `gpt2-124m-ft-shakespeare` follows it with GPT-2 small (124M) for 40 steps, with dropout 0.1,
# on a GPU:

# %%
preset = TRAIN_PRESETS["gpt2-124m-ft-shakespeare"]
print(preset)
pc = config_from_args(["--config", "gpt2-124m-ft-shakespeare"])
print(f"resolved: block_size {pc.block_size}, {pc.batch_size} sequences x {grad_accum_steps(pc)} accumulation steps = "
      f"{pc.total_batch_size:,} tokens per step, {pc.max_steps} steps, learning rate {pc.learning_rate} constant")

# %% [markdown]
# The context a model is fine-tuned at is `block_size`: GPT-2's weights hold 1024 positions, and a
# smaller `block_size` cuts the position table, so the fine-tuned model then reads at most that
# many tokens (`--block_size=1024` keeps them all).
#
# ```bash
# python -m gpt2book.train --config gpt2-124m-ft-shakespeare     # a GPU, and a network the first time (548 MB)
# python -m gpt2book.sample --model=out/gpt2-124m-ft-shakespeare --prompt=$'ROMEO:\n'
# ```
#
# It cannot run here: this machine cannot fetch GPT-2's weights, and `--init_from=gpt2` says so:

# %%
try:
    pretrained_weights("gpt2")
    print("GPT-2's weights are here (a network, or the Hugging Face cache): the preset would start from them")
except TrainError as e:
    print(str(e)[:400], "...")

# %% [markdown]
# ### The same, CPU-sized: from a run folder
#
# A tiny model pretrained for 60 steps on Tiny Shakespeare's characters (as in chapter 9), then
# fine-tuned from its run folder for 40 more with a constant, lower learning rate (1e-3 instead
# of the 4e-3 peak) and dropout 0.1. Both runs evaluate on the same validation batches, so the
# fine-tuning's first evaluation is exactly the pretraining's last: it starts where the
# pretraining ended.

# %%
chars = prepare("shakespeare_char", out_dir=work / "shakespeare_char", progress=False)
tiny = ["--batch_size=16", "--block_size=64", "--eval_iters=20", "--log_interval=5", "--eval_interval=20",
        "--sample_tokens=0", f"--data_dir={chars}"]
pre = run([*tiny, "--n_layer=2", "--n_head=2", "--n_embd=48", "--max_steps=60", "--warmup_steps=10",
           "--checkpoint_interval=60", f"--out_dir={work / 'pre'}"])
ft = run([*tiny, f"--init_from={work / 'pre'}", "--learning_rate=1e-3", "--min_lr=1e-3",
          "--warmup_steps=0", "--dropout=0.1", "--max_steps=40", "--checkpoint_interval=40",
          f"--out_dir={work / 'ft'}"])

# %%
runs = {"pretraining": (read_metrics(work / "pre" / "metrics.jsonl"), 0),
        "fine-tuning (--init_from=pre, lr 1e-3, dropout 0.1)": (read_metrics(work / "ft" / "metrics.jsonl"), 60)}
fig, ax = plt.subplots(figsize=(8, 4))
for (name, (ms, offset)), c in zip(runs.items(), ("C0", "C1")):
    ax.plot([offset + m["step"] for m in ms if "loss" in m], [m["loss"] for m in ms if "loss" in m], c=c, lw=1,
            alpha=0.6, label=f"{name}: train")
    ax.plot([offset + m["step"] for m in ms if "val_loss" in m], [m["val_loss"] for m in ms if "val_loss" in m], "o-",
            c=c, label=f"{name}: validation")
ax.axvline(60, c="gray", ls=":"); ax.set(xlabel="step (fine-tuning shifted by the 60 of pretraining)",
                                         ylabel="loss (nats/char)", title="Fine-tuning starts where pretraining ended")
ax.grid(alpha=0.3); ax.legend(); plt.show()

# %%
pre_val = [m["val_loss"] for m in runs["pretraining"][0] if "val_loss" in m]
ft_ms = list(runs.values())[1][0]
ft_val = [m["val_loss"] for m in ft_ms if "val_loss" in m]
print(f"pretraining: val {pre_val[0]:.3f} -> {pre_val[-1]:.4f}; fine-tuning: val {ft_val[0]:.4f} -> {ft_val[-1]:.3f}")
test_close(ft_val[0], pre_val[-1], eps=1e-5)                   # the same weights, the same validation batches
assert ft_val[-1] < ft_val[0]                                  # and it goes on learning
test_eq({m["lr"] for m in ft_ms if "lr" in m}, {1e-3})         # constant, as asked
ft_model, _ = load_model(work / "ft")
test_eq((ft_model.config.n_embd, ft_model.config.dropout), (48, 0.1))   # the shape from the weights, dropout asked

# %% [markdown]
# A shape that disagrees with the weights is refused, naming it; the same data in GPT-2 tokens
# would be refused too (the weights read characters):

# %%
test_fail(lambda: train(config_from_args([*tiny, f"--init_from={work / 'pre'}", "--n_layer=3",
                                          f"--out_dir={work / 'refused'}"])),
          contains="fixes the model's settings; drop --n_layer=3 (the weights: 2)")
try:
    train(config_from_args([*tiny, f"--init_from={work / 'pre'}", "--n_layer=3", f"--out_dir={work / 'refused'}"]))
except TrainError as e:
    print(e)

# %% [markdown]
# ### From a Hugging Face folder: the path `--init_from=gpt2` takes, offline
#
# `--init_from=gpt2` downloads `config.json` and `model.safetensors` and loads them with
# `GPT.from_pretrained`; a folder holding the two files takes the same path, without the
# download. A stand-in for OpenAI's model, small enough for this CPU: a GPT-2-architecture model
# (biases, tanh GELU, learned positions) with GPT-2's tokenizer, trained 30 steps on Tiny
# Shakespeare in GPT-2 tokens, then written with `save_pretrained` (Hugging Face's layout, the
# matrices transposed to Conv1D). Fine-tuning from that folder starts at the validation loss the
# run ended with, so nothing was lost on the way through Hugging Face's format.

# %%
gpt2_data = prepare("shakespeare", out_dir=work / "shakespeare", progress=False)   # GPT-2 tokens
gtiny = ["--batch_size=4", "--block_size=32", "--eval_iters=8", "--log_interval=5", "--eval_interval=10",
         "--sample_tokens=0", "--dataset=shakespeare", f"--data_dir={gpt2_data}"]
gpre = run([*gtiny, "--n_layer=2", "--n_head=2", "--n_embd=32", "--bias=True", "--gelu=tanh",
            "--max_steps=30", "--warmup_steps=5", "--checkpoint_interval=30",
            f"--out_dir={work / 'gpt2-pre'}"])
gmodel, _ = load_model(work / "gpt2-pre")
gmodel.save_pretrained(work / "hf-folder")
print(sorted(p.name for p in (work / "hf-folder").iterdir()))

# %%
gft = run([*gtiny, f"--init_from={work / 'hf-folder'}", "--learning_rate=3e-4", "--min_lr=3e-4",
           "--warmup_steps=0", "--dropout=0.1", "--max_steps=10", "--checkpoint_interval=10",
           f"--out_dir={work / 'gpt2-ft'}"])
gvals = [m["val_loss"] for m in read_metrics(work / "gpt2-ft" / "metrics.jsonl") if "val_loss" in m]
print(f"trained run: val {gpre['val_loss']:.4f}; fine-tuned from the Hugging Face folder: val {gvals[0]:.4f} at its "
      f"step 0, {gvals[-1]:.4f} after {gft['step']} steps")
test_close(gvals[0], gpre["val_loss"], eps=1e-5)
print(complete(*load_model(work / "gpt2-ft"), "ROMEO:", max_new_tokens=30, generator=torch.Generator().manual_seed(0)))

# %% [markdown]
# With a network and a GPU, `--init_from=gpt2` takes the same steps with OpenAI's 124M
# parameters. And a fine-tuned run samples like any other (here the character model fine-tuned
# above: 100 steps of 62K parameters write letters, spaces and line breaks, hardly words yet):

# %%
r = cli(f"--model={work / 'ft'}", "--prompt=ROMEO:\n", "--max_new_tokens=60", "--seed=1")
print(r.stdout, r.stderr); test_eq(r.returncode, 0)
shutil.rmtree(work)
torch.set_num_threads(threads0)
