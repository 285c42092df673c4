#!/usr/bin/env python
"""The mixture of experts with and without its load-balancing loss, on one machine, five seeds each (chapter 12).

    python bench/aux_loss.py --workers 2     # trains the 10 runs if needed (one thread each), then writes the file

Every run is the `moe-active` arm of the book's architectures experiment, exactly as `python -m gpt2book.experiments
run --experiment architectures --arm moe-active` makes it (the `cpu` preset with the experiment's overrides: 4 x 128,
8 MLP experts of width 256, top-2, 2000 steps, min_lr a tenth of the peak), at the arm's best learning rate in
nbs/data/architectures.csv (2e-3; --lr to choose another). The arm `with` trains with the balancing loss at its
weight 0.01 (the trainer's default, as in the experiment), the arm `without` with --aux_loss_weight=0; seeds 1337 to
1341 by default. The runs live in out/aux_loss/moe-active_lrLR_sSEED and out/aux_loss/moe-active-noaux_lrLR_sSEED
(the two arms of a seed side by side with --workers 2); a stopped run resumes and a finished one is only read.
Writes nbs/data/moe_aux_loss.json: every run's metrics.jsonl, machine and wall time, and the difference of the final
validation losses (without - with) with Welch's 95% interval (each arm's own SD, Welch-Satterthwaite degrees of
freedom).
"""
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.common import CommandError, Parser, key_value, machine_info, positive_int, user_errors  # noqa: E402
from gpt2book.config import command_line  # noqa: E402
from gpt2book.experiments import ARCHITECTURES, Scale, read_results, run_all, run_job, run_name, run_record  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.runlog import read_metrics  # noqa: E402
from gpt2book.stats import best_lrs, ci95, t975, welch_ci95  # noqa: E402

PROG = "python bench/aux_loss.py"
ARM = "moe-active"                                       # the experiment's arm both arms here are made of
ARMS = {"with": ("moe-active", 0.01), "without": ("moe-active-noaux", 0.0)}   # name: (run folder's arm name, aux_loss_weight)
SEEDS = (1337, 1338, 1339, 1340, 1341)


def finite(x) -> float | None:
    "x as a float, None where it is not a number (a result file holds JSON, which has no NaN)."
    return None if x is None or not math.isfinite(x) else float(x)


def arm_summary(values) -> dict:
    "One arm's final losses: n, mean, SD and the mean's 95% Student-t interval (n - 1 degrees of freedom)."
    v = [float(x) for x in values]
    m, lo, hi = ci95(v)
    return {"n": len(v), "mean": m, "sd": finite(float(np.std(v, ddof=1))) if len(v) > 1 else None,
            "low": finite(lo), "high": finite(hi), "df": len(v) - 1, "values": v}


def welch_df(x, y) -> float:
    "Welch-Satterthwaite degrees of freedom of mean(x) - mean(y), each sample with its own variance (not rounded)."
    x, y = np.asarray(x, float), np.asarray(y, float)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)          # squared standard errors
    return float((vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1)))


def welch(x, y) -> dict:
    "mean(x) - mean(y) with Welch's 95% interval, its standard error and degrees of freedom (gpt2book.stats.welch_ci95)."
    d, lo, hi = welch_ci95(x, y)
    if min(len(x), len(y)) < 2: return {"mean": d, "low": None, "high": None, "se": None, "df": None}
    se = math.sqrt(np.var(x, ddof=1) / len(x) + np.var(y, ddof=1) / len(y))
    df = welch_df(x, y) if se > 0 else None
    return {"mean": d, "low": finite(lo), "high": finite(hi), "se": se, "df": df, "t": t975(df) if df else None}


def best_lr(results: Path) -> float:
    "The moe-active arm's best learning rate in the experiment's results file (the rate its seeds ran at)."
    rows = [r for r in read_results(results) if r["arm"] == ARM]
    if not rows: raise CommandError(f"{results} holds no runs of the arm {ARM}: name its rate with --lr")
    return best_lrs(rows)[ARM]


def jobs_of(root: Path, lr: float, seeds, extra: dict) -> dict:
    "{(arm, seed): (run folder, trainer settings)}: the experiment's moe-active run, with the arm's balancing weight."
    out = {}
    for seed in seeds:
        for arm, (name, weight) in ARMS.items():
            _, settings = run_job(Scale(), ARCHITECTURES, (ARM, lr, seed), root)
            out[arm, seed] = (root / run_name(name, lr, seed), {**settings, "aux_loss_weight": weight, **extra})
    return out


