#!/usr/bin/env python
"""Time per training step of every arm of the book's CPU experiments (chapters 10-12), on this machine.

    python bench/arms_speed.py                    # writes nbs/data/bench_arms.json

Each arm of `gpt2book.experiments.ABLATION` and `ARCHITECTURES` is timed with bench/train.py (the trainer's own
`train_step`, synthetic tokens, median of --steps steps after a warm-up) at the scale of the sweeps (the `cpu`
preset), once with one thread (how the sweeps ran them, two side by side) and once with every core. The arms
run in turns, --rounds times, and the median over rounds is kept: other jobs on a shared machine slow some
rounds down.
"""
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.common import CommandError, Parser, machine_info, user_errors  # noqa: E402
from gpt2book.experiments import ABLATION, ARCHITECTURES  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.config import command_line  # noqa: E402

PROG = "python bench/arms_speed.py"


def time_arm(overrides: dict, threads: int | None, steps: int, out: Path) -> dict:
    "bench/train.py for one arm in its own process (so the thread count takes effect), its JSON result."
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if threads: env["OMP_NUM_THREADS"] = str(threads)
    args = [sys.executable, str(ROOT / "bench" / "train.py"), "--steps", str(steps), "--json", str(out),
            *command_line("cpu", overrides)]                       # the cpu preset with the arm's settings
    p = subprocess.run(args, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        last = ([l for l in p.stderr.splitlines() if l.strip()] or ["no output"])[-1]
        raise CommandError(f"{' '.join(args[1:])} failed (exit {p.returncode}): {last}")
    return json.loads(out.read_text())


def main(argv=None):
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50, help="timed steps per arm and round (default 50)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over all arms (default 3)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "data" / "bench_arms.json", help="where to write the result")
    a = ap.parse_args(argv)
    for name in ("steps", "rounds"):
        if getattr(a, name) < 1: ap.error(f"argument --{name}: must be at least 1, not {getattr(a, name)}")
    with user_errors(PROG, OSError):
        return measure(a, argv)


def measure(a, argv):
    "Every arm, with one thread and with all, in interleaved rounds; the JSON record."
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
              "machine": {**{k: v for k, v in machine_info().items() if k != "threads"},   # threads: per run, above
                          "loadavg_1min_before": round(load0, 2), "loadavg_1min_after": round(os.getloadavg()[0], 2)},
              "command": "python bench/arms_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    atomic_write_json(a.json, result)
    print(f"wrote {a.json}")
    return result


if __name__ == "__main__":
    main()
