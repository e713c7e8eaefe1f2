"""How a question becomes token ids, and an answer becomes training targets: one `PromptFormat` per run.

Two styles, used the same way by the fine-tune, the engine, the trainer and every metric:
- "plain": "Question: ...\\nAnswer:" and the answer after a space, as the reference uses for base models;
- "chat": the tokenizer's chat template with the question as the user's turn, the answer as the assistant's,
  as TOFU and open-unlearning prompt instruct models.
"auto" picks chat when the tokenizer has a chat template and the model is an instruct model.

Prompts and answers are encoded separately so that the ids the engine is prompted with are exactly the ids
the trainer conditions on, and a sampled answer's own token ids can be trained on unchanged. Every answer
ends with the tokenizer's end-of-sequence token (the end of the assistant's turn for chat models).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pmc_unlearning.models.errors import ModelError

PROMPT_TEMPLATE = "Question: {question}\nAnswer:"
PROMPT_STYLES = ("plain", "chat")
Style = Literal["plain", "chat"]
# A model folder fine-tuned here records the style it learned, so that "auto" finds it again later.
RECORD_FILE = "prompt_format.json"
# Names that mark an instruction-tuned model: "...-Instruct", "...-chat", "gemma-2b-it".
_INSTRUCT_NAME = re.compile(r"instruct|chat|(?:^|[-_])it(?:$|[-_])", re.IGNORECASE)


@dataclass(frozen=True)
class Example:
    """One training or scoring example as token ids: the loss counts only `answer_ids`."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]


@dataclass(frozen=True)
class PromptFormat:
    tokenizer: object
    style: Style = "plain"

    def prompt(self, question: str) -> tuple[int, ...]:
        if self.style == "chat":
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                                      add_generation_prompt=True)
            # The template already holds its special tokens (BOS included where the model has one).
            return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return tuple(self.tokenizer(PROMPT_TEMPLATE.format(question=question), add_special_tokens=True)["input_ids"])

    def answer(self, text: str) -> tuple[int, ...]:
        """The answer as the model should produce it after the prompt, then end-of-sequence."""
        spoken = text.strip() if self.style == "chat" else " " + text.strip()
        return tuple(self.tokenizer(spoken, add_special_tokens=False)["input_ids"]) + (self.tokenizer.eos_token_id,)

    def example(self, question: str, answer: str) -> Example:
        return Example(self.prompt(question), self.answer(answer))

    def describe(self) -> dict:
        """What defines the format, for cache keys and the run folder."""
        template = self.tokenizer.chat_template if self.style == "chat" else PROMPT_TEMPLATE
        return {"style": self.style, "template": template}

    def record(self, model_dir: Path | str) -> None:
        (Path(model_dir) / RECORD_FILE).write_text(json.dumps({"style": self.style}) + "\n")


def resolve_style(setting: str, tokenizer, model_dir: Path | str) -> Style:
    """The prompt style for `setting` ("plain", "chat" or "auto") and this model.

    "auto": the style recorded in the folder (a model fine-tuned here), else chat for an instruct model whose
    tokenizer has a chat template, else plain.
    """
    if setting in PROMPT_STYLES:
        if setting == "chat" and not tokenizer.chat_template:
            raise ModelError(f"prompt=chat, but the tokenizer of {model_dir} has no chat template; use prompt=plain")
        return setting
    recorded = Path(model_dir) / RECORD_FILE
    if recorded.is_file():
        return json.loads(recorded.read_text())["style"]
    return "chat" if tokenizer.chat_template and is_instruct_model(Path(model_dir)) else "plain"


def is_instruct_model(model_dir: Path) -> bool:
    """By name, as the hub names them: the folder, the hub repository it was downloaded from, or the config's
    `_name_or_path`."""
    names = [model_dir.name, *(part for part in model_dir.parts if part.startswith("models--"))]
    config = model_dir / "config.json"
    if config.is_file():
        names.append(json.loads(config.read_text()).get("_name_or_path") or "")
    return any(_INSTRUCT_NAME.search(name) for name in names)
