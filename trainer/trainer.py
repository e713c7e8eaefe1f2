"""The Trainer owns the torch model and its optimizer; it trains on token-id examples and exports weights.

Master weights stay in fp32; `precision="bf16"` runs forward/backward under bf16 autocast, which pays
only where the hardware has bf16 instructions (`"auto"` checks, see models/hardware.py).

A batch goes through the model packed into one row without padding (trainer/losses.py: `pack`): the model
must read positions that restart at 0 as separate sequences, as transformers' models do when no 2-D
attention mask is given (tests/test_losses.py checks a packed batch against each example alone).

A trainer group is N Trainers, one per process, that `join_group`: one torch.distributed group (NCCL on
GPUs, gloo on the CPU), the model sharded with FSDP2. Every rank is called with the same arguments and
takes its share of each batch (rows rank, rank + N, ...); the losses are normalised by the whole batch, and
gradients are summed over the ranks, so N ranks make the update one rank makes. A single Trainer is the
N = 1 case of the same code.
"""
from __future__ import annotations

import contextlib
import inspect
import itertools
import math
import os
import random
import shutil
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor
from transformers import AutoModelForCausalLM, AutoTokenizer

from pmc_unlearning.models.fingerprint import fingerprint_weights
from pmc_unlearning.models.hardware import ENGINE_DTYPES, keep_freed_memory, resolve_precision
from pmc_unlearning.models.prompting import Example
from pmc_unlearning.storage.files import write_probe, write_text_atomically
from pmc_unlearning.trainer.losses import (
    Batch,
    answer_nll,
    answer_tokens,
    mean_token_entropy,
    nll,
    pack,
    sequence_logprobs,
    token_logprobs,
)
from pmc_unlearning.trainer.quantization import quantized
from pmc_unlearning.trainer.token_statistics import TokenStatistics, token_statistics
from pmc_unlearning.transfer.rendezvous import free_port, node_ip

