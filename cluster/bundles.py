"""What a job asks of the cluster, as Ray placement-group bundles: plain arithmetic on the config, without Ray,
so that the command line can refuse a job a local instance could never hold before anything heavy runs
(cluster/placement.py makes the groups)."""
from __future__ import annotations

import math
import os

from pmc_unlearning.configs import RayConfig, RunConfig
from pmc_unlearning.telemetry.errors import Refused


def role_share(ray_config: RayConfig, gpus: bool) -> dict[str, float]:
    """What one engine or one trainer rank asks for: its CPUs, and its GPUs where the cluster has them."""
    share = ray_config.num_gpus_per_actor
    gpu = (0.5 if gpus else 0.0) if share is None else share
    return {"CPU": ray_config.num_cpus_per_actor, "GPU": gpu}


def job_bundles(ray_config: RayConfig, gpus: bool, tensor_parallel_size: int = 1) -> list[dict[str, float]]:
    """The engines' bundles, then the trainer ranks'; or, colocated, bundle i shared by engine i and rank i."""
    engine, rank = role_share(ray_config, gpus), role_share(ray_config, gpus)
    engine["GPU"] *= tensor_parallel_size  # a tensor-parallel engine's workers share its bundle's GPUs
    engines, ranks = ray_config.sampler_replicas, ray_config.trainer_workers
    if ray_config.colocate:
        bundles = [{kind: engine[kind] * (i < engines) + rank[kind] * (i < ranks) for kind in engine}
                   for i in range(max(engines, ranks))]
    else:
        bundles = [dict(engine) for _ in range(engines)] + [dict(rank) for _ in range(ranks)]
    # Ray refuses an empty bundle
    return [{kind: amount for kind, amount in bundle.items() if amount} or {"CPU": 0.01} for bundle in bundles]


def trial_bundles(config: RunConfig, trial_cpus: float, gpus: bool) -> list[dict[str, float]]:
    """A batch trial's group: its own process first (Tune's rule), then the job's bundles."""
    return [{"CPU": trial_cpus}, *job_bundles(config.ray, gpus, config.engine.tensor_parallel_size)]


def refuse_more_than(bundles: list[dict[str, float]], total: dict[str, float], what: str,
                     kinds: tuple[str, ...] = ("CPU", "GPU")) -> None:
    """A job that asks for more of `kinds` than `what` has in all (`total`: resource -> amount) is refused at
    once: Ray would wait for its placement group until placement.READY_TIMEOUT_S."""
    for kind in sorted({kind for bundle in bundles for kind in bundle} & set(kinds)):
        asked = sum(bundle.get(kind, 0) for bundle in bundles)
        if asked > total.get(kind, 0) + 1e-9:
            raise Refused(f"the job asks for {asked:g} {kind} ({len(bundles)} bundles: ray.sampler_replicas, "
                          f"ray.trainer_workers, ray.num_cpus_per_actor, ray.num_gpus_per_actor), but {what} has "
                          f"{total.get(kind, 0):g}")


def local_cpus(at_least: float = 0) -> int:
    """The logical CPUs of a local Ray instance: the machine's cores, at least 2 (sampler and trainer alternate,
    so they share them) and at least what a batch's concurrent trials need."""
    return math.ceil(max(2, os.cpu_count() or 2, at_least))


def bundle_cpus(bundles: list[dict[str, float]]) -> float:
    """The CPUs a placement group of these bundles holds: what a local Ray instance needs per concurrent trial."""
    return sum(bundle.get("CPU", 0) for bundle in bundles)
