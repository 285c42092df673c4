# %% [markdown]
# # Appendix A: files that survive a kill
#
# > One way to write a file so that a crash, a kill or a full disk in the middle never leaves a half-written file that looks complete, and one way to lock a folder against a second writer.

# %%
#| default_exp files

# %% [markdown]
# Training runs are killed all the time: a cluster preempts a job, a laptop runs out of battery,
# someone presses Ctrl-C twice, the kernel's out-of-memory killer picks the biggest process. If the
# kill lands while a checkpoint is being written, a naive `torch.save(state, "ckpt.pt")` leaves a
# truncated `ckpt.pt` on disk. Worse than no file: it has the right name, and `--resume` picks it up.
# The same holds for every file the book writes: `meta.json` of a data set, a results CSV, a plot
# the README shows.
#
# Every writer in gpt2book goes through the helper of this appendix, which does what databases
# and editors do:
#
# 1. write to a **temporary file in the same folder** (the same file system, so step 3 is a rename,
#    not a copy);
# 2. **flush and `fsync`** it, so the bytes are on the disk and not only in the operating system's
#    cache (a power cut after the rename would otherwise leave an empty file under the final name);
# 3. **`os.replace`** it over the final name: on POSIX and on Windows a rename within a folder is
#    atomic, so any reader sees either the whole old file or the whole new one;
# 4. `fsync` the folder, so that the rename itself is on disk (POSIX only).
#
# If anything fails before step 3 (an exception, a full disk), the temporary file is removed and
# the old file is untouched. If the process is *killed* before step 3, nothing can run any more: the
# temporary file stays behind, under a name that says whose it was, and `stale_temporaries` finds it
# for the next run to remove.

# %%
#| export
import contextlib
import json
import os
import secrets
from pathlib import Path

# %%
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import torch
from fastcore.test import test_eq, test_fail

# %% [markdown]
# The temporary name starts with a dot (hidden from `ls` and from the globs that look for
# `ckpt_*.pt`), carries the final name (so a human can tell what it was), the writer's process id
# (so a later run can tell whether its writer is still alive) and a random tag (so two threads of
# one process never collide), and ends in `.tmp`.

# %%
#| export
TMP_SUFFIX = ".tmp"

def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")

def _fsync_dir(folder: Path):
    "Make a rename in `folder` durable (POSIX; Windows cannot open a folder, and needs no such step)."
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# %% [markdown]
# `atomic_write` is a context manager that hands out the open temporary file; leaving the `with`
# block normally publishes it, leaving it with an exception throws it away. The file is created
# with `O_EXCL` and mode `0o666` (less the user's umask), so it gets the permissions a plain `open`
# would give it.

# %%
#| export
@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None):
    "Write `path` through a temporary file that is fsync'd and renamed over it: readers never see a partial file."
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r}: atomic_write writes a whole new file, use 'w' or 'wb'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)

def atomic_write_bytes(path, data: bytes):
    "Replace `path` with `data`, atomically."
    with atomic_write(path, "wb") as f:
        f.write(data)

def atomic_write_text(path, text: str):
    "Replace `path` with `text` (UTF-8), atomically."
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)

def atomic_write_json(path, obj, indent: int | None = 2):
    "Replace `path` with `obj` as JSON (and a final newline), atomically."
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


# %% [markdown]
# The happy path, then a failure half-way: the exception propagates, the old content survives,
# and no temporary file is left.

# %%
folder = Path(tempfile.mkdtemp())
target = folder / "result.json"
atomic_write_json(target, {"loss": 1.0})
test_eq(json.loads(target.read_text()), {"loss": 1.0})

def write_then_fail(f):
    f.write('{"loss": 0.')  # half a JSON document...
    raise OSError("No space left on device")  # ...then the disk is full

def failing_write():
    with atomic_write(target, "w") as f: write_then_fail(f)

test_fail(failing_write, contains="No space left")
test_eq(json.loads(target.read_text()), {"loss": 1.0})   # the old file, whole
test_eq(sorted(p.name for p in folder.iterdir()), ["result.json"])
print(oct(target.stat().st_mode & 0o777))


# %% [markdown]
# ## A real kill
#
# An exception can be cleaned up after; SIGKILL cannot. Below, a second Python process starts
# replacing a file with 400 MB and is killed with SIGKILL in the middle of writing. The file it
# was replacing still holds its old content, whole, and the temporary file it left behind is found
# by `stale_temporaries`, because the process id in its name no longer runs.

# %%
#| export
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process, or a platform that cannot tell: leave its file alone
    return True

def stale_temporaries(folder, name_glob: str = "*") -> list[Path]:
    "Temporary files of `atomic_write` in `folder` (for final names matching `name_glob`) whose writer is dead."
    stale = []
    for p in Path(folder).glob(f".{name_glob}.*{TMP_SUFFIX}"):
        parts = p.name[:-len(TMP_SUFFIX)].rsplit(".", 2)  # [".name", pid, tag]
        if len(parts) == 3 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            stale.append(p)
    return sorted(stale)

def remove_stale_temporaries(folder, name_glob: str = "*") -> list[Path]:
    "Delete what `stale_temporaries` finds; returns the paths removed."
    removed = stale_temporaries(folder, name_glob)
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


# %%
writer = f"""
import sys
from gpt2book.files import atomic_write
with atomic_write(sys.argv[1]) as f:
    for _ in range(400):
        f.write(b"x" * 2**20)   # 1 MiB at a time
"""
target = folder / "ckpt.pt"
atomic_write_bytes(target, b"the old checkpoint")
p = subprocess.Popen([sys.executable, "-c", writer, str(target)])
deadline = time.time() + 60
while time.time() < deadline and not any(q.stat().st_size > 2**20 for q in folder.glob(".ckpt.pt.*")):
    time.sleep(0.01)   # wait until it is well into the write
