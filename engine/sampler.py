"""The Sampler owns one vLLM `LLM`: batched sampling, greedy answers, and in-place weight updates.

The engine core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0): it starts in seconds instead of
a quarter minute. Weights arrive through `LLM`'s public calls only: vLLM's weight-transfer interface
(transfer/weight_transfer.py: the project's `shm` backend on the CPU, vLLM's `ipc` or `nccl` on GPUs) or a
state dict through `collective_rpc("reload_weights")`, never through the engine's internals.

On GPUs an engine that shares its GPU with a trainer rank (`sleep_mode`) sleeps while the trainer steps:
its weights move to host memory and its KV cache is dropped, then `wake_up` brings back the weights (which
the push then overwrites) and the cache. CUDA-only in vLLM: written against its documented API, not yet run.
"""
from __future__ import annotations

import math
import os
import shutil
import weakref

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import torch

from pmc_unlearning.configs import EngineConfig
from pmc_unlearning.models.hardware import keep_freed_memory, resolve_engine_dtype
from pmc_unlearning.storage.files import private_scratch_folder, temporary_files_in
from pmc_unlearning.telemetry.console import quiet_engine, verbose
from pmc_unlearning.transfer.backends import OBJECT_STORE, engine_backend

if TYPE_CHECKING:
    from vllm import SamplingParams


# Token ids one request may ban (`Sampler.sample`'s `banned`): the logit-bias entries vLLM's GPU model runner takes.
MAX_BANNED = 1024


@dataclass(frozen=True)
class Completion:
    token_ids: tuple[int, ...]  # the generated ids, end-of-sequence included when the answer ended there
    text: str
    # Summed log-probability of token_ids under the model that sampled them, before temperature and top-p
    # (vLLM's raw logprobs): what PMC's fluent selection ranks candidates by. None where not asked for.
    logprob: float | None = None
    finished: bool = True  # False: cut at max_new_tokens before the answer ended

    @property
    def nll_per_token(self) -> float:
        """Mean negative log-likelihood of the answer's tokens; an empty answer is the least fluent (inf)."""
        if self.logprob is None:
            raise ValueError("this completion was sampled without its log-probability")
        return -self.logprob / len(self.token_ids) if self.token_ids else math.inf


