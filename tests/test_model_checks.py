"""The checks made once the tokenizer is loaded (models/checks.py): a prompt that leaves no room for its answer,
and a tokenizer with ids the model has no embedding for, are refused naming the file, row and numbers."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from transformers import AutoTokenizer

from pmc_unlearning.data import load_benchmark
from pmc_unlearning.models import ModelError
from pmc_unlearning.models.checks import check_prompt_lengths, check_tokenizer_fits_model
from pmc_unlearning.models.prompting import PromptFormat


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def write_folder(folder, bench, question_of_retain_row_5: str) -> str:
    """The benchmark as a data folder (full, forget10, retain90), retain row 5's question replaced (in full too)."""
    folder.mkdir()
    old = bench.retain[4].question
    for split, rows in (("full", bench.full), ("forget10", bench.forget), ("retain90", bench.retain)):
        records = [dataclasses.asdict(row) for row in rows]
        for record in records:
            record["question"] = question_of_retain_row_5 if record["question"] == old else record["question"]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(folder)


def longest_prompt(prompt: PromptFormat, bench) -> int:
    return max(len(prompt.prompt(row.question)) for split in ("full", "world_facts", "real_authors")
               for row in getattr(bench, split))


def test_prompts_that_fit_pass_and_one_token_too_many_is_refused(tokenizer, small_bench):
    prompt = PromptFormat(tokenizer)
    longest = longest_prompt(prompt, small_bench)
    check_prompt_lengths(prompt, small_bench, max_model_len=longest + 8, max_new_tokens=8)
    with pytest.raises(ModelError, match=rf"exceeds engine.max_model_len={longest + 7}; raise engine.max_model_len "
                                         rf"to at least {longest + 8}"):
        check_prompt_lengths(prompt, small_bench, max_model_len=longest + 7, max_new_tokens=8)


def test_a_long_question_is_named_by_its_file_and_row(tokenizer, small_bench, tmp_path):
    long_question = small_bench.retain[4].question + " And" + " what else?" * 60
    bench = load_benchmark(write_folder(tmp_path / "d", small_bench, long_question), "forget10")
    prompt = PromptFormat(tokenizer)
    length = len(prompt.prompt(long_question))
    with pytest.raises(ModelError) as refused:
        check_prompt_lengths(prompt, bench, max_model_len=128, max_new_tokens=32)
    full_row = 1 + [row.question for row in bench.full].index(long_question)
    assert str(refused.value).startswith(
        f"{tmp_path / 'd' / 'full.jsonl'}, row {full_row}: field 'question' makes a prompt of {length} tokens, which "
        "with engine.max_new_tokens=32 exceeds engine.max_model_len=128")


def test_a_long_paraphrased_forget_question_is_checked_too(tokenizer, small_bench):
    row = dataclasses.replace(small_bench.forget[2], paraphrased_question="Tell me" + " again" * 200)
    bench = dataclasses.replace(small_bench, forget=(*small_bench.forget[:2], row, *small_bench.forget[3:]))
    with pytest.raises(ModelError, match=r", row 3: field 'paraphrased_question' makes a prompt of \d+ tokens"):
        check_prompt_lengths(PromptFormat(tokenizer), bench, max_model_len=256, max_new_tokens=16)


def test_chat_prompts_are_counted_as_the_engine_gets_them(chat_tiny_model, small_bench):
    chat = PromptFormat(AutoTokenizer.from_pretrained(chat_tiny_model), "chat")
    plain = PromptFormat(AutoTokenizer.from_pretrained(chat_tiny_model), "plain")
    longest_chat = longest_prompt(chat, small_bench)
    assert longest_chat != longest_prompt(plain, small_bench)
    check_prompt_lengths(chat, small_bench, max_model_len=longest_chat + 1, max_new_tokens=1)
    with pytest.raises(ModelError, match=f"a prompt of {longest_chat} tokens"):
        check_prompt_lengths(chat, small_bench, max_model_len=longest_chat, max_new_tokens=1)


def test_the_tiny_models_tokenizer_fits_its_embedding(tokenizer, tiny_model):
    assert len(tokenizer) <= json.loads((tiny_model / "config.json").read_text())["vocab_size"]
    check_tokenizer_fits_model(tokenizer, tiny_model)


def copy_with_config(tiny_model, tmp_path, change) -> str:
    folder = tmp_path / "model"
    folder.mkdir()
    config = json.loads((tiny_model / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def test_a_tokenizer_with_ids_beyond_the_embedding_is_refused(tokenizer, tiny_model, tmp_path):
    size = len(tokenizer)
    folder = copy_with_config(tiny_model, tmp_path, lambda config: config.update(vocab_size=size - 1))
    with pytest.raises(ModelError, match=rf"model: the tokenizer's largest token id is {size - 1} \(added tokens "
                                         rf"included\), but config.json's vocab_size is {size - 1}"):
        check_tokenizer_fits_model(tokenizer, folder)


def test_added_tokens_count(tokenizer, tiny_model, tmp_path):
    grown = AutoTokenizer.from_pretrained(tiny_model)
    grown.add_tokens(["<extra-1>", "<extra-2>"])
    vocab_size = len(tokenizer) + 1  # room for one of the two
    folder = copy_with_config(tiny_model, tmp_path, lambda config: config.update(vocab_size=vocab_size))
    check_tokenizer_fits_model(tokenizer, folder)
    with pytest.raises(ModelError, match=f"largest token id is {vocab_size}"):
        check_tokenizer_fits_model(grown, folder)


def test_a_vocab_size_nested_in_text_config_is_read(tokenizer, tiny_model, tmp_path):
    def nest(config):
        config["text_config"] = {"vocab_size": 10}
        del config["vocab_size"]
    with pytest.raises(ModelError, match="vocab_size is 10"):
        check_tokenizer_fits_model(tokenizer, copy_with_config(tiny_model, tmp_path, nest))


def test_an_unreadable_config_is_named(tokenizer, tiny_model, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_model, folder)
    (folder / "config.json").write_text("{oops")
    with pytest.raises(ModelError, match=r"broken/config.json: cannot read the model's config"):
        check_tokenizer_fits_model(tokenizer, folder)
