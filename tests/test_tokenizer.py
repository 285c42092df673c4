"""The byte-level BPE trainer of chapter 6: the fast trainer equals the definition on a corpus built to tie, any
Unicode round-trips, special tokens, edge cases, GPT-2's own first merges from web text, tiktoken's encoder with our
merges, saving, the command, and a data set prepared with a trained tokenizer that the trainer trains on. Then issue
25: special tokens as tiktoken has them, encode == encode_slow on any text (hypothesis), very long runs, Hugging Face's
format, streaming in bounded memory, and GPT-4's pre-tokeniser."""
import functools
import gzip
import itertools
import json
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tiktoken
from hypothesis import HealthCheck, given, settings, strategies as st

from gpt2book.common import run_main
from gpt2book.tokenizer import (GPT2_PATTERN, GPT4_PATTERN, BPETokenizer, GPT2Tokenizer, _engines_disagree, main,
                                pretoken_counts, pretoken_counts_parallel, tokenizer_from_dict, train_bpe,
                                train_merges, train_merges_naive)

EOT = "<|endoftext|>"


def test_incremental_equals_naive_on_a_corpus_of_ties():
    "Every pre-token occurs once and every letter pair is equally common: each round is decided by the tie rule."
    rng = random.Random(0)
    words = {"".join(w).encode(): 1 for w in itertools.permutations("abcde", 3)}          # 60 words, pairs tie
    words.update({bytes(rng.choices(b"abcdefgh", k=rng.randrange(2, 9))): rng.choice([1, 2]) for _ in range(300)})
    assert train_merges(words, 120) == train_merges_naive(words, 120)
    first = train_merges_naive({b"ab": 1, b"cd": 1, b"ef": 1}, 3)
    assert first == [(b"e", b"f"), (b"c", b"d"), (b"a", b"b")]                          # the greatest pair first


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.lists(st.sampled_from(b"aabc\xe4"), min_size=1, max_size=60).map(bytes),
                       st.integers(1, 5), max_size=25),
       st.integers(0, 120))
def test_incremental_equals_naive_on_any_corpus(words, n_merges):
    "Runs like aaaa (a pair overlapping itself), long pre-tokens, counts that tie: the linked-slot trainer is the definition."
    assert train_merges(words, n_merges) == train_merges_naive(words, n_merges)


def test_a_long_pre_token_costs_what_its_merges_touch():
    "One pre-token of 20,000 letters: the same merges as the definition (the old rewrite-the-word loop took minutes)."
    word = {bytes(random.Random(3).choices(b"abcdefghij", k=20_000)): 2, b"abc" * 50: 1}
    assert train_merges(word, 300) == train_merges_naive(word, 300)


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
    assert tok.encode(f"be{EOT}<|pad|>", allowed_special="all") == [*tok.encode("be"), 268, 269]   # one id each
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


def test_special_tokens_as_tiktoken_has_them():
    tok = train_bpe(f"to be, or not to be{EOT}that is the question<|pad|>" * 20, 280, [EOT, "<|pad|>"], workers=1)
    text = f"to be{EOT}or<|pad|>not"
    for enc in (tok.encode, tok.encode_slow):
        with pytest.raises(ValueError, match=r"special token '<\|endoftext\|>' \(at character 5\).*allowed_special"):
            enc(text)                                                      # the default: a special token's text is refused
        assert enc(text, allowed_special="all") == [*tok.encode("to be"), 278, *tok.encode("or"), 279,
                                                    *tok.encode("not")]
        only_eot = enc(text, allowed_special={EOT}, disallowed_special=())   # <|pad|> neither allowed nor refused: text
        assert only_eot == [*tok.encode("to be"), 278, *tok.encode_ordinary("or<|pad|>not")]
        with pytest.raises(ValueError, match="<\\|pad\\|>"):
            enc(text, allowed_special={EOT})                               # "all" disallowed = all not allowed
    ordinary = tok.encode_ordinary(text)
    assert 278 not in ordinary and 279 not in ordinary and tok.decode(ordinary) == text
    assert ordinary == tok.encode(text, disallowed_special=()) == tok.encode_slow(text, disallowed_special=())
    for bad, says in (([EOT, ""], "non-empty"), ([EOT, EOT], "more than once")):
        with pytest.raises(ValueError, match=says):
            BPETokenizer([], bad)
        with pytest.raises(ValueError, match=says):
            train_bpe("text", 300, bad)


