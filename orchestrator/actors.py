"""Ray actors: thin wrappers around the plain Sampler and Trainer, and the weight hand-over between them.

An actor's methods are called through `ActorProxy` exactly like the plain object's, so the PMC loop does
not know (or care) whether it drives Ray actors or local objects.
"""
from __future__ import annotations

import os

import ray
import torch

from configs import RunConfig
from engine import Sampler
from trainer import Trainer


class ActorProxy:
    """Blocking method calls on a Ray actor: `proxy.f(x)` is `ray.get(handle.f.remote(x))`."""

    def __init__(self, handle: ray.actor.ActorHandle):
        self.handle = handle

    def __getattr__(self, name: str):
        method = getattr(self.handle, name)
        return lambda *args, **kwargs: ray.get(method.remote(*args, **kwargs))


def sync_weights(trainer, sampler, dtype: str) -> None:
    """Push the trainer's current weights into the sampler's engine.

    Between actors the state dict goes trainer -> object store -> sampler (shared memory on one machine),
    never through the driver and never through disk.
    """
    if isinstance(trainer, ActorProxy):
        ray.get(sampler.handle.load_weights.remote(trainer.handle.export_weights.remote(dtype)))
    else:
        sampler.load_weights(trainer.export_weights(dtype))


def actor_options(config: RunConfig) -> dict:
    """Resources and environment for one actor. Both actors alternate, so each may use every core."""
    gpus = config.ray.num_gpus_per_actor
    if gpus is None:
        gpus = 0.5 if torch.cuda.is_available() else 0
    threads = str(config.threads or os.cpu_count())
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": threads}
    return {"num_cpus": config.ray.num_cpus_per_actor, "num_gpus": gpus, "runtime_env": {"env_vars": env}}


def start_sampler(model_dir, config: RunConfig) -> ActorProxy:
    return ActorProxy(ray.remote(Sampler).options(**actor_options(config)).remote(str(model_dir), config.engine))


def trainer_settings(config: RunConfig, seed: int) -> dict:
    """The Trainer's keyword arguments for a run, the same with or without Ray."""
    return {"precision": config.precision, "threads": config.threads, "seed": seed,
            "entropy_weights": (config.entropy.forget, config.entropy.retain)}


def start_trainer(model_dir, config: RunConfig, seed: int) -> ActorProxy:
    actor = ray.remote(Trainer).options(**actor_options(config))
    return ActorProxy(actor.remote(str(model_dir), **trainer_settings(config, seed)))
