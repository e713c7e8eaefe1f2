"""What an attack works with: one model state (its engine answers, its trainer scores and changes weights) and
the benchmark's rows it attacks with.

An attack is a plain function `attack(model: AttackedModel, data: AttackData, config: RunConfig) -> dict` (its
settings in `config.eval.attacks`; evaluation/attacks/__init__.py lists them). It may change the model's weights only inside
`model.changed_weights()`, which gives the trainer back the state it found when the block ends, and the engines
when they next answer.
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
    (`trainer`, a TrainerGroup). The engines are given the trainer's weights when they are next asked to answer
    (`serve`), not each time the weights change: a change that no answer reads costs no push."""

    def __init__(self, sampler, trainer, push: Callable[[], None], prompt: PromptFormat, score_batch_size: int,
                 seed: int):
        """`push`: serves the trainer's weights in the engines (cluster/weight_sync.py's sync_weights)."""
        self.sampler, self.trainer, self.push, self.prompt = sampler, trainer, push, prompt
        self.score_batch_size, self.seed = score_batch_size, seed
        self.served = True  # the engines hold the trainer's weights
        self.statistics: dict[tuple, list] = {}  # token_statistics under the trainer's weights as they are now

    def serve(self) -> None:
        """Have the engines serve the trainer's weights, if they changed since the engines were last given them."""
        if not self.served:
            self.push()
            self.served = True

    def answers(self, greedy: Sequence[Sequence[int]], sampled: Sequence[Sequence[int]] = (), n: int = 1
                ) -> tuple[list[str], list[list[str]]]:
        """The engine's greedy answer to each of `greedy` (prompts as token ids), and `n` answers to each of
        `sampled` at temperature 1, seeded (the same draws whatever ran before), as text, from one engine call."""
        self.serve()
        answers, samples = self.sampler.greedy_and_sample(list(greedy), list(sampled), n, 1.0, 1.0, seed=self.seed)
        return [c.text.strip() for c in answers], [[c.text.strip() for c in candidates] for candidates in samples]

    def score(self, examples: Sequence[Example]) -> list[tuple[float, int]]:
        """(summed log-probability, token count) of each example's answer (teacher-forced, by the trainer)."""
        return self.trainer.score(list(examples), self.score_batch_size)

    def token_statistics(self, examples: Sequence[Example]) -> list:
        """Per answer token of each example: its log-probability, the vocabulary's mean and standard deviation of
        log-probabilities at that position, and whether it is the most likely token (trainer/token_statistics.py).
        Computed once per examples and weights (the membership and extraction attacks read the same)."""
        key = tuple(examples)
        if key not in self.statistics:
            self.statistics[key] = self.trainer.token_statistics(list(examples), self.score_batch_size)
        return self.statistics[key]

    @contextmanager
    def changed_weights(self) -> Iterator[None]:
        """A block in which `quantize` and `relearn` change the weights; the trainer's state (weights, optimizer,
        random streams) is as before when it ends, whatever happened in it (the engines' by the next `serve`)."""
        self.trainer.stash_state()
        try:
            yield
        finally:
            self.trainer.restore_state()
            self.weights_changed()

    def quantize(self, bits: int, group: int) -> None:
        """Round the trainer's linear weights to `bits` (trainer/quantization.py)."""
        self.trainer.quantize_weights(bits, group)
        self.weights_changed()

    def relearn(self, examples: Sequence[Example], steps: int, lr: float, batch_size: int) -> None:
        """`steps` more optimizer steps of plain fine-tuning on `examples` (minibatches of `batch_size`, a fresh
        optimizer at `lr` at the block's first call)."""
        self.trainer.relearn_steps(list(examples), steps, lr, batch_size)
        self.weights_changed()

    def weights_changed(self) -> None:
        self.served = False
        self.statistics.clear()