# A checkpoint of a Trainer alone is torch.distributed.checkpoint's single-process case, not a mistake.
warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
REPLICATED_STATE = "replicated.pt"
ON_THE_HOST = StateDictOptions(cpu_offload=True)  # a GPU's checkpoint snapshot goes to host memory, not beside it  # in a trainer state folder: what every rank holds the same (rank 0 writes it)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Trainer:
    def __init__(self, model_dir: Path | str, *, precision: str = "auto", threads: int | None = None, seed: int = 0,
                 entropy_weights: tuple[float, float] = (0.0, 0.0)):
        if threads:
            torch.set_num_threads(threads)
        keep_freed_memory()
        torch.manual_seed(seed)
        self.rng = random.Random(seed)
        self.device = pick_device()
        self.precision = resolve_precision(precision)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(self.device)
        self.weight_sender = None  # set by connect_engines: pushes go through vLLM's weight-transfer interface
        self.model.train()
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.reference: torch.nn.Module | None = None  # the frozen target, see freeze_reference
        self.judge: torch.nn.Module | None = None  # a frozen model of another folder, see load_judge
        self.entropy_weights = entropy_weights  # (forget, retain): configs.EntropyConfig, off at (0, 0)
        self.saving: threading.Thread | None = None  # the checkpoint being written, see save_state
        self.save_error: BaseException | None = None
        self.rank, self.world_size = 0, 1  # a group of one until join_group
        self.checkpoint_group: dist.ProcessGroup | None = None  # the group's checkpoint writes talk on their own
        self.stashed: tuple | None = None  # the state an attack changes, while it does (stash_state)
        self.relearning: tuple | None = None  # the relearning attack's optimizer and row order (relearn_steps)

    # ---- the trainer group --------------------------------------------------------------------------
    def group_address(self) -> str:
        """Where the group meets (asked of rank 0 before every rank joins): this node, a free port."""
        return f"tcp://{node_ip()}:{free_port()}"

    def join_group(self, address: str | None, rank: int, world_size: int) -> None:
        """Become rank `rank` of `world_size` (all ranks call this at once, each with a Trainer made the same
        way): the process group (`address` None: it exists already, e.g. torchrun's), then the model sharded,
        each decoder layer and the rest as FSDP2 units. Call before `configure_optimizer` (the optimizer holds
        the sharded parameters)."""
        if address is not None:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo", init_method=address, rank=rank,
                                    world_size=world_size)
        self.rank, self.world_size = rank, world_size
        self.checkpoint_group = dist.new_group(backend="gloo")
        self.shard(self.model)

    def shard(self, model: torch.nn.Module) -> None:
        """FSDP2 over the group: each decoder layer a unit, the rest (embeddings, head) the root's (no-op alone)."""
        if self.world_size == 1:
            return
        for layer in decoder_layers(model):
            fully_shard(layer)
        fully_shard(model)
        # Sum, never average, the gradients over the ranks: each rank's loss is already its share of the whole
        # batch's. (Averaging would halve them on two ranks, which AdamW hides until its state meets a group of
        # another size.) Sum-only collectives, as gloo's averaging has been silently wrong (pytorch#162338).
        for unit in model.modules():
            if isinstance(unit, FSDPModule):
                unit.set_gradient_divide_factor(1.0)
                unit.set_force_sum_reduction_for_comms(True)

    def my_share(self, forget: Sequence[Example], retain: Sequence[Example]) -> tuple[list, list, float]:
        """This rank's rows of a batch (forget row i stays paired with retain row i) and its loss's weight: a
        rank left without rows (a batch smaller than the group) runs its first row and adds nothing, as it
        must still take part in every collective."""
        mine = slice(self.rank, None, self.world_size)
        my_forget, my_retain = list(forget[mine]), list(retain[mine])
        if my_forget:
            return my_forget, my_retain, 1.0
        return list(forget[:1]), list(retain[:1]), 0.0

    def summed_over_ranks(self, values: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(values)
        return values

    # ---- optimisation -------------------------------------------------------------------------------
    def configure_optimizer(self, lr: float, weight_decay: float, warmup_steps: int) -> None:
        """AdamW with a linear warm-up, then a constant rate (the reference warms up for one epoch)."""
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / (warmup_steps + 1))
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(self, examples: Sequence[Example], model: torch.nn.Module | None = None,
                shared_prompts: bool = False) -> tuple[torch.Tensor, Batch]:
        """Logits of `model` (default: the trained one) at the examples' answer-predicting positions (A,
        vocabulary), all examples packed into one pass (`shared_prompts`: consecutive examples of one prompt hold
        it once, `pack`'s `share_prompts`, where the model's attention is SDPA), and their batch."""
        model = model or self.model
        # A mask of booleans is read as "may attend" by PyTorch's SDPA only: eager attention adds it to the scores,
        # and flash attention takes none, so other attention packs each example with its own prompt.
        shared = shared_prompts and model.config._attn_implementation == "sdpa"
        batch = pack(examples, share_prompts=shared).to(self.device)
        inputs = {"input_ids": batch.input_ids, "position_ids": batch.position_ids, "use_cache": False,
                  **({} if batch.attention_mask is None else {"attention_mask": batch.attention_mask})}
        with self.autocast():
            if _keeps_logits(model):
                logits = model(**inputs, logits_to_keep=batch.predicting).logits[0]
            else:
                logits = model(**inputs).logits[0, batch.predicting]
        return logits, batch

    def answer_logprobs(self, examples: Sequence[Example], model: torch.nn.Module | None = None,
                        shared_prompts: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed answer-token log-probabilities and answer lengths."""
        return sequence_logprobs(*self.forward(examples, model, shared_prompts))

    def score(self, examples: Sequence[Example], batch_size: int = 16, judge: bool = False,
              shared_prompts: bool = False) -> list[tuple[float, int]]:
        """(summed log-probability, token count) of each example's answer, in batched forward passes; `judge`:
        under the frozen judge (`load_judge`) instead of the trained model; `shared_prompts`: a batch's
        consecutive examples of one prompt read it once (many answers to one question).

        An example with a one-token answer gives log p(token | context): the over-unlearning probe.
        """
        model = self.judge if judge else None
        return self.per_example(examples, batch_size, lambda batch: list(
            zip(*(values.tolist() for values in self.answer_logprobs(batch, model, shared_prompts)))))

    @torch.no_grad()
    def per_example(self, examples: Sequence[Example], batch_size: int, read: Callable[[list], list]) -> list:
        """`read(batch)` of each batch of `examples` in turn, concatenated: a result per example, in eval mode."""
        self.model.eval()
        results = []
        for start in range(0, len(examples), batch_size):
            results += read(list(examples[start : start + batch_size]))
        self.model.train()
        return results

    def step(self, loss: torch.Tensor) -> None:
        assert self.optimizer is not None, "configure_optimizer first"
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()

    def unlearn_step(self, forget: Sequence[Item], retain: Sequence[Example], lambda_: float,
                     objective: Objective = answer_nll) -> dict[str, float]:
        """One unlearning step: a method's `objective` gives a forget term and a retain term, and the step takes
        forget + lambda * retain (+ the entropy regulariser with `entropy_weights` set).

        `objective(step)` (a module-level function of the method's file, or a partial of one, so that it
        travels to a trainer actor by reference) gets this rank's share of the batch as a `Step`, and returns
        {"forget_loss": ..., <retain term's name>: ...} in that order. A forget item is one example, or a tuple
        of examples that belong together (DPO's preferred and rejected answer to one question). The logs are
        the whole batch's, summed over the ranks.
        """
        my_forget, my_retain, weight = self.my_share(forget, retain)
        step = Step(self, examples_of(my_forget), my_retain, items=len(forget),
                    forget_tokens=answer_tokens(examples_of(forget)), retain_tokens=answer_tokens(retain))
        terms = objective(step)
        forget_term, retain_term = terms.values()
        loss = forget_term + lambda_ * retain_term
        if any(self.entropy_weights):
            entropies = step.entropies()
            loss = loss + sum(w * h for w, h in zip(self.entropy_weights, entropies))
            terms.update(forget_entropy=entropies[0], retain_entropy=entropies[1])
        self.step(weight * loss)
        return self.batch_logs({"loss": loss, **terms}, weight)

    def batch_logs(self, terms: dict[str, torch.Tensor], weight: float) -> dict[str, float]:
        """The whole batch's value of each term: the ranks' shares, summed."""
        values = self.summed_over_ranks(torch.stack([weight * term.detach().float() for term in terms.values()]))
        return dict(zip(terms, values.tolist()))

    def freeze_reference(self) -> None:
        """Keep a frozen copy of the model as it is now (the target), sharded like the model: the reference of
        any method that compares with the target (`Step.reference_logprobs`, `Step.activations`)."""
        reference = AutoModelForCausalLM.from_config(self.model.config, dtype=torch.float32).to(self.device)
        self.shard(reference)
        reference.load_state_dict(_copied(self.model.state_dict()))
        self.reference = reference.eval().requires_grad_(False)

    def load_judge(self, model_dir: Path | str) -> None:
        """A frozen model of another folder beside the trained one, sharded like it (PMC's fluency judge: the base
        model, methods/selection.py); `score(..., judge=True)` scores with it."""
        judge = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(self.device)
        self.shard(judge)
        self.judge = judge.eval().requires_grad_(False)

    def decoder_layer_count(self) -> int:
        return len(decoder_layers(self.model))

    def train_only(self, parameter: str, layers: Sequence[int]) -> None:
        """Train only the parameter named `parameter` (e.g. "mlp.down_proj.weight") of the decoder layers
        `layers` (counted from 0); the rest of the model stays as it is (no gradient, so AdamW leaves it be)."""
        chosen = decoder_layers(self.model)
        if not chosen or not all(0 <= layer < len(chosen) for layer in layers):
            raise ValueError(f"layers {list(layers)} asked of a model with {len(chosen)} decoder layers")
        names = dict(chosen[0].named_parameters())
        if parameter not in names:
            raise ValueError(f"the model's decoder layers have no parameter {parameter!r} (they have: "
                             f"{', '.join(names)})")
        self.model.requires_grad_(False)
        for layer in layers:
            chosen[layer].get_parameter(parameter).requires_grad_(True)

    @torch.no_grad()
    def reference_logprobs(self, examples: Sequence[Example]) -> torch.Tensor:
        return self.answer_logprobs(examples, self.reference)[0]

    def activations(self, examples: Sequence[Example], layer: int,
                    model: torch.nn.Module | None = None) -> tuple[torch.Tensor, Batch]:
        """The output of decoder layer `layer` (counted from 0) of `model` (default: the trained one) at the
        examples' answer tokens (A, hidden), all examples packed into one pass, and their batch."""
        model = model or self.model
        batch = pack(examples).to(self.device)
        outputs = []
        keep = lambda module, inputs, output: outputs.append(output[0] if isinstance(output, tuple) else output)
        hook = decoder_layers(model)[layer].register_forward_hook(keep)
        try:
            with self.autocast():
                if _keeps_logits(model):  # the output head is not needed: one position's logits
                    model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False, logits_to_keep=1)
                else:
                    model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False)
        finally:
            hook.remove()
        return outputs[0][0, batch.predicting + 1], batch  # the answer tokens: one after the positions predicting them

    def sft_step(self, examples: Sequence[Example]) -> dict[str, float]:
        mine, _, weight = self.my_share(examples, [])
        loss = nll(*self.answer_logprobs(mine), answer_tokens(examples))
        self.step(weight * loss)
        return self.batch_logs({"loss": loss}, weight)

    # ---- rounds and epochs ----------------------------------------------------------------------------
    def minibatches(self, items: Sequence, batch_size: int) -> Iterator[list]:
        order = list(range(len(items)))
        self.rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            yield [items[i] for i in order[start : start + batch_size]]

    def unlearn_round(self, forget: Sequence[Item], retain: Sequence[Example], lambda_: float, batch_size: int,
                      objective: Objective = answer_nll) -> dict[str, float]:
        """One round: a pass over the forget items; each is paired with a random retain row (none if `retain` is
        empty). See `unlearn_step`."""
        logs = [
            self.unlearn_step(chunk, [retain[self.rng.randrange(len(retain))] for _ in chunk] if retain else [],
                              lambda_, objective)
            for chunk in self.minibatches(forget, batch_size)
        ]
        return mean_logs(logs)

    def sft_epoch(self, examples: Sequence[Example], batch_size: int) -> dict[str, float]:
        return mean_logs([self.sft_step(chunk) for chunk in self.minibatches(examples, batch_size)])

    # ---- what the attacks do to a model (evaluation/attacks/) ----------------------------------------------
    def token_statistics(self, examples: Sequence[Example], batch_size: int = 16) -> list[TokenStatistics]:
        """Per example, its answer tokens' statistics (trainer/token_statistics.py), in batched forward passes."""
        return self.per_example(examples, batch_size, lambda batch: token_statistics(*self.forward(batch)))

    def stash_state(self) -> None:
        """Keep a copy of what `quantize_weights` and `relearn_steps` change (weights, which parameters train,
        the random streams), for `restore_state`. Every rank calls this."""
        self.stashed = (_copied(self.model.state_dict()), {name: p.requires_grad for name, p in self.model.named_parameters()},
                        self.rng.getstate(), torch.get_rng_state())

    def restore_state(self) -> None:
        """Back to the state `stash_state` kept, with the relearning's optimizer and gradients gone."""
        weights, trains, rng, torch_rng = self.stashed
        self.model.load_state_dict(weights)
        for name, parameter in self.model.named_parameters():
            parameter.requires_grad_(trains[name])
            parameter.grad = None
        self.rng.setstate(rng)
        torch.set_rng_state(torch_rng)
        self.stashed, self.relearning = None, None

    @torch.no_grad()
    def quantize_weights(self, bits: int, group: int) -> None:
        """Round the decoder layers' linear weights to `bits` per group of `group` input columns
        (trainer/quantization.py); embeddings, norms and the output head stay as they are. A rank rounds its
        shard: FSDP2 splits the rows, and a group lies within one row."""
        for layer in decoder_layers(self.model):
            for module in layer.modules():
                if isinstance(module, torch.nn.Linear):
                    weight = module.weight.to_local() if isinstance(module.weight, DTensor) else module.weight
                    weight.copy_(quantized(weight, bits, group))

    def relearn_steps(self, examples: Sequence[Example], steps: int, lr: float, batch_size: int) -> None:
        """`steps` steps of plain fine-tuning of every parameter on `examples`, in minibatches of `batch_size`
        drawn in a fixed order, with an AdamW of its own (made at the first call after `stash_state`, kept by
        later calls, so that 5 then 5 more steps are 10 steps).

        The attacker's AdamW is torch's fused kernel: one pass over the weights and moments instead of the default
        kernel-per-operation loop, a sizeable share of a CPU step (docs/performance.md). (Unlearning keeps the default: its
        figures were recorded with it, and the two round differently.)"""
        if self.relearning is None:
            self.model.requires_grad_(True)
            order = list(range(len(examples)))
            random.Random(0).shuffle(order)
            self.relearning = (torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.0, fused=True),
                               itertools.cycle(order))
        optimizer, order = self.relearning
        for _ in range(steps):
            chunk = [examples[next(order)] for _ in range(min(batch_size, len(examples)))]
            mine, _, weight = self.my_share(chunk, [])
            optimizer.zero_grad(set_to_none=True)
            (weight * nll(*self.answer_logprobs(mine), answer_tokens(chunk))).backward()
            optimizer.step()

    # ---- weights out --------------------------------------------------------------------------------
    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The model's whole state dict: on rank 0 plain tensors (on the CPU when the group shards the model),
        empty on the other ranks, which take part in the gather (every rank calls this)."""
        if self.world_size == 1:
            return self.model.state_dict()
        return get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def export_weights(self, dtype: str) -> dict[str, torch.Tensor]:
        """HF-named CPU tensors in the engine's dtype, as a checkpoint would hold them (rank 0; {} elsewhere).

        The full state dict, so a tied output head is sent under its own name too: vLLM's reload on the
        CPU leaves a tied head stale when only the embedding arrives (tests/test_engine.py checks both).
        """
        target = ENGINE_DTYPES[dtype]
        return {name: t.detach().to("cpu", target).contiguous() for name, t in self.full_state_dict().items()}

    def weights_fingerprint(self, dtype: str) -> dict[str, tuple[list[int], float]]:
        """`fingerprint_weights` of what a push sends the engines (rank 0; every rank calls this)."""
        return fingerprint_weights(self.full_state_dict().items(), ENGINE_DTYPES[dtype])

    def probe_logprobs(self, text: str) -> tuple[list[int], list[float]]:
        """`text`'s token ids and the log-probability of each token after those before it (none for the first):
        the push check's probe (cluster/weight_sync.py). Every rank calls this; rank 0 answers."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        probe = Example(tuple(ids[:1]), tuple(ids[1:]))
        return ids, self.per_example([probe], 1, lambda batch: [token_logprobs(*self.forward(batch)).tolist()])[0]

    def connect_engines(self, engines: list, dtype: str, backend: str, engine_workers: int = 1) -> None:
        """Push weights from now on through vLLM's weight-transfer interface with `backend` to `engines` (Sampler
        actors' handles, or Sampler objects in this process), whose weights are in `dtype` (see
        transfer.weight_transfer.connect). Every rank calls this and every push; rank 0 sends."""
        from pmc_unlearning.transfer.weight_transfer import connect  # vLLM is imported only where engines are pushed to

        self.weight_sender = connect(self.model, engines, dtype, backend, self.rank, engine_workers)

    @property
    def pushes_weights(self) -> bool:
        return self.weight_sender is not None

    def push_weights(self) -> None:
        self.weight_sender.send_weights()

    @torch.no_grad()
    def greedy(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[list[int]]:
        """HF greedy continuation token ids, one prompt at a time (no padding effects): the reference path."""
        self.model.eval()
        outputs = []
        for prompt in prompts:
            ids = torch.tensor([list(prompt)], device=self.device)
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                      do_sample=False, pad_token_id=self.pad_id)
            outputs.append(out[0, ids.shape[1]:].tolist())
        self.model.train()
        return outputs

    # ---- checkpoints --------------------------------------------------------------------------------
    def save_state(self, path: Path | str, then_write: dict[str, str] | None = None) -> None:
        """Everything training continues from, in the folder `path`: weights and optimizer state (each rank
        its shards, torch.distributed.checkpoint: a state loads into a group of any size), the scheduler and
        the random streams (minibatch order, retain pairing, torch's: the same on every rank).

        A copy is taken now and written by a thread while training goes on (writing 1.6 GB for the 135M model
        takes seconds); then rank 0 moves the folder into place and writes the `then_write` files (path ->
        text), which point at it. Each appears whole or not at all. A second save first waits for the one
        before (`wait_for_saves`). Every rank calls this.
        """
        self.wait_for_saves()
        model_state, optimizer_state = get_state_dict(self.model, self.optimizer, options=ON_THE_HOST)
        shards = _copied({"model": model_state, "optimizer": optimizer_state})
        replicated = {"scheduler": self.scheduler.state_dict(), "rng": self.rng.getstate(),
                      "torch_rng": torch.get_rng_state()}
        self.saving = threading.Thread(target=self._write_state, args=(Path(path), shards, replicated, then_write or {}),
                                       name="checkpoint-writer")
        self.saving.start()

    def _write_state(self, path: Path, shards: dict, replicated: dict, then_write: dict[str, str]) -> None:
        try:
            building = path.with_name(path.name + ".writing")
            if self.rank == 0:
                shutil.rmtree(building, ignore_errors=True)  # left by a job killed while writing
            if self.world_size > 1:  # on a group of its own: training's collectives go on meanwhile
                dist.barrier(group=self.checkpoint_group)
            dcp.save(shards, checkpoint_id=building, process_group=self.checkpoint_group)
            if self.rank == 0:  # every rank's shards are written once dcp.save returns on rank 0
                torch.save(replicated, building / REPLICATED_STATE)
                shutil.rmtree(path, ignore_errors=True)  # a state of the same name that nothing points at any more
                os.replace(building, path)
                for name, text in then_write.items():
                    write_text_atomically(Path(name), text)
        except BaseException as err:  # noqa: BLE001 - handed to the caller by wait_for_saves
            self.save_error = err

    def wait_for_saves(self) -> None:
        """Block until the checkpoint being written is on disk; raise what went wrong writing it."""
        if self.saving is not None:
            self.saving.join()
            self.saving = None
        if self.save_error is not None:
            error, self.save_error = self.save_error, None
            raise error

    def load_state(self, path: Path | str) -> None:
        """Continue where `save_state` left off (the optimizer configured as it was then), whatever the size of
        the group that saved it. Every rank calls this."""
        assert self.optimizer is not None, "configure_optimizer first"
        self.wait_for_saves()
        model_state, optimizer_state = get_state_dict(self.model, self.optimizer, options=ON_THE_HOST)
        shards = {"model": model_state, "optimizer": optimizer_state}
        dcp.load(shards, checkpoint_id=Path(path), process_group=self.checkpoint_group)
        set_state_dict(self.model, self.optimizer, model_state_dict=shards["model"],
                       optim_state_dict=shards["optimizer"])
        replicated = torch.load(Path(path) / REPLICATED_STATE, weights_only=True)
        self.scheduler.load_state_dict(replicated["scheduler"])
        self.rng.setstate(replicated["rng"])
        torch.set_rng_state(replicated["torch_rng"])

    def save(self, folder: Path | str) -> None:
        """The model as a Hugging Face folder (rank 0 writes; every rank calls this)."""
        state = self.full_state_dict()
        if self.rank == 0:
            self.model.save_pretrained(folder, state_dict=state)
            self.tokenizer.save_pretrained(folder)

    def write_probe(self, folder: Path | str, token: str) -> None:
        """A file of this rank's in `folder` holding `token`: whether the driver, maybe on another node, sees what
        this rank writes there (its full states and the model go there)."""
        write_probe(str(Path(folder) / f".storage-probe-{self.rank}"), token)


