"""What the project may delete, move or overwrite: only folders it made, and only while it holds the job's name.

Every folder a job makes for itself (a run folder and its `.partial` and `.previous`, a batch's folder, a
batch's Tune experiment) carries a marker file that names the kind of job that made it. A folder without
one, or of another kind (a standalone run where a batch wants its folder, an evaluation where an
unlearning run is), is refused with its path and what it holds, before anything is written. Folders written
by earlier versions of the project carry no marker; their own identity files say what they are.

A job holds its name for as long as it runs: an exclusive `flock` on `<runs_dir>/.<name>.lock` (on one
machine, and across nodes on file systems that support it, as NFSv4 does). The lock file names the holder
(user, host, pid, since when) for the message a second job gets; it is readable by the folder's group, so that
a teammate sees who holds a name. A holder that died released the lock with its process, so the next job takes
it over, also when a teammate's job made the file: it is replaced by one of this user's, under the old file's
lock. A job checks after taking a lock that its file is still the one at the path (a teammate's job may have
replaced it meanwhile), and again before it finishes (`check_still_holding`: a lock file removed under a
running job would let a second job take the name).

Markers and lock files are never opened through a link: a link planted under their name in a folder others can
write to is refused (locks) or replaced (markers), never followed.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import pwd
import socket
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pmc_unlearning.storage.files import write_text_atomically
from pmc_unlearning.telemetry.errors import Refused

MARKER = ".pmc-owner.json"
UNLEARN, EVALUATE, BATCH, EXPERIMENT = "unlearning run", "evaluation run", "batch", "Tune experiment"
_held: dict[Path, tuple[int, int]] = {}  # lock file -> (descriptor, how many holders in this process)


def mark(folder: Path, kind: str, made_for: dict | None = None) -> None:
    """Say that the project made `folder` for a job of `kind` (and, where given, which job: `made_for`)."""
    write_text_atomically(folder / MARKER, json.dumps({"made_by": "pmc-unlearning", "kind": kind,
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
    """Refuse if `folder` exists and was not made by a job of `kind`, or is another user's: a job moves and
    deletes only its user's folders (a teammate's run in a group-shared runs folder stays hers)."""
    if not folder.exists() and not folder.is_symlink():
        return
    owner = folder.lstat().st_uid
    if owner != os.getuid():
        raise Refused(f"{folder} is {_user_name(owner)}'s: a job never moves or deletes another user's folder; it is "
                      "left as it is: choose another name (--set name=...)")
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
    path = lock_path(runs_dir, name)
    if path in _held:
        fd, count = _held[path]
        _held[path] = (fd, count + 1)
    else:
        runs_dir.mkdir(parents=True, exist_ok=True)
        _held[path] = (_take_lock(path, name), 1)
    try:
        yield
    finally:
        fd, count = _held.pop(path)
        if count > 1:
            _held[path] = (fd, count - 1)
        else:
            os.close(fd)  # releases the lock; the file stays (removing it would race with the next holder)


def lock_path(runs_dir: Path, name: str) -> Path:
    """The lock file of a name: in the resolved runs folder; the file itself is never resolved (no link followed)."""
    return runs_dir.resolve() / f".{name}.lock"


def check_still_holding(runs_dir: Path, name: str) -> None:
    """Where this process holds `name`: refuse if its lock file is no longer the one at the path (removed or
    replaced while the job ran: a second job may hold the name now), before anything is moved into place."""
    path = lock_path(runs_dir, name)
    if path in _held and not _is_at(_held[path][0], path):
        raise Refused(f"the lock {path} of job '{name}' was removed or replaced while the job ran, so another job may "
                      f"hold the name now; this run is left unfinished where it is (its .partial folder)")


def _take_lock(path: Path, name: str) -> int:
    """The descriptor of the lock file at `path`, exclusively locked and naming this process."""
    while True:
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise Refused(f"'{name}' is held by another job ({holder}); wait for it to end or choose another name "
                          f"(--set name=...); lock: {path}") from None
        if not _is_at(fd, path):  # replaced or removed since it was opened: take the one there now
            os.close(fd)
            continue
        owner = os.fstat(fd).st_uid
        if owner == os.getuid():
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"user": _user_name(os.getuid()), "host": socket.gethostname(),
                                      "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode(), 0)
            return fd
        _replace_released_lock(fd, path, name, owner)


def _open_lock(path: Path) -> int:
    """The lock file at `path` opened (made, where there is none), never through a link; read-only where it is a
    teammate's file that this user cannot write (flock needs no write access)."""
    flags = os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o640)
        except PermissionError:
            return os.open(path, os.O_RDONLY | flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise Refused(f"{path} is a link ({os.readlink(path)}), not a lock file: a lock is never taken through a "
                          "link; remove it, or choose another name (--set name=...)") from None
        raise Refused(f"{path}: the lock file of this name cannot be opened ({err.strerror}); remove it, or choose "
                      "another name (--set name=...)") from None


def _replace_released_lock(fd: int, path: Path, name: str, owner: int) -> None:
    """A teammate's lock file that nobody holds (its job ended): removed while this process holds its lock, so
    that the next attempt makes this user's own; a job opening the old file meanwhile finds it gone."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused(f"{path} is not a lock file this project made; remove it, or choose another name "
                          "(--set name=...)")
        os.unlink(path)
    except PermissionError:
        raise Refused(f"'{name}' was last held by {_user_name(owner)}, whose lock file {path} this user cannot "
                      "replace (the folder keeps its files' owners, sticky bit): ask them to remove it, or choose "
                      "another name (--set name=...)") from None
    finally:
        os.close(fd)


def _is_at(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path` (not removed, not replaced)."""
    try:
        here = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (here.st_dev, here.st_ino)


def _user_name(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"user id {uid}"


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0))
        return f"{info.get('user', _user_name(os.fstat(fd).st_uid))}, host {info['host']}, pid {info['pid']}, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{_user_name(os.fstat(fd).st_uid)}, who has not written the holder's name yet"
