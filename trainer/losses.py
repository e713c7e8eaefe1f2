"""Batching and the losses. Only answer tokens count: prompt and padding positions carry label -100."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from models.prompting import Example

IGNORE = -100


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T), right-padded
    attention_mask: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T): the token to predict at each position, IGNORE where it does not count

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


def collate(examples: Sequence[Example], pad_id: int) -> Batch:
    length = max(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
    input_ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
    for row, example in enumerate(examples):
        ids = example.prompt_ids + example.answer_ids
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        labels[row, len(example.prompt_ids) : len(ids)] = torch.tensor(example.answer_ids)
    return Batch(input_ids, attention_mask, labels)


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: the summed log-probability of its answer tokens, and how many there are.

    `logits[:, t]` predicts token t + 1, hence the shift.
    """
    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    token_nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE, reduction="none"
    ).view(targets.shape)
    return -token_nll.sum(dim=1), (targets != IGNORE).sum(dim=1)


def nll(logprob_sums: torch.Tensor, token_counts: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per answer token over the whole batch (HF's causal-LM loss)."""
    return -logprob_sums.sum() / token_counts.sum().clamp(min=1)


def mean_token_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the next-token distributions that predict answer tokens; 0 without any."""
    logits, answer = logits[:, :-1].float(), labels[:, 1:] != IGNORE
    logp = torch.log_softmax(logits[answer], dim=-1)
    entropy = -(logp.exp() * logp).sum(dim=-1)
    return entropy.mean() if entropy.numel() else logits.new_zeros(())


# ---- the baselines PMC is compared with (each on summed answer log-probabilities per sequence) -----------

def grad_ascent(forget_logprobs: torch.Tensor, forget_counts: torch.Tensor) -> torch.Tensor:
    """Gradient ascent: push the forget answers' likelihood down, i.e. minimise -NLL."""
    return -nll(forget_logprobs, forget_counts)


def npo(forget_logprobs: torch.Tensor, reference_logprobs: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO: -(2/beta) * mean log sigmoid(-beta * (log p_theta(y|x) - log p_ref(y|x))), summed token log-probs.

    Unlike gradient ascent it saturates: once the model is well below the frozen reference, the push fades.
    """
    return -(2 / beta) * torch.nn.functional.logsigmoid(-beta * (forget_logprobs - reference_logprobs)).mean()


def simnpo(forget_logprobs: torch.Tensor, forget_counts: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """SimNPO: NPO without a reference model, on length-normalised log-probabilities with a margin gamma."""
    normalised = forget_logprobs / forget_counts.clamp(min=1)
    return -(2 / beta) * torch.nn.functional.logsigmoid(-beta * normalised - gamma).mean()
