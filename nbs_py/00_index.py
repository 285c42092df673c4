# %% [markdown]
# # gpt2book
#
# > GPT-2 built from scratch, one idea per chapter: a book you can run cell by cell, and the Python package that trains it for real.

# %% [markdown]
# ## What this is
#
# gpt2book builds GPT-2 from its parts. Each chapter takes one idea — attention, normalisation,
# the feed-forward layer, the residual block, the model, the tokenizer, the data, the optimizer,
# the training loop — explains why it is there, writes it in a few short cells, shows the tensor
# shapes and a picture, and proves what it claims with asserts that run in seconds on a laptop CPU.
#
# The chapters are also the source code. [nbdev](https://nbdev.fast.ai) exports the cells marked
# `#| export` to the package `gpt2book`, so the code you read is exactly the code that trains:
# on a laptop CPU (a small character-level model on Tiny Shakespeare in a minute or two), or on an
# 8-GPU node (GPT-2 small, 124M parameters, on OpenWebText). The model loads and saves
# Hugging Face GPT-2 weights, and its logits equal Hugging Face's.
#
# Then the book does what its seed project set out to do: it runs the project's own experiment —
# does SwiGLU + RMSNorm train faster than GPT-2's GELU MLP + LayerNorm? — as a fair 2×2 ablation
# with a learning-rate sweep, several seeds and confidence intervals; adds rotary positions and a
# mixture of experts; fits scaling laws on runs a laptop affords and tests them on a held-out
# larger model; and ends with using and evaluating a trained model.

# %% [markdown]
# ## The seed project
#
# The book grew from a from-scratch GPT-2 on GitHub, [veetil/gpt](https://github.com/veetil/gpt),
# which the chapters call **the seed project**. Its aim was "to study the architecture, impacts of
# other architectures and scaling laws"; it trained GPT-2 small with DDP on OpenWebText, and its
# headline was one plot: a GPT-2 with SwiGLU and RMSNorm "reaches the validation loss of 50k
# iterations with 30k iterations". Its code also had switches for rotary position embeddings and a
# top-2 mixture of 8 experts.
#
# Read closely, it had defects a careful reimplementation must not repeat, and each chapter that
# meets one says how it avoids it: attention dropout stayed on in evaluation and generation
# (chapter 1); the comparison was confounded (the final norm stayed LayerNorm in the RMSNorm arm,
# SwiGLU had no dropout and missed GPT-2's scaled initialisation, one seed, one learning rate, both
# changes at once; chapters 2, 3, 5, 10); it was read at step 50k of a 600k-step cosine schedule,
# where no arm had annealed (chapters 8, 10); resume was broken and nothing could be set from the
# command line (chapter 9); its data preparation used a dataset script that current `datasets`
# no longer runs (chapter 7); wandb was required and initialised on every rank (chapter 9); and
# its rotary embeddings only worked at the full context length (chapter 11). The book then does
# what the seed set out to do: the ablation done fairly (chapter 10), other architectures (11, 12)
# and scaling laws (13).

# %% [markdown]
# ## How to read it
#
# - **On the site**: start at [Attention](01_attention.ipynb) and follow the sidebar; each page is
#   a chapter with its outputs and plots.
# - **In Jupyter**: open `nbs/01_attention.ipynb` and run it top to bottom (Run All). Every chapter
#   runs on a laptop CPU, offline once Tiny Shakespeare and tiktoken's files are there, in seconds to
#   a minute or two. Long runs (the sweeps, the benchmarks) are commands shown in the text, not
#   cells; the chapters read and plot the result files those commands wrote.
# - **As scripts**: every notebook has a twin in `nbs_py/` (a [jupytext](https://jupytext.readthedocs.io)
#   percent script), for reading and reviewing in an editor.
#
# Each chapter opens with *why*, then builds the idea in small cells with prose between them.
# Shapes are written as trailing comments, `# (B, T, C)`: batch, time (sequence position),
# channels (embedding width).

