# %% [markdown]
# # Appendix B: what every command shares
#
# > The few helpers every command of the book needs once: which device to run on, what to say when the user's input is wrong, and what to record about the machine a result came from.

# %%
#| default_exp common

# %% [markdown]
# This module is at the bottom of the package: everything may import it, and it imports nothing of the
# book's, not even torch at import time (the statistics of chapter 10 and the fits of chapter 13 run
# without it).
#
# The book has six commands: `python -m gpt2book.train`, `.sample`, `.eval`, `.experiments`,
# `.scaling_runs` and `python data/prepare.py`, plus the scripts in `bench/`. They agree on three things,
# and each lives here, once:
#
# - **Which device.** `--device=auto` means a CUDA GPU when PyTorch sees one, else the CPU; any
#   other name (`cpu`, `cuda:1`, `mps`) is checked before anything is built, so that a typo fails in
#   a second with a message rather than after the data is loaded.
# - **How a command fails.** A mistake on the command line (an unknown option, a number that is not
#   a number) is a *usage error*: one line, exit status 2, as Unix tools do. A problem found while
#   running (a missing file, a damaged checkpoint, a setting the model cannot take) is a *runtime
#   error*: one line that names the setting and says what to do, exit status 1. Neither prints a
#   traceback: a traceback is for bugs in the book, not for mistakes of its readers.
# - **What machine.** A benchmark or an experiment's result is only meaningful with the machine it
#   ran on: the CPU model, how many cores and threads, the PyTorch version, how busy the machine was.

# %%
#| export
import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import sys
import types
import typing
from pathlib import Path

# %%
import subprocess

import pandas as pd
import torch
from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## Errors a user can fix
#
# `CommandError` is the one exception class a command turns into a one-line message. Each module
# raises it (or a subclass with a telling name, such as the trainer's `TrainError`) for anything
# the user caused; anything else is a bug and keeps its traceback.

# %%
#| export
class CommandError(Exception):
    "A problem the user can fix (bad input, a missing file): a command prints it as one line and exits with status 1."

def one_line(msg) -> str:
    "`msg` with its white space (newlines too) folded into single spaces."
    return " ".join(str(msg).split())

def fail(prog: str, msg, status: int = 1):
    "Print `prog: error: msg` as one line on stderr and exit with `status`."
    print(f"{prog}: error: {one_line(msg)}", file=sys.stderr)
    raise SystemExit(status)

@contextlib.contextmanager
def user_errors(prog: str, *also: type):
    "Turn a CommandError (or one of the exception types `also`) raised inside into one line on stderr and exit status 1."
    try:
        yield
    except (CommandError, *also) as e:
        fail(prog, e)


# %% [markdown]
# argparse already exits with status 2 on a usage error, but first prints the whole usage block.
# `Parser` keeps argparse and prints one line instead, pointing at `--help`:

# %%
#| export
class Parser(argparse.ArgumentParser):
    "argparse, with a usage error printed as one line (`prog: error: ... (see --help)`) and exit status 2."
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


# %%
p = Parser(prog="demo")
p.add_argument("--n", type=int, default=1)
try:
    p.parse_args(["--n=two"])
except SystemExit as e:
    test_eq(e.code, 2)
test_eq(p.parse_args(["--n=3"]).n, 3)


# %% [markdown]
# And a runtime error, as a command raises it: one line on stderr, status 1.

# %%
def demo_main():
    with user_errors("demo", FileNotFoundError):
        raise CommandError("--model=out/cpuu: no such folder;\n  did you mean out/cpu?")

try:
    demo_main()
except SystemExit as e:
    test_eq(e.code, 1)


# %% [markdown]
# Two more pieces every command uses. Counts such as `--workers` must be whole numbers of at least 1:
# `positive_int` is an argparse type that says so in argparse's own one line; `key_value` is the type
# of a `--set NAME=VALUE` that puts a trainer setting on top of a benchmark's runs. And to see what a
# user of a command sees, `run_main` runs its `main` in this process and returns what it printed and
# its exit status; `refusal` checks that a refusal is exactly one line. The chapters use them to show each
# command's refusals, and the tests to check them.

