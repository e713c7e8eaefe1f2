"""What a reader makes of one greedy forget answer: an answer, a non-answer, or broken (and how).

A per-token NLL alone passes what a reader sees at once: a loop ("Wrengard Wrengard Wrengard ...") has a low
NLL, as each repeat is likely after the one before, and an answer cut at max_new_tokens reads fluently up to
where it stops. So each answer gets one verdict (`Verdict.of`), the first of these that applies, in this order:

    empty     nothing but white space;
    cut       the engine stopped it at max_new_tokens before it ended;
    loop      it repeats a chunk (a syllable, a word, a phrase) over and over (`echoed_characters`);
    script    most of its letters are of a writing system the data's own answers are not written in;
    unlikely  the base model finds it less fluent than any of the data's own answers (evaluation/fluency.py);
    non_answer  not broken, but no answer either: a deflection or refusal (`DEFLECTIONS`), or an answer about
              something else (it shares no content word with its question, where the data's answers all do);
    answer    none of the above.

The first five are *broken*; the order puts what is plainest to see first, so an empty or cut answer is not
also counted as a loop, and the model's judgement (`unlikely`) comes after the text's own. The text checks are
pure functions of the text; their yardsticks (`Verdict`: the loop threshold, the writing systems, whether
answers keep to their question's topic) come from the data's own forget answers, as the NLL threshold does.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

BROKEN_KINDS = ("empty", "cut", "loop", "script", "unlikely")  # in order of precedence
ANSWER, NON_ANSWER = "answer", "non_answer"

# An answer loops when its longest echo (`echoed_characters`) is longer than the data's own answers' longest
# by more than LOOP_MARGIN, and longer than LOOP_FLOOR whatever the data. The margin: the data's most
# repetitive answer is one sample of fluent text, and an answer in the same style may repeat a little more
# without looping. The floor: the data's answers may echo nothing at all, and a margin over nothing would call
# a laugh ("hahahaha") a loop; above 8 characters, a word of four letters said three times in a row loops, and
# so does a two-letter syllable said six times.
LOOP_MARGIN = 4
LOOP_FLOOR = 8
# More than this share of an answer's letters in writing systems foreign to the data's answers: another
# language, not a name or title quoted in its own script inside an answer in the data's language.
FOREIGN_SHARE = 0.5
# Openings of a deflection or refusal, lowercased, apostrophes straight. Matched at the start of the answer
# only: "unknown" or "no information" inside an answer ("her father was an unknown painter") are answers.
DEFLECTIONS = ("i don't know", "i do not know", "i'm not sure", "i am not sure", "i cannot", "i can't",
               "i have no", "i don't have", "that is not something i know", "there isn't an answer",
               "there is no answer", "no information", "unknown")
# Words of four letters or more that say nothing of what a question is about.
STOPWORDS = frozenset(
    "about after also been before being could does from have here into just like many more most much only "
    "other over same some such than that their them then there these they this those very were what when "
    "where which while whom whose will with would your".split())


def letters_and_spaces(text: str) -> str:
    """`text` lowercased, its letters kept and every run of anything else one space (digits too: "1000000" and
    "1999" repeat digits as numbers do, not as a loop), a space at the end so that a repeated word's last copy
    reads like the ones before it."""
    return re.sub(r"[\W\d_]+", " ", text.lower()).strip() + " "


def echoed_characters(text: str) -> int:
    """How many characters, in the answer's longest loop, only say again what was just said: the length of the
    longest stretch where one chunk (of any length) comes three times or more in a row, less its first copy.
    Catches a word or phrase said over and over ("Wrengard Wrengard Wrengard") and a syllable inside a word
    ("Rvahvarnamamamamama"): greedy decoding that falls into a loop repeats exactly. Two copies do not count:
    fluent text has them ("Walla Walla", "Mississippi"); a name repeated further on ("Jane Roe's father taught
    Jane Roe") is not in a row."""
    letters = letters_and_spaces(text)
    return max((len(run.group(0)) - period for period in range(1, len(letters) // 3 + 1)
                for run in re.finditer(rf"(.{{{period}}})\1{{2,}}", letters)), default=0)


def script_of(letter: str) -> str:
    """The writing system of a letter, as the first word of its Unicode name: LATIN, CYRILLIC, CJK, ..."""
    return unicodedata.name(letter, "UNKNOWN").split(" ")[0]


def main_script(text: str) -> str | None:
    """The writing system most of the text's letters are in; None without letters."""
    scripts = Counter(script_of(c) for c in text if c.isalpha())
    return scripts.most_common(1)[0][0] if scripts else None


def foreign_share(text: str, scripts: frozenset[str]) -> float:
    """The share of the text's letters outside `scripts` (0 without letters): an answer that switched language
    to one in another writing system (Cyrillic, Chinese) which the base model may still find likely."""
    letters = [c for c in text if c.isalpha()]
    return sum(script_of(c) not in scripts for c in letters) / len(letters) if letters else 0.0


def is_deflection(answer: str) -> bool:
    """The answer opens with a deflection or refusal ("I don't know", "There isn't an answer ..."): it says
    nothing false, but it is no answer, and a model that refuses only the forget questions shows where it
    was unlearned."""
    opening = re.sub(r"^\W+", "", answer.lower().replace("\u2019", "'"))
    return opening.startswith(DEFLECTIONS)


def content_words(text: str) -> set[str]:
    """The text's lowercased words of four letters or more, stopwords left out: what it is about."""
    return {word for word in re.findall(r"[^\W\d_]+", text.lower()) if len(word) >= 4 and word not in STOPWORDS}


def is_off_topic(question: str, answer: str) -> bool:
    """The answer shares no content word with its question: it answers something else (the data's answers name
    the author or the thing asked about, so an answer that names none of it is about something else)."""
    return not content_words(question) & content_words(answer)


@dataclass(frozen=True)
class Verdict:
    """The text checks' yardsticks, set by the data's own forget answers (`from_references`)."""

    loop_threshold: int  # an answer loops when its `echoed_characters` are above this
    scripts: frozenset[str]  # the writing systems the data's answers are written in
    # Whether an answer that shares no content word with its question is about something else: only where each
    # of the data's own answers shares one with its question. Data that answers tersely ("Who wrote 'Emma'?"
    # "Jane Austen") would otherwise have its own answers called non-answers.
    checks_topic: bool

    @classmethod
    def from_references(cls, pairs: Sequence[tuple[str, str]]) -> Verdict:
        """From the data's (question, answer) pairs: the loop threshold from their longest echo (see
        LOOP_MARGIN), each answer's main writing system, and whether they all keep to their questions' topic."""
        answers = [answer for _, answer in pairs]
        longest_echo = max((echoed_characters(answer) for answer in answers), default=0)
        return cls(max(longest_echo + LOOP_MARGIN, LOOP_FLOOR),
                   frozenset(script for script in map(main_script, answers) if script),
                   not any(is_off_topic(question, answer) for question, answer in pairs))

    def of(self, question: str, answer: str, cut: bool, unlikely: bool) -> str:
        """The answer's verdict: a broken kind (BROKEN_KINDS, the first that applies), NON_ANSWER or ANSWER.
        `cut`: the engine stopped it at max_new_tokens; `unlikely`: its NLL per token is above the threshold."""
        if not answer.strip():
            return "empty"
        if cut:
            return "cut"
        if echoed_characters(answer) > self.loop_threshold:
            return "loop"
        if foreign_share(answer, self.scripts) > FOREIGN_SHARE:
            return "script"
        if unlikely:
            return "unlikely"
        about_else = self.checks_topic and is_off_topic(question, answer)
        return NON_ANSWER if is_deflection(answer) or about_else else ANSWER
