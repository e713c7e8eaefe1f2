"""Weight pushes from the trainer into vLLM engines through vLLM's own weight-transfer interface, with a
backend of the project's for the CPU: shared memory (`shm`).

The trainer side allocates one file under /dev/shm that holds every weight in the engine's dtype, all its
bytes at once (where /dev/shm lacks the room, a message with both sizes, not a SIGBUS at the first push), and
tells each engine its layout once (`init_weight_transfer_engine`). The file is its user's alone (mode 0600), and
is unlinked as soon as every engine has mapped it: the memory lives on in the mappings and goes with the
last of them, on any exit, kill -9 included. What a job killed in the instant between left is removed by
the next job (its name carries the pid that made it). A push is then a copy of the trainer's weights
into that file, and, on each engine, vLLM's layerwise reload from views of the same memory
(`start_weight_update` -> `update_weights` -> `finish_weight_update`): no pickling, no object store, nothing
through the driver. On CUDA the same calls drive vLLM's built-in `ipc` and `nccl` backends (`connect`).

As vLLM's backends do, every rank of a trainer group calls `trainer_init` and `send_weights`: each rank
gathers the sharded weights with the others, and rank 0 alone writes them and drives the engines.

Both sides register under the name `shm` when this module is imported; the engine side must be imported in
the process that runs vLLM's worker (on the CPU, the sampler's own process: vLLM runs its engine in-process
there).
"""
from __future__ import annotations

import mmap
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Sequence

import ray
import torch
from vllm.distributed.weight_transfer.base import (
    ModuleSource,
    ParamMeta,
    TrainerInitInfo,
    TrainerWeightTransferEngine,
    VLLMWeightSyncClient,
    WeightSource,
    WeightTransferEngine,
    WeightTransferInitInfo,
    WeightTransferUpdateInfo,
    materialize_full_tensor,
)
from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory, WeightTransferTrainerFactory

from pmc_unlearning.models.hardware import ENGINE_DTYPES
from pmc_unlearning.storage.files import allocate, made_by_a_dead_process
from pmc_unlearning.transfer.backends import SHARED_MEMORY
from pmc_unlearning.transfer.rendezvous import free_port, node_ip

SHM_DIR = "/dev/shm"
SHM_REMEDY = "free some, give the container more (docker run --shm-size), or set engine.weight_transfer=object_store"


def layout(metadata: list[ParamMeta]) -> tuple[list[int], int]:
    """Byte offset of each tensor in the shared file (64-byte aligned) and the file's size."""
    offsets, size = [], 0
    for meta in metadata:
        offsets.append(size)
        nbytes = torch.Size(meta.shape).numel() * torch.empty((), dtype=meta.dtype).element_size()
        size += -(-nbytes // 64) * 64
    return offsets, max(size, 64)


def views(path: str, names: list[str], dtype_names: list[str], shapes: list[list[int]],
          offsets: list[int], size: int) -> tuple[mmap.mmap, list[tuple[str, torch.Tensor]]]:
    """The shared file mapped once, and a tensor view of it per weight."""
    with open(path, "r+b") as f:
        mapped = mmap.mmap(f.fileno(), size)
    buffer = torch.frombuffer(mapped, dtype=torch.uint8)
    tensors = []
    for name, dtype_name, shape, offset in zip(names, dtype_names, shapes, offsets):
        dtype = ENGINE_DTYPES[dtype_name]
        count = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
        tensors.append((name, buffer[offset:offset + count].view(dtype).view(shape)))
    return mapped, tensors


@dataclass
class ShmInitInfo(WeightTransferInitInfo):
    path: str
    names: list[str]
    dtype_names: list[str]
    shapes: list[list[int]]
    offsets: list[int]
    size: int


@dataclass
class ShmUpdateInfo(WeightTransferUpdateInfo):
    """Nothing to say per push: the layout was agreed at init, the bytes are in place."""


class ShmWeightTransferEngine(WeightTransferEngine[ShmInitInfo, ShmUpdateInfo]):
    """Engine side: load the weights from views of the shared file with vLLM's layerwise reload."""

    init_info_cls = ShmInitInfo
    update_info_cls = ShmUpdateInfo

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mapped: mmap.mmap | None = None
        self.tensors: list[tuple[str, torch.Tensor]] = []

    def init_transfer_engine(self, init_info: ShmInitInfo) -> None:
        self.shutdown()
        self.mapped, self.tensors = views(init_info.path, init_info.names, init_info.dtype_names, init_info.shapes,
                                          init_info.offsets, init_info.size)

    def start_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

        initialize_layerwise_reload(self.model)

    def update_weights(self, update_info: dict[str, Any]) -> None:
        # The base class ends with torch.accelerator.synchronize(), which a CPU-only torch refuses.
        self.receive_weights(self.parse_update_info(update_info))

    def receive_weights(self, update_info: ShmUpdateInfo) -> None:
        self.model.load_weights(iter(self.tensors))

    def finish_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

        finalize_layerwise_reload(self.model, self.model_config)

    def shutdown(self) -> None:
        self.tensors = []
        if self.mapped is not None:
            self.mapped.close()
            self.mapped = None


class StateDictSource(WeightSource):
    """A module's full state dict as a weight source: a tied output head is sent under its own name too
    (vLLM's reload on the CPU leaves a tied head stale when only the embedding arrives), in `dtype`. FSDP
    shards are gathered tensor by tensor (a collective: every rank iterates); shapes are global."""

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype) -> None:
        self.module, self.dtype = module, dtype

    def metadata(self) -> list[ParamMeta]:
        return [ParamMeta(name, self.dtype, tuple(t.shape)) for name, t in self.module.state_dict().items()]

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name, tensor in self.module.state_dict().items():
            yield name, materialize_full_tensor(tensor)


