"""Tests of chapter 15 (`gpt2book.eval`): HellaSwag scores in both styles and sliding-window perplexity, item by item
and token by token against references computed with `transformers` on a small random GPT-2 saved in Hugging Face
format; HellaSwag during training (one process, a 2-rank split computed in one process, and the DDP path with
`all_reduce` faked and barriers forbidden); skipping what a character tokenizer cannot encode; `python -m
gpt2book.eval` in this process: --help, a run, and every refusal (one line on stderr, exit status 2 for a usage error,
1 for the rest), WikiText offline. Every file is generated here. About 15 s on 2 cores.
"""
import hashlib
import json
import math
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from gpt2book.common import run_main
import tiktoken
import torch

import gpt2book.eval
from gpt2book.eval import (PROG, hellaswag_counts, hellaswag_during_training, main, perplexity, read_hellaswag,
                           score_item, token_bytes, wikitext_path, wikitext_text, wikitext_units)
from gpt2book.model import GPT, GPTConfig
from gpt2book.checkpoint import load_model
from gpt2book.tokenizer import BPETokenizer, CharTokenizer, train_bpe

transformers = pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py

BLOCK = 32      # the test model's block_size: several items below do not fit in it
ENC = tiktoken.get_encoding("gpt2")
LONG_CTX = ("The instructor explains how to hold the paddle, where to sit in the boat, how to breathe while "
            "rowing, and why the team must keep time with the drum at the front. The crew")

