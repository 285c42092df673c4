#!/usr/bin/env python
"""Train one run of an experiment again, alone, and compare its rows with the committed results file, bit for bit.

    python bench/reproduce_row.py                                   # ablation, arm swiglu, lr 0.004, seed 1338
    python bench/reproduce_row.py --experiment architectures --arm rope --lr 0.004 --seed 1338

It runs `python -m gpt2book.experiments run EXPERIMENT --arm ARM --lr LR --seed SEED --threads 1` in a fresh
temporary folder (one thread, as the sweeps ran each run), reads the rows that command prints, and compares
every validation loss with the row of the same step in nbs/data/EXPERIMENT.csv, as floats, exactly. Writes
nbs/data/reproduce_EXPERIMENT_row.json with the command, the comparison and the machine.
"""
import argparse
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
sys.path.insert(0, str(ROOT / "bench"))

from gpt2book.experiments import EXPERIMENTS, RESULTS, read_results  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from machine import cpu_name  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default="ablation", choices=list(EXPERIMENTS))
    ap.add_argument("--arm", default="swiglu")
    ap.add_argument("--lr", type=float, default=0.004)
    ap.add_argument("--seed", type=int, default=1338)
    ap.add_argument("--json", type=Path, default=None, help="default nbs/data/reproduce_EXPERIMENT_row.json")
    a = ap.parse_args(argv)
    results = ROOT / RESULTS[a.experiment]
    if not results.exists():
        ap.error(f"no results file {results}: run the sweep first")
    want = [r for r in read_results(results) if (r["arm"], r["lr"], r["seed"]) == (a.arm, a.lr, a.seed)]
    if not want:
        ap.error(f"{results} has no rows for arm {a.arm}, lr {a.lr:g}, seed {a.seed}")
    cmd = ["-m", "gpt2book.experiments", "run", a.experiment, "--arm", a.arm, "--lr", f"{a.lr:g}", "--seed",
           str(a.seed), "--threads", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, *cmd, "--out", tmp], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "WANDB_MODE": "disabled"})
        wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"the run failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    table = p.stdout[p.stdout.index("arm,lr,seed,step,val_loss"):]
    got = {int(r["step"]): float(r["val_loss"]) for r in csv.DictReader(io.StringIO(table))}
    pairs = [(r["step"], r["val_loss"], got.get(r["step"])) for r in want]
    equal = sum(1 for _, w, g in pairs if g == w)
    result = {"command": "python " + " ".join(cmd), "results_file": str(results.relative_to(ROOT)),
              "rows": len(pairs), "bitwise_equal": equal,
              "max_abs_diff": max(abs(w - g) if g is not None else float("inf") for _, w, g in pairs),
              "wall_s": round(wall, 1), "machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(),
                                                    "loadavg_1min_after": round(os.getloadavg()[0], 2)},
              "recorded_by": "python bench/reproduce_row.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = a.json or ROOT / "nbs" / "data" / f"reproduce_{a.experiment}_row.json"
    atomic_write_json(out, result)
    print(f"{equal} of {len(pairs)} rows bit for bit equal (max |difference| {result['max_abs_diff']:.3g}); wrote {out}")
    return result


if __name__ == "__main__":
    main()
