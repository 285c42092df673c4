# %% [markdown]
# # Appendix C: one chapter, several modules
#
# > How the notebooks of this book become the modules of the package, and the small nbdev processor that lets one chapter export more than one module.

# %%
#| default_exp modules

# %% [markdown]
# `nbdev-export` turns each notebook into a module: the notebook names its module once
# (`#| default_exp train`), and every cell marked `#| export` goes into it, in order. Some chapters
# hold more than one idea that deserves its own module. Chapter 7 teaches the loader, how a data set
# is prepared and how a file is fetched; the trainer needs only the first, so `gpt2book.loader`
# should not drag in the rest. Chapter 9's checkpoints are read by the sampling command too, which
# has no business importing the trainer. A cell can send itself elsewhere with `#| export loader`.
#
# nbdev, however, treats such a module as *belonging to another notebook*: it appends the cells to
# the end of `loader.py`, which must already exist, made by the notebook whose `default_exp` it is
# (nbdev issue #742). With no such notebook, export fails ("loader.py does not exist"); and a file
# kept around by hand would grow a second copy of the cells at every export.
#
# The fix is an **export processor**, a hook nbdev runs over every notebook it exports
# (`export_procs` in `pyproject.toml`). Before nbdev writes anything, it starts each extra module of
# the notebook afresh: a header, a docstring, an empty `__all__`; nbdev then appends the cells as it
# always does. So plain `nbdev-export` writes the same package every time, from any state.
#
# The docstring of an extra module comes from the chapter itself: the chapter says, in a line of
# its text, which module the next section's code goes to, and what the module is for:
#
# > **Module `gpt2book.loader`**: memory-mapped shards served as (x, y) batches, the one part of
# > chapter 7 the trainer needs.
#
# That line is for the reader as much as for the docstring: it tells them where the code they are
# about to read will live. Each extra module belongs to one chapter; a second chapter exporting to
# it is refused, since each would wipe out the other's cells.

# %%
#| export
import re
from pathlib import Path

# %%
import json
import tempfile

from fastcore.test import test_eq, test_fail

# %%
#| export
MODULE_LINE = re.compile(r"\*\*Module `gpt2book\.(\w+)`\*\*:\s*(.+)")   # a chapter's line naming a module

def extra_modules(nb) -> dict:
    "{module: the chapter's description of it} for every `#| export NAME` of notebook `nb` but its `default_exp`."
    described = {}
    for c in nb.cells:
        if c.cell_type != "markdown": continue
        for para in re.split(r"\n\s*\n", "".join(c.source)):              # a description may wrap over lines
            m = MODULE_LINE.search(re.sub(r"\s*\n>?\s*", " ", para))
            if m: described[m.group(1)] = m.group(2).strip()
    names = {c.directives_["export"].split()[0] for c in nb.cells
             if c.cell_type == "code" and c.directives_.get("export", "").strip()}
    missing = sorted(names - set(described))
    if missing:
        raise ValueError(f"{nb.path_}: cells export to {missing} but no line of the chapter says "
                         f"**Module `gpt2book.{missing[0]}`**: what it is for")
    return {n: described[n] for n in sorted(names)}


# %%
#| export
# what nbdev itself writes at the top of a module; its two marker lines are split here because nbdev reads such lines
# in a module's source as cell boundaries
HEADER = ('"""{doc}\n\nDocs: https://gpt2book.github.io/gpt2book/{page}.html.md"""\n\n'
          "# AUTO" "GENERATED! DO NOT EDIT! File to edit: ../{nb}.\n\n" "# %" "% auto #0\n__all__ = []\n")

def _doc(text: str) -> str:
    "A markdown description as plain docstring text: no emphasis, no code marks, ending with a full stop."
    text = re.sub(r"[*`]", "", text).strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."

class FreshModules:
    "nbdev export processor: start every extra module of the notebook afresh, so that nbdev's appending is exact."
    def __init__(self, nb): self.nb = nb

    def begin(self):
        nb_path = Path(self.nb.path_)
        lib = nb_path.resolve().parent.parent / "gpt2book"
        page = re.sub(r"^\d+_", "", nb_path.stem)
        for name, doc in extra_modules(self.nb).items():
            path = lib / f"{name}.py"
            if path.exists() and f"File to edit: ../nbs/{nb_path.name}" not in path.read_text(encoding="utf-8"):
                raise ValueError(f"{nb_path.name} exports to gpt2book/{name}.py, which another chapter writes")
            path.write_text(HEADER.format(doc=_doc(doc), page=page, nb=f"nbs/{nb_path.name}"), encoding="utf-8")


# %% [markdown]
# A chapter in miniature: a notebook with a default module and one extra, exported twice in a
# temporary project. The extra module holds its cells once, after any number of exports, and its
# docstring is the chapter's line about it.

# %%
from fastcore.basics import AttrDict
from nbdev.export import nb_export
from nbdev.process import NBProcessor

def cell(kind, src): return {"cell_type": kind, "source": src, "metadata": {}, "outputs": [], "execution_count": None}

tmp = Path(tempfile.mkdtemp())
(tmp / "nbs").mkdir(); (tmp / "gpt2book").mkdir()
nb_file = tmp / "nbs" / "07_data.ipynb"
nb_file.write_text(json.dumps({"cells": [
    cell("code", "#| default_exp prepare"),
    cell("code", "#| export\ndef prepare(): return 'shards'"),
    cell("markdown", "**Module `gpt2book.loader`**: batches from shards,\nthe part the trainer needs."),
    cell("code", "#| export loader\ndef batches(): return 'x, y'"),
], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
for _ in range(3):
    nb_export(nb_file, lib_path=tmp / "gpt2book", procs=[FreshModules])
loader_py = (tmp / "gpt2book" / "loader.py").read_text()
print(loader_py)
test_eq(loader_py.count("def batches"), 1)
assert loader_py.startswith('"""Batches from shards, the part the trainer needs.')
test_eq((tmp / "gpt2book" / "prepare.py").read_text().count("def prepare"), 1)

# %% [markdown]
# And the refusals: an extra module that no line of the chapter describes, and one that another
# chapter already writes.

# %%
nb = NBProcessor(nb_file).nb
nb.cells[2].source = "The loader, undescribed."
test_fail(lambda: extra_modules(nb), contains="no line of the chapter says")
(tmp / "gpt2book" / "loader.py").write_text("# AUTOGENERATED! DO NOT EDIT! File to edit: ../nbs/08_other.ipynb.\n")
test_fail(lambda: FreshModules(NBProcessor(nb_file).nb).begin(), contains="which another chapter writes")

# %% [markdown]
# `pyproject.toml` names the processor, so `nbdev-export`, `nbdev-prepare` and the book's own
# `tools/nbsync.sh` all use it:
#
# ```toml
# [tool.nbdev]
# export_procs = ["gpt2book.modules:FreshModules"]
# ```
#
# nbdev imports it from the installed package, so the processor that runs is the one the last
# export wrote; changing it takes two exports (the first writes the new module, the second uses it).