p.send_signal(signal.SIGKILL); p.wait()
assert p.returncode == -signal.SIGKILL, "the writer finished before it was killed"
leftover = list(folder.glob(".ckpt.pt.*.tmp"))
print("after the kill:", target.read_bytes(), "|", [(q.name, q.stat().st_size) for q in leftover])
test_eq(target.read_bytes(), b"the old checkpoint")
test_eq(stale_temporaries(folder), leftover)
test_eq(remove_stale_temporaries(folder, "ckpt.pt"), leftover)
test_eq(sorted(q.name for q in folder.iterdir()), ["ckpt.pt", "result.json"])

# %% [markdown]
# A temporary file whose writer is alive is not stale, and is left alone:

# %%
with atomic_write(folder / "busy.bin") as f:
    f.write(b"in progress")
    test_eq(stale_temporaries(folder), [])
test_eq((folder / "busy.bin").read_bytes(), b"in progress")

# %% [markdown]
# ## One writer at a time: `folder_lock`
#
# Two processes must not write the same folder at once: two DDP ranks preparing the same data set,
# two experiment runners claiming the same run. A lock *file* that a process creates and later
# deletes is the classic trap: a process that dies leaves it behind and blocks every later run, and
# checking whether its owner is alive by process id races with a second checker and is fooled by a
# recycled process id. An **operating-system lock** has neither problem: the kernel holds it for the
# open file and releases it when the process dies, however it dies. The well-kept `filelock` package
# wraps `fcntl.flock` on POSIX and `msvcrt.locking` on Windows. `folder_lock` takes a folder's lock,
# waiting for it (`blocking=True`) or returning `False` at once if another process holds it.

# %%
#| export
LOCK_NAME = ".lock"

@contextlib.contextmanager
def folder_lock(folder, blocking: bool = True, name: str = LOCK_NAME):
    "Hold an OS lock on `folder` (released however the process ends); yields False without waiting if it is taken and `blocking` is False."
    from filelock import FileLock, Timeout
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / name, timeout=-1 if blocking else 0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


# %% [markdown]
# A second process cannot take a lock that this one holds; once the holder is killed with
# SIGKILL (no chance to clean up) the lock is free again, at once:

# %%
holder = "import sys, time; from gpt2book.files import folder_lock\nwith folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)"
runs = folder / "run_1"
h = subprocess.Popen([sys.executable, "-c", holder, str(runs)], stdout=subprocess.PIPE, text=True)
test_eq(h.stdout.readline().strip(), "held")
with folder_lock(runs, blocking=False) as got:
    test_eq(got, False)                  # taken by the other process
h.kill(); h.wait()
with folder_lock(runs, blocking=False) as got:
    test_eq(got, True)                   # the kernel released it when the holder died

# %% [markdown]
# ## Checkpoints: find the newest one that can be read
#
# The trainer (chapter 9) writes `ckpt_STEP.pt` files with `atomic_write`, so a kill never leaves a
# half-written checkpoint under that name. Disks and copies still fail: a checkpoint copied with an
# interrupted `rsync`, a bit flipped on a bad disk, a file truncated by a full quota. Resuming must
# not end in a traceback then: it names the damaged file, moves it aside (renamed to
# `ckpt_STEP.pt.damaged`, kept for a human to look at), and takes the newest checkpoint that loads.
#
# Loading is `torch.load(weights_only=True)`: a checkpoint is untrusted input (anyone can hand you
# a file), and the default unpickler would run any code the file asks it to. `weights_only` accepts
# tensors and plain containers only, which is all a gpt2book checkpoint holds.

# %% [markdown]
# Those functions live with the rest of the checkpoint code in `gpt2book.checkpoint` (chapter 9):
# `checkpoints` lists `ckpt_STEP.pt` files by step, `load_checkpoint` reads one with
# `weights_only=True`, and `newest_readable_checkpoint` walks back from the newest. Here they meet
# damaged files: one truncated by a bad copy, one overwritten with something else, and one that is
# not plain data (it asks to unpickle a function).

# %%
from gpt2book.checkpoint import checkpoints, load_checkpoint, newest_readable_checkpoint

# %%
for step in (100, 200, 300):
    with atomic_write(folder / f"ckpt_{step:07d}.pt") as f: torch.save({"step": step}, f)
(folder / "ckpt_0000300.pt").write_bytes((folder / "ckpt_0000300.pt").read_bytes()[:40])   # truncated by a bad copy
(folder / "ckpt_0000200.pt").write_bytes(b"not a checkpoint at all")                        # overwritten
said = []
path, ckpt = newest_readable_checkpoint(folder, report=said.append)
test_eq((path.name, ckpt["step"]), ("ckpt_0000100.pt", 100))
print(*said, sep="\n")
test_eq(len(said), 2); assert "ckpt_0000300.pt is damaged" in said[0]
test_eq([p.name for p in checkpoints(folder)], ["ckpt_0000100.pt"])
assert (folder / "ckpt_0000300.pt.damaged").exists()
os.replace(folder / "ckpt_0000300.pt.damaged", folder / "ckpt_0000300.pt")
test_eq(newest_readable_checkpoint(folder, report=said.append, move_aside=False)[0].name, "ckpt_0000100.pt")
assert (folder / "ckpt_0000300.pt").exists()                                                # a reader leaves it be
(folder / "ckpt_0000300.pt").unlink()
torch.save({"code": print}, folder / "ckpt_0000400.pt")                                    # not plain data
test_fail(lambda: load_checkpoint(folder / "ckpt_0000400.pt"), contains="Weights only load failed")
shutil.rmtree(folder)
