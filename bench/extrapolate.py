#!/usr/bin/env python
"""Loss per position at 1x and 2x the training context, for trained run folders (chapter 11).

    python bench/extrapolate.py out/runs/gpt2_lr0.004_s1337 out/runs/rope_lr0.004_s1337

Each run folder's newest checkpoint is loaded into a model whose context is `--factor` times the one it was
trained with. A rotary model (pos=rope) has no position table: the same weights run at any length. A learned
table has no rows past the trained context: they are filled with the initialisation the trainer gives every
embedding, N(0, 0.02) (a table allocated that long but never trained past the training length), which is
exactly what such a model would do there. The validation split is cut into non-overlapping windows of the
longer length, and the mean cross-entropy at every position is recorded, for the trained length and the
longer one. Writes nbs/data/positions_extrapolation.json.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.loader import TokenLoader  # noqa: E402
from gpt2book.checkpoint import newest_readable_checkpoint  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.model import GPT, GPTConfig  # noqa: E402


def longer_model(ckpt: dict, factor: int, seed: int = 0) -> GPT:
    "The checkpoint's model with a context `factor` times longer (untrained position rows drawn as at init)."
    mc = dict(ckpt["model_config"])
    T = mc["block_size"]
    mc["block_size"] = T * factor
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**mc))
    sd = dict(ckpt["model"])
    if mc["pos"] == "learned":
        wpe = model.transformer.wpe.weight.detach().clone()   # (T * factor, C), initialised N(0, 0.02)
        wpe[:T] = sd["transformer.wpe.weight"]
        sd["transformer.wpe.weight"] = wpe
    model.load_state_dict(sd)
    return model.eval()


@torch.no_grad()
def loss_per_position(model: GPT, data_dir, T: int, n_windows: int, batch: int = 16) -> np.ndarray:
    "Mean cross-entropy at each of T positions over the first n_windows non-overlapping windows of the val split."
    loader = TokenLoader(data_dir, "val", batch, T, shuffle=False)
    n_windows = min(n_windows, loader.n_seqs // batch * batch)
    total = torch.zeros(T, dtype=torch.float64)
    for _ in range(n_windows // batch):
        x, y = loader.next_batch()                                   # (B, T)
        logits, _ = model(x)
        total += F.cross_entropy(logits.transpose(1, 2), y, reduction="none").sum(0).double()  # (T,)
    return (total / (n_windows // batch * batch)).numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders of python -m gpt2book.train")
    ap.add_argument("--factor", type=int, default=2)
    ap.add_argument("--windows", type=int, default=800, help="windows of the longer length to average over")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "data" / "positions_extrapolation.json")
    a = ap.parse_args(argv)
    out = {"what": __doc__.split("\n\n")[0], "factor": a.factor, "command": "python bench/extrapolate.py "
           + " ".join(map(str, argv if argv is not None else sys.argv[1:])), "runs": {}}
    for run in a.runs:
        path, ckpt = newest_readable_checkpoint(run)
        if ckpt is None: raise SystemExit(f"{run}: no readable checkpoint")
        cfg = ckpt["config"]
        data_dir = Path(cfg["data_dir"] or f"data/{cfg['dataset']}")
        T = ckpt["model_config"]["block_size"]
        trained = GPT(GPTConfig(**ckpt["model_config"])); trained.load_state_dict(ckpt["model"]); trained.eval()
        short = loss_per_position(trained, data_dir, T, a.windows * a.factor)
        long = loss_per_position(longer_model(ckpt, a.factor), data_dir, T * a.factor, a.windows)
        out["runs"][run.name] = {"checkpoint": str(path), "pos": ckpt["model_config"]["pos"], "block_size": T,
                                 "step": ckpt["step"], "loss_1x": short.tolist(), "loss_2x": long.tolist(),
                                 "mean_1x": float(short.mean()), "mean_2x": float(long.mean()),
                                 "mean_2x_first_half": float(long[:T].mean()), "mean_2x_second_half": float(long[T:].mean())}
        r = out["runs"][run.name]
        print(f"{run.name}: mean loss at {T} tokens {r['mean_1x']:.4f}; at {T * a.factor}: {r['mean_2x']:.4f} "
              f"(positions 0-{T - 1}: {r['mean_2x_first_half']:.4f}, {T}-{T * a.factor - 1}: {r['mean_2x_second_half']:.4f})")
    atomic_write_json(a.json, out)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
