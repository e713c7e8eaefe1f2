"""Cache folders that appear whole or not at all, named by a key of what they depend on, and built once
when several jobs need them at the same time; files given their bytes up front; probes of whether two nodes
share a folder."""

import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any


def build_folder_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Return `target`, building it first with `build(tmp_folder)` if it does not exist yet. Jobs that need it
    at the same time build it once: the others wait for the build (`building`) and then find it."""
    if target.is_dir():
        return target
    with building(target):
        return target if target.is_dir() else write_folder_atomically(target, build)


@contextmanager
def building(target: Path) -> Iterator[None]:
    """An exclusive lock on building `target`, held across processes: `flock` on `.<name>.lock` beside it (on one
    machine, and on shared file systems that support it). The lock file stays: removing it would race."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f".{target.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_folder_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """`build(tmp_folder)` into a temporary sibling that is renamed to `target` at the end: an interrupted build
    leaves only a `.tmp-*` folder, never a half-written `target` that a later run would trust. The temporary
    folder is named after this host and process, so the next build removes what a killed build left behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_builds(target)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_tmp_prefix(target)}{os.getpid()}-", dir=target.parent))
    try:
        build(tmp)
        tmp.rename(target)
    except OSError:
        # Another process finished the same build first: its folder is as good as ours.
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_text_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """`text` as the whole of `path`, in one rename: readers see the old file or the whole new one, also after a
    power loss (the file and its folder are flushed to disk); and never through a link: the temporary file is
    made new (O_EXCL, O_NOFOLLOW, an unguessable name, so two writers never share one) in the folder opened
    once, and the rename replaces whatever entry `path` was (a link planted there included) instead of
    following it. `mode` is narrowed by the umask as usual."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    tmp = f".{path.name}.tmp-{secrets.token_hex(8)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=folder)
        try:
            with os.fdopen(os.dup(fd), "w") as f:
                f.write(text)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        os.fsync(folder)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=folder)
        raise
    finally:
        os.close(folder)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-{socket.gethostname()}-"


