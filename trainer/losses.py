"""Batching and the losses. Only answer tokens count: prompt and padding positions carry label -100.

A rank of a trainer group computes a loss on its share of a batch; each loss therefore takes the size of
the whole batch (`tokens`, `sequences`; default: the share's own) and normalises by it, so that the ranks'
losses sum to the whole batch's loss and N ranks make the update one would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

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


def answer_tokens(examples: Sequence[Example]) -> int:
    """How many answer tokens a batch of examples has: the `tokens` of its token means."""
    return sum(len(example.answer_ids) for example in examples)


def nll(logprob_sums: torch.Tensor, token_counts: torch.Tensor, tokens: int | None = None) -> torch.Tensor:
    """Mean negative log-likelihood per answer token over the whole batch (HF's causal-LM loss)."""
    return -logprob_sums.sum() / max(int(token_counts.sum()) if tokens is None else tokens, 1)


def mean_token_entropy(logits: torch.Tensor, labels: torch.Tensor, tokens: int | None = None) -> torch.Tensor:
    """Mean entropy (nats) of the next-token distributions that predict answer tokens; 0 without any."""
    logits, answer = logits[:, :-1].float(), labels[:, 1:] != IGNORE
    logp = torch.log_softmax(logits[answer], dim=-1)
    entropy = -(logp.exp() * logp).sum(dim=-1)
    return entropy.sum() / max(entropy.numel() if tokens is None else tokens, 1)


# ---- the baselines PMC is compared with (each on summed answer log-probabilities per sequence) -----------

def grad_ascent(forget_logprobs: torch.Tensor, forget_counts: torch.Tensor, tokens: int | None = None) -> torch.Tensor:
    """Gradient ascent: push the forget answers' likelihood down, i.e. minimise -NLL."""
    return -nll(forget_logprobs, forget_counts, tokens)


def npo(forget_logprobs: torch.Tensor, reference_logprobs: torch.Tensor, beta: float,
        sequences: int | None = None) -> torch.Tensor:
    """NPO: -(2/beta) * mean log sigmoid(-beta * (log p_theta(y|x) - log p_ref(y|x))), summed token log-probs.

    Unlike gradient ascent it saturates: once the model is well below the frozen reference, the push fades.
    """
    terms = torch.nn.functional.logsigmoid(-beta * (forget_logprobs - reference_logprobs))
    return -(2 / beta) * terms.sum() / (len(terms) if sequences is None else sequences)


def simnpo(forget_logprobs: torch.Tensor, forget_counts: torch.Tensor, beta: float, gamma: float,
           sequences: int | None = None) -> torch.Tensor:
    """SimNPO: NPO without a reference model, on length-normalised log-probabilities with a margin gamma."""
    normalised = forget_logprobs / forget_counts.clamp(min=1)
    terms = torch.nn.functional.logsigmoid(-beta * normalised - gamma)
    return -(2 / beta) * terms.sum() / (len(terms) if sequences is None else sequences)


# ---- the registry the trainer picks a method's forget loss from ------------------------------------------

@dataclass(frozen=True)
class ForgetTerms:
    """What a forget loss may use: this rank's sequences, the whole batch's size, and the method's settings."""
    logprobs: torch.Tensor  # summed answer log-probability per sequence
    counts: torch.Tensor  # answer tokens per sequence
    tokens: int  # answer tokens in the whole batch (all ranks)
    sequences: int  # sequences in the whole batch
    beta: float
    gamma: float
    reference: Callable[[], torch.Tensor]  # the frozen reference model's `logprobs` of the same sequences (NPO)


FORGET_LOSSES: dict[str, Callable[[ForgetTerms], torch.Tensor]] = {
    "nll": lambda t: nll(t.logprobs, t.counts, t.tokens),  # PMC (its selected answers) and IDK (refusals)
    "grad_ascent": lambda t: grad_ascent(t.logprobs, t.counts, t.tokens),
    "npo": lambda t: npo(t.logprobs, t.reference(), t.beta, t.sequences),
    "simnpo": lambda t: simnpo(t.logprobs, t.counts, t.beta, t.gamma, t.sequences),
}
