"""Shared fixtures: a small generated benchmark, the tiny Llama built on it, and one local Ray cluster."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pmc_unlearning.configs import machine_threads  # imports neither torch nor Ray

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
# The workers of `make test` share the cores: each worker's own torch and vLLM (OMP_NUM_THREADS), and every job it
# starts (PMC_THREADS, the default of the `threads` setting), get their share. Beyond the cores, OpenMP threads
# spin against each other: two jobs side by side took three times as long with every core each as with one each.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _SHARE = str(max(1, machine_threads() // _WORKERS))
    os.environ.setdefault("OMP_NUM_THREADS", _SHARE)
    os.environ.setdefault("PMC_THREADS", _SHARE)
# Before Ray is imported, as the command line does it.
from pmc_unlearning.cluster.local_ray import close_local_ray

close_local_ray()  # the suite's Ray instances, and the jobs it starts, listen on loopback and ask for a token

import pytest

from pmc_unlearning.data import load_benchmark
from pmc_unlearning.models.tiny import tiny_model_folder
from pmc_unlearning.orchestrator.inputs import benchmark_texts

PROJECT = Path(__file__).resolve().parents[1]

# Fixtures that start Ray or whole jobs: a test that uses one (directly or through another fixture) is heavy.
HEAVY_FIXTURES = {"ray_cluster", "smoke_run", "tiny_engine", "engine_and_trainer"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The quick tier (`make test-quick`: -m "not heavy") leaves out every test that starts Ray, a vLLM engine
    or a job: those that use a heavy fixture, and those marked `heavy` themselves (an engine or a command-line
    job of their own)."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.heavy)


@pytest.fixture(scope="session")
def offline_datasets(tmp_path_factory: pytest.TempPathFactory):
    """`datasets` with the hub switched off and an empty cache of its own."""
    import datasets
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_DATASETS_OFFLINE", "1")
        patch.setenv("HF_HUB_OFFLINE", "1")
        # Both libraries read the variables at import time, which may already have happened.
        patch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf-datasets"))
        yield datasets


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def small_bench():
    return load_benchmark("builtin", "forget10", seed=0, num_authors=10, facts_per_author=4)


@pytest.fixture(scope="session")
def tiny_model(cache_dir, small_bench):
    return tiny_model_folder(cache_dir, benchmark_texts(small_bench), seed=0)


# A ChatML-like template in the tiny tokenizer's own special tokens.
TINY_CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                      "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


@pytest.fixture(scope="session")
def chat_tiny_model(tiny_model, tmp_path_factory):
    """The tiny model as an "instruct" model: a chat template in its tokenizer, "instruct" in its name."""
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("models") / "tiny-instruct"
    shutil.copytree(tiny_model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, worker_id):
    """`make smoke` through the command line in a temporary folder, with the retain model for forget quality, its
    cache group-shared (set-group-id): (its config, its finished run folder). Its console output (stdout, then stderr) is kept beside the run
    folder, in `console.txt`, for the tests of the console (`smoke_console`). With two workers (make test) the
    first to get here runs it in the session's shared folder and the other waits for it and reads the same run."""
    from filelock import FileLock

    from pmc_unlearning.configs import CONFIG_DIR, load_config

    root = tmp_path_factory.mktemp("smoke") if worker_id == "master" else \
        tmp_path_factory.getbasetemp().parent / "smoke"  # the parent of the workers' folders is this session's
    settings = [f"cache_dir={root / 'cache'}", f"runs_dir={root / 'runs'}", "allow_external_dirs=true",
                "eval.retain_model=true"]
    config = load_config(CONFIG_DIR / "smoke.yaml", settings)
    root.mkdir(exist_ok=True)
    with FileLock(str(root / ".made.lock")):
        finished = config.runs_dir / config.name
        if not (finished / "eval.json").is_file():
            (root / "cache").mkdir()
            (root / "cache").chmod(0o2700)  # group-shared, as a team's: each user's entries in a folder of hers
            (root / "tmp").mkdir()  # the job's temporary folder: empty again once the job is over
            result = run_cli("unlearn", "--config", str(CONFIG_DIR / "smoke.yaml"), *set_args(settings),
                             env={"TMPDIR": str(root / "tmp")})
            (config.runs_dir / "console.txt").write_text(result.stdout + result.stderr)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return config, finished


