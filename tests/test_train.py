"""Tests of `python -m gpt2book.train` that need real processes: DDP under torchrun (gloo) against gradient
accumulation, a run killed with SIGKILL and resumed (bitwise the same losses), SIGTERM (a clean save), a
non-finite loss, the refusals, and the CPU default's validation loss after a short run.

Offline: Tiny Shakespeare comes from $GPT2BOOK_MIRROR (shared/data). About a minute on 2 cores.
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

from gpt2book.data import prepare
from gpt2book.train import TrainError, checkpoints, config_from_args, load_checkpoint, main, read_metrics, train

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("GPT2BOOK_MIRROR", ROOT.parent / "shared" / "data"))
pytestmark = pytest.mark.skipif(not (MIRROR / "tinyshakespeare.txt").exists(),
                                reason="needs GPT2BOOK_MIRROR with tinyshakespeare.txt")
# a model small enough for a step of a few milliseconds
TINY = ["--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4", "--sample_tokens=20",
        "--eval_iters=4"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepare("shakespeare_char", out_dir=tmp_path_factory.mktemp("data") / "shakespeare_char", progress=False)


def env():
    e = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    return {**e, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "GPT2BOOK_MIRROR": str(MIRROR)}


def cmd(*args, torchrun=0):
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"] if torchrun else []
    return [sys.executable, *launcher, "-m", "gpt2book.train", *map(str, args)]


def run(*args, torchrun=0, check=True):
    p = subprocess.run(cmd(*args, torchrun=torchrun), capture_output=True, text=True, env=env(), timeout=300)
    if check: assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def numbers(out_dir, keys=("loss", "lr", "grad_norm", "val_loss")):
    "metrics.jsonl without the timing fields, which differ from run to run."
    return [{k: m[k] for k in ("step", *keys) if k in m} for m in read_metrics(Path(out_dir) / "metrics.jsonl")]


def test_ddp_equals_grad_accum(data, tmp_path):
    "2 processes x 1 micro-step (gloo) == 1 process x 2 micro-steps, at the same 256 tokens a step."
    common = [*TINY, f"--data_dir={data}", "--total_batch_size=256", "--max_steps=6", "--log_interval=1",
              "--eval_interval=3", "--checkpoint_interval=6"]
    run(*common, f"--out_dir={tmp_path / 'ddp'}", torchrun=2)
    run(*common, f"--out_dir={tmp_path / 'one'}")
    ddp, one = numbers(tmp_path / "ddp"), numbers(tmp_path / "one")
    assert [m["step"] for m in ddp] == [m["step"] for m in one] and len(one) == 9   # 6 train + evals at 0, 3, 6
    for a, b in zip(ddp, one):
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=1e-5, rel=1e-5), (k, a, b)
    assert one[-1]["val_loss"] < one[0]["val_loss"]                                # and it learned something
    # the saved weights agree too, and only rank 0 wrote them
    wa, wb = (load_checkpoint(checkpoints(tmp_path / d)[-1])["model"] for d in ("ddp", "one"))
    for k in wb: torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4)


def test_sigkill_and_resume_is_bitwise(data, tmp_path):
    args = [*TINY, f"--data_dir={data}", "--max_steps=300", "--log_interval=1", "--eval_interval=50",
            "--checkpoint_interval=40", "--keep_checkpoints=2", "--dropout=0.1"]   # dropout: the RNG state matters
    run(*args, f"--out_dir={tmp_path / 'straight'}")
    killed = tmp_path / "killed"
    p = subprocess.Popen(cmd(*args, f"--out_dir={killed}"), env=env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "ckpt_0000040.pt").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    last = checkpoints(killed)[-1]
    assert last.name != "ckpt_0000300.pt"
    run(*args, f"--out_dir={killed}", "--resume")
    straight, resumed = numbers(tmp_path / "straight"), numbers(killed)
    assert len(straight) == 300 + 7 and resumed == straight                       # every number, bit for bit


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


def test_refusals(data, tmp_path, capsys):
    def refused(*argv):
        with pytest.raises(SystemExit) as e: main(list(argv))
        return str(e.value.code)
    msg = refused("--learning_rtae=1e-3")
    assert "unknown option --learning_rtae" in msg and "--learning_rate" in msg and "valid keys:" in msg
    assert "--max_steps=many: expected an int" in refused("--max_steps=many")
    assert "expected a bool" in refused("--compile=sure")
    assert "not a multiple of batch_size*block_size*world_size" in refused(*TINY, "--total_batch_size=1000")
    missing = refused("--dataset=openwebtext", f"--data_dir={tmp_path / 'owt'}", f"--out_dir={tmp_path / 'o'}")
    assert "python data/prepare.py" in missing and "not a prepared data folder" in missing
    # a finished run: rerunning into it is refused, resuming with another model is refused
    out = tmp_path / "run"
    base = [*TINY, f"--data_dir={data}", f"--out_dir={out}", "--max_steps=4", "--eval_interval=2"]
    summary = main(base)
    assert summary["step"] == 4 and (out / "ckpt_0000004.pt").exists() and (out / "loss.png").exists()
    assert json.loads((out / "config.json").read_text())["max_steps"] == 4
    assert "--resume" in refused(*base)
    msg = refused(*base, "--resume", "--n_layer=3")
    assert "different model" in msg and "n_layer: checkpoint 2 vs run 3" in msg


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


def test_cpu_default_learns(data, tmp_path):
    "The CPU default preset (model, batch, optimizer), cut to 200 of its 2000 steps: val loss from 4.2 to under 2.7."
    cfg = config_from_args([])
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.batch_size) == (4, 4, 128, 64, 12)
    run(f"--data_dir={data}", f"--out_dir={tmp_path}", "--max_steps=200", "--eval_interval=200", "--eval_iters=20",
        "--sample_tokens=100")                     # a subprocess with one thread: steady even on a busy machine
    val = [m["val_loss"] for m in read_metrics(tmp_path / "metrics.jsonl") if "val_loss" in m]
    assert val[0] > 4.0 and val[-1] < 2.7, val     # ln(66) = 4.19 at the start
    assert len((tmp_path / "samples.txt").read_text()) > 200 and (tmp_path / "loss.png").exists()
