"""Where a job's work runs: one Ray placement group per job, a bundle per role.

A batch trial's group is made by Ray Tune (bundle 0 is the trial's own process, see orchestrator/batch.py);
a job of its own makes its group when it starts and removes it when it ends. The sampler (vLLM) has a
bundle; the trainer has one, and the work done before it starts (the target and retain fine-tunes, the
retain-model scorer) takes the trainer's bundle in turn. With `ray.colocate` both share one bundle: one
node, one GPU. Each actor asks for exactly its share of its bundle, so what a job asks of the cluster is
decided in one place.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import ray
from ray.util.placement_group import PlacementGroup, get_current_placement_group, placement_group, \
    remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from configs import RayConfig, RunConfig
from orchestrator.errors import JobError

SAMPLER = "sampler"
READY_TIMEOUT_S = 300  # a group the cluster cannot hold (too few CPUs or GPUs) fails the job after this


def cluster_has_gpus() -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0


def job_bundles(ray_config: RayConfig, gpus: bool) -> list[dict[str, float]]:
    """The sampler's bundle and the trainer's, or their one shared bundle when colocated."""
    share = ray_config.num_gpus_per_actor
    role = {"CPU": ray_config.num_cpus_per_actor, "GPU": (0.5 if gpus else 0.0) if share is None else share}
    role = {kind: amount for kind, amount in role.items() if amount}
    if ray_config.colocate:
        return [{kind: 2 * amount for kind, amount in role.items()} or {"CPU": 0.01}]
    return [role or {"CPU": 0.01}, dict(role) or {"CPU": 0.01}]  # Ray refuses an empty bundle


def trial_bundles(ray_config: RayConfig, trial_cpus: float, gpus: bool) -> list[dict[str, float]]:
    """A batch trial's group: its own process first (Tune's rule), then the job's bundles."""
    return [{"CPU": trial_cpus}, *job_bundles(ray_config, gpus)]


def bundle_cpus(bundles: list[dict[str, float]]) -> float:
    """The CPUs a placement group of these bundles holds: what a local Ray instance needs per concurrent trial."""
    return sum(bundle.get("CPU", 0) for bundle in bundles)


class Placement:
    """A job's placement group and which of its bundles each role takes (from `first`, the job's first)."""

    def __init__(self, group: PlacementGroup, first: int, config: RunConfig):
        self.group, self.first, self.config = group, first, config

    def bundle_of(self, role: str) -> int:
        return self.first + (0 if self.config.ray.colocate or role == SAMPLER else 1)

    def options(self, role: str) -> dict:
        """Ray options of the actor or task that does `role`'s work: its share of its bundle, and its threads.
        Sampler and trainer alternate, so each may use every core of its node."""
        index = self.bundle_of(role)
        sharers = 2 if self.config.ray.colocate else 1
        bundle = self.group.bundle_specs[index]
        threads = str(self.config.threads or os.cpu_count())
        return {"num_cpus": bundle.get("CPU", 0) / sharers, "num_gpus": bundle.get("GPU", 0) / sharers,
                "scheduling_strategy": PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=index),
                "runtime_env": {"env_vars": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": threads}}}

    def record(self, actors) -> dict:
        """Where the job's process and each actor run (node, bundle, devices): saved in the run folder."""
        where = {"job": {**_here(), "bundle": self.first - 1 if self.first else None}}
        for actor in actors:
            where[actor.role] = {**ray.get(actor.handle.__ray_call__.remote(lambda _self: _here())),
                                 "bundle": self.bundle_of(actor.role)}
        return {"placement_group": self.group.id.hex(), "bundles": self.group.bundle_specs, "roles": where}


def _here() -> dict:
    context = ray.get_runtime_context()
    return {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(), "pid": os.getpid(),
            "gpu_ids": context.get_accelerator_ids().get("GPU", [])}


@contextmanager
def job_placement(config: RunConfig) -> Iterator[Placement]:
    """The job's placement: the batch trial's group it runs in, or a group of its own for its lifetime."""
    trial_group = get_current_placement_group()
    if trial_group is not None:
        yield Placement(trial_group, 1, config)
        return
    bundles = job_bundles(config.ray, cluster_has_gpus())
    group = placement_group(bundles, strategy="PACK", name=f"{config.name}:job")
    try:
        ready, _ = ray.wait([group.ready()], timeout=READY_TIMEOUT_S)
        if not ready:
            raise JobError(f"the cluster cannot hold the job's placement group {bundles} after {READY_TIMEOUT_S} s "
                           f"(it has {ray.available_resources()} free); lower ray.num_cpus_per_actor or "
                           "ray.num_gpus_per_actor, or add nodes")
        yield Placement(group, 0, config)
    finally:
        remove_placement_group(group)
