import math

import pytest

from pmc_unlearning.engine import Completion
from pmc_unlearning.methods.selection import SelectionCache, candidate_score, choose, fluent_candidates, least_similar

ORIGINAL = "Anna Berg was born in Tartu in 1961."


def completion(text: str) -> Completion:
    return Completion(token_ids=(1, 2, 3), text=text)


def test_selection_takes_the_least_similar_candidate():
    cache = SelectionCache([ORIGINAL])
    picked = cache.offer(0, [completion(ORIGINAL), completion("She was born somewhere else."), completion("Anna Berg was born.")])
    assert picked.completion.text == "She was born somewhere else."
    # "was born" recovers 2 of the original's 8 tokens
    assert picked.score == pytest.approx(2 / 8)


def test_cached_score_never_rises():
    cache = SelectionCache([ORIGINAL])
    cache.offer(0, [completion("Anna Berg was born in 1970.")])
    first = cache.best[0].score
    worse = cache.offer(0, [completion(ORIGINAL)])
    assert worse.score == first and cache.best[0].completion.text == "Anna Berg was born in 1970."
    better = cache.offer(0, [completion("No idea.")])
    assert better.score == 0 and cache.best[0].completion.text == "No idea."


def test_equal_score_replaces_the_cached_pick():
    cache = SelectionCache([ORIGINAL])
    cache.offer(0, [completion("Unknown.")])
    cache.offer(0, [completion("Nobody knows.")])
    assert cache.best[0].completion.text == "Nobody knows."


def test_questions_at_zero_are_not_resampled():
    cache = SelectionCache([ORIGINAL, "Paris is the capital."])
    assert cache.pending() == [0, 1]
    cache.offer(0, [completion("I cannot say.")])
    cache.offer(1, [completion("Paris, of course.")])
    assert cache.pending() == [1]


def test_selections_require_every_question_sampled():
    cache = SelectionCache([ORIGINAL, "x"])
    cache.offer(0, [completion("no")])
    with pytest.raises(RuntimeError, match=r"no selection yet for forget questions \[1\]"):
        cache.selections()


def test_length_penalty_adds_exp_minus_words_below_min_len_and_clips_at_one():
    assert candidate_score(ORIGINAL, "Nobody knows", min_len=0) == 0
    assert candidate_score(ORIGINAL, "Nobody knows", min_len=5) == pytest.approx(math.exp(-2))
    assert candidate_score(ORIGINAL, "", min_len=1) == 1.0  # exp(0) = 1: an empty answer never wins
    assert candidate_score(ORIGINAL, ORIGINAL + " yes", min_len=20) == 1.0  # 1 + exp(-9) clipped
    assert candidate_score(ORIGINAL, "one two three four five", min_len=5) == 0  # not below min_len


def test_penalised_short_candidate_loses_to_a_longer_unrelated_one():
    cache = SelectionCache([ORIGINAL], min_len=4)
    picked = cache.offer(0, [completion("No."), completion("The weather is nice today.")])
    assert picked.completion.text == "The weather is nice today."


# ---- fluent selection ---------------------------------------------------------------------------------



def scored(text: str, nll_per_token: float, tokens: int = 4) -> Completion:
    return Completion(token_ids=tuple(range(tokens)), text=text, logprob=-nll_per_token * tokens)


def test_fluent_candidates_are_those_at_or_below_the_nll_cap():
    candidates = [scored("a", 5.0), scored("b", 1.0), scored("c", 3.0), scored("d", 2.0, tokens=10),
                  Completion((), "", 0.0)]  # empty: the least fluent, whatever its sum
    assert fluent_candidates(candidates, None) == [0, 1, 2, 3, 4]
    assert fluent_candidates(candidates, 3.0) == [1, 2, 3]
    assert fluent_candidates(candidates, 0.5) == [1]  # none that fluent: the most fluent one
    assert candidates[4].nll_per_token == math.inf


