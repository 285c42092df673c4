# %% [markdown]
# # Training, part 1: the step
# > A training loop in a dozen lines, grown one idea at a time into the step that trains GPT-2 from a laptop CPU to eight GPUs: gradient accumulation, mixed precision, DDP; then evaluation, samples and MFU.

# %%
#| default_exp step

# %% [markdown]
# Everything so far was parts: a model (chapter 5), token shards and a loader (chapter 7), an
# optimizer and a schedule (chapter 8). This chapter is the program that puts them to work, the
# package's main job:
#
# ```bash
# python -m gpt2book.train                                   # the CPU default: Tiny Shakespeare, under 2 minutes
# torchrun --standalone --nproc_per_node=8 -m gpt2book.train --config gpt2-124m   # GPT-2 small on 8 GPUs
# python -m gpt2book.train --help                            # every setting, the presets, examples
# ```
#
# Chapter 9 is in five parts, one module each, in the order a reader needs them:
#
# 1. [The step](09a_step.ipynb) (`gpt2book.step`): a training loop in a dozen lines, grown into
#    `train_step` (accumulation, mixed precision, several processes), evaluation, samples, MFU.
# 2. [Checkpoints](09b_checkpoint.ipynb) (`gpt2book.checkpoint`): exact resume, and loading trained
#    weights for the other commands.
# 3. [The config](09c_config.ipynb) (`gpt2book.config`): one `TrainConfig`, presets, the command line
#    generated from it, and the registries later chapters plug their variants into.
# 4. [The run log](09d_runlog.ipynb) (`gpt2book.runlog`): metrics, samples, plots, Weights & Biases.
# 5. [The trainer](09e_train.ipynb) (`gpt2book.train`): `train(cfg)` in run order, the command, and the
#    results: the CPU default, its speed against nanoGPT, GPUs, several nodes.

# %%
#| export
import contextlib
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from gpt2book.common import CommandError, resolve_device
from gpt2book.loader import TokenLoader
from gpt2book.model import GPT, complete, eval_mode

# %%
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from fastcore.test import test_close, test_eq, test_fail

from gpt2book.loader import load_meta
from gpt2book.model import GPTConfig
from gpt2book.optim import configure_optimizer, get_lr
from gpt2book.prepare import prepare

# %% [markdown]
# ## The idea: a training loop in a dozen lines
#
# Training a language model is this loop: take a batch of token sequences, compute the loss of
# predicting each next token, backpropagate, let the optimizer step, repeat, with the learning rate
# following its schedule. Here it is on Tiny Shakespeare with the pieces of the earlier chapters and
# a tiny model (2 layers, width 64, 32 characters of context), 300 steps of 32 sequences:

# %%
work = Path(tempfile.mkdtemp())
data_dir = prepare("shakespeare_char", out_dir=work / "shakespeare_char", progress=False)  # chapter 7
V = load_meta(data_dir)["vocab_size"]
torch.manual_seed(0)
model = GPT(GPTConfig(block_size=32, vocab_size=V, n_layer=2, n_head=2, n_embd=64))
optimizer = configure_optimizer(model, lr=1e-2, weight_decay=0.1)                      # chapter 8
loader = TokenLoader(data_dir, "train", batch_size=32, block_size=32)                  # chapter 7
losses = []
for step in range(300):
    for group in optimizer.param_groups: group["lr"] = get_lr(step, 1e-2, 1e-3, 30, 300)  # warmup, then cosine
    x, y = loader.next_batch()                   # (32, 32) each: y is x shifted by one token
    _, loss = model(x, y)                        # cross-entropy of every next-token prediction
    loss.backward()                              # gradients
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step(); optimizer.zero_grad(set_to_none=True)
    losses.append(loss.item())
print(f"loss {losses[0]:.2f} -> {np.mean(losses[-10:]):.2f} after 300 steps (ln {V} = {math.log(V):.2f}: a uniform guess)")
assert np.mean(losses[-10:]) < losses[0] - 1.5


# %% [markdown]
# What is a good loss? Reference points that need no neural network at all, on the same
# validation text: guessing uniformly among the 66 tokens costs $\ln 66 = 4.19$ nats; predicting
# every character by its frequency (a unigram model) costs the entropy of the character
# distribution; and predicting each character from the one before it, by counting pairs in the
# training text (a **bigram** model, the first model of Karpathy's *makemore*), is the natural
# baseline a language model must beat, since it already knows that `q` is followed by `u`.

