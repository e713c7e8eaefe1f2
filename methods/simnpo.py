"""SimNPO: NPO without a reference model, on length-normalised log-probabilities with a margin gamma."""
from __future__ import annotations

from functools import partial

import torch

from pmc_unlearning.methods.method import FixedTargets
from pmc_unlearning.trainer.losses import retain_nll
from pmc_unlearning.trainer.trainer import Step


def simnpo_loss(forget_logprobs: torch.Tensor, forget_counts: torch.Tensor, beta: float, gamma: float,
                sequences: int | None = None) -> torch.Tensor:
    """-(2/beta) * mean log sigmoid(-beta * log p_theta(y|x) / |y| - gamma)."""
    normalised = forget_logprobs / forget_counts.clamp(min=1)
    terms = torch.nn.functional.logsigmoid(-beta * normalised - gamma)
    return -(2 / beta) * terms.sum() / (len(terms) if sequences is None else sequences)


def objective(step: Step, beta: float, gamma: float) -> dict[str, torch.Tensor]:
    return {"forget_loss": simnpo_loss(*step.forget_logprobs(), beta, gamma, step.items),
            "retain_nll": retain_nll(step)}


class SimNPO(FixedTargets):
    @property
    def objective(self):
        return partial(objective, beta=self.config.baseline.simnpo_beta, gamma=self.config.baseline.simnpo_gamma)
