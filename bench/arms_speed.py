#!/usr/bin/env python
"""Time per training step of every arm of the book's CPU experiments (chapters 10-12), on this machine.

    python bench/arms_speed.py                    # writes nbs/data/bench_arms.json

Each arm of `gpt2book.experiments.ABLATION` and `ARCHITECTURES` is timed with bench/train.py (the trainer's own
`train_step`, synthetic tokens, median of --steps steps after a warm-up) at the scale of the sweeps (the `cpu`
preset), once with one thread (how the sweeps ran them, two side by side) and once with every core. The arms
run in turns, --rounds times, and the median over rounds is kept: other jobs on a shared machine slow some
rounds down.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.experiments import ABLATION, ARCHITECTURES  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from machine import cpu_name  # noqa: E402


def time_arm(overrides: dict, threads: int | None, steps: int, out: Path) -> dict:
    "bench/train.py for one arm in its own process (so the thread count takes effect), its JSON result."
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if threads: env["OMP_NUM_THREADS"] = str(threads)
    args = [sys.executable, str(ROOT / "bench" / "train.py"), "--steps", str(steps), "--json", str(out),
            *[f"--{k}={v}" for k, v in overrides.items()]]
    p = subprocess.run(args, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{p.stderr[-2000:]}")
    return json.loads(out.read_text())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "data" / "bench_arms.json")
    a = ap.parse_args(argv)
    arms = {**ABLATION, **ARCHITECTURES}
    load0 = os.getloadavg()[0]
    times = {(arm, t): [] for arm in arms for t in (1, None)}
    info = {}
    tmp = ROOT / "out" / "bench" / "arm.json"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    for r in range(a.rounds):
        for arm, over in arms.items():
            for t in (1, None):
                res = time_arm(over, t, a.steps, tmp)
                times[(arm, t)].append(res["ms_per_step"])
                info[arm] = {k: res[k] for k in ("params", "flops_per_token", "tokens_per_step")}
                print(f"round {r + 1} {arm:15s} threads {t or 'all'}: {res['ms_per_step']:.1f} ms/step", flush=True)
    result = {"what": "ms per training step (median over rounds of each round's median), bench/train.py, cpu preset",
              "arms": {arm: {**info[arm], "overrides": arms[arm],
                             "ms_per_step_1_thread": statistics.median(times[(arm, 1)]),
                             "ms_per_step_all_threads": statistics.median(times[(arm, None)]),
                             "rounds_1_thread": times[(arm, 1)], "rounds_all_threads": times[(arm, None)]}
                       for arm in arms},
              "machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "loadavg_1min_before": round(load0, 2),
                          "loadavg_1min_after": round(os.getloadavg()[0], 2)},
              "command": "python bench/arms_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    atomic_write_json(a.json, result)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
