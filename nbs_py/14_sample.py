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
import dataclasses
import math
import sys
import time
from pathlib import Path

import torch

from gpt2book.checkpoint import WHERE, load_model
from gpt2book.common import (CommandError, SettingError, check_settings, parse_settings, resolve_device, setting,
                             settings_parser, user_errors)
from gpt2book.model import continuation, looks_local

# %%
import contextlib
import io
import json
import shutil
import tempfile

import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail
from gpt2book.common import run_main

from gpt2book.loader import load_meta
from gpt2book.model import GPT, GPTConfig, make_model, model_config
import gpt2book.positions  # chapter 11: rotary positions (pos="rope"), which the cache test below covers too
from gpt2book.model import GREEDY_BELOW, complete, next_token_probs, sample_next
from gpt2book.prepare import SOURCES, fetch, prepare
from gpt2book.config import TRAIN_PRESETS, config_from_args, make_config
from gpt2book.runlog import read_metrics
from gpt2book.train import train

# %% [markdown]
# ## Loading a model
#
# A model can come from three places, and `load_model` takes any of them:
#
# - **a run folder** of the trainer (chapter 9): the newest checkpoint that can be read holds the
#   model's settings, its weights and its tokenizer (a run saved before checkpoints carried the
#   tokenizer falls back to the `meta.json` of the data folder its `config.json` names);
# - **a Hugging Face folder** (`config.json` + `model.safetensors`, as `save_pretrained` writes
#   it), with GPT-2's tokenizer, or the one its `config.json` names;
# - **a hub name** such as `gpt2`, downloaded by `huggingface_hub` where there is a network.
#
# Chapter 9 already reads all three: `load_weights` (in `gpt2book.checkpoint`) returns the model's
# settings, a state dict and the tokenizer's description, because the trainer's `--init_from`
# needs them too, and `load_model` (there too) is the thin layer on top: build the model (with
# whatever variants later chapters registered), load the weights, make the tokenizer, and return
# the model in eval mode on `device`. This chapter and the next use it as it is.
#
# Whatever goes wrong is a `CommandError` (appendix B) whose message says what to pass instead:
# a file given where a folder is expected (a checkpoint `ckpt_*.pt` itself, say), a folder that
# holds neither kind of model (a run stopped before its first checkpoint), a typo of a folder (never
# sent to the Hub as a name). `load_weights` skips a damaged checkpoint for the one before it,
# reporting each on stderr; when none is left, those reports become part of the one-line error
# instead. Weights that hold NaN or infinity (a run that diverged) are refused before anything
# samples from them, and weights that do not fit their own settings (`load_state`) too.

# %% [markdown]
# Each of them, on a tiny model written to a temporary folder: a Hugging Face folder loads (with
# GPT-2's tokenizer, in eval mode; a path may also start with `~`, the home folder); a missing
# folder, a file, an empty folder, a truncated `model.safetensors` and a damaged checkpoint are
# refused, each with a message that says what happened.

# %%
tmp = Path(tempfile.mkdtemp())
torch.manual_seed(0)
GPT(GPTConfig(block_size=32, vocab_size=50257, n_layer=1, n_head=2, n_embd=16)).save_pretrained(tmp / "hf")
m, tok = load_model(tmp / "hf")
test_eq((m.config.n_layer, tok.name, m.training), (1, "gpt2", False))
(tmp / "empty").mkdir()
(tmp / "damaged-hf").mkdir()
shutil.copy(tmp / "hf" / "config.json", tmp / "damaged-hf")
(tmp / "damaged-hf" / "model.safetensors").write_bytes((tmp / "hf" / "model.safetensors").read_bytes()[:5000])
(tmp / "damaged-run").mkdir()
(tmp / "damaged-run" / "ckpt_0000100.pt").write_bytes(b"not a checkpoint")
for spec, says in [(tmp / "nothing-here", "no such folder"), (tmp / "hf" / "config.json", "is a file"),
                   (tmp / "empty", "holds no model"), (tmp / "damaged-hf", "cannot read its weights"),
                   (tmp / "damaged-run", "holds no readable checkpoint")]:
    try:
        load_model(spec)
        raise AssertionError(f"{spec} was loaded")
    except CommandError as e:
        print(f"{spec.name:15} {str(e).replace(str(tmp), '$TMP')[:200]}")
        assert says in str(e), (spec, e)
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
    m = make_model(model_config(block_size=32, vocab_size=100, n_layer=2, n_head=4, n_embd=32, pos=pos))
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
# recorded result: the statements above, checked against the committed file
test_eq(gen["same_tokens"], True)                                         # the same 368 greedy tokens
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
assert thr["2"]["cached_step_s"] > thr["1"]["cached_step_s"]              # recorded result: on a busy machine

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
# Temperature 0 itself cannot divide anything: `sample_next` (chapter 5) takes the argmax instead,
# and it does so for every temperature below `GREEDY_BELOW` ($10^{-6}$), because dividing float32
# logits by a smaller number can overflow them to infinity, and a softmax of infinities is NaN. So
# a tiny temperature is exactly greedy, never a crash; `next_token_probs`, which has no argmax to
# fall back on, refuses such a temperature. A NaN temperature is refused everywhere (a NaN compares
# false with everything, so a careless check would let it through), and so are logits that hold
# NaN: they come from damaged weights or a diverged run, and sampling from them would write
# garbage without saying why.