# %%
#| export
def positive_int(text: str) -> int:
    "An argparse type: a whole number of at least 1 (`--workers`, `--threads`, ...)."
    n = int(text)                                   # not a number: argparse's "invalid positive_int value"
    if n < 1: raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n

def key_value(text: str) -> tuple[str, object]:
    "An argparse type: NAME=VALUE (`--set max_steps=20`), the value as JSON where it is a number or a boolean (true, True), else the text."
    key, sep, value = text.partition("=")
    if not sep or not key: raise argparse.ArgumentTypeError(f"{text!r}: write it as NAME=VALUE, e.g. max_steps=20")
    if value.lower() in ("true", "false"): return key, value.lower() == "true"      # Python's spelling as well as JSON's
    try: return key, json.loads(value)
    except json.JSONDecodeError: return key, value

def run_main(main, argv) -> tuple[str, str, int]:
    "(stdout, stderr, exit status) of a command's `main(argv)`, run in this process: what a user of the command sees."
    out, err, status = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
        except SystemExit as e:
            status = 0 if e.code is None else e.code
    return out.getvalue(), err.getvalue(), status

def refusal(main, argv) -> tuple[int, str]:
    "(exit status, the one line on stderr) of a command refusing `argv`; AssertionError if it printed more, or nothing."
    _, err, status = run_main(main, argv)
    lines = err.strip().splitlines()
    assert status != 0 and len(lines) == 1, (status, lines)
    return status, lines[0]


# %%
p = Parser(prog="demo")
p.add_argument("--workers", type=positive_int, default=1)
test_eq(refusal(p.parse_args, ["--workers=0"]), (2, "demo: error: argument --workers: must be at least 1, not 0 (see demo --help)"))
test_eq(run_main(lambda argv: print(p.parse_args(argv).workers), ["--workers=3"]), ("3\n", "", 0))
p.add_argument("--set", type=key_value, action="append", default=[])
test_eq(dict(p.parse_args(["--set=max_steps=20", "--set=pos=rope", "--set=bias=false", "--set=qk_norm=True"]).set),
        {"max_steps": 20, "pos": "rope", "bias": False, "qk_norm": True})
assert "write it as NAME=VALUE" in refusal(p.parse_args, ["--set=max_steps"])[1]


# %% [markdown]
# ## Settings that check themselves
#
# The book's configurations are dataclasses: `GPTConfig` (chapter 5) for the model, `TrainConfig`
# (chapter 9) for a run. Each field is declared with `setting`, which keeps its `--help` text and
# what values it may take in the field's metadata, so that one declaration serves three readers:
# the code (a default), the command line (help text, choices) and the check below, which every
# config runs when it is made. A wrong value is refused when the config is built, before any data
# or folder is touched, with a message that names the setting.

# %%
#| export
def setting(default, help: str, choices=None, low=None, high=None):
    "A dataclass field with its help text, and the values it may take: one of `choices`, or a number in [low, high]."
    live = isinstance(choices, dict)                # a registry: the names chapters add later count too
    meta = {"help": help, "choices": choices if live or choices is None else tuple(choices), "low": low, "high": high}
    return dataclasses.field(default=default, metadata=meta)

class SettingError(CommandError, ValueError):
    "A setting with a value it cannot take (also a ValueError, for code that catches those)."


