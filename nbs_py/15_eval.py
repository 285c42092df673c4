# %% [markdown]
# # Evaluation: HellaSwag and WikiText perplexity
#
# > Scoring a language model on a benchmark it was never trained for: HellaSwag's four endings, two ways (build-nanogpt's completion style and the lm-evaluation-harness's), perplexity with a sliding window, WikiText-2's conventions and which published figure each matches, bits per byte of any text, and `python -m gpt2book.eval`.

# %%
#| default_exp eval

# %%
#| export
import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from gpt2book.checkpoint import load_model
from gpt2book.common import (CommandError, SettingError, check_settings, parse_settings, resolve_device, setting,
                             settings_parser, user_errors)
from gpt2book.config import TRAIN_EXTENSIONS
from gpt2book.fetch import cache_dir, cached_file, local_copy, mirror_dir
from gpt2book.files import atomic_write_text
from gpt2book.model import eval_mode
from gpt2book.sample import check_model_spec
from gpt2book.tokenizer import BPETokenizer, CharTokenizer, GPT2Tokenizer
from gpt2book.step import TrainError
from gpt2book.train import HOOKS

# %%
import io
import tempfile
from types import SimpleNamespace

import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail
from gpt2book.common import run_main

from gpt2book.config import train_config_class
from gpt2book.prepare import SOURCES, fetch
from gpt2book.model import GPT, GPTConfig

# %% [markdown]
# The validation loss of chapter 9 says how well a model predicts text like its training data. It
# does not say whether a model trained on one corpus is better than one trained on another, or
# than GPT-2: the losses are measured on different texts, often with different tokenizers. Two
# fixed yardsticks answer that question, and this chapter builds both:
#
# - **HellaSwag** (Zellers et al., 2019): 10,042 validation items, each a context and four
#   endings, one of them right. The model never sees the four endings as a question: it scores each
#   one by how likely it finds it after the context, and picks the likeliest. Random guessing gets
#   0.25. GPT-2 small's published `acc_norm` is 0.2955 scored build-nanogpt's way and 0.3114 the
#   lm-evaluation-harness's way (quoted with their sources below); build-nanogpt's GPT-2
#   reproduction uses it to track training.
# - **WikiText-2 perplexity**: how surprised the model is, token by token, by Wikipedia articles
#   it was not trained on; which published number it can be set beside depends on three choices,
#   spelled out below. To compare models with different tokenizers, it is also reported per byte
#   and per character, and per word.
# - **Bits per byte of any text**: the one score that compares models whatever their tokenizer
#   (chapter 16 uses it to compare vocabularies).
#
# ```bash
# python -m gpt2book.eval hellaswag --model gpt2 --data val                  # GPT-2 small, build-nanogpt's way
# python -m gpt2book.eval hellaswag --model gpt2 --data val --style harness  # the lm-evaluation-harness's way
# python -m gpt2book.eval wikitext --model gpt2 --split test                 # perplexity, word-level too, bits per byte
# python -m gpt2book.eval wikitext --model gpt2 --join hf --stride 512       # the Hugging Face guide's convention
# python -m gpt2book.eval wikitext --model gpt2 --join harness               # lm-evaluation-harness's convention
# python -m gpt2book.eval text --model out/cpu --files FILE.txt              # bits per byte of any text
# ```
#
# The plan: the data and its format; turning an item into token sequences, in each of the two
# styles; scoring those sequences, including ones longer than the model's context; the two
# accuracies and why the two styles disagree; HellaSwag during training; perplexity with a sliding
# window and its picture; the command line; and last the numbers measured here.

# %% [markdown]
# ## HellaSwag: the items
#
# Each line of `hellaswag_val.jsonl` (in `rowanz/hellaswag`) is one item. Here is the first,
# as build-nanogpt's `hellaswag.py` quotes it in its docstring:
#
# ```json
# {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
#  "ctx": "A man is sitting on a roof. he", "split": "val", "split_type": "indomain", "label": 3,
#  "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.",
#              "starts pulling up roofing on a roof."], "source_id": "activitynet~v_-JhWjGDPHMY"}
# ```
#
# `ctx` is the context, `ctx_a` and `ctx_b` the same context cut before its last, unfinished
# sentence (`ctx == ctx_a + " " + ctx_b` when `ctx_b` is not empty), `endings` the four candidates and
# `label` the right one. The items come from two sources: ActivityNet video captions like this
# one, and WikiHow articles, whose text carries tags such as `[header]`, `[title]` and `[step]`.
#
# The validation file is downloaded on first use into the cache (`gpt2book.fetch.cache_dir()`), or
# read from `$GPT2BOOK_MIRROR/hellaswag/hellaswag_val.jsonl` on a machine without a network; any
# other file of the same format can be passed instead. Reading checks the format, so that a wrong
# file fails at once with a message rather than after an hour of scoring.

# %%
#| export
HELLASWAG_VAL_URL = "https://raw.githubusercontent.com/rowanz/hellaswag/master/data/hellaswag_val.jsonl"
HELLASWAG_VAL_N = 10_042
HELLASWAG_STYLES = ("completion", "harness")
HELLASWAG_FIELDS = {"completion": ("ctx", "endings", "label"),    # what each style reads from an item
                    "harness": ("activity_label", "ctx_a", "ctx_b", "endings", "label")}

def hellaswag_path(data="val") -> Path:
    "The local path of HellaSwag file `data`: `val` (mirror, cache, or downloaded), or a jsonl file of HellaSwag items."
    if data != "val":
        if not Path(data).expanduser().is_file():
            raise SettingError(f"--data={data}: no such file; pass a jsonl file of HellaSwag items, or `val` for "
                               f"the validation set")
        return Path(data).expanduser()
    try:
        return cached_file("hellaswag/hellaswag_val.jsonl", HELLASWAG_VAL_URL)  # no sha256 we could trust: unchecked
    except RuntimeError as e:
        raise RuntimeError(f"{e} The file is hellaswag_val.jsonl ({HELLASWAG_VAL_N:,} lines) from rowanz/hellaswag on "
                           f"GitHub; or pass a file of HellaSwag items instead of `val`.") from None


# %% [markdown]
# `read_hellaswag` checks each line for what the chosen style reads: the completion style needs
# `ctx`, `endings` and `label`; the harness style builds its prompt from `activity_label`, `ctx_a`
# and `ctx_b` instead. A file without them (for instance a text extraction of HellaSwag that kept
# only `ctx`) can be scored in the completion style only, and the error says so.

# %%
#| export
def _check_item(item, style, where) -> dict:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: a HellaSwag item is a JSON object, got {type(item).__name__}")
    missing = [k for k in HELLASWAG_FIELDS[style] if k not in item]
    if missing:
        hint = (" This file lacks the fields the lm-evaluation-harness prompt is built from (a text extraction?): "
                "score it with --style completion, or use the original file (--data val).") \
            if style == "harness" and set(missing) & {"ctx_a", "ctx_b", "activity_label"} else ""
        raise ValueError(f"{where}: the {style} style needs the field(s) {missing}, which this item lacks.{hint}")
    endings, label = item["endings"], item["label"]
    if not (isinstance(endings, list) and len(endings) == 4 and all(isinstance(e, str) for e in endings)):
        raise ValueError(f"{where}: `endings` must be a list of 4 strings, got {endings!r:.200}")
    if isinstance(label, str) and label.strip().isdigit():
        label = int(label)                     # the Hugging Face copy stores labels as strings
    if isinstance(label, bool) or label not in range(4):
        raise ValueError(f"{where}: `label` must be 0, 1, 2 or 3, got {label!r}")
    text = [k for k in HELLASWAG_FIELDS[style] if k not in ("endings", "label") and not isinstance(item[k], str)]
    if text:
        raise ValueError(f"{where}: field(s) {text} must be strings")
    return {**{k: item[k] for k in HELLASWAG_FIELDS[style]}, "label": label}


# %%
#| export
def read_hellaswag(path, style="completion", expect_n=None) -> list[dict]:
    "The items of a HellaSwag jsonl file, checked for the fields `style` needs (and their number, if `expect_n`)."
    if style not in HELLASWAG_STYLES:
        raise ValueError(f"style={style!r} is unknown; use one of {list(HELLASWAG_STYLES)}")
    st = Path(path).stat()
    return _read_hellaswag(str(path), style, expect_n, st.st_mtime_ns, st.st_size)

@functools.lru_cache(maxsize=4)   # evaluations during training read the same file again and again
def _read_hellaswag(path, style, expect_n, mtime_ns, size) -> list[dict]:
    items = []
    with open(path, encoding="utf-8") as f:
        try:
            lines = list(f)
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}): a HellaSwag file holds one "
                             f"JSON object a line") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {i}: not JSON ({e}); a HellaSwag file holds one JSON object a line") from None
        items.append(_check_item(item, style, f"{path}, line {i}"))
    if not items:
        raise ValueError(f"{path} holds no HellaSwag items")
    if expect_n is not None and len(items) != expect_n:
        raise ValueError(f"{path} holds {len(items):,} items, not the {expect_n:,} of HellaSwag's validation set: "
                         f"a damaged or different file; delete it (it is downloaded again) or replace it")
    return items


# %% [markdown]
# A small file in the format, written here: the item above and a WikiHow-style item made up for
# this chapter (the real WikiHow items look like it, tags included), both with all the fields.

# %%
tmp = Path(tempfile.mkdtemp())
ITEMS = [
    {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
     "ctx": "A man is sitting on a roof. he", "split": "val", "split_type": "indomain", "label": 3,
     "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.",
                 "starts pulling up roofing on a roof."], "source_id": "activitynet~v_-JhWjGDPHMY"},
    {"ind": 1, "activity_label": "Home and Garden", "ctx_a": "[header] How to water a cactus [title] Check the soil.",
     "ctx_b": "[step] Push a finger into the soil",
     "ctx": "[header] How to water a cactus [title] Check the soil. [step] Push a finger into the soil",
     "split": "val", "split_type": "zeroshot", "label": 0,
     "endings": ["up to the first knuckle. [substeps] If it is dry, water it.", "and sing to the cactus.",
                 "[title] Paint the pot. [step] Any colour will do.", "of the garden next door."],
     "source_id": "made-up"},
]
hs_file = tmp / "hellaswag_mini.jsonl"
hs_file.write_text("".join(json.dumps(it) + "\n" for it in ITEMS))
test_eq(len(read_hellaswag(hs_file, "harness")), 2)
test_eq(read_hellaswag(hs_file)[0]["label"], 3)
text_only = tmp / "text_only.jsonl"   # like a text extraction: no ctx_a, ctx_b
text_only.write_text("".join(json.dumps({k: it[k] for k in ("ctx", "endings", "label")}) + "\n" for it in ITEMS))
test_eq(len(read_hellaswag(text_only, "completion")), 2)
test_fail(lambda: read_hellaswag(text_only, "harness"), contains="--style completion")
test_fail(lambda: read_hellaswag(hs_file, expect_n=HELLASWAG_VAL_N), contains="not the 10,042")
test_fail(lambda: hellaswag_path(tmp / "nothing.jsonl"), contains="no such file")


# %% [markdown]
# ## From an item to token sequences, two ways
#
# A causal language model scores a string by the sum of the log-probabilities of its tokens, each
# given all the tokens before it. To score an ending, we feed the context followed by the ending
# and add up the log-probabilities of the ending's tokens only. What exactly "the context" and
# "the ending" are is a choice, and two choices are in common use.
#
# **The completion style** (build-nanogpt's `hellaswag.py`, and llm.c's C port of it): the context
# is `ctx` as it is, the ending is `" " + ending` (GPT-2's tokens carry their leading space), each
# tokenized on its own, and the sequence is their concatenation.

