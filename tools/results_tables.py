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
    "The fitted law of each architecture of the scaling sweep, the hold-out test, and the seed question's compute multipliers."
    fit = json.loads((ROOT / "nbs" / "data" / "scaling_fit.json").read_text())
    iv = lambda x, ci, f="{:.2f}": f"{f.format(x)} [{f.format(ci[0])}, {f.format(ci[1])}]"
    out = []
    for arch, a in fit["archs"].items():
        law, ci = a["law"], a["intervals"]
        out.append(f"| {NAMES.get(arch, arch)} | {iv(law['E'], ci['E'])} | {iv(law['alpha'], ci['alpha'])} | "
                   f"{iv(law['beta'], ci['beta'])} | {a['optimum']['N_exponent']:.2f} | {a['n_runs']} |")
    ho = fit["holdout"]
    out.append(f"Fitted without the largest size ({ho['held_out']}), the GPT-2 law predicts its runs with a mean error of "
               f"{ho['abs_err_mean']:.3f} nats (largest {ho['abs_err_max']:.3f}); the seed-to-seed standard deviation is "
               f"{fit['archs']['gpt2']['noise']:.3f}.")
    for arch, m in fit["multipliers"].items():
        for x in m["sizes"]:
            out.append(f"| {x['size']} | {x['N']:,} | {x['base_loss']:.3f} | {x['loss']:.3f} | {iv(x['multiplier'], x['interval'])} |")
        out.append(f"| pooled over sizes | | | | **{iv(m['pooled']['multiplier'], m['pooled']['interval'])}** |")
        out.append(f"The slope of log(multiplier) against log N is {iv(m['trend']['slope'], m['trend']['interval'], '{:+.3f}')}: "
                   + ("no trend with size is detectable." if m["trend"]["interval"][0] < 0 < m["trend"]["interval"][1]
                      else "the gain grows with size." if m["trend"]["interval"][0] > 0 else "the gain shrinks with size."))
    return out


def speed_rows() -> list[str]:
    "The side-by-side CPU benchmark against nanoGPT."
    vs = json.loads((ROOT / "nbs" / "train" / "bench_vs_nanogpt.json").read_text())
    r = [x["ratio"] for x in vs["rounds"]]
    return [f"{vs['median_ms_per_step']['gpt2book']:.1f} ms a step against nanoGPT's "
            f"{vs['median_ms_per_step']['nanogpt']:.1f} (medians of {len(r)} rounds; time ratio per round "
            f"{min(r):.2f} to {max(r):.2f}, median {vs['median_ratio']:.2f})."]


def tables() -> dict[str, list[str]]:
    return {"ablation": arm_rows("ablation", ABLATION), "architectures": arm_rows("architectures", ARCHITECTURES),
            "scaling": scaling_rows(), "speed": speed_rows()}


if __name__ == "__main__":
    for name, rows in tables().items():
        print(f"## {name}"); print(*rows, sep="\n"); print()