# Items in the original format (all fields), written for these tests: an ActivityNet-like item that fits the window,
# WikiHow-like items with [header]/[title]/[step]/[substeps] tags, an empty ctx_b, a context longer than the window,
# and an ending longer than the window (scored with sliding windows).
ITEMS = [
    dict(activity_label="Roof shingle removal", ctx_a="A man is sitting on a roof.", ctx_b="he",
         endings=["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                  "is holding a rubik's cube.", "starts pulling up roofing on a roof."], label=3),
    dict(activity_label="Home and Garden", ctx_a="[header] How to water a cactus [title] Check the soil.",
         ctx_b="[step] Push a finger into the soil",
         endings=["up to the first knuckle. [substeps] If it is dry, water it.", "and sing to it.",
                  "[title] Paint the pot. [step] Any colour will do.", "of the garden next door [header]"], label=0),
    dict(activity_label="Rowing", ctx_a=LONG_CTX, ctx_b="starts",
         endings=["to row together.", "singing loudly.", "eating sandwiches on the shore.", "a fire."], label=0),
    dict(activity_label="Making a sandwich", ctx_a="A woman puts two slices of bread on a plate.", ctx_b="",
         endings=["She spreads butter on both slices, then adds cheese, tomato, lettuce and a thin slice of ham, "
                  "presses them together, cuts the sandwich in two and puts it on a plate next to a glass of milk.",
                  "She throws the plate out of the window.", "She reads a book.", "She sleeps."], label=0),
    dict(activity_label="Playing violin", ctx_a="A girl lifts a violin to her chin.", ctx_b="the girl",
         endings=["plays a slow tune.", "eats the bow.", "The girl paints the violin red.", "laughs."], label="0"),
]
for i, it in enumerate(ITEMS):
    it.update(ind=i, ctx=(it["ctx_a"] + " " + it["ctx_b"]) if it["ctx_b"] else it["ctx_a"], split="val",
              split_type="indomain", source_id=f"test~{i}")


# --- references, written from the two conventions' own code, not from gpt2book.eval ---------------------------------
def harness_preprocess(text):                        # lm-evaluation-harness, lm_eval/tasks/hellaswag/utils.py
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def rendered(item, style):
    "(context tokens, continuation tokens, normalisers) of each convention."
    if style == "completion":                        # build-nanogpt hellaswag.py render_example
        ctx = ENC.encode(item["ctx"])
        ends = [ENC.encode(" " + e) for e in item["endings"]]
        return ctx, ends, [len(e) for e in ends]
    query = harness_preprocess(item["activity_label"] + ": " + item["ctx_a"] + " " + item["ctx_b"].capitalize())
    choices = [harness_preprocess(e) for e in item["endings"]]
    conts = []
    for c in choices:                                # lm_eval/models/huggingface.py _encode_pair
        context, continuation = query, " " + c
        n = len(context) - len(context.rstrip())
        if n:
            continuation, context = context[-n:] + continuation, context[:-n]
        ctx = ENC.encode(context)
        conts.append(ENC.encode(context + continuation)[len(ctx):])
    return ctx, conts, [float(len(c)) for c in choices]


def window_of(t, n, first, bs, stride):
    "The first token of the window that scores token t: windows end at H, H + stride, ... (H = max(first-1+stride, bs))."
    H = max(first - 1 + stride, bs)
    if t <= min(H, n - 1):
        return max(0, min(H, n - 1) - bs)
    k = math.ceil((t - H) / stride)
    return max(0, H + k * stride - bs)


@torch.no_grad()
def ref_logprobs(hf, ids, first, bs=BLOCK, stride=BLOCK // 2):
    "log p(ids[t] | ids[lo:t]) for t >= first, lo the start of t's window; one transformers forward per window."
    lo_of = {t: window_of(t, len(ids), first, bs, stride) for t in range(first, len(ids))}
    out = {}
    for lo in sorted(set(lo_of.values())):
        ts = [t for t, l in lo_of.items() if l == lo]
        assert max(ts) - lo <= bs                                  # at most block_size tokens of context
        logp = torch.log_softmax(hf(torch.tensor([ids[lo:max(ts)]])).logits[0].double(), -1)   # (T, V)
        out.update({t: logp[t - 1 - lo, ids[t]].item() for t in ts})   # causal: row t-1-lo sees ids[lo:t] only
    return [out[t] for t in range(first, len(ids))]


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    "A random GPT-2 of 2 layers with GPT-2's vocabulary and a 32-token window, saved by transformers."
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=BLOCK, initializer_range=0.3)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    folder = tmp_path_factory.mktemp("hf") / "tiny-gpt2"
    hf.save_pretrained(folder)
    return hf, folder


@pytest.fixture(scope="module")
def hs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("hellaswag") / "hellaswag_test.jsonl"
    path.write_text("".join(json.dumps(it) + "\n" for it in ITEMS))
    return path


@pytest.fixture(scope="module")
def ours(hf_model):
    model, tok = load_model(hf_model[1])
    return model, tok


@pytest.mark.parametrize("style", ["completion", "harness"])
def test_hellaswag_scores_match_transformers(hf_model, ours, hs_file, style):
    hf, _ = hf_model
    model, tok = ours
    items = read_hellaswag(hs_file, style)
    for item, raw in zip(items, ITEMS):
        got = score_item(model, tok, item, style)
        ctx, conts, norms = rendered(raw, style)
        ref = [sum(ref_logprobs(hf, ctx + c, len(ctx))) for c in conts]
        np.testing.assert_allclose(got["sums"], ref, rtol=0, atol=1e-4, err_msg=f"{style}, item {raw['ind']}")
        assert got["norms"] == list(norms)
        assert (got["pred"], got["pred_norm"]) == (int(np.argmax(ref)), int(np.argmax(np.array(ref) / np.array(norms))))
        assert got["label"] == int(raw["label"])


@torch.no_grad()
def test_completion_style_equals_build_nanogpt_where_the_item_fits(hf_model, ours, hs_file):
    "Item 0 fits the window: build-nanogpt's own computation (padded rows, masked cross-entropy) gives the same."
    hf, _ = hf_model
    model, tok = ours
    ctx = ENC.encode(ITEMS[0]["ctx"])
    rows = [ctx + ENC.encode(" " + e) for e in ITEMS[0]["endings"]]
    tokens, mask = torch.zeros(4, max(map(len, rows)), dtype=torch.long), torch.zeros(4, max(map(len, rows)))
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = torch.tensor(r); mask[i, len(ctx):len(r)] = 1
    logits = hf(tokens).logits
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(),
                                               reduction="none").view(4, -1) * mask[:, 1:]
    sum_loss, avg_loss = losses.sum(1), losses.sum(1) / mask[:, 1:].sum(1)
    got = score_item(model, tok, read_hellaswag(hs_file)[0])
    np.testing.assert_allclose(got["sums"], (-sum_loss).tolist(), atol=1e-4)
    assert (got["pred"], got["pred_norm"]) == (sum_loss.argmin().item(), avg_loss.argmin().item())


def test_hellaswag_during_training_and_rank_sharing(ours, hs_file):
    model, tok = ours
    d = SimpleNamespace(rank=0, world_size=1, ddp=False)
    model.train()
    res = hellaswag_during_training(model, tok, 0, d, "cpu", torch.autocast("cpu", enabled=False), hs_file)
    assert model.training                                              # the caller's mode is restored
    items = read_hellaswag(hs_file)
    preds = [score_item(model, tok, it) for it in items]
    assert res["hellaswag_n"] == len(ITEMS)
    assert res["hellaswag_acc"] == sum(p["pred"] == p["label"] for p in preds) / len(ITEMS)
    assert res["hellaswag_acc_norm"] == sum(p["pred_norm"] == p["label"] for p in preds) / len(ITEMS)
    assert hellaswag_during_training(model, tok, 2, d, "cpu", data=hs_file)["hellaswag_n"] == 2    # limit
    # two ranks, computed in this process: items 0, 2, 4 and 1, 3; their counts add up to the single process's
    shares = [hellaswag_counts(model, tok, items, "completion", rank=r, world_size=2) for r in (0, 1)]
    assert [s[2] for s in shares] == [3, 2]
    assert [a + b for a, b in zip(*shares)] == hellaswag_counts(model, tok, items, "completion")


def test_hellaswag_during_training_under_ddp_waits_at_no_barrier(ours, hs_file, monkeypatch):
    "Under DDP every rank reads the file the trainer fetched before training; only all_reduce joins the ranks."
    model, tok = ours
    def barrier(*a, **k): raise AssertionError("hellaswag_during_training waited at a barrier")
    reduced = []
    def all_reduce(t, *a, **k):                  # as if a second rank had scored the same items: the sums double
        reduced.append(t.tolist()); t.mul_(2)
    monkeypatch.setattr(gpt2book.eval.dist, "barrier", barrier)
    monkeypatch.setattr(gpt2book.eval.dist, "all_reduce", all_reduce)
    one, two = (hellaswag_during_training(model, tok, 0, SimpleNamespace(rank=0, world_size=1, ddp=ddp), "cpu",
                                          data=hs_file) for ddp in (False, True))
    assert len(reduced) == 1 and reduced[0][2] == one["hellaswag_n"] == len(ITEMS)
    assert (two["hellaswag_n"], two["hellaswag_acc"], two["hellaswag_acc_norm"]) == \
        (2 * one["hellaswag_n"], one["hellaswag_acc"], one["hellaswag_acc_norm"])


def test_a_char_tokenizer_skips_items_it_cannot_encode(hs_file):
    items = read_hellaswag(hs_file)
    tok = CharTokenizer.from_text("".join(it["ctx"] + " " + "".join(it["endings"]) for it in items).replace("'", ""))
    model = GPT(GPTConfig(block_size=16, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16)).eval()
    right, right_norm, n, skipped = hellaswag_counts(model, tok, items)
    assert (n, skipped) == (len(items) - 1, 1)                         # item 0's "rubik's" has a "'"
    with pytest.raises(ValueError, match="character \"'\""):
        perplexity(model, tok, "it's")


@torch.no_grad()
def test_perplexity_matches_transformers(hf_model, ours):
    hf, _ = hf_model
    model, tok = ours
    rng = np.random.default_rng(0)
    words = "the a of cat sat on mat café naïve über dog ran 1 @,@ 000 = Heading = \n".split(" ")
    text = " ".join(rng.choice(words, 150))
    ids = [ENC.eot_token] + ENC.encode(text)
    assert len(ids) > 4 * BLOCK
    for stride in (BLOCK, BLOCK // 2, 5):
        r = perplexity(model, tok, text, stride=stride, batch_rows=3)
        ref = sum(ref_logprobs(hf, ids, 1, BLOCK, stride))
        assert r["tokens"] == len(ids) - 1 and r["stride"] == stride
        np.testing.assert_allclose(r["nll"], -ref, rtol=1e-5)
        assert math.isclose(r["ppl"], math.exp(-ref / (len(ids) - 1)), rel_tol=1e-5)
        assert math.isclose(r["bits_per_byte"], -ref / math.log(2) / len(text.encode("utf-8")), rel_tol=1e-5)
        assert math.isclose(r["bits_per_char"], -ref / math.log(2) / len(text), rel_tol=1e-5)
    assert r["bytes"] > r["chars"]                                     # the text has non-ASCII characters


# --- the command line, in this process --------------------------------------------------------------------------------
def cli(capsys, *args):
    "(stdout, stderr, exit status) of the command with `args`, run in this process."
    return run_main(main, args)


def test_cli_help(capsys):
    out, _, status = cli(capsys, "--help")
    assert status == 0 and "hellaswag" in out and "wikitext" in out and "examples:" in out
    out, _, status = cli(capsys, "hellaswag", "--help")
    assert status == 0 and "--style" in out and "--limit" in out


def test_main_ends_with_one_json_line(hf_model, ours, hs_file, capsys):
    main(["hellaswag", "--model", str(hf_model[1]), "--data", str(hs_file), "--style", "harness", "--limit", "4"])
    out, err = capsys.readouterr()
    res = json.loads(out.strip().splitlines()[-1])
    assert (res["n"], res["items"], res["style"], res["model"], res["data"]) == \
        (4, 4, "harness", str(hf_model[1]), str(hs_file))
    model, tok = ours
    preds = [score_item(model, tok, it, "harness") for it in read_hellaswag(hs_file, "harness")[:4]]
    assert res["acc"] == sum(p["pred"] == p["label"] for p in preds) / 4
    assert res["acc_norm"] == sum(p["pred_norm"] == p["label"] for p in preds) / 4
    assert "HellaSwag" in err                                          # the progress bar


def test_tilde_is_the_home_folder(hf_model, hs_file, tmp_path, capsys, monkeypatch):
    shutil.copytree(hf_model[1], tmp_path / "model")
    shutil.copy(hs_file, tmp_path / "items.jsonl")
    monkeypatch.setenv("HOME", str(tmp_path))
    out, _, status = cli(capsys, "hellaswag", "--model", "~/model", "--data", "~/items.jsonl", "--limit", "1")
    assert status == 0 and json.loads(out)["n"] == 1


USAGE = {  # numbers out of range, paths that name nothing: exit status 2, before anything is read
    "limit": (lambda m, h, t: ["hellaswag", "--model", "m", "--limit=-1"], "limit=-1 must be at least 0"),
    "stride": (lambda m, h, t: ["hellaswag", "--model", "m", "--stride=-1"], "stride=-1 must be at least 0"),
    "batch_rows": (lambda m, h, t: ["wikitext", "--model", "m", "--batch_rows=0"], "batch_rows=0 must be at least 1"),
    "no task": (lambda m, h, t: [], "the following arguments are required"),
    "not a number": (lambda m, h, t: ["wikitext", "--model", "m", "--stride=x"], "argument --stride: invalid int value: 'x'"),
    "a join that does not exist": (lambda m, h, t: ["wikitext", "--model", "m", "--join=pandas"],
                                   "argument --join: invalid choice"),
    "text without files": (lambda m, h, t: ["text", "--model", "m"], "the following arguments are required: --files"),
    "a stride with the harness's windows": (lambda m, h, t: ["wikitext", "--model", "m", "--join=harness", "--stride=8"],
                                            "--stride=8 does not apply to --join harness"),
    "no such model": (lambda m, h, t: ["hellaswag", "--model", t / "no-such-run", "--data", h], "no such folder"),
    "typo of a run folder": (lambda m, h, t: ["hellaswag", "--model", "out/cpuu", "--data", h], "out/cpuu: no such folder"),
    "a text file as the model": (lambda m, h, t: ["hellaswag", "--model", h, "--data", h], "is a file; pass the folder"),
    "no such data": (lambda m, h, t: ["hellaswag", "--model", m, "--data", t / "nothing.jsonl"],
                     "nothing.jsonl: no such file"),
    "no such text": (lambda m, h, t: ["text", "--model", m, "--files", t / "missing.txt"], "missing.txt: no such file"),
}


@pytest.mark.parametrize("case", USAGE)
def test_usage_errors_are_one_line_with_exit_status_2(case, hf_model, hs_file, tmp_path, capsys, monkeypatch):
    import huggingface_hub
    def refuse(*a, **k): raise AssertionError("sent to the hub")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)   # a typo of a folder must not go to the hub
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    make_args, says = USAGE[case]
    out, err, status = cli(capsys, *make_args(hf_model[1], hs_file, tmp_path))
    assert (status, out) == (2, "") and err.startswith(PROG) and says in err and len(err.strip().splitlines()) == 1, err


def write(path, text=None, data=None):
    path.write_text(text) if data is None else path.write_bytes(data)
    return path


def text_only(tmp_path):
    "The items without the fields the harness style builds its prompt from, like a text extraction of HellaSwag."
    return write(tmp_path / "text_only.jsonl",
                 "".join(json.dumps({k: it[k] for k in ("ctx", "endings", "label")}) + "\n" for it in ITEMS))


RUNTIME = {  # (arguments from (model folder, HellaSwag file, tmp_path), what the line says); exit status 1
    "truncated safetensors": (lambda m, h, t: ["--model", write(shutil.copytree(m, t / "bad") / "model.safetensors",
                                                               data=b"\0" * 100).parent, "--data", h],
                              "cannot read its weights"),
    "not JSON": (lambda m, h, t: ["--model", m, "--data",
                                  write(t / "bad.jsonl", json.dumps(ITEMS[0]) + "\n{not json\n")], "line 2: not JSON"),
    "not text": (lambda m, h, t: ["--model", m, "--data", write(t / "bin.jsonl", data=b"\x80\x81\n")],
                 "is not UTF-8 text"),
    "harness fields": (lambda m, h, t: ["--model", m, "--style", "harness", "--data", text_only(t)],
                       "--style completion"),
    "stride past the context": (lambda m, h, t: ["--model", m, "--data", h, f"--stride={BLOCK + 1}"],
                                f"--stride={BLOCK + 1} must be at most the model's block_size, {BLOCK}"),
    "device": (lambda m, h, t: ["--model", m, "--data", h, "--device=cuda:99"], "--device=cuda:99 cannot be used here"),
}


@pytest.mark.parametrize("case", RUNTIME)
def test_runtime_errors_are_one_line_with_exit_status_1(case, hf_model, hs_file, tmp_path, capsys, monkeypatch):
    import huggingface_hub
    def refuse(*a, **k): raise AssertionError("sent to the hub")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)   # a typo of a folder must not go to the hub
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    make_args, says = RUNTIME[case]
    out, err, status = cli(capsys, "hellaswag", *make_args(hf_model[1], hs_file, tmp_path))
    assert (status, out) == (1, ""), (status, out, err)
    assert err.startswith(f"{PROG}: error: ") and says in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_wikitext_offline_and_wrong_files(hf_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(tmp_path)); monkeypatch.setenv("GPT2BOOK_CACHE", str(tmp_path / "cache"))
    def no_network(split):                   # what `datasets` raises without a network (and without a cached copy)
        raise ConnectionError("Couldn't reach 'Salesforce/wikitext' on the Hub (LocalEntryNotFoundError)")
    monkeypatch.setattr(gpt2book.eval, "_wikitext_from_hub", no_network)
    out, err, status = cli(capsys, "wikitext", "--model", hf_model[1])
    assert (status, out) == (1, "") and re.search("Offline.*wiki.test.raw", err) and len(err.splitlines()) == 1
    (tmp_path / "wikitext-2-raw").mkdir()
    (tmp_path / "wikitext-2-raw" / "wiki.valid.raw").write_text(" = Not WikiText = \n")
    with pytest.raises(ValueError, match="is not WikiText-2's wiki.valid.raw"):
        wikitext_path("valid")
    with pytest.raises(ValueError, match="splits"):
        wikitext_path("train")