# %%
#| export
def render_completion(item, tok):
    "(context tokens, 4 ending tokens, 4 normalisers): ctx, then ' ' + ending, tokenized apart; normalised per token."
    ctx = tok.encode(item["ctx"])
    ends = [tok.encode(" " + e) for e in item["endings"]]
    return ctx, ends, [len(e) for e in ends]


# %% [markdown]
# **The harness style** (EleutherAI's lm-evaluation-harness, task `hellaswag`): the prompt is
# `activity_label + ": " + ctx_a + " " + ctx_b.capitalize()`, and prompt and endings pass through a
# clean-up of WikiHow's tags. Its `lm_eval/tasks/hellaswag/utils.py` reads, in substance:
#
# ```python
# def preprocess(text):
#     text = text.strip()
#     # NOTE: Brackets are artifacts of the WikiHow dataset portion of HellaSwag.
#     text = text.replace(" [title]", ". ")
#     text = re.sub("\\[.*?\\]", "", text)
#     text = text.replace("  ", " ")
#     return text
#
# def process_docs(dataset):          # per item:
#     ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
#     query = preprocess(doc["activity_label"] + ": " + ctx)
#     choices = [preprocess(ending) for ending in doc["endings"]]
# ```
#
# The task is `multiple_choice` with the default `target_delimiter` `" "`, so each continuation
# is `" " + choice`. The harness's Hugging Face model (`lm_eval/models/huggingface.py`,
# `_encode_pair`) moves any trailing spaces of the context onto the continuation, tokenizes
# context + continuation as one string and takes as the continuation's tokens what follows the
# context's own tokens. We write the same steps:

# %%
#| export
def harness_preprocess(text: str) -> str:
    "lm-evaluation-harness's HellaSwag `preprocess`: strip, ' [title]' -> '. ', drop [tags], collapse double spaces."
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")

def harness_prompt(item) -> tuple[str, list[str]]:
    "(query, 4 choices) as lm-evaluation-harness's HellaSwag task builds them."
    ctx = item["ctx_a"] + " " + item["ctx_b"].capitalize()
    return harness_preprocess(item["activity_label"] + ": " + ctx), [harness_preprocess(e) for e in item["endings"]]

def _encode_pair(tok, context, continuation):
    "The harness's split of context + continuation into tokens: trailing spaces move right, one tokenization."
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    ctx = tok.encode(context)
    return ctx, tok.encode(context + continuation)[len(ctx):]

def render_harness(item, tok):
    "(context tokens, 4 continuation tokens, 4 normalisers): the harness's prompt; normalised per character of the choice."
    query, choices = harness_prompt(item)
    pairs = [_encode_pair(tok, query, " " + c) for c in choices]
    return pairs[0][0], [cont for _, cont in pairs], [len(c) for c in choices]

RENDER = {"completion": render_completion, "harness": render_harness}

# %% [markdown]
# The two prompts for the item above, and the clean-up at work on the WikiHow-style item:

# %%
gpt2_tok = GPT2Tokenizer()
print("completion:", repr(ITEMS[0]["ctx"]), "+", repr(" " + ITEMS[0]["endings"][3]))
print("harness:   ", repr(harness_prompt(ITEMS[0])[0]), "+", repr(" " + harness_prompt(ITEMS[0])[1][3]))
q, ch = harness_prompt(ITEMS[1])
print("\nWikiHow item, raw ctx:", repr(ITEMS[1]["ctx"]))
print("harness query:        ", repr(q))
print("harness choices:      ", ch)
test_eq(harness_prompt(ITEMS[0])[0], "Roof shingle removal: A man is sitting on a roof. He")
test_eq(q, "Home and Garden: How to water a cactus. Check the soil. push a finger into the soil")
test_eq(ch, ["up to the first knuckle. If it is dry, water it.", "and sing to the cactus.",
             " Paint the pot. Any colour will do.", "of the garden next door."])

# %% [markdown]
# The harness's prompt starts with the activity label and capitalises the unfinished sentence
# ("He"); the completion style sees neither. The clean-up has quirks, and we keep them, since
# they are part of the numbers the harness reports: `str.capitalize` lowercases all but the first
# character, so a `ctx_b` that starts with a tag ends up as "push"; and the strip comes before
# the tags go, so a choice that starts with a tag keeps a leading space (third choice).
#
# In GPT-2's tokens the two renderings differ, and so do the lengths that the accuracies will be
# normalised by: tokens in the completion style, characters in the harness style.

# %%
ctx_c, ends_c, norm_c = render_completion(ITEMS[0], gpt2_tok)
ctx_h, ends_h, norm_h = render_harness(ITEMS[0], gpt2_tok)
print(f"context tokens: completion {len(ctx_c)}, harness {len(ctx_h)}")
for e, nc, nh in zip(ITEMS[0]["endings"], norm_c, norm_h):
    print(f"  {e!r:42} {nc:2} tokens, {nh:2} characters, {nh / nc:.1f} characters a token")
test_eq(ends_c, ends_h)              # this item's endings tokenize the same way in both styles
test_eq(norm_h, [len(e) for e in ITEMS[0]["endings"]])


# %% [markdown]
# ## Scoring sequences, also longer than the context window
#
# A model sees at most `block_size` tokens. GPT-2's 1,024 hold any HellaSwag item, but the CPU
# default of chapter 9 reads 64 characters, while a HellaSwag context and ending together run to a
# few hundred characters. So the scorer must handle two cases:
#
# - the context is too long: keep its end (the tokens just before the ending matter most). This is
#   what the harness does too: it feeds the last `max_length + 1` tokens, minus the last;
# - the ending alone is longer than a window can score with useful context: slide a window along
#   it, as for perplexity below. Each window holds up to `block_size` tokens and scores only the
#   tokens it adds; consecutive windows advance by `stride` tokens, so every ending token is
#   predicted from at least `block_size - stride + 1` tokens (or all tokens before it, if fewer).
#
# `windows` plans this for one sequence of `n` tokens whose tokens `first..n-1` are to be scored:
# each window is `(lo, hi, a)`, feed tokens `lo..hi-1` and keep the predictions of tokens `a..hi`.

