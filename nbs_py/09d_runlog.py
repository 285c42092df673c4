# %% [markdown]
# # Training, part 4: the run log
# > What a run writes while it trains, on rank 0: config.json, metrics.jsonl, samples.txt, the loss plot, optionally Weights & Biases; all of it cut back exactly when a run resumes.

# %%
#| default_exp runlog

# %% [markdown]
# Part 4 of chapter 9, after [the config](09c_config.ipynb); next: [the trainer](09e_train.ipynb).

# %%
#| export
import json
import re
import secrets
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from gpt2book.config import TrainConfig
from gpt2book.files import atomic_write, atomic_write_json, atomic_write_text, remove_stale_temporaries

# %%
import tempfile

from fastcore.test import test_eq


# %% [markdown]
# **Logs that survive a resume.** Rank 0 appends one JSON object per line to `metrics.jsonl`: a
# training line every `log_interval` steps (`step`, `loss` averaged over the global batch, `lr`,
# `grad_norm`, `tokens_per_s`, `mfu`, and for a mixture of experts `aux_loss` and the tokens each
# expert got) and an evaluation line every `eval_interval` (`step`, `val_loss`); every line also has
# `elapsed_s`, the seconds since this process began the log (the clock of chapter 17's loss-against-time
# plots; a resumed process starts it again). JSON lines survive a
# crash (every line is complete) and load into anything (`pandas.read_json(..., lines=True)`).
# Samples go to `samples.txt`, one block per evaluation. A resumed run first cuts both files back to
# the checkpoint's step, so that what the killed run wrote after its last checkpoint is written
# again, once.

# %%
#| export
def read_metrics(path) -> list[dict]:
    "The lines of a metrics.jsonl file."
    with open(path) as f: return [json.loads(l) for l in f if l.strip()]

_SAMPLE_RE = re.compile(r"^--- step (\d+), ", re.M)

def cut_samples(text: str, step: int) -> str:
    "The blocks of a samples.txt text written at or before `step`."
    starts = [(m.start(), int(m.group(1))) for m in _SAMPLE_RE.finditer(text)]
    cut = next((pos for pos, s in starts if s > step), len(text))
    return text[:cut]

def plot_metrics(metrics: list[dict], path=None, title: str = ""):
    "Train and validation loss against step; saved atomically to `path` (PNG) if given. Returns the Figure."
    from matplotlib.figure import Figure                 # no pyplot: no global backend or figure state
    train = [(m["step"], m["loss"]) for m in metrics if "loss" in m]
    val = [(m["step"], m["val_loss"]) for m in metrics if "val_loss" in m]
    fig = Figure(figsize=(7, 4)); ax = fig.subplots()
    if train: ax.plot(*zip(*train), label="train", lw=1, alpha=0.8)
    if val: ax.plot(*zip(*val), "o-", label="val")
    ax.set(xlabel="step", ylabel="loss (nats/token)", title=title); ax.grid(alpha=0.3); ax.legend()
    if path:
        with atomic_write(path) as f: fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    return fig


# %%
txt = "--- step 0, val loss 4.2\nabc\n--- step 250, val loss 2.1\nde\nf\n--- step 500, val loss 1.9\ng\n"
test_eq(cut_samples(txt, 250), "--- step 0, val loss 4.2\nabc\n--- step 250, val loss 2.1\nde\nf\n")
test_eq(cut_samples(txt, 600), txt); test_eq(cut_samples(txt, 0), "--- step 0, val loss 4.2\nabc\n")


# %% [markdown]
# With `--wandb` the same numbers go to Weights & Biases, on rank 0 only; `WANDB_MODE=offline` or
# `disabled` is respected, and a failing wandb prints a warning and the run goes on without it. The
# run's wandb id is kept in the run folder, so a resumed run continues the same wandb run (wandb
# ignores steps at or below the last one it has, so the steps a killed run logged past its
# checkpoint keep their first values there).