def test_the_pipeline_encodes_documents_ordinarily(tmp_path):
    "A document holding the text <|endoftext|> gets no boundary from it: the only eot ids are the pipeline's."
    from gpt2book.loader import load_meta
    from gpt2book.prepare import prepare
    docs = tmp_path / "docs"; docs.mkdir()
    texts = [f"document {i} says {EOT} inside" for i in range(12)]
    for i, t in enumerate(texts):
        (docs / f"{i:02d}.txt").write_text(t)
    out = prepare(docs, tmp_path / "data", tokenizer="bytes", progress=False, workers=1)
    meta = load_meta(out)
    ids = np.concatenate([np.fromfile(out / sh["file"], "<u2") for split in ("train", "val")
                          for sh in meta["splits"][split]["shards"]]).tolist()
    assert ids.count(meta["eot"]) == len(texts) and len(ids) == sum(len(t.encode()) + 1 for t in texts)


EVERY = "".join(map(chr, [*range(0xD800), *range(0xE000, 0x110000)]))
NEW = _engines_disagree(GPT2_PATTERN).findall(EVERY)   # letters and digits the two regex engines class differently


@functools.lru_cache(maxsize=None)
def mixed_tokenizer(pattern=GPT2_PATTERN):
    "A tokenizer whose merges join ASCII letters, spaces and the letters only one regex engine knows."
    rng = random.Random(0)
    words = ["".join(rng.choice("abc" + "".join(NEW[:8])) for _ in range(rng.randrange(1, 6))) for _ in range(3000)]
    crossing = "".join(f" ab{x}ca" for x in NEW[:8]) * 100      # merges that cross where Rust's regex would cut
    return train_bpe(" ".join(words) + EOT + crossing + "  \n\n a b" * 50, 600, [EOT, "<|pad|>"], workers=1,
                     pattern=pattern)


pieces = st.one_of(st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
                   st.text(st.sampled_from(NEW[:8] + NEW[-8:] + list("abc \n")), max_size=12),
                   st.sampled_from([EOT, "<|pad|>", "<|", "|>", *(f" ab{x}ca" for x in NEW[:8])]),
                   st.integers(1, 3000).map(lambda n: " " * n), st.integers(1, 50).map(lambda n: "\n\t " * n))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pieces, max_size=8).map("".join), st.sampled_from(["gpt2", "gpt4"]))
def test_encode_equals_encode_slow_on_any_text(text, pattern):
    assert NEW, "tiktoken's regex and the regex module now agree on every letter: test with a subtler split"
    tok = mixed_tokenizer(GPT2_PATTERN if pattern == "gpt2" else GPT4_PATTERN)
    ids = tok.encode(text, allowed_special="all")
    assert ids == tok.encode_slow(text, allowed_special="all") and tok.decode(ids) == text
    ordinary = tok.encode_ordinary(text)
    assert ordinary == tok.encode_slow(text, disallowed_special=()) and tok.decode(ordinary) == text


def test_recent_letters_and_very_long_runs():
    tok = mixed_tokenizer()
    word = f" ab{NEW[0]}ca"                               # one pre-token to `regex`, three to tiktoken's Rust regex
    assert tok.to_tiktoken().encode_ordinary(word) != tok.encode_slow(word)      # the disagreement being fixed
    assert tok.encode(word) == tok.encode_slow(word) == [tok.ids[word.encode()]]   # learned whole, encoded whole
    plain = train_bpe("ab ab ba" * 10, 270, workers=1)   # no merge of spaces: encode_slow is quick on a long run
    long = "a" + " " * 1_000_000 + "b"                    # overflows the Rust regex's backtracking stack
    with pytest.raises(BaseException, match="StackOverflow|Max stack size"):   # a PanicException: no Exception
        plain.to_tiktoken().encode_ordinary(long)
    assert plain.encode(long) == plain.encode_slow(long) and plain.decode(plain.encode(long)) == long
    gpt2 = GPT2Tokenizer()                                # tiktoken's own GPT-2 raises a PanicException here
    ids = gpt2.encode(long)
    assert gpt2.decode(ids) == long and ids[0] == gpt2.encode("a")[0] and gpt2.encode_batch([long, "a"])[0] == ids


def test_hugging_face_loads_it_and_gives_the_same_ids(tmp_path):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    from gpt2book.prepare import split_documents
    train, val = split_documents("shakespeare_complete", "train"), split_documents("shakespeare_complete", "val")
    tok = train_bpe(EOT.join(train[:6]), 1000, [EOT, "<|pad|>"], workers=1)
    folder = tok.save_pretrained(tmp_path / "hf")
    hf = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    rng = random.Random(2)
    texts = [*val[:2], f"a{EOT}b<|pad|>c", "naïve café — 注意力 👩‍👩‍👧 e\u0301", "a  b\t\tc\n\n\n  \r\n end   ",
             *("".join(rng.choice("ab \n\t'sé注👍!9") for _ in range(40)) for _ in range(100))]
    for t in texts:
        assert hf.encode(t) == tok.encode(t, allowed_special="all"), t[:50]
        assert hf.decode(hf.encode(t)) == t
    auto = AutoTokenizer.from_pretrained(str(folder))
    assert auto.encode(val[2][:5000]) == tok.encode(val[2][:5000]) and auto.eos_token_id == tok.eot


