#!/usr/bin/env python
"""Train one run of an experiment again, alone, and compare its rows with the committed results file, bit for bit.

    python bench/reproduce_row.py                                   # ablation, arm swiglu, lr 0.004, seed 1338
    python bench/reproduce_row.py --experiment architectures --arm rope --lr 0.004 --seed 1338

It runs `python -m gpt2book.experiments run --experiment EXPERIMENT --arm ARM --lr LR --seed SEED --threads 1` in a fresh
temporary folder (one thread, as the sweeps ran each run), reads the rows that command prints, and compares
every validation loss with the row of the same step in nbs/data/EXPERIMENT.csv, as floats, exactly. Writes
nbs/data/reproduce_EXPERIMENT_row.json with the command, the comparison and the machine.
"""
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.common import CommandError, Parser, machine_info, user_errors  # noqa: E402
from gpt2book.experiments import EXPERIMENTS, RESULTS, read_results  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402

PROG = "python bench/reproduce_row.py"


def parser() -> Parser:
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default="ablation", choices=list(EXPERIMENTS))
    ap.add_argument("--arm", default="swiglu", help="an arm of the experiment (default swiglu)")
    ap.add_argument("--lr", type=float, default=0.004, help="its learning rate in the results file (default 0.004)")
    ap.add_argument("--seed", type=int, default=1338, help="its seed in the results file (default 1338)")
    ap.add_argument("--json", type=Path, default=None, help="default nbs/data/reproduce_EXPERIMENT_row.json")
    return ap


def rerun(cmd: list[str]) -> tuple[dict, float]:
    "{step: val_loss} of the rows `python CMD --out TMP` prints, and its wall time."
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, *cmd, "--out", tmp], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "WANDB_MODE": "disabled"})
        wall = time.perf_counter() - t0
    if p.returncode != 0 or "arm,lr,seed,step,val_loss" not in p.stdout:
        last = ([l for l in (p.stderr + p.stdout).splitlines() if l.strip()] or ["no output"])[-1]
        raise CommandError(f"the run failed (exit {p.returncode}): {last}")
    table = p.stdout[p.stdout.index("arm,lr,seed,step,val_loss"):]
    return {int(r["step"]): float(r["val_loss"]) for r in csv.DictReader(io.StringIO(table))}, wall


def main(argv=None):
    ap = parser()
    a = ap.parse_args(argv)
    if a.arm not in EXPERIMENTS[a.experiment]:
        ap.error(f"argument --arm: {a.arm!r} is not an arm of {a.experiment}: {', '.join(EXPERIMENTS[a.experiment])}")
    with user_errors(PROG, OSError):
        results = ROOT / RESULTS[a.experiment]
        if not results.exists(): raise CommandError(f"no results file {results}: run the sweep first")
        want = [r for r in read_results(results) if (r["arm"], r["lr"], r["seed"]) == (a.arm, a.lr, a.seed)]
        if not want: raise CommandError(f"{results} has no rows for arm {a.arm}, lr {a.lr:g}, seed {a.seed}")
        cmd = ["-m", "gpt2book.experiments", "run", "--experiment", a.experiment, "--arm", a.arm, "--lr", f"{a.lr:g}", "--seed",
               str(a.seed), "--threads", "1"]
        got, wall = rerun(cmd)
        pairs = [(r["step"], r["val_loss"], got.get(r["step"])) for r in want]
        equal = sum(1 for _, w, g in pairs if g == w)
        result = {"command": "python " + " ".join(cmd), "results_file": str(results.relative_to(ROOT)),
                  "rows": len(pairs), "bitwise_equal": equal,
                  "max_abs_diff": max(abs(w - g) if g is not None else float("inf") for _, w, g in pairs),
                  "wall_s": round(wall, 1),
                  "machine": {**{k: v for k, v in machine_info().items() if k != "threads"},  # the run: 1 thread
                              "loadavg_1min_after": round(os.getloadavg()[0], 2)},
                  "recorded_by": f"{PROG} " + " ".join(argv if argv is not None else sys.argv[1:])}
        out = a.json or ROOT / "nbs" / "data" / f"reproduce_{a.experiment}_row.json"
        atomic_write_json(out, result)
        print(f"{equal} of {len(pairs)} rows bit for bit equal (max |difference| {result['max_abs_diff']:.3g}); wrote {out}")
        return result


if __name__ == "__main__":
    main()
