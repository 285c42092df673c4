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

from gpt2book.common import markdown_table  # noqa: E402
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


def num(x, f: str = "{:.3f}") -> str:
    "`x` written with the format `f`, or n/a where it was not measurable (NaN is null in the JSON)."
    return "n/a" if x is None else f.format(x)


def iv(x, ci, f: str = "{:.3f}") -> str:
    "A value with its interval, `x [low, high]`."
    return f"{num(x, f)} [{num(ci[0], f)}, {num(ci[1], f)}]"


HOLDOUT_COLUMNS = ["steps", "tokens", "predicted (bootstrap SD)", "measured: mean of seeds (SE, seeds)", "ratio", "passed"]


def holdout_cells(b: dict) -> list[str]:
    "One budget of chapter 13's hold-out test, as the cells of its row."
    return [f"{b['steps']:,}", f"{b['tokens']:,.0f}", f"{b['predicted']:.3f} ({num(b['pred_sd'], '{:.4f}')})",
            f"{b['mean']:.3f} ({num(b['se'], '{:.4f}')}, {b['seeds']})", num(b["ratio"], "{:.2f}"), {True: "yes", False: "no", None: "not testable (1 seed)"}[b["passed"]]]


def gap_cells(gaps: list[dict], size: str, steps: list) -> list[str]:
    "One size of chapter 13's gaps table: the size, its parameters, and the arm's difference at each budget (Holm's interval)."
    cell = {g["steps"]: g for g in gaps if g["size"] == size}
    return [size, f"{next(iter(cell.values()))['n_params']:,}", *(
        iv(cell[b]["delta"], (cell[b]["holm_low"], cell[b]["holm_high"]), "{:+.3f}") if b in cell else "" for b in steps)]


def scaling_rows(fit: dict | None = None, gaps: list[dict] | None = None) -> list[str]:
    "Chapter 13: the candidate laws, the hold-out test, the exponent a three ways, and each arm's difference at every cell."
    from gpt2book.scaling import FORMS, read_rows
    fit = fit or json.loads((ROOT / FILES["fit"]).read_text())
    gaps = gaps if gaps is not None else read_rows(ROOT / FILES["gaps"])
    import tempfile
    from gpt2book.scaling_runs import Plan, known_runs, size_table
    out, forms, ho, opt = [], fit["forms"], fit["holdout"], fit["optimum"]
    todo = Plan(tempfile.mkdtemp(), size_table(), known_runs(read_rows(ROOT / FILES["runs"]))).runs()
    if todo:                                                  # the plan still asks for runs: the study is not finished
        out += [f"**Partial: the study is still running** (at the last collect its plan could start {len(todo)} more "
                "runs at once, and more after them). What follows is computed from the runs finished then; a part "
                "still running can change it.", ""]
    if forms is None:
        out += ["Too few of GPT-2's sizes and budgets have finished to fit a law."]
    else:
        out += [markdown_table([[f, num(forms[f]["loso_rms"], "{:.2f}"), num(forms[f]["wls"]["chi2_dof"], "{:.2f}"),
                                 num(forms[f]["huber"]["chi2_dof"], "{:.2f}"), "chosen" if f == forms["chosen"] else ""]
                                for f in FORMS], ["candidate law", "leave-one-size-out RMS (noise units)",
                                                  "χ²/dof, weighted least squares", "χ²/dof, Huber on log L", ""], align="lrrrl")]
    if ho:
        out += ["", f"The chosen law, fitted without the held-out size ({ho['held_out']}), predicts it at each budget "
                    "(passed: ratio = |error| / (2 √(SE² + the prediction's variance)) ≤ 1):", "",
                markdown_table([holdout_cells(b) for b in ho["budgets"]], HOLDOUT_COLUMNS, align="rrllrl")]
    walled = sum(m["bracketed"] for m in opt["approach2"]["levels"].values())
    a = lambda o: "n/a" if not o or o.get("a") is None else iv(o["a"], o["a_ci"], "{:.2f}")
    out += ["", f"The compute-optimal exponent a (N* ∝ C^a): approach 1 (the envelope) {a(opt['approach1'])}, approach 2 "
                f"(IsoFLOP valleys; {walled} of {len(opt['approach2']['levels'])} levels walled on both sides) "
                f"{a(opt['approach2'])}, approach 3 (the chosen law) {a(opt['approach3'])}. Chinchilla's approaches "
                "give a ≈ 0.5 (published, not measured here)."]
    for arm in dict.fromkeys(g["arm"] for g in gaps):
        mine = [g for g in gaps if g["arm"] == arm]
        steps = sorted({g["steps"] for g in mine})
        out += ["", f"**{ARM_NAMES.get(arm, arm)} minus GPT-2**, loss (nats per character) at the same size and budget, "
                    "each at its own best rate; Holm-corrected intervals over the table (negative: better than GPT-2):", "",
                markdown_table([gap_cells(mine, size, steps) for size in sorted(
                    {g["size"] for g in mine}, key=lambda s: next(g["n_params"] for g in mine if g["size"] == s))],
                    ["size", "parameters", *(f"{b:,} steps" for b in steps)], align="lr" + "l" * len(steps))]
    out += ["", f"{fit['runs']} runs on {', '.join(fit['machine'])}; the study's design, state and every check: chapter 13."]
    return out


