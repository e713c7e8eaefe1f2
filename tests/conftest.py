"""Shared fixtures: a small generated benchmark, the tiny Llama built on it, and one local Ray cluster."""
from __future__ import annotations

import os
import subprocess
import sys
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
    """`make smoke` through the command line in a temporary folder, with the retain model for forget quality:
    (its config, its finished run folder). Its console output (stdout, then stderr) is kept beside the run
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
