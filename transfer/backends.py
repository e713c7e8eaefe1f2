"""The paths a weight push can take, and which one an engine is built for. Free of vLLM: the driver only
chooses a path, and starts seconds sooner without importing it (vLLM is imported by the processes that push
and receive: transfer/weight_transfer.py)."""
from __future__ import annotations

SHARED_MEMORY = "shm"  # the project's backend of vLLM's weight-transfer interface, for the CPU
OBJECT_STORE = "object_store"  # no backend: the engine takes state dicts (Sampler.load_weights) only


def engine_backend(setting: str, cuda: bool, colocated: bool) -> str:
    """The backend an engine is built for, from `engine.weight_transfer`: 'auto' is `ipc` for an engine that
    shares its GPU with the trainer, `nccl` for one on GPUs of its own, `shm` on the CPU (the orchestrator
    falls back to the object store when trainer and engine turn out to be on different nodes)."""
    if setting == "auto":
        return ("ipc" if colocated else "nccl") if cuda else SHARED_MEMORY
    if setting in ("ipc", "nccl") and not cuda:
        raise ValueError(f"engine.weight_transfer {setting!r} needs CUDA; on the CPU use 'shm' or 'object_store'")
    return setting