# %%
def split_tokens(data_dir, split):
    meta = load_meta(data_dir)
    return np.concatenate([np.fromfile(Path(data_dir) / sh["file"], dtype="<u2") for sh in meta["splits"][split]["shards"]])

train_ids, val_ids = split_tokens(data_dir, "train").astype(np.int64), split_tokens(data_dir, "val").astype(np.int64)
unigram = np.bincount(train_ids, minlength=V) + 1.0                      # +1: no zero probabilities
bigram = np.ones((V, V)); np.add.at(bigram, (train_ids[:-1], train_ids[1:]), 1)   # counts of (previous, next)
p_uni, p_bi = unigram / unigram.sum(), bigram / bigram.sum(1, keepdims=True)
refs = {"uniform": math.log(V), "unigram": -np.log(p_uni[val_ids[1:]]).mean(),
        "bigram": -np.log(p_bi[val_ids[:-1], val_ids[1:]]).mean()}
for k, v in refs.items(): print(f"{k:8s} {v:.3f} nats per character on the validation split")
assert refs["uniform"] > refs["unigram"] > refs["bigram"] > 2.3

# %% [markdown]
# And the tiny model on the same validation text (the first 20 batches, without dropout, without
# gradients):

# %%
val_loader = TokenLoader(data_dir, "val", batch_size=32, block_size=32, shuffle=False)
with torch.no_grad():
    tiny_val = np.mean([model(*val_loader.batch(i))[1].item() for i in range(20)])
print(f"the tiny model after 300 steps: {tiny_val:.3f} nats per character, against the bigram's {refs['bigram']:.3f}")
assert tiny_val < refs["bigram"] - 0.1


# %% [markdown]
# Five seconds of training already beat the bigram: with 32 characters of context the model has
# learned more than pairs of letters. (An earlier version of this chapter trained half as wide for
# half as long and stopped at 2.9, *worse* than the bigram: a model that has not yet learned what
# counting pairs knows.) The CPU default of this chapter ends near 1.7, with 64 characters of
# context. That is the whole algorithm. The rest of the chapter is what turns it into a program that
# trains GPT-2 on eight GPUs for days.
#
# ## One training step
#
# The loop body above is one optimizer step on one batch. Three things change it on real hardware.
#
# ### Batches larger than memory: gradient accumulation
#
# GPT-2 small is trained with 524,288 tokens per optimizer step; one GPU holds perhaps 32
# sequences of 1024 tokens at once. So one step runs several **micro-steps**, each a forward and a
# backward pass on a micro-batch, and gradients *add up* across `backward()` calls. Dividing each
# micro-step's loss by their number makes the sum the gradient of the *mean* loss over the whole
# batch, exactly what one big batch would give. Three lines change:

# %%
def step_accumulated(model, optimizer, loader, lr, grad_accum):
    for group in optimizer.param_groups: group["lr"] = lr
    for _ in range(grad_accum):                      # 1. several micro-batches...
        x, y = loader.next_batch()
        _, loss = model(x, y)
        (loss / grad_accum).backward()               # 2. ...each contributing 1/grad_accum of the mean
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step(); optimizer.zero_grad(set_to_none=True)   # 3. one step for all of them


# %% [markdown]
# The proof: two micro-batches of 16 sequences give the gradient of one batch of 32, to float
# rounding.

# %%
torch.manual_seed(0)
m1 = GPT(GPTConfig(block_size=32, vocab_size=V, n_layer=1, n_head=2, n_embd=32))
m2 = GPT(GPTConfig(block_size=32, vocab_size=V, n_layer=1, n_head=2, n_embd=32)); m2.load_state_dict(m1.state_dict())
x, y = TokenLoader(data_dir, "train", batch_size=32, block_size=32).next_batch()
m1(x, y)[1].backward()
for i in range(2): (m2(x[16 * i:16 * (i + 1)], y[16 * i:16 * (i + 1)])[1] / 2).backward()
for (n, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-4, atol=1e-6)

