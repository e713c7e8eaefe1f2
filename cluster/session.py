"""A job's Ray session: the cluster named by RAY_ADDRESS, or a local instance of its own, closed to the network."""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import ray

from pmc_unlearning.cluster.bundles import local_cpus
from pmc_unlearning.cluster.local_ray import joins_a_cluster
from pmc_unlearning.storage.files import private_scratch
from pmc_unlearning.telemetry.console import worker_env

RAY_BASE = Path("/tmp")


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
    env_vars = {**worker_env(), **(env or {})}  # the console's: quiet libraries, or VERBOSE
    if joins_a_cluster():
        with _joined(lambda: ray.init(address=os.environ["RAY_ADDRESS"], runtime_env={"env_vars": env_vars})):
            yield
        return
    # A local instance keeps its session files (logs, sockets) and its workers' temporary files (vLLM's
    # rendezvous file per engine start) in a folder of the job's own, gone when the job ends; Ray's default,
    # /tmp/ray, would keep every session's, readable by every user. In /tmp, as Ray's, whatever TMPDIR says:
    # a socket's path must stay under 108 bytes, and Ray's session folder inside adds about 70.
    with private_scratch("pmc-ray", RAY_BASE) as scratch:
        # "local": a new instance of its own even where another job on this machine runs one
        with _joined(lambda: ray.init(address="local", num_cpus=local_cpus(num_cpus), include_dashboard=False,
                                      runtime_env={"env_vars": {**env_vars, "TMPDIR": str(scratch)}},
                                      _temp_dir=str(scratch / "ray"))):
            yield


@contextmanager
def _joined(init) -> Iterator[None]:
    """Ray started by `init()` for the block and shut down after it, SIGTERM left to the job's own handler."""
    on_sigterm = signal.getsignal(signal.SIGTERM)
    init()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)  # the job's own ending (Ray's driver handler exits on the spot)
    try:
        yield
    finally:
        ray.shutdown()
