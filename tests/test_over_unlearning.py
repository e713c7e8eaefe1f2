"""The over-unlearning contexts: the corpora, the forget tokens, the context scan and the summary."""
from __future__ import annotations

import re

import pytest
from transformers import AutoTokenizer

from pmc_unlearning.data import DataError, load_benchmark
from pmc_unlearning.data.authors import _FIRST_NAMES
from pmc_unlearning.data.corpus import builtin_corpus, load_corpus, wikitext_corpus
from pmc_unlearning.evaluation.over_unlearning import Context, collect_contexts, forget_token_ids, summarise_changes
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.models.tiny import tiny_model_folder
from pmc_unlearning.orchestrator.inputs import benchmark_texts


@pytest.fixture(scope="module")
def default_bench():
    return load_benchmark()


@pytest.fixture(scope="module")
def tokenizer(cache_dir, default_bench):
    """The tiny model's tokenizer as a run on the default builtin benchmark would build it."""
    return AutoTokenizer.from_pretrained(tiny_model_folder(cache_dir, benchmark_texts(default_bench)))


@pytest.fixture(scope="module")
def forget_ids(tokenizer, default_bench):
    return forget_token_ids(PromptFormat(tokenizer), [row.answer for row in default_bench.forget])


def _expected_positions(tokenizer, corpus, token_ids):
    """An independent scan: (text index, position) of every forget token with something before it."""
    found = []
    for index, text in enumerate(corpus):
        ids = [tokenizer.bos_token_id] + tokenizer.encode(text, add_special_tokens=False)
        found += [(index, position) for position, token in enumerate(ids) if position > 0 and token in token_ids]
    return found


# --- the corpora -----------------------------------------------------------------------------------

def test_builtin_corpus_is_fixed_sized_and_a_fresh_list():
    corpus = builtin_corpus()
    assert 80 <= len(corpus) <= 150
    assert all(text.strip() == text and text for text in corpus)
    assert corpus == builtin_corpus()
    corpus.append("changed")
    assert builtin_corpus()[-1] != "changed"


def test_builtin_corpus_names_no_author(default_bench):
    words = {word for text in builtin_corpus() for word in re.findall(r"\w+", text)}
    assert not words & set(_FIRST_NAMES)
    text = " ".join(builtin_corpus())
    # The forget answers start with the author's full name ("<first> <surname> ...").
    names = {" ".join(row.answer.split()[:2]).removesuffix("'s") for row in default_bench.forget}
    assert not [name for name in names if name in text]


def test_load_corpus_by_name():
    assert load_corpus("builtin") == builtin_corpus()
    with pytest.raises(DataError, match="builtin.*wikitext"):
        load_corpus("books")


def test_wikitext_corpus_keeps_running_text_only(monkeypatch):
    rows = [{"text": ""}, {"text": " = Title = \n"}, {"text": " First line . \n"}, {"text": " = = Part = = \n"},
            {"text": " \n"}, {"text": " Second line . \n"}, {"text": " Third line . \n"}]
    monkeypatch.setattr("datasets.load_dataset", lambda *args, **kwargs: rows)
    assert wikitext_corpus(max_lines=2) == ["First line .", "Second line ."]


def test_wikitext_corpus_offline_says_to_use_builtin(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Both libraries read these variables once, at import: patch the values they already hold.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match=r"hub could not be reached.*corpus: builtin"):
        wikitext_corpus()


# --- forget tokens ---------------------------------------------------------------------------------

def test_forget_token_ids_keep_content_tokens_only(tokenizer):
    ids = forget_token_ids(PromptFormat(tokenizer), ["The carpenter's father, a baker, wrote 'Salt'!"])
    texts = {tokenizer.decode([token]).strip() for token in ids}
    assert {"carpenter", "father", "baker", "wrote"} <= texts
    assert not texts & {",", "'", "!", ".", "a", "'s"}
    assert all(len(text) >= 3 and any(char.isalnum() for char in text) for text in texts)
    assert tokenizer.eos_token_id not in ids