def vocab_rows() -> list[str]:
    "Chapter 16: bits per byte of each vocabulary at equal training compute."
    from gpt2book.scaling import read_rows
    from gpt2book.vocab import FILES as VOCAB_FILES, FLOATS as VF, INTS as VI, summary, summary_table
    runs = read_rows(ROOT / VOCAB_FILES["runs"], VI, VF)
    arms = {r["arm"]: r for r in read_rows(ROOT / VOCAB_FILES["arms"], VI, VF)}
    rows = summary(runs)
    flops = {f"{r['flops']:.1e}" for r in runs}
    machines = sorted({r["machine"] for r in runs if r.get("machine")})
    pending = [a for a in arms if a not in {r["arm"] for r in rows}]
    return [summary_table(rows), "",
            *([f"Still sweeping their learning rate when these results were collected: {', '.join(pending)} "
               "(their runs so far: chapter 16).", ""] if pending else []),
            "Bytes per token on the validation plays: " + ", ".join(f"{a} {arms[a]['bytes_per_token']:.2f}" for a in arms) + ".",
            f"Every run: {' / '.join(flops)} training FLOPs, the CPU default model (4 × 128, 64-token windows); "
            f"{len(runs)} runs on {', '.join(machines)}."]


def speed_rows() -> list[str]:
    "The side-by-side CPU benchmark against nanoGPT."
    vs = json.loads((ROOT / "nbs" / "train" / "bench_vs_nanogpt.json").read_text())
    r = [x["ratio"] for x in vs["rounds"]]
    return [f"{vs['median_ms_per_step']['gpt2book']:.1f} ms a step against nanoGPT's "
            f"{vs['median_ms_per_step']['nanogpt']:.1f} (medians of {len(r)} rounds; time ratio per round "
            f"{min(r):.2f} to {max(r):.2f}, median {vs['median_ratio']:.2f})."]


def speedrun_rows() -> list[str]:
    "Chapter 17: the confirmatory sitting's table, with the machine, its load and the main job."
    import pandas as pd
    from gpt2book.speedrun import CONFIRMED, confirm_markdown, confirm_table
    rows = pd.read_csv(ROOT / "nbs" / "data" / "speedrun_confirm.csv")
    chain = [json.loads((ROOT / "nbs" / "data" / "speedrun_recipes" / f"{r}.json").read_text()) for r in CONFIRMED.values()]
    main = rows[rows.record == "main job"]
    return [confirm_markdown(confirm_table(rows, chain)), "",
            f"Main job (`python -m gpt2book.train`, unchanged): {main.wall_s.mean():.1f} s on average over {len(main)} rounds, "
            f"ending at {main.val_loss.mean():.4f} on the whole split. Sitting {rows.sitting.iloc[0]}: {rows.cpu.iloc[0]}, "
            f"{rows.threads.iloc[0]} threads, 1-minute load average {rows.load1.min():.2f} to {rows.load1.max():.2f} at the "
            f"runs' starts; {len(rows)} runs on the confirmation seeds, each round in its drawn order."]


def bpe_rows() -> list[str]:
    "Chapter 6: the BPE trainer against Hugging Face tokenizers on three corpora, with the machine and its load."
    from gpt2book.tokenizer import bpe_bench_table
    bb = json.loads((ROOT / "nbs" / "data" / "bench_bpe.json").read_text())
    m = bb["machine"]
    return [bpe_bench_table(bb), "",
            f"Best of {bb['repeats']} runs each, in fresh processes, the two trainers alternating (`python bench/bpe_train.py`); "
            f"{m['cpu']}, {m['cpu_count']} cores, 1-minute load average {m['loadavg_1min_before']} before and "
            f"{m['loadavg_1min_after']} after."]


BLOCKS = {"ablation": lambda: arm_rows("ablation", ABLATION), "architectures": lambda: arm_rows("architectures", ARCHITECTURES),
          "scaling": scaling_rows, "vocab": vocab_rows, "speed": speed_rows, "speedrun": speedrun_rows,
          "bpe": bpe_rows}


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
