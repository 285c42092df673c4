"""Every command of the book answers --help (and -h) with exit status 0, and refuses wrong input with one line that
says what to do (exit status 2 for a usage error, 1 for a problem found while running), never a traceback.
The commands run in this process (their `main`, or the script run as `__main__`): a subprocess adds nothing here."""
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["gpt2book.train", "gpt2book.tokenizer", "gpt2book.experiments", "gpt2book.scaling_runs", "gpt2book.sample", "gpt2book.eval",
           "gpt2book.vocab"]
SCRIPTS = ["data/prepare.py", "bench/train.py", "bench/vs_nanogpt.py", "bench/arms_speed.py", "bench/extrapolate.py",
           "bench/main_job.py", "bench/nanogpt_recipe.py", "bench/generate_speed.py", "bench/tokenize_speed.py",
           "bench/reproduce_row.py", "bench/cpu_step.py", "bench/bpe_train.py", "bench/bitwise.py", "bench/bitwise_model.py", "bench/wikitext_harness.py", "bench/aux_loss.py", "tools/results_tables.py", "tools/check_site.py",
           "tools/run_nbs.py", "tools/check_pairs.py"]


def command(cmd: str, args: list[str], monkeypatch) -> int:
    "Run `python -m cmd args` or `python cmd args` in this process; the exit status."
    monkeypatch.chdir(ROOT)
    if cmd.endswith(".py"):
        monkeypatch.setattr(sys, "argv", [cmd, *args])
        monkeypatch.syspath_prepend(str(ROOT / Path(cmd).parent))
        run = lambda: runpy.run_path(str(ROOT / cmd), run_name="__main__")
    else:
        module = __import__(cmd, fromlist=["main"])
        run = lambda: module.main(args)
    try:
        run()
    except SystemExit as e:
        return 0 if e.code is None else e.code
    return 0


@pytest.mark.parametrize("cmd", MODULES + SCRIPTS)
def test_help(cmd, monkeypatch, capsys):
    for flag in ("--help", "-h"):
        assert command(cmd, [flag], monkeypatch) == 0, (cmd, flag)
        out = capsys.readouterr().out
        assert out.lstrip().startswith("usage:"), (cmd, flag, out[:300])