# %% [markdown]
# ### Lower precision: bfloat16, float16 and loss scaling
#
# On a GPU the forward pass runs under `torch.autocast`: matrix multiplications in a 16-bit format
# (the tensor cores' fast path), reductions, norms and the weights themselves in float32. There are
# two 16-bit formats, and they fail differently:
#
# - **float16** has 10 mantissa bits but only 5 exponent bits: nothing above 65,504, nothing below
#   about $6 \times 10^{-8}$. Gradients of a language model are often smaller than that and
#   *underflow* to zero. The fix is **loss scaling**: multiply the loss by a large factor $S$ before
#   `backward()`, so every gradient is $S$ times larger and representable, and divide by $S$ before
#   the optimizer step. A `GradScaler` picks $S$ dynamically: it halves it and skips the step when a
#   gradient overflows to inf, and doubles it after a run of good steps.
# - **bfloat16** has float32's 8 exponent bits and only 7 mantissa bits: less precise, but with
#   float32's range it neither overflows nor underflows where float32 would not, so it needs no
#   scaling. Ampere (A100) and later GPUs have it; the T4 of free notebook services and the V100
#   do not.
#
# A small demonstration: a gradient of $10^{-8}$ vanishes in float16, survives in bfloat16, and
# survives float16 too once scaled by $2^{16}$:

# %%
g = torch.tensor([1e-8, 3e-5, 70000.0])
print("float16:", g.half().tolist(), "\nbfloat16:", g.bfloat16().tolist())
test_eq(g.half()[0].item(), 0.0)                  # underflow
assert math.isinf(g.half()[2].item())             # overflow: 70,000 > 65,504
assert g.bfloat16()[0].item() > 0 and not math.isinf(g.bfloat16()[2].item())
S = 2.0 ** 16
assert torch.allclose((g[:2] * S).half().float() / S, g[:2], rtol=1e-3, atol=0)   # scaled: they survive, to float16's 3 digits


# %% [markdown]
# `dtype=auto` picks bfloat16 on a GPU that has it (compute capability 8.0 and up), float16 with a
# gradient scaler on one that does not, and float32 on a CPU. The choice is a small function of the
# device, tested below for each kind without the GPU at hand.

# %%
#| export
class TrainError(CommandError):
    "A run refused or stopped for a reason the user can fix; the command prints it as one line (appendix B)."

DTYPES = ("auto", "float32", "bfloat16", "float16")

def choose_dtype(device: str, dtype: str = "auto", capability: tuple | None = None) -> str:
    "The compute dtype: auto -> bfloat16 on GPUs of compute capability >= 8.0, float16 on older GPUs, float32 elsewhere."
    cuda = device.startswith("cuda")
    if dtype == "auto":
        if not cuda: return "float32"
        capability = capability or torch.cuda.get_device_capability(device)
        return "bfloat16" if tuple(capability) >= (8, 0) else "float16"
    if dtype == "float16" and not cuda:
        raise TrainError(f"dtype=float16 needs a CUDA GPU (it relies on a gradient scaler); on {device} use float32")
    return dtype

def autocast_context(device: str, dtype: str):
    "Autocast to `dtype` (bfloat16 or float16) on `device`; nothing for float32."
    if dtype == "float32": return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, dtype))

def make_scaler(device: str, dtype: str):
    "A GradScaler for float16; None otherwise (no scaling needed)."
    return torch.amp.GradScaler(device.split(":")[0]) if dtype == "float16" else None


# %%
test_eq(choose_dtype("cpu"), "float32")
test_eq(choose_dtype("cuda", capability=(9, 0)), "bfloat16")      # H100
test_eq(choose_dtype("cuda:3", capability=(8, 0)), "bfloat16")    # A100
test_eq(choose_dtype("cuda", capability=(7, 5)), "float16")       # T4
test_eq(choose_dtype("cuda", capability=(7, 0)), "float16")       # V100
test_eq(choose_dtype("cuda", "float32"), "float32")
test_fail(lambda: choose_dtype("cpu", "float16"), contains="needs a CUDA GPU")
test_eq(make_scaler("cpu", "float32"), None)


# %% [markdown]
# With them, the step gains a context (autocast, or nothing) around the forward pass and a scaler
# around `backward()` and the optimizer step; the loss scaler *unscales* the gradients before they
# are clipped, so that clipping sees their true norm:

# %%
def step_mixed(model, optimizer, loader, lr, grad_accum, ctx=contextlib.nullcontext(), scaler=None):
    for group in optimizer.param_groups: group["lr"] = lr
    for _ in range(grad_accum):
        x, y = loader.next_batch()
        with ctx:                                                  # new: 16-bit matmuls
            _, loss = model(x, y)
        loss = loss / grad_accum
        (scaler.scale(loss) if scaler else loss).backward()        # new: scaled for float16
    if scaler: scaler.unscale_(optimizer)                          # new: true gradients before clipping
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    if scaler: scaler.step(optimizer); scaler.update()             # new: skips the step on inf/nan
    else: optimizer.step()
    optimizer.zero_grad(set_to_none=True)


