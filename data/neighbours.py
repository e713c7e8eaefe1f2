"""Neighbour questions: the forget questions asked about other people, whose answers a model must keep.

Unlearning the answers to "What genre does Ana Lopez write in?" tends to unlearn the answers to every question
of that shape. A forget request rarely brings the questions that show the line (the same questions about
others), so they are made here: in each forget question its subject (the run of capitalised words that most of
the forget questions share) is replaced by each of a few invented names, and the target's own greedy answers
to those questions become part of the retain set. Questions without a capitalised name make no neighbours.

The names are fixed and offline; none is drawn from the built-in benchmarks' name pools (data/authors.py,
data/companies.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

NEIGHBOUR_NAMES: tuple[str, ...] = (
    "Helen Carter", "Samuel Okoro", "Lucia Romano", "Erik Lindgren", "Mei Chen", "Arjun Mehta",
    "Fatima Haddad", "Jonas Becker", "Ana Souza", "Daniel Kowalski", "Grace Mwangi", "Hiroshi Sato",
)
NAMES_PER_SUBJECT = 3

# A run of capitalised words (a possessive "'s" ends it: "Ana Lopez's mother" names Ana Lopez).
_CAPITALISED_RUN = re.compile(r"[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*")
# Words capitalised because a question starts with them, not because they name someone.
_OPENING_WORDS = frozenset(
    "What When Where Which Who Whom Whose Why How Is Are Was Were Did Does Do Can Could Would Will Should Has "
    "Have Had In On At For From To Of By With Tell Name List Describe Give Explain Please If According The A "
    "An".split())


def candidate_subjects(question: str) -> list[str]:
    """The runs of capitalised words in a question, the opening word of the question left out of its run."""
    subjects = []
    for match in _CAPITALISED_RUN.finditer(question):
        words = match.group().split()
        if match.start() == 0 and words[0] in _OPENING_WORDS:
            words = words[1:]
        if words:
            subjects.append(" ".join(words))
    return subjects


def neighbour_questions(questions: Sequence[str]) -> tuple[str, ...]:
    """Each question's subject swapped for NAMES_PER_SUBJECT invented names (the same ones for every question of
    one subject, so that each name gets a whole profile), in the questions' order, without repeats and without
    any of `questions` itself. The subject is, of a question's capitalised runs, the one most of the questions
    share (the longer where as many share them)."""
    runs = [candidate_subjects(question) for question in questions]
    shared = Counter(subject for subjects in runs for subject in set(subjects))
    names = [name for name in NEIGHBOUR_NAMES if not any(name in question for question in questions)]
    subjects_seen: dict[str, int] = {}
    made: dict[str, None] = {}
    for question, subjects in zip(questions, runs):
        if not subjects or not names:
            continue
        subject = max(subjects, key=lambda run: (shared[run], len(run)))
        index = subjects_seen.setdefault(subject, len(subjects_seen))
        for k in range(NAMES_PER_SUBJECT):
            name = names[(index * NAMES_PER_SUBJECT + k) % len(names)]
            made[question.replace(subject, name)] = None
    asked = set(questions)
    return tuple(question for question in made if question not in asked)
