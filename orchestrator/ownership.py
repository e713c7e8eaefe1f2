"""What the project may delete, move or overwrite: only folders it made, and only while it holds the job's name.

Every folder a job makes for itself (a run folder and its `.partial` and `.previous`, a batch's folder, a
batch's Tune experiment) carries a marker file that names the kind of job that made it. A folder without
one, or of another kind (a standalone run where a batch wants its folder, an evaluation where an
unlearning run is), is refused with its path and what it holds, before anything is written. Folders written
by earlier versions of the project carry no marker; their own identity files say what they are.

A job holds its name for as long as it runs: an exclusive `flock` on `<runs_dir>/.<name>.lock` (on one
machine, and across nodes on file systems that support it, as NFSv4 does). The lock file names the holder
(host, pid, since when) for the message a second job gets. A holder that died released the lock with its
process, so the next job takes it over.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pmc_unlearning.telemetry.errors import Refused

MARKER = ".pmc-owner.json"
UNLEARN, EVALUATE, BATCH, EXPERIMENT = "unlearning run", "evaluation run", "batch", "Tune experiment"
_held: dict[Path, tuple[int, int]] = {}  # lock file -> (descriptor, how many holders in this process)


def mark(folder: Path, kind: str, made_for: dict | None = None) -> None:
    """Say that the project made `folder` for a job of `kind` (and, where given, which job: `made_for`)."""
    (folder / MARKER).write_text(json.dumps({"made_by": "pmc-unlearning", "kind": kind,
                                             **({"made_for": made_for} if made_for else {})}) + "\n")


def kind_of(folder: Path) -> str | None:
    """The kind of job that made `folder`, or None if the project did not make it."""
    try:
        return json.loads((folder / MARKER).read_text())["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if (folder / "batch.json").is_file():  # a batch folder of an earlier version
        return BATCH
    if (folder / "config.yaml").is_file() and (folder / "versions.json").is_file():  # a run of an earlier version
        try:
            return EVALUATE if "model" in json.loads((folder / "eval.json").read_text()) else UNLEARN
        except (OSError, ValueError):
            return UNLEARN  # unfinished: an evaluation-only run has nothing to resume, so it is the more careful guess
    return None


def claim(folder: Path, kind: str) -> None:
    """Refuse if `folder` exists and was not made by a job of `kind`."""
    if not folder.exists() and not folder.is_symlink():
        return
    found = kind_of(folder) if folder.is_dir() and not folder.is_symlink() else None
    if found == kind:
        return
    if found is None:
        raise Refused(f"{folder} is not a folder this project made ({describe(folder)}); it is left as it is: "
                      "move it away or choose another name or folder")
    raise Refused(f"{folder} holds {_a(found)}, not {_a(kind)}: choose another name (--set name=...) or move it away")


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def describe(path: Path) -> str:
    """What is at `path`, in a few words, for a message."""
    if path.is_symlink():
        return f"a link to {os.readlink(path)}"
    if not path.is_dir():
        return "a file"
    entries = sorted(entry.name for entry in path.iterdir())
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    return f"it holds {shown}" if entries else "an empty folder"


@contextmanager
def holding(runs_dir: Path, name: str) -> Iterator[None]:
    """Hold the job name `name` in `runs_dir` for the duration, or refuse at once naming the holder. Nested
    holds of one name in one process (the command line, then the job it runs) share the lock."""
    path = (runs_dir / f".{name}.lock").resolve()
    if path in _held:
        fd, count = _held[path]
        _held[path] = (fd, count + 1)
    else:
        runs_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise Refused(f"'{name}' is held by another job ({holder}); wait for it to end or choose another name "
                          f"(--set name=...); lock: {path}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                  "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode(), 0)
        _held[path] = (fd, 1)
    try:
        yield
    finally:
        fd, count = _held.pop(path)
        if count > 1:
            _held[path] = (fd, count - 1)
        else:
            os.close(fd)  # releases the lock; the file stays (removing it would race with the next holder)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0))
        return f"host {info['host']}, pid {info['pid']}, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a holder that has not written its name yet"
