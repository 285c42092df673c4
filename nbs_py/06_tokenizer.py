# %% [markdown]
# # Tokenizers: characters and GPT-2's byte-level BPE
#
# > From the 65 characters of Tiny Shakespeare to GPT-2's 50,257 byte-level BPE tokens, both behind one small interface that the rest of the book uses.

# %%
#| default_exp tokenizer

# %% [markdown]
# A language model reads integers, not text. A *tokenizer* is the pair of functions that turns
# text into a list of integer ids (`encode`) and back (`decode`). Two numbers matter for the model:
# the **vocabulary size** $V$ (the number of rows of the embedding table and of columns of the
# output layer) and the **sequence length** a text becomes (attention costs $O(T^2)$ and a context
# window holds a fixed number of tokens, so fewer tokens per text means more text per context).
#
# This chapter builds the simplest tokenizer, characters, sees why it is not enough, then takes
# apart GPT-2's byte-level BPE (through [tiktoken](https://github.com/openai/tiktoken), the
# reference implementation). Both end up behind one interface:
#
# | member | meaning |
# |---|---|
# | `name` | `"char"` or `"gpt2"` |
# | `vocab_size` | number of ids, $V$; every id is in `range(vocab_size)` |
# | `eot` | the id of the end-of-text token that separates documents |
# | `encode(text) -> list[int]` / `decode(ids) -> str` | the two directions |
# | `encode_batch(texts) -> list[list[int]]` | many texts at once (in parallel where it can) |
# | `to_dict()` | a JSON-able description; `tokenizer_from_dict` rebuilds it (the data's `meta.json` holds it) |

# %%
#| export
from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np
import tiktoken

# %%
import json, random, unicodedata

import matplotlib.pyplot as plt
import regex
import torch
from fastcore.test import test_eq, test_fail
from IPython.display import HTML, display

from gpt2book.prepare import SOURCES, fetch  # chapter 7: where the data comes from
from gpt2book.model import GPT, GPTConfig  # chapter 5: to count parameters

# %% [markdown]
# ## The data: Tiny Shakespeare
#
# Tiny Shakespeare (Karpathy's char-rnn corpus, 1.1 MB of plays) is the first data set of the book.
# `fetch` (from chapter 7, where the data pipeline is built) downloads it from GitHub once into a
# cache, or reads it from the local mirror folder named by `GPT2BOOK_MIRROR` on a machine without a
# network, and checks its sha256 either way.

# %%
shakespeare = fetch(SOURCES["shakespeare"]).read_text(encoding="utf-8")
print(f"{len(shakespeare):,} characters")
print(shakespeare[:200])

# %% [markdown]
# ## Characters
#
# The simplest tokenizer gives every distinct character of the training text an id. Tiny
# Shakespeare uses 65 characters: upper- and lower-case letters, the digit 3, punctuation, space and newline.

# %%
chars = sorted(set(shakespeare))
print(len(chars), repr("".join(chars)))
assert len(chars) == 65


# %% [markdown]
# Documents need a separator the model can see: *this text ends here, the next one is unrelated*.
# GPT-2 has a special token `<|endoftext|>` for that. The character tokenizer reserves one more id
# for it, **after** the characters: ids `0..len(chars)-1` are characters (in code-point order, so
# the ids match nanoGPT's `shakespeare_char`), and `eot = len(chars)`. So the character vocabulary
# of Tiny Shakespeare has $V = 66$ (nanoGPT's has 65 and no end-of-text id).
#
# `encode` maps code points to ids with one vectorised `searchsorted` over the sorted code points,
# which also finds every character that is missing in one pass. A character that is not in the
# vocabulary is an error that names it: the vocabulary is fixed by the training text.

