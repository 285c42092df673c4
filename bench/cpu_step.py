#!/usr/bin/env python
"""What each choice costs in one training step of the CPU default model, measured on this machine.

    python bench/cpu_step.py                 # writes nbs/train/bench_cpu_step.json

The step is the trainer's own `train_step` (forward, backward, clipping, AdamW) on the CPU default model
(4 layers x 128, context 64, batch 12) with synthetic tokens, in one process. Each variant changes one thing
from what the trainer does by default:

- `written-out norms`: chapter 2's LayerNorm (five kernels) in place of the fused `F.layer_norm`;
- `tanh GELU`: GPT-2's approximation in place of the exact GELU (`--gelu=tanh`);
- `foreach AdamW`, `per-tensor AdamW`: PyTorch's other AdamW implementations in place of the fused one;
- `torch.compile`: the model compiled (default mode; the first compile is timed apart).

Variants run in turns, --rounds times, --steps timed steps each after a warm-up; the median over rounds of each
round's median is kept (the shared machines here are noisy).
"""
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.common import Parser, machine_info, user_errors  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.model import make_model  # noqa: E402
from gpt2book.norms import FusedLayerNorm, LayerNorm  # noqa: E402
from gpt2book.optim import configure_optimizer, param_groups  # noqa: E402
from gpt2book.config import make_config  # noqa: E402
from gpt2book.step import train_step  # noqa: E402
from train import RandomTokens  # noqa: E402  (bench/train.py)

PROG = "python bench/cpu_step.py"

VARIANTS = ("trainer default", "written-out norms", "tanh GELU", "foreach AdamW", "per-tensor AdamW", "torch.compile")


def written_out_norms(model):
    "Swap every fused LayerNorm for chapter 2's written-out one (the same parameters)."
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, FusedLayerNorm):
                ref = LayerNorm(child.weight.numel(), bias=child.bias is not None, eps=child.eps)
                ref.load_state_dict(child.state_dict())
                setattr(module, name, ref)
    return model


def build(variant):
    "(model to call, raw model, optimizer) of a variant, freshly initialised with seed 0."
    cfg = make_config(gelu="tanh") if variant == "tanh GELU" else make_config()
    torch.manual_seed(0)
    raw = make_model(dataclasses.replace(cfg.model, vocab_size=66))
    if variant == "written-out norms": written_out_norms(raw)
    if variant in ("foreach AdamW", "per-tensor AdamW"):
        opt = torch.optim.AdamW(param_groups(raw, cfg.weight_decay), lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2),
                                foreach=variant == "foreach AdamW")
    else:
        opt = configure_optimizer(raw, cfg.learning_rate, cfg.weight_decay, (cfg.beta1, cfg.beta2), "cpu")
    return (torch.compile(raw) if variant == "torch.compile" else raw), raw, opt, cfg


def time_variant(variant, steps, warmup):
    model, raw, opt, cfg = build(variant)
    batches = RandomTokens(cfg.batch_size, cfg.model.block_size, 66, "cpu")
    step = lambda: train_step(model, opt, batches, cfg.learning_rate, 1, cfg.grad_clip)
    t0 = time.perf_counter()
    for _ in range(warmup): step()
    warm = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t = time.perf_counter(); step()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, warm


def main(argv=None):
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60, help="timed steps per variant and round (default 60)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds over all variants (default 5)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "train" / "bench_cpu_step.json",
                    help="where to write the result")
    a = ap.parse_args(argv)
    for name, low in (("steps", 1), ("warmup", 0), ("rounds", 1)):
        if getattr(a, name) < low: ap.error(f"argument --{name}: must be at least {low}, not {getattr(a, name)}")
    with user_errors(PROG, OSError):
        return measure(a, argv)


def measure(a, argv):
    "Every variant in interleaved rounds; the JSON record."
    load0 = os.getloadavg()[0]
    ms = {v: [] for v in VARIANTS}
    compile_s = None
    for r in range(a.rounds):
        for v in VARIANTS:
            m, warm = time_variant(v, a.steps, a.warmup)
            ms[v].append(m)
            if v == "torch.compile" and compile_s is None: compile_s = warm   # the first compile of this run (an on-disk cache may shorten it)
            print(f"round {r + 1}: {v:18s} {m:6.1f} ms/step", flush=True)
    result = {"what": "ms per train_step of the CPU default model (median of each round's median), synthetic tokens",
              "ms_per_step": {v: statistics.median(x) for v, x in ms.items()}, "rounds": ms,
              "first_compile_s": round(compile_s, 1),
              "machine": {**machine_info(), "loadavg_1min_before": round(load0, 2),
                          "loadavg_1min_after": round(os.getloadavg()[0], 2)},
              "command": "python bench/cpu_step.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    atomic_write_json(a.json, result)
    print(json.dumps(result["ms_per_step"], indent=1)); print(f"wrote {a.json}")
    return result


if __name__ == "__main__":
    main()
