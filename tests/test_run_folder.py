"""The run folder: written as `.partial`, moved into place atomically, the replaced run kept as `.previous`;
only folders the project made are touched, one job holds a name, resumable work is never dropped silently."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pmc_unlearning.configs import load_config
from pmc_unlearning.models import fingerprint
from pmc_unlearning.orchestrator import run_folder
from pmc_unlearning.orchestrator.ownership import EVALUATE, UNLEARN, holding
from pmc_unlearning.orchestrator.run_folder import RunFolder, check_run_folders
from pmc_unlearning.storage.files import make_private_folder
from pmc_unlearning.telemetry.errors import Refused


def config_of(tmp_path: Path, *overrides: str):
    return load_config(None, [f"runs_dir={tmp_path}", "name=job", "allow_external_dirs=true", *overrides])


def finished_run(tmp_path: Path, marker: str, kind: str = UNLEARN) -> RunFolder:
    run = RunFolder(config_of(tmp_path), extra={"prompt": "plain"}, kind=kind)
    run.write_json("eval.json", {"marker": marker})
    return run


def marker(folder: Path) -> str:
    return json.loads((folder / "eval.json").read_text())["marker"]


def with_checkpoint(tmp_path: Path, *overrides: str, round_: int = 2) -> Path:
    """A partial run that was killed after `round_` rounds: it holds resumable work."""
    run = RunFolder(config_of(tmp_path, *overrides), extra={"prompt": "plain"})
    make_private_folder(run.path / "checkpoint")  # as Checkpoints.save makes it
    (run.path / "checkpoint" / "state.json").write_text(json.dumps(
        {"round": round_, "records": [{"round": r} for r in range(1, round_ + 1)], "selections": None, "replay": [],
         "trainer_state": None}))
    return run.path


def tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_second_run_replaces_the_first_and_keeps_it_as_previous(tmp_path):
    first = finished_run(tmp_path, "first")
    assert (first.path / "config.yaml").is_file() and json.loads((first.path / "resolved.json").read_text()) == {"prompt": "plain"}
    assert first.finish() == tmp_path / "job" and marker(tmp_path / "job") == "first"
    finished_run(tmp_path, "second").finish()
    assert marker(tmp_path / "job") == "second" and marker(tmp_path / "job.previous") == "first"
    finished_run(tmp_path, "third").finish()
    assert marker(tmp_path / "job") == "third" and marker(tmp_path / "job.previous") == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job", "job.previous"]


def test_a_crash_at_any_step_of_finish_leaves_a_finished_run_in_place_and_the_work_resumable(tmp_path, monkeypatch):
    finished_run(tmp_path, "old").finish()
    # Crash before the exchange: the old run is still in place, the new one's checkpoint too.
    new = finished_run(tmp_path, "new")
    (new.path / "checkpoint").mkdir()
    monkeypatch.setattr(run_folder, "exchange_folders", lambda a, b: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        new.finish()
    assert marker(tmp_path / "job") == "old" and marker(tmp_path / "job.partial") == "new"
    assert (tmp_path / "job.partial" / "checkpoint").is_dir()  # deleted only once the run is in place
    monkeypatch.undo()

    # Crash right after the exchange, before the old run is renamed to .previous: the new run is in place,
    # and the next start keeps the old one as the previous run.
    real_rename = Path.rename

    def crash_on_previous(self, target):
        if Path(target).name == "job.previous":
            raise KeyboardInterrupt
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", crash_on_previous)
    with pytest.raises(KeyboardInterrupt):
        new.finish()
    monkeypatch.undo()
    assert marker(tmp_path / "job") == "new" and marker(tmp_path / "job.partial") == "old"
    finished_run(tmp_path, "newer")
    assert marker(tmp_path / "job.previous") == "old" and marker(tmp_path / "job") == "new"


class StopAt:
    """Stops a job (KeyboardInterrupt) at its `at`-th step of finishing: a file written into place, a rename, a
    folder exchanged or removed; with `exchange=False` the file system cannot exchange two folders (NFS)."""

    def __init__(self, monkeypatch, at: int, exchange: bool):
        self.at, self.steps = at, 0
        for owner, name in ((run_folder, "write_text_atomically"), (Path, "rename"), (shutil, "rmtree"),
                            (run_folder, "exchange_natively")):
            real = getattr(owner, name)
            if name == "exchange_natively" and not exchange:
                real = lambda a, b: False  # noqa: E731
            monkeypatch.setattr(owner, name, self.step(real))

    def step(self, real):
        def stepped(*args, **kwargs):
            self.steps += 1
            if self.steps == self.at:
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        return stepped


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "three-renames"])
def test_a_stop_at_any_step_of_finish_loses_nothing_and_the_next_job_completes_it(tmp_path, monkeypatch, exchange):
    at = 1
    while True:
        runs = tmp_path / f"stop-at-{at}"
        finished_run(runs, "old").finish()
        new = finished_run(runs, "new")
        make_private_folder(new.path / "checkpoint")
        (new.path / "checkpoint" / "state.json").write_text(json.dumps(
            {"round": 3, "records": [], "selections": None, "replay": [], "trainer_state": None}))
        stop = StopAt(monkeypatch, at, exchange)
        try:
            new.finish()
            stopped = False
        except KeyboardInterrupt:
            stopped = True
        monkeypatch.undo()
        if not stopped:
            break
        # The next job of the name: it completes the finish, or resumes the run after its last round.
        next_job = RunFolder(config_of(runs), extra={"prompt": "plain"})
        if next_job.resumed is not None:
            assert next_job.resumed == 3 and not (runs / "job.partial" / ".complete").exists()
            next_job.write_json("eval.json", {"marker": "new"})
            next_job.finish()
        assert marker(runs / "job") == "new" and marker(runs / "job.previous") == "old", f"stopped at step {at}"
        assert not (runs / "job.exchange").exists()
        at += 1
    assert stop.steps >= (5 if exchange else 7)  # every step was tried


def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("from a"), (b / "y").write_text("from b")
    run_folder.exchange_folders(a, b)
    assert (a / "y").read_text() == "from b" and (b / "x").read_text() == "from a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


@pytest.mark.parametrize("where", ["job", "job.partial", "job.previous"])
def test_a_folder_the_project_did_not_make_is_refused_and_left_alone(tmp_path, where):
    foreign = tmp_path / where
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    before = tree(tmp_path)
    for attempt in (lambda: check_run_folders(config_of(tmp_path)), lambda: finished_run(tmp_path, "x")):
        with pytest.raises(Refused, match=f"{foreign} is not a folder this project made \\(it holds thesis.tex\\)"):
            attempt()
    assert tree(tmp_path) == before


def test_an_evaluation_cannot_replace_an_unlearning_run_of_the_same_name(tmp_path):
    finished_run(tmp_path, "unlearned").finish()
    with pytest.raises(Refused, match="job holds an unlearning run, not an evaluation run"):
        check_run_folders(config_of(tmp_path), EVALUATE)
    assert marker(tmp_path / "job") == "unlearned"


def test_resumable_work_of_other_settings_is_refused_naming_the_keys_and_kept(tmp_path):
    partial = with_checkpoint(tmp_path, "pmc.lr=1.0e-4")
    before = tree(partial)
    changed = config_of(tmp_path, "pmc.lr=3.0e-4", "target.epochs=2", "eval.sampling_n=8")
    with pytest.raises(Refused) as refused:
        check_run_folders(changed)
    assert "pmc.lr, target.epochs differ" in str(refused.value) and "round 2" in str(refused.value)
    assert "--fresh" in str(refused.value) and "eval.sampling_n" not in str(refused.value)
    with pytest.raises(Refused):
        RunFolder(changed, extra={"prompt": "plain"})
    assert tree(partial) == before

    fresh = RunFolder(changed, extra={"prompt": "plain"}, fresh=True)
    assert fresh.resumed is None and not (partial / "checkpoint").exists()


def test_settings_that_cannot_change_training_do_not_block_a_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PMC_THREADS", raising=False)  # make test's share for its own jobs: threads=1 would be no change
    partial = with_checkpoint(tmp_path, round_=3)
    changed = config_of(tmp_path, "eval.sampling_n=8", "threads=1", "checkpoint.full_state_every_s=5")
    run = RunFolder(changed, extra={"prompt": "plain"})
    assert run.resumed == 3
    assert "checkpoint.full_state_every_s, eval.sampling_n, threads" in capsys.readouterr().out
    assert "sampling_n: 8" in (partial / "config.yaml").read_text()  # the finished run records what it ran with


def test_a_change_of_code_or_data_blocks_a_resume(tmp_path, monkeypatch):
    with_checkpoint(tmp_path)
    with pytest.raises(Refused, match="resolved.data_fingerprint differ"):
        RunFolder(config_of(tmp_path), extra={"prompt": "plain", "data_fingerprint": "edited"})
    monkeypatch.setattr(run_folder, "fingerprint_code", lambda packages: str(packages))
    with pytest.raises(Refused, match="code.training differ"):
        check_run_folders(config_of(tmp_path))


def test_a_finished_run_is_reused_only_for_the_same_data_model_and_precision(tmp_path):
    run = finished_run(tmp_path, "done")
    run.finish()
    assert run_folder.finished_run(config_of(tmp_path)) == tmp_path / "job"  # settings and code alone
    assert run_folder.finished_run(config_of(tmp_path), lambda: {"prompt": "plain"}) == tmp_path / "job"
    for changed in ({"prompt": "plain", "data_fingerprint": "other rows"}, {"prompt": "chat"}):
        assert run_folder.finished_run(config_of(tmp_path), lambda: changed) is None


def test_the_training_code_is_every_module_training_imports_wherever_it_lives():
    training = {str(path.relative_to(fingerprint.PROJECT_DIR)) for path in fingerprint.code_files(
        fingerprint.TRAINING_CODE)}
    # PMC's selection scores with the evaluation's ROUGE-L: a change to it changes what is trained.
    assert "evaluation/rouge.py" in training and "methods/selection.py" in training
    # What only the orchestrator imports for the evaluation stays out: a change there leaves a resume possible.
    assert "evaluation/suite.py" not in training and not any(name.startswith("reporting/") for name in training)


def test_storage_imports_nothing_above_it():
    """The lowest layer (docs/architecture.md); the image's model layer copies models/ and storage/ alone."""
    files = {str(path.relative_to(fingerprint.PROJECT_DIR)) for path in fingerprint.code_files(("storage",))}
    assert all(name.startswith("storage/") for name in files), files