MEASURE = r"""
import sys
from gpt2book.tokenizer import BPETokenizer
def vm_peak_kb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmPeak:")).split()[1])
tok = BPETokenizer.load(sys.argv[1])
tok.encode("warm up: tiktoken's encoder made, the regex engines compared")
before, n = vm_peak_kb(), 0
with open(sys.argv[2], encoding="utf-8") as f:
    for _ in tok.encode_iterable(f): n += 1
print(n, vm_peak_kb() - before)
"""


def test_encode_iterable_streams_a_5_mb_file_in_bounded_memory(tmp_path):
    "As CS336's assignment 1 tests it: line by line, the address space grows by less than 1 MB, and ids are encode's."
    import subprocess, sys, tracemalloc
    from gpt2book.prepare import split_documents
    text = "".join(split_documents("shakespeare_complete", "train")[:4])          # 0.5 MB
    tok = train_bpe(text[:300_000], 1000, workers=1)
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    big.write_text(text * (5_000_000 // len(text.encode()) + 1), encoding="utf-8")   # 5.5 MB
    small.write_text(text, encoding="utf-8")
    with open(small, encoding="utf-8") as f:
        tracemalloc.start()
        n = sum(1 for _ in tok.encode_iterable(f))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    with open(small, encoding="utf-8") as f:
        ids = list(tok.encode_iterable(f))
    assert ids == tok.encode(text) and n == len(ids) and peak < 1 << 20, peak    # Python's heap: under 1 MB
    out = subprocess.run([sys.executable, "-c", MEASURE, str(tok.save(tmp_path / "tok")), str(big)],
                         capture_output=True, text=True, timeout=300)
    n, grew_kb = map(int, out.stdout.split())
    assert n == len(ids) * (5_000_000 // len(text.encode()) + 1) and grew_kb < 1024, (n, grew_kb, out.stderr[-500:])


def test_training_streamed_from_files_learns_the_same_merges(tmp_path):
    from gpt2book.prepare import split_documents
    from gpt2book.tokenizer import iter_file_lines, pretoken_counts_stream
    docs = split_documents("shakespeare_complete", "train")[:3]
    docs += ["no newline at the end  ", "  \n\n lines\n\n\nthat start with spaces \n\t\n'll end", "windows\r\nline\r\nends"]
    files = []
    for i, d in enumerate(docs):
        files.append(tmp_path / f"{i}.txt"); files[-1].write_bytes(d.encode())
    whole = EOT.join(f.read_text(encoding="utf-8") for f in files)          # what the command trains on
    assert pretoken_counts_stream(iter_file_lines(files), [EOT]) == pretoken_counts(whole, [EOT])
    assert train_bpe(iter_file_lines(files), 700).merges == train_bpe(whole, 700, workers=1).merges
    chunks = [whole[i:i + 7] for i in range(0, len(whole), 7)]           # pieces cut anywhere, even inside a token
    assert pretoken_counts_stream(chunks, [EOT]) == pretoken_counts(whole, [EOT])
    assert list(BPETokenizer([]).encode_iterable(chunks, allowed_special="all")) == BPETokenizer([]).encode(
        whole, allowed_special="all")


def test_gpt4_pattern_is_cl100ks_and_trains_encodes_streams_and_saves(tmp_path):
    import inspect
    import tiktoken_ext.openai_public as openai_public
    from gpt2book.tokenizer import GPT4_PATTERN, pretoken_counts_stream
    src = inspect.getsource(openai_public.cl100k_base)
    assert f'r"""{GPT4_PATTERN}"""' in src                                # the very pattern tiktoken's cl100k_base uses
    rng = random.Random(3)
    text = "".join(rng.choice(["I'LL ", "you're ", "12345", "!\n\n", ":\n", " \n", "\r\n", "é", "注意", "  x", "\t"])
                   for _ in range(20_000))
    tok = train_bpe(text, 500, workers=1, pattern=GPT4_PATTERN)
    assert tok.pattern == GPT4_PATTERN and BPETokenizer.load(tok.save(tmp_path / "t")).pattern == GPT4_PATTERN
    assert tok.encode(text) == tok.encode_slow(text) and tok.decode(tok.encode(text)) == text
    lines = text.splitlines(keepends=True)
    assert pretoken_counts_stream(lines, pattern=GPT4_PATTERN) == pretoken_counts(text, pattern=GPT4_PATTERN)
    assert list(tok.encode_iterable(lines)) == tok.encode(text)
    assert train_bpe(iter(lines), 500, pattern=GPT4_PATTERN).merges == tok.merges
