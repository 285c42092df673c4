"""Tests of chapter 17's speedrun beyond its cells: Muon inside the trainer (a resumed run is bitwise the straight
one, the loss scaler leaves its step alone), the speedrun preset is the last record, and bench/speedrun.py runs a
recipe into its results file and refuses bad input with one line before anything runs."""
import csv
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpt2book.checkpoint import load_chapters
from gpt2book.model import GPT, GPTConfig
from gpt2book.muon import Muon, Optimizers, configure_muon
from gpt2book.speedrun import RECORDS, record_settings
from gpt2book.config import TRAIN_PRESETS, make_config
from gpt2book.runlog import read_metrics
from gpt2book.step import train_step
from gpt2book.train import train

load_chapters()                       # the recipe's settings (qk_norm, ...) and Muon can be named

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=4, sample_tokens=0, eval_iters=4)


def numbers(out_dir):
    return [{k: m[k] for k in ("step", "loss", "lr", "grad_norm", "val_loss") if k in m}
            for m in read_metrics(Path(out_dir) / "metrics.jsonl")]


def test_a_muon_run_resumed_is_the_straight_run(shakespeare_char, tmp_path, one_thread):
    settings = dict(TINY, data_dir=str(shakespeare_char), optimizer="muon", muon_lr=0.03, max_steps=40, log_interval=1,
                    eval_interval=20, checkpoint_interval=20, keep_checkpoints=2, qk_norm=True, ffn="relu2",
                    tie_embeddings=False, zero_init=True, logit_softcap=15.0, unet_skips=True, x0_skip=True,
                    value_embeds=True)
    train(make_config("cpu", out_dir=str(tmp_path / "straight"), **settings))
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    (tmp_path / "resumed" / "ckpt_0000040.pt").unlink()                 # as if killed between steps 20 and 40
    train(make_config("cpu", out_dir=str(tmp_path / "resumed"), resume=True, **settings))
    straight = numbers(tmp_path / "straight")
    assert numbers(tmp_path / "resumed") == straight and len(straight) == 40 + 3
    assert straight[-1]["val_loss"] < straight[0]["val_loss"] - 0.5            # and it learned


def test_muons_momentum_warm_up_and_split_qkv_resume_exactly_and_change_the_run(shakespeare_char, tmp_path, one_thread):
    settings = dict(TINY, data_dir=str(shakespeare_char), optimizer="muon", muon_lr=0.03, max_steps=40, log_interval=1,
                    eval_interval=20, checkpoint_interval=20, keep_checkpoints=2, muon_split_qkv=True)
    warm = dict(settings, muon_momentum_warmup=30)                           # still warming up at the resume (step 20)
    train(make_config("cpu", out_dir=str(tmp_path / "straight"), **warm))
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    (tmp_path / "resumed" / "ckpt_0000040.pt").unlink()
    train(make_config("cpu", out_dir=str(tmp_path / "resumed"), resume=True, **warm))
    assert numbers(tmp_path / "resumed") == numbers(tmp_path / "straight")
    train(make_config("cpu", out_dir=str(tmp_path / "cold"), **settings))
    assert numbers(tmp_path / "cold")[1] == numbers(tmp_path / "straight")[1]       # step 1: the same (no momentum yet)
    last = lambda run: [m for m in numbers(tmp_path / run) if "loss" in m][-1]
    assert last("cold")["step"] == 40 and last("cold")["loss"] != last("straight")["loss"]    # the warm-up acts


def test_a_wsd_run_logs_its_schedule_and_resumes_exactly(shakespeare_char, tmp_path, one_thread):
    from gpt2book.recipe import wsd_lr
    settings = dict(TINY, data_dir=str(shakespeare_char), max_steps=40, warmup_steps=4, log_interval=1, eval_interval=20,
                    checkpoint_interval=20, keep_checkpoints=2, lr_schedule="wsd", warmdown=0.5)
    train(make_config("cpu", out_dir=str(tmp_path / "straight"), **settings))
    logged = {m["step"]: m["lr"] for m in numbers(tmp_path / "straight") if "lr" in m}
    cfg = make_config("cpu", **settings)
    assert logged == pytest.approx({s: wsd_lr(s - 1, cfg.learning_rate, cfg.min_lr, 4, 40, 0.5) for s in range(1, 41)})
    assert logged[21] == cfg.learning_rate > logged[22]                       # held to step 20 (0-based), then down
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    (tmp_path / "resumed" / "ckpt_0000040.pt").unlink()
    train(make_config("cpu", out_dir=str(tmp_path / "resumed"), resume=True, **settings))
    assert numbers(tmp_path / "resumed") == numbers(tmp_path / "straight")