# %% [markdown]
# ## Quick start
#
# Set up, then run the main job — train the CPU default model on Tiny Shakespeare (one to two and
# a half minutes on the book's 2-core build machines; it prints the validation loss and a sample of generated text and
# saves a loss plot in `out/cpu/`):
#
# ```bash
# python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[dev]" && python -m gpt2book.train
# ```
#
# Run the tests — every chapter notebook top to bottom (`nbdev-test`), then the tests in `tests/` (`pytest`):
#
# ```bash
# . .venv/bin/activate && nbdev-test && pytest
# ```
#
# Which PyTorch build `pip install torch==2.13.0` brings depends on the machine: on Linux, PyPI's
# wheel is the CUDA build (several GB, and it runs on a CPU too); a Linux laptop without an NVIDIA
# GPU gets the much smaller CPU build from PyTorch's own index instead,
# `pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`, before the second
# `pip install`. On macOS, PyPI's wheel is the CPU build with Apple's GPU backend (`--device=mps`); on
# Windows, PyPI's wheel is the CPU build (PyTorch's site gives the CUDA one). Installing torch first
# keeps the `pip install -e ".[dev]"` that follows from choosing a build for you.
#
# **Offline machines.** These environment variables let everything run without a network:
#
# | variable | what it does |
# |---|---|
# | `TIKTOKEN_CACHE_DIR` | a folder with tiktoken's GPT-2 BPE files, so the tokenizer does not download them |
# | `GPT2BOOK_MIRROR` | a folder with local copies of the data sources (`tinyshakespeare.txt`, ...) |
# | `HF_HUB_OFFLINE=1`, `HF_DATASETS_OFFLINE=1` | Hugging Face libraries never reach the hub |
# | `WANDB_MODE=disabled` | no Weights & Biases logging (`offline` keeps it local) |
#
# `pytest` sets `HF_HUB_OFFLINE`, `HF_DATASETS_OFFLINE` and `WANDB_MODE` itself when they are unset.

# %% [markdown]
# ## The package in a few lines
#
# What the chapters build is importable. A tiny GPT-2 (2 layers, 64 wide, GPT-2's tokenizer and
# vocabulary), untrained, continuing a prompt — so the words are random until the
# [training chapter](09e_train.ipynb) teaches it:

# %%
import torch
from gpt2book.model import GPT, GPTConfig
from gpt2book.tokenizer import GPT2Tokenizer

# %%
tok = GPT2Tokenizer()
model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=64))
idx = torch.tensor([tok.encode("Hello world")])  # (B, T) = (1, 2): "Hello", " world"
out = model.generate(idx, max_new_tokens=10, generator=torch.Generator().manual_seed(0))  # (1, 12)
assert out.shape == (1, 12) and out[0, :2].tolist() == [15496, 995]
print(f"{model.num_params():,} parameters:", repr(tok.decode(out[0].tolist())))

