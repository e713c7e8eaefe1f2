"""Where a group of processes meets: this node's address and a port free on it (a trainer group's
torch.distributed group, an NCCL weight-transfer group), asked of the rank that listens."""
from __future__ import annotations

import socket


def node_ip() -> str:
    """This node's address as the other nodes of a Ray cluster reach it."""
    import ray  # the groups are made inside Ray actors

    return ray.util.get_node_ip_address()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]