def test_wikitext_scores_a_mirrored_file(hf_model, tmp_path, monkeypatch, capsys):
    "The command reads the split from the mirror (checked by its sha256) and scores it: one JSON line."
    text = "".join(f" = Section {i} = \n \n The value is 1 @,@ 000 café . \n" for i in range(3))
    (tmp_path / "wikitext-2-raw").mkdir()
    (tmp_path / "wikitext-2-raw" / "wiki.test.raw").write_text(text)
    monkeypatch.setitem(gpt2book.eval.WIKITEXT_SHA256, "test", hashlib.sha256(text.encode()).hexdigest())
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(tmp_path))
    out, _, status = cli(capsys, "wikitext", "--model", hf_model[1], "--stride", "8", "--batch_rows", "3")
    res = json.loads(out)
    assert status == 0 and (res["task"], res["stride"], res["bytes"]) == ("wikitext", 8, len(text.encode()))
    model, tok = load_model(hf_model[1])
    assert math.isclose(res["nll"], perplexity(model, tok, text, stride=8)["nll"], rel_tol=1e-6)


def mirror_wikitext(tmp_path, monkeypatch, text):
    "A made-up wiki.test.raw in a mirror folder, its sha256 registered for this test."
    (tmp_path / "wikitext-2-raw").mkdir(exist_ok=True)
    (tmp_path / "wikitext-2-raw" / "wiki.test.raw").write_text(text, encoding="utf-8")
    monkeypatch.setitem(gpt2book.eval.WIKITEXT_SHA256, "test", hashlib.sha256(text.encode()).hexdigest())
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(tmp_path))

