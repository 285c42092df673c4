#!/usr/bin/env python
"""gpt2book's trainer against nanoGPT's, side by side on this machine: ms per training step of the same model.

Both programs train nanoGPT's CPU recipe for character-level Tiny Shakespeare (4 layers x 4 heads x 128,
context 64, batch 12, dropout 0, no biases, eager, float32) as whole processes, the way a user runs them.
A step's cost is measured as a difference of two runs, T(--long steps) - T(--short steps), divided by the
difference in steps: start-up, data preparation, the first evaluation and the final checkpoint cancel.
The four runs of a round go in a random order, rounds repeat, and the result is the median over rounds
of the per-round ratio (the machines here are noisy: identical runs differ by up to 2x).

    python bench/vs_nanogpt.py                         # 7 rounds of 100 and 400 steps
    python bench/vs_nanogpt.py --rounds 3 --json out/bench/vs_nanogpt.json

nanoGPT is read from --nanogpt (default ../shared/peers/nanoGPT, an unmodified copy of karpathy/nanoGPT):
it is copied to a temporary folder and its own `data/shakespeare_char/prepare.py` makes its data. Nothing
of it is imported here: it runs as its own `python train.py` process. Tiny Shakespeare comes from
gpt2book's sources (downloaded, or $GPT2BOOK_MIRROR/tinyshakespeare.txt offline).
"""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from gpt2book.prepare import SOURCES, fetch, prepare  # noqa: E402
from gpt2book.common import Parser, machine_info  # noqa: E402
from gpt2book.files import atomic_write_text  # noqa: E402

MODEL = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0)


def setup_nanogpt(src: Path, work: Path) -> Path:
    "A writable copy of nanoGPT with its character data prepared by its own script."
    if not (src / "train.py").exists():
        raise SystemExit(f"no nanoGPT at {src}: pass --nanogpt PATH (a checkout of karpathy/nanoGPT)")
    dst = work / "nanoGPT"
    shutil.copytree(src, dst)
    for p in dst.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    char = dst / "data" / "shakespeare_char"
    shutil.copy(fetch(SOURCES["shakespeare_char"]), char / "input.txt")
    subprocess.run([sys.executable, "prepare.py"], cwd=char, check=True, capture_output=True)
    return dst


WARMUP = 10                      # warmup steps of both programs


def commands(nanogpt: Path, data_dir: Path, work: Path, steps: int, log_interval: int) -> dict:
    "The two programs' command lines for `steps` training steps, without evaluations in between."
    m = MODEL
    nano = [sys.executable, "train.py", "config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
            f"--max_iters={steps}", f"--lr_decay_iters={steps}", f"--warmup_iters={WARMUP}", "--eval_iters=20", "--eval_interval=1000000",
            f"--log_interval={log_interval}", f"--out_dir={work / 'nano_out'}", *[f"--{k}={v}" for k, v in m.items()]]
    ours = [sys.executable, "-m", "gpt2book.train", "--device=cpu", f"--max_steps={steps}", "--eval_iters=20",
            f"--warmup_steps={WARMUP}", "--eval_interval=1000000", "--checkpoint_interval=1000000", "--sample_tokens=0",
            f"--log_interval={log_interval}", f"--data_dir={data_dir}", f"--out_dir={work / f'ours_{steps}'}",
            *[f"--{k}={v}" for k, v in m.items()]]
    return {"nanogpt": (nano, nanogpt), "gpt2book": (ours, ROOT)}


def timed(cmd, cwd, env, work) -> float:
    shutil.rmtree(work / "nano_out", ignore_errors=True)
    for p in work.glob("ours_*"):
        shutil.rmtree(p)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return dt


def main(argv=None):
    ap = Parser(prog="python bench/vs_nanogpt.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nanogpt", type=Path, default=ROOT.parent / "shared" / "peers" / "nanoGPT")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--short", type=int, default=100, help="steps of the short run (default 100)")
    ap.add_argument("--long", type=int, default=400, help="steps of the long run (default 400)")
    ap.add_argument("--log_interval", type=int, default=10, help="both programs print/log every N steps")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both (default: PyTorch's own choice)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "train" / "bench_vs_nanogpt.json")
    ap.add_argument("--seed", type=int, default=0, help="seed of the run order")
    a = ap.parse_args(argv)
    if not WARMUP < a.short < a.long:    # nanoGPT's schedule divides by lr_decay_iters - warmup_iters
        ap.error(f"need {WARMUP} < --short ({a.short}) < --long ({a.long}): both programs warm up for {WARMUP} steps")
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    if a.threads:
        env["OMP_NUM_THREADS"] = str(a.threads)
    work = Path(tempfile.mkdtemp(prefix="vs_nanogpt."))
    try:
        nanogpt = setup_nanogpt(a.nanogpt, work)
        data_dir = prepare("shakespeare_char", out_dir=work / "shakespeare_char", progress=False)
        cmds = {n: commands(nanogpt, data_dir, work, n, a.log_interval) for n in (a.short, a.long)}
        rng = random.Random(a.seed)
        rounds = []
        load0 = os.getloadavg()[0]
        for r in range(a.rounds):
            jobs = [(prog, n) for prog in ("gpt2book", "nanogpt") for n in (a.short, a.long)]
            rng.shuffle(jobs)
            t = {f"{prog}_{n}": timed(*cmds[n][prog], env, work) for prog, n in jobs}
            ms = {prog: (t[f"{prog}_{a.long}"] - t[f"{prog}_{a.short}"]) / (a.long - a.short) * 1e3
                  for prog in ("gpt2book", "nanogpt")}
            rounds.append({"order": [f"{p}_{n}" for p, n in jobs], "seconds": {k: round(v, 3) for k, v in t.items()},
                           "ms_per_step": {k: round(v, 2) for k, v in ms.items()},
                           "ratio": round(ms["gpt2book"] / ms["nanogpt"], 3)})
            print(f"round {r + 1}: gpt2book {ms['gpt2book']:.1f} ms/step, nanoGPT {ms['nanogpt']:.1f} ms/step, "
                  f"ratio {ms['gpt2book'] / ms['nanogpt']:.3f}", flush=True)
        result = {
            "what": "ms per training step, T(long) - T(short) over the step difference, whole processes",
            "model": MODEL, "short": a.short, "long": a.long, "log_interval": a.log_interval,
            "rounds": rounds,
            "median_ratio": statistics.median(r["ratio"] for r in rounds),
            "median_ms_per_step": {p: statistics.median(r["ms_per_step"][p] for r in rounds)
                                   for p in ("gpt2book", "nanogpt")},
            "machine": {**machine_info(), "threads": a.threads or "default",      # the two programs', not this process's
                        "loadavg_1min_before": round(load0, 2), "loadavg_1min_after": round(os.getloadavg()[0], 2)},
            "nanogpt": str(a.nanogpt),
            "command": "python bench/vs_nanogpt.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        }
        print(json.dumps({k: result[k] for k in ("median_ratio", "median_ms_per_step", "machine")}, indent=2))
        atomic_write_text(a.json, json.dumps(result, indent=2) + "\n")
        print(f"wrote {a.json}")
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
