"""Tests of `python -m gpt2book.sample` (chapter 14), all in this process: the command on a tiny model trained here
with the trainer on Tiny Shakespeare (--help, the same text for the same seed, greedy text the same with and without
the cache and at a tiny temperature, the texts those of chapter 5's `complete` with the same generator, each stopped
at end-of-text, a damaged newest checkpoint skipped); every refusal, one line on stderr and nothing on stdout, exit
status 2 for a usage error and 1 for the rest; and the sampling controls against `transformers`' logits warpers, an
implementation written by others. About 15 s on 2 cores.
"""
import shutil

import pytest
import torch

from gpt2book.model import GPT, GPTConfig, complete, next_token_probs
from gpt2book.sample import PROG, check_prompt, load_model, main
from gpt2book.common import run_main, CommandError
from gpt2book.tokenizer import CharTokenizer
from gpt2book.config import make_config
from gpt2book.train import train

SEP = "\n---------------\n"


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


@pytest.fixture(scope="module")
def run_dir(shakespeare_char, tmp_path_factory):
    "A run folder of a tiny model, trained 40 steps on Tiny Shakespeare's characters; checkpoints at steps 20 and 40."
    out = tmp_path_factory.mktemp("sample") / "run"
    train(make_config(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, max_steps=40, eval_interval=40,
                      eval_iters=4, checkpoint_interval=20, sample_tokens=0, data_dir=str(shakespeare_char),
                      out_dir=str(out)))
    return out


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    "A tiny model with GPT-2's vocabulary, written by save_pretrained (a Hugging Face folder)."
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=16, vocab_size=50257, n_layer=1, n_head=2, n_embd=16)).save_pretrained(
        tmp_path_factory.mktemp("hf") / "tiny-gpt2")


def cli(capsys, *args):
    "(stdout, stderr, exit status) of the command with `args`, run in this process."
    return run_main(main, args)


def test_help(capsys):
    out, err, status = cli(capsys, "--help")
    assert (status, err) == (0, "") and out.startswith(f"usage: {PROG}")
    for flag in ("--model", "--prompt", "--max_new_tokens", "--temperature", "--top_k", "--top_p", "--num_samples",
                 "--seed", "--device", "--no_cache", "--no_stop", "examples:"):
        assert flag in out, flag


def test_same_seed_same_text(run_dir, capsys):
    args = [f"--model={run_dir}", "--prompt=ROMEO:\n", "--max_new_tokens=80", "--num_samples=2"]
    (a, err, s1), (b, _, s2), (c, _, s3) = (cli(capsys, *args, f"--seed={s}") for s in (7, 7, 8))
    assert s1 == s2 == s3 == 0 and a == b != c
    texts = a.removesuffix("\n").split(SEP)
    assert len(texts) == 2 and all(t.startswith("ROMEO:\n") and len(t) <= len("ROMEO:\n") + 80 for t in texts)
    assert "char tokenizer (66 ids)" in err and "tokens/s" in err     # what it loaded, how fast: on stderr


def test_greedy_is_the_same_without_the_cache_and_at_a_tiny_temperature(run_dir, capsys):
    args = [f"--model={run_dir}", "--prompt=KING:\n", "--max_new_tokens=60"]
    (a, err_a, _), (b, err_b, _), (c, _, _) = (cli(capsys, *args, *more) for more in
                                               (["--temperature=0"], ["--temperature=0", "--no_cache"],
                                                ["--temperature=1e-9"]))
    assert a == b == c and a.startswith("KING:\n")
    assert "KV cache on" in err_a and "KV cache off" in err_b


