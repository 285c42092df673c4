"""Tests of `python -m gpt2book.train` that need real processes: DDP under torchrun (gloo) against gradient
accumulation, MFU per device, a run killed with SIGKILL and resumed (bitwise the same losses), a damaged newest
checkpoint, SIGTERM (a clean save), wandb resuming its run, a rank that cannot read the chosen checkpoint, a
non-finite loss, the loss scaler's plumbing, --help, the refusals, and the CPU default's validation loss after a
short run. Tiny Shakespeare is the only data (downloaded, or from $GPT2BOOK_MIRROR offline). About two minutes
on 2 cores.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gpt2book.files import checkpoints, load_checkpoint
from gpt2book.optim import configure_optimizer
from gpt2book.train import (TRAIN_PRESETS, TrainConfig, config_from_args, flops_per_token, help_text, main,
                            make_model, read_metrics, train_step)

ROOT = Path(__file__).resolve().parents[1]
# a model small enough for a step of a few milliseconds
TINY = ["--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4", "--sample_tokens=20",
        "--eval_iters=4"]


@pytest.fixture(scope="module")
def data(shakespeare_char):
    return shakespeare_char


def env(**extra):
    e = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    return {**e, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT), **extra}


def cmd(*args, torchrun=0, script=("-m", "gpt2book.train")):
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"] if torchrun else []
    return [sys.executable, *launcher, *script, *map(str, args)]


def run(*args, torchrun=0, check=True, script=("-m", "gpt2book.train"), **extra_env):
    p = subprocess.run(cmd(*args, torchrun=torchrun, script=script), capture_output=True, text=True,
                       env=env(**extra_env), timeout=300)
    if check: assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def numbers(out_dir, keys=("loss", "lr", "grad_norm", "val_loss")):
    "metrics.jsonl without the timing fields, which differ from run to run."
    return [{k: m[k] for k in ("step", *keys) if k in m} for m in read_metrics(Path(out_dir) / "metrics.jsonl")]


def test_ddp_equals_grad_accum_and_mfu_is_per_device(data, tmp_path):
    "2 processes x 1 micro-step (gloo) == 1 process x 2 micro-steps, at the same 256 tokens a step; MFU per device."
    common = [*TINY, f"--data_dir={data}", "--total_batch_size=256", "--max_steps=6", "--log_interval=1",
              "--eval_interval=3", "--checkpoint_interval=6", "--eval_iters=5", "--peak_tflops=0.5"]
    run(*common, f"--out_dir={tmp_path / 'ddp'}", torchrun=2)
    run(*common, f"--out_dir={tmp_path / 'one'}")
    ddp, one = numbers(tmp_path / "ddp"), numbers(tmp_path / "one")
    assert [m["step"] for m in ddp] == [m["step"] for m in one] and len(one) == 9   # 6 train + evals at 0, 3, 6
    for a, b in zip(ddp, one):   # eval_iters=5 is not a multiple of 2 processes: evaluation still agrees
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=1e-5, rel=1e-5), (k, a, b)
    assert one[-1]["val_loss"] < one[0]["val_loss"]                                # and it learned something
    # the saved weights agree too, and only rank 0 wrote them
    wa, wb = (load_checkpoint(checkpoints(tmp_path / d)[-1])["model"] for d in ("ddp", "one"))
    for k in wb: torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4)
    # MFU is per device: all processes' tokens/s over 2 devices' peak, not one
    fpt = flops_per_token(make_model(config_from_args([*TINY]), 66))
    for m in read_metrics(tmp_path / "ddp" / "metrics.jsonl"):
        if "mfu" in m:
            assert m["mfu"] == pytest.approx(fpt * m["tokens_per_s"] / (2 * 0.5e12), rel=1e-4)   # tokens_per_s: rounded
    lines = [m for m in read_metrics(tmp_path / "one" / "metrics.jsonl") if "mfu" in m]
    assert lines[-1]["mfu"] == pytest.approx(fpt * lines[-1]["tokens_per_s"] / 0.5e12, rel=1e-4)


def test_sigkill_and_resume_is_bitwise(data, tmp_path):
    args = [*TINY, f"--data_dir={data}", "--max_steps=300", "--log_interval=1", "--eval_interval=50",
            "--checkpoint_interval=40", "--keep_checkpoints=2", "--dropout=0.1"]   # dropout: the RNG state matters
    run(*args, f"--out_dir={tmp_path / 'straight'}")
    killed = tmp_path / "killed"
    p = subprocess.Popen(cmd(*args, f"--out_dir={killed}"), env=env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "ckpt_0000080.pt").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert checkpoints(killed)[-1].name != "ckpt_0000300.pt"
    # a kill can also leave a damaged newest checkpoint (a bad copy, a full disk) and a temporary file
    newest = checkpoints(killed)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    (killed / f".ckpt_0000999.pt.{2 ** 22 + 7}.deadbeef.tmp").write_bytes(b"half a checkpoint")
    p = run(*args, f"--out_dir={killed}", "--resume")
    assert f"{newest} is damaged" in p.stdout + p.stderr and "trying the one before" in p.stdout + p.stderr
    assert (killed / (newest.name + ".damaged")).exists() and not list(killed.glob(".*.tmp"))
    straight, resumed = numbers(tmp_path / "straight"), numbers(killed)
    assert len(straight) == 300 + 7 and resumed == straight                       # every number, bit for bit
    # samples.txt is cut back like metrics.jsonl: each evaluation's sample once, the same text
    assert (killed / "samples.txt").read_text() == (tmp_path / "straight" / "samples.txt").read_text()


def test_sigterm_saves_and_exits_cleanly(data, tmp_path):
    out = tmp_path / "run"
    args = [*TINY, f"--data_dir={data}", f"--out_dir={out}", "--max_steps=1000000", "--log_interval=5",
            "--checkpoint_interval=100000"]
    p = subprocess.Popen(cmd(*args), env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if (out / "metrics.jsonl").exists() and any("loss" in m for m in read_metrics(out / "metrics.jsonl")): break
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    output = p.communicate(timeout=60)[0]
    assert p.returncode == 0, output[-2000:]
    assert "stopped by signal" in output
    step = load_checkpoint(checkpoints(out)[-1])["step"]
    assert 0 < step < 1000000 and step == max(m["step"] for m in read_metrics(out / "metrics.jsonl"))
    # and it continues from there
    run(*args[:-2], f"--max_steps={step + 3}", "--resume")
    assert load_checkpoint(checkpoints(out)[-1])["step"] == step + 3


def test_wandb_resumes_the_same_run(data, tmp_path):
    out = tmp_path / "run"
    args = [*TINY, f"--data_dir={data}", f"--out_dir={out}", "--log_interval=2", "--eval_interval=4",
            "--checkpoint_interval=4", "--wandb", "--sample_tokens=0"]
    run(*args, "--max_steps=4", WANDB_MODE="offline", WANDB_SILENT="true")
    run(*args, "--max_steps=8", "--resume", WANDB_MODE="offline", WANDB_SILENT="true")
    run_id = (out / "wandb_id.txt").read_text().strip()
    offline = sorted(p.name for p in (out / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(name.endswith("-" + run_id) for name in offline), (run_id, offline)


def test_a_rank_that_cannot_read_the_checkpoint_stops_every_rank(data, tmp_path):
    "Rank 0 chooses the checkpoint; a rank that cannot read it (out_dir not shared) stops the run with one message."
    out = tmp_path / "run"
    args = [*TINY, f"--data_dir={data}", f"--out_dir={out}", "--max_steps=4", "--checkpoint_interval=4"]
    run(*args)
    helper = tmp_path / "rank1_blind.py"   # rank 1 cannot see rank 0's files: what an unshared out_dir does
    helper.write_text("import os, sys\nimport gpt2book.train as t\n"
                      "def blind(path):\n    raise FileNotFoundError(path)\n"
                      "if os.environ.get('RANK') == '1': t.load_checkpoint = blind\n"
                      "t.main(sys.argv[1:])\n")
    p = run(*args, "--max_steps=8", "--resume", torchrun=2, check=False, script=(str(helper),))
    assert p.returncode != 0
    text = p.stdout + p.stderr
    assert "rank 1 cannot read" in text and "storage that all nodes share" in text, text[-3000:]


def test_the_loss_scaler_changes_nothing_but_the_scale():
    "train_step with an (enabled) GradScaler on float32 gives the very step of train_step without one."
    class Batches:
        def __init__(self): self.g = torch.Generator().manual_seed(0)
        def next_batch(self):
            xy = torch.randint(66, (4, 17), generator=self.g)
            return xy[:, :-1], xy[:, 1:]
    after = []
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)):
        torch.manual_seed(0)
        m = make_model(config_from_args(["--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=16"]), 66)
        opt = configure_optimizer(m, 1e-2, 0.1)
        loss, norm, _ = train_step(m, opt, Batches(), 2, 1e-2, 1.0, scaler=scaler)
        after.append((loss, norm, [p.detach().clone() for p in m.parameters()]))
    (l0, n0, p0), (l1, n1, p1) = after
    assert l0 == l1 and torch.allclose(n0, n1, rtol=1e-6)
    for a, b in zip(p0, p1): torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_help_lists_every_setting_and_exits_0():
    for flag in ("--help", "-h"):
        p = run(flag)
        assert p.stdout.startswith("usage: python -m gpt2book.train")
        for key in TrainConfig.__dataclass_fields__:
            assert f"--{key}=" in p.stdout, key
        assert "examples:" in p.stdout and "gpt2-124m-moe" in p.stdout
    assert "peak (nanoGPT: 1e-3" in help_text()   # the field's comment in TrainConfig


def test_refusals(data, tmp_path, capsys):
    def refused(*argv):
        with pytest.raises(SystemExit) as e: main([f"--out_dir={tmp_path / 'refused'}", *argv])
        return str(e.value.code)
    msg = refused("--learning_rtae=1e-3")
    assert "unknown option --learning_rtae" in msg and "--learning_rate" in msg and "--help" in msg
    assert "--max_steps=many: expected an int" in refused("--max_steps=many")
    assert "expected a bool" in refused("--compile=sure")
    assert "not a multiple of batch_size*block_size*world_size" in refused(*TINY, "--total_batch_size=1000")
    missing = refused("--dataset=openwebtext", f"--data_dir={tmp_path / 'owt'}", f"--out_dir={tmp_path / 'o'}")
    assert "python data/prepare.py openwebtext --out" in missing and "no meta.json" in missing
    # an explicit --data_dir without data is an error, never a quiet Tiny Shakespeare somewhere else
    typo = refused(f"--data_dir={tmp_path / 'typo'}", f"--out_dir={tmp_path / 'o'}")
    assert f"python data/prepare.py shakespeare_char --out {tmp_path / 'typo'}" in typo
    assert not (tmp_path / "typo").exists()
    assert "unknown dataset 'tinystories'" in refused("--dataset=tinystories", f"--out_dir={tmp_path / 'o'}")
    # a finished run: rerunning into it is refused, resuming with another model is refused
    out = tmp_path / "run"
    base = [*TINY, f"--data_dir={data}", f"--out_dir={out}", "--max_steps=4", "--eval_interval=2"]
    summary = main(base)
    assert summary["step"] == 4 and (out / "ckpt_0000004.pt").exists() and (out / "loss.png").exists()
    assert json.loads((out / "config.json").read_text())["max_steps"] == 4
    assert "--resume" in refused(*base)
    msg = refused(*base, "--resume", "--n_layer=3")
    assert "different model" in msg and "n_layer: checkpoint 2 vs run 3" in msg


def test_gpt2book_data_is_where_the_default_data_goes(data, tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2BOOK_DATA", str(tmp_path / "elsewhere"))
    assert config_from_args([]).data_path == tmp_path / "elsewhere" / "shakespeare_char"
    summary = main([*TINY, f"--out_dir={tmp_path / 'run'}", "--max_steps=2", "--eval_interval=2"])  # prepares there
    assert summary["step"] == 2 and (tmp_path / "elsewhere" / "shakespeare_char" / "meta.json").exists()


def test_init_from_a_run_folder_takes_its_settings_and_refuses_others(data, tmp_path):
    base = [*TINY, f"--data_dir={data}", "--max_steps=6", "--eval_interval=6", "--checkpoint_interval=6"]
    main([*base, f"--out_dir={tmp_path / 'pre'}", "--n_layer=3"])
    pre = load_checkpoint(checkpoints(tmp_path / "pre")[-1])
    # the weights decide the model: the default n_layer=2 of TINY's preset does not count, an explicit one does
    summary = main([*base, f"--out_dir={tmp_path / 'ft'}", f"--init_from={tmp_path / 'pre'}", "--dropout=0.1",
                    "--learning_rate=1e-4", "--min_lr=1e-5", "--n_layer=3"])
    ft = load_checkpoint(checkpoints(tmp_path / "ft")[-1])
    assert ft["model_config"]["n_layer"] == 3 and ft["model_config"]["dropout"] == 0.1
    first = read_metrics(tmp_path / "ft" / "metrics.jsonl")[0]["val_loss"]
    pre_val = [m for m in read_metrics(tmp_path / "pre" / "metrics.jsonl") if "val_loss" in m][-1]["val_loss"]
    assert first == pytest.approx(pre_val, abs=1e-6)       # it starts where the pretrained run ended
    with pytest.raises(SystemExit) as e:
        main([*base, f"--out_dir={tmp_path / 'bad'}", f"--init_from={tmp_path / 'pre'}", "--n_embd=64"])
    assert "fixes the model's settings" in str(e.value.code) and "--n_embd=64 (the weights: 32)" in str(e.value.code)
    assert summary["step"] == 6


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path):
    out = tmp_path / "run"
    base = [*TINY, f"--data_dir={data}", f"--out_dir={out}", "--log_interval=1", "--checkpoint_interval=4"]
    main([*base, "--max_steps=4"])
    with pytest.raises(SystemExit) as e:
        main([*base, "--max_steps=20", "--resume", "--learning_rate=1e30", "--min_lr=0", "--warmup_steps=0"])
    msg = str(e.value.code)
    assert "non-finite" in msg and "at step 6" in msg and "ckpt_0000004.pt" in msg
    assert [p.name for p in checkpoints(out)] == ["ckpt_0000004.pt"]
    ck = load_checkpoint(checkpoints(out)[-1])
    assert all(torch.isfinite(t).all() for t in ck["model"].values())


def test_moe_logs_its_balance_and_experts_under_ddp(data, tmp_path):
    "A mixture of experts trains under 2-process DDP (every expert's weights reach the all-reduce) and logs aux_loss."
    out = tmp_path / "moe"
    run(*TINY, f"--data_dir={data}", f"--out_dir={out}", "--ffn=moe", "--n_expert=4", "--expert_top_k=1",
        "--max_steps=4", "--log_interval=2", "--eval_interval=4", torchrun=2)
    lines = [m for m in read_metrics(out / "metrics.jsonl") if "loss" in m]
    assert all(m["aux_loss"] >= 1.0 - 1e-6 for m in lines)          # 1 when balanced, more when not
    assert len(lines[-1]["expert_tokens"]) == 2 and len(lines[-1]["expert_tokens"][0]) == 4   # 2 layers x 4 experts
    names = load_checkpoint(checkpoints(out)[-1])["model"]
    assert any("router" in k for k in names) and any("experts.3" in k for k in names)


def test_cpu_default_learns(data, tmp_path):
    "The CPU default preset (model, batch, optimizer), cut to 200 of its 2000 steps: val loss from 4.2 to under 2.7."
    cfg = config_from_args([])
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.batch_size) == (4, 4, 128, 64, 12)
    run(f"--data_dir={data}", f"--out_dir={tmp_path}", "--max_steps=200", "--eval_interval=200", "--eval_iters=20",
        "--sample_tokens=100")                     # a subprocess with one thread: steady even on a busy machine
    val = [m["val_loss"] for m in read_metrics(tmp_path / "metrics.jsonl") if "val_loss" in m]
    assert val[0] > 4.0 and val[-1] < 2.7, val     # ln(66) = 4.19 at the start
    assert len((tmp_path / "samples.txt").read_text()) > 200 and (tmp_path / "loss.png").exists()


def test_hellaswag_during_training_fails_early_without_its_file(data, tmp_path, monkeypatch):
    "No HellaSwag file and no network: refused before the first step, with the reason, not a traceback later."
    import gpt2book.eval
    def offline(url, dest, sha256=None, offline_hint=""):
        raise RuntimeError(f"could not download {url} (no network). Offline? {offline_hint}")
    monkeypatch.setattr(gpt2book.eval, "download", offline)
    monkeypatch.setenv("GPT2BOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(SystemExit) as e:
        main([*TINY, f"--data_dir={data}", f"--out_dir={tmp_path / 'run'}", "--max_steps=4", "--eval_hellaswag_every=2"])
    assert "needs HellaSwag's validation file" in str(e.value.code) and "hellaswag_val.jsonl" in str(e.value.code)
    assert not (tmp_path / "run").exists()