# %% [markdown]
# ## The chapters
#
# | # | chapter | module | what it builds |
# |---|---|---|---|
# | 01 | [Attention](01_attention.ipynb) | `gpt2book.attention` | scaled dot-product attention from first principles, the idea of FlashAttention; multi-head causal self-attention with GPT-2's fused `c_attn` |
# | 02 | [Norms](02_norms.ipynb) | `gpt2book.norms` | LayerNorm and RMSNorm written out, their invariances, and the fused kernels the model runs |
# | 03 | [Feed-forward](03_ffn.ipynb) | `gpt2book.ffn` | GPT-2's GELU MLP and SwiGLU, parameter-matched by the 8/3 rule |
# | 04 | [Block](04_block.ipynb) | `gpt2book.block` | the pre-norm residual block |
# | 05 | [GPT](05_gpt.ipynb) | `gpt2book.model` | `GPTConfig`, `GPT`, weight tying, GPT-2's initialisation, sampling with a KV cache, Hugging Face weights in and out |
# | 06 | [Tokenizer](06_tokenizer.ipynb) | `gpt2book.tokenizer` | characters and GPT-2's byte-level BPE behind one interface; special tokens as tiktoken, one answer from both regex engines, streaming, a Hugging Face `tokenizer.json` |
# | 07a | [Data (a): the loader](07a_data_loader.ipynb) | `gpt2book.loader` | the shard format; a memory-mapped, resumable DDP loader |
# | 07b | [Data (b): getting a file](07b_data_fetch.ipynb) | `gpt2book.fetch` | one cached, sha256-checked download, or a local mirror |
# | 07c | [Data (c): preparing](07c_data_prepare.ipynb) | `gpt2book.prepare` | sources to verified shards: parallel tokenizing, resumable after a kill, `data/prepare.py` |
# | 08 | [Optimizer](08_optim.ipynb) | `gpt2book.optim` | AdamW parameter groups, warmup + cosine schedule, clipping |
# | 09a | [Training 1: the step](09a_step.ipynb) | `gpt2book.step` | a training loop in a dozen lines grown into `train_step`: accumulation, mixed precision, DDP; evaluation, samples, MFU |
# | 09b | [Training 2: checkpoints](09b_checkpoint.ipynb) | `gpt2book.checkpoint` | what a checkpoint holds, atomic saves, exact resume; loading any model (`load_model`) |
# | 09c | [Training 3: the config](09c_config.ipynb) | `gpt2book.config` | `TrainConfig`, presets, the command line generated from it, the registries later chapters plug into |
# | 09d | [Training 4: the run log](09d_runlog.ipynb) | `gpt2book.runlog` | metrics, samples, the loss plot, Weights & Biases, cut back on resume |
# | 09e | [Training 5: the trainer](09e_train.ipynb) | `gpt2book.train` | `train(cfg)` in run order, `python -m gpt2book.train`, the CPU default, speed against nanoGPT, GPUs |
# | 10a | [Ablation (a): statistics](10a_ablation_stats.ipynb) | `gpt2book.stats` | intervals, Welch's difference, the summary table; no torch |
# | 10b | [Ablation (b): the figure](10b_ablation_plots.ipynb) | `gpt2book.plots` | an experiment's curves with their seed bands |
# | 10c | [Ablation (c)](10c_ablation.ipynb) | `gpt2book.experiments` | the experiment runner; GPT-2 vs SwiGLU + RMSNorm as a fair 2×2 experiment |
# | 11 | [Positions](11_positions.ipynb) | `gpt2book.positions` | why attention needs positions; GPT-2's learned table and rotary embeddings (RoPE); beyond the training length |
# | 12 | [Mixture of experts](12_moe.ipynb) | `gpt2book.moe` | a router, top-k experts, dropless routing, the load-balancing loss; total and active parameters |
# | 13a | [Scaling laws (a): the fits](13a_scaling.ipynb) | `gpt2book.scaling` | candidate laws chosen before their test, IsoFLOP walls, the held-out test, Welch and Holm gaps; no torch |
# | 13b | [Scaling laws (b): the study](13b_scaling_runs.ipynb) | `gpt2book.scaling_runs` | the study on CPU-sized runs sized to the data, its command, and why no law passes at this scale |
# | 14 | [Using the model](14_sample.ipynb) | `gpt2book.sample` | loading a model, generation with a KV cache, sampling controls, `python -m gpt2book.sample`, fine-tuning |
# | 15 | [Evaluation](15_eval.ipynb) | `gpt2book.eval` | HellaSwag in two conventions, WikiText-2 in three (raw, the Hugging Face guide's, lm-evaluation-harness's; token, word, byte), bits per byte of any text, `python -m gpt2book.eval` |
# | 16 | [Which vocabulary?](16_vocab.ipynb) | `gpt2book.vocab` | characters, bytes, BPE 512 / 2,048 / 8,192 and GPT-2's 50,257 at equal compute, in bits per byte; `python -m gpt2book.vocab` |
# | 17a | [The laptop speedrun 1: Muon](17a_muon.ipynb) | `gpt2book.muon` | Muon from Newton–Schulz up, equal to `torch.optim.Muon`; what it costs on a CPU; `--optimizer=muon` |
# | 17b | [The laptop speedrun 2: the recipe](17b_recipe.ipynb) | `gpt2book.recipe` | QK-norm, untied head, zero-init, softcap, U-net skips plugged into chapter 5's GPT |
# | 17c | [The laptop speedrun 3: the records](17c_speedrun.ipynb) | `gpt2book.speedrun` | the rules, the record table with its one-sided tests, `--config=speedrun` |
# | 90 | [Appendix A: files](90_files.ipynb) | `gpt2book.files` | atomic writes, OS locks, damaged checkpoints |
# | 91 | [Appendix B: common](91_common.ipynb) | `gpt2book.common` | the device, one-line errors for every command, the machine a result ran on |

# %% [markdown]
# ## The house map
#
# One chapter, one idea; a module where the idea is code, one notebook per module (a chapter with
# several ideas comes in parts, `09a` to `09e`). Arrows point one way: a module imports only modules
# of its own chapter or earlier ones (a test checks it), so the model knows nothing about training and
# the data nothing about the model. Chapter 5's GPT is GPT-2 and chapter 9's trainer trains it; a later
# chapter that teaches a variant does not edit them, it **plugs in**: it registers its kind in a small
# table the core looks kinds up in (positions, FFNs, a subclass of GPT, an optimizer), its settings in
# a list of extensions the configs and the command line are made from, and what it adds to a run in
# the trainer's hooks. `checkpoint.load_chapters()` imports every chapter that plugs in: the one
# composition point the commands call, so that `--pos=rope --ffn=moe --optimizer=muon` can be named.
# Configuration flows down as plain dataclasses.
#
# ```text
#  attention, norms, ffn ─▶ block ─▶ model ─┬─▶ step ───────┐
#  tokenizer ─▶ loader ─▶ prepare ◀─ fetch ─┤   checkpoint ─┼─▶ config ─▶ runlog ─▶ train ─▶ experiments ─▶ scaling_runs
#  optim ───────────────────────────────────┘               │     stats ─▶ plots ─────────────┘     scaling ─┘
#  plug-ins, each registering into what is above it:  positions (11), moe (12), eval (15), muon, recipe, speedrun (17)
#  users of any model:  sample (14), eval (15), vocab (16)
#  at the bottom, under all of them: files (appendix A), common (appendix B)
# ```
#
# Outside the package:
#
# - `data/prepare.py` is a thin command over `gpt2book.prepare`:
#   `python data/prepare.py shakespeare` writes `data/shakespeare/` (`meta.json` and raw uint16
#   shards `train_*.bin`, `val_*.bin`).
# - A training run writes `out/RUN/`: `config.json`, `metrics.jsonl`, the last few `ckpt_STEP.pt`,
#   `samples.txt` and plots.
# - `bench/` holds the benchmarks; `images/` the pictures the README shows; `nbs_py/` the scripts
#   paired with the notebooks; `tools/` the checks CI runs.

