"""Model-level bit-for-bit check of every variant against another checkout of the book (the code before a refactor).

For each variant of the CPU default shape (block_size 64, 4 x 4 heads x 128, bias False, exact GELU, vocabulary 65),
seeded with torch.manual_seed(1337): the named parameters (names, order, values), a forward + backward on fixed
random tokens (logits, loss, every gradient), and `generate` (cached and uncached) with a seeded generator, here and
in the other checkout, must be exactly equal. Writes nothing; prints one line per variant.

    python bench/bitwise_model.py --before /tmp/before

The other checkout runs in a subprocess (its own `gpt2book` package). Its softcapped model's `generate` sampled the
raw logits (the bug the one logits path fixes), so for that variant `generate` is compared with sampling from the
old model's (capped) `forward` logits instead.
"""
import io
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gpt2book.common import Parser  # noqa: E402

SHAPE = dict(block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False, gelu="exact", vocab_size=65)
VARIANTS = {
    "gpt2": {},
    "rmsnorm+swiglu": dict(norm="rmsnorm", ffn="swiglu"),
    "relu2": dict(ffn="relu2"),
    "rope": dict(pos="rope"),
    "nope": dict(pos="none"),
    "moe": dict(ffn="moe", n_expert=4, expert_top_k=2, expert_hidden=128),
    "qk-norm": dict(qk_norm=True),
    "untied+zero-init": dict(tie_embeddings=False, zero_init=True),
    "softcap": dict(logit_softcap=15.0),
    "unet": dict(unet_skips=True),
    "speedrun-recipe": dict(pos="rope", qk_norm=True, n_layer=3),
}

# run inside either checkout: builds each variant and returns every tensor that must match
PROBE = r'''
import io, sys, torch
import gpt2book.model as M
new = hasattr(M, "make_model")
if new:
    import gpt2book.positions, gpt2book.moe, gpt2book.recipe  # noqa: F401  (the chapters register their variants)
def build(settings):
    torch.manual_seed(1337)
    return M.make_model(M.model_config(**settings)) if new else M.GPT(M.GPTConfig(**settings))
def head(model, h):  # the logits of final hidden states h: the one path (new), or the old forward's head and cap
    if new: return model.logits(h)
    z, cap = model.lm_head(h), model.config.logit_softcap
    return cap * torch.tanh(z / cap) if cap else z
def sample_loop(model, idx, n, gen, use_cache):  # generate's loop, on the logits forward gives
    bs, cache = model.config.block_size, (M.KVCache(model.config.block_size) if use_cache else None)
    with torch.no_grad():
        model.eval()
        for _ in range(n):
            if cache is not None and idx.size(1) <= bs: h = model.hidden(idx[:, cache.pos:], cache)[:, -1]
            else: h = model.hidden(idx[:, -bs:])[:, -1]
            idx = torch.cat((idx, M.sample_next(head(model, h), 1.0, 20, None, gen)), 1)
    return idx
out = {}
for name, settings in VARIANTS.items():
    m = build(settings)
    r = {"names": [n for n, _ in m.named_parameters()]}
    r.update({"param:" + n: p.detach().clone() for n, p in m.named_parameters()})
    g = torch.Generator().manual_seed(7)
    idx = torch.randint(0, settings["vocab_size"], (4, settings["block_size"] + 1), generator=g)
    m.train()
    logits, loss = m(idx[:, :-1], idx[:, 1:])
    loss.backward()
    r["logits"], r["loss"] = logits.detach(), loss.detach()
    r.update({"grad:" + n: p.grad.clone() for n, p in m.named_parameters()})
    for cache in (True, False):
        r[f"generate(use_cache={cache})"] = m.generate(idx[:, :8], 20, temperature=1.0, top_k=20,
                                                     generator=torch.Generator().manual_seed(3), use_cache=cache)
    for cache in (True, False):
        r[f"sample_from_forward(use_cache={cache})"] = sample_loop(m, idx[:, :8], 20, torch.Generator().manual_seed(3), cache)
    out[name] = r
buf = io.BytesIO(); torch.save(out, buf); sys.stdout.buffer.write(buf.getvalue())
'''


def probe(root: Path) -> dict:
    variants = {k: {**SHAPE, **v} for k, v in VARIANTS.items()}
    code = f"VARIANTS = {variants!r}\n" + PROBE
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    res = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, check=False)
    if res.returncode:
        sys.exit(f"bitwise_model: the probe failed in {root}:\n{res.stderr.decode()[-2000:]}")
    return torch.load(io.BytesIO(res.stdout), weights_only=True)


def compare(old: dict, new: dict, name: str) -> list[str]:
    "What differs between the two checkouts' results for variant `name` (empty: bit for bit equal)."
    o, n, bad = old[name], new[name], []
    if o["names"] != n["names"]:
        return [f"parameter names/order differ: {o['names'][:3]}... vs {n['names'][:3]}..."]
    for k in o:
        if k == "names" or (name == "softcap" and k.startswith("generate")): continue
        if not torch.equal(o[k], n[k]): bad.append(k)
    if name == "softcap":   # the old generate ignored the cap; the new one samples what forward gives
        bad += [f"generate(use_cache={c})" for c in (True, False)
                if not torch.equal(n[f"generate(use_cache={c})"], o[f"sample_from_forward(use_cache={c})"])]
    return bad


def main(argv=None):
    p = Parser(prog="python bench/bitwise_model.py", description=__doc__.splitlines()[0])
    p.add_argument("--before", default="/tmp/before", help="the other checkout (default: /tmp/before)")
    a = p.parse_args(argv)
    if not (Path(a.before) / "gpt2book" / "model.py").is_file():
        p.error(f"--before={a.before}: not a checkout of the book (no gpt2book/model.py); make one with "
                f"git worktree add {a.before} OLD_COMMIT")
    here = Path(__file__).resolve().parent.parent
    old, new = probe(Path(a.before)), probe(here)
    failed = 0
    for name in VARIANTS:
        bad = compare(old, new, name)
        failed += bool(bad)
        note = " (generate: against the old forward's capped logits)" if name == "softcap" else ""
        print(f"{name:18s} {'EQUAL bit for bit' + note if not bad else 'DIFFERS: ' + ', '.join(bad[:6])}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