# %%
#| export
def check_settings(obj) -> None:
    "Check every field of dataclass `obj` against its type and its `setting` metadata; SettingError naming the first bad one."
    for f in dataclasses.fields(obj):
        v, m, typ = getattr(obj, f.name), f.metadata, f.type if isinstance(f.type, type) else None
        if typ in (int, float, bool, str) and not (isinstance(v, typ) or (typ is float and isinstance(v, int))) \
                or (typ in (int, float) and isinstance(v, bool)):
            raise SettingError(f"{f.name}={v!r} must be {'an' if typ is int else 'a'} {typ.__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise SettingError(f"{f.name}={v!r} must be a finite number")
        if m.get("choices") is not None and v not in m["choices"]:
            raise SettingError(f"{f.name}={v!r} is unknown; use one of {', '.join(map(str, m['choices']))}")
        if m.get("low") is not None and v < m["low"]:
            raise SettingError(f"{f.name}={v!r} must be at least {m['low']}")
        if m.get("high") is not None and v > m["high"]:
            raise SettingError(f"{f.name}={v!r} must be at most {m['high']}")


# %% [markdown]
# A two-field example: a good config is built; a bad one fails when it is made, naming the field.

# %%
@dataclasses.dataclass
class Demo:
    n_layer: int = setting(4, "transformer blocks", low=1)
    norm: str = setting("layernorm", "the norm", choices=("layernorm", "rmsnorm"))
    lr: float = setting(1e-3, "peak learning rate", low=0.0)
    def __post_init__(self): check_settings(self)

Demo(n_layer=2)
test_fail(lambda: Demo(n_layer=0), contains="n_layer=0 must be at least 1")
test_fail(lambda: Demo(norm="batchnorm"), contains="use one of layernorm, rmsnorm")
test_fail(lambda: Demo(lr=float("nan")), contains="finite")
test_fail(lambda: Demo(n_layer=2.5), contains="must be an int")
test_fail(lambda: Demo(n_layer=True), contains="must be an int")
assert isinstance(SettingError("x"), ValueError)

# %% [markdown]
# ### Settings that later chapters add
#
# A later chapter that teaches a variant brings its own settings: rotary positions (chapter 11) a
# `rope_theta`, a mixture of experts (chapter 12) the number of experts, Muon (chapter 17) its own
# learning rate. They do not belong in chapter 5's `GPTConfig`, which stays GPT-2's. So a chapter
# writes its settings as a small dataclass of its own and appends it to a list of *extensions*
# kept next to the base config; `extended` makes the one class that holds the base's fields and
# every extension's, checked as the base checks itself, plus each extension's own `check`. The class
# is made once per combination, so two configs made from the same extensions compare equal. An
# extension registered twice (a chapter's notebook defines it, then imports its own module, which
# registers it again) counts once: `distinct` keeps one per name, the trainer's hooks too.
#
# A `choices` given as a dict (a registry of kinds, such as chapter 2's norms) is kept live:
# a kind a later chapter registers becomes a valid choice without the field being declared again.

# %%
#| export
_EXTENDED = {}

def distinct(extensions) -> tuple:
    "Each extension once, by name, in the order first registered, the last registered class winning (a chapter's notebook and its module may both register one)."
    return tuple({e.__qualname__: e for e in extensions}.values())

def extended(base: type, extensions) -> type:
    "The dataclass with `base`'s fields then each extension's (chapters' settings), checked by `base` and each `check`."
    key = (base, distinct(extensions))
    if key not in _EXTENDED:
        if not extensions: _EXTENDED[key] = base
        else:
            def __post_init__(self):
                base.__post_init__(self)
                for ext in key[1]:
                    if hasattr(ext, "check"): ext.check(self)
            cls = dataclasses.dataclass(type(base.__name__, (*reversed(key[1]), base),
                                            {"__post_init__": __post_init__, "__doc__": base.__doc__,
                                             "__module__": base.__module__, "__qualname__": base.__qualname__}))
            _EXTENDED[key] = cls
    return _EXTENDED[key]


# %% [markdown]
# A base with one field and an extension with another: the made class has both, in that order, and
# checks both; the same extensions give the same class.

# %%
@dataclasses.dataclass
class Wider:
    "An extension: one more setting and a check of its own."
    width: int = setting(2, "a later chapter's setting", low=1)
    def check(self):
        if self.width > 10 * self.n_layer: raise SettingError(f"width={self.width} is too wide for {self.n_layer} layers")

Big = extended(Demo, [Wider])
test_eq([f.name for f in dataclasses.fields(Big)], ["n_layer", "norm", "lr", "width"])
test_eq(Big(width=3).width, 3)
assert Big is extended(Demo, [Wider]) and Big(width=3) == extended(Demo, [Wider])(width=3)
assert extended(Demo, []) is Demo and isinstance(Big(), Demo)
assert extended(Demo, [Wider, Wider]) is Big                                # registered twice: once
test_fail(lambda: Big(n_layer=0), contains="n_layer=0 must be at least 1")   # the base's checks
test_fail(lambda: Big(width=0), contains="width=0 must be at least 1")       # the extension's fields
test_fail(lambda: Big(width=11, n_layer=1), contains="too wide")            # and its own check
kinds = {"a": 1}
@dataclasses.dataclass
class Kinds:
    kind: str = setting("a", "a registry's kind", choices=kinds)
    def __post_init__(self): check_settings(self)
test_fail(lambda: Kinds("b"), contains="use one of a")
kinds["b"] = 2                                                               # a later chapter registers "b"
test_eq(Kinds("b").kind, "b")

# %% [markdown]
# ### A command line from settings
#
# Every command of the book reads its options from a settings dataclass: one `--name=value` option
# per field, in the field's own spelling (`--snake_case`), with the field's type, choices and help.
# A bool may be given bare (`--resume` is `--resume=true`); a tuple of steps as `400,800`; a field
# typed `tuple[str, ...]` (files, say) takes several values (`--input a.txt b.txt`); a field with no
# default (`setting(dataclasses.MISSING, ...)`, in a `kw_only` dataclass) is a required option.
# `X | None` is read as `X`. Options left out are not set (`argparse.SUPPRESS`), so a command sees
# exactly what the user gave and the dataclass supplies the rest.

# %%
#| export
_TRUE, _FALSE = {"true", "1", "yes", "y", "on"}, {"false", "0", "no", "n", "off"}

def parse_bool(text: str) -> bool:
    "An argparse type: true/false, 1/0, yes/no, on/off."
    if text.lower() in _TRUE: return True
    if text.lower() in _FALSE: return False
    raise ValueError(text)
parse_bool.__name__ = "bool"          # argparse names the type in its message: "invalid bool value: 'maybe'"

def parse_steps(text: str) -> tuple:
    "An argparse type: whole numbers separated by commas (400,800)."
    return tuple(int(s) for s in text.split(",") if s.strip())
parse_steps.__name__ = "steps"

def option_type(cls, f) -> tuple[type, type | None]:
    "(type, type of each value or None) of field `f` of dataclass `cls`: `X | None` is X; `tuple[str, ...]` is (tuple, str)."
    try: hint = typing.get_type_hints(cls).get(f.name, f.type)      # also resolves `from __future__ import annotations`
    except (NameError, TypeError): hint = f.type
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1: hint = args[0]
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[1:] == (Ellipsis,):
        return tuple, typing.get_args(hint)[0]
    return (hint if isinstance(hint, type) else type(f.default)), None

def add_settings(group, cls, defaults: dict | None = None, skip=()) -> None:
    "One `--name=value` option of `group` (a parser or an argument group) per field of dataclass `cls`, from its `setting`."
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.metadata.get("help"): continue
        typ, each = option_type(cls, f)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        kw = dict(type=parse_bool, nargs="?", const=True) if typ is bool else \
            dict(type=each, nargs="+" if required else "*", metavar=f.name.upper()) if each else \
            dict(type=parse_steps if typ is tuple else typ, metavar="STEPS" if typ is tuple else typ.__name__.upper())
        if typ is bool: kw["metavar"] = "BOOL"
        if f.metadata.get("choices") is not None: kw["choices"] = f.metadata["choices"]
        default = (defaults or {}).get(f.name, f.default)
        shown = " ".join(map(str, default)) if each and default is not dataclasses.MISSING else \
            repr(default) if isinstance(default, str) and (default.strip() != default or not default) else default
        group.add_argument(f"--{f.name}", default=argparse.SUPPRESS, required=required,
                           help=f.metadata["help"] + ("" if required else f" (default: {shown})"), **kw)


# %%
cli = Parser(prog="demo")
add_settings(cli, Big, defaults={"n_layer": 6})
test_eq(vars(cli.parse_args(["--width=4", "--norm=rmsnorm"])), {"width": 4, "norm": "rmsnorm"})
assert "(default: 6)" in cli.format_help() and "--lr" in cli.format_help()
test_eq(run_main(cli.parse_args, ["--norm=batchnorm"])[2], 2)
test_eq(parse_bool("on"), True); test_eq(parse_steps("400, 800"), (400, 800))


# %% [markdown]
# A required option and one that takes several values: the settings of a command that reads files.

# %%
@dataclasses.dataclass(kw_only=True)
class Files:
    files: tuple[str, ...] = setting(dataclasses.MISSING, "text files to read")
    out: str | None = setting(None, "where to write (default: print)")
    def __post_init__(self): check_settings(self)

cli = Parser(prog="demo")
add_settings(cli, Files)
test_eq(vars(cli.parse_args(["--files", "a.txt", "b.txt", "--out=x"])), {"files": ["a.txt", "b.txt"], "out": "x"})
test_eq(refusal(cli.parse_args, ["--out=x"]), (2, "demo: error: the following arguments are required: --files (see demo --help)"))
test_eq(option_type(Files, dataclasses.fields(Files)[1]), (str, None))
assert "(default: None)" in cli.format_help()


# %% [markdown]
# Every command but the trainer (whose parser has presets) is made the same way from its settings:
# one dataclass, or one per sub-command (`{name: (dataclass, help)}`). `parse_settings` reads the
# command line and builds the dataclass, so everything its checks know (a number out of range, a
# file that is not there) is a usage error: one line, exit status 2, before anything is read or
# written. What only running can find (a damaged file, no network) stays a runtime error, exit 1.

# %%
#| export
def settings_parser(prog: str, settings, description: str, epilog: str = "") -> Parser:
    "The Parser of a command: one option per field of dataclass `settings`, or sub-commands {name: (dataclass, help)}."
    p = Parser(prog=prog, description=description, epilog=epilog, allow_abbrev=False,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    if not isinstance(settings, dict):
        add_settings(p, settings)
        return p
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="{" + ",".join(settings) + "}")
    for name, (cls, what) in settings.items():
        add_settings(sub.add_parser(name, help=what, description=what, allow_abbrev=False), cls)
    return p

def parse_settings(p: Parser, settings, argv=None):
    "The settings that `argv` gives (with sub-commands: (name, settings)); a SettingError is a usage error (exit 2)."
    a = vars(p.parse_args(None if argv is None else [str(x) for x in argv]))
    name = a.pop("command", None)
    cls = settings[name][0] if isinstance(settings, dict) else settings
    try:
        cfg = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in a.items()})
    except SettingError as e:
        p.error(f"{name + ': ' if name else ''}{e}")
    return (name, cfg) if isinstance(settings, dict) else cfg


