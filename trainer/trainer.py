"""The Trainer owns the torch model and its optimizer; it trains on token-id examples and exports weights.

Master weights stay in fp32; `precision="bf16"` runs forward/backward under bf16 autocast, which pays
only where the hardware has bf16 instructions (`"auto"` checks, see models/hardware.py).
"""
from __future__ import annotations

import contextlib
import copy
import math
import random
import threading
from pathlib import Path
from typing import Iterator, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from models.cache import write_file_atomically
from models.hardware import ENGINE_DTYPES, resolve_precision
from models.prompting import Example
from trainer.losses import Batch, collate, grad_ascent, mean_token_entropy, nll, npo, sequence_logprobs, simnpo



def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Trainer:
    def __init__(self, model_dir: Path | str, *, precision: str = "auto", threads: int | None = None, seed: int = 0,
                 entropy_weights: tuple[float, float] = (0.0, 0.0)):
        if threads:
            torch.set_num_threads(threads)
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
        self.reference: torch.nn.Module | None = None  # NPO's frozen target, see freeze_reference
        self.entropy_weights = entropy_weights  # (forget, retain): configs.EntropyConfig, off at (0, 0)
        self.saving: threading.Thread | None = None  # the checkpoint being written, see save_state
        self.save_error: BaseException | None = None

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

    def forward(self, examples: Sequence[Example], model: torch.nn.Module | None = None) -> tuple[torch.Tensor, Batch]:
        """Logits of `model` (default: the trained one) for all examples in one pass, and their batch."""
        batch = collate(examples, self.pad_id).to(self.device)
        with self.autocast():
            logits = (model or self.model)(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        return logits, batch

    def answer_logprobs(self, examples: Sequence[Example], model: torch.nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed answer-token log-probabilities and answer lengths."""
        logits, batch = self.forward(examples, model)
        return sequence_logprobs(logits, batch.labels)

    @torch.no_grad()
    def score(self, examples: Sequence[Example], batch_size: int = 16) -> list[tuple[float, int]]:
        """(summed log-probability, token count) of each example's answer, in batched forward passes.

        An example with a one-token answer gives log p(token | context): the over-unlearning probe.
        """
        self.model.eval()
        scores = []
        for start in range(0, len(examples), batch_size):
            sums, counts = self.answer_logprobs(examples[start : start + batch_size])
            scores += list(zip(sums.tolist(), counts.tolist()))
        self.model.train()
        return scores

    def step(self, loss: torch.Tensor) -> None:
        assert self.optimizer is not None, "configure_optimizer first"
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()

    def unlearn_step(self, forget: Sequence[Example], retain: Sequence[Example], lambda_: float,
                     forget_loss: str = "nll", beta: float = 0.1, gamma: float = 0.0) -> dict[str, float]:
        """One unlearning step: a loss on the forget examples + lambda * NLL of the paired retain examples.

        `forget_loss` is "nll" for PMC (its selected self-generated answers) and IDK (refusals), or a
        baseline's: "grad_ascent", "npo" (needs `freeze_reference` first), "simnpo". Both halves go through
        the model in one forward pass; the retain NLL is its own token mean. With `entropy_weights` set, the
        entropy regulariser is added.
        """
        logits, batch = self.forward(list(forget) + list(retain))
        logprobs, counts = sequence_logprobs(logits, batch.labels)
        k = len(forget)
        forget_logprobs, forget_counts = logprobs[:k], counts[:k]
        if forget_loss == "nll":
            forget_term = nll(forget_logprobs, forget_counts)
        elif forget_loss == "grad_ascent":
            forget_term = grad_ascent(forget_logprobs, forget_counts)
        elif forget_loss == "npo":
            forget_term = npo(forget_logprobs, self.reference_logprobs(forget), beta)
        elif forget_loss == "simnpo":
            forget_term = simnpo(forget_logprobs, forget_counts, beta, gamma)
        else:
            raise ValueError(f"unknown forget loss {forget_loss!r}")
        retain_nll = nll(logprobs[k:], counts[k:])
        loss = forget_term + lambda_ * retain_nll
        logs = {"forget_loss": forget_term.item(), "retain_nll": retain_nll.item()}
        if any(self.entropy_weights):
            entropies = [mean_token_entropy(logits[part], batch.labels[part]) for part in (slice(None, k), slice(k, None))]
            loss = loss + sum(w * h for w, h in zip(self.entropy_weights, entropies))
            logs.update(forget_entropy=entropies[0].item(), retain_entropy=entropies[1].item())
        self.step(loss)
        return {"loss": loss.item(), **logs}

    def freeze_reference(self) -> None:
        """Keep a frozen copy of the model as it is now (the target): NPO's reference."""
        self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)

    @torch.no_grad()
    def reference_logprobs(self, examples: Sequence[Example]) -> torch.Tensor:
        return self.answer_logprobs(examples, self.reference)[0]

    def sft_step(self, examples: Sequence[Example]) -> dict[str, float]:
        loss = nll(*self.answer_logprobs(examples))
        self.step(loss)
        return {"loss": loss.item()}

    # ---- epochs -------------------------------------------------------------------------------------
    def minibatches(self, items: Sequence, batch_size: int) -> Iterator[list]:
        order = list(range(len(items)))
        self.rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            yield [items[i] for i in order[start : start + batch_size]]

    def unlearn_epoch(self, forget: Sequence[Example], retain: Sequence[Example], lambda_: float, batch_size: int,
                      **forget_loss) -> dict[str, float]:
        """One pass over the forget examples; each is paired with a random retain row (none if `retain` is empty)."""
        logs = [
            self.unlearn_step(chunk, [retain[self.rng.randrange(len(retain))] for _ in chunk] if retain else [],
                              lambda_, **forget_loss)
            for chunk in self.minibatches(forget, batch_size)
        ]
        return mean_logs(logs)

    def sft_epoch(self, examples: Sequence[Example], batch_size: int) -> dict[str, float]:
        return mean_logs([self.sft_step(chunk) for chunk in self.minibatches(examples, batch_size)])

    # ---- weights out --------------------------------------------------------------------------------
    def export_weights(self, dtype: str) -> dict[str, torch.Tensor]:
        """HF-named CPU tensors in the engine's dtype, as a checkpoint would hold them.

        The full state dict, so a tied output head is sent under its own name too: vLLM's reload on the
        CPU leaves a tied head stale when only the embedding arrives (tests/test_engine.py checks both).
        """
        target = ENGINE_DTYPES[dtype]
        return {name: t.detach().to("cpu", target).contiguous() for name, t in self.model.state_dict().items()}

    def connect_engines(self, client, dtype: str) -> None:
        """Push weights from now on through vLLM's weight-transfer interface to the engines behind `client`
        (vLLM's client protocol), in their `dtype`: shared memory, so trainer and engines share a node."""
        from engine.weight_transfer import connect  # vLLM is imported only where engines are pushed to

        self.weight_sender = connect(self.model, client, dtype)

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
        """Everything training continues from: weights, optimizer and scheduler state, the random streams
        (minibatch order, retain pairing, torch's).

        A copy is taken now and written by a thread while training goes on (writing 1.6 GB for the 135M model
        takes seconds); then the `then_write` files (path -> text), which point at the state, appear. Each
        file appears whole or not at all. A second save first waits for the one before (`wait_for_saves`).
        """
        self.wait_for_saves()
        state = _copied({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                         "scheduler": self.scheduler.state_dict(), "rng": self.rng.getstate(),
                         "torch_rng": torch.get_rng_state()})
        files = {Path(path): state, **{Path(name): text for name, text in (then_write or {}).items()}}
        self.saving = threading.Thread(target=self._write_files, args=(files,), name="checkpoint-writer")
        self.saving.start()

    def _write_files(self, files: dict[Path, object]) -> None:
        try:
            for path, content in files.items():
                write_file_atomically(path, lambda tmp: tmp.write_text(content) if isinstance(content, str)
                                      else torch.save(content, tmp))
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
        """Continue where `save_state` left off (the optimizer configured as it was then)."""
        assert self.optimizer is not None, "configure_optimizer first"
        self.wait_for_saves()
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])

    def save(self, folder: Path | str) -> None:
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)


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
