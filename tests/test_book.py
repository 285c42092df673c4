"""The book as a whole: README and front page agree, chapter lists are true, the package is what
the notebooks export, notebooks are clean and paired with their scripts, the site source checks."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import check_pairs  # noqa: E402
import check_site  # noqa: E402

NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if re.match(r"\d\d[a-z]?_", p.name))  # 07_x, or parts 07a_x, 07b_y


def quick_start(markdown: str) -> list[str]:
    "The commands in the ```bash blocks of the `## Quick start` section of `markdown`."
    m = re.search(r"^## Quick start\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert m, "no '## Quick start' section"
    return [c.strip() for c in re.findall(r"```bash\n(.*?)```", m.group(1), re.S)]


def notebook_markdown(nb: Path) -> str:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_quick_start_is_two_commands_and_the_same_in_readme_and_front_page():
    readme = quick_start((ROOT / "README.md").read_text(encoding="utf-8"))
    index = quick_start(notebook_markdown(ROOT / "nbs" / "00_index.ipynb"))
    assert len(readme) == 2 and all("\n" not in c for c in readme), readme
    assert readme == index, f"README.md says {readme}\nnbs/00_index.ipynb says {index}"
    setup, test = readme
    assert setup.startswith("python3 -m venv .venv") and "pip install torch==2.13.0 && pip install -e \".[dev]\"" in setup
    assert setup.endswith("python -m gpt2book.train")
    assert test == ". .venv/bin/activate && nbdev-test && pytest"


@pytest.mark.parametrize("doc", ["README.md", "CONTRIBUTING.md", "nbs/00_index.ipynb"])
def test_every_chapter_listed_exists_and_every_chapter_is_listed(doc):
    path = ROOT / doc
    text = notebook_markdown(path) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8")
    listed = set(re.findall(r"\b(\d\d[a-z]?_[a-z0-9_]+)\b", text))
    have = {p.stem for p in NOTEBOOKS}
    assert listed, f"{doc} lists no chapters"
    assert not listed - have, f"{doc} lists chapters that do not exist in nbs/: {sorted(listed - have)}"
    assert not (have - listed - {"00_index"}), f"{doc} does not list {sorted(have - listed - {'00_index'})}"


def test_chapter_numbers_are_unique():
    nums = [p.name.split("_")[0] for p in NOTEBOOKS]   # 07a and 07b: two parts of chapter 7
    assert len(nums) == len(set(nums)), f"two chapters share a number: {[p.name for p in NOTEBOOKS]}"


def test_every_chapter_has_title_and_summary():
    for nb in NOTEBOOKS:
        first = notebook_markdown(nb).lstrip().splitlines()
        assert first and first[0].startswith("# "), f"{nb.name}: the first markdown cell must start with '# Title'"
        rest = [l for l in first[1:] if l.strip()]
        assert rest and rest[0].startswith("> "), f"{nb.name}: '# Title' must be followed by a '> one-sentence summary' line"


def test_notebooks_and_scripts_are_paired():
    problems = check_pairs.check()
    assert not problems, "\n".join(problems)


def test_notebooks_are_clean(tmp_path):
    "nbdev-clean changes nothing (no execution counts, no stray metadata)."
    for nb in NOTEBOOKS:
        shutil.copy(nb, tmp_path / nb.name)
    subprocess.run([check_site.tool("nbdev-clean"), "--fname", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    dirty = [nb.name for nb in NOTEBOOKS if (tmp_path / nb.name).read_bytes() != nb.read_bytes()]
    assert not dirty, f"not clean: {dirty}; run tools/nbsync.sh (or nbdev-clean) and commit"


def test_package_is_what_nbdev_export_makes(tmp_path):
    "gpt2book/ is exactly what nbdev-export writes from the notebooks (nobody edited it by hand)."
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "nbs", tmp_path / "nbs", ignore=shutil.ignore_patterns("_*", ".*", "data"))
    lib = tmp_path / "gpt2book"
    lib.mkdir()
    shutil.copy(ROOT / "gpt2book" / "__init__.py", lib)
    r = subprocess.run([check_site.tool("nbdev-export")], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    made = {p.name: p.read_text(encoding="utf-8") for p in lib.glob("*.py")}
    have = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "gpt2book").glob("*.py")}
    assert made.keys() == have.keys(), f"nbdev-export makes {sorted(made)}, gpt2book/ holds {sorted(have)}"
    differ = [n for n in made if made[n] != have[n]]
    assert not differ, f"gpt2book/{differ} differ from nbdev-export's output: run nbdev-export and commit"


def test_site_references_resolve():
    "Every image a chapter or the README shows, and every chapter a chapter links to, exists."
    problems = check_site.reference_problems()
    assert not problems, "\n".join(problems)


def _code_cells(nb: Path):
    return ["".join(c["source"]) for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def test_a_chapter_runs_in_a_real_jupyter_kernel():
    """nbdev-test runs the notebooks without a kernel (execnb); a reader runs them in Jupyter. One chapter in a real
    ipykernel (through nbclient) shows the kernel machinery works; the next test shows that Run All runs the cells
    nbdev-test runs, so the two agree on every chapter."""
    import run_nbs
    ok, secs, err = run_nbs.run_notebook(ROOT / "nbs" / "00_index.ipynb")
    assert ok, err


def test_every_cell_runs_in_a_readers_kernel():
    """A reader's Run All ignores nbdev's directives: no cell may be for running by hand (`#| slow`), and the only
    `#| eval: false` cells are the command-line guards, which do nothing in a Jupyter kernel."""
    for nb in NOTEBOOKS:
        for src in _code_cells(nb):
            assert "#| slow" not in src, f"{nb.name} has a `#| slow` cell: make it a command in the prose"
            if "#| eval: false" in src:
                body = [l for l in src.splitlines() if l.strip() and not l.startswith("#|")]
                assert body[0].startswith('if __name__ == "__main__" and "ipykernel" not in sys.modules'), (nb.name, src)


def test_chapters_need_no_shared_folder():
    "Chapters read data through the book's own code (download or mirror), never a local folder of this machine."
    for nb in NOTEBOOKS:
        text = nb.read_text(encoding="utf-8")
        for bad in ("../shared", "/work/shared", 'environ["GPT2BOOK_MIRROR"]', "environ['GPT2BOOK_MIRROR']"):
            assert bad not in text, f"{nb.name} reads {bad!r}: a reader's machine has no such folder"


EXPORTED_CELL_LIMIT = 45


def _long_parts(src: str) -> list[tuple[str, int]]:
    """(what, lines) of the parts of an exported cell over the limit. A class is defined whole in one cell, so its
    lines do not count towards the cell's; each of its methods is held to the limit instead."""
    import ast
    lines = src.splitlines()
    counted = lambda a, b: sum(1 for l in lines[a:b] if l.strip() and not l.startswith("#|"))   # lines a..b-1
    classes = [n for n in ast.parse(src).body if isinstance(n, ast.ClassDef)]
    out, in_classes = [], 0
    for c in classes:
        first = min([c.lineno] + [d.lineno for d in c.decorator_list])
        in_classes += counted(first - 1, c.end_lineno)
        for m in c.body:
            if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = counted(min([m.lineno] + [d.lineno for d in m.decorator_list]) - 1, m.end_lineno)
                if n > EXPORTED_CELL_LIMIT: out.append((f"{c.name}.{m.name}", n))
    n = counted(0, len(lines)) - in_classes
    if n > EXPORTED_CELL_LIMIT: out.append((lines[1][:60] if len(lines) > 1 else "", n))
    return out