WIKI = " \n = Robert = \n \n Robert is an actor . He played 1 @,@ 000 roles in café theatre . \n \n"


def test_wikitext_joins_and_word_units(hf_model, ours, tmp_path, monkeypatch, capsys):
    "--join hf scores the guide's text (rows joined by a blank line) without its first token; word units are the file's."
    mirror_wikitext(tmp_path, monkeypatch, WIKI)
    hf_text = wikitext_text("test", "hf")
    assert hf_text == "\n\n".join(["", " = Robert = \n", "", WIKI.splitlines(keepends=True)[3], ""])
    assert wikitext_text("test", "raw") == WIKI and hf_text.split() == WIKI.split()
    assert wikitext_units(WIKI) == len(WIKI.split()) + 5                     # words, and one end-of-line per line
    with pytest.raises(ValueError, match="join='x'"):
        wikitext_text("test", "x")
    out, _, status = cli(capsys, "wikitext", "--model", hf_model[1], "--join", "hf")
    res = json.loads(out)
    ids = ENC.encode_ordinary(hf_text)
    assert status == 0 and (res["join"], res["score_first"], res["tokens"]) == ("hf", False, len(ids) - 1)
    assert res["bytes"] == len(hf_text.encode()) - len(ENC.decode_single_token_bytes(ids[0]))
    assert res["word_units"] == wikitext_units(WIKI) and res["word_nll"] != res["nll"]     # word_ppl: the raw text's
    hf, _ = hf_model                                                         # the text fits one window: one forward
    assert len(ids) <= BLOCK
    with torch.no_grad():
        lp = torch.log_softmax(hf(torch.tensor([ids])).logits[0, :-1].double(), -1)
    ref = -float(lp.gather(1, torch.tensor(ids[1:])[:, None]).sum())
    assert math.isclose(res["nll"], ref, rel_tol=1e-5), (res["nll"], ref)
    raw = json.loads(cli(capsys, "wikitext", "--model", hf_model[1])[0])
    assert (raw["join"], raw["score_first"], raw["tokens"], raw["bytes"]) == \
        ("raw", True, len(ENC.encode_ordinary(WIKI)), len(WIKI.encode()))
    raw_ids = [ENC.eot_token] + ENC.encode_ordinary(WIKI)                    # the word figure, by hand: the raw text
    with torch.no_grad():
        lp = torch.log_softmax(hf(torch.tensor([raw_ids])).logits[0, :-1].double(), -1)
    raw_nll = -float(lp.gather(1, torch.tensor(raw_ids[1:])[:, None]).sum())
    units = len(WIKI.split()) + WIKI.count("\n")                              # 18 words, 5 lines
    assert units == 23 and raw["word_nll"] == raw["nll"]
    for r in (raw, res):                                                     # the same word figure under both joins
        assert math.isclose(r["word_ppl"], math.exp(raw_nll / units), rel_tol=1e-5), (r["word_ppl"], raw_nll)


