"""Over-unlearning: does forgetting "X's father was a carpenter" make "carpenter" unlikely everywhere?

For the content tokens y of the forget answers, find contexts x in an unrelated corpus where y
follows x. Scoring p(y | x) before and after unlearning (done by the caller) and summarising the
differences shows whether a method removed the fact or damaged the word itself.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pmc_unlearning.models.prompting import PromptFormat

QUANTILES: dict[str, float] = {"q05": 0.05, "q25": 0.25, "q50": 0.50, "q75": 0.75, "q95": 0.95}


@dataclass(frozen=True)
class Context:
    """The model should predict `token_id` right after `prompt_ids`."""

    prompt_ids: tuple[int, ...]
    token_id: int


def _is_content_token(text: str, min_chars: int) -> bool:
    stripped = text.strip()
    return len(stripped) >= min_chars and any(char.isalnum() for char in stripped)


def forget_token_ids(prompt: PromptFormat, answers: Sequence[str], min_chars: int = 4) -> set[int]:
    """Ids of the content tokens of `answers`, tokenised exactly as the forget answers are trained.

    Punctuation, pieces shorter than `min_chars` and special tokens are dropped: their
    probabilities say nothing about whether a word was unlearned.
    """
    tokenizer = prompt.tokenizer
    special = set(tokenizer.all_special_ids)
    candidates = {token for answer in answers for token in prompt.answer(answer)}
    return {
        token for token in candidates
        if token not in special and _is_content_token(tokenizer.decode([token]), min_chars)
    }


def _corpus_ids(tokenizer, text: str) -> list[int]:
    # verbose=False: long corpus lines exceed the model's length on purpose (only windows are scored),
    # so the tokenizer's "sequence too long" warning would be noise.
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return ([bos] if bos is not None else []) + list(ids)


def _contexts_in(ids: Sequence[int], token_ids: set[int], context_tokens: int) -> list[Context]:
    # t >= 1: a token needs at least one preceding id to be predicted from.
    return [
        Context(tuple(ids[max(0, t - context_tokens):t]), ids[t])
        for t in range(1, len(ids))
        if ids[t] in token_ids
    ]


def collect_contexts(
    tokenizer,
    corpus: Sequence[str],
    token_ids: set[int],
    max_contexts: int = 2000,
    context_tokens: int = 32,
    seed: int = 0,
) -> list[Context]:
    """Every place in `corpus` where a token of `token_ids` follows at least one id.

    Each context holds the up-to-`context_tokens` ids before the token. Beyond `max_contexts`,
    a seeded random subset is kept, in corpus order, so a run is reproducible.
    """
    contexts = [
        context
        for text in corpus
        for context in _contexts_in(_corpus_ids(tokenizer, text), token_ids, context_tokens)
    ]
    if len(contexts) <= max_contexts:
        return contexts
    kept = sorted(random.Random(seed).sample(range(len(contexts)), max_contexts))
    return [contexts[index] for index in kept]


def summarise_changes(p_before: Sequence[float], p_after: Sequence[float]) -> dict:
    """Distribution of p_after - p_before over the contexts, as plain floats.

    `share_halved` is the share of contexts whose probability fell by more than half.
    """
    if len(p_before) != len(p_after):
        raise ValueError(f"p_before has {len(p_before)} values but p_after has {len(p_after)}")
    if len(p_before) == 0:
        raise ValueError("no contexts to summarise: the corpus holds none of the forget tokens")
    before = np.asarray(p_before, dtype=np.float64)
    after = np.asarray(p_after, dtype=np.float64)
    changes = after - before
    return {
        "count": len(changes),
        "mean_change": float(changes.mean()),
        "quantiles": {name: float(np.quantile(changes, q)) for name, q in QUANTILES.items()},
        "share_halved": float(np.mean(after < 0.5 * before)),
        "mean_prob_before": float(before.mean()),
        "mean_prob_after": float(after.mean()),
    }
