"""A job whose actor dies stops with one line naming the actor and where, keeps its partial folder, and leaves
no actor behind; a local Ray instance is closed to the network."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray

from pmc_unlearning.cluster.actors import ActorProxy
from pmc_unlearning.cluster.groups import TrainerGroup
from pmc_unlearning.configs import CONFIG_DIR, load_config
from pmc_unlearning.orchestrator import pipeline
from pmc_unlearning.orchestrator.pipeline import actor_failures, check_shared_cache, check_shared_storage
from pmc_unlearning.orchestrator.run_folder import RunFolder
from pmc_unlearning.telemetry.errors import JobError
from pmc_unlearning.telemetry.timing import StageTimer

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick

PROJECT = Path(__file__).resolve().parents[1]


def test_a_dying_sampler_ends_the_run_naming_it_and_the_round(smoke_run, ray_cluster, tmp_path, monkeypatch):
    smoke_config, _ = smoke_run
    config = load_config(CONFIG_DIR / "smoke.yaml", [f"cache_dir={smoke_config.cache_dir}", f"runs_dir={tmp_path}",
                                                     "allow_external_dirs=true", "eval.retain_model=true", "name=dying"])
    real_run_rounds = pipeline.run_rounds

    def kill_the_sampler_after_round_1(method, sampler, trainer, *args, log, **kwargs):
        def log_and_kill(record):
            log(record)
            if record["round"] == 1:
                ray.kill(sampler.members[0].handle)  # a real kill of the real actor, as an out-of-memory kill would be

        return real_run_rounds(method, sampler, trainer, *args, log=log_and_kill, **kwargs)

    monkeypatch.setattr(pipeline, "run_rounds", kill_the_sampler_after_round_1)
    with pytest.raises(JobError) as error:
        pipeline.run_unlearning(config)
    message = str(error.value)
    assert "\n" not in message
    # The round named is the one after the last completed: the first after round 1 that used the engine
    # (sampling, or the weight push before the evaluation once every question is at zero).
    failed_round = int(re.match(r"the sampler 0 actor died during unlearning round (\d+) \(", message).group(1))
    assert message.endswith(f"the partial run is kept in {tmp_path / 'dying.partial'}")
    partial = tmp_path / "dying.partial"
    done = [json.loads(line)["round"] for line in (partial / "metrics.jsonl").read_text().splitlines()]
    assert done == list(range(1, failed_round)) and failed_round >= 2
    assert not (tmp_path / "dying").exists()
    for role in ("sampler 0", "trainer 0", "retain-model scorer 0"):  # every actor of the job is gone
        with pytest.raises(ValueError):
            ray.get_actor(f"dying:{role}")


@pytest.mark.parametrize("address,user_mode,expected", [
    (None, None, ("0", "token", True)),  # the local instance: loopback only, a token of its own
    (None, "disabled", ("0", "disabled", False)),  # the user's choice of authentication stays
    ("ray://cluster:10001", None, (None, None, False)),  # a cluster keeps its own settings: nothing is set
])
def test_a_local_ray_instance_is_closed_to_the_network_unless_the_user_chose(address, user_mode, expected):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH", "RAY_ENABLE_WINDOWS"))}
    env.update({name: value for name, value in (("RAY_ADDRESS", address), ("RAY_AUTH_MODE", user_mode)) if value})
    script = ("import json, os; from pmc_unlearning.cluster.local_ray import close_local_ray; close_local_ray(); "
              "print(json.dumps([os.environ.get(k) for k in ('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER', 'RAY_AUTH_MODE', "
              "'RAY_AUTH_TOKEN')]))")
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    loopback, mode, token = json.loads(result.stdout)
    assert (loopback, mode, token is not None and len(token) >= 32) == expected


LOCAL_INSTANCE = """
import os, shutil, sys, tempfile
from pmc_unlearning.cluster.local_ray import close_local_ray
close_local_ray()
import ray

session = tempfile.mkdtemp(prefix="pmc-test-ray-")  # not Ray's /tmp/ray, which would keep it
ray.init(address="local", num_cpus=1, include_dashboard=False, _temp_dir=session)
assert ray.get(ray.remote(lambda: os.getpid()).remote()) != os.getpid()  # a worker runs
print("ready", flush=True)
sys.stdin.readline()
ray.shutdown()
shutil.rmtree(session, ignore_errors=True)
"""


def listening_sockets(root_pid: int) -> list[tuple[str, str]]:
    """(process name, local address) of every listening TCP socket of `root_pid` and its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
        except OSError:
            continue
        children.setdefault(int(rest.rsplit(")", 1)[1].split()[1]), []).append(int(pid))
    tree, todo = set(), [root_pid]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    inodes = {}
    for pid in tree:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = name
        except OSError:
            continue
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append((inodes[fields[9]], fields[1].split(":")[0]))
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, ::1, ::ffff:127.0.0.1


