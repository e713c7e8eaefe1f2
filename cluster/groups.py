"""A job's engines and trainer ranks as groups, each driven like one Sampler and one Trainer.

`SamplerGroup` splits each call's prompts across its engines (contiguous parts, in order), runs the parts
at once and merges the answers back in prompt order. A prompt's seed travels with it, so a seeded draw is
the same whichever engine makes it. `TrainerGroup` calls every rank with the same arguments at once (each
takes its own share of a batch, trainer/trainer.py) and answers with rank 0's result.

Members are Ray actors (ActorProxy), called concurrently, or, for a group of one, plain objects.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import ray

from pmc_unlearning.cluster.actors import ActorProxy, actor_name, wait_for
from pmc_unlearning.cluster.placement import SAMPLER, TRAINER, Placement
from pmc_unlearning.configs import RunConfig
from pmc_unlearning.engine import Sampler
from pmc_unlearning.trainer import Trainer


def call_each(members: Sequence, method: str, calls: Sequence[tuple[tuple, dict]]) -> list:
    """`members[i].method(*args_i, **kwargs_i)` for each member, at once where they are actors; their results."""
    if all(isinstance(member, ActorProxy) for member in members):
        return wait_for(list(members), method, [getattr(member.handle, method).remote(*args, **kwargs)
                                                for member, (args, kwargs) in zip(members, calls, strict=True)])
    if len(members) > 1:
        raise ValueError("a group of more than one needs Ray actors: its members work at the same time")
    return [getattr(member, method)(*args, **kwargs) for member, (args, kwargs) in zip(members, calls, strict=True)]


def call_all(members: Sequence, method: str, *args, **kwargs) -> list:
    return call_each(members, method, [(args, kwargs)] * len(members))


class SamplerGroup:
    def __init__(self, members: Sequence):
        self.members = list(members)

    def sample(self, prompts: Sequence[Sequence[int]], n: int, temperature: float, top_p: float,
               seed: int | Sequence[int] | None = None, logprobs: bool = False,
               banned: Sequence[Sequence[int]] | None = None) -> list:
        """Sampler.sample over the engines. Without a seed each engine draws from its own stream."""
        seeds = list(seed) if isinstance(seed, Sequence) else [seed] * len(prompts)
        banned = [()] * len(prompts) if banned is None else list(banned)
        if len(seeds) != len(prompts) or len(banned) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds and {len(banned)} banned lists for {len(prompts)} prompts")
        return self._split("sample", prompts, lambda part: ((n, temperature, top_p), {
            "seed": seeds[part], "logprobs": logprobs, "banned": banned[part]}))

    def greedy(self, prompts: Sequence[Sequence[int]]) -> list:
        return self._split("greedy", prompts, lambda part: ((), {}))

    def greedy_and_sample(self, greedy: Sequence[Sequence[int]], sampled: Sequence[Sequence[int]], n: int,
                          temperature: float, top_p: float, seed: int | None = None) -> tuple[list, list]:
        """Sampler.greedy_and_sample over the engines: each takes its part of both lists."""
        parts = [(g, s) for g, s in zip(split(len(greedy), len(self.members)), split(len(sampled), len(self.members)))
                 if g.stop > g.start or s.stop > s.start]
        calls = [((list(greedy[g]), list(sampled[s]), n, temperature, top_p), {"seed": seed}) for g, s in parts]
        answers = call_each(self.members[:len(parts)], "greedy_and_sample", calls)
        return [a for part, _ in answers for a in part], [a for _, part in answers for a in part]

    def _split(self, method: str, prompts: Sequence, arguments) -> list:
        parts = [part for part in split(len(prompts), len(self.members)) if part.stop > part.start]
        calls = [((list(prompts[part]), *args), kwargs) for part in parts for args, kwargs in [arguments(part)]]
        answers = call_each(self.members[:len(parts)], method, calls)
        return [answer for part in answers for answer in part]

    def weight_dtype(self) -> str:
        return call_all(self.members, "weight_dtype")[0]  # also waits until every engine is up

    def transfer_backend(self) -> str:
        return self.members[0].transfer_backend()

    def load_weights(self, weights) -> None:
        call_all(self.members, "load_weights", weights)

    def rest(self) -> None:
        call_all(self.members, "rest")

    def wake_up(self, tags: list[str]) -> None:
        call_all(self.members, "wake_up", tags)

    def served_fingerprints(self) -> list[list[dict]]:
        """Per engine, per worker."""
        return call_all(self.members, "served_fingerprints")

    def probe_logprobs(self, token_ids: list[int]) -> list[list[float]]:
        """Per engine."""
        return call_all(self.members, "probe_logprobs", token_ids)


class TrainerGroup:
    """Trainer's methods, called on every rank at once; rank 0 answers."""

    def __init__(self, members: Sequence):
        self.members = list(members)
        self.pushes_weights = False  # connected to its engines (cluster/weight_sync.py)

    def __getattr__(self, method: str):
        if method.startswith("__"):
            raise AttributeError(method)
        return lambda *args, **kwargs: call_all(self.members, method, *args, **kwargs)[0]

    def exported_weights(self, dtype: str) -> Any:
        """Rank 0's `export_weights` for the engines: from actors a reference to it in Ray's object store
        (it travels trainer -> store -> engines, never through the driver), else the tensors."""
        if isinstance(self.members[0], ActorProxy):
            refs = [member.handle.export_weights.remote(dtype) for member in self.members]
            ray.get(refs[1:])  # the other ranks' part of the gather
            return refs[0]
        return self.members[0].export_weights(dtype)