# %% [markdown]
# ### Several processes: DDP
#
# **Distributed data parallel** (DDP) runs one process per GPU, each with a full copy of the model.
# Every process takes a different slice of the batch, computes its gradients, and during
# `backward()` DDP *all-reduces* (averages) the gradients across processes in buckets, overlapped
# with the rest of the backward pass. After that every process holds the same averaged gradient
# and takes the same optimizer step, so the copies never drift apart.
#
# `torchrun` starts the processes and tells each who it is through environment variables: `RANK`
# (0 .. world_size-1 over all nodes), `LOCAL_RANK` (which GPU on this node) and `WORLD_SIZE`. With
# no `RANK` in the environment this is a plain single process. The backend is NCCL for GPUs and
# gloo for CPUs, so the same code runs its DDP tests on a laptop. (When torchrun starts more than
# one process per node it sets `OMP_NUM_THREADS=1` for them unless it is set already, and says so:
# on a CPU, give it the number of threads each process should use.)

# %%
#| export
@dataclass
class Dist:
    "Who this process is: its rank among `world_size`, its GPU on the node, and whether DDP is on."
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    ddp: bool = False
    @property
    def master(self) -> bool: return self.rank == 0

def setup_distributed(device: str) -> tuple[Dist, str]:
    "Join the process group when started by torchrun (RANK in the environment); return (Dist, device)."
    device = resolve_device(device)                          # appendix B: auto -> cuda or cpu, checked
    if "RANK" not in os.environ: return Dist(), device
    d = Dist(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"]), True)
    if device.startswith("cuda"):
        device = f"cuda:{d.local_rank}"                     # one GPU per process
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return d, device

@contextlib.contextmanager
def processes(device: str):
    "(Dist, device) of this process for the duration of a run; leaves the process group at the end."
    d, device = setup_distributed(device)
    try:
        yield d, device
    finally:
        if d.ddp: dist.destroy_process_group()


# %% [markdown]
# Two details make DDP + accumulation correct and fast:
#
# - the gradient all-reduce is only needed once per optimizer step, so all micro-steps but the
#   last run under `model.no_sync()` (gradients just accumulate locally);
# - the global batch is the same whatever the number of processes: the loader (chapter 7) serves
#   its sequence stream in chunks of `batch_size * world_size` and rank $r$ takes slice $r$, so
#   2 processes $\times$ 1 micro-step see exactly the sequences of 1 process $\times$ 2 micro-steps.
#   The test file checks that the losses agree to $10^{-5}$.
#
# With `no_sync` the step is complete. The trainer's `train_step` is `step_mixed` plus that, plus
# what the loop needs back: the mean loss and the gradient norm, *as tensors on the device*. Nothing
# in the step reads a value back to the host, so the CPU can queue the next step while the GPU works;
# the loop reads them (`.item()`, a synchronisation) only on logging steps. A mixture of experts
# (chapter 12) adds its load-balancing loss with a small weight; the loss reported stays the
# cross-entropy. `unwrap` finds the GPT inside a DDP wrapper and a compiled module. A parameter group
# may carry an `lr_ratio`, its peak over the run's: chapter 17's Muon runs the matrices at their own
# peak, on the same schedule.

# %%
#| export
def unwrap(model) -> GPT:
    "The GPT inside `model`: under a DDP wrapper (`.module`) and/or torch.compile (`._orig_mod`)."
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)

def train_step(model, optimizer, loader, lr: float, grad_accum: int = 1, grad_clip: float = 1.0,
               ctx=contextlib.nullcontext(), scaler=None, aux_weight: float = 0.0):
    "One optimizer step over `grad_accum` micro-batches; returns (mean loss, grad norm before clipping, mean aux loss or None)."
    for group in optimizer.param_groups: group["lr"] = lr * group.get("lr_ratio", 1.0)   # Muon's own peak (ch. 17)
    raw, loss_sum, aux_sum = unwrap(model), 0.0, 0.0
    for micro in range(grad_accum):
        x, y = loader.next_batch()                                              # (B, T), (B, T)
        last = micro == grad_accum - 1
        with (model.no_sync() if isinstance(model, DDP) and not last else contextlib.nullcontext()):
            with ctx:
                _, loss = model(x, y)
                aux = raw.aux_loss()                    # a module's own training loss (chapter 12's MoE), else None
            total = (loss if aux is None else loss + aux_weight * aux) / grad_accum
            (scaler.scale(total) if scaler else total).backward()
        loss_sum = loss_sum + loss.detach() / grad_accum
        if aux is not None: aux_sum = aux_sum + aux.detach() / grad_accum
    if scaler: scaler.unscale_(optimizer)                                      # true gradients before clipping
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else math.inf)
    if scaler: scaler.step(optimizer); scaler.update()                         # skips the step on inf/nan gradients
    else: optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, norm, (aux_sum if aux is not None else None)