def test_an_unreadable_checkpoint_is_refused_and_kept_unless_fresh(tmp_path):
    partial = with_checkpoint(tmp_path)
    (partial / "checkpoint" / "state.json").write_text('{"round": 2, "rec')  # torn
    kept = tree(partial)
    for settings in ((), ("pmc.lr=0.5",)):  # whatever the settings of the new job
        with pytest.raises(Refused, match="cannot be read .*; it is kept: add --fresh to delete it and start over"):
            RunFolder(config_of(tmp_path, *settings), extra={"prompt": "plain"})
        with pytest.raises(Refused, match="it is kept"):
            check_run_folders(config_of(tmp_path, *settings))
        assert tree(partial) == kept
    run = RunFolder(config_of(tmp_path), extra={"prompt": "plain"}, fresh=True)
    assert run.resumed is None and not (partial / "checkpoint").exists()


@pytest.mark.parametrize("named", ["../../elsewhere", "/tmp/elsewhere", "trainer-2/../../x"])
def test_a_state_file_naming_a_trainer_state_outside_its_checkpoint_is_refused(tmp_path, named):
    partial = with_checkpoint(tmp_path)
    state = json.loads((partial / "checkpoint" / "state.json").read_text())
    (partial / "checkpoint" / "state.json").write_text(json.dumps({**state, "trainer_state": named}))
    with pytest.raises(Refused, match="names a trainer state .* that is not a folder of its own"):
        RunFolder(config_of(tmp_path), extra={"prompt": "plain"})


