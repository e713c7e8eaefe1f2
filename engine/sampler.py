"""The Sampler owns one vLLM `LLM`: batched sampling, greedy answers, and in-place weight updates.

The engine core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0): it starts in seconds instead of
a quarter minute. Weights arrive through `LLM`'s public calls only: vLLM's weight-transfer interface
(engine/weight_transfer.py) or a state dict through `collective_rpc("reload_weights")`, never through the
engine's internals.
"""
from __future__ import annotations

import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
from vllm import LLM, SamplingParams
from vllm.inputs import TokensPrompt

from configs import EngineConfig
from engine.weight_transfer import BACKEND as SHARED_MEMORY  # importing it registers the backend in this process
from models.hardware import resolve_engine_dtype


@dataclass(frozen=True)
class Completion:
    token_ids: tuple[int, ...]  # the generated ids, end-of-sequence included when the answer ended there
    text: str


class Sampler:
    def __init__(self, model_dir: Path | str, config: EngineConfig = EngineConfig()):
        if os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] != "0":
            raise RuntimeError("Sampler needs the in-process engine: set VLLM_ENABLE_V1_MULTIPROCESSING=0")
        self.config = config
        self.dtype = resolve_engine_dtype(config.dtype)
        # On the CPU, prompts are scheduled whole: when vLLM splits a prompt over two steps (chunked prefill)
        # it rewinds that request's seeded generator, which a CPU generator cannot do, and seeded sampling
        # (the evaluation's, PMC's) crashes ("CPU Generator does not use offset").
        device = (
            {"gpu_memory_utilization": config.gpu_memory_utilization}
            if torch.cuda.is_available()
            else {"kv_cache_memory_bytes": config.kv_cache_memory_bytes, "enable_chunked_prefill": False,
                  "weight_transfer_config": {"backend": SHARED_MEMORY}}  # pushes through vLLM's own interface
        )
        self.llm = LLM(
            model=str(model_dir),
            dtype=self.dtype,
            enforce_eager=True,
            max_model_len=config.max_model_len,
            seed=config.seed,
            **device,
        )

    def weight_dtype(self) -> str:
        """The dtype the engine holds its weights in: what weight updates should be sent as."""
        return self.dtype

    def sample(self, prompts: Sequence[Sequence[int]], n: int, temperature: float, top_p: float,
               seed: int | Sequence[int] | None = None) -> list[list[Completion]]:
        """`n` candidates for every prompt, in one batched engine call.

        With a `seed` (one for all prompts, or one per prompt) the draws do not depend on what the engine
        sampled before (vLLM gives each request its own generator, and the i-th of the n its own seed + i):
        a cached evaluation equals a fresh one, and a resumed PMC job samples what the uninterrupted one
        did. Without, they come from the engine's stream (seeded at start-up).
        """
        seeds = seed if isinstance(seed, Sequence) else [seed] * len(prompts)
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        params = [SamplingParams(n=n, temperature=temperature, top_p=top_p, seed=s, max_tokens=self.config.max_new_tokens)
                  for s in seeds]
        return self._generate(prompts, params)

    def greedy(self, prompts: Sequence[Sequence[int]]) -> list[Completion]:
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.config.max_new_tokens)
        return [candidates[0] for candidates in self._generate(prompts, params)]

    def _generate(self, prompts: Sequence[Sequence[int]],
                  params: SamplingParams | Sequence[SamplingParams]) -> list[list[Completion]]:
        requests = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [[Completion(tuple(o.token_ids), o.text) for o in out.outputs] for out in outputs]

    def accepts_shared_memory(self) -> bool:
        """Whether this engine receives pushes through the shared-memory backend (a CPU engine does)."""
        return self.llm.llm_engine.vllm_config.weight_transfer_config is not None

    # vLLM's weight-transfer control plane, as `LLM` has it, so that vLLM's own clients
    # (`RayVLLMWeightSyncClient` on this actor's handle) drive a push; see engine/weight_transfer.py.
    def init_weight_transfer_engine(self, request: dict) -> None:
        self.llm.init_weight_transfer_engine(request)

    def start_weight_update(self) -> None:
        self.llm.start_weight_update()

    def update_weights(self, request: dict) -> None:
        self.llm.update_weights(request)

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self.llm.finish_weight_update(weight_version)
        self.llm.reset_prefix_cache()  # cached prefixes hold the old weights' keys and values

    def load_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Replace the engine's weights with HF-named tensors, then drop cached prefixes of the old weights.

        `reload_weights(..., is_checkpoint_format=True)` is the path that works on the CPU too: there vLLM
        repacks linear layers into oneDNN handles, which plain `load_weights` cannot write into.
        """
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights.items()),
                                                          "is_checkpoint_format": True})
        self.llm.reset_prefix_cache()
