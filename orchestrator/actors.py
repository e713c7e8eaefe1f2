"""Ray actors: thin wrappers around the plain Sampler and Trainer (orchestrator/groups.py starts them as a
job's engines and trainer ranks; the weight hand-over between them is in orchestrator/weight_sync.py).

An actor's methods are called through `ActorProxy` exactly like the plain object's, so the PMC loop does
not know (or care) whether it drives Ray actors or local objects.
"""
from __future__ import annotations

import ray

from configs import RunConfig


class ActorProxy:
    """Blocking method calls on a Ray actor: `proxy.f(x)` is `ray.get(handle.f.remote(x))`."""

    def __init__(self, handle: ray.actor.ActorHandle, name: str, role: str, index: int = 0):
        self.handle = handle
        self.name = name  # the actor's Ray name
        self.role = role  # what it is to the job: sampler, trainer, retain-model scorer
        self.index = index  # which engine or trainer rank of its role

    @property
    def label(self) -> str:
        """The actor in messages and the placement record: 'sampler 0', 'trainer 1', ..."""
        return f"{self.role} {self.index}"

    def __getattr__(self, method_name: str):
        method = getattr(self.handle, method_name)
        return lambda *args, **kwargs: ray.get(method.remote(*args, **kwargs))

    def alive(self) -> bool:
        """Whether the actor still runs: Ray frees the name of an actor that died."""
        try:
            ray.get_actor(self.name)
        except ValueError:
            return False
        return True


def release(*proxies: ActorProxy) -> None:
    """Kill the actors now (their GPU/CPU memory is freed), whatever state they are in."""
    for proxy in proxies:
        ray.kill(proxy.handle)


def actor_name(config: RunConfig, label: str) -> str:
    """Named after the run, so that an operator (or a test) can find a run's actors: `ray.get_actor(name)`."""
    return f"{config.name}:{label}"