# %%
@dataclasses.dataclass(kw_only=True)
class Count:
    files: tuple[str, ...] = setting(dataclasses.MISSING, "text files to count")
    def __post_init__(self):
        check_settings(self)
        if missing := [f for f in self.files if not os.path.isfile(f)]:
            raise SettingError(f"--files: {missing[0]}: no such file; pass text files")

commands = {"count": (Count, "count the lines of text files"), "demo": (Demo, "a demo")}
cli = settings_parser("demo", commands, "A demo command.")
test_eq(parse_settings(cli, commands, ["count", "--files", os.__file__]),
        ("count", Count(files=(os.__file__,))))
test_eq(refusal(lambda a: parse_settings(cli, commands, a), ["count", "--files", "/no/such.txt"]),
        (2, "demo: error: count: --files: /no/such.txt: no such file; pass text files (see demo --help)"))
test_eq(refusal(lambda a: parse_settings(cli, commands, a), ["demo", "--n_layer=0"])[1],
        "demo: error: demo: n_layer=0 must be at least 1 (see demo --help)")
test_eq(parse_settings(cli, commands, ["demo", "--n_layer=2"])[1].n_layer, 2)


# %% [markdown]
# Result files the chapters read (`nbs/data/...`, `images/...`) belong in the book's repository, not
# in whatever folder a command was started from. `book_path` finds them from where this package
# lives (an editable install, as CONTRIBUTING sets it up, is the checkout itself).