@pytest.mark.parametrize("cmd, args, status, says", [
    ("gpt2book.train", ["--n_layer=x"], 2, "argument --n_layer: invalid int value: 'x'"),
    ("gpt2book.train", ["--learning_rtae=1"], 2, "did you mean --learning_rate"),
    ("gpt2book.train", ["--ffn=foo"], 2, "invalid choice: 'foo'"),
    ("gpt2book.train", ["--dropout=nan"], 2, "dropout=nan must be a finite number"),
    ("gpt2book.train", ["--init_from=./no/such/run"], 2, "no such folder"),
    ("data/prepare.py", ["nosuchsource"], 2, "unknown source 'nosuchsource'"),
    ("data/prepare.py", ["shakespeare_char", "--tokenizer", "{tmp}/no/such/tokenizer/"], 2,
     "--tokenizer={tmp}/no/such/tokenizer/: no such folder"),
    ("data/prepare.py", ["shakespeare_char", "--tokenizer", "{tmp}/text.txt"], 1, "is not a BPE tokenizer"),
    ("data/prepare.py", ["{tmp}/no/such.txt", "--out", "{tmp}/data/x"], 2, "unknown source '{tmp}/no/such.txt'"),
    ("gpt2book.tokenizer", ["train", "--input", "/no/such.txt", "--vocab_size", "300", "--out", "{tmp}/x"], 2,
     "--input /no/such.txt: no such file or folder"),
    ("gpt2book.tokenizer", ["train", "--input", "{tmp}/text.txt", "--vocab_size", "-3", "--out", "{tmp}/x"], 2,
     "vocab_size=-3 must be at least 1"),
    ("gpt2book.tokenizer", ["train", "--input", "{tmp}/text.txt", "--vocab_size", "300"], 2,
     "the following arguments are required: --out"),
    ("gpt2book.tokenizer", ["train", "--input", "{tmp}/binary.txt", "--vocab_size", "300", "--out", "{tmp}/x"], 1,
     "binary.txt is not UTF-8 text"),
    ("gpt2book.sample", ["--model={tmp}/no/such/run"], 2, "no/such/run: no such folder"),
    ("gpt2book.sample", ["--model={tmp}/text.txt"], 2, "text.txt is a file"),
    ("gpt2book.sample", ["--top_p=2"], 2, "top_p=2.0 must be at most 1"),
    ("gpt2book.sample", ["--model={tmp}", "--max_new_tokens=5"], 1, "holds no model"),
    ("gpt2book.eval", ["hellaswag"], 2, "the following arguments are required: --model"),
    ("gpt2book.eval", ["hellaswag", "--model={tmp}", "--data={tmp}/no.jsonl"], 2, "--data={tmp}/no.jsonl: no such file"),
    ("gpt2book.eval", ["text", "--model={tmp}", "--files", "{tmp}/no.txt"], 2, "--files: {tmp}/no.txt: no such file"),
    ("gpt2book.eval", ["wikitext", "--model={tmp}", "--split=train"], 2, "invalid choice: 'train'"),
    ("gpt2book.eval", ["text", "--model={tmp}", "--files", "{tmp}/text.txt"], 1, "holds no model"),
    ("gpt2book.vocab", ["collect", "--out={tmp}/no/runs"], 2, "--out={tmp}/no/runs: no such folder"),
    ("gpt2book.vocab", ["run", "--workers=0"], 2, "workers=0 must be at least 1"),
    ("data/prepare.py", ["shakespeare_char", "--shard_tokens", "0"], 2, "shard_tokens=0 must be at least 1"),
    ("data/prepare.py", ["shakespeare_char", "--shard-tokens", "5"], 2, "unrecognized arguments: --shard-tokens"),
    ("gpt2book.experiments", ["sweep"], 2, "the following arguments are required: --experiment"),
    ("gpt2book.experiments", ["sweep", "ablation"], 2, "the following arguments are required: --experiment"),
    ("gpt2book.experiments", ["run", "--experiment=ablation", "--arm=nope", "--lr=1e-3", "--seed=1"], 2,
     "run: --arm: 'nope' is not an arm of ablation"),
    ("gpt2book.experiments", ["sweep", "--experiment=ablation", "--arms", "gpt2", "nope"], 2,
     "--arms: 'nope' not an arm of ablation"),
    ("gpt2book.experiments", ["plot", "--experiment=ablation", "--results={tmp}/no.csv"], 2,
     "--results={tmp}/no.csv: no such file"),
    ("gpt2book.experiments", ["plot", "--experiment=ablation", "--plot={tmp}/no/x.png"], 2, "no such folder {tmp}/no"),
    ("gpt2book.experiments", ["plot", "--experiment=ablation", "--results={tmp}/text.txt"], 1,
     "holds no runs of the baseline arm gpt2"),
    ("gpt2book.scaling_runs", ["collect", "--out={tmp}/no/runs"], 2, "--out={tmp}/no/runs: no such folder"),
    ("gpt2book.scaling_runs", ["collect", "--out={tmp}", "--data_dir={tmp}"], 2, "--data_dir={tmp}: no prepared data"),
    ("gpt2book.scaling_runs", ["fit", "--results_root={tmp}/no"], 2, "--results_root={tmp}/no: no such folder"),
    ("gpt2book.scaling_runs", ["fit", "--results_root={tmp}"], 1, "no results file {tmp}/nbs/data/scaling.csv"),
    ("gpt2book.scaling_runs", ["sweep", "--workers=0"], 2, "workers=0 must be at least 1"),
    ("bench/cpu_step.py", ["--steps", "many"], 2, "invalid int value: 'many'"),
    ("bench/bitwise.py", ["--only=gpt3"], 2, "--only: unknown case 'gpt3'"),
    ("bench/bitwise.py", ["--compare", "{tmp}/a.json", "{tmp}/b.json"], 2, "--compare: no such file {tmp}/a.json"),
    ("bench/bitwise_model.py", ["--before={tmp}"], 2, "not a checkout of the book"),
], ids=lambda x: x if isinstance(x, str) else " ".join(map(str, x)) if isinstance(x, list) else str(x))
def test_wrong_input_is_one_clear_line(cmd, args, status, says, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("GPT2BOOK_DATA", str(tmp_path / "data"))      # nothing may be prepared or written
    (tmp_path / "text.txt").write_text("some text")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)))
    args, says = [a.replace("{tmp}", str(tmp_path)) for a in args], says.replace("{tmp}", str(tmp_path))
    assert command(cmd, args, monkeypatch) == status, capsys.readouterr().err[-1000:]
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], err[-1000:]
    assert not (tmp_path / "data").exists()