# %%
for t in (0, 1e-9, GREEDY_BELOW / 2):
    test_eq(sample_next(logits, temperature=t), logits.argmax(-1, keepdim=True))      # greedy
test_fail(lambda: next_token_probs(logits, temperature=1e-9), contains="(0 is greedy)")
test_fail(lambda: sample_next(logits, temperature=float("nan")), contains="must be a finite number >= 0")
test_fail(lambda: sample_next(torch.full_like(logits, float("nan"))), contains="logits hold NaN")
print(f"at 1e-3 the likeliest token already has {next_token_probs(logits, temperature=1e-3).max():.6f} of the mass")

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
# **Ties.** Top-k keeps every token whose logit is at least the $k$-th largest, so a token that ties
# with the $k$-th is kept too, and $k$ is then a minimum, not an exact count. This is what
# `transformers` does as well; the alternative, keeping exactly $k$, would have to pick among equal
# tokens by their position in the vocabulary, which means nothing. Real logits almost never tie;
# made-up ones show it:

# %%
tied = torch.tensor([[3.0, 2.0, 1.0, 2.0, 2.0, 0.5]])                       # (1, 6): three tokens tie at 2.0
print("top_k=2 keeps", [round(q, 3) for q in next_token_probs(tied, top_k=2)[0].tolist()])
test_eq(int((next_token_probs(tied, top_k=2) > 0).sum()), 4)              # the first, and all three at 2.0
test_eq(int((next_token_probs(tied, top_k=1) > 0).sum()), 1)              # no tie with the first: greedy

# %% [markdown]
# **The order** matters when the controls are combined: `next_token_probs` divides by the
# temperature first, then cuts to the top $k$, then takes the nucleus of what is left (its mass
# measured after the top-k cut). That is the order `transformers` applies its
# `TemperatureLogitsWarper`, `TopKLogitsWarper` and `TopPLogitsWarper` in, and
# `tests/test_sample.py` checks our probabilities against theirs, an implementation written by
# others, on random logits over a grid of temperatures, $k$ and $p$: the same tokens kept, and the
# same probabilities to within $10^{-6}$ (the largest difference is $1.2 \times 10^{-7}$, float32's
# rounding).

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
ends = lambda seed: model.generate(start, 500, temperature=0.8, generator=torch.Generator().manual_seed(seed),
                                   stop_token=tok.eot)[0, -1].item() == tok.eot
seed = next(s for s in range(5, 45) if ends(s))     # the first seed from 5 whose speech ends within 500 characters
g = lambda: torch.Generator().manual_seed(seed)
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
    x, _ = tf.wpe(tf.wte(idx))                                     # (1, T, C): + learned positions (chapter 5)
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
# same seed gives the same texts), stop each at end-of-text, and print them. The text itself comes
# from chapter 5's `continuation` (the ids the model writes after a prompt, cut before
# end-of-text) and `complete` (the prompt and that continuation as text), which the trainer's
# samples use too: one implementation of "text in, text out".
#
# One thing is left to check first, the prompt: a character model can only encode the characters
# of its training text, and its tokenizer raises a `ValueError` on any other. The command checks
# the prompt before it prints anything and says which character it is, and why:

# %%
#| export
def check_prompt(tok, prompt: str) -> None:
    "A CommandError, naming the character, if `tok` cannot encode `prompt` (a character model knows only its own)."
    try:
        tok.encode(prompt)
    except ValueError as e:                      # the character tokenizer: a character it has never seen
        raise CommandError(f"--prompt cannot be encoded: {str(e).split(';')[0]}; this character model knows only "
                           f"the characters of its training text") from None


# %%
check_prompt(tok, "ROMEO:\n")
test_fail(lambda: check_prompt(tok, "Roméo"), contains="character 'é' (U+00E9) at position 3")
text1 = complete(model, tok, "", max_new_tokens=500, temperature=0.8, top_k=None, generator=g())
test_eq(text1, tok.decode(stopped[1:-1]))                                 # generate's draws, cut at end-of-text
print(complete(model, tok, "JULIET:\n", max_new_tokens=200, generator=torch.Generator().manual_seed(0)))

# %% [markdown]
# The command line, nanoGPT's `sample.py` with a `--help`: the same defaults (a newline as the
# prompt, temperature 0.8, top-k 200, seed 1337), and `--model` takes any of the three places a
# model can be. It prints the texts on stdout and what it loaded and how fast it ran on stderr.
# Its options are the fields of `SampleSettings` (appendix B's `settings_parser`), checked when the
# command line is read: a number out of range, and a `--model` that names a path that is not there
# (or a file), are usage errors, one line with exit status 2, before anything is loaded. The checks
# are "must be" conditions that a NaN fails too (`nan < 0` is false, so `temperature < 0` alone
# would let `--temperature=nan` through; appendix B's `check_settings` refuses it as not finite).

# %%
#| export
SAMPLE_EXAMPLES = """examples:
  python -m gpt2book.sample                                   # out/cpu, the run `python -m gpt2book.train` writes
  python -m gpt2book.sample --prompt=$'ROMEO:\\n' --num_samples=3 --seed=7
  python -m gpt2book.sample --model=out/gpt2-124m-ft-shakespeare --prompt="To be"
  python -m gpt2book.sample --model=gpt2 --prompt="Hello, I'm a language model," --top_p=0.9   # OpenAI's GPT-2
  python -m gpt2book.sample --temperature=0 --no_cache         # greedy, recomputing the context every token"""

PROG = "python -m gpt2book.sample"
DEFAULT_MODEL = "out/cpu"   # where `python -m gpt2book.train` writes its CPU default

def check_model_spec(spec: str) -> None:
    "SettingError if `spec` names a local path that is not there, or a file: found when the command line is read."
    path = Path(spec).expanduser()
    if path.is_file():
        raise SettingError(f"--model={spec} is a file; pass the folder that holds the model: {WHERE}")
    if not path.exists() and spec == DEFAULT_MODEL:      # a new user's first try: not a hub name
        raise SettingError(f"--model={spec}: no such folder: train a model first (`python -m gpt2book.train` writes "
                           f"{DEFAULT_MODEL}), or pass --model=RUN_DIR, a Hugging Face folder or a hub name")
    if not path.exists() and looks_local(spec):          # a typo of a folder is never sent to the Hub
        raise SettingError(f"--model={spec}: no such folder; pass {WHERE}")


# %%
#| export
@dataclasses.dataclass(kw_only=True)
class SampleSettings:
    "The settings of `python -m gpt2book.sample`."
    model: str = setting(DEFAULT_MODEL, "a run folder (its newest checkpoint), a Hugging Face folder (config.json + "
                         "model.safetensors) or a hub name such as gpt2")
    prompt: str = setting("\n", 'the text to continue ("" starts a new document)')
    max_new_tokens: int = setting(300, "tokens per sample at most", low=0)
    temperature: float = setting(0.8, "< 1 sharper, > 1 flatter, 0 greedy", low=0.0)
    top_k: int = setting(200, "sample from the k likeliest tokens; 0: all", low=0)
    top_p: float = setting(1.0, "sample from the likeliest tokens that together reach this probability, in (0, 1]; "
                           "1: all", low=0.0, high=1.0)
    num_samples: int = setting(1, "texts to write", low=1)
    seed: int = setting(1337, "the same seed writes the same texts")
    device: str = setting("auto", "auto (cuda if PyTorch sees a GPU, else cpu) | cpu | cuda | cuda:N | mps")
    no_cache: bool = setting(False, "recompute the whole context for every token (slow)")
    no_stop: bool = setting(False, "go on past end-of-text")

    def __post_init__(self):
        check_settings(self)
        if self.top_p == 0: raise SettingError("top_p=0.0 must be above 0 (1: no cut)")
        check_model_spec(self.model)