def test_wikitext_harness_convention(hf_model, tmp_path, monkeypatch, capsys):
    "--join harness: pages, detokenized, scored in the harness's windows; words and bytes of the original pages."
    text = "".join(f" = Page {i} = \n \n The value is 1 @,@ 000 café , it 's said . \n \n = = Part = = \n \n"
                   f" {'More words here . ' * 6}\n" for i in range(3))
    mirror_wikitext(tmp_path, monkeypatch, text)
    out, _, status = cli(capsys, "wikitext", "--model", hf_model[1], "--join", "harness")
    res = json.loads(out)
    pages = [text.split(" = Page ")[i + 1] for i in range(3)]
    pages = [" = Page " + p for p in pages[:2]] + [" = Page " + pages[2]]
    pages = [p[:-1] if i < 2 else p for i, p in enumerate(pages)]            # the "\n" that joined the pages goes
    assert status == 0 and res["pages"] == 3 and res["words"] == sum(len(re.split(r"\s+", p)) for p in pages)
    assert res["bytes"] == sum(len(p.encode()) for p in pages) == len(text.encode()) - 2
    hf, _ = hf_model
    nll = 0.0
    for p in pages:                                                          # each page: the harness's windows by hand
        det = p.replace(" @,@ ", ",").replace(" , ", ", ").replace(" . ", ". ").replace("= =", "==").replace(" 's", "'s")
        det = det.replace(" \n", "\n").replace("\n ", "\n")
        ids = [ENC.eot_token] + ENC.encode_ordinary(det)
        assert len(ids) - 1 > BLOCK                                          # more than one window
        done = 0
        while done < len(ids) - 1:
            end = done + min(len(ids) - 1 - done, BLOCK)
            x = ids[max(0, end - BLOCK):end]
            with torch.no_grad():
                lp = torch.log_softmax(hf(torch.tensor([x])).logits[0].double(), -1)[-(end - done):]
            nll -= float(lp.gather(1, torch.tensor(ids[done + 1:end + 1])[:, None]).sum())
            done = end
    assert math.isclose(res["nll"], nll, rel_tol=1e-5), (res["nll"], nll)
    assert math.isclose(res["word_ppl"], math.exp(nll / res["words"]), rel_tol=1e-5)
    assert math.isclose(res["bits_per_byte"], nll / math.log(2) / res["bytes"], rel_tol=1e-5)