# %%
#| export
class CharTokenizer:
    "One id per character of `chars` (in code-point order), plus one id for end-of-text: `eot == len(chars)`."
    name = "char"
    eot_text = "<|endoftext|>"  # what `decode` writes for the end-of-text id

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        if not self.chars:
            raise ValueError("CharTokenizer needs at least one character; build it with CharTokenizer.from_text(text)")
        self.eot = len(self.chars)
        self.vocab_size = len(self.chars) + 1
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)  # sorted, so searchsorted works

    @classmethod
    def from_text(cls, text):
        "The tokenizer whose vocabulary is every character that occurs in `text`."
        return cls(set(text))

    def encode(self, text) -> list[int]:
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (n,) one code point per character
        ids = np.searchsorted(self._codes, cps)                         # (n,) position in the vocabulary
        found = self._codes[np.minimum(ids, len(self._codes) - 1)] == cps
        if not found.all():
            i = int(np.argmin(found))
            raise ValueError(f"character {text[i]!r} (U+{ord(text[i]):04X}) at position {i} is not in this "
                             f"{len(self.chars)}-character vocabulary; build the tokenizer from text that contains it")
        return ids.tolist()

    def encode_batch(self, texts) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids) -> str:
        return "".join(self.eot_text if i == self.eot else self.chars[i] for i in ids)

    def to_dict(self):
        return {"name": self.name, "chars": "".join(self.chars)}

    def __repr__(self):
        return f"CharTokenizer({len(self.chars)} chars + eot={self.eot}, vocab_size={self.vocab_size})"


# %%
ctok = CharTokenizer.from_text(shakespeare)
ids = ctok.encode("First Citizen:")
print(ctok, ids)
test_eq(ctok.decode(ids), "First Citizen:")
test_eq((ctok.vocab_size, ctok.eot), (66, 65))
test_eq(ctok.encode("\n !"), [0, 1, 2])  # same ids as nanoGPT's shakespeare_char meta.pkl
test_eq(ctok.decode(ctok.encode(shakespeare)), shakespeare)
test_eq(ctok.decode([ctok.eot]), "<|endoftext|>")
test_fail(lambda: ctok.encode("café"), contains="'é'")

# %% [markdown]
# Two problems make characters a poor choice beyond toy data:
#
# 1. **Sequences are long.** Every character is a token, so a context of 1024 tokens holds 1024
#    characters: a few dozen short lines of a play (counted below), and attention's cost grows with
#    the square of the context.
# 2. **The vocabulary is closed.** It is whatever the training text contained. Tiny Shakespeare has
#    no `é`, no `{`, no emoji; a model with this vocabulary cannot even read them. Taking all of
#    Unicode instead would give one id per assigned character, well over 100,000 (counted below),
#    most of which the model never sees.

# %%
line = len(shakespeare) / shakespeare.count("\n")  # characters per line, with its newline
print(f"{line:.1f} characters per line: 1024 characters are {1024 / line:.0f} lines of the play on average")
assert 24 <= 1024 / line <= 48  # "a few dozen"
n_assigned = sum(unicodedata.category(chr(c)) not in ("Cn", "Co", "Cs") for c in range(0x110000))
print(f"Unicode {unicodedata.unidata_version} (this Python's): {n_assigned:,} assigned characters, "
      "not counting private-use code points and surrogates")
assert n_assigned > 100_000

# %% [markdown]
# ## GPT-2's byte-level BPE
#
# GPT-2 (Radford et al. 2019, section 2.2) solves both with **byte-level byte-pair encoding**:
#
# 1. **Bytes.** Text is UTF-8 encoded, so any string is a sequence over just 256 symbols, and no
#    input is ever unknown.
# 2. **Pre-tokenisation.** A regular expression cuts the text into chunks (a word with its leading
#    space, a run of digits, a run of punctuation, whitespace); merges never cross chunk borders,
#    so "dog." and "dog!" share the token " dog" instead of learning "dog." and "dog!" separately.
# 3. **Merges with ranks.** Training (once, by OpenAI) counted adjacent pairs of symbols and
#    repeatedly merged the most frequent pair into a new symbol, 50,000 times. The *rank* of a
#    merged symbol is when it was learned. To encode a chunk, start from its bytes and keep merging
#    the adjacent pair whose merge has the lowest rank, until no adjacent pair is mergeable.
# 4. **One special token.** Id 50256, `<|endoftext|>`, marks document boundaries.
#
# $256 + 50{,}000 + 1 = 50{,}257$ ids. tiktoken implements this in Rust; we look at each step, then
# wrap it.