def remove_abandoned_builds(target: Path) -> list[Path]:
    """Delete the temporary folders of builds of `target` whose process on this host no longer runs.

    Builds on other hosts (a cache on shared storage) are left alone: their process cannot be checked here.
    """
    removed = []
    for tmp in target.parent.glob(f"{_tmp_prefix(target)}*"):
        if made_by_a_dead_process(tmp.name, _tmp_prefix(target)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def private_scratch_folder(prefix: str, base: Path | None = None) -> Path:
    """A new folder in `base` (default: the system's temporary folder) that only this user can enter (mode
    0700), named `<prefix>-<pid>-...` after this process; this user's folders of `prefix` whose process no
    longer runs (killed before it could remove its own) are removed first. Removing the new one is the caller's."""
    base = base or Path(tempfile.gettempdir())
    for stale in base.glob(f"{prefix}-*"):
        try:
            mine = stale.stat().st_uid == os.getuid()
        except FileNotFoundError:  # another process removed it first
            continue
        if mine and made_by_a_dead_process(stale.name, f"{prefix}-"):
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-", dir=base))
    _scratch_folders.add(folder)
    return folder


_scratch_folders: set[Path] = set()  # this process's, for remove_scratch_folders


def make_private_folder(folder: Path) -> None:
    """`folder` (made where missing), which only its user can enter whatever the umask (a group-shared folder's
    included): for what a job loads, and unpickles, later (checkpoints, Tune's state)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)


def group_shared(folder: Path) -> bool:
    """Whether the nearest existing folder at or above `folder` is group-shared (set-group-id, as the image's
    volumes and a team's folders are)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return bool(folder.stat().st_mode & 0o2000)


class NotPrivate(RuntimeError):
    """A folder the job would load from could have been written by another user."""


def users_cache_folder(cache_dir: Path) -> Path:
    """Where this user's cache entries live: `cache_dir` itself, or in a group-shared cache a folder of this
    user's inside, `user-<uid>`, made so that only they can enter it: a job never loads an entry (a model, an
    evaluation) that a teammate could have written, nor writes where a teammate's job would load from."""
    if not group_shared(cache_dir):
        return cache_dir
    mine = f"user-{os.getuid()}"
    # The folder itself given (a run's saved config.yaml names it): checked as it would be found.
    folder = cache_dir if cache_dir.name == mine else cache_dir / mine
    cache_dir = folder.parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        info = folder.lstat()
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            what = "a link" if stat.S_ISLNK(info.st_mode) else f"user id {info.st_uid}'s, mode {info.st_mode & 0o7777:o}"
            raise NotPrivate(f"{folder}, this user's cache in the group-shared {cache_dir}, is {what}: another user "
                             "could write what the job would load from it; it is left as it is: remove it, or set "
                             "cache_dir to a folder of your own") from None
    return folder


def private_folder_problem(folder: Path) -> tuple[str, Path, os.stat_result] | None:
    """Why another user could have written what is in `folder`, or None where it is its user's alone:
    ("link" | "owner" | "open", the path at fault, its lstat). The folder itself first (a link, another user's,
    or open to anybody else: any group or other permission), then everything in it (a link, or another user's;
    links are listed, never entered)."""
    info = folder.lstat()
    if stat.S_ISLNK(info.st_mode):
        return "link", folder, info
    if info.st_uid != os.getuid():
        return "owner", folder, info
    if info.st_mode & 0o077:
        return "open", folder, info
    for parent, folders, files in os.walk(folder):
        for path in (Path(parent) / name for name in (*folders, *files)):
            entry = path.lstat()
            if stat.S_ISLNK(entry.st_mode):
                return "link", path, entry
            if entry.st_uid != os.getuid():
                return "owner", path, entry
    return None


@contextmanager
def private_scratch(prefix: str, base: Path | None = None) -> Iterator[Path]:
    """`private_scratch_folder(prefix, base)` for the block, removed with everything in it when the block ends."""
    folder = private_scratch_folder(prefix, base)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _scratch_folders.discard(folder)


def remove_scratch_folders() -> None:
    """Every scratch folder this process made, where it still is: for an exit that skips the blocks that remove
    them."""
    for folder in list(_scratch_folders):
        shutil.rmtree(folder, ignore_errors=True)
        _scratch_folders.discard(folder)


@contextmanager
def temporary_files_in(folder: Path) -> Iterator[None]:
    """Python's temporary files and folders (`tempfile`'s default place) go into `folder` during the block."""
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before


def made_by_a_dead_process(name: str, prefix: str) -> bool:
    """Whether `name` is `<prefix><pid>-...` (how the project names what a process makes for itself) and that
    process no longer runs on this machine."""
    pid = name.removeprefix(prefix).partition("-")[0] if name.startswith(prefix) else ""
    return pid.isdigit() and not _process_runs(int(pid))


def _process_runs(pid: int) -> bool:
    """Whether process `pid` runs on this machine (as this user or another)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def settings_key(settings: dict[str, Any]) -> str:
    """A short stable key for a JSON-able description of everything a cached folder depends on."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


class NoRoom(RuntimeError):
    """A file the job needs does not fit where it must be: the message says how much it needs and how much there is.
    (Raised in the trainer's process: the job ends with it as with any failed actor, in one line.)"""


def allocate(fd: int, size: int, folder: str, what: str, remedy: str) -> None:
    """Give the open file `fd` in `folder` its `size` bytes now. A file that has its size but not its bytes (sparse)
    gets them as it is written, and on a memory file system (/dev/shm) that has no room left by then, the writing
    process dies of SIGBUS; here, NoRoom says what `what` needs, what `folder` has free and the `remedy`."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        room = os.statvfs(folder)
        raise NoRoom(f"{what} needs {size} bytes in {folder}, which has {room.f_bavail * room.f_frsize} bytes free: "
                     f"{remedy}") from None


def write_probe(path: str, token: str) -> None:
    """Write `token` to `path` (run as a Ray task, maybe on another node): whether the caller reads it back on its
    own node says whether the two share the folder."""
    Path(path).write_text(token)


def sees_probe(probe: Path, token: str) -> bool:
    """Whether `probe` holds `token` here (written by `write_probe`, maybe on another node); the probe is removed."""
    seen = probe.read_text() if probe.is_file() else None
    probe.unlink(missing_ok=True)
    return seen == token
