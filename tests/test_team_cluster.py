"""A team's cluster: a batch's Tune state is its own (named in its marker, never restored from what another user
could have written, never another batch's deleted); RAY_ADDRESS=local is as closed as no address; the
shared-memory file is allocated up front, refused with both sizes where it does not fit."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pmc_unlearning.configs.batch_schema import load_batch
from pmc_unlearning.orchestrator.ownership import EXPERIMENT, MARKER, mark
from pmc_unlearning.orchestrator.tune_state import check_experiment, check_restorable, fresh_experiment
from pmc_unlearning.storage.files import NoRoom, allocate, sees_probe, write_probe
from pmc_unlearning.telemetry.errors import Refused

PROJECT = Path(__file__).resolve().parents[1]
SMOKE = PROJECT / "configs" / "smoke.yaml"


def batch_of(tmp_path: Path, runs: str, storage: Path | None = None):
    """Batch 'b' of the smoke preset with its runs in tmp_path/runs, its Tune state under `storage` if given."""
    fields = {"base": str(SMOKE), "grid": {"method": ["pmc"]},
              "set": [f"runs_dir={tmp_path / runs}", "allow_external_dirs=true"],
              **({"storage_path": str(storage)} if storage else {})}
    path = tmp_path / f"{runs}.yaml"
    path.write_text(yaml.safe_dump({"name": "b", **fields}))
    return load_batch(path)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_batchs_tune_state_is_owner_only_and_names_its_batch_even_under_a_group_shared_umask(tmp_path):
    batch = batch_of(tmp_path, "runs", storage=tmp_path / "tune")
    old_umask = os.umask(0o007)
    try:
        experiment = fresh_experiment(batch)
        (experiment / "tuner.pkl").write_bytes(b"state")  # as Tune writes it: group-writable under this umask
    finally:
        os.umask(old_umask)
    assert experiment == tmp_path / "tune" / "b" and experiment.stat().st_mode & 0o777 == 0o700
    marker = json.loads((experiment / MARKER).read_text())
    assert marker == {"made_by": "pmc-unlearning", "kind": EXPERIMENT,
                      "made_for": {"name": "b", "runs_dir": str(tmp_path / "runs" / "b"), "checkout": str(PROJECT)}}
    check_experiment(batch)  # its own: neither refused for continuing nor for replacing
    check_restorable(experiment)


def test_another_batchs_tune_state_is_refused_naming_it_and_kept(tmp_path):
    storage = tmp_path / "tune"
    theirs = fresh_experiment(batch_of(tmp_path, "their-runs", storage))
    (theirs / "tuner.pkl").write_bytes(b"their state")
    before = tree(theirs)
    mine = batch_of(tmp_path, "my-runs", storage)  # the same name and storage, another runs folder
    with pytest.raises(Refused) as refused:
        check_experiment(mine)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{theirs} holds the Tune state of batch 'b' of "
                                                      f"{tmp_path / 'their-runs' / 'b'} (checkout {PROJECT})")
    assert tree(theirs) == before


def test_tune_state_that_names_no_batch_is_refused_under_storage_path_a_link_anywhere(tmp_path):
    elsewhere = tmp_path / "tune" / "b"
    elsewhere.mkdir(parents=True)
    mark(elsewhere, EXPERIMENT)  # as earlier versions marked it
    with pytest.raises(Refused, match="marker names no batch"):
        check_experiment(batch_of(tmp_path, "runs", storage=tmp_path / "tune"))
    own = batch_of(tmp_path, "runs")
    (own.runs_dir / "tune").mkdir(parents=True)
    mark(own.runs_dir / "tune", EXPERIMENT)
    check_experiment(own)  # inside the batch's own folder, it is the batch's
    (own.runs_dir / "tune").rename(own.runs_dir / "elsewhere")
    (own.runs_dir / "tune").symlink_to(own.runs_dir / "elsewhere")
    with pytest.raises(Refused, match=re.escape(f"is not a folder this project made (a link to {own.runs_dir / 'elsewhere'})")):
        check_experiment(own)


@pytest.mark.parametrize("plant, reason", [
    (lambda experiment: experiment.chmod(0o770), "is open to its group (mode 770; chmod go= it"),
    (lambda experiment: experiment.chmod(0o705), "is open to every user (mode 705;"),
    (lambda experiment: (experiment / "trial" / "params.pkl").symlink_to("/etc/hostname"),
     "trial/params.pkl is a link to /etc/hostname"),
    (lambda experiment: os.chown(experiment / "tuner.pkl", 4242, -1), "tuner.pkl belongs to user id 4242, not"),
])
def test_tune_state_anybody_else_could_have_written_is_not_restored_and_kept(tmp_path, plant, reason):
    if "4242" in reason and os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    experiment = fresh_experiment(batch_of(tmp_path, "runs"))
    (experiment / "trial").mkdir()
    (experiment / "tuner.pkl").write_bytes(b"state")
    plant(experiment)
    before = tree(experiment)
    with pytest.raises(Refused) as refused:
        check_restorable(experiment)
    message = str(refused.value)
    assert "\n" not in message and reason in message, message
    assert f"Tune's state in {experiment} is not restored" in message
    assert tree(experiment) == before


@pytest.mark.parametrize("address, joins", [(None, False), ("local", False), ("ray://cluster:10001", True)])
def test_ray_address_local_leaves_the_local_instance_as_closed_as_no_address(address, joins):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH", "RAY_ENABLE_WINDOWS"))}
    if address:
        env["RAY_ADDRESS"] = address
    script = ("import json, os; from pmc_unlearning.cluster.local_ray import close_local_ray, joins_a_cluster; "
              "close_local_ray(); print(json.dumps([joins_a_cluster()] + [os.environ.get(k) for k in "
              "('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER', 'RAY_AUTH_MODE', 'RAY_AUTH_TOKEN')]))")
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    joined, loopback, mode, token = json.loads(result.stdout)
    closed = (loopback, mode, token is not None and len(token) >= 32) == ("0", "token", True)
    assert (joined, closed) == (joins, not joins)


def test_the_shared_file_gets_its_bytes_up_front(tmp_path):
    path = tmp_path / "weights"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        allocate(fd, 2**20, str(tmp_path), "the file", "no remedy")
    finally:
        os.close(fd)
    assert path.stat().st_size == 2**20 and path.stat().st_blocks * 512 >= 2**20  # not sparse


def test_a_shared_file_that_does_not_fit_is_refused_with_both_sizes():
    """/dev/shm (a tmpfs) refuses an allocation larger than itself at once, before it takes any memory."""
    room = os.statvfs("/dev/shm")
    if room.f_blocks == 0:
        pytest.skip("/dev/shm has no size limit here")
    size = 2 * room.f_blocks * room.f_frsize
    path = Path("/dev/shm") / f"pmc-test-{os.getpid()}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with pytest.raises(NoRoom) as refused:
            allocate(fd, size, "/dev/shm", "the weight push's shared-memory file", "free some")
    finally:
        os.close(fd)
        path.unlink()
    message = str(refused.value)
    found = re.fullmatch(r"the weight push's shared-memory file needs (\d+) bytes in /dev/shm, which has (\d+) bytes "
                         r"free: free some", message)
    assert found and int(found.group(1)) == size, message
    free_now = os.statvfs("/dev/shm").f_bavail * room.f_frsize
    assert abs(int(found.group(2)) - free_now) <= 0.05 * room.f_blocks * room.f_frsize  # other jobs use it too


def test_a_probe_is_seen_where_it_was_written_only_and_removed(tmp_path):
    here, elsewhere = tmp_path / "probe", tmp_path / "other-node-probe"
    write_probe(str(here), "token")
    assert sees_probe(here, "token") and not here.exists()
    write_probe(str(elsewhere), "token")
    assert not sees_probe(here, "token")
