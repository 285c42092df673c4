"""pytest runs every chapter notebook as one test item, the way `nbdev-test` runs it.

Each `nbs/NN_name.ipynb` is executed with nbdev's own `nbdev.test.test_nb`, with the same settings
`nbdev-test` passes: the skip flags from `tst_flags` in pyproject.toml (cells flagged `#| slow` are
skipped), the project root on `sys.path`, and the notebook's folder as the working directory.
Select notebooks with `pytest nbs/05_gpt.ipynb` or `-k gpt`; leave them out with `-m "not notebook"`.
"""
import io
import os
import signal
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
    from gpt2book.data import prepare
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
    "A notebook cell raised; the message is nbdev's traceback, naming the cell."


class NotebookItem(pytest.Item):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.add_marker(pytest.mark.notebook)

    def runtest(self):
        from nbdev.config import get_config
        from nbdev.test import test_nb

        cfg = get_config(self.path.parent)
        skip_flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags or [])
        # test_nb writes a failing cell's traceback to sys.__stderr__, which pytest cannot capture;
        # catch it so the report shows it.  It also installs its own SIGINT handler: restore pytest's.
        err, real_stderr = io.StringIO(), sys.__stderr__
        old_int = signal.getsignal(signal.SIGINT)
        old_path = list(sys.path)
        sys.__stderr__ = err
        try:
            ok, secs = test_nb(self.path, skip_flags=skip_flags, basepath=cfg.config_path,
                               cell_timeout=cfg.get("cell_timeout") or None)
        finally:
            sys.__stderr__ = real_stderr
            signal.signal(signal.SIGINT, old_int)
            sys.path[:] = old_path
        self.user_properties.append(("seconds", round(secs, 2)))
        if not ok:
            raise NotebookError(err.getvalue().strip() or f"{self.path.name} failed")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NotebookError):
            return f"{self.path.name} failed (run it alone: nbdev-test nbs/{self.path.name})\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"notebook {self.path.name}"
