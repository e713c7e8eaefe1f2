"""A job's own Ray instance, closed to the network. Ray reads these settings when it is imported, so the
command line applies them before its heavy imports (tests/conftest.py does the same for the suite).

Left to itself, a local Ray instance binds its GCS, raylet and worker ports on every address of the machine,
and asks no client for a token: anyone who reaches the machine could run code as the user. Ray treats a
machine where clusters are off (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, Ray's own switch) as a node of its own
and binds loopback only; token authentication (`RAY_AUTH_MODE=token`) with a token made for this job closes it
to the machine's other users too. A job that joins a cluster (RAY_ADDRESS) keeps the cluster's settings;
`RAY_ADDRESS=local`, Ray's own word for a new local instance, joins none: it is the same as no address.
"""
from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path

# The processes of this job's actors on this machine (cluster/placement.py records them), for an exit that
# cannot ask Ray to end them (kill_local_actors).
_local_actors: set[int] = set()


def joins_a_cluster() -> bool:
    """Whether the job joins a running cluster (RAY_ADDRESS names one) rather than starting a local instance."""
    return os.environ.get("RAY_ADDRESS", "") not in ("", "local")


def close_local_ray() -> None:
    """Before Ray is imported: the local instance this process may start listens on loopback only and asks
    every client for a token of its own, unless the user set RAY_AUTH_MODE."""
    if joins_a_cluster():
        return
    if "ray" in sys.modules:
        raise RuntimeError("close_local_ray() must run before Ray is imported: Ray reads these settings then")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def remember_local_actor(pid: int) -> None:
    _local_actors.add(pid)


def kill_local_actors() -> None:
    """End this job's actors on this machine, each with its process group (Ray gives every actor one of its own),
    where Ray can no longer be asked to: its own processes ended first. Only a process that is still a Ray
    worker (its name `ray::...`) is touched: a pid that ended and was reused is another program's."""
    for pid in _local_actors:
        try:
            if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
                continue
            group = os.getpgid(pid)
            if group == os.getpgrp():
                os.kill(pid, signal.SIGKILL)
            else:
                os.killpg(group, signal.SIGKILL)
        except OSError:  # ended meanwhile
            continue