# %% [markdown]
# ## Train with it
#
# Every setting of a run can be given on the command line as `--key=value`; `--config NAME` picks
# a preset, and the resolved configuration is saved in the run folder.
#
# ```bash
# python -m gpt2book.train                                   # the CPU default: Tiny Shakespeare, under 2 minutes
# OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 -m gpt2book.train   # DDP on a CPU (gloo)
# torchrun --standalone --nproc_per_node=8 -m gpt2book.train --config gpt2-124m  # GPT-2 small on 8 GPUs
# python -m gpt2book.train --resume                          # continue exactly where the newest checkpoint left off
# ```
#
# The 8-GPU run reads OpenWebText, prepared once with `python data/prepare.py openwebtext`. It has
# not been run for this book: the several-GPU (NCCL) path is untested; one GPU at a time and DDP on
# CPUs (gloo) are. The [training chapter](09e_train.ipynb) explains the presets, the multi-node
# command and the measured speed.

# %% [markdown]
# ## Test it, change it
#
# `nbdev-test` runs every chapter notebook top to bottom (every cell, as a reader's Run All does);
# `pytest` runs the tests in `tests/`: every command, the processes (DDP, a killed run), and the
# book's consistency (`gpt2book/` is what `nbdev-export` makes from the notebooks, notebooks and their
# `nbs_py/` scripts agree, the site renders). `.ci/run` is what CI runs on a clean clone: it installs
# the project, runs both under coverage (at least 85% of `gpt2book/`), and counts a skipped test
# as a failure.
#
# nbdev 3 keeps its settings in `pyproject.toml` (`[tool.nbdev]`); there is no `settings.ini`.
# To change a chapter, edit `nbs_py/NN_name.py` (or the notebook), then run
# `tools/nbsync.sh nbs_py/NN_name.py`: it syncs the pair, cleans the notebook and re-exports the
# package. `CONTRIBUTING.md` has the details and the house rules.

# %% [markdown]
# ## Headline results
#
# At the scale two CPU cores afford (character-level Tiny Shakespeare, 4 layers × 128, 2000 steps),
# every arm at its own best learning rate of a sweep, 3 seeds, every run annealed, 95% intervals:
#
# - **The seed project's claim** as a fair 2×2 ablation, {LayerNorm, RMSNorm} × {GELU MLP, SwiGLU},
#   parameter-matched ([chapter 10](10c_ablation.ipynb)): SwiGLU lowers the final validation loss by
#   0.041 $[-0.055, -0.027]$ and reaches GPT-2's final loss in 1.18 times fewer steps; RMSNorm's
#   effect, and that of both changes together, are within the noise. The seed project read 1.67×
#   off one seed at one learning rate.
# - **Rotary positions** lower it by 0.057 $[-0.080, -0.034]$ (1.25 times fewer steps) and degrade
#   far less past the training length ([chapter 11](11_positions.ipynb)); a **mixture of 8 experts**
#   with top-2 routing at the dense model's compute per token by 0.034 $[-0.053, -0.015]$, and at
#   the dense model's size it is no better ([chapter 12](12_moe.ipynb)).
# - **Scaling laws**: a third study, with models sized to the data (1.6 to 66 thousand parameters),
#   IsoFLOP valleys measured on both sides, three candidate laws chosen before one test on a held-out
#   size, and every interval at its true degrees of freedom ([chapter 13](13b_scaling_runs.ipynb)).
#   GPT-2's part is complete and no candidate law passes its test on the held-out size (it misses at
#   2,000, 4,000 and 8,000 steps); none describes even the fitted grid within the seed noise, and the
#   chapter shows why at this scale: short runs not at their best loss, a plateau left at
#   seed-dependent times, the value of size still growing with data. RoPE is ahead of GPT-2 at
#   every size wherever the two can be told apart (9 of 14 cells after Holm's correction, the rest
#   ties); SwiGLU + RMSNorm ties GPT-2 in all 13 of its cells.
#
# ![Validation loss of the four arms of the ablation, mean and 95% band over 3 seeds](../images/val-loss-gpt2-swiglu-rmsnorm.png)
#
# The numbers come from the committed result files; the README's tables are generated from them.