# %% [markdown]
# `train_step` with one micro-step and no scaler is the loop body of the first section: the same
# losses, bit for bit, from the same start.

# %%
def first_losses(step_fn, n=5):
    torch.manual_seed(0)
    m = GPT(GPTConfig(block_size=32, vocab_size=V, n_layer=2, n_head=2, n_embd=64))
    opt, ld = configure_optimizer(m, lr=1e-2, weight_decay=0.1), TokenLoader(data_dir, "train", batch_size=32, block_size=32)
    return [float(step_fn(m, opt, ld, get_lr(s, 1e-2, 1e-3, 30, 300))) for s in range(n)]

def loop_body(m, opt, ld, lr):
    for group in opt.param_groups: group["lr"] = lr
    x, y = ld.next_batch(); _, loss = m(x, y); loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); opt.zero_grad(set_to_none=True)
    return loss.item()

test_eq(first_losses(lambda m, opt, ld, lr: train_step(m, opt, ld, lr)[0]), first_losses(loop_body))


# %% [markdown]
# ## Evaluation and samples
#
# The validation loss is the mean over `eval_iters` batches of the validation split, in order,
# from its start: always *the same* batches, so consecutive evaluations differ only by the model,
# not by which text they happened to draw. `eval_iters=0` means the whole split: every token of it,
# the last batch shorter than the others and weighted by its size. Under DDP the ranks share the
# work: rank $r$ computes batches $r, r + W, r + 2W, \dots$ of the $W$ processes, and the sums are
# all-reduced, so the result is the number one process computes (to float rounding), for any
# `eval_iters` and any world size.
#
# The validation set is `eval_iters` batches of `batch_size` sequences: change `batch_size` (on
# `--resume`, say) and it covers a different amount of text, so its numbers are no longer comparable
# with the earlier ones. The whole split (`eval_iters=0`) does not have that problem; it costs one
# forward pass over the split per evaluation (for Tiny Shakespeare, 1,742 windows of 64 characters,
# 111,488 of the 111,540; the last 52 fill no whole window).

# %%
#| export
@torch.no_grad()
def evaluate(model, val_loader: TokenLoader, eval_iters: int = 0, d: Dist = Dist(), ctx=contextlib.nullcontext()) -> float:
    "Mean loss per token over the first `eval_iters` batches of `val_loader` (0: all of them), shared among the processes."
    n = min(eval_iters, val_loader.n_batches) if eval_iters else val_loader.n_batches
    sizes = [min(val_loader.B, val_loader.n_seqs - i * val_loader.B) / val_loader.B for i in range(n)]  # 1.0 but the last
    total = torch.zeros((), device=val_loader.device)
    with eval_mode(model):
        for i in range(d.rank, n, d.world_size):       # this rank's share: batches r, r + W, ...
            x, y = val_loader.batch(i)                  # (rows, T): sequences i*B ... in order
            with ctx:
                _, loss = model(x, y)
            total += loss.float() * sizes[i]           # a mean over rows * T tokens, weighted by rows / B
    if d.ddp: dist.all_reduce(total)                    # sum over ranks (gloo has no AVG)
    return total.item() / sum(sizes)


# %% [markdown]
# The whole split is the mean over its tokens: the per-token losses computed in one go equal the
# weighted batch means.

# %%
small_val = TokenLoader(data_dir, "val", batch_size=500, block_size=32, shuffle=False)   # a short last batch
whole = evaluate(model, small_val)
with torch.no_grad():
    per_token = torch.cat([torch.nn.functional.cross_entropy(model(x)[0].flatten(0, 1), y.flatten(), reduction="none")
                           for x, y in (small_val.batch(i) for i in range(small_val.n_batches))])
print(f"{small_val.n_seqs:,} sequences in {small_val.n_batches} batches (the last of {small_val.n_seqs % 500}): "
      f"{len(per_token):,} tokens, mean loss {whole:.4f}")
test_close(whole, per_token.mean().item(), eps=1e-4)
test_close(evaluate(model, small_val, eval_iters=2), per_token[:2 * 500 * 32].mean().item(), eps=1e-4)


