#!/usr/bin/env python
"""Loss per position past the training length, for a learned position table and for RoPE, over seeds, and a test of
which rotary pairs break RoPE there (chapter 11).

    python bench/extrapolate.py --workers 2   # trains 3 seeds of both models if needed (one thread each), then measures

Trains (or finds finished) CPU-default models, `python -m gpt2book.train --pos=learned` and `--pos=rope` (the `cpu`
preset: 4 x 128, context 64, 2000 steps, learning rate 4e-3), one per seed (default 1337, 1338, 1339), in
out/extrapolate/POS_sSEED, with one thread each; a stopped run resumes. Each model is then read on the validation
split cut into non-overlapping windows of twice the trained length, and the cross-entropy is recorded at every
position, in bins of 16 positions. Per bin: each seed's mean over the windows (with its 95% interval over windows,
kept per seed), and the mean over the seeds with a 95% Student-t interval over the seeds (seeds - 1 degrees of
freedom): the `reads` of the file. A rotary model runs at any length as it is. A learned table has no rows past the
trained length: they are filled with the initialisation the trainer gives every embedding, N(0, 0.02) (a table
allocated that long but never trained past the training length). Each rotary model is also read with two ways of
stretching its positions, without any training: position interpolation (Chen et al. 2023: position m is rotated as
m x trained/new) and NTK-aware scaling (bloc97 2023: the base theta raised to theta x s^(d/(d-2)), s = new/trained).

The wavelength test (`--wavelength`): rotary pair i turns once every 2 pi theta^(2i/d) positions; the pairs whose
wavelength exceeds the training length never turned through a whole circle in training. Each rotary model is read on
the same windows with some pairs held still past the last trained offset (`gpt2book.positions.clamped_pairs`: every
offset past T - 1 read as T - 1 in those pairs, the others turning as usual): the j slowest pairs (j = 1..d/2), the j
fastest (the control), each pair alone, and the positions (not offsets) held in the slow pairs and in the fast ones.
Each is compared with the same seed's plain model on the same windows: the change of the mean loss past the training
length, per seed, and its mean over the seeds with a 95% t interval over the seeds (paired by seed).
The measuring runs in this process with threads x workers threads, one seed after the other.
Writes nbs/data/positions_extrapolation.json, with the machine and the wall times.
"""
import json
import math
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
from gpt2book.common import CommandError, Parser, key_value, machine_info, positive_int, user_errors  # noqa: E402
from gpt2book.config import command_line  # noqa: E402
from gpt2book.experiments import run_all, run_record  # noqa: E402
from gpt2book.files import atomic_write_json  # noqa: E402
from gpt2book.loader import TokenLoader  # noqa: E402
from gpt2book.model import GPT, make_model, model_config  # noqa: E402
from gpt2book.positions import RotaryEmbedding, clamped_pairs, rope_wavelengths  # noqa: E402
from gpt2book.prepare import default_data_dir  # noqa: E402
from gpt2book.stats import ci95  # noqa: E402

PROG = "python bench/extrapolate.py"
POSITIONS = ("learned", "rope")
SEEDS = (1337, 1338, 1339)
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


# ---------------------------------------------------------------- statistics: over windows (one model), over seeds

def finite(x) -> float | None:
    "x as a float, None where it is not a number (a result file holds JSON, which has no NaN)."
    return None if x is None or not math.isfinite(x) else float(x)


def summarise(per_window: np.ndarray, bin_size: int) -> dict:
    "One model: mean loss per position, and per bin of `bin_size` positions the mean over windows with its 95% interval."
    T = per_window.shape[1]
    bins = []
    for a in range(0, T, bin_size):
        m, lo, hi = ci95(per_window[:, a:a + bin_size].mean(1))      # one value per window: windows are independent
        bins.append({"first": a, "last": min(a + bin_size, T) - 1, "mean": m, "low": finite(lo), "high": finite(hi)})
    return {"windows": int(per_window.shape[0]), "loss": per_window.mean(0).tolist(), "bins": bins,
            "position_1": [finite(v) for v in ci95(per_window[:, 1])]}


