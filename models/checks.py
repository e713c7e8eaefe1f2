"""Checks that need the tokenizer, made once it is loaded and before the engine or the trainer starts: a question
whose prompt leaves no room for its answer, or a tokenizer with ids the model has no embedding for, would
otherwise fail deep inside vLLM or torch, minutes into the job, or silently truncate answers.

Light on purpose: the tokenizer comes in loaded, config.json is read as JSON (no torch).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pmc_unlearning.models.errors import ModelError

if TYPE_CHECKING:
    from pmc_unlearning.data import Benchmark
    from pmc_unlearning.models.prompting import PromptFormat

# The Benchmark fields whose questions the engine is prompted with, in the order a message should name them.
PROMPTED_SPLITS = ("full", "forget", "retain", "eval_retain", "world_facts", "real_authors")


def check_prompt_lengths(prompt: PromptFormat, bench: Benchmark, max_model_len: int, max_new_tokens: int) -> None:
    """Every question of every split (and every forget row's paraphrased question, which the evaluation asks
    too), as `prompt` puts it to the model, plus `max_new_tokens`, must fit in `max_model_len` tokens; else a
    ModelError naming the split file, the row, the token counts and engine.max_model_len. Each distinct
    question is tokenized once, and named by the first row that asks it."""
    checked: set[str] = set()
    for split, index, field, question in _prompted_questions(bench):
        if question in checked:
            continue
        checked.add(question)
        length = len(prompt.prompt(question))
        if length + max_new_tokens > max_model_len:
            raise ModelError(f"{bench.row_place(split, index)}: field '{field}' makes a prompt of {length} tokens, "
                             f"which with engine.max_new_tokens={max_new_tokens} exceeds engine.max_model_len="
                             f"{max_model_len}; raise engine.max_model_len to at least {length + max_new_tokens} "
                             "(within the model's context) or shorten the question")


def _prompted_questions(bench: Benchmark):
    """(Benchmark field, row index, field name, question) for every question the engine is asked."""
    for split in PROMPTED_SPLITS:
        for index, row in enumerate(getattr(bench, split)):
            yield split, index, "question", row.question
            if split == "forget" and row.paraphrased_question:
                yield split, index, "paraphrased_question", row.paraphrased_question


def check_tokenizer_fits_model(tokenizer, model_dir: Path | str) -> None:
    """The tokenizer's largest id (len(tokenizer) - 1, added tokens included) must have a row in the model's
    embedding, whose size is config.json's vocab_size; else a ModelError naming both numbers and the folder.
    A config without vocab_size (some multimodal ones nest it) is left to the model's own loading."""
    vocab_size = _config_vocab_size(Path(model_dir))
    largest_id = len(tokenizer) - 1
    if vocab_size is not None and largest_id >= vocab_size:
        raise ModelError(f"{model_dir}: the tokenizer's largest token id is {largest_id} (added tokens included), "
                         f"but config.json's vocab_size is {vocab_size}, so the model has no embedding for ids "
                         f"{vocab_size} to {largest_id}; use the tokenizer the model was trained with")


def _config_vocab_size(model_dir: Path) -> int | None:
    config_file = model_dir / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{config_file}: cannot read the model's config ({err})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{config_file}: expected a JSON object")
    text_config = config.get("text_config")
    vocab_size = config.get("vocab_size", text_config.get("vocab_size") if isinstance(text_config, dict) else None)
    if vocab_size is not None and (isinstance(vocab_size, bool) or not isinstance(vocab_size, int)):
        raise ModelError(f"{config_file}: vocab_size must be a whole number, got {vocab_size!r}")
    return vocab_size
