"""A job's Ray session: the cluster named by RAY_ADDRESS, or a local instance of its own, closed to the network."""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

import ray

from pmc_unlearning.cluster.bundles import local_cpus
from pmc_unlearning.telemetry.console import worker_env


@contextmanager
def ray_session(num_cpus: float = 0, env: dict[str, str] | None = None) -> Iterator[None]:
    """Join the cluster named by RAY_ADDRESS, or start (and later stop) a local Ray instance with at least
    `num_cpus` logical CPUs (a batch asks for what its concurrent trials' groups need: sampler and trainer
    alternate, so the cores they share are not oversubscribed). `env` goes to every Ray worker of the job.

    A cluster keeps its own authentication (RAY_AUTH_MODE, its token) exactly as the environment gives it.
    The local instance is closed to the network: the command line set it up before Ray was imported
    (cluster/local_ray.py: loopback only, a token of its own), and it has no dashboard.
    """
    if ray.is_initialized():
        yield
        return
    address = os.environ.get("RAY_ADDRESS")
    runtime_env = {"env_vars": {**worker_env(), **(env or {})}}  # the console's: quiet libraries, or VERBOSE
    on_sigterm = signal.getsignal(signal.SIGTERM)
    if address:
        ray.init(address=address, runtime_env=runtime_env)
    else:
        # "local": a new instance of its own even where another job on this machine runs one
        ray.init(address="local", num_cpus=local_cpus(num_cpus), include_dashboard=False, runtime_env=runtime_env)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)  # the job's own ending (Ray's driver handler exits on the spot)
    try:
        yield
    finally:
        ray.shutdown()
