"""The experiment runner with real processes: a training subprocess killed mid-run is resumed by the runner to
exactly the rows of an uninterrupted run; two runners side by side never train the same run twice, also when a
stale lock file (left by a dead runner, or holding a reused process id) is in the way; any dictionary of named
arms runs, and each arm's best learning rate ends inside its sweep."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpt2book.experiments import (ABLATION, ARCHITECTURES, Scale, best_lrs, collect, final_losses, run_args,
                                  run_finished, run_name, run_one, sweep)
from gpt2book.files import checkpoints, folder_lock

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy(shakespeare_char):
    return Scale(lrs=(1e-3,), seeds=(1,), overrides=dict(
        data_dir=str(shakespeare_char), n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_steps=300,
        warmup_steps=10, eval_interval=100, eval_iters=2, checkpoint_interval=10, log_interval=10,
        keep_checkpoints=2, sample_tokens=0, device="cpu"))


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_killed_run_is_resumed_to_the_same_rows(toy, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    assert run_one(toy, "swiglu-rmsnorm", 1e-3, 1, ref, subprocess_=False) == "done"
    run_dir = killed / run_name("swiglu-rmsnorm", 1e-3, 1)
    p = subprocess.Popen([sys.executable, "-m", "gpt2book.train", *run_args(toy, "swiglu-rmsnorm", 1e-3, 1, killed)],
                         env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def test_a_held_run_is_left_to_its_holder_and_a_stale_lock_file_is_not(toy, tmp_path):
    short = Scale(lrs=toy.lrs, seeds=toy.seeds, overrides={**toy.overrides, "max_steps": 20})
    run_dir = tmp_path / run_name("gpt2", 1e-3, 1)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from gpt2book.files import folder_lock\n"
                               "with folder_lock(sys.argv[1], name='runner.lock'):\n print('held', flush=True); "
                               "time.sleep(60)", str(run_dir)], stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run_one(short, "gpt2", 1e-3, 1, tmp_path, subprocess_=False) == "busy"
    finally:
        holder.kill(); holder.wait()
    # the holder died (SIGKILL, no clean-up); its lock file is still there, holding a live process's id (ours,
    # as a recycled pid would): it is not a lock, the operating system released the lock with the process
    (run_dir / "runner.lock").write_text(str(os.getpid()))
    assert run_one(short, "gpt2", 1e-3, 1, tmp_path, subprocess_=False) == "done"


def test_two_runners_side_by_side_against_stale_locks(toy, tmp_path):
    small = Scale(lrs=(1e-3, 2e-3, 4e-3), seeds=(1, 2), overrides={**toy.overrides, "max_steps": 20})
    arms = {k: ABLATION[k] for k in ("gpt2", "swiglu")}
    for arm in arms:   # stale lock files of dead runners in every run folder of phase 1
        for lr in small.lrs:
            d = tmp_path / "runs" / run_name(arm, lr, 1); d.mkdir(parents=True)
            (d / "runner.lock").write_text("4194311")
    cmd = [sys.executable, "-c", "import sys; from gpt2book.experiments import *; from pathlib import Path; "
           f"s = Scale(lrs={small.lrs}, seeds={small.seeds}, overrides={small.overrides!r}); "
           f"sweep({arms!r}, s, Path(sys.argv[1]), Path(sys.argv[2]), workers=1)"]
    procs = [subprocess.Popen([*cmd, str(tmp_path / "runs"), str(tmp_path / f"r{i}.csv")], env=env(),
                              stdout=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    trained = [line for out in outs for line in out.splitlines() if line.endswith(": done")]
    assert len(trained) == len(set(trained)), outs                       # no run trained twice
    rows = [l for l in (tmp_path / "r0.csv").read_text().splitlines()]
    assert (tmp_path / "r0.csv").read_text() == (tmp_path / "r1.csv").read_text()
    n_runs = len({tuple(l.split(",")[:3]) for l in rows[1:]})
    assert len(trained) == n_runs                                         # ... and every run trained once


def test_any_named_arms_and_best_rates_inside_the_sweep(toy, tmp_path):
    "The architectures experiment's arms run through the same runner; a best rate at an edge widens the sweep."
    small = Scale(lrs=(1e-3, 2e-3), seeds=(1,), overrides={**toy.overrides, "max_steps": 20, "n_embd": 16})
    arms = {"moe-total": {**ARCHITECTURES["moe-total"], "expert_hidden": 8}, "rope": ARCHITECTURES["rope"]}
    rows = sweep(arms, small, tmp_path / "runs", tmp_path / "arch.csv", workers=1, subprocess_=False)
    for arm, lr in best_lrs(rows).items():
        tried = sorted({r["lr"] for r in rows if r["arm"] == arm})
        assert tried[0] < lr < tried[-1] and len(tried) >= 3, (arm, lr, tried)   # widened until inside
    assert {r["arm"] for r in rows} == {"moe-total", "rope"} and (tmp_path / "arch.csv").exists()
