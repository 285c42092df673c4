#!/usr/bin/env python
"""The README's results, made from the committed result files (nbs/data/, nbs/train/).

    python tools/results_tables.py            # prints every block as markdown
    python tools/results_tables.py --readme   # rewrites the blocks in README.md, between their markers
    python tools/results_tables.py --readme --blocks ablation architectures   # only these blocks

Each block sits in README.md between `<!-- results:NAME -->` and `<!-- /results:NAME -->`; tests/test_book.py
checks that every block printed here is in README.md word for word, so the README cannot drift from the files
the chapters read.
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.experiments import ABLATION, ARCHITECTURES, ARM_NAMES, RESULTS, Scale, arm_params, read_results  # noqa: E402
from gpt2book.scaling import FILES  # noqa: E402
from gpt2book.stats import best_lrs, machines_note, results_table  # noqa: E402

def arm_rows(experiment: str, arms: dict) -> list[str]:
    "The summary table of `experiment` (gpt2book.stats.results_table, as chapters 10-12 show it), with parameter counts and machines."
    rows = read_results(ROOT / RESULTS[experiment])
    best = best_lrs(rows)
    chosen = [r for r in rows if r["lr"] == best[r["arm"]]]                              # the runs the table reports
    return [*results_table(rows, ARM_NAMES, arm_params(Scale(), 66, arms)).splitlines(),   # 66: Tiny Shakespeare's characters
            "", machines_note(chosen)]


def scaling_rows() -> list[str]:
    "The fitted law of each architecture of the scaling sweep, the hold-out test, and the seed question's compute multipliers."
    fit = json.loads((ROOT / FILES["cpu"].fit).read_text())
    iv = lambda x, ci, f="{:.2f}": f"{f.format(x)} [{f.format(ci[0])}, {f.format(ci[1])}]"
    out = ["| architecture | E [95% CI] | α [95% CI] | β [95% CI] | the law's N* ∝ C^a: a | runs |", "|---|---|---|---|---|---|"]
    for arch, a in fit["archs"].items():
        law, ci = a["law"], a["intervals"]
        out.append(f"| {ARM_NAMES.get(arch, arch)} | {iv(law['E'], ci['E'])} | {iv(law['alpha'], ci['alpha'])} | "
                   f"{iv(law['beta'], ci['beta'])} | {a['optimum']['N_exponent']:.2f} | {a['n_runs']} |")
    ho = fit["holdout"]
    out += ["", f"Fitted without the largest size ({ho['held_out']}), the GPT-2 law predicts its runs with a mean error of "
                f"{ho['abs_err_mean']:.3f} nats (largest {ho['abs_err_max']:.3f}); the seed-to-seed standard deviation is "
                f"{fit['archs']['gpt2']['noise']:.3f}. (Chinchilla: α = 0.34, β = 0.28, N* ∝ C^0.46.)"]
    for arch, m in fit["multipliers"].items():
        out += ["", f"**{ARM_NAMES.get(arch, arch)} against GPT-2 at every size**: how many times more compute GPT-2 needs for "
                    f"the loss {ARM_NAMES.get(arch, arch)} reaches at {m['tokens'] / 1e6:.1f}M tokens (95% bootstrap intervals):", "",
                f"| size | N | GPT-2 loss | {ARM_NAMES.get(arch, arch)} loss | compute multiplier [95% CI] |", "|---|---|---|---|---|"]
        for x in m["sizes"]:
            out.append(f"| {x['size']} | {x['N']:,} | {x['base_loss']:.3f} | {x['loss']:.3f} | {iv(x['multiplier'], x['interval'])} |")
        lo, hi = m["trend"]["interval"]
        out += [f"| pooled over sizes | | | | **{iv(m['pooled']['multiplier'], m['pooled']['interval'])}** |", "",
                f"The slope of log(multiplier) against log N is {iv(m['trend']['slope'], m['trend']['interval'], '{:+.3f}')}: "
                + ("no trend with size is detectable." if lo < 0 < hi else "the gain grows with size." if lo > 0
                   else "the gain shrinks with size.")]
    return out


def speed_rows() -> list[str]:
    "The side-by-side CPU benchmark against nanoGPT."
    vs = json.loads((ROOT / "nbs" / "train" / "bench_vs_nanogpt.json").read_text())
    r = [x["ratio"] for x in vs["rounds"]]
    return [f"{vs['median_ms_per_step']['gpt2book']:.1f} ms a step against nanoGPT's "
            f"{vs['median_ms_per_step']['nanogpt']:.1f} (medians of {len(r)} rounds; time ratio per round "
            f"{min(r):.2f} to {max(r):.2f}, median {vs['median_ratio']:.2f})."]


BLOCKS = {"ablation": lambda: arm_rows("ablation", ABLATION), "architectures": lambda: arm_rows("architectures", ARCHITECTURES),
          "scaling": scaling_rows, "speed": speed_rows}


def tables(names=None) -> dict[str, list[str]]:
    "The blocks `names` (default: all), each made from its result files."
    return {name: BLOCKS[name]() for name in names or BLOCKS}


def write_readme(path=ROOT / "README.md", names=None):
    "Rewrite the results blocks `names` (default: all) of README.md between their markers."
    from gpt2book.common import CommandError
    text = path.read_text(encoding="utf-8")
    for name, rows in tables(names).items():
        pat = re.compile(rf"(<!-- results:{name} -->\n).*?(\n<!-- /results:{name} -->)", re.S)
        if not pat.search(text):
            raise CommandError(f"{path} has no <!-- results:{name} --> ... <!-- /results:{name} --> block")
        text = pat.sub(lambda m: m.group(1) + "\n".join(rows) + m.group(2), text)
    path.write_text(text, encoding="utf-8")


def main(argv=None):
    from gpt2book.common import Parser, user_errors
    ap = Parser(prog="tools/results_tables.py", description="The README's results blocks, made from the committed "
                                                            "result files (nbs/data/, nbs/train/).")
    ap.add_argument("--readme", action="store_true", help="rewrite the blocks in README.md instead of printing them")
    ap.add_argument("--blocks", nargs="+", choices=list(BLOCKS), metavar="NAME",
                    help=f"only these blocks ({', '.join(BLOCKS)}; default all)")
    args = ap.parse_args(argv)
    with user_errors("tools/results_tables.py", OSError):
        if args.readme:
            write_readme(names=args.blocks); print(f"rewrote the results blocks {', '.join(args.blocks or BLOCKS)} of README.md")
            return
        for name, rows in tables(args.blocks).items():
            print(f"<!-- results:{name} -->"); print(*rows, sep="\n"); print(f"<!-- /results:{name} -->\n")


if __name__ == "__main__":
    main()
