"""Gradient ascent: push the forget answers' likelihood down. Nothing holds the rest of the model in place
(no retain term), which is why it collapses: the baseline that shows what the retain term buys."""
from __future__ import annotations

import torch

from pmc_unlearning.methods.method import FixedTargets, Task
from pmc_unlearning.trainer.losses import nll, retain_nll
from pmc_unlearning.trainer.trainer import Step


def grad_ascent_loss(forget_logprobs: torch.Tensor, forget_counts: torch.Tensor, tokens: int | None = None) -> torch.Tensor:
    """Minus the token mean NLL of the forget answers: minimising it maximises their NLL."""
    return -nll(forget_logprobs, forget_counts, tokens)


def objective(step: Step) -> dict[str, torch.Tensor]:
    return {"forget_loss": grad_ascent_loss(*step.forget_logprobs(), step.forget_tokens), "retain_nll": retain_nll(step)}


class GradAscent(FixedTargets):
    def __init__(self, config, task: Task):
        super().__init__(config, task)
        self.retain = []  # no retain term (and no retain rows drawn)

    @property
    def objective(self):
        return objective