class Sampler:
    def __init__(self, model_dir: Path | str, config: EngineConfig = EngineConfig(), colocated: bool = False):
        """`colocated`: the engine shares its device with a trainer rank (on GPUs it then sleeps while the
        trainer steps, and receives pushes by CUDA IPC when `config.weight_transfer` is 'auto')."""
        # vLLM is imported here and in the methods, in the engine's own process: the driver needs this class to
        # start the actor, and starts seconds sooner without vLLM. The shm backend registers on import.
        from vllm import LLM

        import pmc_unlearning.transfer.weight_transfer  # noqa: F401

        if os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] != "0":
            raise RuntimeError("Sampler needs the in-process engine: set VLLM_ENABLE_V1_MULTIPROCESSING=0")
        cuda = torch.cuda.is_available()
        if config.tensor_parallel_size > 1 and not cuda:
            raise ValueError(f"engine.tensor_parallel_size {config.tensor_parallel_size} needs CUDA (vLLM refuses its "
                             "Ray executor on the CPU); use ray.sampler_replicas for more engines")
        keep_freed_memory()
        self.config = config
        self.dtype = resolve_engine_dtype(config.dtype)
        self.sleep_mode = colocated and cuda
        self.resting = False
        self.transfer = engine_backend(config.weight_transfer, cuda, colocated)
        # On the CPU, prompts are scheduled whole: when vLLM splits a prompt over two steps (chunked prefill)
        # it rewinds that request's seeded generator, which a CPU generator cannot do, and seeded sampling
        # (the evaluation's, PMC's) crashes ("CPU Generator does not use offset").
        device = (
            {"gpu_memory_utilization": config.gpu_memory_utilization, "enable_sleep_mode": self.sleep_mode,
             "tensor_parallel_size": config.tensor_parallel_size,
             # a tensor-parallel engine inside a Ray actor runs its workers in the actor's placement group
             **({"distributed_executor_backend": "ray"} if config.tensor_parallel_size > 1 else {})}
            if cuda
            else {"kv_cache_memory_bytes": config.kv_cache_memory_bytes, "enable_chunked_prefill": False}
        )
        if self.transfer != OBJECT_STORE:
            device["weight_transfer_config"] = {"backend": self.transfer}  # pushes through vLLM's own interface
        quiet_engine()
        # vLLM leaves a rendezvous file per engine start in the temporary folder (world-readable, never
        # removed): it goes into a folder of this engine's own instead, removed with the engine (a killed
        # engine's by the next one's start, or with the job's Ray session: cluster/session.py).
        self.scratch = private_scratch_folder("pmc-engine")
        weakref.finalize(self, shutil.rmtree, self.scratch, True)
        with temporary_files_in(self.scratch):
            self.llm = LLM(
                model=str(model_dir),
                dtype=self.dtype,
                enforce_eager=True,
                max_model_len=config.max_model_len,
                seed=config.seed,
                use_tqdm_on_load=verbose(),  # its shard-loading bar, a line per engine start otherwise
                **device,
            )

    def weight_dtype(self) -> str:
        """The dtype the engine holds its weights in: what weight updates should be sent as."""
        return self.dtype

    def transfer_backend(self) -> str:
        """The weight-transfer backend the engine was built for ('object_store': state dicts only)."""
        return self.transfer

    def sample(self, prompts: Sequence[Sequence[int]], n: int, temperature: float, top_p: float,
               seed: int | Sequence[int] | None = None, logprobs: bool = False,
               banned: Sequence[Sequence[int]] | None = None) -> list[list[Completion]]:
        """`n` candidates for every prompt, in one batched engine call.

        With a `seed` (one for all prompts, or one per prompt) the draws do not depend on what the engine
        sampled before (vLLM gives each request its own generator, and the i-th of the n its own seed + i):
        a cached evaluation equals a fresh one, and a resumed PMC job samples what the uninterrupted one
        did. Without, they come from the engine's stream (seeded at start-up).

        `logprobs`: each candidate's `Completion.logprob` too. Only when asked: vLLM computes them with a
        `torch.compile`d kernel, which costs a compile on first use and needs a C++ compiler on the CPU.

        `banned`: per prompt, token ids its candidates never contain (vLLM's logit bias at its floor).
        """
        return self._generate(prompts, self._sampling(len(prompts), n, temperature, top_p, seed, logprobs, banned))

    def greedy(self, prompts: Sequence[Sequence[int]]) -> list[Completion]:
        return [candidates[0] for candidates in self._generate(prompts, [self._greedy()] * len(prompts))]

    def greedy_and_sample(self, greedy: Sequence[Sequence[int]], sampled: Sequence[Sequence[int]], n: int,
                          temperature: float, top_p: float, seed: int | Sequence[int] | None = None
                          ) -> tuple[list[Completion], list[list[Completion]]]:
        """`greedy`'s answers and `sample`'s for `sampled` (the same draws), in one engine call: its decoding
        steps serve both batches at once."""
        answers = self._generate([*greedy, *sampled], [self._greedy()] * len(greedy) +
                                 self._sampling(len(sampled), n, temperature, top_p, seed, False, None))
        return [candidates[0] for candidates in answers[:len(greedy)]], answers[len(greedy):]

    def _greedy(self) -> SamplingParams:
        from vllm import SamplingParams

        return SamplingParams(n=1, temperature=0.0, max_tokens=self.config.max_new_tokens)

    def _sampling(self, prompts: int, n: int, temperature: float, top_p: float, seed: int | Sequence[int] | None,
                  logprobs: bool, banned: Sequence[Sequence[int]] | None) -> list[SamplingParams]:
        from vllm import SamplingParams

        seeds = seed if isinstance(seed, Sequence) else [seed] * prompts
        banned = [()] * prompts if banned is None else banned
        if len(seeds) != prompts or len(banned) != prompts:
            raise ValueError(f"{len(seeds)} seeds and {len(banned)} banned lists for {prompts} prompts")
        return [SamplingParams(n=n, temperature=temperature, top_p=top_p, seed=s, max_tokens=self.config.max_new_tokens,
                               logprobs=0 if logprobs else None,  # 0: the sampled tokens' own
                               # vLLM's floor: exp(-100) next to any real logit, a ban at every temperature
                               logit_bias={token: -100.0 for token in ids} or None)
                for s, ids in zip(seeds, banned)]

    def _generate(self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]) -> list[list[Completion]]:
        from vllm.inputs import TokensPrompt

        requests = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [[Completion(tuple(o.token_ids), o.text, o.cumulative_logprob, o.finish_reason != "length")
                 for o in out.outputs] for out in outputs]

    def rest(self) -> None:
        """Free the GPU for the trainer while it steps (with `sleep_mode`; else nothing to do)."""
        if self.sleep_mode and not self.resting:
            self.llm.sleep(level=1)
            self.resting = True

    def wake_up(self, tags: list[str]) -> None:
        """Bring back what `rest` freed: "weights" before a push, then "kv_cache" before sampling."""
        if self.resting:
            self.llm.wake_up(tags)
            self.resting = "kv_cache" not in tags

    # vLLM's weight-transfer control plane, as `LLM` has it, so that vLLM's own clients
    # (`RayVLLMWeightSyncClient` on this actor's handle) drive a push; see transfer/weight_transfer.py.
    def init_weight_transfer_engine(self, request: dict) -> None:
        self.llm.init_weight_transfer_engine(request)

    def start_weight_update(self) -> None:
        self.llm.start_weight_update()

    def update_weights(self, request: dict) -> None:
        self.llm.update_weights(request)

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self.llm.finish_weight_update(weight_version)
        self.llm.reset_prefix_cache()  # cached prefixes hold the old weights' keys and values

    def served_fingerprints(self) -> list[dict[str, tuple[list[int], float]]]:
        """`fingerprint_weights` of the weights each of the engine's workers (tensor-parallel ranks) serves now,
        to check a push."""
        return self.llm.collective_rpc(_served_fingerprint)

    def probe_logprobs(self, token_ids: Sequence[int]) -> list[float]:
        """The log-probability of each token of `token_ids` after those before it (none for the first), from
        the logits of every weight the engine serves, shown or not: the push check's probe."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)  # 0: the prompt's own tokens
        # vLLM ranks log-probabilities with a torch.compile'd kernel, which on the CPU needs a C++ compiler (the
        # image has none) and compiles in every new engine process: eager is as exact, and fast at this size.
        with torch.compiler.set_stance("force_eager"):
            [output] = self.llm.generate([TokensPrompt(prompt_token_ids=list(token_ids))], params, use_tqdm=False)
        return [ranked[token].logprob for ranked, token in zip(output.prompt_logprobs[1:], token_ids[1:])]

    def load_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Replace the engine's weights with HF-named tensors, then drop cached prefixes of the old weights.

        `reload_weights(..., is_checkpoint_format=True)` is the path that works on the CPU too: there vLLM
        repacks linear layers into oneDNN handles, which plain `load_weights` cannot write into.
        """
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights.items()),
                                                          "is_checkpoint_format": True})
        self.llm.reset_prefix_cache()


def _served_fingerprint(worker) -> dict[str, tuple[list[int], float]]:
    """Runs in vLLM's worker (in-process or not): it gets the worker as its argument."""
    from pmc_unlearning.models.fingerprint import fingerprint_weights

    return fingerprint_weights(worker.get_model().named_parameters())
