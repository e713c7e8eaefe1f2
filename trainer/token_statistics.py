"""What the membership and extraction attacks read off one teacher-forced pass, per answer token: its
log-probability, the mean and standard deviation of log-probabilities over the vocabulary at that position
(Min-K %++ standardises by them), and whether it is the most likely token (exact memorization and extraction
strength count those)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pmc_unlearning.trainer.losses import Batch


@dataclass(frozen=True)
class TokenStatistics:
    """One example's answer tokens, in order."""

    logprob: tuple[float, ...]
    mean: tuple[float, ...]  # E_z[log p(z)] under the model's own next-token distribution
    std: tuple[float, ...]  # sqrt(E_z[log p(z)^2] - mean^2)
    top: tuple[bool, ...]  # the token is the argmax


def token_statistics(logits: torch.Tensor, batch: Batch) -> list[TokenStatistics]:
    """Per example of `batch`, from the logits at its answer-predicting positions (A, vocabulary)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    mean = (p * logp).sum(dim=-1)
    std = ((p * logp.square()).sum(dim=-1) - mean.square()).clamp(min=0).sqrt()
    chosen = logp.gather(1, batch.targets[:, None])[:, 0]
    top = logp.argmax(dim=-1) == batch.targets
    columns = [chosen.tolist(), mean.tolist(), std.tolist(), top.tolist()]
    sequence = batch.sequence.tolist()
    return [TokenStatistics(*(tuple(v for v, s in zip(column, sequence) if s == example) for column in columns))
            for example in range(batch.size)]
