#!/usr/bin/env python
"""Loss per position past the training length, for a learned position table and for RoPE (chapter 11).

    python bench/extrapolate.py            # trains both models if needed (about 10 minutes each, one thread), then measures

Trains (or finds finished) two CPU-default models, `python -m gpt2book.train --pos=learned` and `--pos=rope`
(the `cpu` preset: 4 x 128, context 64, 2000 steps, learning rate 4e-3, seed 1337), in out/extrapolate/POS, with
one thread. Each is then read on the validation split cut into non-overlapping windows of twice the trained
length, and the cross-entropy is recorded at every position, in bins of 16 positions with a 95% interval over
windows. A rotary model runs at any length as it is. A learned table has no rows past the trained length: they
are filled with the initialisation the trainer gives every embedding, N(0, 0.02) (a table allocated that long but
never trained past the training length). The rotary model is also read with two ways of stretching its
positions, without any training: position interpolation (Chen et al. 2023: position m is rotated as m x
trained/new) and NTK-aware scaling (bloc97 2023: the base theta raised to theta x s^(d/(d-2)), s = new/trained).
Writes nbs/data/positions_extrapolation.json, with the machine and the wall time.
"""
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt2book.checkpoint import newest_readable_checkpoint  # noqa: E402
from gpt2book.common import CommandError, Parser, machine_info, positive_int, user_errors  # noqa: E402
from gpt2book.experiments import run_machine, run_one  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.loader import TokenLoader  # noqa: E402
from gpt2book.model import GPT, make_model, model_config  # noqa: E402
from gpt2book.positions import RotaryEmbedding  # noqa: E402
from gpt2book.stats import ci95  # noqa: E402
from gpt2book.config import command_line  # noqa: E402

PROG = "python bench/extrapolate.py"
POSITIONS = ("learned", "rope")
SETTINGS = dict(sample_tokens=0, device="cpu", keep_checkpoints=1)   # the cpu preset otherwise, as `python -m gpt2book.train`


def longer_model(ckpt: dict, factor: int, seed: int = 0) -> GPT:
    "The checkpoint's model with a context `factor` times longer (untrained position rows drawn as at init)."
    mc = dict(ckpt["model_config"])
    T = mc["block_size"]
    mc["block_size"] = T * factor
    torch.manual_seed(seed)
    model = make_model(model_config(**mc))
    sd = dict(ckpt["model"])
    if mc["pos"] == "learned":
        wpe = model.transformer.wpe.weight.detach().clone()   # (T * factor, C), initialised N(0, 0.02)
        wpe[:T] = sd["transformer.wpe.weight"]
        sd["transformer.wpe.weight"] = wpe
    model.load_state_dict(sd)
    return model.eval()


def stretched(model: GPT, how: str, trained: int) -> GPT:
    "A rotary `model` of a longer context with its positions stretched: 'pi' (interpolation) or 'ntk' (a larger base)."
    c, new = model.config, model.config.block_size
    hs = c.n_embd // c.n_head
    if how == "pi":                                   # Chen et al. 2023: position m is rotated as m * trained / new
        model.transformer.wpe.rope = RotaryEmbedding(hs, new, c.rope_theta, scale=trained / new)
    elif how == "ntk":                                # bloc97 2023: theta * s^(d / (d - 2)), s = new / trained
        model.transformer.wpe.rope = RotaryEmbedding(hs, new, c.rope_theta * (new / trained) ** (hs / (hs - 2)))
    else: raise ValueError(f"how={how!r}: use pi or ntk")
    return model


@torch.no_grad()
def losses_per_window(model: GPT, data_dir, T: int, n_windows: int, batch: int = 16) -> np.ndarray:
    "(windows, T) cross-entropy at every position of the first n_windows non-overlapping windows of the val split."
    loader = TokenLoader(data_dir, "val", batch, T, shuffle=False)
    n = min(n_windows, loader.n_seqs) // batch
    if n < 1: raise CommandError(f"the validation split of {data_dir} holds fewer than {batch} windows of {T} tokens")
    out = []
    for _ in range(n):
        x, y = loader.next_batch()                                      # (B, T)
        logits, _ = model(x)
        out.append(F.cross_entropy(logits.transpose(1, 2), y, reduction="none").double())   # (B, T)
    return torch.cat(out).numpy()                                      # (n * B, T)


