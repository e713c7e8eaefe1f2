"""How a question becomes token ids, and an answer becomes training targets.

One plain format for every model ("Question: ...\nAnswer:"), as the reference uses for base models.
Prompts and answers are encoded separately so that the ids the engine is prompted with are exactly the
ids the trainer conditions on, and a sampled answer's own token ids can be trained on unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

PROMPT_TEMPLATE = "Question: {question}\nAnswer:"


@dataclass(frozen=True)
class Example:
    """One training or scoring example as token ids: the loss counts only `answer_ids`."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]


def encode_prompt(tokenizer, question: str) -> tuple[int, ...]:
    return tuple(tokenizer(PROMPT_TEMPLATE.format(question=question), add_special_tokens=True)["input_ids"])


def encode_answer(tokenizer, answer: str) -> tuple[int, ...]:
    """The answer as the model should produce it after the prompt: a leading space, then end-of-sequence."""
    ids = tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
    return tuple(ids) + (tokenizer.eos_token_id,)


def encode_example(tokenizer, question: str, answer: str) -> Example:
    return Example(encode_prompt(tokenizer, question), encode_answer(tokenizer, answer))