# %%
enc = tiktoken.get_encoding("gpt2")
test_eq(enc.n_vocab, 50257)
test_eq(enc.encode_ordinary("Hello world"), [15496, 995])
print(enc._pat_str)

# %% [markdown]
# The pre-tokenising regex: `'s`, `'t`, ... contractions; ` ?\p{L}+` a word (letters) with an
# optional leading space; ` ?\p{N}+` digits; ` ?[^\s\p{L}\p{N}]+` punctuation; then whitespace rules
# that keep the last space of a run for the next word.

# %%
chunks = regex.findall(enc._pat_str, "Hello world, it's 2019!   GPT-2 isn't   small.")
print(chunks)
test_eq(chunks[:5], ["Hello", " world", ",", " it", "'s"])

# %% [markdown]
# Now the merges. `enc._mergeable_ranks` maps every token's bytes to its rank (= its id). A few
# lines reproduce BPE on one chunk: start from single bytes, merge the lowest-ranked adjacent pair
# (the leftmost one on a tie), repeat.

# %%
ranks = enc._mergeable_ranks  # dict: bytes -> rank (== token id)

def bpe(chunk: bytes) -> list[int]:
    parts = [bytes([b]) for b in chunk]
    while len(parts) > 1:
        merges = [(ranks.get(parts[i] + parts[i + 1]), i) for i in range(len(parts) - 1)]
        merges = [(r, i) for r, i in merges if r is not None]
        if not merges:
            break
        _, i = min(merges)                        # lowest rank first, leftmost on a tie
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[p] for p in parts]

def bpe_encode(text):
    return [t for c in regex.findall(enc._pat_str, text) for t in bpe(c.encode("utf-8"))]

sample = shakespeare[:3000] + " naïve café 🤖 ÷ 12345678"
test_eq(bpe_encode(sample), enc.encode_ordinary(sample))  # our 10 lines == tiktoken's Rust
print([enc.decode_single_token_bytes(t) for t in bpe_encode(" Shakespearean")])


# %% [markdown]
# What does a text look like in tokens? Each coloured box below is one token (a space at the start
# of a box belongs to that token). Common words are one token with their leading space; rarer
# words, numbers and non-English text fall apart into pieces, down to single bytes: an emoji is
# 4 UTF-8 bytes, and a byte that is only part of a character shows as `�` on its own.

# %%
def show_tokens(ids, decode_one):
    colours = ["#fde2e4", "#e2ece9", "#dfe7fd", "#fff1c1", "#e8dff5", "#d1f0e5"]
    spans = [f'<span style="background:{colours[i % len(colours)]};border-radius:3px;padding:1px 0;'
             f'white-space:pre-wrap">{decode_one(t).replace("&", "&amp;").replace("<", "&lt;")}</span>'
             for i, t in enumerate(ids)]
    return HTML('<div style="font-family:monospace;line-height:1.9">' + "".join(spans) + "</div>")

texts = {
    "Shakespeare": shakespeare[:160],
    "English": "The quick brown fox jumps over the lazy dog. Transformers attend to every previous token.",
    "Python": "def forward(self, x):\n    return self.c_proj(self.gelu(self.c_fc(x)))",
    "German": "Die Aufmerksamkeit ist alles, was man braucht: Sprachmodelle lernen ohne Überwachung.",
    "Chinese": "注意力就是你所需要的一切。",
    "numbers+emoji": "In 2019, GPT-2 had 1,558,000,000 parameters 🤖🚀",
}
for name, t in texts.items():
    display(HTML(f"<b>{name}</b>: {len(t)} characters, {len(enc.encode_ordinary(t))} tokens"))
    display(show_tokens(enc.encode_ordinary(t), lambda i: enc.decode([i])))

# %% [markdown]
# Counted over whole texts: characters, UTF-8 bytes and GPT-2 tokens. English prose (and
# Shakespeare) compresses to about 3-4 characters per token; code with its indentation a bit less;
# German and especially Chinese much less, because GPT-2's merges were learned on English web text.

