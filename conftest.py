"""`pytest` runs tests/; `nbdev-test` runs the chapter notebooks. A notebook named on the command line
(`pytest nbs/05_gpt.ipynb`, or `pytest nbs`) runs as one test item, top to bottom in a fresh Jupyter kernel, the way a
reader's Run All runs it (the runner of tools/run_nbs.py, with the notebook's folder as the working directory).
"""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# Offline by default: tests never reach the network or block on a wandb login.
# A value already set in the environment wins.
for _k, _v in {"WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}.items():
    os.environ.setdefault(_k, _v)
_tiktoken_cache = ROOT.parent / "shared" / "tiktoken_cache"  # the layout CI uses: shared/ beside the clone
if "TIKTOKEN_CACHE_DIR" not in os.environ and _tiktoken_cache.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_tiktoken_cache)
_mirror = ROOT.parent / "shared" / "data"
if "GPT2BOOK_MIRROR" not in os.environ and _mirror.is_dir():
    os.environ["GPT2BOOK_MIRROR"] = str(_mirror)

CHAPTER_GLOB = "[0-9][0-9]_*.ipynb"


@pytest.fixture(scope="session")
def shakespeare_char(tmp_path_factory):
    """Tiny Shakespeare prepared as characters, the one data set the tests use: what the main job fetches itself
    (downloaded, or from $GPT2BOOK_MIRROR offline). Skips, saying why, only when it truly cannot be had."""
    from gpt2book.prepare import prepare
    try:
        return prepare("shakespeare_char", out_dir=tmp_path_factory.mktemp("data") / "shakespeare_char", progress=False)
    except RuntimeError as e:  # no network and no mirror
        pytest.skip(f"Tiny Shakespeare cannot be had here: {e}")


def pytest_collect_file(parent, file_path):
    "Collect `nbs/NN_name.ipynb` (not the copies nbdev-proc-nbs or Jupyter leave elsewhere)."
    if file_path.suffix == ".ipynb" and file_path.match(CHAPTER_GLOB) and file_path.parent.name == "nbs":
        return NotebookFile.from_parent(parent, path=file_path)


class NotebookFile(pytest.File):
    def collect(self):
        yield NotebookItem.from_parent(self, name=self.path.name)


class NotebookError(Exception):
    "A notebook cell raised; the message names the cell and carries its traceback."


class NotebookItem(pytest.Item):
    "A chapter run top to bottom in a fresh Jupyter kernel, as a reader's Run All runs it (tools/run_nbs.py)."
    def __init__(self, **kw):
        super().__init__(**kw)
        self.add_marker(pytest.mark.notebook)

    def runtest(self):
        sys.path.insert(0, str(ROOT / "tools"))
        try:
            from run_nbs import run_notebook
        finally:
            sys.path.remove(str(ROOT / "tools"))
        ok, secs, err = run_notebook(self.path)
        self.user_properties.append(("seconds", round(secs, 2)))
        if not ok:
            raise NotebookError(err)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NotebookError):
            return (f"{self.path.name} failed (run it alone: pytest nbs/{self.path.name}, or nbdev-test "
                    f"nbs/{self.path.name})\n{excinfo.value}")
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"notebook {self.path.name}"