def test_text_command_totals_and_refusals(hf_model, ours, tmp_path, capsys):
    "Bits per byte of several files: each scored after end-of-text, the totals their sums; bad files refused in one line."
    a = write(tmp_path / "a.txt", "To be, or not to be, that is the question. ")
    b = write(tmp_path / "b.txt", "Naïve café, 😀 emoji and ñ. " * 3)
    out, _, status = cli(capsys, "text", "--model", hf_model[1], "--files", str(a), str(b), "--stride", "16")
    res = json.loads(out)
    model, tok = ours
    each = [perplexity(model, tok, p.read_text(encoding="utf-8"), stride=16) for p in (a, b)]
    assert status == 0 and res["task"] == "text" and res["stride"] == 16
    assert (res["tokens"], res["bytes"]) == (sum(e["tokens"] for e in each), sum(e["bytes"] for e in each))
    assert math.isclose(res["bits_per_byte"], sum(e["nll"] for e in each) / math.log(2) / res["bytes"], rel_tol=1e-9)
    assert [f["bits_per_byte"] for f in res["per_file"]] == pytest.approx([e["bits_per_byte"] for e in each])
    assert res["bytes"] == len(a.read_bytes()) + len(b.read_bytes())
    bad = {"no such file": (tmp_path / "missing.txt", "missing.txt: no such file", 2),
           "not UTF-8": (write(tmp_path / "latin1.txt", data="café".encode("latin-1")), "is not UTF-8 text", 1),
           "empty": (write(tmp_path / "empty.txt", ""), "is empty", 1)}
    for case, (path, says, want) in bad.items():
        out, err, status = cli(capsys, "text", "--model", hf_model[1], "--files", str(path))
        assert (status, out) == (want, "") and says in err and len(err.strip().splitlines()) == 1, (case, err)


def test_token_bytes_add_up_for_every_kind_of_tokenizer():
    "Each id's bytes: summed over an encoding they give the text's UTF-8 bytes; special tokens spell nothing."
    text = "Naïve café — 😀 and ñ, 123."
    bpe = train_bpe(text * 20, 300, special_tokens=("<|endoftext|>", "<|pad|>"))
    for tok in (CharTokenizer.from_text(text), BPETokenizer([]), bpe, gpt2book.eval.GPT2Tokenizer()):
        n = token_bytes(tok)
        assert len(n) == tok.vocab_size and n[tok.eot] == 0
        assert int(n[tok.encode(text)].sum()) == len(text.encode("utf-8")), tok
    assert token_bytes(bpe)[bpe.special_ids["<|pad|>"]] == 0
    with pytest.raises(TypeError, match="char, BPE or GPT-2"):
        token_bytes(object())
