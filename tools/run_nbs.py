#!/usr/bin/env python
"""Run chapter notebooks top to bottom in a real Jupyter kernel, the way a reader runs them.

`nbdev-test` executes notebooks without a kernel (execnb); this runs each one in a fresh
`python3` ipykernel through nbclient, with the notebook's folder (`nbs/`) as the working directory, so kernel-only
behaviour (display, matplotlib's inline backend, `%magics`) is exercised too.

Every code cell runs, as in a reader's Run All (which knows nothing of nbdev's directives such as
`#| eval: false`): the book has no cell that is only for running by hand. Long runs are commands
(`python -m ...`, `bench/...`) shown in the prose, whose results the chapters read from committed files.

    python tools/run_nbs.py                      # every nbs/NN_*.ipynb
    python tools/run_nbs.py nbs/05_gpt.ipynb     # some of them
    python tools/run_nbs.py --save nbs/03_ffn.ipynb   # write outputs (plots) back, then nbdev-clean

Exits 1 if any notebook fails, naming the notebook and the cell; ends with `N passed, N failed`.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from gpt2book.files import atomic_write
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
_directive_re = re.compile(r"^\s*#\s*\|\s*(.+?)\s*$")


def _first_line(src: str) -> str:
    lines = [l for l in src.splitlines() if l.strip() and not _directive_re.match(l)]
    return (lines[0][:80] if lines else "").strip()


def run_notebook(path: Path, save: bool = False, timeout: int = 600) -> tuple[bool, float, str]:
    "Execute `path` in a fresh kernel. Returns (ok, seconds, error message naming the cell)."
    nb = nbformat.read(path, as_version=4)
    # log_level=ERROR: the kernel's start-up warning about unencrypted local TCP is noise here
    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, record_timing=False,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(path.parent)}})  # cwd: the notebook's folder
    start, err = time.time(), ""
    with client.setup_kernel():
        n_code = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                n_code += 1
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, i)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
                ename = getattr(e, "ename", type(e).__name__)
                evalue = getattr(e, "evalue", str(e).splitlines()[-1] if str(e) else "")
                err = (f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
                       f"code cell {n_code} (cell index {i}, id {cell.get('id', '?')}) "
                       f"`{_first_line(cell.source)}` raised {ename}: {evalue}\n{e}")
                break
    secs = time.time() - start
    if save and not err:
        # atomic write, then the same cleaning as tools/nbsync.sh (keeps outputs, drops counts/metadata)
        with atomic_write(path, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        subprocess.run([str(Path(sys.executable).parent / "nbdev-clean"), "--fname", str(path)], cwd=ROOT, check=True)
    return not err, secs, err


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: nbs/NN_*.ipynb)")
    p.add_argument("--save", action="store_true", help="write outputs back into each notebook, then nbdev-clean it")
    p.add_argument("--timeout", type=int, default=600, help="seconds a cell may run (default 600)")
    a = p.parse_args(argv)
    nbs = [n.resolve() for n in a.notebooks] or sorted(NBS.glob("[0-9][0-9]_*.ipynb"))
    missing = [str(n) for n in nbs if not n.exists()]
    if missing:
        p.error(f"no such notebook: {', '.join(missing)}")
    os.environ.setdefault("WANDB_MODE", "disabled")  # same offline defaults as the tests
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    passed, failed = 0, []
    for nb in nbs:
        ok, secs, err = run_notebook(nb, save=a.save, timeout=a.timeout)
        print(f"{'ok  ' if ok else 'FAIL'} {nb.name} ({secs:.1f} s){' saved' if ok and a.save else ''}", flush=True)
        if ok:
            passed += 1
        else:
            failed.append(nb.name)
            print(err, file=sys.stderr, flush=True)
    if failed:
        print(f"failed notebooks: {', '.join(failed)}", file=sys.stderr)
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
