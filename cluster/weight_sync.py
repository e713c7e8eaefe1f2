"""How the trainer ranks' weights reach the sampling engines after training, for plain objects and Ray
actors alike.

Through vLLM's own weight-transfer interface wherever it can work: the project's shared-memory backend on
the CPU (transfer/weight_transfer.py: the trainer copies its weights into memory the engines mapped once,
and each engine reloads from it), vLLM's `ipc` (an engine on its trainer's GPU) or `nccl` (engines on GPUs
of their own) on CUDA. Elsewhere (a CPU engine on another node than the trainer, or asked for), the state
dict: trainer -> Ray's object store -> engines, never through the driver and never through disk. Every
engine receives every push.
"""
from __future__ import annotations

import math

from pmc_unlearning.cluster.actors import ActorProxy
from pmc_unlearning.cluster.groups import SamplerGroup, TrainerGroup
from pmc_unlearning.cluster.placement import SAMPLER, TRAINER
from pmc_unlearning.telemetry.errors import JobError
from pmc_unlearning.transfer.backends import OBJECT_STORE, SHARED_MEMORY


def set_up_weight_transfer(setting: str, trainers: TrainerGroup, samplers: SamplerGroup, placed: dict,
                           dtype: str, engine_workers: int = 1) -> str:
    """Connect the path this job's pushes take (`engine.weight_transfer`: the backend the engines were built
    for; with 'auto', the object store instead of shared memory where the placement record puts an engine
    on another node than trainer rank 0). Returns the path."""
    backend = samplers.transfer_backend()
    if backend == SHARED_MEMORY and setting == "auto":
        nodes = {where["node_id"] for label, where in placed["roles"].items()
                 if label.startswith(f"{SAMPLER} ") or label == f"{TRAINER} 0"}
        backend = SHARED_MEMORY if len(nodes) == 1 else OBJECT_STORE
    if backend != OBJECT_STORE:
        connect_weight_transfer(trainers, samplers, dtype, backend, engine_workers)
    return backend


def connect_weight_transfer(trainers: TrainerGroup, samplers: SamplerGroup, dtype: str, backend: str = SHARED_MEMORY,
                            engine_workers: int = 1) -> None:
    """From now on `sync_weights` pushes through vLLM's weight-transfer interface with `backend` to every
    engine (the trainer ranks make vLLM's clients: transfer/weight_transfer.py)."""
    engines = [engine.handle if isinstance(engine, ActorProxy) else engine for engine in samplers.members]
    trainers.connect_engines(engines, dtype, backend, engine_workers)
    trainers.pushes_weights = True


def sync_weights(trainers: TrainerGroup, samplers: SamplerGroup, dtype: str) -> None:
    """Push the trainers' current weights into every engine, by the path connected (or the state dict), and check
    that every engine serves them; an engine that rested while the trainer stepped wakes its weights first and
    its KV cache after."""
    samplers.wake_up(["weights"])
    if trainers.pushes_weights:
        trainers.push_weights()
    else:
        samplers.load_weights(trainers.exported_weights(dtype))
    check_push(trainers.weights_fingerprint(dtype), samplers.served_fingerprints())
    samplers.wake_up(["kv_cache"])
    ids, expected = trainers.probe_logprobs(PROBE_TEXT)  # the engines score it with their KV cache back
    check_probe(expected, samplers.probe_logprobs(ids), dtype)


class PushNotServed(JobError):
    """An engine serves other weights than the trainer pushed: a transfer that reported success moved nothing
    (or the wrong bytes), as vLLM's NCCL path can where NCCL is missing."""


class TrainingDiverged(JobError):
    """The trainer's loss or weights are not finite numbers any more: nothing after it means anything."""


def check_push(sent: dict[str, tuple[list[int], float]], served: list[list[dict[str, tuple[list[int], float]]]]) -> None:
    """Every engine worker's fingerprint of the weights it serves against the sender's, for each weight both
    name with the same shape (vLLM fuses some, shards some over tensor-parallel workers and, on the CPU, keeps
    linear layers in oneDNN handles it does not show: those are `check_probe`'s). A weight that is not finite
    is the training's failure, said as such, not the push's."""
    broken = [name for name, (_, total) in sent.items() if not math.isfinite(total)]
    if broken:
        raise TrainingDiverged(f"training diverged: {len(broken)} weights are not finite numbers any more "
                               f"({', '.join(broken[:3])}); try a lower learning rate")
    for engine, workers in enumerate(served):
        for worker, fingerprint in enumerate(workers):
            compared = [name for name, (shape, _) in sent.items() if name in fingerprint and fingerprint[name][0] == shape]
            wrong = [name for name in compared if not math.isclose(sent[name][1], fingerprint[name][1], rel_tol=1e-6,
                                                                   abs_tol=1e-9)]
            if not compared or wrong:
                what = f"{', '.join(wrong[:3])} differ" if wrong else "no weight could be compared"
                where = f"engine {engine}" + (f" (worker {worker})" if len(workers) > 1 else "")
                raise PushNotServed(f"{where} does not serve the weights the trainer pushed ({what}); "
                                    f"the push did not arrive")


# What the engines and the trainer both score after every push, token by token: its log-probabilities depend on
# every weight of the model, those the engine does not show included.
PROBE_TEXT = ("After every push the engine and the trainer score this text and must agree. Paris is the capital of "
              "France; water boils at 100 degrees Celsius at sea level; the author's second novel came out in 1987.")

# How far (nats, any token) an engine's probe log-probabilities may lie from the trainer's when both hold the same
# weights: their kernels differ, most in half precision, whose trainer computes in bf16 from fp32 master weights.
# A stale engine is caught once training has moved a token's log-probability by more than this.
PROBE_TOLERANCE = {"float32": 1e-3, "bfloat16": 0.75, "float16": 0.75}


def check_probe(expected: list[float], served: list[list[float]], dtype: str) -> None:
    """Every engine's log-probabilities of the probe text against the trainer's."""
    tolerance = PROBE_TOLERANCE[dtype]
    for engine, logprobs in enumerate(served):
        gaps = [abs(a - b) for a, b in zip(expected, logprobs, strict=True)]
        gap = math.nan if any(map(math.isnan, gaps)) else max(gaps)
        if not gap <= tolerance:
            raise PushNotServed(f"engine {engine} does not serve the weights the trainer pushed (its log-probabilities "
                                f"of a probe text differ from the trainer's by up to {gap:.3g}, more than the "
                                f"{tolerance:g} a {dtype} engine allows); the push did not arrive")