@dataclass
class ShmTrainerInitInfo(TrainerInitInfo):
    backend: ClassVar[str] = SHARED_MEMORY
    folder: str = SHM_DIR
    prefix: str = field(default="pmc-weights")


class ShmTrainerWeightTransferEngine(TrainerWeightTransferEngine[ShmTrainerInitInfo]):
    """Trainer side: owns the shared file; a push copies the weights in and drives each engine's reload."""

    init_info_cls = ShmTrainerInitInfo

    @classmethod
    def trainer_init(cls, init_info: ShmTrainerInitInfo, *, client: VLLMWeightSyncClient,
                     source: WeightSource | None = None) -> ShmTrainerWeightTransferEngine:
        if source is None:
            raise ValueError("shared-memory weight transfer needs a WeightSource")
        engine = cls(client=client, source=source, is_sender=init_info.is_sender)
        engine.path, engine.mapped, engine.tensors = None, None, []
        if not engine.is_sender:  # it only takes part in the gathers of `send_weights`
            return engine
        metadata = source.metadata()
        offsets, size = layout(metadata)
        remove_stale_files(init_info.folder, init_info.prefix)
        engine.path = create_private_file(init_info.folder, init_info.prefix, size)
        try:
            info = {"path": engine.path, "names": [m.name for m in metadata],
                    "dtype_names": [str(m.dtype).removeprefix("torch.") for m in metadata],
                    "shapes": [list(m.shape) for m in metadata], "offsets": offsets, "size": size}
            engine.mapped, engine.tensors = views(**info)
            client.init_weight_transfer_engine(info)  # returns once every engine has mapped the file
        finally:
            os.unlink(engine.path)
        return engine

    @torch.no_grad()
    def send_weights(self) -> None:
        if not self.is_sender:
            for _ in self.source:
                pass
            return
        for (name, tensor), (expected, view) in zip(self.source, self.tensors, strict=True):
            if name != expected:
                raise RuntimeError(f"weight {name!r} arrived where {expected!r} was agreed: the model changed")
            view.copy_(tensor)
        self.client.start_weight_update()
        self.client.update_weights({})
        self.client.finish_weight_update()

    def shutdown(self) -> None:
        self.tensors = []
        if self.mapped is not None:
            self.mapped.close()
            self.mapped = None


def create_private_file(folder: str, prefix: str, size: int) -> str:
    """A new file of `size` bytes in `folder`, allocated now (NoRoom where they do not fit), readable and writable by
    its user only, named after this process."""
    path = os.path.join(folder, f"{prefix}-{os.getpid()}-{uuid.uuid4().hex}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        allocate(fd, size, folder, "the weight push's shared-memory file", SHM_REMEDY)
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)
    return path


def remove_stale_files(folder: str, prefix: str) -> list[str]:
    """This user's files of `prefix` whose process no longer runs (a job killed between creating its file and
    the engines mapping it). Files of running processes and of other users are left alone."""
    removed = []
    for name in os.listdir(folder):
        if not made_by_a_dead_process(name, f"{prefix}-"):
            continue
        path = os.path.join(folder, name)
        try:
            if os.stat(path).st_uid == os.getuid():
                os.unlink(path)
                removed.append(path)
        except FileNotFoundError:  # another job removed it first
            pass
    return removed