# %%
#| export
def book_path(relative="") -> Path:
    "`relative` (such as nbs/data/vocab.csv) in the book's repository, the folder above this package's; CommandError outside one."
    import gpt2book
    root = Path(gpt2book.__file__).resolve().parents[1]
    if not (root / "nbs").is_dir():
        raise CommandError(f"{root} is not the book's repository (gpt2book is installed, not checked out): pass the "
                           f"folder to write into explicitly")
    return root / relative


# %%
assert (book_path("nbs") / "91_common.ipynb").is_file() and book_path().is_absolute()


# %% [markdown]
# ## Tables
#
# Results reach the README and the chapters as Markdown tables. `markdown_table` writes one from
# rows (dicts, sequences, or a pandas DataFrame), so that no module writes the `|---|` lines by
# hand. A cell is written as given: format numbers before (`f"{x:.3f}"`) where the digits matter.
# A `|` inside a cell is escaped and a line break folded, so that a cell never breaks the table.
# Columns of numbers are aligned right unless `align` says otherwise.

# %%
#| export
def _cell(v) -> str:
    return "" if v is None else one_line(v).replace("|", "\\|")

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or type(v).__module__ == "numpy" and hasattr(v, "dtype")

def markdown_table(rows, columns=None, align: str | None = None) -> str:
    """A Markdown table of `rows`: dicts, sequences or a pandas DataFrame. `columns`: {key: header} (dicts, DataFrame;
    default their keys) or [header] (sequences). `align`: a letter a column, l, r or c (default: r for numbers, else l)."""
    if hasattr(rows, "columns") and hasattr(rows, "to_dict"):          # a pandas DataFrame, without importing pandas
        rows, columns = rows.to_dict("records"), columns or {k: k for k in rows.columns}
    rows = list(rows)
    if rows and isinstance(rows[0], dict):
        columns = columns or {k: k for r in rows for k in r}
        keys, heads = (list(columns), list(columns.values())) if isinstance(columns, dict) else (list(columns),) * 2
        cells = [[r.get(k) for k in keys] for r in rows]
    else:
        if columns is None: raise ValueError("markdown_table: rows that are not dicts need `columns`, their headers")
        heads, cells = list(columns.values() if isinstance(columns, dict) else columns), [list(r) for r in rows]
    if bad := [r for r in cells if len(r) != len(heads)]:
        raise ValueError(f"markdown_table: a row has {len(bad[0])} cells for {len(heads)} columns: {bad[0]!r:.100}")
    if align is None:
        align = "".join("r" if cells and all(_is_number(r[j]) or r[j] is None for r in cells) else "l" for j in range(len(heads)))
    if len(align) != len(heads) or set(align) - set("lrc"):
        raise ValueError(f"markdown_table: align={align!r} needs one of l, r, c for each of the {len(heads)} columns")
    rule = {"l": "---", "r": "---:", "c": ":---:"}
    lines = [heads, [rule[a] for a in align], *cells]
    return "\n".join("| " + " | ".join(map(_cell, l)) + " |" if i != 1 else "|" + "|".join(l) + "|" for i, l in enumerate(lines))


