"""The one interface of an unlearning method, as the round driver (methods/rounds.py) drives it.

A method is a class in a file of its own in methods/, registered by name in configs/methods.py. The driver
owns what every method's rounds share: the optimizer and its warm-up, checkpoints, resuming (and training
again the rounds since the last full trainer state), the weight pushes, the stage timer, the record and the
log. A method says what one round does, when the engine is used between rounds, and what a checkpoint must
hold to train a round again exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from pmc_unlearning.configs import RunConfig
from pmc_unlearning.data import QA
from pmc_unlearning.methods.checkpoint import Saved
from pmc_unlearning.models.prompting import Example, PromptFormat
from pmc_unlearning.telemetry.timing import StageTimer
from pmc_unlearning.trainer.losses import answer_nll
from pmc_unlearning.trainer.trainer import Item, Objective


@dataclass(frozen=True)
class Task:
    """What a job unlearns and what it keeps."""

    prompt: PromptFormat
    forget: Sequence[QA]  # the forget questions, with the data set's answers
    retain: Sequence[Example]  # the retain rows, as training examples
    originals: Sequence[str] = ()  # the target model's greedy answers to the forget questions (PMC's reference)
    base_model: str = ""  # the folder the target was fine-tuned from (PMC's fluency judge, pmc.judge)


class Method:
    """One unlearning method. Every method takes PMC's rounds, batch size, weight decay and warm-up
    (`config.pmc`), so all make the same optimizer steps on the same forget rows and retain pairing."""

    stages: tuple[str, ...] = ("training", "weight_sync")  # the timer's stages each round's record lists

    def __init__(self, config: RunConfig, task: Task):
        self.config, self.task, self.schedule = config, task, config.pmc

    @property
    def lr(self) -> float:
        return self.config.baseline.lr

    @property
    def questions(self) -> int:
        return len(self.task.forget)

    def prepare(self, trainer) -> None:
        """What the method needs of the trainer before the optimizer is set up (a frozen reference, ...)."""

    def train_round(self, round_: int, sampler, trainer, timer: StageTimer, served: int) -> dict:
        """One round, up to and including its training (the timer's stages); its figures for the record.
        `served`: the round whose weights the engine serves (0: the target's)."""
        raise NotImplementedError

    def uses_engine_after(self, round_: int) -> bool:
        """Whether the engine is used between this round and the next one's training: it then gets the new
        weights (it always does after the last round, for the evaluation)."""
        return False

    def finish_round(self, round_: int, sampler, timer: StageTimer, record: dict) -> bool:
        """After the push: what the method checks on the engine, added to `record`; True ends the job early."""
        return False

    def trained_on(self) -> Any:
        """What the round just trained on, as a checkpoint holds it (JSON), to train it again on resume;
        None where every round trains on the same examples."""
        return None

    def replay_round(self, trainer, trained_on: Any) -> None:
        """Train a round again exactly, from what `trained_on` gave after it (a resumed job)."""
        raise NotImplementedError

    def resume(self, saved: Saved) -> None:
        """Take up the state after the checkpoint's last round (the trainer's is loaded and replayed)."""


class FixedTargets(Method):
    """A method that trains on the same forget items every round, each paired with a random retain row: every
    baseline. It needs no sampling, so the engine gets the weights once, after the last round."""

    def __init__(self, config: RunConfig, task: Task):
        super().__init__(config, task)
        self.forget = self.forget_items()
        self.retain = list(task.retain)

    def forget_items(self) -> list[Item]:
        """What the forget questions train towards or away from (default: the data set's answers)."""
        return [self.task.prompt.example(row.question, row.answer) for row in self.task.forget]

    @property
    def lambda_(self) -> float:
        return self.config.baseline.lambda_

    @property
    def objective(self) -> Objective:
        """The step's loss (Trainer.unlearn_step): a module-level function of the method's file, or a partial."""
        return answer_nll

    def train(self, trainer) -> dict:
        return trainer.unlearn_round(self.forget, self.retain, self.lambda_, self.schedule.batch_size, self.objective)

    def train_round(self, round_: int, sampler, trainer, timer: StageTimer, served: int) -> dict:
        with timer("training"):
            sampler.rest()  # an engine sharing the trainer's GPU rests until the push after the last round
            losses = self.train(trainer)
        return {"questions": self.questions, **losses}

    def replay_round(self, trainer, trained_on: None) -> None:
        self.train(trainer)
