#!/usr/bin/env python
"""What Muon's orthogonalisation costs in a step of the CPU default model, four ways, next to the whole step.

    python bench/muon_step.py                 # writes nbs/data/muon_step.json (chapter 17 reads it)
    python bench/muon_step.py --reps 20 --json nbs/data/muon_step_avx2.json   # another machine, its own file

The Newton-Schulz iteration (five steps) of every matrix Muon updates in the main job's model (4 blocks: c_attn
384x128, attention c_proj 128x128, c_fc 512x128, MLP c_proj 128x512), on random matrices of those shapes:
one matrix at a time or stacked by shape (one batched product per shape), in float32 or bfloat16. Then the
trainer's whole step (chapter 9's `train_step`, random tokens) with AdamW and with Muon as `gpt2book.muon` does it
(stacked), its iteration in bfloat16 and in float32, and which of the two --muon_ns_dtype=auto picks here. Medians
over --reps repetitions, with every core, in one process. A machine records its CPU's vector instructions
(`cpu_capability`): where they lack bfloat16 (AVX2), a bfloat16 product is the slow one.
"""
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gpt2book.common import Parser, machine_info, user_errors  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.muon import muon_split, newton_schulz, ns_dtype_for  # noqa: E402
from gpt2book.config import make_config  # noqa: E402
from gpt2book.train import model_and_optimizer  # noqa: E402
from profile_step import median_ms, step_fn  # noqa: E402  (bench/profile_step.py)

PROG = "python bench/muon_step.py"


def ns_ways(shapes: list[tuple]) -> dict:
    "Closures orthogonalising one random matrix per shape in `shapes`: one at a time or stacked, float32 or bfloat16."
    gs = [torch.randn(s) for s in shapes]
    stacks = [torch.stack([g for g in gs if g.shape == s]) for s in dict.fromkeys(g.shape for g in gs)]
    return {f"{how}, {dt}": (lambda d=getattr(torch, dt), xs=(gs if how == "one at a time" else stacks):
                             [newton_schulz(x, dtype=d) for x in xs])
            for how in ("one at a time", "stacked by shape") for dt in ("float32", "bfloat16")}


def measure(reps: int) -> dict:
    model = model_and_optimizer(make_config("cpu", optimizer="muon"), {"vocab_size": 65}, "cpu")[1]
    shapes = [tuple(p.shape) for p in muon_split(model)[0]]
    out = {"what": "Newton-Schulz (5 steps) of the main job's Muon matrices, and whole trainer steps; median ms",
           "shapes": [list(s) for s in shapes], "reps": reps, "machine": machine_info()}
    out["ns_ms"] = {k: round(median_ms(f, reps), 2) for k, f in ns_ways(shapes).items()}
    muon = {"optimizer": "muon", "muon_lr": 0.04}
    out["step_ms"] = {name: round(median_ms(step_fn(s), reps), 2)
                      for name, s in (("adamw", {}), ("muon, bfloat16 iteration", {**muon, "muon_ns_dtype": "bfloat16"}),
                                      ("muon, float32 iteration", {**muon, "muon_ns_dtype": "float32"}))}
    out["auto_ns_dtype"] = ns_dtype_for("cpu")                     # what --muon_ns_dtype=auto picks on this machine
    return out


def main(argv=None):
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=50, help="timed repetitions of each (default 50)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "data" / "muon_step.json")
    a = ap.parse_args(argv)
    if a.reps < 1: ap.error(f"argument --reps: must be at least 1, not {a.reps}")
    with user_errors(PROG, OSError):
        out = measure(a.reps)
        a.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(a.json, out)
        print(json.dumps({k: out[k] for k in ("ns_ms", "step_ms")}, indent=1))


if __name__ == "__main__":
    main()
