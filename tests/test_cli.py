"""Every command of the book answers --help (and -h) with exit status 0, and refuses wrong input with one line that
says what to do (exit status 1 or 2), never a traceback."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [["-m", "gpt2book.train"], ["-m", "gpt2book.experiments"], ["-m", "gpt2book.scaling"],
            ["-m", "gpt2book.sample"], ["-m", "gpt2book.eval"], ["data/prepare.py"], ["bench/train.py"],
            ["bench/vs_nanogpt.py"], ["bench/arms_speed.py"], ["bench/extrapolate.py"], ["bench/main_job.py"],
            ["bench/nanogpt_recipe.py"], ["bench/generate_speed.py"], ["bench/tokenize_speed.py"],
            ["bench/reproduce_row.py"], ["bench/cpu_step.py"], ["tools/results_tables.py"]]


def run(*args, cwd=ROOT):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_help(cmd):
    for flag in ("--help", "-h"):
        p = run(*cmd, flag)
        assert p.returncode == 0 and p.stdout.lstrip().startswith("usage:"), (cmd, flag, p.stdout[-500:], p.stderr[-500:])


@pytest.mark.parametrize("cmd, says", [
    (["-m", "gpt2book.train", "--n_layer=x"], "--n_layer=x: expected an int"),
    (["-m", "gpt2book.train", "--learning_rtae=1"], "did you mean --learning_rate"),
    (["-m", "gpt2book.experiments", "run", "ablation", "--arm", "nope", "--lr", "1e-3", "--seed", "1"], "is not an arm of ablation"),
    (["-m", "gpt2book.experiments", "plot", "ablation", "--results", "/nonexistent.csv"], "no results file"),
    (["-m", "gpt2book.scaling", "sweep", "--arch", "nope"], "invalid choice: 'nope'"),
    (["-m", "gpt2book.sample", "--model", "/nonexistent/run"], "no such folder"),
    (["data/prepare.py", "nosuchsource"], "unknown source 'nosuchsource'"),
    (["bench/cpu_step.py", "--steps", "many"], "--steps: invalid int value: 'many'"),
    (["tools/results_tables.py", "--redme"], "unrecognized arguments: --redme"),
], ids=lambda x: x if isinstance(x, str) else " ".join(x))
def test_wrong_input_is_one_clear_line(cmd, says):
    p = run(*cmd)
    assert p.returncode in (1, 2), (p.returncode, p.stderr[-1000:])
    assert says in p.stderr, p.stderr[-1000:]
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