def over_seeds(values) -> dict:
    "One number per seed: their mean, its 95% Student-t interval over the seeds (df = seeds - 1), SD and the values."
    v = [float(x) for x in values]
    m, lo, hi = ci95(v)
    return {"mean": m, "low": finite(lo), "high": finite(hi), "sd": finite(float(np.std(v, ddof=1))) if len(v) > 1 else None,
            "df": len(v) - 1, "per_seed": v}


def combine(per_seed: list[dict]) -> dict:
    "The reads of one kind from several seeds (`summarise`'s dicts, one per seed) as one read with intervals over seeds."
    first = per_seed[0]
    if len(per_seed) == 1: return {**first, "seeds": 1, "interval": "over windows"}   # one model: its windows' interval
    if any(len(r["bins"]) != len(first["bins"]) for r in per_seed): raise ValueError("the seeds' reads differ in length")
    bins = [{"first": b["first"], "last": b["last"], **over_seeds([r["bins"][i]["mean"] for r in per_seed])}
            for i, b in enumerate(first["bins"])]
    p1 = over_seeds([r["position_1"][0] for r in per_seed])
    return {**{k: first[k] for k in ("pos", "block_size", "length", "windows") if k in first}, "seeds": len(per_seed),
            "interval": "over seeds", "loss": np.mean([r["loss"] for r in per_seed], axis=0).tolist(), "bins": bins,
            "position_1": [p1["mean"], p1["low"], p1["high"]], "run_dirs": [r.get("run_dir") for r in per_seed]}


# ---------------------------------------------------------------- training

def rel(path) -> str:
    "`path` relative to the repository when it is inside it (a result file names no machine's folders)."
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def trained_seconds(run_dir: Path) -> float | None:
    "The trainer's own time for the run: the last 'done: step N, val loss X, S s' line of its train.log (None if absent)."
    log = run_dir / "train.log"
    found = re.findall(r"done: step \d+, val loss [\d.]+, (\d+) s", log.read_text(errors="replace")) if log.exists() else []
    return float(found[-1]) if found else None


def train_models(root: Path, seeds, threads: int, workers: int, extra: dict) -> dict:
    "Train every (pos, seed) model in root/POS_sSEED (or find it finished): {(pos, seed): (folder, what it took)}."
    jobs = {(pos, seed): (root / f"{pos}_s{seed}", {**SETTINGS, **extra, "pos": pos, "seed": seed})
            for seed in seeds for pos in POSITIONS}
    for (pos, seed), (run_dir, settings) in jobs.items():
        print(f"{pos} seed {seed}: python -m gpt2book.train "
              + " ".join(command_line("cpu", {**settings, "out_dir": rel(run_dir)})), flush=True)
    status = run_all(list(jobs.values()), "cpu", workers, threads=threads)
    if failed := {str(d): st for d, st in status.items() if st.startswith("failed")}:
        raise CommandError(f"training failed: {failed}; run the command again to resume the others")
    return {key: (d, {"status": status[d], "train_s": trained_seconds(d), **run_record(d)})
            for key, (d, _) in jobs.items()}


# ---------------------------------------------------------------- reading the models

def load(run_dir: Path) -> tuple[Path, dict, Path]:
    "(checkpoint path, checkpoint, data folder) of a finished run."
    path, ckpt = newest_readable_checkpoint(run_dir, move_aside=False)
    if ckpt is None: raise CommandError(f"{run_dir}: no readable checkpoint")
    cfg = ckpt["config"]
    return path, ckpt, Path(cfg["data_dir"]).expanduser() if cfg["data_dir"] else default_data_dir(cfg["dataset"])


def measure(run_dir: Path, factor: int, windows: int, bin_size: int) -> tuple[dict, dict]:
    "Every reading of one trained model (at its length, at `factor` times it, and (RoPE) stretched two ways): (summaries, raw)."
    path, ckpt, data_dir = load(run_dir)
    T, pos = ckpt["model_config"]["block_size"], ckpt["model_config"]["pos"]
    trained = make_model(model_config(**ckpt["model_config"])); trained.load_state_dict(ckpt["model"]); trained.eval()
    raw = {f"{pos}, {T} tokens": losses_per_window(trained, data_dir, T, windows * factor),
           f"{pos}, {T * factor} tokens": losses_per_window(longer_model(ckpt, factor), data_dir, T * factor, windows)}
    if pos == "rope":
        for how, name in (("pi", "position interpolation"), ("ntk", "NTK-aware base")):
            m = stretched(longer_model(ckpt, factor), how, T)
            raw[f"rope + {name}, {T * factor} tokens"] = losses_per_window(m, data_dir, T * factor, windows)
    model = {"run_dir": rel(run_dir), "checkpoint": rel(path), "pos": pos, "block_size": T, "step": ckpt["step"]}
    return {name: {**model, "length": r.shape[1], **summarise(r, bin_size)} for name, r in raw.items()}, raw


