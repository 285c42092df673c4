#!/usr/bin/env python
"""Training speed of gpt2book: ms per optimizer step, tokens/s and MFU for a preset on this device.

It times the trainer's own step (`gpt2book.train.train_step`: gradient accumulation, autocast, clipping,
fused AdamW) on the model, optimizer and loss scaler the trainer builds (`gpt2book.train.setup`, or `model_and_optimizer` for random tokens), after a few warm-up steps (which absorb torch.compile):

    python bench/train.py                                   # CPU default (char-level Tiny Shakespeare model)
    python bench/train.py --config gpt2-124m --device=cuda  # GPT-2 small on one GPU, bf16 + compile
    python bench/train.py --config gpt2-124m --device=cuda --total_batch_size=65536 --steps 20

`--data synthetic` (the default) draws uniform random token ids of the model's vocabulary, so it needs no
prepared data; `--data real` reads the preset's prepared train split. Any `--key=value` of TrainConfig
is passed through. Prints a JSON result and writes it to `--json` (default
out/bench/train_<config>_<device>.json).
"""
import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from gpt2book.common import cpu_name, machine_info, resolve_device
from gpt2book.files import atomic_write_json
from gpt2book.checkpoint import load_chapters
from gpt2book.config import config_from_args, grad_accum_steps
from gpt2book.step import autocast_context, choose_dtype, flops_per_token, make_scaler, peak_flops, train_step
from gpt2book.train import HOOKS, model_and_optimizer, setup


class RandomTokens:
    "Uniform random (x, y) batches on `device`: the cost of a step without the cost of reading data."
    def __init__(self, batch_size, block_size, vocab_size, device, seed=0):
        self.shape, self.V, self.device = (batch_size, block_size), vocab_size, device
        self.gen = torch.Generator(device).manual_seed(seed)

    def next_batch(self):
        xy = torch.randint(self.V, (self.shape[0], self.shape[1] + 1), generator=self.gen, device=self.device)
        return xy[:, :-1], xy[:, 1:]


def sync(device):
    if device.startswith("cuda"): torch.cuda.synchronize()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="other --key=value: TrainConfig fields")
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5 on CPU, 3 on GPU)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 50 on CPU, 10 on GPU)")
    ap.add_argument("--data", choices=("synthetic", "real"), default="synthetic")
    ap.add_argument("--vocab_size", type=int, default=None, help="synthetic vocabulary (default: 66 for char "
                    "presets, 50257 otherwise)")
    ap.add_argument("--json", default=None, help="where to write the result")
    args, rest = ap.parse_known_args(argv)
    load_chapters()                                       # every variant (rope, moe, muon) can be named
    cfg = config_from_args(["--config", args.config, *rest])
    cfg = dataclasses.replace(cfg, out_dir=tempfile.mkdtemp(prefix="bench_train_"))   # a benchmark resumes nothing
    device = resolve_device(cfg.device)
    on_gpu = device.startswith("cuda")
    warmup = args.warmup if args.warmup is not None else (3 if on_gpu else 5)
    steps = args.steps if args.steps is not None else (10 if on_gpu else 50)
    vocab = None if args.data == "real" else args.vocab_size or (66 if cfg.dataset.endswith("_char") else 50257)
    if vocab is None:                                         # the trainer's own set-up: model, optimizer, scaler, data
        s = setup(cfg, device=device)
        cfg, raw, model, opt, loader, dtype, scaler = s.cfg, s.raw, s.model, s.optimizer, s.train_loader, s.dtype, s.scaler
    else:                                                     # the same model and optimizer, on random tokens
        dtype = choose_dtype(device, cfg.dtype)
        cfg, raw, opt = model_and_optimizer(cfg, {"vocab_size": vocab}, device)
        model, scaler = torch.compile(raw) if cfg.compile else raw, make_scaler(device, dtype)
        loader = RandomTokens(cfg.batch_size, cfg.model.block_size, vocab, device, seed=cfg.seed)
    accum = grad_accum_steps(cfg)
    ctx, tokens_per_step = autocast_context(device, dtype), accum * cfg.batch_size * cfg.model.block_size
    step = lambda: train_step(model, opt, loader, cfg.learning_rate, accum, cfg.grad_clip, ctx, scaler, HOOKS.aux_weight(cfg))

    t0 = time.perf_counter()
    for _ in range(warmup):
        loss, _, _ = step()
    loss.item(); sync(device)
    warmup_s = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        loss, _, _ = step()
        loss.item(); sync(device)                     # each step timed to completion
        times.append(time.perf_counter() - t)
    ms = statistics.median(times) * 1e3
    tps = tokens_per_step / (ms / 1e3)
    peak = peak_flops(device, cfg.peak_tflops)
    result = {
        "config": cfg.config, "device": device,
        "device_name": torch.cuda.get_device_name(device) if on_gpu else cpu_name(),
        "machine": machine_info(),                               # threads, load average after the run: other jobs?
        "dtype": dtype,
        "compile": cfg.compile, "data": args.data, "params": raw.num_params(), "vocab_size": raw.config.vocab_size,
        "batch_size": cfg.batch_size, "block_size": cfg.model.block_size, "grad_accum": accum,
        "tokens_per_step": tokens_per_step, "warmup_steps": warmup, "timed_steps": steps,
        "warmup_s": round(warmup_s, 2), "ms_per_step": round(ms, 2),
        "ms_per_step_mean": round(statistics.mean(times) * 1e3, 2),
        "ms_per_step_min": round(min(times) * 1e3, 2), "tokens_per_s": round(tps, 1),
        "flops_per_token": flops_per_token(raw), "mfu": round(flops_per_token(raw) * tps / peak, 4) if peak else None,
        "peak_tflops": peak / 1e12 if peak else None, "final_loss": loss.item(),
        "max_memory_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if on_gpu else None,
        "command": "python bench/train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    atomic_write_json(Path(args.json or f"out/bench/train_{cfg.config}_{device.split(':')[0]}.json"), result)
    return result


if __name__ == "__main__":
    main()
