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
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

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


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        a, b = (json.loads(Path(p).read_text()) for p in sys.argv[2:4])
        sys.exit(1 if compare(a, b) else 0)
    out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else Path("bitwise.json")
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else list(CASES)
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name in only:
            results[name] = run_case(name, CASES[name], Path(tmp))
            print(name, results[name]["metrics"][-1], flush=True)
    out.write_text(json.dumps(results, indent=1))
