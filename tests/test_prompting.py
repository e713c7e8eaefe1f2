"""The prompt format: plain or the tokenizer's chat template, chosen by `prompt`, recorded with a fine-tuned model."""
from __future__ import annotations

import json
import shutil

import pytest
from transformers import AutoTokenizer

from pmc_unlearning.models import ModelError
from pmc_unlearning.models.prompting import PROMPT_TEMPLATE, PromptFormat, resolve_style


def test_plain_prompt_and_answer(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompt = PromptFormat(tokenizer, "plain")
    assert tokenizer.decode(prompt.prompt("Who wrote Hamlet?")) == "Question: Who wrote Hamlet?\nAnswer:"  # no BOS in this tokenizer
    assert tokenizer.decode(prompt.answer("  Shakespeare ")) == " Shakespeare</s>"
    assert prompt.describe() == {"style": "plain", "template": PROMPT_TEMPLATE}


def test_chat_prompt_puts_the_question_in_the_users_turn_and_ends_the_answer_with_the_turn(chat_tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(chat_tiny_model)
    prompt = PromptFormat(tokenizer, "chat")
    # One BOS (the template's own), not two: the template's text is encoded without adding special tokens.
    assert tokenizer.decode(prompt.prompt("Who wrote Hamlet?")) == "<s>user\nWho wrote Hamlet?</s>\n<s>assistant\n"
    assert tokenizer.decode(prompt.answer(" Shakespeare")) == "Shakespeare</s>"
    example = prompt.example("Who wrote Hamlet?", "Shakespeare")
    assert example.prompt_ids == prompt.prompt("Who wrote Hamlet?") and example.answer_ids == prompt.answer("Shakespeare")
    assert prompt.describe() == {"style": "chat", "template": tokenizer.chat_template}


def test_auto_is_chat_for_instruct_models_with_a_template_only(tiny_model, chat_tiny_model, tmp_path):
    plain_tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    chat_tokenizer = AutoTokenizer.from_pretrained(chat_tiny_model)
    assert resolve_style("auto", plain_tokenizer, tiny_model) == "plain"  # no template
    assert resolve_style("auto", chat_tokenizer, chat_tiny_model) == "chat"  # template and "instruct" in the name
    base = tmp_path / "tiny-base"  # a template but a base model's name (base Llama tokenizers ship templates too)
    shutil.copytree(chat_tiny_model, base)
    assert resolve_style("auto", chat_tokenizer, base) == "plain"
    assert resolve_style("plain", chat_tokenizer, chat_tiny_model) == "plain"
    hub_snapshot = tmp_path / "models--someone--Tiny-Chat" / "snapshots" / "0123abc"
    shutil.copytree(base, hub_snapshot)
    assert resolve_style("auto", chat_tokenizer, hub_snapshot) == "chat"  # the hub repository's name counts
    with pytest.raises(ModelError, match=r"prompt=chat, but the tokenizer of .* has no chat template; use prompt=plain"):
        resolve_style("chat", plain_tokenizer, tiny_model)


def test_a_fine_tuned_model_keeps_the_style_it_learned(chat_tiny_model, small_bench, tmp_path):
    from pmc_unlearning.configs import FinetuneConfig
    from pmc_unlearning.trainer.finetune import finetune_target

    out = tmp_path / "target"  # a cache key for a name: nothing says "instruct" any more
    pairs = [(row.question, row.answer) for row in small_bench.full[:4]]
    list(finetune_target(chat_tiny_model, pairs, FinetuneConfig(epochs=1, batch_size=4), out, "fp32", prompt_style="chat"))
    assert json.loads((out / "prompt_format.json").read_text()) == {"style": "chat"}
    assert resolve_style("auto", AutoTokenizer.from_pretrained(out), out) == "chat"


def test_examples_in_context_come_before_the_question_in_the_same_format(tiny_model, chat_tiny_model):
    plain = PromptFormat(AutoTokenizer.from_pretrained(tiny_model), "plain")
    shots = [("Who wrote Emma?", " Austen "), ("Who wrote Ulysses?", "Joyce")]
    assert plain.tokenizer.decode(plain.prompt("Who wrote Hamlet?", shots)) == (
        "Question: Who wrote Emma?\nAnswer: Austen\n\nQuestion: Who wrote Ulysses?\nAnswer: Joyce\n\n"
        "Question: Who wrote Hamlet?\nAnswer:")
    chat = PromptFormat(AutoTokenizer.from_pretrained(chat_tiny_model), "chat")
    assert chat.tokenizer.decode(chat.prompt("Who wrote Hamlet?", shots[:1])) == (
        "<s>user\nWho wrote Emma?</s>\n<s>assistant\nAusten</s>\n<s>user\nWho wrote Hamlet?</s>\n<s>assistant\n")


def test_the_other_format_is_plain_for_chat_and_chat_or_another_template_for_plain(tiny_model, chat_tiny_model):
    chat_tokenizer = AutoTokenizer.from_pretrained(chat_tiny_model)
    name, other = PromptFormat(chat_tokenizer, "chat").other()
    assert name == "plain" and other.describe() == {"style": "plain", "template": PROMPT_TEMPLATE}
    assert PromptFormat(chat_tokenizer, "plain").other()[0] == "chat"
    plain_tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    name, other = PromptFormat(plain_tokenizer, "plain").other()
    assert name == "plain, Q:/A:" and plain_tokenizer.decode(other.prompt("Who wrote Hamlet?")) == "Q: Who wrote Hamlet?\nA:"