def clients_for(engines: Sequence, backend: str) -> list[VLLMWeightSyncClient]:
    """vLLM's clients that drive a push into `engines`, Sampler actors' handles or Sampler objects in this
    process: one over all of them, or for `nccl` one each (an NCCL group per engine)."""
    if not isinstance(engines[0], ray.actor.ActorHandle):
        return [DirectClient(engines)]
    from vllm.distributed.weight_transfer.clients import RayVLLMWeightSyncClient

    return ([RayVLLMWeightSyncClient([engine]) for engine in engines] if backend == "nccl"
            else [RayVLLMWeightSyncClient(list(engines))])


class DirectClient:
    """vLLM's client protocol over Sampler objects in this process (no Ray): what RayVLLMWeightSyncClient is
    for Sampler actors."""

    def __init__(self, samplers) -> None:
        self.samplers = list(samplers)

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        for sampler in self.samplers:
            sampler.init_weight_transfer_engine({"init_info": init_info})

    def start_weight_update(self) -> None:
        for sampler in self.samplers:
            sampler.start_weight_update()

    def update_weights(self, update_info: dict[str, Any]) -> None:
        for sampler in self.samplers:
            sampler.update_weights({"update_info": update_info})

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        for sampler in self.samplers:
            sampler.finish_weight_update(weight_version)


class Senders:
    """A trainer rank's side of the pushes: one or more of vLLM's trainer-side transfer engines, sent in turn."""

    def __init__(self, engines: list[TrainerWeightTransferEngine]) -> None:
        self.engines = engines

    def send_weights(self) -> None:
        for engine in self.engines:
            engine.send_weights()


def trainer_init_infos(backend: str, rank: int, engines: int, engine_workers: int = 1) -> list[TrainerInitInfo]:
    """vLLM's trainer-side init info for each sender of trainer rank `rank`: one for `shm` and `ipc`, which
    reach every engine through one client; one per engine for `nccl`, each with an NCCL group of its own (the
    trainer's rank 0 and that engine's `engine_workers`, its tensor-parallel size: vLLM gives every engine
    the same worker ranks in its group). The CUDA backends are written against vLLM's documented API and
    not yet run on a GPU."""
    if backend == SHARED_MEMORY:
        return [ShmTrainerInitInfo(rank=rank)]
    if backend == "ipc":
        from vllm.distributed.weight_transfer.ipc_engine import IPCTrainerInitInfo

        return [IPCTrainerInitInfo(rank=rank)]
    if backend == "nccl":
        from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo

        return [NCCLTrainerInitInfo(node_ip(), free_port(), 1 + engine_workers, rank=rank) for _ in range(engines)]
    raise ValueError(f"unknown weight-transfer backend {backend!r}")


def connect(model: torch.nn.Module, engines: Sequence, dtype: str, backend: str, rank: int,
            engine_workers: int = 1) -> Senders:
    """Trainer rank `rank`'s senders to `engines` (Sampler actors' handles or Sampler objects; one client over
    them for `shm` and `ipc`, one per engine for `nccl`), whose weights are in `dtype`. `shm` sends the state
    dict cast to `dtype`; the CUDA backends send the parameters (`ModuleSource`: vLLM casts on load)."""
    source = StateDictSource(model, ENGINE_DTYPES[dtype]) if backend == SHARED_MEMORY else ModuleSource(model)
    clients = clients_for(engines, backend)
    infos = trainer_init_infos(backend, rank, len(clients), engine_workers)
    return Senders([WeightTransferTrainerFactory.trainer_init(info, client=client, source=source)
                    for info, client in zip(infos, clients, strict=True)])


def _register() -> None:
    """Both sides under `shm`, once per process (the factories refuse a name given twice)."""
    if SHARED_MEMORY not in WeightTransferEngineFactory._registry:
        WeightTransferEngineFactory.register_engine(SHARED_MEMORY, ShmWeightTransferEngine)
    if SHARED_MEMORY not in WeightTransferTrainerFactory._registry:
        WeightTransferTrainerFactory.register_engine(SHARED_MEMORY, ShmTrainerWeightTransferEngine)


_register()