@pytest.mark.parametrize("address", [None, "local"])  # Ray's word for a local instance: no cluster either
def test_a_local_jobs_ray_processes_listen_on_loopback_only(address):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH", "RAY_ENABLE_WINDOWS"))}
    if address:
        env["RAY_ADDRESS"] = address
    job = subprocess.Popen([sys.executable, "-c", LOCAL_INSTANCE], cwd=PROJECT, env=env, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    try:
        assert job.stdout.readline().strip() == "ready"
        sockets = listening_sockets(job.pid)
    finally:
        job.communicate("\n", timeout=60)
    assert job.returncode == 0
    names = {name for name, _ in sockets}
    assert {"gcs_server", "raylet"} <= names, sockets  # the instance's own servers were seen
    assert [(name, address) for name, address in sockets if address not in LOOPBACK] == []


def test_a_hung_actor_or_one_that_raises_ends_the_job_in_one_line_naming_it(ray_cluster, tmp_path):
    class Stuck:  # defined here: Ray's workers cannot import the test module, so it travels by value
        def wait(self, seconds: float) -> str:
            time.sleep(seconds)
            return "answered"

        def fail(self) -> None:
            raise ValueError("the engine's cache is full\nsecond line of the cause")

    config = load_config(None, [f"runs_dir={tmp_path}", "name=hung", "allow_external_dirs=true"])
    run = RunFolder(config, extra={})
    timer = StageTimer()
    def new_actor() -> ActorProxy:
        """An actor that has started (its process's start, slow on a busy machine, is not the call's time)."""
        actor = ActorProxy(ray.remote(Stuck).options(num_cpus=0).remote(), "hung:sampler 0", "sampler", 0, timeout=1.0)
        ray.get(actor.handle.wait.remote(0), timeout=120)
        return actor

    assert new_actor().wait(0) == "answered"
    for call, expected in ((lambda actor: actor.wait(30), "the sampler 0 actor did not answer wait within 1 s "
                                                          "(ray.call_timeout_s) during evaluation;"),
                           (lambda actor: actor.fail(),
                            "the sampler 0 actor's fail raised ValueError: the engine's cache is full during evaluation;")):
        started = time.monotonic()
        with pytest.raises(JobError) as error:
            with timer("evaluation"), actor_failures(run, timer) as actors:
                actors.append(new_actor())
                call(actors[0])
        assert time.monotonic() - started < 15
        assert str(error.value).startswith(expected) and "\n" not in str(error.value), str(error.value)
        assert str(error.value).endswith(f"the partial run is kept in {run.path}")


def test_a_run_folder_the_trainers_node_does_not_share_ends_the_job(tmp_path):
    class Rank:  # a trainer rank on a node whose run folder is another disk: its writes land elsewhere
        def __init__(self, folder: Path):
            self.folder = folder

        def write_probe(self, folder: str, token: str) -> None:
            (self.folder / ".storage-probe-0").write_text(token)

    shared, elsewhere = tmp_path / "run", tmp_path / "other-node"
    shared.mkdir(), elsewhere.mkdir()
    check_shared_storage(shared, TrainerGroup([Rank(shared)]))  # the same disk: no complaint, nothing left
    assert list(shared.iterdir()) == []
    with pytest.raises(JobError, match="is not shared between this node and trainer rank 0's"):
        check_shared_storage(shared, TrainerGroup([Rank(elsewhere)]))


def test_a_cache_dir_the_fine_tunes_node_does_not_share_ends_the_job_before_the_fine_tune(tmp_path):
    cache, elsewhere = tmp_path / "cache", tmp_path / "other-node"
    (cache / "targets").mkdir(parents=True), elsewhere.mkdir()
    same_disk = lambda path, token: Path(path).write_text(token)
    other_disk = lambda path, token: (elsewhere / Path(path).name).write_text(token)  # its own disk's cache_dir
    check_shared_cache(cache, cache / "targets", "the target fine-tune's", same_disk)  # no complaint, nothing left
    assert list((cache / "targets").iterdir()) == []
    with pytest.raises(JobError) as error:
        check_shared_cache(cache, cache / "targets", "the target fine-tune's", other_disk)
    assert str(error.value).startswith(f"cache_dir {cache} is not shared between this node and the target fine-tune's: ")