def final_val(metrics: list[dict]) -> tuple[int, float]:
    "(step, validation loss) of a run's last evaluation."
    evals = [m for m in metrics if "val_loss" in m]
    if not evals: raise CommandError("a finished run without a validation loss: its metrics.jsonl is damaged")
    return evals[-1]["step"], evals[-1]["val_loss"]


def run_rows(jobs: dict, lr: float) -> list[dict]:
    "One dict per finished run: arm, seed, final validation loss, machine, wall time and every metrics line."
    rows = []
    for (arm, seed), (run_dir, settings) in jobs.items():
        metrics = read_metrics(run_dir / "metrics.jsonl")
        step, val = final_val(metrics)
        rows.append({"arm": arm, "seed": seed, "lr": lr, "aux_loss_weight": settings["aux_loss_weight"],
                     "run_dir": rel(run_dir), "step": step, "val_loss": val, **run_record(run_dir), "metrics": metrics})
    return rows


def summarise(rows: list[dict]) -> dict:
    "Each arm's final losses, and the difference without - with by Welch's interval."
    by = {arm: [r["val_loss"] for r in rows if r["arm"] == arm] for arm in ARMS}
    return {**{arm: arm_summary(v) for arm, v in by.items()},
            "difference": {"what": "final validation loss without the balancing loss minus with it",
                           **welch(by["without"], by["with"])}}


def rel(path) -> str:
    "`path` relative to the repository when it is inside it (a result file names no machine's folders)."
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)



def parser() -> Parser:
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT / "out" / "aux_loss", help="the run folders (default out/aux_loss)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="seeds of each arm (default 1337 to 1341)")
    ap.add_argument("--lr", type=float, default=None, help="the peak learning rate (default: the arm's best in --results)")
    ap.add_argument("--results", type=Path, default=ROOT / "nbs" / "data" / "architectures.csv",
                    help="the experiment's results, for the best rate (default nbs/data/architectures.csv)")
    ap.add_argument("--workers", type=positive_int, default=1, help="runs side by side (default 1)")
    ap.add_argument("--threads", type=positive_int, default=1, help="threads of each run (default 1, as the experiment)")
    ap.add_argument("--set", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="a trainer setting for every run (smoke tests: --set max_steps=20)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "data" / "moe_aux_loss.json")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    if len(set(a.seeds)) != len(a.seeds) or min(a.seeds) < 0: parser().error(f"--seeds {a.seeds}: distinct seeds, 0 or more")
    if a.lr is not None and not a.lr > 0: parser().error(f"--lr {a.lr}: a learning rate above 0")
    if not a.json.parent.is_dir(): parser().error(f"--json {a.json}: no such folder {a.json.parent}")
    if a.lr is None and not a.results.is_file(): parser().error(f"--results {a.results}: no such file; or name the rate with --lr")
    with user_errors(PROG, OSError):
        lr = a.lr or best_lr(a.results)
        jobs = jobs_of(a.root, lr, a.seeds, dict(a.set))
        for (arm, seed), (run_dir, settings) in jobs.items():
            print(f"{arm} seed {seed}: OMP_NUM_THREADS={a.threads} python -m gpt2book.train "
                  + " ".join(command_line(Scale().preset, {**settings, "out_dir": rel(run_dir)})), flush=True)
        t0 = time.time()
        status = run_all(list(jobs.values()), Scale().preset, a.workers, threads=a.threads)
        if failed := {str(d): st for d, st in status.items() if st.startswith("failed")}:
            raise CommandError(f"training failed: {failed}; run the command again to resume the others")
        rows = run_rows(jobs, lr)
        summary = summarise(rows)
        machines = sorted({r["machine"] for r in rows})
        for arm in ARMS:
            s = summary[arm]
            print(f"{arm:8s} the balancing loss: {s['mean']:.4f} [{s['low']}, {s['high']}] (SD {s['sd']}, {s['n']} seeds)")
        d = summary["difference"]
        print(f"without - with: {d['mean']:+.4f} [{d['low']}, {d['high']}], Welch df {d['df']}; machines: {machines}")
        out = {"what": __doc__.split("\n\n")[0], "command": " ".join([PROG, *(argv if argv is not None else sys.argv[1:])]),
               "arm": ARM, "lr": lr, "seeds": a.seeds,
               "arms": {arm: {"run_name": name, "aux_loss_weight": w} for arm, (name, w) in ARMS.items()},
               "settings": dict(a.set), "machine": {**machine_info(), "threads": a.threads, "workers": a.workers},
               "machines": machines, "status": {rel(d): st for d, st in status.items()},
               "wall_s": round(time.time() - t0, 1), "summary": summary, "runs": rows}
        atomic_write_json(a.json, out, indent=None)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