# %%
counts = {k: (len(t), len(t.encode("utf-8")), len(enc.encode_ordinary(t))) for k, t in texts.items()}
fig, ax = plt.subplots(figsize=(8, 3.2))
xs = np.arange(len(counts))
for j, label in enumerate(["characters", "UTF-8 bytes", "GPT-2 tokens"]):
    ax.bar(xs + (j - 1) * 0.27, [c[j] for c in counts.values()], width=0.27, label=label)
ax.set_xticks(xs, list(counts)); ax.set_ylabel("count"); ax.legend(); ax.set_title("The same texts in characters, bytes and tokens")
plt.tight_layout(); plt.show()
n_tok = len(enc.encode_ordinary(shakespeare))
print(f"Tiny Shakespeare: {len(shakespeare):,} characters -> {n_tok:,} GPT-2 tokens "
      f"({len(shakespeare) / n_tok:.2f} characters per token)")
test_eq(n_tok, 338025)


# %% [markdown]
# ## The GPT-2 tokenizer behind the interface
#
# `GPT2Tokenizer` wraps tiktoken's `gpt2` encoding. It encodes with `encode_ordinary`, which treats
# the *text* `<|endoftext|>` as ordinary characters: a document that happens to contain that string
# must not be able to inject a document boundary. The boundary is only ever the id `eot` (50256),
# added by the data pipeline (chapter 7) between documents. `encode_batch` uses tiktoken's
# thread pool (the Rust encoder releases Python's GIL, so the threads run on all cores).
#
# tiktoken downloads its two GPT-2 files on first use; on an offline machine point
# `TIKTOKEN_CACHE_DIR` at a folder that already holds them.

# %%
#| export
class GPT2Tokenizer:
    "GPT-2's byte-level BPE (tiktoken `gpt2`): 50,257 ids, end-of-text = 50256."
    name = "gpt2"

    def __init__(self):
        try:
            self.enc = tiktoken.get_encoding("gpt2")
        except Exception as e:  # no network and no cache: say how to fix it
            raise RuntimeError(f"tiktoken could not load the GPT-2 encoding ({e}). Offline? Set TIKTOKEN_CACHE_DIR "
                               "to a folder holding tiktoken's cached GPT-2 files.") from e
        self.eot = self.enc.eot_token   # 50256
        self.vocab_size = self.enc.n_vocab  # 50257

    def encode(self, text) -> list[int]:
        return self.enc.encode_ordinary(text)

    def encode_batch(self, texts, num_threads=None) -> list[list[int]]:
        return self.enc.encode_ordinary_batch(list(texts), num_threads=num_threads or os.cpu_count() or 1)

    def decode(self, ids) -> str:
        return self.enc.decode(list(ids))

    def to_dict(self):
        return {"name": self.name}

    def __repr__(self):
        return f"GPT2Tokenizer(vocab_size={self.vocab_size}, eot={self.eot})"


# %% [markdown]
# The interface itself is a `typing.Protocol`: anything with these members is a tokenizer, and
# `isinstance` checks the members exist. `get_tokenizer` makes one by name, and
# `tokenizer_from_dict` rebuilds one from its `to_dict()`, so a prepared data set can carry the exact
# tokenizer (for characters: the vocabulary) that made it.

# %%
#| export
@runtime_checkable
class Tokenizer(Protocol):
    "What the book needs from a tokenizer: `encode`/`decode`, a batch encoder, `vocab_size` and the end-of-text id."
    name: str
    vocab_size: int
    eot: int
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids) -> str: ...
    def encode_batch(self, texts) -> list[list[int]]: ...
    def to_dict(self) -> dict: ...

TOKENIZERS = {"gpt2": GPT2Tokenizer, "char": CharTokenizer}

def get_tokenizer(name, **kw) -> Tokenizer:
    "The tokenizer called `name`: `get_tokenizer('gpt2')`, `get_tokenizer('char', chars=...)` or `('char', text=...)`."
    if name not in TOKENIZERS:
        raise ValueError(f"tokenizer {name!r} is unknown; use one of {list(TOKENIZERS)}")
    if name == "char":
        if "text" in kw:
            return CharTokenizer.from_text(kw.pop("text"), **kw)
        if "chars" not in kw:
            raise ValueError("the char tokenizer is built from data: pass chars=... or text=...")
    return TOKENIZERS[name](**kw)

