"""Tests of chapter 15 (`gpt2book.eval`): HellaSwag scores in both styles and sliding-window perplexity, item by item
and token by token against references computed with `transformers` on a small random GPT-2 saved in Hugging Face
format; HellaSwag during training (one process, and a 2-rank split computed in one process); skipping what a
character tokenizer cannot encode; `python -m gpt2book.eval` through subprocesses (--help and the errors) and in
this process (a run, WikiText offline). Every file is generated here. About half a minute on 2 idle cores.
"""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tiktoken
import torch

import gpt2book.eval
from gpt2book.eval import (hellaswag_counts, hellaswag_during_training, main, perplexity, read_hellaswag,
                           score_item, wikitext_path)
from gpt2book.model import GPT, GPTConfig
from gpt2book.sample import load_model
from gpt2book.tokenizer import CharTokenizer

transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
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


def test_items_are_as_described():
    "The generated file exercises what it claims: tags, an item that fits, a long context, a long ending."
    lens = [(len(rendered(it, "completion")[0]), max(map(len, rendered(it, "completion")[1]))) for it in ITEMS]
    assert lens[0][0] + lens[0][1] <= BLOCK + 1                   # fits the window
    assert lens[2][0] > BLOCK and lens[2][1] < BLOCK // 2           # long context, short endings: one window
    assert lens[3][1] > BLOCK                                       # an ending longer than the window
    assert "[title]" in ITEMS[1]["ctx_a"] and "[step]" in ITEMS[1]["ctx_b"] and "[substeps]" in ITEMS[1]["endings"][0]


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
    assert set(res) >= {"hellaswag_acc", "hellaswag_acc_norm", "hellaswag_n"}
    assert hellaswag_during_training(model, tok, 2, d, "cpu", data=hs_file)["hellaswag_n"] == 2    # limit
    # two ranks, computed in this process: items 0, 2, 4 and 1, 3; their counts add up to the single process's
    shares = [hellaswag_counts(model, tok, items, "completion", rank=r, world_size=2) for r in (0, 1)]
    assert [s[2] for s in shares] == [3, 2]
    assert [a + b for a, b in zip(*shares)] == hellaswag_counts(model, tok, items, "completion")


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


# --- the command line ------------------------------------------------------------------------------------------------
def cli(*args, **env):
    e = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, "-m", "gpt2book.eval", *map(str, args)], capture_output=True, text=True,
                          env=e, timeout=120)


def test_cli_help():
    p = cli("--help")
    assert p.returncode == 0 and "hellaswag" in p.stdout and "wikitext" in p.stdout and "examples:" in p.stdout
    p = cli("hellaswag", "--help")
    assert p.returncode == 0 and "--style" in p.stdout and "--limit" in p.stdout


def test_main_ends_with_one_json_line(hf_model, ours, hs_file, capsys):
    main(["hellaswag", "--model", str(hf_model[1]), "--data", str(hs_file), "--style", "harness", "--limit", "4"])
    out, err = capsys.readouterr()
    res = json.loads(out.strip().splitlines()[-1])
    assert (res["n"], res["style"], res["model"], res["data"]) == (4, "harness", str(hf_model[1]), str(hs_file))
    model, tok = ours
    preds = [score_item(model, tok, it, "harness") for it in read_hellaswag(hs_file, "harness")[:4]]
    assert res["acc"] == sum(p["pred"] == p["label"] for p in preds) / 4
    assert res["acc_norm"] == sum(p["pred_norm"] == p["label"] for p in preds) / 4
    assert "HellaSwag" in err                                          # the progress bar


def test_cli_errors(hf_model, hs_file, tmp_path):
    p = cli("hellaswag", "--model", tmp_path / "no-such-run", "--data", hs_file)
    assert p.returncode == 1 and "no such folder" in p.stderr and "Traceback" not in p.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ITEMS[0]) + "\n{not json\n")
    p = cli("hellaswag", "--model", hf_model[1], "--data", bad)
    assert p.returncode == 1 and "line 2: not JSON" in p.stderr
    text_only = tmp_path / "text_only.jsonl"              # like a text extraction: no ctx_a / ctx_b / activity_label
    text_only.write_text("".join(json.dumps({k: it[k] for k in ("ctx", "endings", "label")}) + "\n" for it in ITEMS))
    p = cli("hellaswag", "--model", hf_model[1], "--data", text_only, "--style", "harness")
    assert p.returncode == 1 and "ctx_a" in p.stderr and "--style completion" in p.stderr


def test_wikitext_offline_and_wrong_files(hf_model, tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(tmp_path)); monkeypatch.setenv("GPT2BOOK_CACHE", str(tmp_path / "cache"))
    def no_network(split):                   # what `datasets` raises without a network (and without a cached copy)
        raise ConnectionError("Couldn't reach 'Salesforce/wikitext' on the Hub (LocalEntryNotFoundError)")
    monkeypatch.setattr(gpt2book.eval, "_wikitext_from_hub", no_network)
    with pytest.raises(SystemExit, match="Offline.*wiki.test.raw"):
        main(["wikitext", "--model", str(hf_model[1])])
    (tmp_path / "wikitext-2-raw").mkdir()
    (tmp_path / "wikitext-2-raw" / "wiki.valid.raw").write_text(" = Not WikiText = \n")
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(tmp_path))
    with pytest.raises(ValueError, match="is not WikiText-2's wiki.valid.raw"):
        wikitext_path("valid")
    with pytest.raises(ValueError, match="splits"):
        wikitext_path("train")
