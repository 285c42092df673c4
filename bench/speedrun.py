#!/usr/bin/env python
"""The laptop speedrun of chapter 17: whole training processes, timed, interleaved, one row per run.

    python bench/speedrun.py records                    # every record of gpt2book.speedrun.RECORDS, 5 seeds each
    python bench/speedrun.py records --only muon,lean   # some of them (the main job is always timed alongside)
    python bench/speedrun.py explore NAME --set optimizer=muon --set max_steps=1200 --seeds 1337,1338
    python bench/speedrun.py explore NAME --record "3 layers" --set muon_split_qkv=true --seeds 1337,1338,1339
    python bench/speedrun.py register NAME --against PREVIOUS --set n_layer=2 --set max_steps=1080
    python bench/speedrun.py confirm NAME [NAME ...] --rounds 8   # a confirmatory sitting of registered recipes

`records` runs, for each seed in turn, the main job (`python -m gpt2book.train`, unchanged) and every chosen
record (`python -m gpt2book.train` with the record's settings; the last record as `--config=speedrun`; changes
that were not kept on the first --seeds_not_kept seeds only): interleaved, so that a slow minute on the machine
slows all of them alike. Each row has the final validation loss on the whole validation split, the process's wall
time, the 1-minute load average at its start, and the machine; rows go to nbs/data/speedrun.csv and the losses
each run logged (with seconds since its start) to nbs/data/speedrun_curves.csv (both replaced atomically after every run; a run already in the file for the same sitting is not repeated, so an interrupted
sitting resumes). `explore` runs one recipe untimed-in-spirit (load is recorded, the loss is what counts) into
out/speedrun/explore.csv, for choosing what to time, on exploration seeds only.

`register` writes a recipe (its settings over the cpu preset, step count included, and the record it claims to beat)
to nbs/data/speedrun_recipes/NAME.json, once: a registered recipe is never rewritten. `confirm` runs a confirmatory
sitting of registered recipes under chapter 17's rules: every recipe file committed and unchanged (the commit is
recorded in each row), the confirmation seeds (one per round, never used to choose), the main job, each recipe and
the record it claims to beat in every round, in an order drawn from the round number; rows to
nbs/data/speedrun_confirm.csv (resumable).
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

from gpt2book.common import CommandError, Parser, cpu_name, key_value, user_errors  # noqa: E402
from gpt2book.speedrun import (COLUMNS, CONFIRMATION_SEEDS, MIN_ROUNDS, RECORDS, lean, record_settings,  # noqa: E402
                               round_order)
from gpt2book.config import TRAIN_PRESETS, command_line, make_config  # noqa: E402
from gpt2book.checkpoint import load_chapters  # noqa: E402
from gpt2book.runlog import read_metrics  # noqa: E402
from gpt2book.scaling import read_rows, write_rows  # noqa: E402  (chapter 13's CSV rows)

PROG = "python bench/speedrun.py"
RESULTS = ROOT / "nbs" / "data" / "speedrun.csv"
EXPLORE = ROOT / "out" / "speedrun" / "explore.csv"
RECIPES = ROOT / "nbs" / "data" / "speedrun_recipes"
CONFIRM = ROOT / "nbs" / "data" / "speedrun_confirm.csv"
CONFIRM_COLUMNS = COLUMNS + ["round", "order", "commit"]


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
            rows.append(dict(sitting=sitting, record=name, seed=seed, **r, threads=threads, cpu=cpu_name(capability=True),
                             settings=json.dumps({"config": preset, **TRAIN_PRESETS[preset], **settings}, sort_keys=True)))
            write_rows(rows, path, COLUMNS)             # the whole file, atomically: a kill leaves the last one
            print(f"{time.strftime('%H:%M:%S')} {name:>14} seed {seed}: val {r['val_loss']:.4f} in {r['wall_s']:6.1f} s "
                  f"(load {r['load1']:.2f})", flush=True)


def shown(path: Path) -> str:
    "`path` relative to the repository where it is inside it."
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def recipe_path(name: str) -> Path:
    if not name or "/" in name or name.startswith("."): raise ValueError(f"recipe name {name!r}: use a plain name, e.g. two-blocks")
    return RECIPES / f"{name}.json"


def register(name: str, against: str, settings: dict) -> Path:
    "Write the recipe `name` (settings over the cpu preset, and the record it claims to beat), once."
    from gpt2book.files import atomic_write_json
    path = recipe_path(name)
    if "max_steps" not in settings: raise ValueError("a recipe fixes its step count: add --set max_steps=N")
    if against != "main job" and not recipe_path(against).exists():
        raise ValueError(f"--against {against!r}: no such recipe in {shown(RECIPES)}; name a registered recipe, or 'main job'")
    recipe = {"name": name, "against": against, "settings": settings}
    if path.exists():
        if json.loads(path.read_text()) != recipe:
            raise ValueError(f"{path} is registered already with other settings: a registered recipe is never "
                             f"rewritten; register the change under a new name")
        return path
    atomic_write_json(path, recipe)
    return path


def committed(path: Path) -> str:
    "The commit that holds `path` exactly as it is on disk; ValueError if it is not committed or has changed since."
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)
    if git("ls-files", "--error-unmatch", str(path)).returncode != 0 or git("diff", "--quiet", "HEAD", "--", str(path)).returncode != 0:
        raise ValueError(f"{shown(path)} is not committed as it is: commit the recipe before its sitting "
                         f"(git add {shown(path)} && git commit)")
    return git("log", "-1", "--format=%H", "--", str(path)).stdout.strip()


def load_recipe(name: str) -> tuple[dict, str]:
    "(recipe, the commit that holds it) of a registered, committed recipe; 'main job' is the cpu preset itself."
    path = recipe_path(name)
    if not path.exists(): raise ValueError(f"no recipe {name!r} in {shown(RECIPES)}: register it first")
    return json.loads(path.read_text()), committed(path)


def confirm(names: list[str], rounds: int, threads: int, path: Path = CONFIRM, sitting: str | None = None) -> None:
    "A confirmatory sitting of the registered recipes `names` and the records they claim to beat, with the main job."
    plan = {"main job": ({}, "")}
    for name in names:
        recipe, commit = load_recipe(name)
        plan[name] = (recipe["settings"], commit)
        if recipe["against"] not in plan and recipe["against"] != "main job":
            r, c = load_recipe(recipe["against"])
            plan[recipe["against"]] = (r["settings"], c)
    sitting = sitting or time.strftime("%Y-%m-%d")
    rows = rows_of(path)
    done = {(r["sitting"], r["record"], r["seed"]) for r in rows}
    scratch = ROOT / "out" / "speedrun" / "scratch"
    for rnd, seed in enumerate(CONFIRMATION_SEEDS[:rounds]):
        for i, name in enumerate(round_order(plan, rnd)):
            if (sitting, name, str(seed)) in done: continue
            settings, commit = plan[name]
            r, _ = run_once("cpu", settings, seed, threads, scratch / f"{name.replace(' ', '_')}_s{seed}")
            rows.append(dict(sitting=sitting, record=name, seed=seed, **r, threads=threads, cpu=cpu_name(capability=True),
                             settings=json.dumps({"config": "cpu", **TRAIN_PRESETS["cpu"], **settings}, sort_keys=True),
                             round=rnd, order=i, commit=commit))
            write_rows(rows, path, CONFIRM_COLUMNS)
            print(f"{time.strftime('%H:%M:%S')} round {rnd} {name:>14} seed {seed}: val {r['val_loss']:.4f} in "
                  f"{r['wall_s']:6.1f} s (load {r['load1']:.2f})", flush=True)



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
    r.add_argument("--set", type=key_value, action="append", default=[], metavar="NAME=VALUE",
                   help="a setting on top of every run (a quick check of the plumbing: --set max_steps=5 ...)")
    r.add_argument("--csv", type=Path, default=RESULTS)
    e = sub.add_parser("explore", help="one recipe on some seeds, for choosing what to time")
    e.add_argument("name")
    e.add_argument("--config", default="cpu", choices=sorted(TRAIN_PRESETS), help="the preset the settings change (default: cpu; "
                   "speedrun: the current record)")
    e.add_argument("--record", default="", help="start from this record of chapter 17's RECORDS (e.g. '3 layers') instead "
                   "of a preset, so that a script keeps meaning the same base when --config=speedrun moves on")
    e.add_argument("--set", type=key_value, action="append", default=[], metavar="NAME=VALUE",
                   help="a trainer setting over --config (or --record)")
    e.add_argument("--seeds", default="1337")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--csv", type=Path, default=EXPLORE)
    g = sub.add_parser("register", help="write a recipe to nbs/data/speedrun_recipes/ (commit it before confirming)")
    g.add_argument("name")
    g.add_argument("--against", required=True, help="the record it claims to beat: a registered recipe, or 'main job'")
    g.add_argument("--set", type=key_value, action="append", default=[], metavar="NAME=VALUE", help="a trainer setting over the cpu preset")
    c = sub.add_parser("confirm", help="a confirmatory sitting of registered, committed recipes")
    c.add_argument("names", nargs="+")
    c.add_argument("--rounds", type=int, default=MIN_ROUNDS, help=f"rounds, one confirmation seed each (at least {MIN_ROUNDS})")
    c.add_argument("--threads", type=int, default=os.cpu_count(), help="OMP_NUM_THREADS of each run (default: all cores)")
    c.add_argument("--csv", type=Path, default=CONFIRM)
    a = ap.parse_args(argv)
    load_chapters()                  # every variant a setting may name (rope, relu2, ...) checked as the trainer would
    if a.cmd in ("register", "confirm"):
        try:
            if a.cmd == "register":
                settings = dict(a.set)
                make_config("cpu", **settings)             # a wrong setting is refused before anything is written
                print(f"wrote {shown(register(a.name, a.against, settings))}; commit it, then confirm")
                return
            if not MIN_ROUNDS <= a.rounds <= len(CONFIRMATION_SEEDS):
                raise ValueError(f"--rounds {a.rounds}: a confirmation needs {MIN_ROUNDS} to {len(CONFIRMATION_SEEDS)} rounds")
            if a.threads < 1: raise ValueError(f"--threads {a.threads}: must be at least 1")
            for name in a.names: load_recipe(name)
        except ValueError as e:
            ap.error(str(e))
        with user_errors(PROG, OSError):
            confirm(a.names, a.rounds, a.threads, a.csv)
        return
    names = [n for n, *_ in RECORDS]
    try:
        seeds = seeds_of(a.seeds)
        if a.cmd == "explore" and set(seeds) & set(CONFIRMATION_SEEDS):
            raise ValueError(f"--seeds {a.seeds}: {sorted(set(seeds) & set(CONFIRMATION_SEEDS))} are confirmation seeds, "
                             "which never choose anything; explore on others (e.g. 1337-1346)")
        settings = dict(a.set)
        if getattr(a, "record", ""):
            if a.config != "cpu": raise ValueError("--record and --config: give one base, not both")
            try: settings = {**record_settings(a.record), **settings}
            except KeyError as e: raise ValueError(f"--record {a.record!r}: {e.args[0]}") from None
        chosen = [n for n in a.only.split(",") if n] or names if a.cmd == "records" else []
        unknown = sorted(set(chosen) - set(names))
        if unknown: raise ValueError(f"--only: unknown record(s) {unknown}; the records are {names}")
        if a.threads < 1: raise ValueError(f"--threads {a.threads}: must be at least 1")
        make_config(getattr(a, "config", "cpu"), **settings)      # a wrong setting is refused before anything runs
    except ValueError as e:
        ap.error(str(e))
    with user_errors(PROG, OSError):
        if a.cmd == "explore":
            run_plan([(a.name, a.config, settings, seeds)], seeds, "explore", a.threads, a.csv)
        else:
            kept, last = {n: k for n, _, _, k in RECORDS}, [n for n, _, _, k in RECORDS if k][-1]
            plan = [("main job", "cpu", settings, seeds)] + [
                (n, "speedrun", settings, seeds) if n == last else                # the last record is the preset
                (n, "cpu", {**record_settings(n), **settings}, seeds if kept[n] else seeds[:a.seeds_not_kept])
                for n in chosen]
            run_plan(plan, seeds, a.sitting, a.threads, a.csv, a.csv.with_name(a.csv.stem + "_curves.csv"))


if __name__ == "__main__":
    main()