def tokenizer_from_dict(d) -> Tokenizer:
    "Rebuild a tokenizer from `tok.to_dict()` (as stored in a data set's meta.json)."
    d = dict(d)
    return get_tokenizer(d.pop("name"), **d)


# %%
gtok = get_tokenizer("gpt2")
assert isinstance(gtok, Tokenizer) and isinstance(ctok, Tokenizer)
test_eq(gtok.encode("Hello world"), [15496, 995])
test_eq((gtok.vocab_size, gtok.eot), (50257, 50256))
test_eq(gtok.decode([gtok.eot]), "<|endoftext|>")
assert gtok.eot not in gtok.encode("<|endoftext|>")  # the text is not the special id
test_eq(gtok.encode_batch(["Hello world", "Hi"]), [[15496, 995], [17250]])
test_fail(lambda: get_tokenizer("sentencepiece"), contains="gpt2")

# %% [markdown]
# Round trips: decoding the encoding gives the text back, for any Unicode (accents, CJK, emoji with
# joiners and skin tones), runs of whitespace, and random strings of code points. Byte-level BPE is
# lossless by construction; the char tokenizer is lossless on its own vocabulary.

# %%
hard = ["naïve café, Ω≈ç√∫", "注意力就是你所需要的一切。", "👩‍👩‍👧‍👦 🏽👍🏽", "a  b\t\tc\n\n\n  \r\n end   ",
        "", " ", "\u200b zero width", "<|endoftext|> in text"]
rng = random.Random(0)
def rand_text(n):  # random code points, skipping the surrogates (not encodable in UTF-8)
    return "".join(chr(rng.choice([rng.randrange(32, 0xD800), rng.randrange(0xE000, 0x110000)])) for _ in range(n))
hard += [rand_text(rng.randrange(1, 60)) for _ in range(200)]
for t in hard:
    test_eq(gtok.decode(gtok.encode(t)), t)
    c = CharTokenizer.from_text(t or "x")
    test_eq(c.decode(c.encode(t)), t)

# %% [markdown]
# The char vocabulary is data: `to_dict` stores it, so the ids a model was trained on can be
# restored exactly, here through a JSON round trip as `meta.json` will do.

# %%
restored = tokenizer_from_dict(json.loads(json.dumps(ctok.to_dict())))
test_eq(restored.chars, ctok.chars)
test_eq(restored.encode(shakespeare[:1000]), ctok.encode(shakespeare[:1000]))
test_eq(tokenizer_from_dict(gtok.to_dict()).encode("Hello world"), [15496, 995])
print(ctok.to_dict())

# %% [markdown]
# Seen side by side on Tiny Shakespeare, with what the vocabulary costs the model: the token
# embedding table has $V \times d$ parameters ($d$ = 768 in GPT-2 small, whose parameters chapter 5
# counted on the `meta` device).

# %%
for tok in (ctok, gtok):
    n = len(tok.encode(shakespeare))
    print(f"{tok.name:5s} vocab {tok.vocab_size:6,d}  tokens {n:9,d}  chars/token {len(shakespeare) / n:.2f}  "
          f"1024 tokens hold {1024 * len(shakespeare) / n:,.0f} characters")
with torch.device("meta"):
    small = GPT(GPTConfig())
emb = gtok.vocab_size * small.config.n_embd
print(f"GPT-2 embedding table: {emb / 1e6:.1f} M parameters, {emb / small.num_params():.0%} of GPT-2 small's "
      f"{small.num_params() / 1e6:.1f} M")

# %% [markdown]
# Characters give a 66-id vocabulary and 1.1 M tokens; GPT-2 gives 50,257 ids and 3.3x fewer
# tokens, so a context of 1024 GPT-2 tokens holds over three thousand characters of play.
# The price is the vocabulary: the embedding table alone is about a third of GPT-2 small. Chapter 7
# turns both into token files for training.
