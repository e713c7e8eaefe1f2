"""A team on one machine: two users of one group share a runs folder as the image sets it up (setgid, 2770).
Neither can make the other's job follow a link, load a file of hers, or lose its name to her; a name her
finished job used is taken over cleanly, and one her running job holds is refused naming her."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from pmc_unlearning.orchestrator.ownership import check_still_holding, holding
from pmc_unlearning.telemetry.errors import Refused

HOLD = """
import sys, time
from pathlib import Path
from pmc_unlearning.orchestrator.ownership import holding
with holding(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""
TRY = """
import sys
from pathlib import Path
from pmc_unlearning.orchestrator.ownership import holding
from pmc_unlearning.telemetry.errors import Refused
try:
    with holding(Path(sys.argv[1]), sys.argv[2]):
        print("held")
except Refused as refused:
    print("refused:", refused)
"""
CLAIM = """
import sys
from pathlib import Path
from pmc_unlearning.orchestrator.ownership import claim
from pmc_unlearning.telemetry.errors import Refused
try:
    claim(Path(sys.argv[1]), "unlearning run")
    print("mine to move")
except Refused as refused:
    print("refused:", refused)
"""
USERS_CACHE = """
import sys
from pathlib import Path
from pmc_unlearning.storage.files import NotPrivate, users_cache_folder
try:
    print(users_cache_folder(Path(sys.argv[1])))
except NotPrivate as refused:
    print("refused:", refused)
"""
FINISHED_RUN = """
import sys
from pathlib import Path
from pmc_unlearning.orchestrator.ownership import mark
run = Path(sys.argv[1])
run.mkdir()
(run / "eval.json").write_text("{}")
mark(run, "unlearning run")
"""
MARK = """
import sys
from pathlib import Path
from pmc_unlearning.orchestrator.ownership import mark
mark(Path(sys.argv[1]), "unlearning run")
"""


@pytest.fixture
def team_runs(teammates):
    """The team's runs folder, in a folder every user can reach (pytest's own are the suite user's only)."""
    base = Path(tempfile.mkdtemp(prefix="runs-", dir=teammates.env["HOME"]))
    base.chmod(0o755)
    try:
        yield teammates.shared_folder(base / "runs")
    finally:
        shutil.rmtree(base)


def test_a_name_a_teammate_holds_is_refused_naming_her_and_taken_over_once_her_job_ended(teammates, team_runs):
    bob = teammates.run_as("bob", HOLD, str(team_runs), "job", "60", wait=False)
    try:
        assert bob.stdout.readline().strip() == "held"
        ann = teammates.run_as("ann", TRY, str(team_runs), "job")
        assert ann.stdout.startswith(f"refused: 'job' is held by another job (user {teammates.users['bob']}, host ")
        assert f"pid {bob.pid}," in ann.stdout  # setpriv and sh exec: the holder is the process started
    finally:
        bob.kill()
        bob.wait()
    lock = team_runs / ".job.lock"
    assert lock.stat().st_uid == teammates.uids["bob"]
    ann = teammates.run_as("ann", TRY, str(team_runs), "job")  # bob's job ended: his lock is released
    assert ann.stdout.strip() == "held", ann.stdout + ann.stderr
    assert lock.stat().st_uid == teammates.uids["ann"]  # her own now, which only she can write
    assert json.loads(lock.read_text())["user"] == f"user {teammates.users['ann']}"
    assert lock.stat().st_mode & 0o777 == 0o640  # the group reads who holds a name, nobody else writes it


def test_a_link_a_teammate_planted_at_a_lock_is_refused_and_what_it_points_at_is_untouched(teammates, team_runs):
    own = team_runs / "ann-notes.txt"
    assert teammates.run_as("ann", f"open({str(own)!r}, 'w').write('mine')").returncode == 0
    assert teammates.run_as("bob", f"import os; os.symlink({str(own)!r}, {str(team_runs / '.job.lock')!r})"
                            ).returncode == 0
    ann = teammates.run_as("ann", TRY, str(team_runs), "job")
    assert ann.stdout.startswith(f"refused: {team_runs}/.job.lock is a link ({own}), not a lock file")
    assert own.read_text() == "mine"


def test_a_link_a_teammate_planted_at_a_marker_is_replaced_not_followed(teammates, team_runs):
    own, folder = team_runs / "ann-notes.txt", team_runs / "job.partial"
    assert teammates.run_as("ann", f"import os; open({str(own)!r}, 'w').write('mine'); os.mkdir({str(folder)!r})",
                            umask=0o007).returncode == 0  # a folder the group may write (by hand, or an old version)
    assert teammates.run_as("bob", f"import os; os.symlink({str(own)!r}, {str(folder / '.pmc-owner.json')!r})"
                            ).returncode == 0
    result = teammates.run_as("ann", MARK, str(folder))
    assert result.returncode == 0, result.stderr
    assert own.read_text() == "mine"
    marker = folder / ".pmc-owner.json"
    assert not marker.is_symlink() and json.loads(marker.read_text())["kind"] == "unlearning run"


def test_a_lock_removed_under_a_running_job_stops_it_before_it_finishes(tmp_path):
    with holding(tmp_path, "job"):
        check_still_holding(tmp_path, "job")  # in place: nothing to say
        (tmp_path / ".job.lock").unlink()  # `rm -rf runs` under the job: a second job could take the name now
        with pytest.raises(Refused, match="was removed or replaced while the job ran"):
            check_still_holding(tmp_path, "job")
        with holding(tmp_path / "other", "job"):
            pass
    assert os.listdir(tmp_path) == ["other"]



PLANT_CHECKPOINT = """
import json, os, sys
partial = sys.argv[1]
os.rename(os.path.join(partial, "checkpoint"), os.path.join(partial, "checkpoint.moved"))
os.makedirs(os.path.join(partial, "checkpoint", "trainer-1"), mode=0o700)
open(os.path.join(partial, "checkpoint", "trainer-1", ".metadata"), "w").write("a pickle of bob's")
open(os.path.join(partial, "checkpoint", "state.json"), "w").write(json.dumps(
    {"round": 1, "records": [], "selections": None, "replay": [], "trainer_state": "trainer-1"}))
"""


def test_a_checkpoint_a_teammate_put_in_a_shared_partial_is_never_loaded_and_kept(teammates, team_runs):
    from pmc_unlearning.configs import load_config
    from pmc_unlearning.orchestrator.run_folder import RunFolder
    from pmc_unlearning.storage.files import make_private_folder

    config = load_config(None, [f"runs_dir={team_runs}", "name=job", "allow_external_dirs=true"])
    umask = os.umask(0o007)  # a partial the group may write (an earlier version's umask, or made so by hand)
    try:
        partial = RunFolder(config, extra={"prompt": "plain"}).path
        make_private_folder(partial / "checkpoint")
        (partial / "checkpoint" / "state.json").write_text(json.dumps(
            {"round": 2, "records": [], "selections": None, "replay": [], "trainer_state": None}))
    finally:
        os.umask(umask)
    planted = teammates.run_as("bob", PLANT_CHECKPOINT, str(partial))
    assert planted.returncode == 0, planted.stderr  # the partial is the group's: bob can swap its entries
    with pytest.raises(Refused, match=f"checkpoint is user id {teammates.uids['bob']}'s, not a folder only this user "
                                      "can enter: not resumed, and kept"):
        RunFolder(config, extra={"prompt": "plain"})
    assert (partial / "checkpoint" / "trainer-1" / ".metadata").read_text() == "a pickle of bob's"
    assert (partial / "checkpoint.moved" / "state.json").is_file()  # nothing of anybody's deleted


def test_a_teammates_finished_run_is_hers_to_read_and_never_moved_or_written_by_my_job(teammates, team_runs):
    """What a job makes in a group-shared runs folder (the command line's umask there: 027) the group reads and
    nobody else writes; a job of the same name of another user is refused before it moves anything."""
    run = team_runs / "job"
    made = teammates.run_as("bob", FINISHED_RUN, str(run), umask=0o027)
    assert made.returncode == 0, made.stderr
    assert teammates.run_as("ann", f"print(open({str(run / 'eval.json')!r}).read())").stdout == "{}\n"
    overwrite = teammates.run_as("ann", f"open({str(run / 'eval.json')!r}, 'w')")
    add = teammates.run_as("ann", f"open({str(run / 'planted.txt')!r}, 'w')")
    assert "PermissionError" in overwrite.stderr and "PermissionError" in add.stderr
    ann = teammates.run_as("ann", CLAIM, str(run))
    assert ann.stdout.strip() == (f"refused: {run} is user {teammates.users['bob']}'s: a job never moves or deletes "
                                  "another user's folder; it is left as it is: choose another name (--set name=...)")
    assert teammates.run_as("bob", CLAIM, str(run)).stdout.strip() == "mine to move"
    assert sorted(p.name for p in run.iterdir()) == [".pmc-owner.json", "eval.json"]


def test_in_a_group_shared_cache_each_user_loads_only_from_a_folder_of_her_own(teammates, team_runs):
    cache = teammates.shared_folder(team_runs.parent / "cache")
    ann = teammates.run_as("ann", USERS_CACHE, str(cache))
    mine = cache / f"user-{teammates.uids['ann']}"
    assert ann.stdout.strip() == str(mine), ann.stderr
    assert mine.stat().st_uid == teammates.uids["ann"] and mine.stat().st_mode & 0o777 == 0o700
    assert teammates.run_as("ann", USERS_CACHE, str(cache)).stdout.strip() == str(mine)  # found again, as it was
    assert teammates.run_as("ann", USERS_CACHE, str(mine)).stdout.strip() == str(mine)  # as a saved config names it
    planted = cache / f"user-{teammates.uids['bob']}"  # ann makes bob's before he does
    assert teammates.run_as("ann", f"import os; os.mkdir({str(planted)!r}, 0o770)", umask=0o007).returncode == 0
    bob = teammates.run_as("bob", USERS_CACHE, str(cache))
    assert bob.stdout.startswith(f"refused: {planted}, this user's cache in the group-shared {cache}, is user id "
                                 f"{teammates.uids['ann']}'s, mode 2770: another user could write what the job "
                                 "would load from it; it is left as it is"), bob.stdout + bob.stderr
    assert planted.is_dir() and planted.stat().st_uid == teammates.uids["ann"]
    assert teammates.run_as("ann", USERS_CACHE, str(team_runs.parent)).stdout.strip() == str(team_runs.parent)