# %% [markdown]
# From dicts, with headers and the default alignment; from sequences; a pipe in a cell; and a
# DataFrame gives the same table as its rows.

# %%
rows = [{"arm": "gpt2", "vocab": 50257, "bpb": "2.85"}, {"arm": "char | bytes", "vocab": 85, "bpb": "2.76"}]
print(markdown_table(rows, {"arm": "arm", "vocab": "vocabulary", "bpb": "bits per byte"}))
test_eq(markdown_table(rows).splitlines()[:2], ["| arm | vocab | bpb |", "|---|---:|---|"])
test_eq(markdown_table(rows).splitlines()[3], "| char \\| bytes | 85 | 2.76 |")
test_eq(markdown_table([(1, "a")], ["n", "x"], align="cl"), "| n | x |\n|:---:|---|\n| 1 | a |")
test_fail(lambda: markdown_table([(1, 2, 3)], ["n", "x"]), contains="3 cells for 2 columns")
test_fail(lambda: markdown_table(rows, align="lr"), contains="for each of the 3 columns")
test_eq(markdown_table(pd.DataFrame(rows)), markdown_table(rows))


# %% [markdown]
# ## Which device
#
# A device name is checked by asking PyTorch for a tensor on it: that catches `cuda` on a machine
# without a GPU, `cuda:3` on a machine with two, `mps` off a Mac and names that mean nothing.

