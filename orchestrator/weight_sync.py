"""How the trainer's weights reach the sampling engine after each training step, for plain objects and Ray
actors alike.

Two paths. Where trainer and engine share a node and the engine is a CPU engine, vLLM's own weight-transfer
interface with the project's shared-memory backend (engine/weight_transfer.py): the trainer copies its
weights into memory the engine mapped once, and the engine reloads from it. Elsewhere, the state dict:
trainer -> Ray's object store -> sampler, never through the driver and never through disk.
"""
from __future__ import annotations

import ray
from vllm.distributed.weight_transfer.clients import RayVLLMWeightSyncClient

from engine.weight_transfer import DirectClient
from orchestrator.actors import ActorProxy


def set_up_weight_transfer(setting: str, trainer, sampler, placed: dict, dtype: str) -> str:
    """The path this job's pushes take (`engine.weight_transfer`; 'auto': shared memory where it can work,
    judged from the job's placement record), connected: 'shm' or 'object_store'."""
    if setting == "auto":
        roles = placed["roles"]
        same_node = roles["sampler"]["node_id"] == roles["trainer"]["node_id"]
        setting = "shm" if same_node and sampler.accepts_shared_memory() else "object_store"
    if setting == "shm":
        connect_weight_transfer(trainer, [sampler], dtype)
    return setting


def connect_weight_transfer(trainer, samplers, dtype: str) -> None:
    """From now on `sync_weights` pushes through vLLM's weight-transfer interface with the shared-memory
    backend, to every one of `samplers`. Trainer and engines must share a node."""
    if isinstance(trainer, ActorProxy):
        trainer.connect_engines(RayVLLMWeightSyncClient([sampler.handle for sampler in samplers]), dtype)
        trainer.pushes_weights = True
    else:
        trainer.connect_engines(DirectClient(samplers), dtype)


def sync_weights(trainer, sampler, dtype: str) -> None:
    """Push the trainer's current weights into the sampler's engine, by the path connected (or the state dict)."""
    if trainer.pushes_weights:
        trainer.push_weights()
    elif isinstance(trainer, ActorProxy):
        ray.get(sampler.handle.load_weights.remote(trainer.handle.export_weights.remote(dtype)))
    else:
        sampler.load_weights(trainer.export_weights(dtype))