def pairs_name(pairs) -> str:
    "'pairs 5-15', 'pair 7', 'pairs 0, 2': the pairs of a reading, in words."
    p = sorted(pairs)
    if len(p) == 1: return f"pair {p[0]}"
    return f"pairs {p[0]}-{p[-1]}" if p == list(range(p[0], p[-1] + 1)) else "pairs " + ", ".join(map(str, p))


def wavelength_design(head_size: int, theta: float, trained: int, which: str) -> tuple[dict, dict]:
    "The readings of the wavelength test: ({name: (mode, pairs)}, {group: [names]}); `which` is 'all' or 'headline'."
    n = head_size // 2
    lam = rope_wavelengths(head_size, theta)
    slow, fast = [i for i in range(n) if lam[i] > trained], [i for i in range(n) if lam[i] <= trained]
    name = lambda mode, pairs: f"{mode}s held: {pairs_name(pairs)}"
    js = range(1, n + 1) if which == "all" else sorted({len(slow), len(fast), n})
    groups = {"slowest first": [("offset", list(range(n - j, n))) for j in js],
              "fastest first": [("offset", list(range(j))) for j in js],
              "one pair": [("offset", [i]) for i in range(n)] if which == "all" else [],
              "positions held": [("position", p) for p in (slow, fast) if p]}
    reads = {name(m, p): (m, p) for g in groups.values() for m, p in g}
    return reads, {g: [name(m, p) for m, p in v] for g, v in groups.items() if v}


def wavelength_seed(run_dir: Path, factor: int, windows: int, bin_size: int, plain: np.ndarray, which: str) -> dict:
    "One rotary model's wavelength readings: {name: {'past', 'diff', 'diff_windows', 'bins'}} and the design."
    _, ckpt, data_dir = load(run_dir)
    mc = ckpt["model_config"]
    T, hs = mc["block_size"], mc["n_embd"] // mc["n_head"]
    design, groups = wavelength_design(hs, mc["rope_theta"], T, which)
    plain_past = plain[:, T:].mean(1)                                    # (windows,) the plain model past T
    out = {}
    for name, (mode, pairs) in design.items():
        model = longer_model(ckpt, factor)
        with clamped_pairs(model, pairs, T - 1, mode):
            r = losses_per_window(model, data_dir, T * factor, windows)  # (windows, T * factor), the same windows
        past = r[:, T:].mean(1)
        out[name] = {"mode": mode, "pairs": pairs, "past": float(past.mean()), "diff": float((past - plain_past).mean()),
                     "diff_windows": [finite(v) for v in ci95(past - plain_past)],
                     "bins": [float(r[:, a:a + bin_size].mean()) for a in range(0, T * factor, bin_size)]}
    info = {"head_size": hs, "theta": mc["rope_theta"], "trained": T, "window": T - 1, "length": T * factor,
            "past": [T, T * factor - 1], "wavelengths": rope_wavelengths(hs, mc["rope_theta"]).tolist(),
            "long_pairs": [i for i, l in enumerate(rope_wavelengths(hs, mc["rope_theta"]).tolist()) if l > T]}
    return {"reads": out, "groups": groups, "plain_past": float(plain_past.mean()), **info}


def wavelength_over_seeds(by_seed: dict, bin_size: int) -> dict:
    "The wavelength readings of every seed ({seed: wavelength_seed(...)}) with intervals over the seeds."
    first = next(iter(by_seed.values()))
    reads = {}
    for name, r in first["reads"].items():
        each = [s["reads"][name] for s in by_seed.values()]
        reads[name] = {"mode": r["mode"], "pairs": r["pairs"], "past": over_seeds([e["past"] for e in each]),
                       "diff": over_seeds([e["diff"] for e in each]),
                       "diff_windows": {str(seed): s["reads"][name]["diff_windows"] for seed, s in by_seed.items()},
                       "bins": [{"first": a, "last": min(a + bin_size, first["length"]) - 1, **over_seeds([e["bins"][i] for e in each])}
                                for i, a in enumerate(range(0, first["length"], bin_size))]}
    keep = ("head_size", "theta", "trained", "window", "length", "past", "wavelengths", "long_pairs", "groups")
    return {**{k: first[k] for k in keep}, "seeds": [int(s) for s in by_seed],
            "plain": over_seeds([s["plain_past"] for s in by_seed.values()]), "reads": reads}


