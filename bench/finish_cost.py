#!/usr/bin/env python
"""What the end of a speedrun's run costs: the whole-split evaluation at several batch sizes, the loss plot and the
checkpoint, each timed alone, in one process, on the model of chapter 17's three-block record.

    python bench/finish_cost.py --data_dir data/shakespeare_char     # writes nbs/data/finish_cost.json (chapter 17c)

The systems record `fast-finish` (evaluation in batches of 256, no plot, no checkpoint) was registered to save
these costs; this measures what there was to save. Medians over --reps repetitions with every core; the model is
freshly initialised (the cost of a forward pass does not depend on the weights' values).
"""
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.checkpoint import load_chapters  # noqa: E402
from gpt2book.common import Parser, machine_info, user_errors  # noqa: E402
from gpt2book.config import make_config  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.speedrun import record_settings  # noqa: E402
from gpt2book.loader import TokenLoader  # noqa: E402
from gpt2book.runlog import RunLog, plot_metrics, read_metrics  # noqa: E402
from gpt2book.step import evaluate  # noqa: E402
from gpt2book.train import save, setup  # noqa: E402

PROG = "python bench/finish_cost.py"


def median_s(f, reps: int) -> float:
    f()                                                           # once untimed: first-call costs are not the steady cost
    times = []
    for _ in range(reps):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(data_dir: str, reps: int, batches: list[int]) -> dict:
    load_chapters()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config("cpu", **{**record_settings("3 layers"), "data_dir": data_dir, "out_dir": tmp})
        s = setup(cfg)                                            # the model, its optimizer, the loaders, as a run has them
        out = {"what": "the end of a run of the three-block record: whole-split evaluation, loss plot, checkpoint; "
                       "median seconds", "reps": reps, "machine": machine_info()}
        evals = {}
        for b in batches:
            loader = TokenLoader(cfg.data_path, "val", b, s.cfg.model.block_size, seed=cfg.seed, device="cpu", shuffle=False)
            evals[str(b)] = round(median_s(lambda: evaluate(s.model, loader, 0), reps), 4)
        out["eval_whole_split_s"] = evals
        log = RunLog(s.cfg, enabled=True)
        for step in range(0, 860 + 1, 50): log.log(step=step, loss=2.0, lr=1e-3)         # a lean run's lines
        log.log(step=860, val_loss=1.7)
        metrics = read_metrics(log.path)
        t = time.perf_counter()
        plot_metrics(metrics, Path(tmp) / "loss.png", title="x")    # the first plot of a process imports matplotlib
        out["plot_first_s"] = round(time.perf_counter() - t, 4)
        out["plot_s"] = round(median_s(lambda: plot_metrics(metrics, Path(tmp) / "loss.png", title="x"), reps), 4)
        out["checkpoint_s"] = round(median_s(lambda: save(s, log), reps), 4)
        log.close()
    return out


def main(argv=None):
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", required=True, help="a prepared character dataset (the main job's: shakespeare_char)")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions of each (default 5)")
    ap.add_argument("--batches", default="12,64,256", help="evaluation batch sizes, comma-separated (default 12,64,256)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "data" / "finish_cost.json")
    a = ap.parse_args(argv)
    if a.reps < 1: ap.error(f"argument --reps: must be at least 1, not {a.reps}")
    try: batches = [int(b) for b in a.batches.split(",")]
    except ValueError: ap.error(f"argument --batches: {a.batches!r} is not comma-separated whole numbers, e.g. 12,64,256")
    if not batches or min(batches) < 1: ap.error(f"argument --batches: {a.batches!r}: each must be at least 1")
    with user_errors(PROG, OSError):
        out = measure(a.data_dir, a.reps, batches)
        a.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(a.json, out)
        print(json.dumps({k: out[k] for k in ("eval_whole_split_s", "plot_first_s", "plot_s", "checkpoint_s")}, indent=1))


if __name__ == "__main__":
    main()
