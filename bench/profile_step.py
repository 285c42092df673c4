#!/usr/bin/env python
"""Where a training step of the CPU default model spends its time: PyTorch's profiler over the trainer's own step.

    python bench/profile_step.py                       # writes nbs/train/bench_profile.json
    python bench/profile_step.py --steps 30 --json out/bench/profile.json

It builds the main job's model and optimizer with `gpt2book.train.model_and_optimizer` (random tokens of the 65-character
vocabulary, so no data is read), and measures, in one process:
- the step's wall time (median of --steps timed steps) with 1 thread and with every core;
- the share of each kind of operator in a profiled step (self CPU time summed by kind: the matmuls of the
  linear layers and the head, attention, layer norms, GELU, the loss, the optimizer, gradient clipping,
  everything else), and what is left between the operators: Python, dispatch and autograd bookkeeping;
- a step of the same model on one token (batch 1, context 1): the cost that does not grow with the batch.
"""
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gpt2book.common import Parser, machine_info, user_errors  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.config import make_config  # noqa: E402
from gpt2book.step import train_step  # noqa: E402
from gpt2book.train import model_and_optimizer  # noqa: E402
from train import RandomTokens  # noqa: E402  (bench/train.py)

PROG = "python bench/profile_step.py"
KINDS = [  # (kind, substrings of operator names), first match wins
    ("optimizer (fused AdamW)", ("adamw", "adam")),
    ("gradient clipping", ("_foreach_norm", "linalg_vector_norm", "_foreach_mul", "clamp", "stack")),
    ("attention (SDPA kernel)", ("scaled_dot_product", "flash_attention", "_efficient_attention")),
    ("layer norm", ("layer_norm",)),
    ("GELU", ("gelu",)),
    ("loss (log-softmax, NLL)", ("log_softmax", "nll_loss", "cross_entropy")),
    ("matmuls (linear layers, head)", ("addmm", "aten::mm", "bmm", "aten::matmul", "aten::linear")),
    ("embedding", ("embedding",)),
]


def kind_of(name: str) -> str:
    low = name.lower()
    return next((k for k, keys in KINDS if any(s in low for s in keys)), "other tensor ops (add, copy, views...)")


def step_fn(settings: dict):
    "A closure doing one trainer step of the main job's model with `settings` over the cpu preset."
    cfg, model, optimizer = model_and_optimizer(make_config("cpu", **settings), {"vocab_size": 65}, "cpu")
    loader = RandomTokens(cfg.batch_size, cfg.model.block_size, 65, "cpu")
    return lambda: train_step(model, optimizer, loader, cfg.learning_rate, 1, cfg.grad_clip)[0].item()


def median_ms(step, steps: int, warmup: int = 10) -> float:
    for _ in range(warmup): step()
    times = []
    for _ in range(steps):
        t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def measure(steps: int, settings: dict) -> dict:
    threads_all = torch.get_num_threads()
    out = {"what": "one trainer step of the CPU default model (4 x 128, batch 12 x 64), random tokens",
           "settings": settings, "steps": steps, "machine": machine_info()}
    ms = {}
    for n in sorted({1, threads_all}):
        torch.set_num_threads(n)
        ms[f"{n} thread{'s' * (n > 1)}"] = round(median_ms(step_fn(settings), steps), 2)
    out["ms_per_step"] = ms
    torch.set_num_threads(threads_all)
    out["ms_one_token_step"] = round(median_ms(step_fn({**settings, "batch_size": 1, "block_size": 1}), steps), 2)
    step = step_fn(settings)
    for _ in range(10): step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps): step()
        wall = (time.perf_counter() - t0) / steps
    kinds = {}
    for e in prof.key_averages():
        if e.self_cpu_time_total > 0:
            kinds[kind_of(e.key)] = kinds.get(kind_of(e.key), 0.0) + e.self_cpu_time_total / 1e3 / steps
    kinds = dict(sorted(kinds.items(), key=lambda kv: -kv[1]))
    kinds["between operators (Python, dispatch, autograd)"] = max(0.0, 1e3 * wall - sum(kinds.values()))
    out["profiled_ms_per_step"] = round(1e3 * wall, 2)
    out["ms_by_kind"] = {k: round(v, 3) for k, v in kinds.items()}
    out["top_ops"] = [{"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total / 1e3 / steps, 3), "calls": e.count // steps}
                      for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]]
    return out


def main(argv=None):
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50, help="timed (and profiled) steps (default 50)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "train" / "bench_profile.json")
    a = ap.parse_args(argv)
    if a.steps < 1: ap.error(f"argument --steps: must be at least 1, not {a.steps}")
    with user_errors(PROG, OSError):
        out = measure(a.steps, {})
        a.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(a.json, out)
        print(json.dumps({k: out[k] for k in ("ms_per_step", "ms_one_token_step", "profiled_ms_per_step", "ms_by_kind")}, indent=1))


if __name__ == "__main__":
    main()
