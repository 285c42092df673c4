#!/usr/bin/env python
"""Generation speed of GPT-2 small's shape on this machine, with and without the KV cache.

    python bench/generate_speed.py                      # writes nbs/data/bench_generate.json (about 5 minutes)
    python bench/generate_speed.py --threads 0 --new_tokens 100 --out /tmp/g.json   # torch's thread count, shorter

The model is GPT-2 small's shape (12 layers, 12 heads, 768 wide, block 1024, vocabulary 50,257; 124M parameters),
randomly initialised, float32, batch 1, eval mode. Speed does not depend on the weights' values, so no download.

1. `generate`: greedy decoding from a --prompt_tokens prompt to --new_tokens more, once with the cache and once
   without, both through `GPT.generate` itself. A forward hook on `lm_head` (called once per new token) stamps the
   time of each step, so the result holds the time of every token against the context it was computed from.
2. `context`: one decoding step at longer contexts, up to the block size: with the cache (the cache filled with the
   context first, then the median of --repeats steps) and without (a forward pass over the whole context, median of
   --repeats).
3. `threads`: one cached and one uncached step at a 256-token context with 1 thread and with 2 threads, to show
   what oversubscription does on a busy machine (below).

The machine (`gpt2book.common.machine_info()`: CPU, cores, the threads used, torch's version) and the 1-minute load
average before and after are recorded:
other jobs on the machine slow every number down. On a 2-core machine that other jobs keep busy, 2 threads are
much slower than 1 (each thread waits for a core that another process holds), hence --threads 1 by default.
Chapter 14 reads and plots the JSON this writes.
"""
import os
import statistics
import sys
import time
from pathlib import Path

import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.model import GPT, GPTConfig, KVCache  # noqa: E402
from gpt2book.common import Parser, machine_info, positive_int  # noqa: E402


def timed_generate(model, prompt, new_tokens, use_cache):
    "(tokens (1, T + n), seconds of each new token, total seconds) of greedy `model.generate`, stamped per step."
    stamps = []
    hook = model.lm_head.register_forward_hook(lambda *_: stamps.append(time.perf_counter()))
    try:
        t0 = time.perf_counter()
        out = model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache)
        total = time.perf_counter() - t0
    finally:
        hook.remove()
    steps = [b - a for a, b in zip([t0] + stamps[:-1], stamps)]   # step i: the token computed from T + i positions
    return out, steps, total


@torch.no_grad()
def step_times(model, ids, T, repeats):
    "(cached step s, uncached step s, prefill s) for the next token after a T-token context: medians of `repeats`."
    cache = KVCache(model.config.block_size)
    t = time.perf_counter(); model.hidden(ids[:, :T], cache); prefill = time.perf_counter() - t
    cached = []
    for i in range(repeats):                       # positions T, T + 1, ...: the same cost to a fraction of a percent
        t = time.perf_counter()
        model.lm_head(model.hidden(ids[:, T + i:T + i + 1], cache)[:, -1])
        cached.append(time.perf_counter() - t)
    uncached = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.lm_head(model.hidden(ids[:, :T + 1])[:, -1])
        uncached.append(time.perf_counter() - t)
    return statistics.median(cached), statistics.median(uncached), prefill


def context_list(text: str) -> list[int]:
    "An argparse type: comma-separated context lengths, each at least 1 (`--contexts 32,64,128`)."
    return [positive_int(c) for c in text.split(",")]


def main(argv=None):
    ap = Parser(prog="python bench/generate_speed.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see above; 0: torch's default)")
    ap.add_argument("--prompt_tokens", type=positive_int, default=16)
    ap.add_argument("--new_tokens", type=positive_int, default=368, help="tokens generated (default: to a 384-token context)")
    ap.add_argument("--contexts", type=context_list, default="32,64,128,256,512,1000",
                    help="context lengths of part 2, comma-separated")
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "nbs" / "data" / "bench_generate.json")
    a = ap.parse_args(argv)
    if max(a.contexts) + a.repeats > GPTConfig().block_size:
        ap.error(f"--contexts: the largest plus --repeats must fit in block_size={GPTConfig().block_size}")
    load0, t_start = os.getloadavg()[0], time.perf_counter()
    if a.threads: torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    config = GPTConfig()                                   # GPT-2 small: 12 x 12 heads x 768, block 1024, V 50257
    model = GPT(config).eval()
    ids = torch.randint(0, config.vocab_size, (1, config.block_size), generator=torch.Generator().manual_seed(0))
    prompt = ids[:, :a.prompt_tokens]                      # (1, prompt_tokens)

    gen = {}
    for name, use_cache in (("cached", True), ("uncached", False)):
        out, steps, total = timed_generate(model, prompt, a.new_tokens, use_cache)
        gen[name] = {"tokens": out[0, a.prompt_tokens:].tolist(), "step_s": [round(s, 5) for s in steps],
                     "total_s": round(total, 3), "tokens_per_s": round(a.new_tokens / total, 3)}
        print(f"generate, {name}: {a.new_tokens} tokens in {total:.1f} s ({a.new_tokens / total:.2f} tokens/s)",
              flush=True)
    same = gen["cached"]["tokens"] == gen["uncached"]["tokens"]
    for g in gen.values(): del g["tokens"]

    contexts = a.contexts
    ctx = {"context": contexts, "cached_step_s": [], "uncached_step_s": [], "prefill_s": []}
    for T in contexts:
        c, u, p = step_times(model, ids, T, a.repeats)
        for k, v in (("cached_step_s", c), ("uncached_step_s", u), ("prefill_s", p)): ctx[k].append(round(v, 5))
        print(f"context {T}: cached {c * 1e3:.1f} ms, uncached {u * 1e3:.1f} ms per token (prefill {p:.2f} s)",
              flush=True)

    thr = {}
    for n in (1, 2):
        torch.set_num_threads(n)
        c, u, _ = step_times(model, ids, 256, a.repeats)
        thr[str(n)] = {"cached_step_s": round(c, 5), "uncached_step_s": round(u, 5)}
        print(f"{n} thread(s), context 256: cached {c * 1e3:.1f} ms, uncached {u * 1e3:.1f} ms", flush=True)
    torch.set_num_threads(threads)

    result = {
        "machine": {**machine_info(), "loadavg_1min_before": round(load0, 2),   # threads: --threads, restored above
                    "loadavg_1min_after": round(os.getloadavg()[0], 2)},
        "model": {"n_layer": config.n_layer, "n_head": config.n_head, "n_embd": config.n_embd,
                  "block_size": config.block_size, "vocab_size": config.vocab_size, "params": model.num_params(),
                  "dtype": "float32", "init": "random", "batch_size": 1, "mode": "eval"},
        "generate": {"prompt_tokens": a.prompt_tokens, "new_tokens": a.new_tokens, "decoding": "greedy",
                     "same_tokens": same, **gen},
        "context": ctx,
        "threads_at_context_256": thr,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "command": "python bench/generate_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    atomic_write_json(a.out, result)
    print(f"wrote {a.out}: same greedy tokens with and without the cache: {same}; {result['wall_s']} s in all")
    return result


if __name__ == "__main__":
    main()