def parser():
    "The command line of `python -m gpt2book.sample`, made from SampleSettings."
    return settings_parser(PROG, SampleSettings, "Sample text from a GPT (chapter 14 of gpt2book).", SAMPLE_EXAMPLES)


# %%
test_eq(SampleSettings(model=str(speech_run)).top_k, 200)
test_fail(lambda: SampleSettings(top_p=0), contains="top_p=0.0 must be above 0")
test_fail(lambda: SampleSettings(temperature=float("nan")), contains="temperature=nan must be a finite number")
test_fail(lambda: SampleSettings(model=str(work / "no-such-run")), contains="no such folder")


# %% [markdown]
# And `main`. Everything else a user can cause (a folder that holds no model, a damaged file,
# weights that hold NaN, a prompt the tokenizer cannot encode, no network for a hub name, a device
# this machine lacks) is a `CommandError`, and logits that still come out NaN are chapter 5's
# sampler's `ValueError`; appendix B's `user_errors` prints either as one line on stderr, with exit
# status 1: no traceback. The device is resolved by appendix B's `resolve_device`, as in every command.

# %%
#| export
def main(argv: list[str] | None = None) -> list[str]:
    "The `python -m gpt2book.sample` command; returns the texts it printed."
    a = parse_settings(parser(), SampleSettings, argv)
    with user_errors(PROG, ValueError):       # ValueError: sample_next refusing NaN logits (chapter 5)
        device = resolve_device(a.device)
        model, tok = load_model(a.model, device)
        check_prompt(tok, a.prompt)              # refuse an unencodable prompt before printing anything
        print(f"{a.model}: {model.num_params():,} parameters, {tok.name} tokenizer ({tok.vocab_size:,} ids), {device}",
              file=sys.stderr)
        gen, texts, n, t0 = torch.Generator(device).manual_seed(a.seed), [], 0, time.perf_counter()
        for i in range(a.num_samples):
            new = continuation(model, tok, a.prompt, a.max_new_tokens, a.temperature, a.top_k or None,
                               a.top_p if a.top_p < 1 else None, gen, not a.no_stop, not a.no_cache)
            texts.append(a.prompt + tok.decode(new)); n += len(new)
            print(texts[-1] + ("\n---------------" if i < a.num_samples - 1 else ""), flush=True)
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
# The help, then the command on the run trained above, in this process (what `python -m
# gpt2book.sample ...` does in a shell), twice with the same seed. `cli` returns what the command
# printed on stdout and stderr, and its exit status.

# %%
cli = lambda *args: run_main(main, args)                 # appendix B: (stdout, stderr, exit status)

print(cli("--help")[0])

# %%
args = [f"--model={speech_run}", "--prompt=ROMEO:\n", "--num_samples=2", "--max_new_tokens=200"]
out1, err1, _ = cli(*args, "--seed=7")
out2, _, _ = cli(*args, "--seed=7")
print(out1, "\n[stderr]", err1.replace(str(work), "$WORK"))
test_eq(out1, out2)                                                        # the same seed, the same texts
test_eq(out1.count("ROMEO:\n"), 2)
assert cli(*args, "--seed=8")[0] != out1                                  # another seed, other texts

# %% [markdown]
# The refusals, each one line on stderr and nothing on stdout: settings out of range, no such
# folder and a file where a folder belongs (exit status 2, before anything is loaded); then, with
# exit status 1, a folder that holds no model, a truncated checkpoint, a character the model cannot
# encode, a device this machine lacks, and a hub name that cannot be fetched (a made-up one, so
# that no download can start even where there is a network).

