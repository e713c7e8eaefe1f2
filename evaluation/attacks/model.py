"""What an attack works with: one model state (its engine answers, its trainer scores and changes weights) and
the benchmark's rows it attacks with.

An attack is a plain function `attack(model: AttackedModel, data: AttackData, config: RunConfig) -> dict` (its
settings in `config.eval.attacks`; evaluation/attacks/__init__.py lists them). It may change the model's weights only inside
`model.changed_weights()`, which gives back the state it found (trainer and engine) when the block ends.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from pmc_unlearning.data import QA
from pmc_unlearning.models.prompting import Example, PromptFormat


@dataclass(frozen=True)
class AttackData:
    forget: tuple[QA, ...]  # the rows to forget (with their perturbed answers)
    retain: tuple[QA, ...]  # rows the model should keep (in-context examples, the benign relearn)
    holdout: tuple[QA, ...]  # rows no model here ever saw, in the forget rows' style; () where the data has none
    absent: dict[str, str]  # what the data cannot give, and why (e.g. {"holdout": "..."}), as Benchmark.absent


class AttackedModel:
    """One model state under attack: the job's engines (`sampler`, a SamplerGroup) and trainer ranks
    (`trainer`, a TrainerGroup), which hold the same weights whenever an attack is not changing them."""

    def __init__(self, sampler, trainer, push: Callable[[], None], prompt: PromptFormat, score_batch_size: int,
                 seed: int):
        """`push`: serves the trainer's weights in the engines (cluster/weight_sync.py's sync_weights)."""
        self.sampler, self.trainer, self.push, self.prompt = sampler, trainer, push, prompt
        self.score_batch_size, self.seed = score_batch_size, seed

    def greedy(self, prompts: Sequence[Sequence[int]]) -> list[str]:
        """The engine's greedy answer to each prompt (token ids), as text."""
        return [c.text.strip() for c in self.sampler.greedy(list(prompts))]

    def sample(self, prompts: Sequence[Sequence[int]], n: int) -> list[list[str]]:
        """`n` answers per prompt at temperature 1, seeded (the same draws whatever ran before)."""
        return [[c.text.strip() for c in candidates]
                for candidates in self.sampler.sample(list(prompts), n, 1.0, 1.0, seed=self.seed)]

    def score(self, examples: Sequence[Example]) -> list[tuple[float, int]]:
        """(summed log-probability, token count) of each example's answer (teacher-forced, by the trainer)."""
        return self.trainer.score(list(examples), self.score_batch_size)

    def token_statistics(self, examples: Sequence[Example]) -> list:
        """Per answer token of each example: its log-probability, the vocabulary's mean and standard deviation of
        log-probabilities at that position, and whether it is the most likely token (trainer/token_statistics.py)."""
        return self.trainer.token_statistics(list(examples), self.score_batch_size)

    @contextmanager
    def changed_weights(self) -> Iterator[None]:
        """A block in which `quantize` and `relearn` change the weights; the trainer's state (weights, optimizer,
        random streams) and the engine's weights are as before when it ends, whatever happened in it."""
        self.trainer.stash_state()
        try:
            yield
        finally:
            self.trainer.restore_state()
            self.push()

    def quantize(self, bits: int, group: int) -> None:
        """Round the trainer's linear weights to `bits` (trainer/quantization.py), then serve them."""
        self.trainer.quantize_weights(bits, group)
        self.push()

    def relearn(self, examples: Sequence[Example], steps: int, lr: float, batch_size: int) -> None:
        """`steps` more optimizer steps of plain fine-tuning on `examples` (minibatches of `batch_size`, a fresh
        optimizer at `lr` at the block's first call), then serve the weights."""
        self.trainer.relearn_steps(list(examples), steps, lr, batch_size)
        self.push()
