#!/usr/bin/env python
"""The laptop speedrun of chapter 17: whole training processes, timed, interleaved, one row per run.

    python bench/speedrun.py records                    # every record of gpt2book.speedrun.RECORDS, 5 seeds each
    python bench/speedrun.py records --only muon,lean   # some of them (the main job is always timed alongside)
    python bench/speedrun.py explore NAME --set optimizer=muon --set max_steps=1200 --seeds 1337,1338

`records` runs, for each seed in turn, the main job (`python -m gpt2book.train`, unchanged) and every chosen
record (`python -m gpt2book.train` with the record's settings; the last record as `--config=speedrun`; changes
that were not kept on the first --seeds_not_kept seeds only): interleaved, so that a slow minute on the machine
slows all of them alike. Each row has the final validation loss on the whole validation split, the process's wall
time, the 1-minute load average at its start, and the machine; rows go to nbs/data/speedrun.csv and the losses
each run logged (with seconds since its start) to nbs/data/speedrun_curves.csv (both replaced atomically after every run; a run already in the file for the same sitting is not repeated, so an interrupted
sitting resumes). `explore` runs one recipe untimed-in-spirit (load is recorded, the loss is what counts) into
out/speedrun/explore.csv, for choosing what to time.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.common import CommandError, Parser, cpu_name, user_errors  # noqa: E402
from gpt2book.speedrun import COLUMNS, RECORDS, lean, record_settings  # noqa: E402
from gpt2book.config import TRAIN_PRESETS, command_line, make_config  # noqa: E402
from gpt2book.runlog import read_metrics  # noqa: E402
from gpt2book.scaling import read_rows, write_rows  # noqa: E402  (chapter 13's CSV rows)

PROG = "python bench/speedrun.py"
RESULTS = ROOT / "nbs" / "data" / "speedrun.csv"
EXPLORE = ROOT / "out" / "speedrun" / "explore.csv"


def run_once(preset: str, settings: dict, seed: int, threads: int, out: Path) -> dict:
    "One whole `python -m gpt2book.train` process in `out` (removed after): final validation loss, wall seconds, load before."
    shutil.rmtree(out, ignore_errors=True)
    args = [sys.executable, "-m", "gpt2book.train", *command_line(preset, {**settings, "seed": seed}), f"--out_dir={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        last = ([l for l in p.stderr.splitlines() if l.strip()] or ["no output"])[-1]
        raise CommandError(f"{' '.join(args[2:])} failed (exit {p.returncode}): {last}")
    metrics = read_metrics(out / "metrics.jsonl")
    steps = max(m["step"] for m in metrics)
    val = next(m["val_loss"] for m in reversed(metrics) if "val_loss" in m and m["step"] == steps)
    shutil.rmtree(out, ignore_errors=True)
    curve = [{k: m.get(k, "") for k in CURVE_COLUMNS[3:]} for m in metrics]
    return dict(steps=steps, val_loss=round(val, 5), wall_s=round(wall, 2), load1=round(load, 2)), curve


CURVE_COLUMNS = ["sitting", "record", "seed", "step", "elapsed_s", "loss", "val_loss"]


def rows_of(path: Path) -> list[dict]:
    "The rows already in `path` (none if it is not there yet), every field as written."
    return read_rows(path, ints=(), floats=()) if path.exists() else []


def run_plan(plan: list[tuple], seeds: list[int], sitting: str, threads: int, path: Path,
             curves: Path | None = None) -> None:
    """Every (name, preset, settings, seeds) of `plan` for each of its seeds, interleaved by seed: a row per run in
    `path`, its logged losses in `curves`."""
    rows, curve_rows = rows_of(path), (rows_of(curves) if curves else [])
    done = {(r["sitting"], r["record"], r["seed"]) for r in rows}
    scratch = ROOT / "out" / "speedrun" / "scratch"
    for seed in seeds:
        for name, preset, settings, its_seeds in plan:
            if seed not in its_seeds or (sitting, name, str(seed)) in done: continue
            r, curve = run_once(preset, settings, seed, threads, scratch / f"{name.replace(' ', '_')}_s{seed}")
            if curves:                        # (written first: a row in `path` means its curve is in too)
                curve_rows += [dict(sitting=sitting, record=name, seed=seed, **c) for c in curve]
                write_rows(curve_rows, curves, CURVE_COLUMNS)
            rows.append(dict(sitting=sitting, record=name, seed=seed, **r, threads=threads, cpu=cpu_name(),
                             settings=json.dumps({"config": preset, **TRAIN_PRESETS[preset], **settings}, sort_keys=True)))
            write_rows(rows, path, COLUMNS)             # the whole file, atomically: a kill leaves the last one
            print(f"{time.strftime('%H:%M:%S')} {name:>14} seed {seed}: val {r['val_loss']:.4f} in {r['wall_s']:6.1f} s "
                  f"(load {r['load1']:.2f})", flush=True)


def parse_set(items: list[str]) -> dict:
    "NAME=VALUE pairs as trainer settings: numbers and true/false as such, anything else a string."
    out = {}
    for item in items:
        if "=" not in item: raise ValueError(f"--set {item!r}: write it as NAME=VALUE, e.g. --set max_steps=1200")
        k, v = item.split("=", 1)
        try: out[k] = json.loads(v)
        except json.JSONDecodeError: out[k] = v
    return out


def seeds_of(text: str) -> list[int]:
    try: seeds = [int(s) for s in text.split(",") if s]
    except ValueError: seeds = []
    if not seeds or min(seeds) < 0: raise ValueError(f"--seeds {text!r}: give seeds as comma-separated whole numbers, e.g. 1337,1338")
    return seeds


def main(argv=None):
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("records", help="time the records against the main job, interleaved")
    r.add_argument("--only", default="", help="comma-separated record names (default: all)")
    r.add_argument("--seeds", default="1337,1338,1339,1340,1341", help="comma-separated seeds (default: 5)")
    r.add_argument("--seeds_not_kept", type=int, default=2, help="changes not kept run on the first this many seeds (default 2)")
    r.add_argument("--sitting", default=time.strftime("%Y-%m-%d"), help="a label grouping runs timed together")
    r.add_argument("--threads", type=int, default=os.cpu_count(), help="OMP_NUM_THREADS of each run (default: all cores)")
    r.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting on top of every run (a quick check of the plumbing: --set max_steps=5 ...)")
    r.add_argument("--csv", type=Path, default=RESULTS)
    e = sub.add_parser("explore", help="one recipe on some seeds, for choosing what to time")
    e.add_argument("name")
    e.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a trainer setting over the cpu preset")
    e.add_argument("--seeds", default="1337")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--csv", type=Path, default=EXPLORE)
    a = ap.parse_args(argv)
    names = [n for n, *_ in RECORDS]
    try:
        seeds = seeds_of(a.seeds)
        settings = parse_set(a.set)
        chosen = [n for n in a.only.split(",") if n] or names if a.cmd == "records" else []
        unknown = sorted(set(chosen) - set(names))
        if unknown: raise ValueError(f"--only: unknown record(s) {unknown}; the records are {names}")
        if a.threads < 1: raise ValueError(f"--threads {a.threads}: must be at least 1")
        make_config("cpu", **settings)                    # a wrong setting is refused before anything runs
    except ValueError as e:
        ap.error(str(e))
    with user_errors(PROG, OSError):
        if a.cmd == "explore":
            run_plan([(a.name, "cpu", settings, seeds)], seeds, "explore", a.threads, a.csv)
        else:
            kept, last = {n: k for n, _, _, k in RECORDS}, [n for n, _, _, k in RECORDS if k][-1]
            plan = [("main job", "cpu", settings, seeds)] + [
                (n, "speedrun", settings, seeds) if n == last else                # the last record is the preset
                (n, "cpu", {**record_settings(n), **settings}, seeds if kept[n] else seeds[:a.seeds_not_kept])
                for n in chosen]
            run_plan(plan, seeds, a.sitting, a.threads, a.csv, a.csv.with_name(a.csv.stem + "_curves.csv"))


if __name__ == "__main__":
    main()