@pytest.fixture(scope="session")
def smoke_console(smoke_run) -> str:
    """What the session's smoke job printed, as `make smoke` prints it off a terminal (stdout, then stderr)."""
    config, _ = smoke_run
    return (config.runs_dir / "console.txt").read_text()


def run_cli(*arguments: str, verbose: bool = False, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m pmc_unlearning.orchestrator <arguments>` in a subprocess whose output is not a terminal,
    offline, with the console quiet unless `verbose` (VERBOSE=1), and `env` on top of this process's."""
    from pmc_unlearning.telemetry import console

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    env.pop(console.VERBOSE_ENV, None)
    if verbose:
        env[console.VERBOSE_ENV] = "1"
    return subprocess.run([sys.executable, "-m", "pmc_unlearning.orchestrator", *arguments], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def set_args(settings) -> list[str]:
    """The command line's `--set KEY=VALUE` for each of `settings`."""
    return [arg for setting in settings for arg in ("--set", setting)]


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance for the session's in-process jobs and actors, set up as a job's (cluster/session.py)."""
    from pmc_unlearning.cluster.session import ray_session

    with ray_session(num_cpus=2):
        yield


class Teammates:
    """Two OS users, `ann` and `bob` (their names made unique), in one group of their own, as a team shares a
    machine; `run_as` runs Python code as one of them, importing this checkout's package.

    Their Python is the suite's own where they can run it; where it lives in a folder only the suite's user can
    enter (a pyenv under /root), the system's python3 of the same version, which has the standard library but
    not the project's dependencies: enough for what ownership and run folders do (`has_dependencies` says
    which)."""

    def __init__(self, suffix: str, folder: Path):
        self.group = f"pmcteam{suffix}"
        self.users = {who: f"pmc{who}{suffix}" for who in ("ann", "bob")}
        subprocess.run(["groupadd", self.group], check=True)
        for user in self.users.values():
            subprocess.run(["useradd", "--no-create-home", "--gid", self.group, "--shell", "/usr/sbin/nologin", user],
                           check=True)
        self.gid = int(subprocess.run(["getent", "group", self.group], capture_output=True, text=True,
                                      check=True).stdout.split(":")[2])
        self.uids = {who: int(subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True).stdout)
                     for who, user in self.users.items()}
        importable = folder / "importable"  # `pmc_unlearning` -> this checkout, for an interpreter without it
        importable.mkdir()
        (importable / "pmc_unlearning").symlink_to(PROJECT)
        self.env = {**os.environ, "HOME": str(folder), "PYTHONPATH": str(importable)}
        self.python, self.has_dependencies = sys.executable, True
        if self.run_as("ann", "import pmc_unlearning").returncode != 0:
            self.python, self.has_dependencies = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}", False

    def shared_folder(self, path: Path) -> Path:
        """A folder as the image's group-shared runs folder is: setgid, rwx for the group (2770)."""
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, 0, self.gid)
        path.chmod(0o2770)
        return path

    def run_as(self, who: str, code: str, *args: str, umask: int = 0o027, wait: bool = True):
        """`code` run by `python -c` as `who` (the team's umask by default) from the checkout, with its output."""
        command = ["setpriv", f"--reuid={self.uids[who]}", f"--regid={self.gid}", "--clear-groups", "sh", "-c",
                   f'umask {umask:03o}; exec "$@"', "sh", self.python, "-c", code, *args]
        if wait:
            return subprocess.run(command, cwd="/", env=self.env, capture_output=True, text=True, timeout=60)
        return subprocess.Popen(command, cwd="/", env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def remove(self) -> None:
        for user in self.users.values():
            subprocess.run(["userdel", user], check=False)
        subprocess.run(["groupdel", self.group], check=False)


@pytest.fixture(scope="session")
def teammates():
    """Two users of one group (see Teammates); skipped where the suite cannot make users (not root)."""
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("useradd", "groupadd", "setpriv")):
        pytest.skip("making a second user needs root and useradd, groupadd and setpriv; this suite runs as user "
                    f"id {os.geteuid()}")
    folder = Path(tempfile.mkdtemp(prefix="pmc-team-", dir="/tmp"))
    folder.chmod(0o755)  # every user reaches it (pytest's own folders are the suite user's only)
    team = None
    try:
        team = Teammates(f"{os.getpid() % 100000}", folder)
        yield team
    finally:
        if team:
            team.remove()
        shutil.rmtree(folder)
