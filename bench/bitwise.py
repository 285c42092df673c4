#!/usr/bin/env python
"""Train a short run of every model and optimizer variant the trainer accepts and record every logged number, so that
two versions of the code can be compared bit for bit (a redesign must not change a single result).

    python bench/bitwise.py --out before.json     # on the old code (e.g. a git worktree of the old commit)
    python bench/bitwise.py --out after.json      # on the new code
    python bench/bitwise.py --compare before.json after.json

Each case is `python -m gpt2book.train` with the CPU default model and the case's settings, 60 steps, evaluated every
30 steps on 5 batches, with a 20-token sample (so the sampling path is compared too). The numbers are compared as
floats, exactly; the sample texts as strings.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpt2book.common import Parser  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402

CASES = {
    "gpt2": {},
    "swiglu-rmsnorm": {"norm": "rmsnorm", "ffn": "swiglu"},
    "relu2": {"ffn": "relu2"},
    "rope": {"pos": "rope"},
    "nope": {"pos": "none"},
    "moe": {"ffn": "moe", "n_expert": 4, "expert_top_k": 2, "expert_hidden": 128},
    "muon": {"optimizer": "muon", "muon_lr": 0.04},
    "qk-norm": {"qk_norm": "true"},
    "untied-zero-init": {"tie_embeddings": "false", "zero_init": "true"},
    "softcap": {"logit_softcap": 15.0},
    "unet": {"unet_skips": "true"},
    "speedrun-recipe": {"optimizer": "muon", "muon_lr": 0.04, "pos": "rope", "qk_norm": "true", "n_layer": 3,
                        "warmup_steps": 30},
}
COMMON = dict(max_steps=60, eval_interval=30, eval_iters=5, log_interval=10, checkpoint_interval=60,
              sample_tokens=20, threads=1)
KEYS = ("step", "loss", "val_loss", "grad_norm", "lr", "aux_loss")


def run_case(name: str, settings: dict, root: Path) -> dict:
    out = root / name
    args = [sys.executable, "-m", "gpt2book.train"] + [f"--{k}={v}" for k, v in {**COMMON, **settings}.items()] + \
        [f"--out_dir={out}"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if l.strip()]
    return {"command": " ".join(args[1:-1]), "metrics": [{k: m[k] for k in KEYS if k in m} for m in lines],
            "samples": (out / "samples.txt").read_text()}


def compare(a: dict, b: dict) -> int:
    bad = 0
    for name in a:
        same = name in b and a[name]["metrics"] == b[name]["metrics"] and a[name]["samples"] == b[name]["samples"]
        print(f"{name:<18} {'bitwise equal' if same else 'DIFFERENT'}")
        bad += not same
    return bad


def main(argv=None) -> int:
    ap = Parser(prog="python bench/bitwise.py", description=__doc__.split("\n\n")[0],
                epilog="examples:\n  python bench/bitwise.py --out before.json\n"
                       "  python bench/bitwise.py --compare before.json after.json",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("out/bitwise.json"), help="where to write the numbers (default out/bitwise.json)")
    ap.add_argument("--only", default=",".join(CASES), help=f"comma-separated cases (default all: {', '.join(CASES)})")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two files written by --out")
    a = ap.parse_args(argv)
    if a.compare:
        missing = [str(f) for f in a.compare if not f.is_file()]
        if missing: ap.error(f"--compare: no such file {missing[0]}")
        x, y = (json.loads(f.read_text()) for f in a.compare)
        return 1 if compare(x, y) else 0
    only = [c for c in a.only.split(",") if c]
    if unknown := [c for c in only if c not in CASES]:
        ap.error(f"--only: unknown case {unknown[0]!r}; the cases are {', '.join(CASES)}")
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name in only:
            results[name] = run_case(name, CASES[name], Path(tmp))
            print(name, results[name]["metrics"][-1], flush=True)
    atomic_write_json(a.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