def split(total: int, parts: int) -> list[slice]:
    """`parts` contiguous slices of range(total), sizes differing by at most one, the larger first."""
    size, extra = divmod(total, parts)
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


def start_samplers(model_dir: Path | str, config: RunConfig, placement: Placement, label: str = SAMPLER) -> SamplerGroup:
    """The job's `ray.sampler_replicas` engines, each in its bundle; `label` names them (engines of another model
    than the job's own, such as the retain model's, have a name of their own)."""
    members = []
    for index in range(config.ray.sampler_replicas):
        name = actor_name(config, f"{label} {index}")
        handle = ray.remote(Sampler).options(**placement.options(SAMPLER, index), name=name).remote(
            str(model_dir), config.engine, colocated=config.ray.colocate)
        members.append(ActorProxy(handle, name, SAMPLER, index, config.ray.call_timeout_s))
    return SamplerGroup(members)


def trainer_settings(config: RunConfig, seed: int, threads: int | None, precision: str | None = None) -> dict:
    """The Trainer's keyword arguments for a run, the same with or without Ray; `precision`: other than the run's."""
    return {"precision": precision or config.precision, "threads": threads, "seed": seed,
            "entropy_weights": (config.entropy.forget, config.entropy.retain)}


def start_trainers(model_dir: Path | str, config: RunConfig, placement: Placement, seed: int, role: str = TRAINER,
                   ranks: int | None = None, precision: str | None = None) -> TrainerGroup:
    """`ranks` trainers (default: `ray.trainer_workers`), each in its bundle, joined into one group; in
    `precision` where given (a scorer that must score in fp32 whatever the run trains in)."""
    ranks = ranks or config.ray.trainer_workers
    threads = placement.threads(ranks) if config.threads or ranks > 1 else None
    members = []
    for index in range(ranks):
        name = actor_name(config, f"{role} {index}")
        handle = ray.remote(Trainer).options(**placement.options(role, index), name=name).remote(
            str(model_dir), **trainer_settings(config, seed, threads, precision))
        members.append(ActorProxy(handle, name, role, index, config.ray.call_timeout_s))
    if ranks > 1:
        address = members[0].group_address()
        call_each(members, "join_group", [((address, rank, ranks), {}) for rank in range(ranks)])
    return TrainerGroup(members)