# %%
(work / "not-a-model").mkdir()
(work / "truncated-run").mkdir()
ckpt = sorted(speech_run.glob("ckpt_*.pt"))[-1]
(work / "truncated-run" / ckpt.name).write_bytes(ckpt.read_bytes()[:100_000])
cases = {"numbers": (["--temperature=nan", "--top_p=2"], 2),
         "missing": ([f"--model={work / 'no-such-run'}"], 2), "file": ([f"--model={ckpt}"], 2),
         "no model": ([f"--model={work / 'not-a-model'}"], 1), "truncated": ([f"--model={work / 'truncated-run'}"], 1),
         "prompt": ([f"--model={speech_run}", "--prompt=Roméo"], 1),
         "device": ([f"--model={speech_run}", "--device=cuda:99"], 1),
         "hub": (["--model=gpt2book-examples/no-such-model"], 1)}
for name, (args, status) in cases.items():
    out, err, code = cli(*args)
    print(f"{name:9} exit {code}: {err.strip().replace(str(work), '$WORK')[:300]}")
    test_eq((code, out, len(err.strip().splitlines())), (status, "", 1))
    assert err.startswith(f"{PROG}: error: ") and "Traceback" not in err

# %% [markdown]
# ## Fine-tuning from pretrained weights
#
# Pretraining GPT-2 small takes hours on eight GPUs (chapter 9); OpenAI did it once and published
# the weights. **Fine-tuning** starts from such weights instead of random ones and trains further
# on a smaller text, usually with a smaller learning rate: the model keeps what it learned about
# language and adapts to the new text in minutes. The trainer's `--init_from` does it:
#
# - `--init_from=gpt2` (or `gpt2-medium` ... `gpt2-xl`, or `openai-community/gpt2`): OpenAI's
#   weights from the Hugging Face Hub, read by chapter 9's `load_weights`, as `load_model` reads them;
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
accum = preset["total_batch_size"] // (preset["batch_size"] * preset["block_size"])
print(f"{preset['batch_size']} sequences x {preset['block_size']} tokens x {accum} accumulation steps = "
      f"{preset['total_batch_size']:,} tokens per step, {preset['max_steps']} steps, learning rate "
      f"{preset['learning_rate']} constant")
test_eq(accum * preset["batch_size"] * preset["block_size"], preset["total_batch_size"])

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
# Without a network (and without GPT-2 in the Hugging Face cache) it cannot even be configured:
# the weights decide the model's settings, so the preset needs GPT-2's `config.json` at once, and
# says so:

# %%
try:
    ft_cfg = make_config("gpt2-124m-ft-shakespeare")
    print(f"GPT-2's settings are here (a network, or the Hugging Face cache): {ft_cfg.model}")
except CommandError as e:                     # offline: the download failed (a SettingError is one too)
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
refused = lambda: make_config(init_from=str(work / "pre"), n_layer=3, out_dir=str(work / "refused"))
test_fail(refused, contains="fixes the model's settings; drop --n_layer=3 (the weights: 2)")
try:
    refused()
except SettingError as e:
    print(str(e).replace(str(work), "$WORK"))
assert not (work / "refused").exists()                         # refused while configuring: nothing written

# %% [markdown]
# ### From a Hugging Face folder: the path `--init_from=gpt2` takes, offline
#
# `--init_from=gpt2` downloads `config.json` and `model.safetensors` and reads them with
# `load_weights`; a folder holding the two files takes the same path, without the download. A
# stand-in for OpenAI's model, small enough for this CPU: a GPT-2-architecture model (biases, tanh
# GELU, learned positions) with GPT-2's tokenizer, trained 30 steps on Tiny Shakespeare in GPT-2
# tokens, then written with `save_pretrained` (Hugging Face's layout, the matrices transposed to
# Conv1D). Fine-tuning from that folder starts at the validation loss the run ended with, so
# nothing was lost on the way through Hugging Face's format.

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
out, err, status = cli(f"--model={work / 'ft'}", "--prompt=ROMEO:\n", "--max_new_tokens=60", "--seed=1")
print(out, err.replace(str(work), "$WORK")); test_eq(status, 0)
shutil.rmtree(work)
torch.set_num_threads(threads0)
