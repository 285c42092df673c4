"""The package's shape: imports follow the chapters' order, and every chapter that plugs a variant in is loaded by the
commands (`gpt2book.checkpoint.PLUG_INS`)."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB, NBS = ROOT / "gpt2book", ROOT / "nbs"


def chapter_of_modules() -> dict:
    "{module: (chapter number, part letter)} from each notebook's `default_exp`; appendices (9x) are the foundation."
    out = {}
    for nb in sorted(NBS.glob("[0-9]*.ipynb")):
        m = re.search(r'#\| default_exp (\w+)', nb.read_text())
        if not m: continue
        num, part = re.match(r"(\d+)([a-z]?)_", nb.name).groups()
        out[m.group(1)] = (-1, part) if int(num) >= 90 else (int(num), part)
    return out


def module_level_imports(path: Path) -> set:
    "The gpt2book modules `path` imports at module level (not inside a function or class)."
    tree, found = ast.parse(path.read_text()), set()
    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): continue
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level == 1: found.add(mod.split(".")[0]) if mod else found.update(a.name for a in node.names)
                elif mod.startswith("gpt2book."): found.add(mod.split(".")[1])
                elif mod == "gpt2book": found.update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("gpt2book."))
            for field in ("body", "orelse", "handlers", "finalbody"):   # if/try/with blocks at module level
                if isinstance(getattr(node, field, None), list): visit(getattr(node, field))
    visit(tree.body)
    return found


CHAPTERS = chapter_of_modules()


def test_every_module_has_a_chapter():
    modules = {p.stem for p in LIB.glob("*.py") if not p.stem.startswith("_")}
    assert modules - set(CHAPTERS) == set(), "modules no notebook exports (stale files?)"


@pytest.mark.parametrize("module", sorted(CHAPTERS))
def test_imports_follow_chapter_order(module):
    "A module exported from chapter k imports, at module level, only modules of chapters up to k (appendices any)."
    here = CHAPTERS[module]
    later = sorted(m for m in module_level_imports(LIB / f"{module}.py") if m in CHAPTERS and CHAPTERS[m] > here)
    assert not later, f"gpt2book.{module} (chapter {here[0]}{here[1]}) imports later chapters' modules {later}"


def test_the_check_catches_a_later_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom .muon import Muon\ndef f():\n    from gpt2book.eval import x\n"
                 "try:\n    from gpt2book import speedrun\nexcept ImportError: pass\n")
    assert module_level_imports(f) == {"muon", "speedrun"}




def registers(path: Path) -> bool:
    "Whether a module, at module level, adds to one of the registries of an earlier chapter."
    imported = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("gpt2book")):
            imported |= {a.asname or a.name for a in node.names}
    def base(expr):
        while isinstance(expr, (ast.Attribute, ast.Subscript)): expr = expr.value
        return expr.id if isinstance(expr, ast.Name) else None
    for node in ast.walk(ast.Module(body=[n for n in ast.parse(path.read_text()).body
                                          if not isinstance(n, (ast.FunctionDef, ast.ClassDef))], type_ignores=[])):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        if any(isinstance(t, (ast.Subscript, ast.Attribute)) and base(t) in imported for t in targets): return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and base(node.func) in imported \
                and node.func.attr in ("append", "extend", "update", "insert"):
            return True
    return False


def test_every_plug_in_is_loaded():
    from gpt2book.checkpoint import PLUG_INS
    plugging = sorted(m for m in CHAPTERS if registers(LIB / f"{m}.py"))
    assert plugging, "no chapter registers a variant: the check is broken"
    assert sorted(set(plugging) - set(PLUG_INS)) == [], "register variants but are not in checkpoint.PLUG_INS"
    assert sorted(set(PLUG_INS) - set(CHAPTERS)) == [], "PLUG_INS names modules that do not exist"
