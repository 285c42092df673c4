#!/usr/bin/env python
"""Run nanoGPT's CPU recipe for character-level Tiny Shakespeare, as its README gives it, and record its result.

    python bench/nanogpt_recipe.py      # writes nbs/train/nanogpt_cpu_recipe.json

nanoGPT is read from --nanogpt (default ../shared/peers/nanoGPT, an unmodified copy of karpathy/nanoGPT),
copied to a temporary folder, its data made by its own prepare.py, and its train.py run as its own process
with the command of its README (4 layers x 128, context 64, batch 12, 2000 steps, dropout 0, eager, CPU).
The last "step N: train loss X, val loss Y" line it prints is recorded, with the wall time and the machine.
Chapter 9 compares the main job with it. Nothing of nanoGPT is imported.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.common import Parser, machine_info  # noqa: E402
from vs_nanogpt import setup_nanogpt  # noqa: E402

RECIPE = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1",
          "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
          "--lr_decay_iters=2000", "--dropout=0.0"]


def main(argv=None):
    ap = Parser(prog="python bench/nanogpt_recipe.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nanogpt", type=Path, default=ROOT.parent / "shared" / "peers" / "nanoGPT",
                    help="a checkout of karpathy/nanoGPT (default ../shared/peers/nanoGPT)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "train" / "nanogpt_cpu_recipe.json", help="the result file")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="nanogpt_recipe."))
    try:
        nano = setup_nanogpt(a.nanogpt, work)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "train.py", *RECIPE, f"--out_dir={work / 'out'}"], cwd=nano,
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"nanoGPT failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
        evals = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", p.stdout)
        step, train_loss, val_loss = evals[-1]
        result = {"program": "nanoGPT train.py (unmodified)", "command": "python train.py " + " ".join(RECIPE),
                  "step": int(step), "train_loss": float(train_loss), "val_loss": float(val_loss),
                  "evaluations": [{"step": int(s), "val_loss": float(v)} for s, _, v in evals],
                  "wall_s": round(wall, 1),
                  "machine": {**machine_info(), "loadavg_1min_before": round(load0, 2),
                              "loadavg_1min_after": round(os.getloadavg()[0], 2)},
                  "recorded_by": "python bench/nanogpt_recipe.py"}
        atomic_write_json(a.json, result)
        print(json.dumps({k: v for k, v in result.items() if k != "evaluations"}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