# %%
#| export
def open_wandb(cfg: TrainConfig, run_dir: Path):
    "A wandb run for `cfg` that a resumed run continues (its id kept in run_dir/wandb_id.txt); None if wandb fails."
    id_file = run_dir / "wandb_id.txt"
    try:
        import wandb
        run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)   # a wandb run id
        atomic_write_text(id_file, run_id + "\n")
        return wandb.init(project=cfg.wandb_project, name=run_dir.name, id=run_id, resume="allow",
                          config=asdict(cfg), dir=str(run_dir), settings=wandb.Settings(init_timeout=30))
    except Exception as e:                          # never let logging stop training
        tqdm.write(f"wandb unavailable ({type(e).__name__}: {e}); continuing without it")


# %%
#| export
class RunLog:
    "Rank 0's outputs in the run folder: config.json, metrics.jsonl, samples.txt, optional wandb, lines above the bar."
    def __init__(self, cfg: TrainConfig, enabled: bool, resumed_at: int | None = None):
        run_dir, self.enabled, self.wandb, self.t0 = cfg.run_dir, enabled, None, time.perf_counter()
        self.path, self.samples = run_dir / "metrics.jsonl", run_dir / "samples.txt"
        if not enabled: return
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(run_dir)                # what a kill during a save left behind
        if resumed_at is None:                           # a fresh run: nothing of an older one survives
            for f in (self.path, self.samples, run_dir / "wandb_id.txt"): f.unlink(missing_ok=True)
        elif self.path.exists():                         # cut back to the checkpoint
            atomic_write_text(self.path, "".join(json.dumps(m) + "\n" for m in read_metrics(self.path)
                                                 if m["step"] <= resumed_at))
        if resumed_at is not None and self.samples.exists():
            atomic_write_text(self.samples, cut_samples(self.samples.read_text(), resumed_at))
        atomic_write_json(run_dir / "config.json", asdict(cfg))
        if cfg.wandb: self.wandb = open_wandb(cfg, run_dir)

    def log(self, **m):
        if not self.enabled: return
        m["elapsed_s"] = round(time.perf_counter() - self.t0, 3)     # since this process began the run's log
        with open(self.path, "a") as f: f.write(json.dumps(m) + "\n")
        if self.wandb:
            try: self.wandb.log({k: v for k, v in m.items() if k not in ("step", "expert_tokens") and v is not None},
                                step=m["step"])
            except Exception as e: tqdm.write(f"wandb.log failed: {e}")

    def sample(self, step: int, val: float, text: str):
        if self.enabled:
            with open(self.samples, "a") as f: f.write(f"--- step {step}, val loss {val:.4f}\n{text}\n")

    def print(self, msg: str):
        if self.enabled: tqdm.write(msg)

    def close(self):
        if self.wandb:
            try: self.wandb.finish()
            except Exception: pass



# %% [markdown]
# A run log in a fresh folder: the config, two lines, a sample; then a resume at step 10 cuts the
# lines and samples of later steps, and nothing else.

# %%
run = Path(tempfile.mkdtemp()) / "run"
log = RunLog(TrainConfig(out_dir=str(run)), enabled=True)
log.log(step=10, loss=3.0); log.log(step=20, loss=2.5); log.sample(10, 2.9, "abc"); log.sample(20, 2.4, "de")
test_eq([m["step"] for m in read_metrics(run / "metrics.jsonl")], [10, 20])
test_eq(json.loads((run / "config.json").read_text())["out_dir"], str(run))
RunLog(TrainConfig(out_dir=str(run)), enabled=True, resumed_at=10)
test_eq([m["step"] for m in read_metrics(run / "metrics.jsonl")], [10])
test_eq((run / "samples.txt").read_text(), "--- step 10, val loss 2.9000\nabc\n")
fig = plot_metrics([{"step": 0, "val_loss": 4.2}, {"step": 10, "loss": 3.0}, {"step": 20, "loss": 2.5, "val_loss": 2.4}],
                   run / "loss.png", title="a made-up run")
assert (run / "loss.png").stat().st_size > 1000
