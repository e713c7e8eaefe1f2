import pytest
from rouge_score import rouge_scorer

from evaluation.rouge import rouge_l_recall

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