# ---------------------------------------------------------------- the command


def parser() -> Parser:
    ap = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT / "out" / "extrapolate", help="the run folders (default out/extrapolate)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="seeds of each kind (default 1337 1338 1339)")
    ap.add_argument("--workers", type=positive_int, default=1, help="runs side by side (default 1)")
    ap.add_argument("--threads", type=positive_int, default=1, help="threads of each training run (default 1)")
    ap.add_argument("--factor", type=positive_int, default=2, help="read at this many times the trained length (default 2)")
    ap.add_argument("--windows", type=positive_int, default=800, help="windows of the longer length (default 800)")
    ap.add_argument("--bin", type=positive_int, default=16, help="positions per bin (default 16)")
    ap.add_argument("--wavelength", choices=("all", "headline", "none"), default="all",
                    help="the wavelength test: every reading (default), only the slow/fast sets and all pairs, or none")
    ap.add_argument("--set", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="a trainer setting for every run (smoke tests: --set max_steps=20 --set n_embd=32)")
    ap.add_argument("--json", type=Path, default=ROOT / "nbs" / "data" / "positions_extrapolation.json")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    if len(set(a.seeds)) != len(a.seeds) or min(a.seeds) < 0: parser().error(f"--seeds {a.seeds}: distinct seeds, 0 or more")
    if not a.json.parent.is_dir(): parser().error(f"--json {a.json}: no such folder {a.json.parent}")
    with user_errors(PROG, OSError):
        t0 = time.time()
        trained = train_models(a.root, a.seeds, a.threads, a.workers, dict(a.set))
        t1 = time.time()
        torch.set_num_threads(a.threads * a.workers)                     # measuring: the cores the runs were given
        per_seed, wave = {}, {}
        for seed in a.seeds:
            reads = {}
            for pos in POSITIONS:
                summary, raw = measure(trained[pos, seed][0], a.factor, a.windows, a.bin)
                reads.update(summary)
                if pos == "rope" and a.wavelength != "none":
                    plain = raw[f"rope, {summary[next(iter(summary))]['block_size'] * a.factor} tokens"]   # the plain model, read long
                    wave[seed] = wavelength_seed(trained[pos, seed][0], a.factor, a.windows, a.bin, plain, a.wavelength)
            per_seed[str(seed)] = reads
            print(f"seed {seed} measured ({time.time() - t1:.0f} s)", flush=True)
        first = per_seed[str(a.seeds[0])]
        reads = {name: combine([per_seed[str(s)][name] for s in a.seeds]) for name in first}
        for name, r in reads.items():
            print(f"{name:42s} " + " ".join(f"{b['mean']:.3f}" for b in r["bins"]))
        out = {"what": __doc__.split("\n\n")[0].replace("\n", " "),
               "command": " ".join([PROG, *(argv if argv is not None else sys.argv[1:])]),
               "factor": a.factor, "bin": a.bin, "seeds": a.seeds, "interval": "95% Student t over the seeds (df = seeds - 1)",
               "reads": reads, "per_seed": per_seed, "machine": {**machine_info(), "threads": a.threads, "workers": a.workers},
               "settings": dict(a.set), "training": {pos: {str(s): trained[pos, s][1] for s in a.seeds} for pos in POSITIONS},
               "train_wall_s": round(t1 - t0, 1), "measure_wall_s": round(time.time() - t1, 1)}
        if wave:
            out["wavelength"] = wavelength_over_seeds(wave, a.bin)
            for name, r in out["wavelength"]["reads"].items():
                d = r["diff"]
                print(f"{name:34s} past the length: {d['mean']:+.3f} [{d['low'] if d['low'] is None else round(d['low'], 3)}, "
                      f"{d['high'] if d['high'] is None else round(d['high'], 3)}]")
        atomic_write_json(a.json, out)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
