#!/usr/bin/env python
"""Run the README's main job, `python -m gpt2book.train` (the CPU default), and record what it did.

    python bench/main_job.py            # writes nbs/train/cpu_default.json and nbs/train/cpu_default_metrics.jsonl

It runs the command from the repository's root exactly as the README does (into out/cpu, which it empties
first), then records the wall time, the machine (`gpt2book.common.machine_info()`: CPU, cores, threads, torch,
with the load average before and after: other jobs on the machine slow the run down) and the last sample.
The run's own last validation loss is its 50-batch estimate (the first part of the split); after the timed run
the final weights are also scored on the whole validation split (`whole_split_val_loss`), outside the timing.
Chapter 9 plots the recorded files.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from gpt2book.files import atomic_write_json, atomic_write_text  # noqa: E402
from gpt2book.common import Parser, machine_info  # noqa: E402


def whole_split_loss(run: Path) -> tuple[float, int]:
    "(mean loss per token over the whole validation split, tokens scored) of the final weights in the run folder `run`."
    from gpt2book.checkpoint import load_model
    from gpt2book.loader import TokenLoader
    from gpt2book.prepare import default_data_dir
    from gpt2book.step import evaluate
    cfg = json.loads((run / "config.json").read_text())
    data = cfg["data_dir"] or os.fspath(default_data_dir(cfg["dataset"]))               # as the trainer found it
    model, _ = load_model(run)
    val = TokenLoader(ROOT / data, "val", 64, cfg["model"]["block_size"], shuffle=False)  # (the batch: speed only)
    return evaluate(model, val, eval_iters=0), val.n_seqs * val.T


def main(argv=None):
    ap = Parser(prog="python bench/main_job.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "nbs" / "train", help="folder of the two result files")
    a = ap.parse_args(argv)
    shutil.rmtree(ROOT / "out" / "cpu", ignore_errors=True)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "gpt2book.train"], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"python -m gpt2book.train failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    run = ROOT / "out" / "cpu"
    whole, covered = whole_split_loss(run)
    samples = (run / "samples.txt").read_text()
    metrics = [json.loads(l) for l in open(run / "metrics.jsonl")]
    result = {
        "command": "python -m gpt2book.train", "wall_s": round(wall, 1),
        "val_loss": next(m["val_loss"] for m in reversed(metrics) if "val_loss" in m),
        "whole_split_val_loss": whole, "whole_split_tokens": covered,
        "machine": {**machine_info(), "loadavg_1min_before": round(load0, 2),
                    "loadavg_1min_after": round(os.getloadavg()[0], 2)},
        "final_sample": samples.split("--- step 2000")[1].split("\n", 1)[1],
        "recorded_by": "python bench/main_job.py",
    }
    atomic_write_text(a.out / "cpu_default_metrics.jsonl", (run / "metrics.jsonl").read_text())
    atomic_write_json(a.out / "cpu_default.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "final_sample"}, indent=2))


if __name__ == "__main__":
    main()
