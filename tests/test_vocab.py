"""Tests of chapter 16 (`gpt2book.vocab`): the plan on made-up finished runs (sweep, widening, seeds), the study end to
end on a small corpus (a BPE trained, the data prepared, the sweep and the seeds trained by real trainer processes,
the results collected and plotted), the summary's intervals, and the command's refusals. About 40 s on 2 cores.
"""
import json
import math

import pytest

import gpt2book.vocab as vocab
from gpt2book.common import run_main
from gpt2book.vocab import SEEDS, Plan, collect, run_dir, run_study, summary, summary_table


def finish(root, arm, lr, seed, steps, loss):
    "A run folder that looks finished to the plan: its metrics end with a validation loss at its last step."
    d = run_dir(root, arm, lr, seed)
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_text(json.dumps({"step": steps, "val_loss": loss}) + "\n")


def test_the_plan_widens_then_asks_for_seeds(tmp_path):
    bowl = lambda lr: 2.0 + math.log2(lr / 0.032) ** 2 / 10           # best at 0.032, two rungs above the start
    plan = Plan(tmp_path, {"bytes": 50})
    asked = plan.runs()
    assert sorted(asked) == [("bytes", lr, 1337) for lr in (0.004, 0.008, 0.016)]
    for round_ in range(3):                                            # finish what it asks, until it stops widening
        for arm, lr, seed in asked: finish(tmp_path, arm, lr, seed, 50, bowl(lr))
        asked = Plan(tmp_path, {"bytes": 50}).runs()
        if asked and asked[0][2] != 1337: break
    assert Plan(tmp_path, {"bytes": 50}).best("bytes") == 0.032
    assert sorted(asked) == [("bytes", 0.032, s) for s in SEEDS[1:]]   # the chosen rate, on the other seeds
    for arm, lr, seed in asked: finish(tmp_path, arm, lr, seed, 50, bowl(lr) + 0.01)
    assert Plan(tmp_path, {"bytes": 50}).runs() == []


def test_summary_intervals_and_ties():
    rows = [dict(arm=a, vocab_size=v, steps=10, lr=0.01, seed=s, chosen=1, val_bpb=m + d)
            for a, v, m in (("char", 85, 2.0), ("bpe512", 512, 1.9), ("gpt2", 50257, 1.905))
            for s, d in zip(SEEDS, (-0.01, 0.0, 0.01))]
    rows.append(dict(arm="char", vocab_size=85, steps=10, lr=0.02, seed=1337, chosen=0, val_bpb=1.0))   # not chosen
    s = {r["arm"]: r for r in summary(rows)}
    assert [r["arm"] for r in summary(rows)] == ["char", "bpe512", "gpt2"]                # vocabulary order
    assert s["bpe512"]["vs_best"] == 0 and s["bpe512"]["tie_with_best"]
    assert s["gpt2"]["tie_with_best"] and not s["char"]["tie_with_best"]                  # 0.005 apart: within noise
    assert s["char"]["seeds"] == 3 and math.isclose(s["char"]["bpb"], 2.0)
    assert s["char"]["low"] < 2.0 < s["char"]["high"]
    assert "| char | 85 |" in summary_table(summary(rows))


@pytest.fixture
def small_study(tmp_path, monkeypatch):
    "One BPE arm of 300 ids on two made-up works (one validates), with a budget of a few steps."
    words = ("the king doth wake tonight and takes his rouse keeps wassail and the swaggering upspring reels "
             "so oft it chances in particular men that for some vicious mole of nature in them ").split()
    for i, name in enumerate(("a.txt", "b.txt")):
        (tmp_path / name).write_text(" ".join(words[(j * 7 + i) % len(words)] for j in range(3000)) + "\n")
    monkeypatch.setattr(vocab, "SOURCE", [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    monkeypatch.setattr(vocab, "ARMS", {"bpe300": 300})
    monkeypatch.setattr(vocab, "FLOPS", 3e10)                   # a few steps of the CPU model
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_study_end_to_end(small_study, capsys):
    root, data = small_study / "runs", small_study / "data"
    trained = run_study(root, data, workers=2)
    assert (data / "tokenizers" / "bpe300" / "tokenizer.json").exists()
    runs, arms = collect(root, data)
    assert len(runs) == trained >= 5                            # a sweep of at least 3 rates, 2 more seeds
    (arm,) = arms
    assert arm["vocab_size"] == 300 and arm["steps"] == vocab.arm_steps(300) and arm["val_bytes"] > arm["val_tokens"]
    chosen = [r for r in runs if r["chosen"]]
    assert sorted(r["seed"] for r in chosen) == list(SEEDS) and len({r["lr"] for r in chosen}) == 1
    for r in runs:                                              # bits per byte from the loss per token and the counts
        assert math.isclose(r["val_bpb"], r["val_loss"] * arm["val_tokens"] / arm["val_bytes"] / math.log(2))
        assert r["machine"] and r["wall_s"] > 0 and r["flops"] == arm["flops_per_token"] * arm["tokens"]
    assert run_study(root, data) == 0                           # finished: nothing more to run
    results = small_study / "book"; results.mkdir()
    out, err, status = run_main(vocab.main, ["collect", "--out", root, "--data_root", data, "--results_root", results])
    assert status == 0 and f"({len(runs)} runs)" in out and (results / vocab.PLOT).exists(), err
    assert len((results / vocab.FILES["runs"]).read_text().splitlines()) == len(runs) + 1
    assert not (small_study / "nbs").exists()                  # nothing written relative to the current folder


@pytest.mark.parametrize("args, status, says", [
    (["--help"], 0, "examples:"),
    ([], 2, "the following arguments are required"),
    (["run", "--workers", "0"], 2, "workers=0 must be at least 1"),
    (["collect", "--out", "nowhere", "--data_root", "."], 2, "--out=nowhere: no such folder"),
    (["collect", "--out", ".", "--data_root", ".", "--results_root", "nowhere"], 2, "--results_root=nowhere: no such"),
    (["collect", "--out", ".", "--data_root", "."], 1, "holds no prepared arms"),
])
def test_the_command_refuses_clearly(args, status, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, err, got = run_main(vocab.main, args)
    assert got == status and says in (out + err), (out, err)
    if status: assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