def test_muon_groups_follow_the_schedule_at_their_own_peak():
    m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=66))
    opt = configure_muon(m, lr=1e-3, muon_lr=2e-2, weight_decay=0.1)

    class Batches:
        def next_batch(self):
            xy = torch.randint(66, (2, 17))
            return xy[:, :-1], xy[:, 1:]
    train_step(m, opt, Batches(), 5e-4)                                        # half the peak: warm-up, say
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-2, 5e-4, 5e-4])


def test_an_untied_head_and_the_embedding_follow_the_schedule_at_their_own_rates():
    "A run's optimizer (the trainer's own make_optimizer) for an untied Muon run with --embed_lr and --head_lr."
    from gpt2book.train import make_optimizer
    load_chapters()
    cfg = make_config("speedrun", **{k: v for k, v in TINY.items() if k in ("n_layer", "n_head", "n_embd", "block_size")},
                      tie_embeddings=False, embed_lr=0.3, head_lr=0.008)
    from gpt2book.model import make_model
    m = make_model(dataclasses.replace(cfg.model, vocab_size=66))
    opt = make_optimizer(m, cfg, "cpu")

    class Batches:
        def next_batch(self):
            xy = torch.randint(66, (2, 33))
            return xy[:, :-1], xy[:, 1:]
    train_step(m, opt, Batches(), cfg.learning_rate / 2)                     # half the peak: every group at half its own
    rate = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert rate[id(m.transformer.wte.weight)] == pytest.approx(0.15)
    assert rate[id(m.lm_head.weight)] == pytest.approx(0.004)
    assert rate[id(m.transformer.h[0].attn.c_attn.weight)] == pytest.approx(cfg.muon_lr / 2)
    assert rate[id(m.transformer.ln_f.weight)] == pytest.approx(cfg.learning_rate / 2)


def test_the_loss_scaler_leaves_a_muon_step_alone():
    "float16 training scales the loss; with Muon and AdamW together the step must be the unscaled one."
    after = []
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)):
        torch.manual_seed(0)
        m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=66))
        opt = configure_muon(m, 1e-2, 2e-2, 0.1)
        g = torch.Generator().manual_seed(0)

        class Batches:
            def next_batch(self):
                xy = torch.randint(66, (4, 17), generator=g)
                return xy[:, :-1], xy[:, 1:]
        train_step(m, opt, Batches(), 1e-2, grad_accum=2, grad_clip=1.0, scaler=scaler)
        after.append([p.detach().clone() for p in m.parameters()])
    for a, b in zip(*after): torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_muon_stacks_the_matrices_of_a_shape_as_if_each_were_alone():
    "One batched Newton-Schulz per shape gives each matrix the step it would get in an optimizer of its own."
    torch.manual_seed(0)
    shapes = [(8, 4), (8, 4), (4, 6), (8, 4)]
    together = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    alone = [torch.nn.Parameter(p.detach().clone()) for p in together]
    opts = [Muon(together, lr=0.05, weight_decay=0.1, ns_dtype="float32")] + \
           [Muon([p], lr=0.05, weight_decay=0.1, ns_dtype="float32") for p in alone]
    for _ in range(3):
        for a, b in zip(together, alone):
            a.grad = torch.randn(a.shape); b.grad = a.grad.clone()
        for o in opts: o.step()
    for a, b in zip(together, alone): torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_the_threads_setting_sets_pytorchs_threads(shakespeare_char, tmp_path, one_thread):
    train(make_config("cpu", out_dir=str(tmp_path), **dict(TINY, data_dir=str(shakespeare_char), max_steps=2, threads=2)))
    assert torch.get_num_threads() == 2                                          # (the fixture puts it back)
    with pytest.raises(ValueError, match="threads"):
        make_config("cpu", threads=-1)


