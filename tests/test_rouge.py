import pytest
from rouge_score import rouge_scorer

from pmc_unlearning.evaluation.rouge import rouge_l_recall

PAIRS = [
    ("the cat sat on the mat", "the cat on mat"),
    ("Anna Berg was born in Tartu in 1961.", "Anna was born in 1961 somewhere"),
    ("He is running fast", "he runs"),
    ("Paris", "The capital of France is Paris."),
    ("completely different", "nothing in common"),
]


@pytest.mark.parametrize("reference,prediction", PAIRS)
def test_equals_rouge_score_recall_with_stemmer(reference, prediction):
    expected = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].recall
    assert rouge_l_recall(reference, prediction) == pytest.approx(expected)


def test_hand_computed_values():
    # LCS of "the cat sat on the mat" and "the cat on mat" is "the cat on mat": 4 of 6 reference tokens.
    assert rouge_l_recall("the cat sat on the mat", "the cat on mat") == pytest.approx(4 / 6)
    # Stemming maps "running"/"runs" to "run": "he run" of "he is run fast" -> 2 of 4.
    assert rouge_l_recall("He is running fast", "he runs") == pytest.approx(2 / 4)
    # Recall, not precision: a long prediction containing the whole reference scores 1.
    assert rouge_l_recall("Paris", "The capital of France is Paris.") == 1.0
    assert rouge_l_recall("completely different", "nothing in common") == 0.0


# --- any script ------------------------------------------------------------------------------------------
ASCII_TEXTS = [
    "The Salt Lantern (1987) won the Orrenby Prize for Fiction!",
    "She's writing every morning -- before dawn; running, ran, runs.",
    "H2O, CO2 and 3.14159 are not words: e-mail, state-of-the-art_design",
    "  multiple   spaces\tand\nnewlines  ",
    "", "!!!",
]


@pytest.mark.parametrize("text", ASCII_TEXTS)
def test_unicode_tokenizer_equals_the_default_on_ascii(text):
    from rouge_score.tokenizers import DefaultTokenizer

    from pmc_unlearning.evaluation.rouge import UnicodeTokenizer

    assert UnicodeTokenizer().tokenize(text) == DefaultTokenizer(use_stemmer=True).tokenize(text)


@pytest.mark.parametrize("reference,prediction", PAIRS)
def test_ascii_scores_are_unchanged(reference, prediction):
    default = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].recall
    assert rouge_l_recall(reference, prediction) == default


def test_accented_cyrillic_and_cjk_by_hand_computed_lcs():
    # Accents belong to the word: "zoë müller" shares nothing with "zo mller" (the default tokenizer said 0.33
    # here, having cut both names into ASCII pieces) and everything with itself.
    assert rouge_l_recall("Zoë Müller", "Zo Mller") == 0.0
    assert rouge_l_recall("Zoë Müller", "zoë MÜLLER") == 1.0
    # Decomposed accents (e + combining diaeresis) are the same word after NFKC normalisation.
    assert rouge_l_recall("Zoë", "Zoe\u0308") == 1.0
    # Cyrillic words: reference "анна родилась в москве" (4 tokens), prediction keeps "анна" and "в": LCS 2.
    assert rouge_l_recall("Анна родилась в Москве", "Анна жила в Париже") == pytest.approx(2 / 4)
    # Chinese: one token per character. 张三出生于北京 (7) vs 张三生于上海: LCS 张三生于 = 4.
    assert rouge_l_recall("张三出生于北京", "张三生于上海") == pytest.approx(4 / 7)
    assert rouge_l_recall("张三出生于北京", "张三出生于北京") == 1.0
    # Japanese kana and kanji likewise; mixed with Latin words: reference tokens 東 京 は tokyo (4), LCS 東 京 tokyo.
    assert rouge_l_recall("東京は Tokyo", "東京 in Tokyo") == pytest.approx(3 / 4)
