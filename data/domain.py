"""What a built-in benchmark's domain is made of: how a subject's name is drawn and its kinds of fact.

data/builtin.py draws a benchmark from any domain alike; data/authors.py and data/companies.py are the domains.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# A draw of the values that fill a template's placeholders (other than {name}).
Draw = Callable[[random.Random], dict[str, str]]


@dataclass(frozen=True)
class FactTemplate:
    """One kind of fact; `draw` picks the placeholder values that fill all four texts."""

    question: str
    paraphrased_question: str
    answer: str
    paraphrased_answer: str
    draw: Draw


@dataclass(frozen=True)
class Domain:
    """The subjects of one built-in benchmark: `draw_name` names one, `facts` are what may be asked about it
    (in this order; a subject with fewer facts than there are templates gets a random subset of them)."""

    name: str  # as data.domain names it
    draw_name: Callable[[random.Random], str]
    facts: tuple[FactTemplate, ...]


def pick(key: str, pool: tuple[str, ...]) -> Draw:
    """A draw of one placeholder, `key`, from `pool`."""
    return lambda rng: {key: rng.choice(pool)}
