"""The ablation runner with real processes: a training subprocess killed mid-run is resumed by the runner
to exactly the rows of an uninterrupted run, and two runners side by side never train the same run twice."""
import os
import signal
import subprocess
import sys
import time

import pytest

from gpt2book.data import prepare
from gpt2book.experiments import Scale, ablation, collect, run_args, run_finished, run_name, run_one
from gpt2book.train import checkpoints

pytestmark = pytest.mark.skipif(not os.environ.get("GPT2BOOK_MIRROR"),
                                reason="needs Tiny Shakespeare: set GPT2BOOK_MIRROR to a folder holding tinyshakespeare.txt")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    data_dir = str(prepare("shakespeare_char", out_dir=tmp_path_factory.mktemp("data") / "sc", progress=False))
    return Scale(lrs=(1e-3,), seeds=(1,), overrides=dict(
        data_dir=data_dir, n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_steps=300,
        warmup_steps=10, eval_interval=100, eval_iters=2, checkpoint_interval=10, log_interval=10,
        keep_checkpoints=2, sample_tokens=0, device="cpu"))


def test_killed_run_is_resumed_to_the_same_rows(toy, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    assert run_one(toy, "swiglu-rmsnorm", 1e-3, 1, ref, subprocess_=False) == "done"
    run_dir = killed / run_name("swiglu-rmsnorm", 1e-3, 1)
    p = subprocess.Popen([sys.executable, "-m", "gpt2book.train", *run_args(toy, "swiglu-rmsnorm", 1e-3, 1, killed)],
                         env={**os.environ, "OMP_NUM_THREADS": "1"},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not checkpoints(run_dir) and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert checkpoints(run_dir), "the training subprocess wrote no checkpoint before it was killed"
    assert not run_finished(run_dir, 300), "the run finished before the kill: the test proves nothing"
    assert run_one(toy, "swiglu-rmsnorm", 1e-3, 1, killed) == "done"  # the runner resumes it (a subprocess)
    runs = [("swiglu-rmsnorm", 1e-3, 1)]
    assert collect(killed, runs) == collect(ref, runs)  # every evaluation, bit for bit
    assert run_one(toy, "swiglu-rmsnorm", 1e-3, 1, killed) == "skipped"


def test_a_claimed_run_is_left_to_its_owner(toy, tmp_path):
    run_dir = tmp_path / run_name("gpt2", 1e-3, 1)
    run_dir.mkdir(parents=True)
    short = Scale(lrs=toy.lrs, seeds=toy.seeds, overrides={**toy.overrides, "max_steps": 20})
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / "runner.lock").write_text(str(owner.pid))
        assert run_one(short, "gpt2", 1e-3, 1, tmp_path, subprocess_=False) == "busy"
    finally:
        owner.kill(); owner.wait()
    # its owner died without finishing: the stale lock is taken over and the run trained
    assert run_one(short, "gpt2", 1e-3, 1, tmp_path, subprocess_=False) == "done"


def test_two_runners_side_by_side(toy, tmp_path):
    small = Scale(lrs=(1e-3, 2e-3), seeds=(1, 2), overrides={**toy.overrides, "max_steps": 20})
    arms = ("gpt2", "swiglu")
    cmd = [sys.executable, "-c", "import sys; from gpt2book.experiments import *; from pathlib import Path; "
           f"s = Scale(lrs={small.lrs}, seeds={small.seeds}, overrides={small.overrides!r}); "
           f"ablation(s, Path(sys.argv[1]), Path(sys.argv[2]), workers=1, arms={arms})"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*cmd, str(tmp_path / "runs"), str(tmp_path / f"r{i}.csv")], env=env,
                              stdout=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    trained = [line for out in outs for line in out.splitlines() if line.endswith(": done")]
    assert len(trained) == len(set(trained)) == 2 * 2 + 2 * 1, outs  # every run trained exactly once
    assert (tmp_path / "r0.csv").read_text() == (tmp_path / "r1.csv").read_text()
