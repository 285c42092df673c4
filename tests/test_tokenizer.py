"""The byte-level BPE trainer of chapter 6: the fast trainer equals the definition on a corpus built to tie, any
Unicode round-trips, special tokens, edge cases, GPT-2's own first merges from web text, tiktoken's encoder with our
merges, saving, the command, and a data set prepared with a trained tokenizer that the trainer trains on."""
import gzip
import itertools
import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest
import tiktoken

from gpt2book.common import run_main
from gpt2book.tokenizer import (BPETokenizer, main, pretoken_counts, pretoken_counts_parallel, tokenizer_from_dict,
                                train_bpe, train_merges, train_merges_naive)

EOT = "<|endoftext|>"


def test_incremental_equals_naive_on_a_corpus_of_ties():
    "Every pre-token occurs once and every letter pair is equally common: each round is decided by the tie rule."
    rng = random.Random(0)
    words = {"".join(w).encode(): 1 for w in itertools.permutations("abcde", 3)}          # 60 words, pairs tie
    words.update({bytes(rng.choices(b"abcdefgh", k=rng.randrange(2, 9))): rng.choice([1, 2]) for _ in range(300)})
    assert train_merges(words, 120) == train_merges_naive(words, 120)
    first = train_merges_naive({b"ab": 1, b"cd": 1, b"ef": 1}, 3)
    assert first == [(b"e", b"f"), (b"c", b"d"), (b"a", b"b")]                          # the greatest pair first


def test_unicode_round_trips_and_lone_surrogates_are_refused():
    tok = train_bpe("naïve café — 注意力 👩‍👩‍👧 e\u0301 " * 50 + "plain text " * 200, 400, workers=1)
    rng = random.Random(1)
    texts = ["", " ", "e\u0301\u0302 combining", "注意力就是你所需要的一切。", "👩‍👩‍👧‍👦 🏽👍🏽", "\x00\x7f\t\n",
             *("".join(chr(rng.choice([rng.randrange(32, 0xD800), rng.randrange(0xE000, 0x110000)])) for _ in range(40))
               for _ in range(100))]
    for t in texts:
        assert tok.decode(tok.encode(t)) == t and tok.encode(t) == tok.encode_slow(t)
    for bad in ("\ud800", "ok \udfff end"):
        with pytest.raises(ValueError, match="lone surrogate"):
            tok.encode(bad)
        with pytest.raises(ValueError, match="lone surrogate"):
            train_bpe(bad, 300)


def test_special_tokens_empty_text_and_sizes():
    tok = train_bpe(f"to be, or not to be: that is the question{EOT}" * 20, 270, [EOT, "<|pad|>"], workers=1)
    assert tok.vocab_size == 270 and tok.eot == 268 and tok.special_ids["<|pad|>"] == 269
    assert tok.encode(f"be{EOT}<|pad|>") == [*tok.encode("be"), 268, 269]            # each special token: one id
    assert all(EOT.encode() not in tok.vocab[i] for i in range(268))                  # never merged into a symbol
    empty = train_bpe("", 257)
    assert empty.vocab_size == 257 and empty.merges == [] and empty.encode("") == []
    with pytest.raises(ValueError, match="use at least 258"):
        train_bpe("text", 257, [EOT, "<|pad|>"])
    assert train_bpe("ab", 1000).vocab_size == 258                                     # one merge is all "ab" holds


def test_parallel_counting_equals_serial():
    text = EOT.join(f"document {i}: " + "to be or not to be " * (i % 7 + 1) for i in range(200))
    assert pretoken_counts_parallel(text, [EOT], workers=2) == pretoken_counts(text, [EOT])


WEBTEXT = Path(__file__).with_name("webtext_sample.jsonl.gz")   # every 12th of the mirror's webtext_valid_63tok.jsonl


@pytest.fixture(scope="module")
def webtext():
    """394 snippets of OpenAI's WebText (GPT-2 output dataset, webtext.valid.jsonl, each cut to its first 63 GPT-2
    tokens by Isinlor/AdversarialDecoder; 117 KB), shipped with the tests so that they run on a fresh clone."""
    with gzip.open(WEBTEXT, "rt", encoding="utf-8") as f:
        return EOT.join(json.loads(l)["text"] for l in f)


def test_web_text_gives_gpt2s_first_merges(webtext):
    "117 KB of WebText against GPT-2's 40 GB: the same first merges, in an order that differs where counts are close."
    ours = train_bpe(webtext, 257 + 100, workers=1).merges
    ranks = tiktoken.get_encoding("gpt2")._mergeable_ranks
    def pair_of(token):                 # the two symbols GPT-2 merged into `token`
        parts = [bytes([b]) for b in token]
        while len(parts) > 2:
            _, i = min((ranks.get(a + b, math.inf), i) for i, (a, b) in enumerate(zip(parts, parts[1:])))
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return tuple(parts)
    gpt2 = [pair_of(t) for t, r in sorted(ranks.items(), key=lambda kv: kv[1]) if 256 <= r < 356]
    common = {n: len(set(ours[:n]) & set(gpt2[:n])) for n in (10, 20, 50, 100)}
    assert ours[:2] == gpt2[:2] == [(b" ", b"t"), (b" ", b"a")]
    assert common[10] >= 9 and common[20] >= 18 and common[100] >= 85, common   # measured: 9, 19, 46, 90


def test_tiktoken_encodes_as_we_do_and_saving_keeps_the_tokenizer(tmp_path):
    from gpt2book.prepare import split_documents
    train, val = split_documents("shakespeare_complete", "train"), split_documents("shakespeare_complete", "val")
    tok = train_bpe(EOT.join(train[:12]), 1024)
    text = val[0]
    assert tok.to_tiktoken().encode(text, allowed_special="all") == tok.encode_slow(text)
    again = BPETokenizer.load(tok.save(tmp_path / "t"))
    assert again.encode(text) == tok.encode(text) and again.merges == tok.merges
    assert tokenizer_from_dict(json.loads(json.dumps(tok.to_dict()))).encode(text) == tok.encode(text)


def test_the_command_and_a_data_set_prepared_with_it(tmp_path, capsys):
    from gpt2book.loader import load_meta
    from gpt2book.prepare import main as prepare_main
    from gpt2book.config import make_config
    from gpt2book.train import train
    docs = tmp_path / "texts"; docs.mkdir()
    from gpt2book.prepare import split_documents
    for i, d in enumerate(split_documents("shakespeare_complete", "train")[:6]):
        (docs / f"{i}.txt").write_text(d)
    out, err, status = run_main(main, ["train", "--input", docs, "--vocab_size", "600", "--out", tmp_path / "bpe"])
    assert status == 0 and "600 ids" in out, err
    for name, tok in (("bpe", tmp_path / "bpe"), ("bytes", "bytes")):
        data = tmp_path / f"data_{name}"
        _, err, status = run_main(prepare_main, [docs, "--tokenizer", tok, "--out", data, "--quiet"])
        assert status == 0, err
        meta = load_meta(data)
        assert meta["vocab_size"] == (600 if name == "bpe" else 257)
        assert tokenizer_from_dict(meta["tokenizer"]).name == "bpe"
    s = train(make_config(data_dir=str(tmp_path / "data_bpe"), out_dir=str(tmp_path / "run"), n_layer=1, n_head=2,
                          n_embd=32, block_size=32, batch_size=4, max_steps=3, eval_iters=2, sample_tokens=20))
    assert s["step"] == 3 and isinstance(s["sample"], str) and len(s["sample"]) > 10
