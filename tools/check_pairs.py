#!/usr/bin/env python
"""Check that every notebook in nbs/ and its jupytext script in nbs_py/ say the same thing.

Each `nbs/NAME.ipynb` must have `nbs_py/NAME.py` and vice versa, and the script must equal
jupytext's percent-format rendering of the notebook under the project's `jupytext.toml`.
Fix a pair with `tools/nbsync.sh nbs_py/NAME.py` (the side edited last wins) and commit both.
Exit 1 naming every file that is missing or out of sync.
"""
import difflib
import sys
from pathlib import Path

import jupytext
from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

ROOT = Path(__file__).resolve().parents[1]
NBS, SCRIPTS = ROOT / "nbs", ROOT / "nbs_py"


def rendered(nb_path: Path, config) -> str:
    "The percent script jupytext writes for `nb_path` under `config`."
    return jupytext.writes(jupytext.read(nb_path), fmt="py:percent", config=config)


def check(diff_lines: int = 12) -> list[str]:
    "Problems found, one message each (empty when every pair is in sync)."
    config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(NBS)))
    nbs = {p.stem: p for p in NBS.glob("*.ipynb")}
    scripts = {p.stem: p for p in SCRIPTS.glob("*.py")}
    problems = []
    for name in sorted(nbs.keys() - scripts.keys()):
        problems.append(f"nbs/{name}.ipynb has no script nbs_py/{name}.py: run tools/nbsync.sh nbs/{name}.ipynb")
    for name in sorted(scripts.keys() - nbs.keys()):
        problems.append(f"nbs_py/{name}.py has no notebook nbs/{name}.ipynb: run tools/nbsync.sh nbs_py/{name}.py")
    for name in sorted(nbs.keys() & scripts.keys()):
        want, have = rendered(nbs[name], config), scripts[name].read_text(encoding="utf-8")
        if want != have:
            diff = list(difflib.unified_diff(have.splitlines(), want.splitlines(), f"nbs_py/{name}.py",
                                             f"nbs/{name}.ipynb (as a script)", lineterm="", n=1))
            more = f"\n    ... {len(diff) - diff_lines} more diff lines" if len(diff) > diff_lines else ""
            problems.append(f"nbs/{name}.ipynb and nbs_py/{name}.py are out of sync: run tools/nbsync.sh nbs_py/{name}.py "
                            f"(the side edited last wins), then commit both\n    "
                            + "\n    ".join(diff[:diff_lines]) + more)
    return problems


def main(argv=None) -> int:
    import argparse
    argparse.ArgumentParser(prog="python tools/check_pairs.py", description=__doc__.split("\n\n")[0]).parse_args(argv)
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    n = len(list(NBS.glob("*.ipynb")))
    if problems:
        print(f"check_pairs: {len(problems)} problem(s) in {n} notebook/script pairs", file=sys.stderr)
        return 1
    print(f"check_pairs: {n} notebooks and their nbs_py/ scripts are in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