def test_forget_token_ids_use_the_trained_leading_space(tokenizer):
    # Answers are trained as " " + answer, so a first word is its space-prefixed token.
    (token,) = forget_token_ids(PromptFormat(tokenizer), ["carpenter"])
    assert token == tokenizer.encode(" carpenter", add_special_tokens=False)[0]


# --- contexts --------------------------------------------------------------------------------------

def test_contexts_are_exactly_the_forget_token_positions(tokenizer, forget_ids):
    corpus = builtin_corpus()
    contexts = collect_contexts(tokenizer, corpus, forget_ids, max_contexts=10**6, context_tokens=5)
    expected = _expected_positions(tokenizer, corpus, forget_ids)
    assert len(contexts) == len(expected)
    for context, (index, position) in zip(contexts, expected):
        ids = [tokenizer.bos_token_id] + tokenizer.encode(corpus[index], add_special_tokens=False)
        assert context.token_id == ids[position]
        # The prompt is the window that ends right before the token, cut to context_tokens.
        assert context.prompt_ids == tuple(ids[max(0, position - 5):position])


def test_contexts_start_with_bos_when_the_text_is_short(tokenizer):
    carpenter = tokenizer.encode(" carpenter", add_special_tokens=False)[0]
    contexts = collect_contexts(tokenizer, ["My grandfather was a carpenter."], {carpenter})
    prefix = tokenizer.encode("My grandfather was a", add_special_tokens=False)
    assert contexts == [Context(tuple([tokenizer.bos_token_id] + prefix), carpenter)]


def test_max_contexts_takes_a_seeded_ordered_subset(tokenizer, forget_ids):
    corpus = builtin_corpus()
    every = collect_contexts(tokenizer, corpus, forget_ids, max_contexts=10**6)
    subset = collect_contexts(tokenizer, corpus, forget_ids, max_contexts=50, seed=3)
    assert len(subset) == 50
    assert subset == collect_contexts(tokenizer, corpus, forget_ids, max_contexts=50, seed=3)
    assert subset != collect_contexts(tokenizer, corpus, forget_ids, max_contexts=50, seed=4)
    # Corpus order is kept: the subset is a subsequence of all contexts.
    remaining = iter(every)
    assert all(any(context == candidate for candidate in remaining) for context in subset)


def test_builtin_corpus_shares_vocabulary_with_the_forget_answers(tokenizer, forget_ids):
    contexts = collect_contexts(tokenizer, builtin_corpus(), forget_ids)
    assert len(contexts) >= 50  # content words only (4+ characters): 63 with this tokenizer
    # Many different words, not only a frequent function word or two.
    assert len({context.token_id for context in contexts}) >= 15


# --- summary ---------------------------------------------------------------------------------------

def test_summarise_changes_on_hand_computed_numbers():
    before = [0.4, 0.2, 0.1, 0.5, 0.8]
    after = [0.4, 0.05, 0.2, 0.2, 0.8]  # changes 0, -0.15, 0.1, -0.3, 0; two fell by more than half
    summary = summarise_changes(before, after)
    assert summary["count"] == 5
    assert summary["mean_change"] == pytest.approx(-0.07)
    # Linear interpolation over the sorted changes -0.3, -0.15, 0, 0, 0.1 at q * 4.
    assert summary["quantiles"] == pytest.approx({"q05": -0.27, "q25": -0.15, "q50": 0.0, "q75": 0.0, "q95": 0.08})
    assert summary["share_halved"] == pytest.approx(0.4)
    assert summary["mean_prob_before"] == pytest.approx(0.4)
    assert summary["mean_prob_after"] == pytest.approx(0.33)
    assert all(type(value) is float for value in [summary["mean_change"], *summary["quantiles"].values()])


def test_summarise_changes_rejects_bad_input():
    with pytest.raises(ValueError, match="p_after has 1"):
        summarise_changes([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="no contexts"):
        summarise_changes([], [])