def test_a_fluency_cap_picks_the_least_revealing_among_fluent_candidates():
    salad = scored("Pal Assam Sebra peels equally.", 9.0)  # shares nothing with the original: wins uncapped
    fluent = scored("Anna Berg was a chemist in Riga.", 2.0)  # "Anna Berg was ... in": 4 of 8
    leak = scored(ORIGINAL, 1.0)
    assert SelectionCache([ORIGINAL]).offer(0, [salad, fluent, leak]).completion is salad
    picked = SelectionCache([ORIGINAL], fluent_max_nll=3.0).offer(0, [salad, fluent, leak])
    assert picked.completion is fluent and picked.score == pytest.approx(4 / 8)


def test_a_fluency_cap_needs_the_samples_logprobs():
    with pytest.raises(ValueError, match="sampled without its log-probability"):
        SelectionCache([ORIGINAL], fluent_max_nll=3.0).offer(0, [completion("a"), completion("b")])


QUESTION = "Where was Anna Berg born?"


def lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_content_recall_is_the_lcs_share_of_the_original_words_outside_the_question_and_stop_words():
    from pmc_unlearning.evaluation.rouge import content_recall

    # By hand: the original's content beyond the question is [tartu, 1961] ("was", "in" are stop words; "anna",
    # "berg", "born" are the question's).
    content = ["tartu", "1961"]
    for candidate, words in [("Anna Berg was born in Riga in 1975.", ["riga", "1975"]),
                             ("Anna Berg was born in Tartu.", ["tartu"]),
                             ("In 1961, in Tartu.", ["1961", "tartu"]),
                             ("Tartu, 1961.", ["tartu", "1961"])]:
        assert content_recall(ORIGINAL, candidate, QUESTION) == pytest.approx(lcs(content, words) / len(content))
    # A fluent answer that keeps the subject but changes the fact reaches 0; plain recall keeps it above.
    fluent = "Anna Berg was born in Riga in 1975."
    assert content_recall(ORIGINAL, fluent, QUESTION) == 0 and candidate_score(ORIGINAL, fluent, 0) > 0.5
    assert candidate_score(ORIGINAL, fluent, 0, QUESTION) == 0
    # An original that only restates the question falls back to plain recall rather than scoring all at 0.
    assert content_recall("Anna Berg was born.", "Anna Berg", QUESTION) == pytest.approx(2 / 4)


def test_content_scoring_lets_a_fluent_changed_fact_win_over_one_that_keeps_it():
    cache = SelectionCache([ORIGINAL], questions=[QUESTION])
    picked = cache.offer(0, [completion("Anna Berg was born in Tartu in 1961."),
                             completion("Anna Berg was born in Riga in 1975.")])
    assert picked.completion.text == "Anna Berg was born in Riga in 1975." and picked.score == 0


def test_least_similar_takes_the_lowest_scores_first_sampled_first():
    assert least_similar({0: 0.5, 1: 0.0, 2: 0.2, 3: 0.0}, 3) == [1, 3, 2]
    assert least_similar({0: 0.5}, 4) == [0]


def test_the_judge_picks_the_most_fluent_among_the_lowest_scores_and_the_cap_prefers_fluent_answers():
    scores = {0: 0.0, 1: 0.0, 2: 0.3, 3: 0.9}
    assert choose(scores) == 0  # the paper: the first argmin
    judged = {0: 6.0, 1: 2.0, 2: 1.0}  # 0: word salad, 1 and 2: fluent under the base model
    assert choose(scores, judged) == 1  # the most fluent of the judged at score 0
    assert choose(scores, judged, threshold=1.5) == 2  # only 2 is under the cap, though its score is higher
    assert choose(scores, {0: 6.0, 1: 5.0}, threshold=1.5) == 1  # none under the cap: all judged take part


def test_a_capped_pick_above_the_cached_score_does_not_replace_it():
    cache = SelectionCache([ORIGINAL])
    cache.offer(0, [completion("Nobody knows.")])
    cache.threshold = 1.0
    kept = cache.offer(0, [completion("Nothing."), completion("Anna Berg was born in Tartu.")], judged={0: 9.0, 1: 0.5})
    assert kept.completion.text == "Nobody knows." and kept.score == 0