def test_exported_cells_are_short():
    "One idea per exported cell: none over about 40 lines (split long functions into named pieces; a class is whole)."
    long = []
    for nb in NOTEBOOKS:
        for src in _code_cells(nb):
            if "#| export" in src:
                long += [f"{nb.name}: {n} lines: {what}" for what, n in _long_parts(src)]
    assert not long, "exported cells over the limit:\n" + "\n".join(long)
    # a long class cell passes, a long method in it does not
    body = "\n".join(f"    x{i} = {i}" for i in range(50))
    assert _long_parts("#| export\nclass A:\n" + body) == []
    assert [w for w, _ in _long_parts("#| export\nclass A:\n    def f(self):\n    " + body.replace("\n", "\n    "))] == ["A.f"]


def test_readme_results_are_the_result_files():
    "Every results block of the README is what tools/results_tables.py makes from the committed result files."
    import results_tables
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, rows in results_tables.tables().items():
        block = f"<!-- results:{name} -->\n" + "\n".join(rows) + f"\n<!-- /results:{name} -->"
        assert block in readme, f"README.md's {name} block differs from the result files: run python tools/results_tables.py --readme"


def test_import_cells_hold_only_imports():
    "nbdev-docs executes every cell that imports something (to render docs): such a cell must do nothing else."
    import ast
    from IPython.core.inputtransformer2 import TransformerManager
    mixed = []
    for nb in NOTEBOOKS:
        for src in _code_cells(nb):
            if "#| export" in src or "#| eval: false" in src: continue
            tree = ast.parse(TransformerManager().transform_cell(src))            # a %magic as the call it stands for
            imports = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
            if imports and not all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body):
                mixed.append(f"{nb.name}: {src.splitlines()[0][:70]}")
    assert not mixed, "cells that import and also run code (split them; see nbdev's FAQ):\n" + "\n".join(mixed)


def test_saved_figures_are_pictures():
    "A cell that shows a matplotlib Figure saves it as a PNG, not as the text '<Figure size ...>' (what a reader of the site would see)."
    text_only = []
    for nb in NOTEBOOKS:
        for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            for out in c.get("outputs", []):
                data = out.get("data", {})
                if "image/png" not in data and "<Figure size" in "".join(data.get("text/plain", "")):
                    text_only.append(f"{nb.name}: {''.join(c['source']).splitlines()[-1][:60]}")
    assert not text_only, "figures saved as text (show them with `%matplotlib inline` or plt.show()):\n" + "\n".join(text_only)