# %%
#| export
def windows(n: int, first: int, block_size: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows (lo, hi, a) that score tokens first..n-1 of an n-token sequence: feed tokens lo..hi-1 (at most
    block_size) and keep the predictions of tokens a..hi; each window adds `stride` tokens (the first may add more)."""
    if not 1 <= first < n:
        raise ValueError(f"first={first}: the tokens to score must come after at least one token, before n={n}")
    if not 1 <= stride <= block_size:
        raise ValueError(f"stride={stride} must be between 1 and block_size={block_size}")
    hi = min(n - 1, max(first - 1 + stride, block_size))   # the first window: as many tokens as it can hold
    out = [(max(0, hi - block_size), hi, first)]
    while hi < n - 1:
        nominal = hi + stride                               # later windows: `stride` new tokens each
        out.append((max(0, nominal - block_size), min(n - 1, nominal), hi + 1))
        hi = min(n - 1, nominal)
    return out

def contexts(n: int, first: int, block_size: int, stride: int) -> list[int]:
    "How many tokens each of tokens first..n-1 is predicted from, under `windows`."
    return [t - lo for lo, hi, a in windows(n, first, block_size, stride) for t in range(a, hi + 1)]


# %% [markdown]
# Three cases with a window of 8 tokens and a stride of 4: everything fits; a long context (kept
# from its end, one window); a long ending (four windows, each ending token seeing at least 5
# tokens; the last window is cut short by the end of the sequence).

# %%
test_eq(windows(6, 3, 8, 4), [(0, 5, 3)])                        # fits: feed 0..4, score 3..5
test_eq(windows(20, 17, 8, 4), [(11, 19, 17)])                   # long context: its last 6 tokens kept
test_eq(windows(20, 5, 8, 4), [(0, 8, 5), (4, 12, 9), (8, 16, 13), (12, 19, 17)])  # long ending
for n, first, bs, s in [(6, 3, 8, 4), (20, 17, 8, 4), (20, 5, 8, 4), (100, 1, 16, 16), (100, 1, 16, 3), (57, 30, 8, 1)]:
    cs = contexts(n, first, bs, s)
    test_eq(len(cs), n - first)                                  # every token scored once
    assert all(min(t, bs - s + 1) <= c <= min(t, bs) for t, c in zip(range(first, n), cs)), (n, first, bs, s)


# %% [markdown]
# `token_logprobs` runs the plan for a list of sequences (the four endings of an item, or one long
# text) in batches of windows. Windows of different lengths are padded on the right: a causal
# model's prediction at a position never looks at later positions, so the padding changes nothing
# that is kept. Only the positions that score a token go through the output layer, which saves
# most of its cost for GPT-2's 50,257-way softmax. They get there through the model's one logits
# method (`GPT.logits`, chapter 5), the one `forward` and `generate` call, so that a variant's logits
# (chapter 17's soft cap) are scored as the model makes them. A model wrapped by `torch.compile` is scored
# through its module (`_orig_mod`): shapes vary from item to item, and recompiling for each would
# cost more than it saves.

# %%
#| export
@torch.no_grad()
def token_logprobs(model, seqs, stride=None, batch_rows=64, amp=contextlib.nullcontext(), progress=False, plan=None):
    """Log-probabilities (float32, on the CPU) of tokens first..n-1 of each (ids, first) in `seqs`, each predicted
    from the window that `windows` gives it; `stride` defaults to block_size // 2; `batch_rows` windows a forward.
    `plan(n, first, block_size)`, if given, lays out the windows instead of `windows` (the harness's, below)."""
    m = getattr(model, "_orig_mod", model)
    bs = m.config.block_size
    stride = stride or max(1, bs // 2)
    device = next(m.parameters()).device
    plan = plan or (lambda n, first, bs: windows(n, first, bs, stride))
    rows = [(s, *w) for s, (ids, first) in enumerate(seqs) for w in plan(len(ids), first, bs)]
    out = [[] for _ in seqs]
    for i in tqdm(range(0, len(rows), batch_rows), disable=not progress, unit="batch", desc="windows"):
        chunk = rows[i:i + batch_rows]
        x = torch.zeros(len(chunk), max(hi - lo for _, lo, hi, _ in chunk), dtype=torch.long)  # (R, T)
        r_idx, p_idx, tgt = [], [], []
        for r, (s, lo, hi, a) in enumerate(chunk):
            ids = seqs[s][0]
            x[r, :hi - lo] = torch.as_tensor(ids[lo:hi])
            r_idx += [r] * (hi + 1 - a); p_idx += range(a - 1 - lo, hi - lo); tgt += ids[a:hi + 1]
        with amp:
            h = m.hidden(x.to(device))                                   # (R, T, C)
            logits = m.logits(h[torch.tensor(r_idx, device=device), torch.tensor(p_idx, device=device)])  # (M, V)
        lp = F.log_softmax(logits.float(), dim=-1).gather(1, torch.tensor(tgt, device=device)[:, None])[:, 0]  # (M,)
        for (s, lo, hi, a), piece in zip(chunk, lp.cpu().split([hi + 1 - a for _, lo, hi, a in chunk])):
            out[s].append(piece)
    return [torch.cat(p) for p in out]


# %% [markdown]
# Proof that the windows are right: with a model of `block_size` 8, the scores of a sequence
# twice that long must equal those of the model fed, for each token, exactly the tokens its
# window holds. We check it against a plain loop that scores one token per forward pass.

# %%
torch.manual_seed(0)
tiny = GPT(GPTConfig(block_size=8, vocab_size=50, n_layer=2, n_head=2, n_embd=16)).eval()
seq = torch.randint(0, 50, (21,)).tolist()
got = token_logprobs(tiny, [(seq, 5), (seq[:7], 3)], stride=3, batch_rows=2)
for (ids, first), lps in zip([(seq, 5), (seq[:7], 3)], got):
    ref = []
    for lo, hi, a in windows(len(ids), first, 8, 3):
        for t in range(a, hi + 1):
            logits, _ = tiny(torch.tensor([ids[lo:t]]))                        # (1, t - lo, V): this token's window
            ref.append(F.log_softmax(logits[0, -1], -1)[ids[t]])
    test_close(lps, torch.stack(ref), eps=1e-5)
test_eq([len(l) for l in got], [16, 4])


# %% [markdown]
# ## The two accuracies
#
# With the sum of the log-probabilities of each ending's tokens, `acc` picks the ending with the
# largest sum and `acc_norm` the largest sum divided by the ending's length. The sum favours short
# endings (fewer tokens, fewer negative terms); dividing by the length removes most of that bias.
# The completion style divides by the number of tokens (the mean log-probability per token); the
# harness divides by the number of characters of the choice (`completion_len` in
# `lm_eval/api/task.py`: `pred_norm = np.argmax(lls / completion_len)`, with `completion_len` the
# `len` of each choice string, without the leading space). Ties go to the first ending, as with
# `np.argmax`.

# %%
#| export
def _argmax(xs) -> int:
    return max(range(len(xs)), key=lambda i: xs[i])   # the first of equal maxima, as np.argmax

def choose(sums, norms) -> tuple[int, int]:
    "(acc's choice, acc_norm's choice): the largest sum of log-probabilities, and the largest sum per unit of `norms`."
    return _argmax(sums), _argmax([s / n if n else -math.inf for s, n in zip(sums, norms)])

def score_rendered(model, rendered, eot, stride=None, amp=contextlib.nullcontext()) -> dict:
    "Sums of log-probabilities, normalisers and both choices for an item rendered as (context, endings, normalisers)."
    ctx, ends, norms = rendered
    ctx = ctx or [eot]                                            # an empty context: condition on end-of-text
    lps = token_logprobs(model, [(ctx + e, len(ctx)) for e in ends], stride, amp=amp)  # all 4 endings in one pass
    sums = [float(lp.double().sum()) for lp in lps]
    pred, pred_norm = choose(sums, norms)
    return dict(sums=sums, norms=list(norms), pred=pred, pred_norm=pred_norm)

def score_item(model, tok, item, style="completion", stride=None, amp=contextlib.nullcontext()) -> dict:
    "One item in `style`: each ending's log-probability sum and normaliser, both choices and the label."
    return {**score_rendered(model, RENDER[style](item, tok), tok.eot, stride, amp), "label": item["label"]}


# %% [markdown]
# ### Why the two styles give different numbers
#
# A worked example with made-up numbers (not measured): four endings of an item, their sums of
# log-probabilities, their lengths in GPT-2 tokens and in characters.

# %%
sums, n_tok, n_chr = [-12.0, -20.0, -15.0, -21.0], [4, 8, 5, 7], [22, 30, 28, 40]
print("sum:       ", sums, "->", _argmax(sums))
print("per token: ", [round(s / n, 2) for s, n in zip(sums, n_tok)], "->", choose(sums, n_tok)[1])
print("per char:  ", [round(s / n, 3) for s, n in zip(sums, n_chr)], "->", choose(sums, n_chr)[1])
test_eq((choose(sums, n_tok), choose(sums, n_chr)), ((0, 1), (0, 3)))


# %% [markdown]
# All three rules pick a different winner among the same four scores. The sum prefers the short
# ending 0; per token, ending 1 (8 tokens at -2.5 each) beats ending 3 (7 tokens at -3.0); per
# character, ending 3 (40 characters, many per token) wins. Tokens and characters disagree
# whenever the endings differ in characters per token: long common words are cheap in tokens,
# names, numbers and rare words dear. A character model has about one token per character, and for
# it the two normalisations nearly coincide.
#
# The prompt differs too: the harness's prompt adds the activity label ("Roof shingle removal:") and
# a capital letter, and removes WikiHow's tags, so even the sums differ between the styles. For
# GPT-2 small (124M) the published numbers differ by 0.3 points in `acc` and 1.6 in `acc_norm`:
#
# | style | acc | acc_norm | source |
# |---|---|---|---|
# | completion (build-nanogpt `hellaswag.py`) | 0.2859 | 0.2955 | build-nanogpt's `hellaswag.py` docstring |
# | harness (lm-evaluation-harness) | 0.2892 | 0.3114 | as quoted in the same docstring |
#
# These are **published** numbers, quoted, not measured here: this machine has no network and
# cannot fetch GPT-2's weights or the original HellaSwag file. With a network (and a GPU, or some
# hours of a CPU), these commands compute the same quantities, to set beside the published ones:
#
# ```bash
# python -m gpt2book.eval hellaswag --model gpt2 --data val                  # published: acc 0.2859, acc_norm 0.2955
# python -m gpt2book.eval hellaswag --model gpt2 --data val --style harness  # published: acc 0.2892, acc_norm 0.3114
# ```
#
# One difference from the harness is by design. For an item longer than the model's context the
# harness feeds a single window (the last `max_length` tokens before the last one), so the start of
# a long ending is predicted with its context cut; this scorer slides windows along the ending
# instead (the section on scoring above). For GPT-2's 1,024 tokens no HellaSwag item is that long
# and the two agree; for a model of 64 tokens, as the CPU default, most items are, and the
# harness-style scores here are then not what the harness would give.
#
# The tests (`tests/test_eval.py`) check both styles item by item against `transformers`'
# `GPT2LMHeadModel` on a small random GPT-2 and a generated file in the original format, tags and
# over-long contexts included: every ending's sum to $10^{-4}$ and every choice.

# %% [markdown]
# ## Evaluating a file of items
#
# `hellaswag_counts` scores the items `rank, rank + world_size, ...` and returns four counts:
# right by `acc`, right by `acc_norm`, scored, skipped. An item is skipped when the tokenizer
# cannot encode it: a character model built from Tiny Shakespeare has no digits but 3, no
# parentheses, no double quotes, and raises on them (chapter 6). Skipping those items, and saying
# how many, is honest; mapping unknown characters to known ones would change the text being scored.
# Counts, not accuracies, are what processes can add up.

# %%
#| export
def hellaswag_counts(model, tok, items, style="completion", rank=0, world_size=1, stride=None,
                     amp=contextlib.nullcontext(), progress=False) -> list[int]:
    "[right by acc, right by acc_norm, scored, skipped] over items rank, rank + world_size, ... (skipped: not encodable)."
    counts, first_skip = [0, 0, 0, 0], None
    render = RENDER[style]
    with eval_mode(getattr(model, "_orig_mod", model)):          # no dropout (chapter 5), the caller's mode after
        for item in tqdm(items[rank::world_size], disable=not progress, unit="item", desc=f"HellaSwag ({style})"):
            try:
                rendered = render(item, tok)                     # a tokenizer that cannot encode it raises
            except ValueError as e:
                counts[3] += 1; first_skip = first_skip or str(e)
                continue
            r = score_rendered(model, rendered, tok.eot, stride, amp)
            counts[0] += r["pred"] == item["label"]; counts[1] += r["pred_norm"] == item["label"]; counts[2] += 1
    if counts[3] and progress:
        print(f"skipped {counts[3]} items the tokenizer cannot encode (the first: {first_skip})", file=sys.stderr)
    return counts


# %% [markdown]
# From counts to accuracies, with the binomial standard error $\sqrt{p(1-p)/n}$: the accuracy on
# $n$ items is an estimate, and on 10,042 items its error is about 0.0045 near 0.3. And
# `evaluate_hellaswag`, the whole evaluation of a file in one process (read, score, count, divide),
# which the command below calls.

# %%
#| export
def accuracies(counts) -> dict:
    "n, skipped, acc, acc_norm and their binomial standard errors from hellaswag_counts' counts."
    right, right_norm, n, skipped = (int(c) for c in counts)
    if n == 0:
        raise ValueError(f"no item could be scored ({skipped} skipped: the tokenizer cannot encode them)")
    acc, acc_norm = right / n, right_norm / n
    return dict(n=n, skipped=skipped, acc=acc, acc_norm=acc_norm,
                acc_se=math.sqrt(acc * (1 - acc) / n), acc_norm_se=math.sqrt(acc_norm * (1 - acc_norm) / n))

def evaluate_hellaswag(model, tok, data="val", style="completion", limit=0, stride=None, progress=False) -> dict:
    "Score the first `limit` items (0: all) of HellaSwag file `data` (`val` or a path) in `style`."
    path = hellaswag_path(data)
    items = read_hellaswag(path, style, HELLASWAG_VAL_N if data == "val" else None)
    return accuracies(hellaswag_counts(model, tok, items[:limit or None], style, stride=stride, progress=progress))


# %% [markdown]
# ## A model to try it on
#
# The chapter needs a model that has learned something, in seconds. A character model of two
# layers, trained here for 300 steps on the first 90% of Tiny Shakespeare with a plain loop
# (chapter 9's trainer does more, and takes longer), will do; its last 10% is held out.

# %%
text = fetch(SOURCES["shakespeare_char"]).read_text(encoding="utf-8")
char_tok = CharTokenizer.from_text(text)
split = int(0.9 * len(text))
train_ids = torch.tensor(char_tok.encode(text[:split]))
torch.manual_seed(0)
model = GPT(GPTConfig(block_size=32, vocab_size=char_tok.vocab_size, n_layer=2, n_head=4, n_embd=64))
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
t0 = time.time()
for step in range(300):
    ix = torch.randint(0, len(train_ids) - 33, (32,)).tolist()
    x = torch.stack([train_ids[i:i + 32] for i in ix]); y = torch.stack([train_ids[i + 1:i + 33] for i in ix])
    _, loss = model(x, y)
    opt.zero_grad(); loss.backward(); opt.step()
model.eval()
print(f"{model.num_params():,} parameters, training loss {loss.item():.3f} after 300 steps ({time.time() - t0:.0f} s)")

# %% [markdown]
# On the two items in both styles. The model knows Shakespeare's letters, not roofs and cacti, so
# the choices are near chance; what matters here is the machinery. For a character model the
# completion style normalises by the ending's characters plus one (its leading space), the harness
# by its characters: nearly the same.

# %%
for style in HELLASWAG_STYLES:
    for item in read_hellaswag(hs_file, style):
        try:
            r = score_item(model, char_tok, item, style)
        except ValueError as e:
            print(f"{style:10} cannot encode this item: {e}")
            continue
        print(f"{style:10} sums {[round(s, 1) for s in r['sums']]}, normalisers {r['norms']}: acc picks {r['pred']}, "
              f"acc_norm picks {r['pred_norm']}, label {r['label']}")
        test_eq(len(r["sums"]), 4)
test_eq(hellaswag_counts(model, char_tok, read_hellaswag(hs_file))[2:], [1, 1])   # scored, skipped


# %% [markdown]
# The item this model can read, scored both ways: each ending's log-probability per unit of its
# normaliser (`acc_norm`'s score), with its total (`acc`'s score) written above. The prompts differ
# (the harness adds the activity label), so even the totals differ between the styles.

# %%
def plot_item_two_ways(model, tok, item_index=0):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    for ax, style in zip(axes, HELLASWAG_STYLES):
        item = read_hellaswag(hs_file, style)[item_index]
        r = score_item(model, tok, item, style)
        per = [s / n for s, n in zip(r["sums"], r["norms"])]
        bars = ax.bar(range(4), per, color=["C2" if i == r["label"] else "C0" for i in range(4)])
        bars[r["pred_norm"]].set_edgecolor("black"); bars[r["pred_norm"]].set_linewidth(2)
        for i, (p, tot) in enumerate(zip(per, r["sums"])):
            ax.annotate(f"{tot:.0f}", (i, p), textcoords="offset points", xytext=(0, -12), ha="center", fontsize=8)
        ax.set(title=f"{style}: acc picks {r['pred']}, acc_norm picks {r['pred_norm']}", xticks=range(4),
               xlabel="ending (green: the right one; outlined: acc_norm's pick)")
    axes[0].set_ylabel("log-probability per unit")
    return fig, r

scorable = next(i for i, it in enumerate(read_hellaswag(hs_file)) if set(it["ctx"] + "".join(it["endings"])) <= set(char_tok.chars))
_, r_h = plot_item_two_ways(model, char_tok, scorable)
assert len(r_h["sums"]) == 4 and all(s < 0 for s in r_h["sums"])
print(evaluate_hellaswag(model, char_tok, hs_file, "harness"))      # the counts as accuracies, for a file of items


# %% [markdown]
# Tiny Shakespeare has no square brackets, so the character model cannot encode the WikiHow item
# in the completion style, tags and all; the harness's clean-up removes the tags, and then it can.
# Its context and endings are longer than the model's 32 characters, so they went through the
# sliding windows above.

# %% [markdown]
# ## HellaSwag during training
#
# build-nanogpt scores HellaSwag every few hundred steps while GPT-2 trains, and its accuracy
# curve is how one sees a model get better at something other than its own loss. This chapter
# plugs the same into chapter 9's trainer, without the trainer knowing about it: two settings,
# `--eval_hellaswag_every=N` and `--hellaswag_limit` (the number of validation items each time,
# 1,000 by default; 0 for all), and two hooks (below). At each evaluation the trainer's hook calls
# `hellaswag_during_training(model, tokenizer, limit, d, device, ctx)` on every process, where `d`
# says which process this is (`rank`, `world_size`, `ddp`) and `ctx` is the trainer's autocast.
#
# The work is shared as the validation loss is: process $r$ of $W$ scores items $r, r+W, \dots$;
# the four counts are then summed over the processes (`all_reduce`), so every process returns the
# same accuracy. The file itself is no concern here: it is fetched once, on rank 0, before
# training starts (`fetch_hellaswag` below, which stops the run at once if it cannot be had), so
# at every evaluation each process simply finds it in the cache and reads it (the reading is cached
# too). No process waits for another but in the `all_reduce`.

# %%
#| export
def hellaswag_during_training(model, tokenizer, limit, d, device, ctx=contextlib.nullcontext(), data="val") -> dict:
    """HellaSwag (completion style) on the first `limit` items (0: all) of `data`, shared among the processes of
    `d` (rank, world_size, ddp); every process returns the same {hellaswag_acc, hellaswag_acc_norm, hellaswag_n}.
    The file was fetched before training (`fetch_hellaswag`): every process finds it."""
    path = hellaswag_path(data)
    items = read_hellaswag(path, "completion", HELLASWAG_VAL_N if data == "val" else None)[:limit or None]
    counts = torch.tensor(hellaswag_counts(model, tokenizer, items, "completion", d.rank, d.world_size, amp=ctx),
                          dtype=torch.long, device=device)
    if d.ddp: dist.all_reduce(counts)                        # sum the counts of all processes
    r = accuracies(counts.tolist())
    return {"hellaswag_acc": r["acc"], "hellaswag_acc_norm": r["acc_norm"], "hellaswag_n": r["n"],
            "hellaswag_skipped": r["skipped"]}


# %% [markdown]
# In one process, on the small file; then two "processes" simulated in this one, each scoring its
# share, whose counts add up to the single process's.

# %%
one = SimpleNamespace(rank=0, world_size=1, ddp=False)
model.train()                                                      # as the trainer calls it: in training mode
res = hellaswag_during_training(model, char_tok, 0, one, "cpu", data=hs_file)
assert model.training                                              # scored without dropout, the mode put back
model.eval()
print(res)
test_eq((res["hellaswag_n"], res["hellaswag_skipped"]), (1, 1))   # the WikiHow item: brackets
items = read_hellaswag(hs_file)
shares = [hellaswag_counts(model, char_tok, items, "completion", rank=r, world_size=2) for r in (0, 1)]
test_eq([a + b for a, b in zip(*shares)], hellaswag_counts(model, char_tok, items, "completion"))
test_eq([s[2:] for s in shares], [[1, 0], [0, 1]])   # [scored, skipped] of each rank
assert not model.training


# %% [markdown]
# ### Plugged into the trainer
#
# The settings are a small dataclass that joins chapter 9's `TrainConfig` through its
# `TRAIN_EXTENSIONS` (so `python -m gpt2book.train --help` lists them, and they are checked with the
# rest), and two functions join the trainer's `HOOKS`: `fetch_hellaswag` runs before the data and
# the model are built (rank 0 fetches the file; if it cannot, every rank stops with one message),
# and `hellaswag_metrics` runs at each evaluation and returns the accuracies to log when they are due
# ({} otherwise). Registering replaces an entry of the same name, so importing twice adds nothing twice.

# %%
#| export
@dataclasses.dataclass
class HellaSwagSettings:
    "Chapter 15's settings of a training run: HellaSwag accuracy at evaluations."
    eval_hellaswag_every: int = setting(0, "also score HellaSwag (chapter 15) every N steps; 0: never", low=0)
    hellaswag_limit: int = setting(1000, "items of HellaSwag validation scored each time (0: all 10,042)", low=0)

def fetch_hellaswag(cfg, d) -> None:
    "Before training: make sure HellaSwag's validation file is here (rank 0 downloads it), or a TrainError that says why."
    if not cfg.eval_hellaswag_every: return
    problem = ""
    if d.master:
        try: hellaswag_path("val")
        except (RuntimeError, ValueError, OSError) as e: problem = str(e)
    if d.ddp:
        box = [problem]; dist.broadcast_object_list(box, src=0); problem = box[0]
    if problem: raise TrainError(f"--eval_hellaswag_every needs HellaSwag's validation file: {problem}")

def hellaswag_metrics(s, ctx) -> dict:
    "At an evaluation of the trainer's run `s`: HellaSwag's accuracies when they are due, else {}."
    every = s.cfg.eval_hellaswag_every
    if not every or s.step % every: return {}
    return hellaswag_during_training(s.model, s.tokenizer, s.cfg.hellaswag_limit, s.d, s.device, ctx)

def register(registry: list, item) -> None:
    "Append `item` to `registry`, in place of an entry of the same name (a module imported twice registers once)."
    registry[:] = [x for x in registry if x.__name__ != item.__name__] + [item]

register(TRAIN_EXTENSIONS, HellaSwagSettings)
register(HOOKS.setup, fetch_hellaswag)
register(HOOKS.evaluate, hellaswag_metrics)

# %% [markdown]
# The trainer's config now has the two settings (checked as its own are); the hooks do nothing
# when HellaSwag is off, and at a due step the evaluation hook scores with the run's model,
# tokenizer, processes, device and autocast (here with a stand-in for the scorer, which records
# what it was given).

# %%
cfg = train_config_class()(eval_hellaswag_every=2, hellaswag_limit=0)
test_eq((cfg.eval_hellaswag_every, train_config_class()().eval_hellaswag_every), (2, 0))
test_fail(lambda: train_config_class()(hellaswag_limit=-1), contains="hellaswag_limit=-1 must be at least 0")
assert fetch_hellaswag(train_config_class()(), one) is None and fetch_hellaswag in HOOKS.setup
run_state = SimpleNamespace(cfg=cfg, d=one, device="cpu", model=model, raw=model, tokenizer=char_tok, step=3)
test_eq(hellaswag_metrics(run_state, contextlib.nullcontext()), {})                 # step 3: not due
run_state.step, calls, ctx = 4, [], contextlib.nullcontext()
scorer = hellaswag_during_training
hellaswag_during_training = lambda *args: calls.append(args) or {"hellaswag_acc": 0.5}
try:
    test_eq(hellaswag_metrics(run_state, ctx), {"hellaswag_acc": 0.5})            # step 4: due
finally:
    hellaswag_during_training = scorer
test_eq(calls, [(model, char_tok, 0, one, "cpu", ctx)])

# %% [markdown]
# ## Perplexity, with a sliding window
#
# Perplexity is $\exp$ of the mean negative log-likelihood per token of a text: a perplexity of
# 20 means the model was, on average, as unsure as if it chose among 20 equally likely tokens.
# We put the tokenizer's end-of-text token before the text (as the lm-evaluation-harness's rolling
# likelihood does), so the first token is scored too, and every token of the text is scored
# exactly once.
#
# A text is much longer than the window, so it is scored in windows, and how they are laid out
# changes the number. The simple way cuts the text into consecutive blocks of `block_size` tokens:
# the first token of each block is then predicted from nothing but the block's first token, the
# next from two tokens, and so on. The sliding-window way (Hugging Face's guide "Perplexity of
# fixed-length models") moves a full window by `stride` tokens and scores only the `stride` new
# tokens at its end, which all see at least `block_size - stride + 1` tokens. (The guide's window
# of `block_size` tokens includes the last token scored; ours holds `block_size` tokens of context
# for it, one more: the same method, a token more context.) With
# `stride = block_size` the two coincide; `stride = 1` gives every token the whole window, at
# `block_size` times the cost. It is the same `windows` plan as for long HellaSwag endings,
# with `first = 1`.

# %%
bs_demo, n_demo = 32, 160
fig, ax = plt.subplots(figsize=(9, 3.2))
for s, style in [(32, "-"), (16, "-"), (4, "-"), (1, ":")]:
    ax.step(range(1, n_demo), contexts(n_demo, 1, bs_demo, s), style, where="mid",
            label=f"stride {s}" + (" (no overlap)" if s == bs_demo else ""))
ax.set(xlabel="token position in the text", ylabel="tokens it is predicted from",
       title=f"How much context each token gets, window {bs_demo}")
ax.legend(loc="lower right", fontsize=8); ax.grid(alpha=0.3)
test_eq(min(contexts(n_demo, 1, 32, 16)[32:]), 17)
test_eq(contexts(n_demo, 1, 32, 32)[:33], list(range(1, 33)) + [1])

# %% [markdown]
# Does the context matter? The model above, on the held-out tenth of Tiny Shakespeare, scored
# without overlap: the mean loss of the tokens that had $k$ tokens of context, for each $k$.

# %%
held_out = text[split:]                             # the last tenth: never trained on
ids = [char_tok.eot] + char_tok.encode(held_out)
lp = token_logprobs(model, [(ids, 1)], stride=32)[0]
ctx_len = torch.tensor(contexts(len(ids), 1, 32, 32))
loss_by_ctx = [(-lp[ctx_len == k]).mean().item() for k in range(1, 33)]
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(range(1, 33), loss_by_ctx, "o-", ms=3)
ax.set(xlabel="tokens of context", ylabel="mean loss (nats)", title="Held-out Tiny Shakespeare, the model above")
ax.grid(alpha=0.3)
print(f"{len(held_out):,} characters; mean loss with 1 token of context {loss_by_ctx[0]:.2f}, with 2: "
      f"{loss_by_ctx[1]:.2f}, with 25 to 32: {np.mean(loss_by_ctx[-8:]):.2f}")
assert loss_by_ctx[0] > np.mean(loss_by_ctx[-8:]) + 0.15


# %% [markdown]
# The first few characters of a block are harder to predict than the rest (this small model gains
# little beyond a handful of characters of context; a better one keeps gaining), and the
# no-overlap method pays that price once per block. The sliding window pays it only at the very
# beginning, so its perplexity is lower, closer to what the model reaches reading the text as a
# stream.
#
# ## Per token, per byte, per character
#
# A token-level perplexity depends on the tokenizer: a GPT-2 token is about four characters, a
# character model's token one, so their perplexities are not comparable (a character model's is
# far lower while predicting the same text less well). Dividing the total negative log-likelihood
# by a unit that does not depend on the tokenizer fixes that: **bits per byte** (of the UTF-8 text,
# the lm-evaluation-harness's `bits_per_byte`) and **bits per character**:
#
# $$\text{bpb} = \frac{\sum_t -\ln p(x_t \mid x_{<t})}{\ln 2 \cdot \text{bytes}}$$
#
# The bytes are those of the text that the scored tokens spell. `token_bytes` gives each id's share
# (an end-of-text id spells nothing); where every token is scored it adds up to the text's bytes,
# and where the first token is only context (the Hugging Face guide's way, below) its bytes are
# taken off. Chapter 16 uses the same count to compare tokenizers.

# %%
#| export
def token_bytes(tok) -> np.ndarray:
    "(vocab_size,) the UTF-8 bytes of the text each id stands for; 0 for special tokens such as end-of-text."
    if isinstance(tok, CharTokenizer):
        n = [len(c.encode("utf-8")) for c in tok.chars] + [0]
    elif isinstance(tok, BPETokenizer):
        specials = set(tok.special_ids.values())
        n = [0 if i in specials else len(tok.vocab[i]) for i in range(tok.vocab_size)]
    elif isinstance(tok, GPT2Tokenizer):
        n = [len(tok.enc.decode_single_token_bytes(i)) for i in range(tok.vocab_size)]
        n[tok.eot] = 0
    else:
        raise TypeError(f"token_bytes does not know {type(tok).__name__}: give it a char, BPE or GPT-2 tokenizer")
    return np.array(n, dtype=np.int64)

def perplexity(model, tok, text, stride=None, batch_rows=8, amp=contextlib.nullcontext(), progress=False,
               score_first=True) -> dict:
    """Perplexity and bits per byte of `text` under `model`, with sliding windows of block_size tokens advancing by
    `stride` (default block_size // 2; stride = block_size: no overlap). `score_first`: the text follows an end-of-text
    token and every token is scored; else the first token is only context (the Hugging Face guide's convention)."""
    ids = tok.encode(text)                           # a CharTokenizer raises on a character it lacks, naming it
    if score_first: ids = [tok.eot] + ids
    if len(ids) < 2:
        raise ValueError("the text is too short: nothing to score")
    bs = getattr(model, "_orig_mod", model).config.block_size
    with eval_mode(getattr(model, "_orig_mod", model)):
        lp = token_logprobs(model, [(ids, 1)], stride, batch_rows, amp, progress)[0]
    nll, n = -float(lp.double().sum()), len(ids) - 1
    n_bytes = len(text.encode("utf-8")) - (0 if score_first else int(token_bytes(tok)[ids[0]]))   # the scored text's
    n_chars = len(text) - (0 if score_first else len(tok.decode(ids[:1])))                         # bytes, characters
    return dict(tokens=n, bytes=n_bytes, chars=n_chars, block_size=bs, stride=stride or max(1, bs // 2),
                score_first=score_first, nll=nll, ppl=math.exp(nll / n), bits_per_byte=nll / math.log(2) / n_bytes,
                bits_per_char=nll / math.log(2) / n_chars)


# %% [markdown]
# The held-out Shakespeare, at four strides:

# %%
rows = {s: perplexity(model, char_tok, held_out[:5000], stride=s, batch_rows=256) for s in (32, 16, 8, 1)}
for s, r in rows.items():
    print(f"stride {s:2}: perplexity {r['ppl']:.3f}, {r['bits_per_char']:.3f} bits/char, "
          f"{r['bits_per_byte']:.3f} bits/byte, {len(windows(r['tokens'] + 1, 1, 32, s)):,} windows")
assert rows[32]["ppl"] > max(rows[s]["ppl"] for s in (16, 8, 1))      # no overlap: the worst
r = rows[16]
test_close(r["bits_per_char"] * r["chars"], math.log2(r["ppl"]) * r["tokens"], eps=1e-3)   # the same total, in bits
test_eq(r["bytes"], r["chars"])                      # Shakespeare is ASCII: one byte a character
for t in (char_tok, gpt2_tok):                        # each id's bytes add up to the text's
    test_eq(int(token_bytes(t)[t.encode(held_out[:2000])].sum()), len(held_out[:2000].encode("utf-8")))
test_eq(int(token_bytes(gpt2_tok)[gpt2_tok.encode("naïve café 😀")].sum()), len("naïve café 😀".encode("utf-8")))

# %% [markdown]
# Every sliding window lowers the perplexity below the no-overlap method's. Between strides 16, 8
# and 1 the differences are small and go either way for this model, whose loss stops improving
# after a few characters of context (the curve above): once every token sees 17 characters,
# more does not help it. A model that uses more of its context gains more from small strides.
# For a character model, a "token" is a character (its perplexity is per character
# already), so bits per character are $\log_2$ of the perplexity, up to the one end-of-text
# token. GPT-2 on WikiText-2 is usually reported at window 1,024 and stride 512, as in Hugging
# Face's guide; it is this command's default for GPT-2 (stride = `block_size // 2`).

# %% [markdown]
# ## WikiText-2
#
# WikiText-2 (Merity et al., 2016) is Wikipedia's Good and Featured articles, the raw version
# untouched but for spaces around punctuation (`1 @,@ 000`, `role @-@ playing`). Its validation
# and test splits (about 1.1 and 1.3 MB) are the files `wiki.valid.raw` and `wiki.test.raw`. Offline
# they are read from `$GPT2BOOK_MIRROR/wikitext-2-raw/`. With a network, `wikitext_path` builds
# them from the Hugging Face dataset `Salesforce/wikitext` (`wikitext-2-raw-v1`): its rows are the
# file's lines, blank lines (" \n" in the file) as empty rows, so joining them with those blank lines
# put back should give the file byte for byte; the sha256 of the known files checks that. That
# download path is untested here (no network): if the check fails, the error says what to do.

# %%
#| export
WIKITEXT_SHA256 = {"valid": "4cd0f6876d07a413aa911261ff6d363c72d757d47f0fdd6015702014c89cb9c7",
                   "test": "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08"}

def _wikitext_from_hub(split) -> str:
    "wiki.{split}.raw rebuilt from the Hugging Face dataset (untested: needs a network)."
    from datasets import load_dataset
    rows = load_dataset("Salesforce/wikitext", "wikitext-2-raw-v1", split={"valid": "validation"}.get(split, split))
    return "".join(r if r else " \n" for r in rows["text"])     # blank lines are empty rows

def wikitext_path(split="test") -> Path:
    "The local path of WikiText-2 raw's `split` (test | valid): from $GPT2BOOK_MIRROR, the cache, or built from the hub."
    if split not in WIKITEXT_SHA256:
        raise ValueError(f"split={split!r}: WikiText-2 raw has the splits {list(WIKITEXT_SHA256)} here")
    name, sha = f"wikitext-2-raw/wiki.{split}.raw", WIKITEXT_SHA256[split]
    try:
        found = local_copy(name, sha)       # the mirror's copy, or the cache's (checked), else None
    except ValueError:                      # the mirror holds a wrong file
        raise ValueError(f"{mirror_dir() / name} is not WikiText-2's wiki.{split}.raw (sha256 {sha}); "
                         f"replace or remove it") from None
    if found is not None:
        return found
    hint = f"Put wiki.{split}.raw (sha256 {sha}) at $GPT2BOOK_MIRROR/{name}."
    try:
        text = _wikitext_from_hub(split)
    except Exception as e:
        raise RuntimeError(f"could not fetch WikiText-2 from the Hugging Face hub ({type(e).__name__}: {e}). "
                           f"Offline? {hint}") from None
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != sha:
        raise RuntimeError(f"the rows of Salesforce/wikitext joined do not reproduce wiki.{split}.raw (sha256 {sha}); "
                           f"{hint}")
    atomic_write_text(cache_dir() / name, text)
    return cache_dir() / name


# %% [markdown]
# A character model knows only the characters of its training text. Tiny Shakespeare has no `=`,
# no `@` and no digits but `3`, and WikiText has all of them, so such a model cannot score
# WikiText at all: its tokenizer raises, naming the first character it lacks. (Mapping unknown
# characters to known ones would score a different text.) On a line in WikiText's format, written
# here:

# %%
wiki_like = " = Tiny Shakespeare = \n \n The corpus has 1 @,@ 115 @,@ 394 characters of plays . \n"
assert not {"=", "@", "0", "1", "9"} & set(char_tok.chars) and "3" in char_tok.chars
try:
    perplexity(model, char_tok, wiki_like)
except ValueError as e:
    print("ValueError:", e)
test_fail(lambda: perplexity(model, char_tok, wiki_like), contains="'='")

# %% [markdown]
# A GPT-2-tokenized model has no such problem: any text is bytes. An untrained one is as unsure as
# it can be, a perplexity close to its vocabulary of 50,257 (a sanity check of the arithmetic):

# %%
torch.manual_seed(0)
untrained = GPT(GPTConfig(block_size=64, vocab_size=50257, n_layer=1, n_head=2, n_embd=32)).eval()
r = perplexity(untrained, gpt2_tok, wiki_like * 4)
print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})
assert 0.9 * 50257 < r["ppl"] < 1.1 * 50257

# %% [markdown]
# ## Which WikiText-2 number is which
#
# "GPT-2's perplexity on WikiText-2" names several different numbers. Three choices make them
# differ: which text is scored, which tokens are scored, and what the total is divided by.
#
# - **The text.** This chapter scores the raw file as it is (`--join raw`, the default). The Hugging
#   Face guide "Perplexity of fixed-length models" scores `"\n\n".join(test["text"])` over the
#   dataset's rows, the lines of the file with each blank line an empty row (`--join hf`): the same
#   words with more newlines, 287,644 GPT-2 tokens against the raw file's 286,221.
# - **The tokens scored.** Here an end-of-text token goes first and every token of the text is
#   scored (as the lm-evaluation-harness's rolling log-likelihood does). The guide scores every
#   token but the first, which is only context. `--join hf` follows the guide in this too.
# - **The unit.** Token-level perplexity divides by GPT-2 tokens. The GPT-2 paper (Radford et al.
#   2019, Table 3) divides by the dataset's own units, WikiText's word-level tokens: whitespace
#   -separated words plus one end-of-line per line, 245,569 in the test split (the count in Merity
#   et al.'s Table 1). That is the **word-level perplexity** $\exp(\text{NLL} / 245{,}569)$; it does
#   not depend on the tokenizer, like bits per byte.
#
# `wikitext_text` gives the text each way; `wikitext_units` counts WikiText's units.

# %%
#| export
WIKITEXT_JOINS = ("raw", "hf", "harness")

def hf_join(raw: str) -> str:
    "The Hugging Face guide's text: the dataset's rows (the file's lines, blank lines empty) joined by \"\\n\\n\"."
    rows = ["" if line == " \n" else line for line in raw.splitlines(keepends=True)]   # the dataset's rows
    return "\n\n".join(rows)

def wikitext_text(split="test", join="raw") -> str:
    "WikiText-2 raw's `split`: the file itself (`raw`, and `harness`, which cuts it into pages), or the guide's text (`hf`)."
    if join not in WIKITEXT_JOINS:
        raise ValueError(f"join={join!r}: use one of {WIKITEXT_JOINS}")
    text = wikitext_path(split).read_text(encoding="utf-8")
    return hf_join(text) if join == "hf" else text

def wikitext_units(text: str) -> int:
    "WikiText's word-level tokens in `text` (the raw file): whitespace-separated words plus one end-of-line per line."
    return len(text.split()) + text.count("\n")


# %% [markdown]
# On the mirrored test file, GPT-2's tokenizer gives the two token counts above, and the word-level
# count is WikiText's published one:

# %%
if (mirror_dir() / "wikitext-2-raw" / "wiki.test.raw").exists():      # a reader's machine may not have the mirror
    raw, hf = wikitext_text("test", "raw"), wikitext_text("test", "hf")
    test_eq((len(gpt2_tok.encode(raw)), len(gpt2_tok.encode(hf)), wikitext_units(raw)), (286_221, 287_644, 245_569))
    test_eq(hf.split(), raw.split())                                   # the same words, only the newlines differ


# %% [markdown]
# ## The word-level figure, on the text it is defined on
#
# `word_ppl` is defined on the raw file: the NLL of the raw text, every token scored after an
# end-of-text token, divided by its WikiText units. With `--join hf` the tokens scored are those of
# another text (the same words, about 1,423 more newline tokens, the first token unscored), whose NLL
# divided by the raw file's units would mix two texts. So `score_wikitext` scores the raw text for the
# word figure under every join: with `--join raw` it is the pass that gives `ppl`; with `--join hf`
# it is a second pass over the raw text (twice the work), and `word_ppl` is then the same number
# under both joins. (`--join harness` has a word figure of its own, defined on its own text: below.)

# %%
#| export
def score_wikitext(model, tok, raw: str, join="raw", stride=None, batch_rows=8, progress=False) -> dict:
    """WikiText raw text `raw` scored under `join`: `ppl` and bits per byte of the text that join scores; `word_ppl`
    always exp(NLL of the raw text, every token scored / its WikiText units). `harness`: `harness_wikitext`."""
    if join == "harness":
        return harness_wikitext(model, tok, raw, batch_rows, progress=progress)
    scored = raw if join == "raw" else hf_join(raw)
    out = perplexity(model, tok, scored, stride, batch_rows, progress=progress, score_first=join == "raw")
    word = out if join == "raw" else perplexity(model, tok, raw, stride, batch_rows, progress=progress)
    units = wikitext_units(raw)
    out.update(word_units=units, word_nll=word["nll"], word_ppl=math.exp(word["nll"] / units))
    return out


# %% [markdown]
# A check by hand on a text short enough for one window: the raw text's NLL, computed token by token
# with one forward pass of the untrained model, over the units counted by eye (6 words and 4 lines).

# %%
mini = " = A = \n \n B c . \n \n"
test_eq((mini.split(), wikitext_units(mini)), (["=", "A", "=", "B", "c", "."], 6 + 4))
ids_mini = [gpt2_tok.eot] + gpt2_tok.encode(mini)
with torch.no_grad():
    lp_mini = F.log_softmax(untrained(torch.tensor([ids_mini]))[0][0, :-1].double(), -1)   # (T-1, V)
nll_mini = -float(lp_mini.gather(1, torch.tensor(ids_mini[1:])[:, None]).sum())
for join in ("raw", "hf"):
    r = score_wikitext(untrained, gpt2_tok, mini, join)
    test_close(r["word_nll"], nll_mini, eps=1e-3)                        # the raw text's NLL, both joins,
    test_close(math.log(r["word_ppl"]), r["word_nll"] / 10, eps=1e-9)    # over its 10 units
test_close(r["nll"], perplexity(untrained, gpt2_tok, hf_join(mini), score_first=False)["nll"], eps=1e-6)   # ppl: hf's text


# %% [markdown]
# ## The lm-evaluation-harness's WikiText
#
# The most-quoted modern WikiText figure is the lm-evaluation-harness's task `wikitext`
# (`lm_eval/tasks/wikitext/`, read here in lm_eval 0.4.13). It differs from all of the above in four ways:
#
# - **Documents.** It reads `EleutherAI/wikitext_document_level`, whose loading script cuts the raw
#   file into pages: split on `"\n"`, and a line that, with `"= = ="` and `"= ="` closed up and
#   stripped, starts with `"= "` and ends with `" ="` (a top-level title such as ` = Robert Boulter = `)
#   starts a new page; a page that would be blank is dropped, the last one always kept; the lines of
#   a page are joined again with `"\n"`. Each page is scored on its own, from an empty context.
# - **Detokenized text.** What is scored is each page passed through `wikitext_detokenizer`, which
#   undoes WikiText's spacing: `1 @,@ 000` becomes `1,000`, `role @-@ playing` `role-playing`,
#   ` , ` `, `, brackets and quotes lose their inner spaces, `= = Plot = =` becomes `== Plot ==`.
# - **Windows.** `loglikelihood_rolling` scores a page's tokens after a prefix token (GPT-2's
#   end-of-text) in windows from `get_rolling_token_windows(..., max_seq_len=max_length,
#   context_len=1)`, made disjoint: windows of `max_length` predictions that do not overlap, the
#   first predicted token of each seeing one token of context, except the last window, which is fed
#   the `max_length` tokens before the page's end (more context than `windows` with the same stride
#   gives it).
# - **Units.** The page's NLL is divided, summed over pages, by the words of the **original** page,
#   `len(re.split(r"\s+", page))`, for `word_perplexity`, and by its UTF-8 bytes for
#   `byte_perplexity` = exp(NLL / bytes) and `bits_per_byte` = NLL / (bytes ln 2). The detokenized
#   text is scored but the original is counted: fewer bytes are scored than are counted, so these
#   figures are not the bits per byte of the scored text.
#
# Our own code for each step: the pages and the detokenizer,

# %%
#| export
def wikitext_documents(raw: str) -> list[str]:
    "WikiText's pages as EleutherAI/wikitext_document_level cuts them: a new page at each top-level ' = Title = ' line."
    pages, lines = [], []
    for line in raw.split("\n"):
        head = line.replace("= = =", "===").replace("= =", "==").strip()
        if head.startswith("= ") and head.endswith(" ="):           # a title: the page so far is done
            if "\n".join(lines).strip(): pages.append("\n".join(lines))
            lines = []
        lines.append(line)
    return pages + ["\n".join(lines)]                               # the last page, even a blank one

_DETOK = [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "), (" . ", ". "),
          (" ! ", "! "), (" ? ", "? "), (" , ", ", ")]
_DETOK_BRACKETS = [(r"\(\s*([^\)]*?)\s*\)", r"(\1)"), (r"\[\s*([^\]]*?)\s*\]", r"[\1]"), (r"{\s*([^}]*?)\s*}", r"{\1}"),
                   (r"\"\s*([^\"]*?)\s*\"", r'"\1"'), (r"'\s*([^']*?)\s*'", r"'\1'")]   # inner spaces dropped
_DETOK_LAST = [("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \N{DEGREE SIGN} ", "\N{DEGREE SIGN}"),
               (" \n", "\n"), ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s")]

def wikitext_detokenize(page: str) -> str:
    "lm-evaluation-harness's `wikitext_detokenizer`, step for step: WikiText's spacing undone."
    s = page.replace("s '", "s'")
    s = re.sub(r"/' [0-9]/", r"/'[0-9]/", s)                        # (a no-op on WikiText: kept as the harness has it)
    for a, b in _DETOK: s = s.replace(a, b)
    for pat, rep in _DETOK_BRACKETS: s = re.sub(pat, rep, s)
    for a, b in _DETOK_LAST: s = s.replace(a, b)
    return s


# %% [markdown]
# On a made-up text in WikiText's format, checked by hand: two pages (the section title does not
# start one), and each page's detokenized text.

# %%
wiki2 = (" \n = Ann = \n \n Ann ( born 1 @,@ 900 ) is a role @-@ playing \" game \" . \n \n = = Plot = = \n \n"
         " It 's 3 @.@ 5 ° long ; yes . \n = Bob = \n \n Bob , N times . \n")
pages = wikitext_documents(wiki2)
test_eq(pages, [" = Ann = \n \n Ann ( born 1 @,@ 900 ) is a role @-@ playing \" game \" . \n \n = = Plot = = \n \n"
                " It 's 3 @.@ 5 ° long ; yes . ", " = Bob = \n \n Bob , N times . \n"])    # the blank first line: dropped
test_eq([wikitext_detokenize(p) for p in pages],
        [" = Ann =\n\nAnn (born 1,900) is a role-playing \"game\".\n\n== Plot ==\n\nIt's 3.5°long; yes. ",
         " = Bob =\n\nBob, 1 times.\n"])
test_eq(wikitext_documents(" = A = \n x \n")[-1], " = A = \n x \n")     # one page: the whole text


# %% [markdown]
# The quirks stay, since they are in the numbers the harness reports: a page keeps the space before
# its title and after its last full stop (`" . "` closes up only before a space, and the page was cut
# before the line's end); `" ° "` loses both spaces ("5°long"); and a lone `N` becomes `1`. Next, the windows, as `(lo, hi, a)` triples over `[prefix] + tokens` in the
# form of `windows`, so that `token_logprobs` runs them (its `plan` argument):

# %%
#| export
def harness_windows(n: int, first: int, block_size: int) -> list[tuple[int, int, int]]:
    """lm-evaluation-harness's rolling windows (get_rolling_token_windows, context_len=1, made disjoint) as (lo, hi, a)
    over n ids, the first a prefix: block_size predictions a window, none twice, the last fed the block_size before."""
    if first != 1:
        raise ValueError(f"first={first}: the harness's windows score every token after the prefix token (first=1)")
    out, done = [], 0
    while done < n - 1:
        end = done + min(n - 1 - done, block_size)                  # predict ids done+1..end
        out.append((max(0, end - block_size), end, done + 1))
        done = end
    return out


# %%
test_eq(harness_windows(6, 1, 8), [(0, 5, 1)])                                     # fits: one window
test_eq(harness_windows(20, 1, 8), [(0, 8, 1), (8, 16, 9), (11, 19, 17)])          # the last fed 8 tokens
test_eq(windows(20, 1, 8, 8), [(0, 8, 1), (8, 16, 9), (16, 19, 17)])               # ours at stride 8: fed 3
test_eq(harness_windows(1, 1, 8), [])                                               # no token: no window
for n, bs in [(2, 4), (50, 7), (64, 8), (65, 8)]:
    cs = [t - lo for lo, hi, a in harness_windows(n, 1, bs) for t in range(a, hi + 1)]
    test_eq(len(cs), n - 1)                                                         # each token scored once
    assert all(1 <= c <= bs for c in cs)


# %% [markdown]
# And the scores: each page detokenized, encoded after the end-of-text token, scored in those
# windows; NLLs summed over pages and divided by the original pages' words and bytes.

# %%
#| export
def harness_wikitext(model, tok, raw: str, batch_rows=8, amp=contextlib.nullcontext(), progress=False) -> dict:
    """lm-evaluation-harness's `wikitext` task on raw WikiText text: pages, detokenized, rolling windows of block_size;
    word_ppl, byte_ppl and bits_per_byte over the original pages' words and bytes; each page's NLL in `per_page`."""
    pages = wikitext_documents(raw)
    seqs = [[tok.eot] + tok.encode(wikitext_detokenize(p)) for p in pages]
    m = getattr(model, "_orig_mod", model)
    with eval_mode(m):
        lps = token_logprobs(model, [(ids, 1) for ids in seqs if len(ids) > 1], None, batch_rows, amp, progress,
                             plan=harness_windows)
    lps = iter(lps)
    nlls = [-float(next(lps).double().sum()) if len(ids) > 1 else 0.0 for ids in seqs]   # a page of no token: 0
    words = sum(len(re.split(r"\s+", p)) for p in pages)
    n_bytes = sum(len(p.encode("utf-8")) for p in pages)
    nll = sum(nlls)
    return dict(pages=len(pages), tokens=sum(len(ids) - 1 for ids in seqs), words=words, bytes=n_bytes,
                block_size=m.config.block_size, nll=nll, word_ppl=math.exp(nll / words),
                byte_ppl=math.exp(nll / n_bytes), bits_per_byte=nll / math.log(2) / n_bytes, per_page=nlls)


# %% [markdown]
# Checked by hand on the made-up text with the untrained model of `block_size` 64: each page's NLL
# is that of one forward pass over its tokens (both pages fit a window), the words are counted by
# `re.split` on the original pages (a page that starts or ends with a space counts an empty word
# there, as the harness does).

# %%
r = harness_wikitext(untrained, gpt2_tok, wiki2)
ref = []
for p in pages:
    ids_p = [gpt2_tok.eot] + gpt2_tok.encode(wikitext_detokenize(p))
    with torch.no_grad():
        lp_p = F.log_softmax(untrained(torch.tensor([ids_p]))[0][0, :-1].double(), -1)   # (T-1, V)
    ref.append(-float(lp_p.gather(1, torch.tensor(ids_p[1:])[:, None]).sum()))
test_close(r["per_page"], ref, eps=1e-3)
# words: 1 + 3 + 16 + 5 + 10 + 1 (an empty word at each end of the page, which starts and ends with a space), 1 + 3 + 5 + 1
test_eq((r["pages"], r["words"], r["bytes"]), (2, 36 + 10, len(wiki2.encode("utf-8")) - 3))   # " \n" dropped, "\n" between
test_close(r["bits_per_byte"], sum(ref) / math.log(2) / r["bytes"], eps=1e-6)
test_close(math.log(r["byte_ppl"]) / math.log(2), r["bits_per_byte"], eps=1e-9)

# %% [markdown]
# ### Checked against lm_eval itself
#
# `bench/wikitext_harness.py` puts this code beside lm_eval's own functions (lm_eval 0.4.13,
# `pip install lm_eval`; its `wikitext_detokenizer`, `get_rolling_token_windows`,
# `make_disjoint_window` and the truncation of `HFLM._loglikelihood_tokens`) on the mirror's
# WikiText-2 test and validation files: every page's detokenized text, every window at
# `max_length` 1,024 and 64 (input tokens and predicted tokens), and, on a small random GPT-2-vocabulary
# model of `block_size` 64, every page's NLL scored through lm_eval's windows against ours, and the
# three figures aggregated as lm_eval aggregates them (`weighted_perplexity`, `bits_per_byte`). lm_eval
# is not among the book's dependencies (it pulls in dozens of packages), so the comparison is a bench
# script and its output is committed:
#
# ```bash
# pip install lm_eval && python bench/wikitext_harness.py    # writes nbs/data/wikitext_harness_check.json
# ```

# %%
hc = json.loads(Path("data/wikitext_harness_check.json").read_text())
print(f"{hc['command']}  (lm_eval {hc['lm_eval']})")
for split, c in hc["splits"].items():
    print(f"  {split}: {c['pages']} pages, detokenized texts equal: {c['detok_equal']}, windows equal at "
          f"{c['windows_equal']}; NLL of a page, largest relative gap {c['max_rel_page_gap']:.1e}; "
          f"word_ppl {c['ours']['word_ppl']:.2f} (lm_eval's {c['lm_eval']['word_perplexity']:.2f})")
    assert c["detok_equal"] and all(c["windows_equal"].values()) and c["max_rel_page_gap"] < 1e-4   # recorded result
    for k, k_ref in [("word_ppl", "word_perplexity"), ("byte_ppl", "byte_perplexity"), ("bits_per_byte", "bits_per_byte")]:
        test_close(c["ours"][k], c["lm_eval"][k_ref], eps=1e-4 * c["lm_eval"][k_ref])               # recorded result

# %% [markdown]
# ## Which number is which
#
# So each convention gives numbers comparable with different published ones:
#
# | | `--join raw` (default) | `--join hf` | `--join harness` |
# |---|---|---|---|
# | text scored | the raw file, one document | the guide's `"\n\n".join` of the rows, one document | each page, detokenized, on its own |
# | tokens scored | all, after an end-of-text token | all but the first | all of each page, after an end-of-text token |
# | windows | `block_size`, advancing by `--stride` (default `block_size // 2`) | the same | `block_size`, not overlapping (`context_len=1`); the last fed a full window |
# | `ppl` | per GPT-2 token of the raw file | per token of the guide's text | – |
# | `word_ppl` | NLL of the raw text / its WikiText units (245,569 in test) | the same number: the raw text is scored for it | NLL of the pages / words of the original pages (`re.split(r"\s+")`) |
# | bytes | bits per byte of the raw file | of the guide's text, its first token's bytes off | `byte_ppl` and `bits_per_byte` over the original pages' bytes (the detokenized text is scored) |
# | comparable with | `word_ppl`: the GPT-2 paper's WikiText-2 column, 29.41 (117M), 22.76 (345M), 19.93 (762M), 18.34 (1542M), as published; the paper scores text passed through its own invertible detokenizers, this the raw text: same unit, different text, a gap not measured here | `ppl`: the guide's method; its figures are for GPT-2 large (774M), not small, and have changed between versions of the guide: compare by running both, not by quoting | `lm_eval --tasks wikitext` (its `word_perplexity`, `byte_perplexity`, `bits_per_byte`), with the model's full context as `max_length` |
#
# None of these was measured here for GPT-2: this machine has no network to fetch its weights. We
# found no source that states the harness's WikiText figures for GPT-2 small with the settings
# given, so none is quoted: run `python -m gpt2book.eval wikitext --model gpt2 --join harness` and
# `lm_eval --model hf --model_args pretrained=gpt2 --tasks wikitext` side by side instead.

# %% [markdown]
# ## The command line
#
# `python -m gpt2book.eval` has one subcommand per benchmark, each with its settings dataclass
# (appendix B's `settings_parser`). The model is anything `load_model` of chapter 9 takes: a run
# folder of `python -m gpt2book.train` (its newest checkpoint), a Hugging Face folder, or a hub
# name such as `gpt2`. Progress goes to stderr; the last line on stdout is one JSON object with
# the result. What the command line alone can tell is checked when it is read: numbers out of
# range, a `--model` or a data file that is not there (a usage error, exit status 2).

# %%
#| export
HELP_EXAMPLES = """examples:
  python -m gpt2book.eval hellaswag --model gpt2 --data val                  # GPT-2 small, build-nanogpt's way
  python -m gpt2book.eval hellaswag --model gpt2 --data val --style harness  # the lm-evaluation-harness's way
  python -m gpt2book.eval hellaswag --model out/cpu --data FILE.jsonl --limit 500
  python -m gpt2book.eval wikitext --model gpt2 --split test --stride 512    # raw file, end-of-text first
  python -m gpt2book.eval wikitext --model gpt2 --join hf --stride 512       # the Hugging Face guide's text
  python -m gpt2book.eval wikitext --model gpt2 --join harness               # as lm-evaluation-harness scores it
  python -m gpt2book.eval text --model out/cpu --files hamlet.txt macbeth.txt  # bits per byte of any text"""

PROG = "python -m gpt2book.eval"

@dataclasses.dataclass(kw_only=True)
class ModelSettings:
    "What every evaluation needs: a model, a device, and how far a sliding window advances."
    model: str = setting(dataclasses.MISSING, "a run folder, a Hugging Face folder or a hub name (gpt2)")
    device: str = setting("auto", "auto (cuda if PyTorch sees a GPU, else cpu) | cpu | cuda | cuda:N | mps")
    stride: int = setting(0, "tokens a sliding window advances, at most block_size; 0: block_size // 2", low=0)
    def __post_init__(self):
        check_settings(self)
        check_model_spec(self.model)

@dataclasses.dataclass(kw_only=True)
class HellaSwagEval(ModelSettings):
    "`hellaswag`: accuracy on HellaSwag (4 endings an item; chance 0.25)."
    data: str = setting("val", "`val` (HellaSwag's validation set, downloaded) or a jsonl file of items")
    limit: int = setting(0, "score the first N items only; 0: all", low=0)
    style: str = setting("completion", "completion: build-nanogpt / llm.c; harness: lm-evaluation-harness",
                         choices=HELLASWAG_STYLES)
    def __post_init__(self):
        super().__post_init__()
        if self.data != "val": hellaswag_path(self.data)          # a file that is not there: refused now


# %% [markdown]
# The other two subcommands' settings, and the parser made from all three:

# %%
#| export
@dataclasses.dataclass(kw_only=True)
class WikiTextEval(ModelSettings):
    "`wikitext`: perplexity (token and word level) and bits per byte of WikiText-2 raw."
    split: str = setting("test", "the split", choices=tuple(WIKITEXT_SHA256))
    join: str = setting("raw", 'raw: the file, end-of-text first, every token scored; hf: the Hugging Face guide\'s '
                        '"\\n\\n".join of the rows, the first token only context; harness: lm-evaluation-harness\'s '
                        'pages, detokenized, windows not overlapping', choices=WIKITEXT_JOINS)
    batch_rows: int = setting(8, "windows per forward pass", low=1)
    def __post_init__(self):
        super().__post_init__()
        if self.join == "harness" and self.stride:
            raise SettingError(f"--stride={self.stride} does not apply to --join harness (its windows do not overlap); "
                               f"leave it out")

@dataclasses.dataclass(kw_only=True)
class TextEval(ModelSettings):
    "`text`: bits per byte, bits per character and perplexity of UTF-8 text files."
    files: tuple[str, ...] = setting(dataclasses.MISSING, "UTF-8 text files, each scored after an end-of-text token")
    batch_rows: int = setting(8, "windows per forward pass", low=1)
    def __post_init__(self):
        super().__post_init__()
        if missing := [f for f in self.files if not Path(f).expanduser().is_file()]:
            raise SettingError(f"--files: {missing[0]}: no such file; pass UTF-8 text files")

COMMANDS = {"hellaswag": (HellaSwagEval, "accuracy on HellaSwag (4 endings an item; chance 0.25)"),
            "wikitext": (WikiTextEval, "perplexity (token and word level) and bits per byte of WikiText-2 raw"),
            "text": (TextEval, "bits per byte, bits per character and perplexity of UTF-8 text files")}

def parser():
    "The command line of `python -m gpt2book.eval`, made from the settings of its subcommands."
    return settings_parser(PROG, COMMANDS, "Evaluate a model on HellaSwag, WikiText-2 or any text (chapter 15 of "
                                           "gpt2book).", HELP_EXAMPLES)


# %% [markdown]
# `run` does the work for a subcommand's settings and returns the result: it resolves the device with
# appendix B's `resolve_device`, checks the data before it loads a model (a wrong file should not
# wait for a 500 MB download), and scores HellaSwag with `evaluate_hellaswag` (which reads the file
# again, from `read_hellaswag`'s cache). A stride longer than the model's context can only be
# refused once the model is loaded. For `text`, `read_texts` reads every file first (missing, not
# UTF-8 or empty: refused, naming the file), and `score_texts` scores each as its own document and
# adds up the negative log-likelihoods, tokens, bytes and characters.

# %%
#| export
def read_texts(files) -> dict:
    "{path: text} of UTF-8 text files, refused clearly if a file is missing, not UTF-8, or empty."
    out = {}
    for f in files:
        path = Path(f).expanduser()
        try:
            out[path] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text (byte {e.start} cannot be decoded); convert it to UTF-8") from None
        if not out[path]: raise ValueError(f"{path} is empty: nothing to score")
    return out

def score_texts(model, tok, texts: dict, stride=None, batch_rows=8) -> dict:
    "Perplexity and bits per byte of several texts, each after an end-of-text token: totals, and each file's bits per byte."
    parts = {}
    for path, text in texts.items():
        try:
            parts[path] = perplexity(model, tok, text, stride, batch_rows, progress=True)
        except ValueError as e:
            raise ValueError(f"{path} cannot be scored with this model's tokenizer: {e}") from None
    tot = {k: sum(r[k] for r in parts.values()) for k in ("tokens", "bytes", "chars", "nll")}
    first = next(iter(parts.values()))
    return dict(**tot, block_size=first["block_size"], stride=first["stride"], ppl=math.exp(tot["nll"] / tot["tokens"]),
                bits_per_byte=tot["nll"] / math.log(2) / tot["bytes"], bits_per_char=tot["nll"] / math.log(2) / tot["chars"],
                per_file=[dict(file=str(p), tokens=r["tokens"], bytes=r["bytes"], bits_per_byte=r["bits_per_byte"])
                          for p, r in parts.items()])


# %%
#| export
def run(task: str, s) -> dict:
    "The result of `python -m gpt2book.eval TASK` with settings `s` (HellaSwagEval, WikiTextEval or TextEval), as a dict."
    device, t0 = resolve_device(s.device), time.time()
    if task == "hellaswag":                        # check the data before loading a model
        path = hellaswag_path(s.data)
        n = len(read_hellaswag(path, s.style, HELLASWAG_VAL_N if s.data == "val" else None))
    elif task == "wikitext":
        path, text = wikitext_path(s.split), wikitext_text(s.split, "raw")
    else:
        texts = read_texts(s.files)
    model, tok = load_model(s.model, device)
    stride = s.stride or None
    if s.stride > model.config.block_size:
        raise CommandError(f"--stride={s.stride} must be at most the model's block_size, {model.config.block_size}")
    if task == "hellaswag":
        out = evaluate_hellaswag(model, tok, s.data, s.style, s.limit, stride, progress=True)
        head = dict(task="hellaswag", style=s.style, data=s.data, items=min(s.limit or n, n), file=str(path))
    elif task == "wikitext":
        try:
            out = score_wikitext(model, tok, text, s.join, stride, s.batch_rows, progress=True)
        except ValueError as e:
            raise ValueError(f"WikiText-2 cannot be scored with this model's tokenizer: {e}") from None
        head = dict(task="wikitext", split=s.split, join=s.join, file=str(path))
    else:
        out, head = score_texts(model, tok, texts, stride, s.batch_rows), dict(task="text")
    return dict(**head, model=str(s.model), **out, device=device, seconds=round(time.time() - t0, 1))


# %% [markdown]
# `main` reads the command line into the subcommand's settings (a usage error is one line, exit
# status 2, before anything is read), and turns every error a user can cause while it runs (a
# damaged model, a wrong file, no network, a device this machine lacks, a text the tokenizer cannot
# encode) into one line on stderr with exit status 1, without a traceback: appendix B's `user_errors`.

# %%
#| export
def main(argv=None) -> dict:
    "The `python -m gpt2book.eval` command: prints the result as one JSON line and returns it."
    task, s = parse_settings(parser(), COMMANDS, argv)
    with user_errors(PROG, ValueError, RuntimeError, OSError):    # e.g. a wrong file, no network, a full disk
        result = run(task, s)
    print(json.dumps(result))
    return result


# %% [markdown]
# In a Jupyter kernel, a notebook also runs as `__main__`; the guard keeps this cell from running
# the command with the kernel's own arguments.

# %%
#| export
#| eval: false
if __name__ == "__main__" and "ipykernel" not in sys.modules:
    main()

# %% [markdown]
# The help of the `hellaswag` subcommand, then a run on the small file with a model saved as a
# Hugging Face folder (the untrained GPT-2-vocabulary model above: such a folder implies GPT-2's
# tokenizer), all in this process, as `python -m gpt2book.eval ...` runs it in a shell. `cli`
# returns what the command printed on stdout and stderr, and its exit status.

# %%
cli = lambda *args: run_main(main, args)                 # appendix B: (stdout, stderr, exit status)

help_text, _, status = cli("hellaswag", "--help")
print(help_text)
test_eq(status, 0)
untrained_dir = untrained.save_pretrained(tmp / "untrained")
out, _, status = cli("hellaswag", "--model", untrained_dir, "--data", hs_file, "--style", "harness")
res = json.loads(out)
print({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items() if k not in ("model", "file")})
test_eq((status, res["n"], res["skipped"], res["style"]), (0, 2, 0, "harness"))

# %% [markdown]
# `text` scores files, each as a document after an end-of-text token, and adds them up; here two
# short files, one with accents and an emoji (more bytes than characters):

# %%
(tmp / "a.txt").write_text("To be, or not to be, that is the question. ", encoding="utf-8")
(tmp / "b.txt").write_text("Naïve café, 😀. " * 3, encoding="utf-8")
out, _, status = cli("text", "--model", untrained_dir, "--files", tmp / "a.txt", tmp / "b.txt")
res = json.loads(out)
print({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items() if k not in ("model", "per_file")})
test_eq((status, res["bytes"], res["chars"]), (0, sum(len(p.read_bytes()) for p in (tmp / "a.txt", tmp / "b.txt")),
                                                sum(len(p.read_text(encoding="utf-8")) for p in (tmp / "a.txt", tmp / "b.txt"))))
assert res["bits_per_byte"] < res["bits_per_char"]         # the same bits over more bytes than characters

# %% [markdown]
# The refusals, each one line on stderr and nothing on stdout: numbers out of range, a model or a
# file that is not there, a file given as the model (exit status 2, before anything is read); then,
# with exit status 1, a data file without the fields the harness style needs, a stride longer than
# the model's context, and a device this machine lacks.

# %%
cases = {"limit": (["hellaswag", "--model", untrained_dir, "--limit=-5"], 2),
         "batch_rows": (["wikitext", "--model", untrained_dir, "--batch_rows=0"], 2),
         "no model": (["hellaswag", "--model", tmp / "no-model", "--data", hs_file], 2),
         "no data": (["hellaswag", "--model", untrained_dir, "--data", tmp / "no-data.jsonl"], 2),
         "no text": (["text", "--model", untrained_dir, "--files", tmp / "no-text.txt"], 2),
         "a file": (["hellaswag", "--model", hs_file, "--data", hs_file], 2),
         "no ctx_a": (["hellaswag", "--model", untrained_dir, "--data", text_only, "--style", "harness"], 1),
         "long stride": (["hellaswag", "--model", untrained_dir, "--data", hs_file, "--stride=65"], 1),
         "device": (["hellaswag", "--model", untrained_dir, "--data", hs_file, "--device=cuda:99"], 1)}
for name, (args, want) in cases.items():
    out, err, status = cli(*args)
    print(f"{name:11} exit {status}: {err.strip().replace(str(tmp), '$TMP')[:300]}")
    test_eq((status, out, len(err.strip().splitlines())), (want, "", 1))
    assert err.startswith(f"{PROG}") and "Traceback" not in err

# %% [markdown]
# ## Results: the CPU default on HellaSwag
#
# The model of chapter 9's `python -m gpt2book.train` (a character model of Tiny Shakespeare,
# 0.8M parameters, 64 characters of context), on the 10,042 validation items. This machine has no
# copy of the original `hellaswag_val.jsonl`, only a text extraction of it (the `klosax/hellaswag_text_data`
# extraction turned back into JSON lines): the same 10,042 items, contexts, endings and labels, but
# without `ctx_a`/`ctx_b` (so the harness style cannot run on it) and with WikiHow's tags already
# removed. The completion style reads `ctx`, which for the ActivityNet items is the original's;
# for the WikiHow items the tags are gone. The run, from the repository's root:
#
# ```bash
# python -m gpt2book.train --out_dir=/tmp/eval_cpu_default
# python -m gpt2book.eval hellaswag --model /tmp/eval_cpu_default --data hellaswag_val_text.jsonl
# ```
#
# Its JSON line, with the machine, was saved next to this chapter:

# %%
hs = json.loads(Path("data/hellaswag_cpu_default.json").read_text())
r, base = hs["result"], hs["shortest_ending_baseline"]
print(f"{hs['command']}\n  model: {hs['model']}\n  data: {hs['data']}\n  machine: {hs['machine']}")
print(f"scored {r['n']:,} items ({r['n'] / HELLASWAG_VAL_N:.1%}), skipped {r['skipped']:,} "
      f"(characters outside the model's vocabulary), in {r['seconds']:.0f} s")
for k in ("acc", "acc_norm"):
    print(f"  {k:8} {r[k]:.4f} ± {r[k + '_se']:.4f}   ({(r[k] - 0.25) / r[k + '_se']:+.1f} standard errors from chance)")
print(f"  no model, the shortest ending: {base['acc']:.4f} on the same {base['n']:,} items")
test_eq(r["n"] + r["skipped"], HELLASWAG_VAL_N)
test_eq(base["n"], r["n"])
test_close(r["acc_se"], math.sqrt(r["acc"] * (1 - r["acc"]) / r["n"]), eps=1e-9)
assert 0.55 < r["n"] / HELLASWAG_VAL_N < 0.6                                  # the prose below says so
assert abs(r["acc_norm"] - 0.25) < 2 * r["acc_norm_se"] and abs(r["acc"] - base["acc"]) < 2 * r["acc_se"]

# %% [markdown]
# This is what it is: a 0.8M-parameter model of Shakespeare's characters, scored on the 58% of the
# text-extracted items whose every character it knows (the others have digits, parentheses, quotes
# and the like: a biased subset), each ending character predicted from at most the 64 characters
# before it. `acc_norm` is within two standard errors of chance (0.25). `acc` is a little above
# it, but so is picking the shortest ending without any model: the sum of log-probabilities
# favours short endings, and on these items the right ending is a little more often the shortest.
# Nothing here says the model knows anything about everyday activities, and nothing should:
# HellaSwag asks for common sense about them, which neither Shakespeare nor 0.8M parameters
# provide. GPT-2 small's published 0.2955 and 0.3114 (`acc_norm`, the two styles) are what 124M parameters
# trained on web text reach.
#
# The same model on WikiText-2 is refused, as it should be:

# %%
wt = json.loads(Path("data/wikitext_cpu_default.json").read_text())
print(wt["command"], "\n ->", wt["error"])
assert "is not in this" in wt["error"]
