"""ROUGE-L recall as the reference computes it (rouge_score, Porter stemmer, `reference` as target), with a
tokenizer that keeps every script.

rouge_score's default tokenizer keeps only [a-z0-9]: a Chinese answer scores 0 against itself and "Zoë
Müller" loses its "ë" and "ü", so every ROUGE metric (and PMC's selection) would call non-Latin text
forgotten. `UnicodeTokenizer` gives the same tokens as the default on ASCII text and keeps letters, marks
and digits of any script; Chinese and Japanese characters are one token each (those scripts put no spaces
between words).
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

from nltk.stem import porter
from rouge_score import rouge_scorer, tokenizers

# Han ideographs (with extension A, the compatibility block and the supplementary planes), hiragana, katakana.
_CHARACTER_TOKEN_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))


def _is_character_token(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CHARACTER_TOKEN_RANGES)


class UnicodeTokenizer(tokenizers.Tokenizer):
    """Lower-cased runs of letters, marks and digits; a Chinese or Japanese character is a token of its own.

    English tokens of more than 3 characters are Porter-stemmed, as rouge_score's default does; other scripts
    are left as they are (the Porter rules are English rules).
    """

    def __init__(self) -> None:
        self._stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        tokens, word = [], []
        for char in unicodedata.normalize("NFKC", text).lower():
            if _is_character_token(char):
                tokens += ["".join(word), char]
                word = []
            elif unicodedata.category(char)[0] in "LMN":
                word.append(char)
            else:
                tokens.append("".join(word))
                word = []
        tokens.append("".join(word))
        return [self._stem(token) for token in tokens if token]

    def _stem(self, token: str) -> str:
        return self._stemmer.stem(token) if len(token) > 3 and token.isascii() else token


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeTokenizer())


def rouge_l_recall(reference: str, prediction: str) -> float:
    """Share of the reference's (stemmed) tokens that the prediction recovers as a common subsequence."""
    return _scorer().score(reference, prediction)["rougeL"].recall


# Function words, which any fluent sentence shares with the original answer: content recall leaves them out.
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves also many much one well known
""".split())


class _ContentTokenizer(tokenizers.Tokenizer):
    """UnicodeTokenizer's tokens less the stop words and the tokens of `excluded` (a question's)."""

    def __init__(self, excluded: str) -> None:
        self._tokens = UnicodeTokenizer()
        self._excluded = set(self._tokens.tokenize(" ".join(STOP_WORDS))) | set(self._tokens.tokenize(excluded))

    def tokenize(self, text: str) -> list[str]:
        return [token for token in self._tokens.tokenize(text) if token not in self._excluded]


@lru_cache(maxsize=4096)
def _content_scoring(question: str) -> tuple[_ContentTokenizer, rouge_scorer.RougeScorer]:
    tokenizer = _ContentTokenizer(question)
    return tokenizer, rouge_scorer.RougeScorer(["rougeL"], tokenizer=tokenizer)


def content_recall(reference: str, prediction: str, question: str) -> float:
    """ROUGE-L recall of the reference's content beyond the question: its tokens that are neither stop words nor
    in the question. A fluent answer that names the question's subject but not the reference's fact scores 0.
    A reference with no such content (it only restates the question) is scored by plain ROUGE-L recall."""
    tokenizer, scorer = _content_scoring(question)
    if not tokenizer.tokenize(reference):
        return rouge_l_recall(reference, prediction)
    return scorer.score(reference, prediction)["rougeL"].recall
