"""Where a job's work runs: one Ray placement group per job, a bundle per role and rank.

A batch trial's group is made by Ray Tune (bundle 0 is the trial's own process, see orchestrator/batch.py);
a job of its own makes its group when it starts and removes it when it ends. Each sampling engine
(`ray.sampler_replicas`) has a bundle, then each trainer rank (`ray.trainer_workers`) has one; the work
done before the trainers start (the target and retain fine-tunes, the retain-model scorer) takes trainer
rank 0's bundle in turn. With `ray.colocate`, engine i and trainer rank i share bundle i: one node, one
GPU. Each actor asks for exactly its share of its bundle, so what a job asks of the cluster is decided in
one place.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import ray
from ray.util.placement_group import (
    PlacementGroup,
    get_current_placement_group,
    placement_group,
    remove_placement_group,
)
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from pmc_unlearning.cluster.bundles import job_bundles, refuse_more_than
from pmc_unlearning.cluster.local_ray import joins_a_cluster, remember_local_actor
from pmc_unlearning.configs import RunConfig, machine_threads
from pmc_unlearning.telemetry.errors import JobError

SAMPLER = "sampler"
TRAINER = "trainer"
READY_TIMEOUT_S = 300  # a group the cluster cannot hold (too few CPUs or GPUs) fails the job after this


def cluster_has_gpus() -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0


class Placement:
    """A job's placement group and which of its bundles each role's members take (from `first`, the job's first)."""

    def __init__(self, group: PlacementGroup, first: int, config: RunConfig):
        self.group, self.first, self.config = group, first, config

    def bundle_of(self, role: str, index: int = 0) -> int:
        """Engine `index`'s bundle, or trainer rank `index`'s (every other role works in a trainer bundle)."""
        ray_config = self.config.ray
        if ray_config.colocate or role == SAMPLER:
            return self.first + index
        return self.first + ray_config.sampler_replicas + index

    def sharers(self, index: int) -> int:
        """How many actors share bundle `index` of the job: two where an engine and a rank are colocated."""
        ray_config = self.config.ray
        return (index < ray_config.sampler_replicas) + (index < ray_config.trainer_workers) if ray_config.colocate else 1

    def threads(self, members: int) -> int:
        """Threads for each of `members` actors that run at once (the engines sample together, the ranks train
        together; engines and trainers alternate): the node's cores (or `threads`) shared among them."""
        return max(1, (self.config.threads or machine_threads()) // members)

    def members(self, role: str) -> int:
        return {SAMPLER: self.config.ray.sampler_replicas, TRAINER: self.config.ray.trainer_workers}.get(role, 1)

    def options(self, role: str, index: int = 0) -> dict:
        """Ray options of the actor or task that does `role`'s work (member `index` of it): its share of its
        bundle, and its threads."""
        bundle_index = self.bundle_of(role, index)
        sharers = self.sharers(bundle_index - self.first)
        bundle = self.group.bundle_specs[bundle_index]
        return {"num_cpus": bundle.get("CPU", 0) / sharers, "num_gpus": bundle.get("GPU", 0) / sharers,
                "scheduling_strategy": PlacementGroupSchedulingStrategy(self.group,
                                                                        placement_group_bundle_index=bundle_index),
                "runtime_env": {"env_vars": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0",
                                             "OMP_NUM_THREADS": str(self.threads(self.members(role)))}}}

    def record(self, actors) -> dict:
        """Where the job's process and each actor run (node, bundle, devices): saved in the run folder."""
        where = {"job": {**_here(), "bundle": self.first - 1 if self.first else None}}
        for actor in actors:
            where[actor.label] = {**ray.get(actor.handle.__ray_call__.remote(lambda _self: _here())),
                                  "bundle": self.bundle_of(actor.role, actor.index)}
            if where[actor.label]["node_id"] == where["job"]["node_id"]:
                remember_local_actor(where[actor.label]["pid"])
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
    bundles = job_bundles(config.ray, cluster_has_gpus(), config.engine.tensor_parallel_size)
    if not joins_a_cluster():  # a cluster may grow (an autoscaler): it gets the wait
        refuse_more_than(bundles, ray.cluster_resources(), "this machine's Ray instance")
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