# %%
#| export
def resolve_device(name: str = "auto") -> str:
    "`auto` -> 'cuda' when PyTorch sees a GPU, else 'cpu'; any other name is checked (CommandError if unusable here)."
    import torch           # here, not at the top: the statistics and fits import this module and need no torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.empty(0, device=name)
    except (RuntimeError, AssertionError, ValueError) as e:   # no such device, or PyTorch built without it
        raise CommandError(f"--device={name} cannot be used here ({one_line(e)[:120]}); "
                           f"use auto, cpu, cuda, cuda:N or mps") from None
    return name


# %%
test_eq(resolve_device("cpu"), "cpu")
assert resolve_device("auto") in ("cpu", "cuda")
test_fail(lambda: resolve_device("gpu"), contains="--device=gpu")
if not torch.cuda.is_available():
    test_fail(lambda: resolve_device("cuda:0"), contains="cannot be used here")


# %% [markdown]
# ## What machine
#
# Every result file of the book records this dictionary next to its numbers. The CPU model and the
# thread count matter more than one would think: chapter 13 found that the same command, the same
# PyTorch and the same seed give bit-for-bit the same losses only on the same CPU model with the same
# number of threads; on another CPU the runs drift apart after the first evaluation (different SIMD
# paths sum in a different order). A virtual machine may name its CPU no more precisely than "AMD
# EPYC", and two machines of that name can differ by a generation: one with AVX-512 and bfloat16
# instructions, one with AVX2 only, where a bfloat16 matrix product is thirty times slower (chapter
# 17). So with `capability=True` the name carries the widest vector instructions PyTorch uses there.

# %%
#| export
def cpu_name(capability: bool = False) -> str:
    "The CPU's model name (Linux's /proc/cpuinfo), or what the platform module knows; with `capability`, PyTorch's SIMD level too."
    try:
        with open("/proc/cpuinfo") as f:
            name = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name} ({cpu_capability()})" if capability else name

def cpu_capability() -> str:
    "PyTorch's SIMD level on this CPU (AVX2, AVX512, ...), with ', BF16' where it multiplies bfloat16 in hardware."
    import torch
    return torch.backends.cpu.get_cpu_capability() + (", BF16" if cpu_has_bf16() else "")

def cpu_has_bf16() -> bool:
    "Whether this CPU multiplies bfloat16 matrices in hardware (x86's AVX-512 BF16 or AMX; PyTorch's own checks)."
    import torch
    return any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))

def machine_info() -> dict:
    "What a result file records about the machine: CPU, cores, torch threads, versions, load, GPU."
    import torch
    info = {"cpu": cpu_name(), "cpu_capability": cpu_capability(), "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}
    if hasattr(os, "getloadavg"):
        info["loadavg_1min"] = round(os.getloadavg()[0], 2)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


# %%
info = machine_info()
info

# %%
assert info["cpu_count"] >= 1 and info["threads"] >= 1 and info["torch"] == torch.__version__
test_eq(cpu_name(capability=True), f"{cpu_name()} ({info['cpu_capability']})")
assert info["cpu_capability"].startswith(torch.backends.cpu.get_cpu_capability())