def test_the_command_writes_what_complete_writes(run_dir, capsys):
    "main's texts are chapter 5's `complete` with one generator seeded --seed, top_k 0 and top_p 1 meaning no cut."
    texts = main([f"--model={run_dir}", "--prompt=", "--max_new_tokens=50", "--num_samples=3", "--seed=3",
                  "--top_k=0", "--top_p=1", "--temperature=1.1"])
    assert capsys.readouterr().out == SEP.join(texts) + "\n"
    model, tok = load_model(run_dir)
    g = torch.Generator().manual_seed(3)
    assert texts == [complete(model, tok, "", max_new_tokens=50, temperature=1.1, top_k=None, generator=g)
                     for _ in range(3)]
    assert len(set(texts)) == 3 and not any(tok.eot_text in t for t in texts)    # each stopped before end-of-text


def test_a_damaged_newest_checkpoint_is_skipped_and_reported(run_dir, tmp_path, capsys):
    run = shutil.copytree(run_dir, tmp_path / "run")
    newest = sorted(run.glob("ckpt_*.pt"))[-1]
    newest.write_bytes(newest.read_bytes()[:50_000])                  # truncated, as by a full disk
    out, err, status = cli(capsys, f"--model={run}", "--max_new_tokens=5")
    assert status == 0 and out and f"{newest} is damaged" in err


def test_tilde_is_the_home_folder(run_dir, tmp_path, capsys, monkeypatch):
    shutil.copytree(run_dir, tmp_path / "run")
    monkeypatch.setenv("HOME", str(tmp_path))
    out, err, status = cli(capsys, "--model=~/run", "--max_new_tokens=5")
    assert status == 0 and err.startswith("~/run: ")


USAGE = {  # settings out of range, paths that name nothing: exit status 2, before anything is loaded
    "temperature nan": (lambda t: ["--temperature=nan"], "temperature=nan must be a finite number"),
    "temperature inf": (lambda t: ["--temperature=inf"], "temperature=inf must be a finite number"),
    "temperature -1": (lambda t: ["--temperature=-1"], "temperature=-1.0 must be at least 0"),
    "top_p 2": (lambda t: ["--top_p=2"], "top_p=2.0 must be at most 1"),
    "top_p 0": (lambda t: ["--top_p=0"], "top_p=0.0 must be above 0"),
    "top_p nan": (lambda t: ["--top_p=nan"], "top_p=nan must be a finite number"),
    "top_k -2": (lambda t: ["--top_k=-2"], "top_k=-2 must be at least 0"),
    "num_samples 0": (lambda t: ["--num_samples=0"], "num_samples=0 must be at least 1"),
    "not a number": (lambda t: ["--top_k=x"], "argument --top_k: invalid int value: 'x'"),
    "missing": (lambda t: [f"--model={t / 'no-such-run'}"], "no such folder"),
    "typo of a run folder": (lambda t: ["--model=out/cpuu"], "out/cpuu: no such folder"),
    "tilde, missing": (lambda t: ["--model=~/no-such-run"], "~/no-such-run: no such folder"),
    "a text file": (lambda t: [f"--model={t / 'notes.txt'}"], "notes.txt is a file; pass the folder"),
    "no out/cpu yet": (lambda t: [], "--model=out/cpu: no such folder: train a model first"),
}


@pytest.mark.parametrize("case", USAGE)
def test_usage_errors_are_one_line_with_exit_status_2(case, capsys, tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "out").mkdir()                                       # out/ is here: out/cpuu is a typo, not a hub name
    (tmp_path / "notes.txt").write_text("no weights here")
    make_args, says = USAGE[case]
    out, err, status = cli(capsys, *make_args(tmp_path))
    assert (status, out) == (2, "") and err.startswith(f"{PROG}: error: ") and says in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.fixture
def no_hub(monkeypatch):
    "Make any attempt to reach the Hugging Face Hub fail loudly, naming itself in the error."
    import huggingface_hub
    def refuse(*a, **k): raise AssertionError("sent to the hub")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


def damaged_safetensors(hf_dir, tmp_path):
    shutil.copytree(hf_dir, tmp_path / "damaged-hf")
    w = tmp_path / "damaged-hf" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:4096])
    return tmp_path / "damaged-hf"


