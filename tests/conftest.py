"""Shared fixtures: a small generated benchmark, the tiny Llama built on it, and one local Ray cluster."""
from __future__ import annotations

import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import pytest

from data import load_benchmark
from models import tiny_model_folder
from orchestrator.pipeline import benchmark_texts


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def small_bench():
    return load_benchmark("builtin", "forget10", seed=0, num_authors=10, facts_per_author=4)


@pytest.fixture(scope="session")
def tiny_model(cache_dir, small_bench):
    return tiny_model_folder(cache_dir, benchmark_texts(small_bench), seed=0)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, ray_cluster):
    """`make smoke` in a temporary folder: (its config, its finished run folder)."""
    from configs import CONFIG_DIR, load_config
    from orchestrator.pipeline import run_unlearning

    root = tmp_path_factory.mktemp("smoke")
    config = load_config(CONFIG_DIR / "smoke.yaml", [f"cache_dir={root / 'cache'}", f"runs_dir={root / 'runs'}"])
    return config, run_unlearning(config)


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()