def test_optimizers_refuse_another_optimizers_state():
    m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=66))
    with pytest.raises(ValueError, match="same --optimizer"):
        configure_muon(m, 1e-3, 2e-2, 0.1).load_state_dict(torch.optim.AdamW(m.parameters()).state_dict())
    assert isinstance(configure_muon(m, 1e-3, 2e-2, 0.1), Optimizers)


def test_the_speedrun_preset_is_the_last_kept_record():
    last = [name for name, _, _, kept in RECORDS if kept][-1]
    assert TRAIN_PRESETS["speedrun"] == record_settings(last)
    cfg = make_config("speedrun")
    assert cfg.eval_iters == 0                                     # the target is read on the whole split


def speedrun(*args):
    return subprocess.run([sys.executable, str(ROOT / "bench" / "speedrun.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={**__import__("os").environ, "WANDB_MODE": "disabled"})


def test_bench_speedrun_runs_a_recipe_into_its_file(shakespeare_char, tmp_path):
    out = tmp_path / "explore.csv"
    p = speedrun("explore", "tiny", *[f"--set={k}={v}" for k, v in TINY.items()], f"--set=data_dir={shakespeare_char}",
                 "--set=max_steps=3", "--set=eval_interval=3", "--seeds=1,2", f"--csv={out}")
    assert p.returncode == 0, p.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert [(r["record"], r["seed"], r["steps"]) for r in rows] == [("tiny", "1", "3"), ("tiny", "2", "3")]
    assert all(float(r["val_loss"]) > 0 and float(r["wall_s"]) > 0 for r in rows)
    assert json.loads(rows[0]["settings"])["max_steps"] == 3
    p = speedrun("explore", "tiny", "--set=max_steps=3", "--seeds=1,2", f"--csv={out}")   # done already: nothing runs
    assert p.returncode == 0 and len(list(csv.DictReader(out.open()))) == 2
    p = speedrun("explore", "on-record", "--config=speedrun", *[f"--set={k}={v}" for k, v in TINY.items()],
                 f"--set=data_dir={shakespeare_char}", "--set=max_steps=3", "--set=eval_interval=3", "--seeds=1",
                 f"--csv={out}")                                   # a change over the current record
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads(list(csv.DictReader(out.open()))[-1]["settings"])
    assert s["config"] == "speedrun" and s["optimizer"] == "muon" and s["max_steps"] == 3
    p = speedrun("explore", "on-ladder", "--record=3 layers", *[f"--set={k}={v}" for k, v in TINY.items()],
                 f"--set=data_dir={shakespeare_char}", "--set=max_steps=3", "--set=eval_interval=3", "--seeds=1",
                 f"--csv={out}")                                   # a change over a named record of the ladder
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads(list(csv.DictReader(out.open()))[-1]["settings"])
    assert s["config"] == "cpu" and s["warmup_steps"] == record_settings("3 layers")["warmup_steps"] == 30


def test_bench_speedrun_times_records_against_the_main_job(shakespeare_char, tmp_path):
    "The plumbing of a sitting on a tiny model: the main job, the last record as --config=speedrun, a change not kept."
    last = [n for n, _, _, k in RECORDS if k][-1]
    not_kept = next(n for n, _, _, k in RECORDS if not k)
    out = tmp_path / "speedrun.csv"
    tiny = [f"--set={k}={v}" for k, v in {**TINY, "max_steps": 4, "eval_interval": 4, "checkpoint_interval": 4,
                                          "data_dir": shakespeare_char, "warmup_steps": 2}.items()]
    p = speedrun("records", f"--only={last},{not_kept}", "--seeds=1,2", "--seeds_not_kept=1", "--sitting=test", *tiny,
                 f"--csv={out}")
    assert p.returncode == 0, p.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert [(r["record"], r["seed"]) for r in rows] == [("main job", "1"), (last, "1"), (not_kept, "1"),
                                                        ("main job", "2"), (last, "2")]
    assert json.loads(rows[1]["settings"])["config"] == "speedrun"
    curves = list(csv.DictReader((tmp_path / "speedrun_curves.csv").open()))
    assert {c["record"] for c in curves} == {"main job", last, not_kept} and all(c["elapsed_s"] for c in curves)


def bench_main():
    "bench/speedrun.py's main, imported from its file (bench/ is not a package)."
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_speedrun", ROOT / "bench" / "speedrun.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.mark.parametrize("args, says", [
    (["records", "--only=nope"], "unknown record"),
    (["explore", "x", "--seeds=a"], "--seeds"),
    (["explore", "x", "--set=max_steps"], "NAME=VALUE"),
    (["explore", "x", "--set=n_layr=2"], "unknown setting n_layr"),
    (["explore", "x", "--threads=0"], "--threads"),
    (["explore", "x", "--record=nope"], "the records are"),
    (["explore", "x", "--record=3 layers", "--config=speedrun"], "one base"),
])
def test_bench_speedrun_refuses_bad_input_in_one_line(args, says, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bench_main()([*args, f"--csv={tmp_path / 'x.csv'}"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.csv").exists()


def _bench_module(monkeypatch, root):
    "bench/speedrun.py as a module whose repository is `root` (a git repository of its own)."
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_speedrun", ROOT / "bench" / "speedrun.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "ROOT", root)
    monkeypatch.setattr(mod, "RECIPES", root / "nbs" / "data" / "speedrun_recipes")
    return mod


def test_a_confirmation_runs_only_recipes_committed_as_they_are(tmp_path, monkeypatch):
    "register writes a recipe once; confirm refuses it until it is committed, and again once it differs from the commit."
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path,
                                    check=True, capture_output=True)
    git("init", "-q")
    bench = _bench_module(monkeypatch, tmp_path)
    path = bench.register("two-blocks", "main job", {"n_layer": 2, "max_steps": 1080})
    assert bench.register("two-blocks", "main job", {"n_layer": 2, "max_steps": 1080}) == path     # the same: fine
    with pytest.raises(ValueError, match="registered already with other settings"):
        bench.register("two-blocks", "main job", {"n_layer": 2, "max_steps": 1050})
    with pytest.raises(ValueError, match="a recipe fixes its step count"):
        bench.register("no-steps", "main job", {"n_layer": 2})
    with pytest.raises(ValueError, match="no such recipe"):
        bench.register("faster", "two-block", {"n_layer": 2, "max_steps": 1000})          # a misspelt record to beat
    bench.register("faster", "two-blocks", {"n_layer": 2, "max_steps": 1000, "plot": False})
    with pytest.raises(ValueError, match="is not committed as it is"):
        bench.load_recipe("two-blocks")
    git("add", "."); git("commit", "-qm", "register two-blocks")
    recipe, commit = bench.load_recipe("two-blocks")
    assert recipe["settings"] == {"n_layer": 2, "max_steps": 1080} and len(commit) == 40
    path.write_text(path.read_text().replace("1080", "1050"))                     # edited after its commit
    with pytest.raises(ValueError, match="is not committed as it is"):
        bench.load_recipe("two-blocks")
    with pytest.raises(ValueError, match="no recipe 'other'"):
        bench.load_recipe("other")


def test_exploration_never_uses_a_confirmation_seed(capsys):
    from gpt2book.speedrun import CONFIRMATION_SEEDS
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "speedrun.py"), "explore", "x", "--seeds",
                        f"1337,{CONFIRMATION_SEEDS[0]}"], capture_output=True, text=True)
    assert p.returncode == 2 and "are confirmation seeds" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_bench_finish_cost_times_the_end_of_a_run(shakespeare_char, tmp_path):
    out = tmp_path / "finish.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "finish_cost.py"), f"--data_dir={shakespeare_char}",
                        "--reps=1", "--batches=12,64", f"--json={out}"], capture_output=True, text=True, timeout=300,
                       cwd=ROOT, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    assert set(r["eval_whole_split_s"]) == {"12", "64"} and all(v > 0 for v in r["eval_whole_split_s"].values())
    assert r["plot_s"] > 0 and r["checkpoint_s"] > 0 and r["machine"]["cpu"]


@pytest.mark.parametrize("args, says", [(["--reps=0"], "--reps"), (["--batches=a"], "--batches"), (["--batches=0"], "--batches")])
def test_bench_finish_cost_refuses_bad_input_in_one_line(args, says, tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "finish_cost.py"), "--data_dir=x", *args,
                        f"--json={tmp_path / 'f.json'}"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 2 and says in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "f.json").exists()
