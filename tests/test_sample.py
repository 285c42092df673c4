"""Tests of generation and `python -m gpt2book.sample` (chapter 14): the KV cache changes no logit and no greedy
token (learned and rotary positions); the command, run as a real process on a tiny model trained here with
`python -m gpt2book.train` on Tiny Shakespeare: --help, the same text for the same seed, greedy text the same
with and without the cache, each sample stopped at end-of-text; and its refusals, each one line with exit status 2:
a missing model, a folder that holds no model, a prompt a character model cannot encode, the hub offline, a bad
setting. About a minute on 2 cores.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpt2book.sample import ModelError, complete, continuation, encode_prompt, load_model, main

ROOT = Path(__file__).resolve().parents[1]


def env(**extra):
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT), **extra}


def sample(*args, **extra_env):
    return subprocess.run([sys.executable, "-m", "gpt2book.sample", *map(str, args)], capture_output=True, text=True,
                          env=env(**extra_env), timeout=300)


@pytest.fixture(scope="module")
def run_dir(shakespeare_char, tmp_path_factory):
    "A run folder of a tiny model, trained 40 steps by `python -m gpt2book.train` on Tiny Shakespeare's characters."
    out = tmp_path_factory.mktemp("sample") / "run"
    p = subprocess.run([sys.executable, "-m", "gpt2book.train", "--n_layer=2", "--n_head=2", "--n_embd=32",
                        "--block_size=32", "--batch_size=8", "--max_steps=40", "--eval_interval=40", "--eval_iters=4",
                        "--checkpoint_interval=20", "--sample_tokens=0", f"--data_dir={shakespeare_char}",
                        f"--out_dir={out}"], capture_output=True, text=True, env=env(), timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return out


def test_help_exits_0():
    p = sample("--help")
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.startswith("usage: python -m gpt2book.sample")
    for flag in ("--model", "--prompt", "--max_new_tokens", "--temperature", "--top_k", "--top_p", "--num_samples",
                 "--seed", "--device", "--no_cache", "--no_stop", "examples:"):
        assert flag in p.stdout, flag


def test_same_seed_same_text(run_dir):
    args = [f"--model={run_dir}", "--prompt=ROMEO:\n", "--max_new_tokens=80", "--num_samples=2"]
    a, b, c = sample(*args, "--seed=7"), sample(*args, "--seed=7"), sample(*args, "--seed=8")
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr + c.stderr
    assert a.stdout == b.stdout != c.stdout
    texts = a.stdout.split("\n---------------\n")
    assert len(texts) == 2 and all(t.startswith("ROMEO:\n") for t in texts)
    assert all(len(t.rstrip("\n")) <= len("ROMEO:\n") + 80 for t in texts)     # at most 80 characters more
    assert "char tokenizer (66 ids)" in a.stderr and "tokens/s" in a.stderr     # what it loaded, how fast: stderr


def test_greedy_text_is_the_same_without_the_cache(run_dir):
    args = [f"--model={run_dir}", "--prompt=KING:\n", "--max_new_tokens=60", "--temperature=0"]
    a, b = sample(*args), sample(*args, "--no_cache")
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout
    assert "KV cache on" in a.stderr and "KV cache off" in b.stderr


def test_in_process_matches_the_command(run_dir, capsys):
    "main() in this process prints what it returns; complete() is prompt + continuation, stopped at end-of-text."
    texts = main([f"--model={run_dir}", "--prompt=", "--max_new_tokens=50", "--num_samples=2", "--seed=3"])
    out = capsys.readouterr().out
    assert out == "\n---------------\n".join(texts) + "\n"
    model, tok = load_model(run_dir)
    g = lambda: torch.Generator().manual_seed(3)
    new = continuation(model, tok, "", 50, generator=g())
    assert tok.eot not in new and len(new) <= 50
    assert complete(model, tok, "", max_new_tokens=50, generator=g()) == tok.decode(new)
    # a model that always writes end-of-text: each text stops before it, so nothing is added to the prompt
    class AlwaysEot(torch.nn.Module):
        def forward(self, h):                                   # (B, C) -> (B, V), end-of-text the likeliest
            return torch.zeros(*h.shape[:-1], tok.vocab_size).index_fill_(-1, torch.tensor([tok.eot]), 10.0)
    model.lm_head = AlwaysEot()
    assert complete(model, tok, "ROMEO:", max_new_tokens=20) == "ROMEO:"
    assert continuation(model, tok, "ROMEO:", 20, temperature=0, stop_at_eot=False) == [tok.eot] * 20


@pytest.mark.parametrize("case", ["missing", "neither", "prompt", "hub", "setting", "device"])
def test_errors_are_one_line_with_exit_status_2(case, run_dir, tmp_path):
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "notes.txt").write_text("no weights here")
    args, extra, expect = {
        "missing": ([f"--model={tmp_path / 'no-such-run'}"], {}, "no such folder"),
        "neither": ([f"--model={tmp_path / 'not-a-model'}"], {}, "is neither a run folder"),
        "prompt": ([f"--model={run_dir}", "--prompt=Roméo"], {}, "character 'é' (U+00E9) at position 3"),
        "hub": (["--model=gpt2"], {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-cache")},
                "fetching it from the Hugging Face Hub failed"),
        "setting": ([f"--model={run_dir}", "--temperature=-1", "--top_k=-2"], {},
                    "--temperature=-1.0 must be >= 0 (0 is greedy); --top_k=-2 must be >= 0"),
        "device": ([f"--model={run_dir}", "--device=cuda:99" if torch.cuda.is_available() else "--device=cuda"], {},
                   "cannot be used here"),
    }[case]
    p = sample(*args, **extra)
    assert p.returncode == 2 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpt2book.sample: error: ") and expect in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_the_default_model_is_out_cpu(tmp_path):
    "Run where there is no out/cpu: the error names it and says what it is."
    p = subprocess.run([sys.executable, "-m", "gpt2book.sample"], capture_output=True, text=True, env=env(),
                       cwd=tmp_path, timeout=300)
    assert p.returncode == 2 and "out/cpu: no such folder" in p.stderr


def test_encode_prompt():
    from gpt2book.tokenizer import CharTokenizer
    tok = CharTokenizer("abc\n")
    assert encode_prompt(tok, "") == [tok.eot] and encode_prompt(tok, "ab\n") == [1, 2, 0]
    with pytest.raises(ModelError, match="character 'z'"):
        encode_prompt(tok, "az")