def summarise(per_window: np.ndarray, bin_size: int) -> dict:
    "Mean loss per position, and per bin of `bin_size` positions the mean over windows with its 95% interval."
    T = per_window.shape[1]
    bins = []
    for a in range(0, T, bin_size):
        m, lo, hi = ci95(per_window[:, a:a + bin_size].mean(1))      # one value per window: windows are independent
        bins.append({"first": a, "last": min(a + bin_size, T) - 1, "mean": m, "low": lo, "high": hi})
    return {"windows": int(per_window.shape[0]), "loss": per_window.mean(0).tolist(), "bins": bins,
            "position_1": list(ci95(per_window[:, 1]))}


def rel(path) -> str:
    "`path` relative to the repository when it is inside it (a result file names no machine's folders)."
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def train_model(pos: str, root: Path, threads: int) -> tuple[Path, dict]:
    "Train the CPU-default model with `pos` in root/pos (or find it finished): its folder, and what it took."
    run_dir = root / pos
    print(f"{pos}: python -m gpt2book.train " + " ".join(command_line("cpu", {**SETTINGS, 'pos': pos, 'out_dir': rel(run_dir)})),
          flush=True)
    t0 = time.time()
    status = run_one(run_dir, {**SETTINGS, "pos": pos}, "cpu", threads=threads)
    print(f"{pos}: {status} ({time.time() - t0:.0f} s)", flush=True)
    return run_dir, {"status": status, "train_s": trained_seconds(run_dir), "machine": run_machine(run_dir)}


def trained_seconds(run_dir: Path) -> float | None:
    "The trainer's own time for the run: the last 'done: step N, val loss X, S s' line of its train.log (None if absent)."
    log = run_dir / "train.log"
    found = re.findall(r"done: step \d+, val loss [\d.]+, (\d+) s", log.read_text(errors="replace")) if log.exists() else []
    return float(found[-1]) if found else None


def measure(run_dir: Path, factor: int, windows: int, bin_size: int) -> dict:
    "Every reading of one trained model: at its length, at `factor` times it, and (RoPE) stretched two ways."
    path, ckpt = newest_readable_checkpoint(run_dir, move_aside=False)
    if ckpt is None: raise CommandError(f"{run_dir}: no readable checkpoint")
    cfg, T = ckpt["config"], ckpt["model_config"]["block_size"]
    data_dir = Path(cfg["data_dir"] or f"data/{cfg['dataset']}")
    trained = make_model(model_config(**ckpt["model_config"])); trained.load_state_dict(ckpt["model"]); trained.eval()
    pos = ckpt["model_config"]["pos"]
    reads = {f"{pos}, {T} tokens": losses_per_window(trained, data_dir, T, windows * factor),
             f"{pos}, {T * factor} tokens": losses_per_window(longer_model(ckpt, factor), data_dir, T * factor, windows)}
    if pos == "rope":
        for how, name in (("pi", "position interpolation"), ("ntk", "NTK-aware base")):
            m = stretched(longer_model(ckpt, factor), how, T)
            reads[f"rope + {name}, {T * factor} tokens"] = losses_per_window(m, data_dir, T * factor, windows)
    model = {"run_dir": rel(run_dir), "checkpoint": rel(path), "pos": pos, "block_size": T, "step": ckpt["step"]}
    return {name: {**model, "length": r.shape[1], **summarise(r, bin_size)} for name, r in reads.items()}


def main(argv=None):
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT / "out" / "extrapolate", help="the two run folders (default out/extrapolate)")
    ap.add_argument("--threads", type=positive_int, default=1, help="threads of each training run (default 1)")
    ap.add_argument("--factor", type=positive_int, default=2, help="read at this many times the trained length (default 2)")
    ap.add_argument("--windows", type=positive_int, default=800, help="windows of the longer length (default 800)")
    ap.add_argument("--bin", type=positive_int, default=16, help="positions per bin (default 16)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "data" / "positions_extrapolation.json")
    a = ap.parse_args(argv)
    with user_errors(PROG, OSError):
        trained = {pos: train_model(pos, a.root, a.threads) for pos in POSITIONS}
        t1 = time.time()
        reads = {k: v for d, _ in trained.values() for k, v in measure(d, a.factor, a.windows, a.bin).items()}
        for name, r in reads.items():
            print(f"{name:42s} " + " ".join(f"{b['mean']:.3f}" for b in r["bins"]))
        out = {"what": __doc__.split("\n\n")[0], "command": " ".join([PROG, *(argv if argv is not None else sys.argv[1:])]),
               "factor": a.factor, "bin": a.bin, "reads": reads, "machine": {**machine_info(), "threads": a.threads},
               "training": {pos: t for pos, (_, t) in trained.items()}, "measure_wall_s": round(time.time() - t1, 1)}
        atomic_write_json(a.json, out)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