def truncated_run(run_dir, tmp_path):
    (tmp_path / "truncated-run").mkdir()
    for c in run_dir.glob("ckpt_*.pt"):
        (tmp_path / "truncated-run" / c.name).write_bytes(c.read_bytes()[:100_000])
    return tmp_path / "truncated-run"


def nan_model(tmp_path):
    "A Hugging Face folder whose weights are NaN, as a diverged run's might be."
    m = GPT(GPTConfig(block_size=16, vocab_size=50257, n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():
        m.transformer.h[0].mlp.c_fc.weight.fill_(float("nan"))
    return m.save_pretrained(tmp_path / "nan-model")


RUNTIME = {  # (arguments from (run_dir, hf_dir, tmp_path), what the line says); exit status 1
    "no model in it": (lambda r, h, t: [f"--model={t}"], "holds no model (no ckpt_*.pt, no model.safetensors)"),
    "truncated checkpoints": (lambda r, h, t: [f"--model={truncated_run(r, t)}"],
                              "holds no readable checkpoint"),
    "truncated safetensors": (lambda r, h, t: [f"--model={damaged_safetensors(h, t)}"],
                              "cannot read its weights"),
    "NaN weights": (lambda r, h, t: [f"--model={nan_model(t)}"], "its weights hold NaN or infinity (transformer.h.0"),
    "prompt": (lambda r, h, t: [f"--model={r}", "--prompt=Roméo"], "character 'é' (U+00E9) at position 3"),
    "device": (lambda r, h, t: [f"--model={r}", "--device=cuda:99"], "--device=cuda:99 cannot be used here"),
    "hub offline": (lambda r, h, t: ["--model=gpt2book-tests/no-such-model"],
                    "fetching it from the Hugging Face Hub failed"),
}


@pytest.mark.parametrize("case", RUNTIME)
def test_runtime_errors_are_one_line_with_exit_status_1(case, run_dir, hf_dir, tmp_path, capsys, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "out").mkdir()                                       # out/ is here: out/cpuu is a typo, not a hub name
    (tmp_path / "notes.txt").write_text("no weights here")
    if case == "hub offline":
        import huggingface_hub.constants
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    else:
        request.getfixturevalue("no_hub")                            # nothing else may go to the hub
    make_args, says = RUNTIME[case]
    out, err, status = cli(capsys, *make_args(run_dir, hf_dir, tmp_path))
    assert (status, out) == (1, ""), (status, out, err)
    assert err.startswith(f"{PROG}: error: ") and says in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_check_prompt():
    tok = CharTokenizer("abc\n")
    check_prompt(tok, "ab\n")
    with pytest.raises(CommandError, match="character 'z' .* this character model knows only"):
        check_prompt(tok, "az")


def test_sampling_controls_match_transformers_warpers():
    """next_token_probs (temperature, then top-k, then top-p) is the softmax of the logits after transformers'
    TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper, in that order: the same tokens kept, the same
    probabilities to 1e-6, on random logits without ties over a grid of temperatures, k and p."""
    lp = pytest.importorskip("transformers.generation.logits_process")
    logits = torch.randn(8, 500, generator=torch.Generator().manual_seed(0)) * 3     # (B, V)
    assert all(row.unique().numel() == row.numel() for row in logits)               # no ties
    worst, sizes = 0.0, set()
    for t in (0.25, 0.7, 1.0, 1.6):
        for k in (None, 1, 3, 40, 500):
            for p in (None, 0.05, 0.5, 0.9, 0.999):
                x = lp.TemperatureLogitsWarper(t)(None, logits)
                if k is not None: x = lp.TopKLogitsWarper(k)(None, x)
                if p is not None: x = lp.TopPLogitsWarper(p)(None, x)
                ref, ours = x.softmax(-1), next_token_probs(logits, t, k, p)
                assert torch.equal(ours > 0, ref > 0), (t, k, p)                  # the same tokens kept
                worst = max(worst, (ours - ref).abs().max().item())
                sizes.update((ours > 0).sum(-1).tolist())
    assert worst < 1e-6, worst
    assert len(sizes) > 20                                                         # the cuts kept many different sizes