# %% [markdown]
# Samples are drawn with their own random generator: generating text must not change the
# training's random stream, or a run that samples would not be the same run as one that does not
# (and resume would not be exact). The text comes from chapter 5's `complete`, which the sampling
# command of chapter 14 uses too; the training samples do not stop at end-of-text, so that every
# sample has the same length.

# %%
#| export
def sample_text(model: GPT, tokenizer, n_tokens: int, seed: int, ctx=contextlib.nullcontext()) -> str:
    "`n_tokens` of text from end-of-text (a document's start), with its own seeded generator: the global random state is untouched."
    gen = torch.Generator(next(model.parameters()).device).manual_seed(seed)
    with ctx:
        return complete(model, tokenizer, "", max_new_tokens=n_tokens, temperature=0.8, top_k=200, generator=gen,
                        stop_at_eot=False)


# %%
state = torch.get_rng_state()
tok = TokenLoader(data_dir, "train", 1, 32).tokenizer
text = sample_text(model, tok, 60, seed=1)
assert torch.equal(torch.get_rng_state(), state) and text == sample_text(model, tok, 60, seed=1)
print(text)

# %% [markdown]
# ## Measuring speed: tokens/s and MFU
#
# Tokens per second is what a run *costs*; **model FLOPs utilisation** (MFU, from the PaLM paper)
# says how much of the hardware it uses: the FLOPs the model mathematically needs per second,
# divided by the device's peak. The FLOPs per token of training:
#
# - every weight of a matmul does one multiply and one add per token in the forward pass (2 FLOPs),
#   and twice that in the backward pass (the gradient with respect to the input *and* to the
#   weight): $6N$ for $N$ weights. $N$ counts the token embedding, because tied to the LM head it is
#   the largest matmul of all, and not the position embedding (a lookup, no arithmetic); for a
#   mixture of experts, only the experts a token uses (`num_params(active=True)`);
# - attention adds matmuls with no weights: $QK^\top$ and $AV$ are each $2TC$ FLOPs per token and
#   layer forward, times 3 for forward + backward: $12\,L\,T\,C$.
#
# $$\text{FLOPs/token} = 6N + 12\,L\,T\,C$$
#
# (counting the full $T \times T$ attention, as PaLM does, although a causal kernel skips half).
# Peak numbers are the dense 16-bit tensor-core figures of the data sheets: bfloat16 where the GPU
# has it, float16 on the T4 and the V100, which have no bfloat16. On a CPU there is no agreed peak,
# so MFU is reported as n/a unless `--peak_tflops` is given. MFU is **per device**: the tokens/s of
# all processes, divided by the number of processes, against one device's peak.

# %%
#| export
PEAK_TFLOPS = {  # dense (no sparsity) 16-bit tensor-core peak from NVIDIA's data sheets: bfloat16, T4/V100 float16
    "H200": 989.4, "H100 NVL": 835.5, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0,
    "L40S": 362.1, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.2, "RTX 3090": 71.0, "T4": 65.0, "V100": 125.0,
}

def flops_per_token(model: GPT) -> int:
    "Training FLOPs per token: 6N (the weights a token uses, forward + backward) + 12 L T C (attention scores and mixing)."
    c = model.config
    n = model.num_params(non_embedding=True, active=True)   # tied wte once; no wpe; MoE: top_k experts, not all
    return 6 * n + 12 * c.n_layer * c.block_size * c.n_embd

def peak_flops(device: str, peak_tflops: float = 0.0) -> float | None:
    "Peak FLOP/s of one device: the given TFLOP/s, else the GPU's entry in PEAK_TFLOPS, else None."
    if peak_tflops: return peak_tflops * 1e12
    if not device.startswith("cuda"): return None
    name = torch.cuda.get_device_name(device)
    return next((v * 1e12 for k, v in PEAK_TFLOPS.items() if k in name), None)

def mfu(tokens_per_s: float, flops: int, peak: float | None, world_size: int = 1) -> float | None:
    "Model FLOPs utilisation of one device: all processes' tokens/s x FLOPs/token / (world_size x one device's peak)."
    return flops * tokens_per_s / (world_size * peak) if peak else None


# %%
test_close(mfu(1000.0, 6_000_000, 1e10, world_size=2), 0.3)   # 6 GFLOP/s of work on 2 devices of 10: 30% each
test_eq(mfu(1000.0, 6_000_000, None), None)

# %% [markdown]
# Next: [checkpoints](09b_checkpoint.ipynb), so that a run can stop and continue exactly.

# %%
shutil.rmtree(work)
