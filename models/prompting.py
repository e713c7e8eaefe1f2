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
from typing import Literal, Sequence

from pmc_unlearning.models.errors import ModelError

PROMPT_TEMPLATE = "Question: {question}\nAnswer:"
# Another plain template, for the prompt-format attack on a model that knows only the plain one.
SHORT_TEMPLATE = "Q: {question}\nA:"
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
    template: str = PROMPT_TEMPLATE  # the plain style's

    def prompt(self, question: str, shots: Sequence[tuple[str, str]] = ()) -> tuple[int, ...]:
        """The question's prompt, after `shots` (question, answer) pairs answered in the same format (in-context
        examples: earlier turns of the chat, or earlier blocks of the plain template)."""
        if self.style == "chat":
            turns = [{"role": role, "content": text} for q, a in shots
                     for role, text in (("user", q), ("assistant", a.strip()))]
            text = self.tokenizer.apply_chat_template([*turns, {"role": "user", "content": question}], tokenize=False,
                                                      add_generation_prompt=True)
            # The template already holds its special tokens (BOS included where the model has one).
            return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        text = "".join(f"{self.template.format(question=q)} {a.strip()}\n\n" for q, a in shots)
        return tuple(self.tokenizer(text + self.template.format(question=question),
                                    add_special_tokens=True)["input_ids"])

    def answer(self, text: str) -> tuple[int, ...]:
        """The answer as the model should produce it after the prompt, then end-of-sequence."""
        spoken = text.strip() if self.style == "chat" else " " + text.strip()
        return tuple(self.tokenizer(spoken, add_special_tokens=False)["input_ids"]) + (self.tokenizer.eos_token_id,)

    def example(self, question: str, answer: str) -> Example:
        return Example(self.prompt(question), self.answer(answer))

    def describe(self) -> dict:
        """What defines the format, for cache keys and the run folder."""
        template = self.tokenizer.chat_template if self.style == "chat" else self.template
        return {"style": self.style, "template": template}

    def other(self) -> tuple[str, PromptFormat]:
        """(its name, a format other than this one that the model may still answer in): plain for a chat model,
        the chat template for a plain-prompted model whose tokenizer has one, else another plain template."""
        if self.style == "chat":
            return "plain", PromptFormat(self.tokenizer, "plain")
        if self.tokenizer.chat_template:
            return "chat", PromptFormat(self.tokenizer, "chat")
        return "plain, Q:/A:", PromptFormat(self.tokenizer, "plain", SHORT_TEMPLATE)

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
