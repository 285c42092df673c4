#!/usr/bin/env python
"""The README's results tables, made from the committed result files (nbs/data/, nbs/train/).

    python tools/results_tables.py            # prints every table as markdown

The README shows these tables; tests/test_book.py checks that every row printed here appears in README.md
word for word, so the README cannot drift from the files the chapters read.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.experiments import ABLATION, ARCHITECTURES, RESULTS, Scale, arm_params, read_results, summary  # noqa: E402

NAMES = {"gpt2": "GPT-2 (LayerNorm + GELU MLP)", "rmsnorm": "RMSNorm + GELU MLP", "swiglu": "LayerNorm + SwiGLU",
         "swiglu-rmsnorm": "RMSNorm + SwiGLU", "rope": "rotary positions (RoPE)",
         "moe-active": "MoE, 8 experts top-2, dense compute", "moe-total": "MoE, 8 experts top-2, dense size"}


def arm_rows(experiment: str, arms: dict) -> list[str]:
    "One markdown row per arm of `experiment`: parameters, best rate, final loss, difference to GPT-2, steps to GPT-2's loss."
    total, active = arm_params(Scale(), 66, arms), arm_params(Scale(), 66, arms, active=True)
    out = []
    for r in summary(read_results(ROOT / RESULTS[experiment])):
        params = f"{total[r['arm']]:,}" + (f" ({active[r['arm']]:,} active)" if active[r["arm"]] != total[r["arm"]] else "")
        diff = "–" if r["arm"] == "gpt2" else f"{r['diff']:+.3f} [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]"
        reach = ("2000" if r["arm"] == "gpt2" else f"{r['steps_to_baseline']:.0f} ({r['speedup']:.2f}×)"
                 if r["steps_to_baseline"] else "not reached")
        out.append(f"| {NAMES[r['arm']]} | {params} | {r['lr']:g} | {r['val_loss']:.3f} [{r['ci_low']:.3f}, "
                   f"{r['ci_high']:.3f}] | {diff} | {reach} |")
    return out


def scaling_rows() -> list[str]:
    "The fitted law of each architecture of the scaling sweep, and the seed question's compute multipliers."
    path = ROOT / "nbs" / "data" / "scaling_fit.json"
    if not path.exists(): return []
    fit = json.loads(path.read_text())
    out = []
    for arch, a in fit["archs"].items():
        law, ci = a["law"], a["intervals"]
        out.append(f"| {NAMES.get(arch, arch)} | {law['E']:.2f} [{ci['E'][0]:.2f}, {ci['E'][1]:.2f}] | "
                   f"{law['alpha']:.2f} [{ci['alpha'][0]:.2f}, {ci['alpha'][1]:.2f}] | "
                   f"{law['beta']:.2f} [{ci['beta'][0]:.2f}, {ci['beta'][1]:.2f}] | {a['n_runs']} |")
    for arch, ms in fit.get("multipliers", {}).items():
        cells = " | ".join(f"{m['multiplier']:.2f} [{m['interval'][0]:.2f}, {m['interval'][1]:.2f}]" for m in ms)
        out.append(f"| {NAMES.get(arch, arch)} vs GPT-2 | {cells} |")
    return out


def tables() -> dict[str, list[str]]:
    return {"ablation": arm_rows("ablation", ABLATION), "architectures": arm_rows("architectures", ARCHITECTURES),
            "scaling": scaling_rows()}


if __name__ == "__main__":
    for name, rows in tables().items():
        print(f"## {name}"); print(*rows, sep="\n"); print()