Item = Example | tuple[Example, ...]  # a forget item: one example, or examples that belong together
Objective = Callable[["Step"], dict[str, torch.Tensor]]


class Step:
    """One unlearning step's share of a batch on this rank, and what a method's objective may compute from it.

    The forget examples and the retain rows go through the model together, in one packed pass, computed once
    whatever asks for it first (the objective, the entropy regulariser). Losses normalise by the whole batch's
    sizes (`items`, `forget_tokens`, `retain_tokens`), so that the ranks' shares sum to the batch's loss.
    """

    def __init__(self, trainer: Trainer, forget: list[Example], retain: list[Example], items: int, forget_tokens: int,
                 retain_tokens: int):
        self.trainer, self.forget, self.retain = trainer, forget, retain
        self.items, self.forget_tokens, self.retain_tokens = items, forget_tokens, retain_tokens
        self._answers: tuple[torch.Tensor, Batch, torch.Tensor, torch.Tensor] | None = None

    def _answer_pass(self) -> tuple[torch.Tensor, Batch, torch.Tensor, torch.Tensor]:
        if self._answers is None:
            logits, batch = self.trainer.forward(self.forget + self.retain)
            self._answers = (logits, batch, *sequence_logprobs(logits, batch))
        return self._answers

    def forget_logprobs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed answer log-probability and answer tokens of each forget example, in order."""
        _, _, logprobs, counts = self._answer_pass()
        return logprobs[:len(self.forget)], counts[:len(self.forget)]

    def retain_logprobs(self) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, logprobs, counts = self._answer_pass()
        return logprobs[len(self.forget):], counts[len(self.forget):]

    def reference_logprobs(self) -> torch.Tensor:
        """The frozen reference's (`Trainer.freeze_reference`) summed answer log-probability of each forget example."""
        return self.trainer.reference_logprobs(self.forget)

    def activations(self, examples: Sequence[Example], layer: int, frozen: bool = False) -> tuple[torch.Tensor, Batch]:
        """`Trainer.activations` of the trained model, or (`frozen`) of the reference, without a gradient."""
        if not frozen:
            return self.trainer.activations(examples, layer)
        with torch.no_grad():
            return self.trainer.activations(examples, layer, self.trainer.reference)

    def entropies(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean next-token entropy over the forget answers and over the retain answers (the regulariser's terms)."""
        logits, batch, _, _ = self._answer_pass()
        in_forget = batch.sequence < len(self.forget)
        return (mean_token_entropy(logits[in_forget], self.forget_tokens),
                mean_token_entropy(logits[~in_forget], self.retain_tokens))


def examples_of(items: Sequence[Item]) -> list[Example]:
    """The examples of forget items, in order (an item's examples one after the other)."""
    return [example for item in items for example in (item if isinstance(item, tuple) else (item,))]


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's decoder layers in order: the modules of the classes it names as never to be split."""
    layer_types = set(getattr(model, "_no_split_modules", None) or ())
    return [module for module in model.modules() if type(module).__name__ in layer_types]


def _keeps_logits(model: torch.nn.Module) -> bool:
    """Whether the model's forward takes `logits_to_keep` (Hugging Face's causal LMs since 4.50 do)."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def _copied(state):
    """`state` with every tensor copied: a snapshot that training can no longer change."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {key: _copied(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_copied(value) for value in state)
    return state


def mean_logs(logs: list[dict[str, float]]) -> dict[str, float]:
    out = {key: sum(log[key] for log in logs) / len(logs) for key in logs[0]}
    out["steps"] = len(logs)
    return out


def steps_per_epoch(rows: int, batch_size: int) -> int:
    return math.ceil(rows / batch_size)
