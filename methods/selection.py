"""PMC's selection: score candidates against the original answer, keep the least similar, never regress.

score(candidate) = ROUGE-L recall of the original (pre-unlearning greedy) answer in the candidate, plus,
when the candidate has fewer than `min_len` words, a length penalty exp(-words), clipped at 1. Short
candidates (an empty answer scores 0) would otherwise win trivially.

With `fluent_max_nll` set, only candidates whose NLL per token under the model that sampled them (free
with the samples) is at most that take part, so that the least revealing answer is picked among answers that
read as answers, not among the word salad that high-temperature sampling also offers and that wins most
often otherwise (it shares the fewest words with anything). When no candidate is that fluent, the most
fluent one is taken.

The paper's selection and fluency: fluent alternatives repeat the question's subject and function words and so
keep a score above 0, while word salad and the empty answer score 0; the argmin picks salad, and training on it
collapses the answers into salad. Two options (off by default, as the paper) address it:
- `score="content"`: the score is ROUGE-L recall of the original's content beyond the question (its tokens that
  are neither stop words nor the question's), so a fluent answer that changes the fact reaches 0 too;
- a judge (`pmc.judge`): the base model's NLL per token of each question's least similar candidates; among
  them the most fluent at the lowest score wins, and with a cap (`threshold`) the judged candidates less fluent
  than it take part only when none is under it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from pmc_unlearning.engine import Completion
from pmc_unlearning.evaluation.rouge import content_recall, rouge_l_recall


def fluent_candidates(candidates: Sequence[Completion], max_nll: float | None) -> list[int]:
    """Indices of the candidates with an NLL per token of at most `max_nll` (all when None; the most fluent one
    when none is)."""
    if max_nll is None:
        return list(range(len(candidates)))
    nlls = [candidate.nll_per_token for candidate in candidates]
    return [i for i, nll in enumerate(nlls) if nll <= max_nll] or [min(range(len(nlls)), key=nlls.__getitem__)]


def candidate_score(original: str, candidate: str, min_len: int, question: str | None = None) -> float:
    """ROUGE-L recall of `original` in `candidate` (of its content beyond `question`, where given), plus the
    length penalty."""
    score = rouge_l_recall(original, candidate) if question is None else content_recall(original, candidate, question)
    words = len(candidate.split())
    if words < min_len:
        score = min(1.0, score + math.exp(-words))
    return score


def least_similar(scores: dict[int, float], count: int) -> list[int]:
    """The `count` candidates with the lowest scores (of equal scores, the first sampled)."""
    return sorted(scores, key=lambda i: (scores[i], i))[:count]


def choose(scores: dict[int, float], judged: dict[int, float] | None = None, threshold: float | None = None) -> int:
    """The candidate to keep: the lowest score; with the judge's NLL per token of some candidates (`judged`), the
    most fluent of the judged at their lowest score; with a `threshold`, the judged above it take part only when
    none is under it."""
    if not judged:
        return min(scores, key=scores.__getitem__)
    eligible = [i for i in judged if threshold is None or judged[i] <= threshold] or list(judged)
    return min(eligible, key=lambda i: (scores[i], judged[i]))


@dataclass
class Selection:
    completion: Completion
    score: float


class SelectionCache:
    """The best (lowest-scoring) answer found so far for each forget question.

    A new pick replaces the cached one only if its score is <= the cached score, so the training target's
    score never rises; a question whose cached score is 0 is done and is not sampled again.
    """

    def __init__(self, originals: Sequence[str], min_len: int = 0, fluent_max_nll: float | None = None,
                 questions: Sequence[str] | None = None):
        self.originals = list(originals)
        self.min_len = min_len
        self.fluent_max_nll = fluent_max_nll
        self.questions = None if questions is None else list(questions)  # given: content scoring
        self.threshold: float | None = None  # the judge's cap (choose), once the judge has set it
        self.best: list[Selection | None] = [None] * len(originals)

    def pending(self) -> list[int]:
        """Questions that still need sampling: none selected yet, or a selection above zero."""
        return [i for i, sel in enumerate(self.best) if sel is None or sel.score > 0]

    def score(self, question: int, candidates: Sequence[Completion]) -> dict[int, float]:
        """The score of each (fluent) candidate for one question, by its index."""
        subject = None if self.questions is None else self.questions[question]
        return {i: candidate_score(self.originals[question], candidates[i].text, self.min_len, subject)
                for i in fluent_candidates(candidates, self.fluent_max_nll)}

    def offer(self, question: int, candidates: Sequence[Completion], scores: dict[int, float] | None = None,
              judged: dict[int, float] | None = None) -> Selection:
        """Choose among one question's candidates (`scores`: `score`'s, where the caller has them; `judged`: the
        judge's NLL per token of some of them) and keep the pick if it is no worse than the cached one."""
        scores = self.score(question, candidates) if scores is None else scores
        best = choose(scores, judged, self.threshold)
        pick = Selection(candidates[best], scores[best])
        current = self.best[question]
        if current is None or pick.score <= current.score:
            self.best[question] = pick
        return self.best[question]

    def to_records(self) -> list[dict | None]:
        """The cache as plain data, for a checkpoint."""
        return [None if sel is None else {"token_ids": list(sel.completion.token_ids), "text": sel.completion.text,
                                          "score": sel.score} for sel in self.best]

    def restore(self, records: Sequence[dict | None]) -> None:
        """Back to the state `to_records` saved (a resumed job)."""
        if len(records) != len(self.best):
            raise ValueError(f"a checkpoint of {len(records)} selections for {len(self.best)} forget questions")
        self.best = [None if r is None else Selection(Completion(tuple(r["token_ids"]), r["text"]), r["score"])
                     for r in records]

    def selections(self) -> list[Selection]:
        missing = [i for i, sel in enumerate(self.best) if sel is None]
        if missing:
            raise RuntimeError(f"no selection yet for forget questions {missing}")
        return list(self.best)
