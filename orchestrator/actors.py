"""Ray actors: thin wrappers around the plain Sampler and Trainer, and the weight hand-over between them.

An actor's methods are called through `ActorProxy` exactly like the plain object's, so the PMC loop does
not know (or care) whether it drives Ray actors or local objects.
"""
from __future__ import annotations

import ray
from vllm.distributed.weight_transfer.clients import RayVLLMWeightSyncClient

from configs import RunConfig
from engine import Sampler
from engine.weight_transfer import DirectClient
from orchestrator.placement import SAMPLER, Placement
from trainer import Trainer


class ActorProxy:
    """Blocking method calls on a Ray actor: `proxy.f(x)` is `ray.get(handle.f.remote(x))`."""

    def __init__(self, handle: ray.actor.ActorHandle, name: str, role: str):
        self.handle = handle
        self.name = name  # the actor's Ray name
        self.role = role  # what it is to the job: sampler, trainer, retain-model scorer
        self.pushes_weights = False  # a trainer connected to its engines (connect_weight_transfer)

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


def connect_weight_transfer(trainer, samplers, dtype: str) -> None:
    """From now on `sync_weights` pushes through vLLM's weight-transfer interface with the shared-memory
    backend (engine/weight_transfer.py): the trainer copies its weights into memory the engines map, and
    each engine reloads from it. Trainer and engines must share a node."""
    if isinstance(trainer, ActorProxy):
        trainer.connect_engines(RayVLLMWeightSyncClient([sampler.handle for sampler in samplers]), dtype)
        trainer.pushes_weights = True
    else:
        trainer.connect_engines(DirectClient(samplers), dtype)


def shared_memory_possible(sampler, placed: dict) -> bool:
    """Whether the shared-memory push can work for this job: sampler and trainer on one node (placement.json's
    `roles`), and an engine built to receive it (a CPU engine)."""
    roles = placed["roles"]
    return roles["sampler"]["node_id"] == roles["trainer"]["node_id"] and sampler.accepts_shared_memory()


def sync_weights(trainer, sampler, dtype: str) -> None:
    """Push the trainer's current weights into the sampler's engine.

    Through vLLM's weight-transfer interface once connected (`connect_weight_transfer`); else, between
    actors, the state dict goes trainer -> object store -> sampler (any placement), never through the
    driver and never through disk.
    """
    if trainer.pushes_weights:
        trainer.push_weights()
    elif isinstance(trainer, ActorProxy):
        ray.get(sampler.handle.load_weights.remote(trainer.handle.export_weights.remote(dtype)))
    else:
        sampler.load_weights(trainer.export_weights(dtype))


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