def test_a_checkpoint_others_could_have_written_is_not_resumed(tmp_path):
    partial = with_checkpoint(tmp_path)
    assert stat.S_IMODE((partial / "checkpoint").stat().st_mode) == 0o700
    (partial / "checkpoint").chmod(0o770)  # as a group-shared umask would have made it
    with pytest.raises(Refused, match="is open to other users \\(mode 770\\), not a folder only this user can enter"):
        RunFolder(config_of(tmp_path), extra={"prompt": "plain"})
    (partial / "checkpoint").chmod(0o700)
    (partial / "checkpoint" / "trainer-2").symlink_to(tmp_path)
    with pytest.raises(Refused, match="trainer-2 is a link, not this user's own file"):
        RunFolder(config_of(tmp_path), extra={"prompt": "plain"})


HOLD = """
import sys, time
from pathlib import Path
from pmc_unlearning.orchestrator.ownership import holding
with holding(Path(sys.argv[1]), "job"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_one_job_per_name_the_second_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=Path(__file__).resolve().parents[1],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(Refused, match=f"'job' is held by another job \\(user .*, host .*, pid {holder.pid}, since "):
            with holding(tmp_path, "job"):
                pass
        assert time.monotonic() - started < 1
    finally:
        holder.kill()
        holder.wait()
    with holding(tmp_path, "job"):  # the holder died: its lock went with it
        with holding(tmp_path, "job"):  # the command line, then the job it runs: one process, one hold
            pass
    assert json.loads((tmp_path / ".job.lock").read_text())["pid"] == os.getpid()
