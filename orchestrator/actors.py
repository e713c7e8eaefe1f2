"""Ray actors: thin wrappers around the plain Sampler and Trainer (the weight hand-over between them is in
orchestrator/weight_sync.py).

An actor's methods are called through `ActorProxy` exactly like the plain object's, so the PMC loop does
not know (or care) whether it drives Ray actors or local objects.
"""
from __future__ import annotations

import ray

from configs import RunConfig
from engine import Sampler
from orchestrator.placement import SAMPLER, Placement
from trainer import Trainer


class ActorProxy:
    """Blocking method calls on a Ray actor: `proxy.f(x)` is `ray.get(handle.f.remote(x))`."""

    def __init__(self, handle: ray.actor.ActorHandle, name: str, role: str):
        self.handle = handle
        self.name = name  # the actor's Ray name
        self.role = role  # what it is to the job: sampler, trainer, retain-model scorer
        self.pushes_weights = False  # a trainer connected to its engines (weight_sync.py)

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


def actor_name(config: RunConfig, role: str) -> str:
    """Named after the run, so that an operator (or a test) can find a run's actors: `ray.get_actor(name)`."""
    return f"{config.name}:{role}"


def start_sampler(model_dir, config: RunConfig, placement: Placement) -> ActorProxy:
    name = actor_name(config, SAMPLER)
    handle = ray.remote(Sampler).options(**placement.options(SAMPLER), name=name).remote(str(model_dir), config.engine)
    return ActorProxy(handle, name, SAMPLER)


def trainer_settings(config: RunConfig, seed: int) -> dict:
    """The Trainer's keyword arguments for a run, the same with or without Ray."""
    return {"precision": config.precision, "threads": config.threads, "seed": seed,
            "entropy_weights": (config.entropy.forget, config.entropy.retain)}


def start_trainer(model_dir, config: RunConfig, placement: Placement, seed: int, role: str = "trainer") -> ActorProxy:
    name = actor_name(config, role)
    handle = ray.remote(Trainer).options(**placement.options(role), name=name).remote(
        str(model_dir), **trainer_settings(config, seed))
    return ActorProxy(handle, name, role)
