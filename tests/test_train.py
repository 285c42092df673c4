"""Tests of `python -m gpt2book.train` beyond chapter 9's cells: DDP under torchrun (gloo) against gradient
accumulation, MFU per device, a run killed with SIGKILL and resumed (bitwise the same losses) past a damaged newest
checkpoint, SIGTERM (a clean save), wandb resuming its run, a rank that cannot read the chosen checkpoint, a
non-finite loss, the loss scaler's plumbing, the command line's refusals, init_from, and the CPU default's validation
loss after a short run. Tiny Shakespeare is the only data. Processes are started only where the test needs a real
process (torchrun, a kill); everything else runs in this one.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from gpt2book.checkpoint import checkpoints, load_chapters, load_checkpoint
from gpt2book.model import GPT, GPTConfig, make_model, model_config
from gpt2book.optim import configure_optimizer
from gpt2book.common import CommandError
from gpt2book.config import TRAIN_PRESETS, TrainConfig, command_line, config_from_args, make_config, parser
from gpt2book.runlog import read_metrics
from gpt2book.step import flops_per_token, train_step
from gpt2book.train import main, model_and_optimizer, setup, train

load_chapters()                       # every variant can be named, as on the command line
ROOT = Path(__file__).resolve().parents[1]
# a model small enough for a step of a few milliseconds
TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=4, sample_tokens=20, eval_iters=4)
TINY_ARGS = [f"--{k}={v}" for k, v in TINY.items()]


@pytest.fixture(scope="module")
def data(shakespeare_char):
    return shakespeare_char


def env(**extra):
    e = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    return {**e, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT), **extra}


def cmd(*args, torchrun=0, script=("-m", "gpt2book.train")):
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"] if torchrun else []
    return [sys.executable, *launcher, *script, *map(str, args)]


def run(*args, torchrun=0, check=True, script=("-m", "gpt2book.train"), **extra_env):
    p = subprocess.run(cmd(*args, torchrun=torchrun, script=script), capture_output=True, text=True,
                       env=env(**extra_env), timeout=300)
    if check: assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def numbers(out_dir, keys=("loss", "lr", "grad_norm", "val_loss")):
    "metrics.jsonl without the timing fields, which differ from run to run."
    return [{k: m[k] for k in ("step", *keys) if k in m} for m in read_metrics(Path(out_dir) / "metrics.jsonl")]


def refused(capsys, argv, status):
    "The one line `main(argv)` prints on stderr when it exits with `status`."
    capsys.readouterr()                             # what earlier runs printed (progress bars) is not the refusal
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == status, e.value.code
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]             # after the progress bar, if training had started
    assert last.startswith("python -m gpt2book.train: error: ") and "Traceback" not in err, err[-2000:]
    return last


def test_ddp_equals_grad_accum_and_mfu_is_per_device(data, tmp_path):
    "2 processes x 1 micro-step (gloo) == 1 process x 2 micro-steps, at the same 256 tokens a step; MFU per device."
    common = [*TINY_ARGS, f"--data_dir={data}", "--total_batch_size=256", "--max_steps=6", "--log_interval=1",
              "--eval_interval=3", "--checkpoint_interval=6", "--eval_iters=5", "--peak_tflops=0.5", "--warmup_steps=2"]
    run(*common, f"--out_dir={tmp_path / 'ddp'}", torchrun=2)
    main([*common, f"--out_dir={tmp_path / 'one'}"])
    ddp, one = numbers(tmp_path / "ddp"), numbers(tmp_path / "one")
    assert [m["step"] for m in ddp] == [m["step"] for m in one] and len(one) == 9   # 6 train + evals at 0, 3, 6
    for a, b in zip(ddp, one):   # eval_iters=5 is not a multiple of 2 processes: evaluation still agrees
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=1e-5, rel=1e-5), (k, a, b)
    assert one[-1]["val_loss"] < one[0]["val_loss"] - 0.1                           # and it learned something
    # the saved weights agree too, and only rank 0 wrote them
    wa, wb = (load_checkpoint(checkpoints(tmp_path / d)[-1])["model"] for d in ("ddp", "one"))
    for k in wb: torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4)
    # MFU is per device: all processes' tokens/s over 2 devices' peak, not one
    fpt = flops_per_token(make_model(model_config(**json.loads((tmp_path / "one" / "config.json").read_text())["model"])))
    for m in read_metrics(tmp_path / "ddp" / "metrics.jsonl"):
        if "mfu" in m:
            # tokens_per_s is logged rounded to 0.1: the tolerance is that rounding's, whatever the machine's speed
            assert m["mfu"] == pytest.approx(fpt * m["tokens_per_s"] / (2 * 0.5e12), abs=fpt * 0.051 / (2 * 0.5e12))
    lines = [m for m in read_metrics(tmp_path / "one" / "metrics.jsonl") if "mfu" in m]
    assert lines[-1]["mfu"] == pytest.approx(fpt * lines[-1]["tokens_per_s"] / 0.5e12, abs=fpt * 0.051 / 0.5e12)


def test_sigkill_and_resume_is_bitwise(data, tmp_path):
    args = [*TINY_ARGS, f"--data_dir={data}", "--max_steps=300", "--log_interval=1", "--eval_interval=50",
            "--checkpoint_interval=40", "--keep_checkpoints=2", "--dropout=0.1"]   # dropout: the RNG state matters
    run(*args, f"--out_dir={tmp_path / 'straight'}")       # one thread, as the killed run: the same float sums
    killed = tmp_path / "killed"
    p = subprocess.Popen(cmd(*args, f"--out_dir={killed}"), env=env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "ckpt_0000080.pt").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert checkpoints(killed)[-1].name != "ckpt_0000300.pt"
    # a kill can also leave a damaged newest checkpoint (a bad copy, a full disk) and a temporary file
    newest = checkpoints(killed)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    (killed / f".ckpt_0000999.pt.{2 ** 22 + 7}.deadbeef.tmp").write_bytes(b"half a checkpoint")
    p = run(*args, f"--out_dir={killed}", "--resume")
    assert f"{newest} is damaged" in p.stdout + p.stderr and "trying the one before" in p.stdout + p.stderr
    assert (killed / (newest.name + ".damaged")).exists() and not list(killed.glob(".*.tmp"))
    straight, resumed = numbers(tmp_path / "straight"), numbers(killed)
    assert len(straight) == 300 + 7 and resumed == straight                       # every number, bit for bit
    # samples.txt is cut back like metrics.jsonl: each evaluation's sample once, the same text
    assert (killed / "samples.txt").read_text() == (tmp_path / "straight" / "samples.txt").read_text()


def test_sigterm_saves_and_exits_cleanly(data, tmp_path):
    "A SIGTERM (as a cluster sends it) stops the run at the next step with a checkpoint; --resume continues there."
    out = tmp_path / "run"
    cfg = make_config(**TINY, data_dir=str(data), out_dir=str(out), max_steps=1_000_000, log_interval=5,
                      checkpoint_interval=100_000)
    def terminate_when_training():
        deadline = time.time() + 60
        while time.time() < deadline:
            if (out / "metrics.jsonl").exists() and any("loss" in m for m in read_metrics(out / "metrics.jsonl")): break
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=terminate_when_training, daemon=True).start()
    summary = train(cfg)                                   # in this process: the trainer's handler catches it
    assert summary["stopped"]
    step = load_checkpoint(checkpoints(out)[-1])["step"]
    assert 0 < step < 1_000_000 and step == summary["step"] == max(m["step"] for m in read_metrics(out / "metrics.jsonl"))
    train(make_config(**TINY, data_dir=str(data), out_dir=str(out), max_steps=step + 3, resume=True))
    assert load_checkpoint(checkpoints(out)[-1])["step"] == step + 3


def test_wandb_resumes_the_same_run(data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline"); monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    base = dict(TINY, data_dir=str(data), out_dir=str(out), log_interval=2, eval_interval=4, checkpoint_interval=4,
                wandb=True, sample_tokens=0)
    train(make_config(**base, max_steps=4))
    train(make_config(**base, max_steps=8, resume=True))
    run_id = (out / "wandb_id.txt").read_text().strip()
    offline = sorted(p.name for p in (out / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(name.endswith("-" + run_id) for name in offline), (run_id, offline)


def test_a_rank_that_cannot_read_the_checkpoint_stops_every_rank(data, tmp_path):
    "Rank 0 chooses the checkpoint; a rank that cannot read it (out_dir not shared) stops the run with one message."
    out = tmp_path / "run"
    args = [*TINY_ARGS, f"--data_dir={data}", f"--out_dir={out}", "--max_steps=4", "--checkpoint_interval=4"]
    main(args)
    helper = tmp_path / "rank1_blind.py"   # rank 1 cannot see rank 0's files: what an unshared out_dir does
    helper.write_text("import os, sys\nimport gpt2book.train as t\n"
                      "def blind(path):\n    raise FileNotFoundError(path)\n"
                      "if os.environ.get('RANK') == '1': t.load_checkpoint = blind\n"
                      "t.main(sys.argv[1:])\n")
    p = run(*args, "--max_steps=8", "--resume", torchrun=2, check=False, script=(str(helper),))
    assert p.returncode != 0
    text = p.stdout + p.stderr
    assert "rank 1 cannot read" in text and "storage that all nodes share" in text, text[-3000:]


def test_the_loss_scaler_changes_nothing_but_the_scale():
    "train_step with an (enabled) GradScaler on float32 gives the very step of train_step without one."
    class Batches:
        def __init__(self): self.g = torch.Generator().manual_seed(0)
        def next_batch(self):
            xy = torch.randint(66, (4, 17), generator=self.g)
            return xy[:, :-1], xy[:, 1:]
    after = []
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)):
        torch.manual_seed(0)
        m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=66))
        opt = configure_optimizer(m, 1e-2, 0.1)
        loss, norm, _ = train_step(m, opt, Batches(), 1e-2, grad_accum=2, grad_clip=1.0, scaler=scaler)
        after.append((loss, norm, [p.detach().clone() for p in m.parameters()]))
    (_, n0, p0), (_, n1, p1) = after          # (the losses come from the forward pass before any step: equal anyway)
    assert torch.allclose(n0, n1, rtol=1e-6)                          # the norm that was clipped: unscaled
    for a, b in zip(p0, p1): torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert not torch.equal(p0[0], GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=66)).state_dict()
                           ["transformer.wte.weight"])   # and the step did change the weights


def test_help_lists_every_setting_and_exits_0(capsys):
    for flag in ("--help", "-h"):
        with pytest.raises(SystemExit) as e:
            main([flag])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: python -m gpt2book.train")
        for key in [*TrainConfig.__dataclass_fields__, *GPTConfig.__dataclass_fields__]:
            if key not in ("model", "vocab_size"): assert f"--{key}" in out, key
        assert "examples:" in out and "gpt2-124m-moe" in out and "peak (nanoGPT: 1e-3" in out


def test_refusals_are_one_line_before_anything_is_touched(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)                     # the default data and run folders would appear here
    assert "did you mean --learning_rate" in refused(capsys, ["--learning_rtae=1e-3"], 2)
    assert "invalid int value: 'many'" in refused(capsys, ["--max_steps=many"], 2)
    assert "invalid bool value: 'sure'" in refused(capsys, ["--compile=sure"], 2)
    assert "invalid choice: 'foo'" in refused(capsys, ["--ffn=foo"], 2)
    assert "must be at least 1" in refused(capsys, ["--n_layer=0"], 2)
    assert "finite" in refused(capsys, ["--learning_rate=inf"], 2)
    assert "min_lr=0.1 must be at most learning_rate=0.001" in refused(capsys, ["--learning_rate=1e-3", "--min_lr=0.1"], 2)
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()   # nothing prepared, no run folder
    assert "not a multiple of batch_size*block_size*world_size" in refused(
        capsys, [*TINY_ARGS, "--total_batch_size=1000", f"--data_dir={data}"], 2)
    assert "unknown dataset 'missing'" in refused(capsys, ["--dataset=missing"], 2)
    (tmp_path / "a_file").write_text("x")
    assert "is a file" in refused(capsys, [*TINY_ARGS, f"--data_dir={data}", f"--out_dir={tmp_path / 'a_file'}"], 2)
    assert "holds no checkpoint" in refused(capsys, [*TINY_ARGS, f"--data_dir={data}", "--resume",
                                                      f"--out_dir={tmp_path / 'never'}"], 2)
    assert not (tmp_path / "never").exists()
    missing = refused(capsys, ["--dataset=openwebtext", f"--data_dir={tmp_path / 'owt'}"], 1)
    assert "python data/prepare.py openwebtext --out" in missing and "no meta.json" in missing
    # an explicit --data_dir without data is an error, never a quiet Tiny Shakespeare somewhere else
    typo = refused(capsys, [f"--data_dir={tmp_path / 'typo'}"], 1)
    assert f"python data/prepare.py shakespeare_char --out {tmp_path / 'typo'}" in typo
    assert not (tmp_path / "typo").exists()
    assert "unknown dataset 'tinystories'" in refused(capsys, ["--dataset=tinystories"], 2)
    # a finished run: rerunning into it is refused, resuming with another model is refused
    out = tmp_path / "run"
    base = [*TINY_ARGS, f"--data_dir={data}", f"--out_dir={out}", "--max_steps=4", "--eval_interval=2"]
    summary = main(base)
    assert summary["step"] == 4 and (out / "ckpt_0000004.pt").exists() and (out / "loss.png").exists()
    assert json.loads((out / "config.json").read_text())["max_steps"] == 4
    assert "--resume" in refused(capsys, base, 1)
    msg = refused(capsys, [*base, "--resume", "--n_layer=3"], 1)
    assert "different model" in msg and "n_layer: checkpoint 2 vs run 3" in msg


def test_the_command_line_of_a_config_gives_it_back():
    "command_line(preset, settings) is what the experiments run as a process: it parses back to the same config."
    settings = dict(n_layer=3, ffn="swiglu", learning_rate=2e-3, dropout=0.1, out_dir="out/x y", eval_steps=(40, 80))
    assert config_from_args(command_line("cpu", settings)) == make_config("cpu", **settings)
    assert config_from_args(command_line("gpt2-124m-rope", {})) == make_config("gpt2-124m-rope")


def test_gpt2book_data_is_where_the_default_data_goes(data, tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2BOOK_DATA", str(tmp_path / "elsewhere"))
    assert make_config().data_path == tmp_path / "elsewhere" / "shakespeare_char"
    summary = train(make_config(**TINY, out_dir=str(tmp_path / "run"), max_steps=2, eval_interval=2))  # prepares there
    assert summary["step"] == 2 and (tmp_path / "elsewhere" / "shakespeare_char" / "meta.json").exists()


def test_init_from_a_run_folder_takes_its_settings_and_refuses_others(data, tmp_path, capsys):
    base = dict(**TINY, data_dir=str(data), max_steps=6, eval_interval=6, checkpoint_interval=6)
    train(make_config(**{**base, "n_layer": 3}, out_dir=str(tmp_path / "pre")))
    # the weights decide the model: the preset's n_layer does not count; dropout may change
    ft_cfg = make_config(**{k: v for k, v in base.items() if k != "n_layer"}, out_dir=str(tmp_path / "ft"),
                         init_from=str(tmp_path / "pre"), dropout=0.1, learning_rate=1e-4, min_lr=1e-5)
    assert ft_cfg.model.n_layer == 3 and ft_cfg.model.dropout == 0.1
    summary = train(ft_cfg)
    ft = load_checkpoint(checkpoints(tmp_path / "ft")[-1])
    assert ft["model_config"]["n_layer"] == 3 and ft["model_config"]["dropout"] == 0.1
    first = read_metrics(tmp_path / "ft" / "metrics.jsonl")[0]["val_loss"]
    pre_val = [m for m in read_metrics(tmp_path / "pre" / "metrics.jsonl") if "val_loss" in m][-1]["val_loss"]
    assert first == pytest.approx(pre_val, abs=1e-6)       # it starts where the pretrained run ended
    assert summary["step"] == 6
    msg = refused(capsys, [f"--init_from={tmp_path / 'pre'}", "--n_embd=64"], 2)
    assert "fixes the model's settings" in msg and "--n_embd=64 (the weights: 32)" in msg
    # a Hugging Face folder whose vocabulary is not GPT-2's must name its tokenizer
    m = make_model(model_config(**{**ft["model_config"], "bias": True}))    # Hugging Face's GPT-2 has biases
    m.save_pretrained(tmp_path / "hf_named", tokenizer=ft["tokenizer"])
    m.save_pretrained(tmp_path / "hf_unnamed")
    named = train(make_config(**{**{k: v for k, v in base.items() if k != "n_layer"}, "max_steps": 2},
                              out_dir=str(tmp_path / "hf_ft"), init_from=str(tmp_path / "hf_named")))
    assert named["step"] == 2
    assert "does not name its tokenizer" in refused(capsys, [*TINY_ARGS[4:], f"--data_dir={data}",
                                                             f"--init_from={tmp_path / 'hf_unnamed'}",
                                                             f"--out_dir={tmp_path / 'x'}"], 1)


def test_init_from_rotary_weights_at_a_longer_context(data, tmp_path):
    "Rotary positions are computed for any position: a RoPE run's weights train on, at twice the context."
    base = dict(TINY, data_dir=str(data), max_steps=4, eval_interval=4, checkpoint_interval=4)
    train(make_config(**base, pos="rope", out_dir=str(tmp_path / "rope")))
    longer = make_config(**{k: v for k, v in base.items() if k not in ("n_layer", "n_head", "n_embd", "block_size")},
                         block_size=64, init_from=str(tmp_path / "rope"), out_dir=str(tmp_path / "long"))
    assert longer.model.block_size == 64 and longer.model.pos == "rope"
    assert train(longer)["step"] == 4


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path, capsys):
    out = tmp_path / "run"
    base = [*TINY_ARGS, f"--data_dir={data}", f"--out_dir={out}", "--log_interval=1", "--checkpoint_interval=4"]
    main([*base, "--max_steps=4"])
    msg = refused(capsys, [*base, "--max_steps=20", "--resume", "--learning_rate=1e30", "--min_lr=0",
                           "--warmup_steps=0"], 1)
    assert "non-finite" in msg and "at step 6" in msg and "ckpt_0000004.pt" in msg
    assert [p.name for p in checkpoints(out)] == ["ckpt_0000004.pt"]
    ck = load_checkpoint(checkpoints(out)[-1])
    assert all(torch.isfinite(t).all() for t in ck["model"].values())


def test_moe_logs_its_balance_and_experts_under_ddp(data, tmp_path):
    "A mixture of experts trains under 2-process DDP (every expert's weights reach the all-reduce) and logs aux_loss."
    out = tmp_path / "moe"
    run(*TINY_ARGS, f"--data_dir={data}", f"--out_dir={out}", "--ffn=moe", "--n_expert=4", "--expert_top_k=1",
        "--max_steps=4", "--log_interval=2", "--eval_interval=4", torchrun=2)
    lines = [m for m in read_metrics(out / "metrics.jsonl") if "loss" in m]
    assert all(m["aux_loss"] > 0 for m in lines)
    assert len(lines[-1]["expert_tokens"]) == 2 and len(lines[-1]["expert_tokens"][0]) == 4   # 2 layers x 4 experts
    names = load_checkpoint(checkpoints(out)[-1])["model"]
    assert any("router" in k for k in names) and any("experts.3" in k for k in names)


def test_cpu_default_learns(data, tmp_path):
    "The CPU default preset (model, batch, optimizer), cut to 100 of its 2000 steps: val loss from 4.2 to under 2.7."
    cfg = make_config()
    assert (cfg.model.n_layer, cfg.model.n_head, cfg.model.n_embd, cfg.model.block_size, cfg.batch_size) == (4, 4, 128, 64, 12)
    train(make_config(data_dir=str(data), out_dir=str(tmp_path), max_steps=100, eval_interval=100, eval_iters=20,
                      sample_tokens=100))
    val = [m["val_loss"] for m in read_metrics(tmp_path / "metrics.jsonl") if "val_loss" in m]
    assert val[0] > 4.0 and val[-1] < 2.7, val     # ln(66) = 4.19 at the start
    assert len((tmp_path / "samples.txt").read_text()) > 200 and (tmp_path / "loss.png").exists()


def test_a_benchmark_builds_the_model_the_trainer_builds(data, tmp_path):
    "model_and_optimizer, without data, gives the model (bit for bit) and the optimizer that setup gives a run."
    cfg = make_config(**TINY, data_dir=str(data), out_dir=str(tmp_path / "run"))
    s = setup(cfg)
    bcfg, raw, opt = model_and_optimizer(cfg, {"vocab_size": s.raw.config.vocab_size}, "cpu")
    assert bcfg.model == s.cfg.model and type(opt) is type(s.optimizer)
    assert all(torch.equal(a, b) for a, b in zip(raw.state_dict().values(), s.raw.state_dict().values()))
    assert not (tmp_path / "run").exists()                                   # setup writes nothing


def test_unwritable_folders_and_offline_weights_are_one_line(data, tmp_path, capsys, monkeypatch):
    "A run folder that cannot be written, and GPT-2's weights without a network: exit 1, one line, nothing written."
    from gpt2book.train import check_writable
    ro = tmp_path / "ro"; ro.mkdir(); ro.chmod(0o500)
    if os.access(ro, os.W_OK):                                               # root: every folder is writable
        monkeypatch.setattr(os, "access", lambda path, mode: not str(path).startswith(str(ro)))
    with pytest.raises(CommandError, match="permission denied"): check_writable(ro / "run")
    msg = refused(capsys, [*TINY_ARGS, f"--data_dir={data}", f"--out_dir={ro / 'run'}", "--max_steps=2"], 1)
    assert "cannot write to" in msg and "--out_dir" in msg
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = refused(capsys, ["--init_from=gpt2", f"--out_dir={tmp_path / 'ft'}"], 1)
    assert "--init_from=" in msg and "Hugging Face Hub" in msg and "see --help" not in msg
    assert not (tmp_path / "ft").exists()


def test_hellaswag_during_training_fails_early_without_its_file(data, tmp_path, monkeypatch, capsys):
    "No HellaSwag file and no network: refused before the first step, with the reason, not a traceback later."
    import gpt2book.fetch
    def offline(url, dest, sha256=None, offline_hint=""):
        raise RuntimeError(f"could not download {url} (no network). Offline? {offline_hint}")
    monkeypatch.setattr(gpt2book.fetch, "download", offline)
    monkeypatch.setenv("GPT2BOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GPT2BOOK_MIRROR", str(tmp_path / "mirror"))
    msg = refused(capsys, [*TINY_ARGS, f"--data_dir={data}", f"--out_dir={tmp_path / 'run'}", "--max_steps=4",
                           "--eval_hellaswag_every=2"], 1)
    assert "needs HellaSwag's validation file" in msg and "hellaswag_val.jsonl" in msg
    assert not (tmp_path / "run").exists()


def test_the_whole_splits_loss_does_not_depend_on_the_evaluation_batch(data, tmp_path):
    "eval_batch_size is the validation loader's batch; the whole split's loss is the same cut into 64s or 500s."
    from gpt2book.loader import TokenLoader
    from gpt2book.step import evaluate
    cfg = make_config(**TINY, data_dir=str(data), eval_batch_size=64, out_dir=str(tmp_path / "run"))
    s = setup(cfg)
    assert (s.val_loader.B, s.train_loader.B) == (64, TINY["batch_size"])
    other = TokenLoader(data, "val", 500, TINY["block_size"], shuffle=False)             # a short last batch
    assert evaluate(s.raw, s.val_loader) == pytest.approx(evaluate(s.raw, other), abs=1e-5)


def test_the_last_evaluation_covers_the_whole_split_and_the_bench_agrees(shakespeare_char, tmp_path, one_thread):
    "--final_eval_iters=0: the last evaluation alone covers the whole split; bench/main_job.py scores the same weights alike."
    import importlib.util
    spec = importlib.util.spec_from_file_location("main_job_script", ROOT / "bench" / "main_job.py")
    main_job = importlib.util.module_from_spec(spec); spec.loader.exec_module(main_job)
    out = train(make_config("cpu", out_dir=str(tmp_path), **dict(TINY, data_dir=str(shakespeare_char), max_steps=4,
                                                                eval_interval=2, eval_iters=2, final_eval_iters=0,
                                                                eval_first=False, sample_tokens=0)))
    whole, tokens = main_job.whole_split_loss(tmp_path)
    vals = {m["step"]: m["val_loss"] for m in read_metrics(tmp_path / "metrics.jsonl") if "val_loss" in m}
    assert list(vals) == [2, 4] and whole == pytest.approx(vals[4], abs=1e-5) and out["val_loss"] == vals[4]
    from gpt2book.checkpoint import load_model
    from gpt2book.loader import TokenLoader
    from gpt2book.step import evaluate
    model, _ = load_model(tmp_path)
    two = evaluate(model, TokenLoader(shakespeare_char, "val", TINY["batch_size"], TINY["block_size"], shuffle=False), 2)
    assert abs(two - vals[4]) > 1e-4                                              # not the 2-batch estimate
    n = json.loads((shakespeare_char / "meta.json").read_text())["splits"]["val"]["tokens"]
    assert tokens == (n - 1) // TINY["block_size"] * TINY["block_size"]          # every whole window of the split


def test_a_run_without_checkpoints_or_plot_writes_only_its_log(shakespeare_char, tmp_path, one_thread):
    "checkpoint_interval=0 and plot=False (a systems record's run): metrics and nothing else to disk."
    out = train(make_config("cpu", out_dir=str(tmp_path), **dict(TINY, data_dir=str(shakespeare_char), max_steps=4,
                                                                checkpoint_interval=0, plot=False, sample_tokens=0)))
    assert out["step"] == 4 and checkpoints(tmp_path) == [] and not (tmp_path / "loss.png").exists()
    assert [m["step"] for m in read_metrics(tmp_path / "metrics.jsonl") if "val_loss" in m][-1] == 4
