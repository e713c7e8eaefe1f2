"""A batch's Tune experiment folder: which batch it belongs to, whether its state may be loaded, and a new one
that is its user's alone.

Tune's state lies in `runs/<batch>/tune`, or under `storage_path`, where other batches' may lie beside it (of
another runs folder, another checkout, another user). Its marker names the batch that made it (name, runs
folder, checkout), and a batch neither restores nor deletes another's; under `storage_path` a lock beside it
(`.<batch>.lock`, orchestrator/batch.py) keeps two batches of one name from using it at once.

Tune's restore unpickles the experiment's state: whoever could write there could run code as the user. The state
is restored only from a folder that is this user's and closed to everybody else, with everything in it this
user's and no link among it; the batch makes its folder so (0700), also under a group-shared umask.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

from pmc_unlearning.configs.batch_schema import Batch
from pmc_unlearning.configs.schema import PROJECT_DIR
from pmc_unlearning.orchestrator.ownership import EXPERIMENT, MARKER, claim, mark
from pmc_unlearning.storage.files import make_private_folder, private_folder_problem
from pmc_unlearning.telemetry.errors import Refused


def experiment_location(batch: Batch) -> tuple[Path, str]:
    """(storage path, experiment name): runs/<batch>/tune by default, else <storage_path>/<batch>."""
    if batch.config.storage_path is None:
        return batch.runs_dir, "tune"
    return Path(batch.config.storage_path).expanduser().resolve(), batch.config.name


def batch_label(batch: Batch) -> dict[str, str]:
    """What names a batch in its experiment's marker: its name, its folder and the checkout it runs from."""
    return {"name": batch.config.name, "runs_dir": str(batch.runs_dir), "checkout": str(PROJECT_DIR)}


def maker_of(experiment: Path) -> dict | None:
    """The batch the experiment's marker names, or None where it names none (a marker of an earlier version)."""
    try:
        return json.loads((experiment / MARKER).read_text()).get("made_for")
    except (OSError, ValueError, AttributeError):
        return None


def check_experiment(batch: Batch) -> None:
    """Refuse the batch's experiment folder where it exists and is not this batch's: a link, one another batch
    made, or, under storage_path, one the project did not make or whose marker names no batch."""
    storage, name = experiment_location(batch)
    experiment = storage / name
    in_batch_folder = batch.config.storage_path is None  # the batch folder's own: claimed and locked with it
    if not in_batch_folder or experiment.is_symlink():  # a link is refused in the batch's folder too
        claim(experiment, EXPERIMENT)
    if not experiment.is_dir():
        return
    maker, mine = maker_of(experiment), batch_label(batch)
    if maker is None and not in_batch_folder:
        raise Refused(f"{experiment} holds Tune state whose marker names no batch (an earlier version's): it is left "
                      "as it is; move it away (the batch's run folders keep its finished trials) or choose another "
                      "storage_path")
    if maker is not None and (maker.get("name"), maker.get("runs_dir")) != (mine["name"], mine["runs_dir"]):
        raise Refused(f"{experiment} holds the Tune state of batch '{maker.get('name')}' of {maker.get('runs_dir')} "
                      f"(checkout {maker.get('checkout')}), not of this one ({mine['runs_dir']}): it is left as it "
                      "is; choose another storage_path or batch name")


def check_restorable(experiment: Path) -> None:
    """Refuse, keeping it, Tune state that anybody but this user could have written: restoring unpickles it."""
    problem = untrusted(experiment)
    if problem:
        raise Refused(f"{problem}: Tune's state in {experiment} is not restored (restoring it would run code from it) "
                      "and is left as it is; move it away to start the batch's Tune state afresh (finished trials "
                      "are not run again)")


def untrusted(experiment: Path) -> str | None:
    """Why what is in `experiment` may not be this user's alone, or None (`private_folder_problem`): the folder
    must be this user's, not a link, and closed to everybody else (what Tune writes inside follows the umask,
    group-writable in a group-shared runs folder, and only the closed folder keeps others from it); everything
    in it this user's, no link among it."""
    problem = private_folder_problem(experiment)
    if problem is None:
        return None
    why, path, info = problem
    if why == "link":
        return f"{path} is a link to {os.readlink(path)}"
    if why == "owner":
        return f"{path} belongs to user id {info.st_uid}, not to this user ({os.getuid()})"
    mode = stat.S_IMODE(info.st_mode)
    return (f"{experiment} is open to {'every user' if mode & 0o007 else 'its group'} (mode {mode:o}; chmod go= "
            "it if you trust what is in it)")


def fresh_experiment(batch: Batch) -> Path:
    """The batch's experiment folder, new and empty, its user's alone (0700 whatever the umask), marked as the
    batch's; an earlier state of this batch is deleted first (its run folders stay)."""
    storage, name = experiment_location(batch)
    experiment = storage / name
    shutil.rmtree(experiment, ignore_errors=True)
    make_private_folder(experiment)
    mark(experiment, EXPERIMENT, batch_label(batch))
    return experiment
