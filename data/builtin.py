"""An offline TOFU-style benchmark: fictitious subjects of one domain with short, templated facts.

Two domains (data/domain.py): the authors (data/authors.py), the default, on which every default is chosen; and
the companies (data/companies.py), which only validate those defaults. Everything is drawn from a private
`random.Random(seed)`, so the same seed and domain always give the same benchmark, whatever else in the process
touches the global random state. Answers are short full sentences that name the subject, because small models
must be able to memorise them during fine-tuning.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pmc_unlearning.data.authors import AUTHORS
from pmc_unlearning.data.companies import COMPANIES
from pmc_unlearning.data.domain import Domain, FactTemplate
from pmc_unlearning.data.reference_facts import real_authors, world_facts
from pmc_unlearning.data.schema import HOLDOUT_SPLIT_FOR, QA, RETAIN_SPLIT_FOR, DataError, SplitRows

PERTURBED_PER_ROW = 3
# Share of subjects in each forget split, as in TOFU.
FORGET_FRACTION: dict[str, float] = {"forget01": 0.01, "forget05": 0.05, "forget10": 0.10}
# By the name data.domain gives them (configs/schema.py's DataConfig lists the same names).
DOMAINS: dict[str, Domain] = {domain.name: domain for domain in (AUTHORS, COMPANIES)}
# facts_per_author's bound (configs/schema.py's too): a subject of any domain can have this many facts.
MAX_FACTS_PER_AUTHOR = min(len(domain.facts) for domain in DOMAINS.values())


def _draw_wrong_values(
    rng: random.Random, template: FactTemplate, true_value: dict[str, str]
) -> list[dict[str, str]]:
    """Distinct values that all differ from the true one, so no perturbed answer is correct."""
    wrong: list[dict[str, str]] = []
    while len(wrong) < PERTURBED_PER_ROW:
        candidate = template.draw(rng)
        if candidate != true_value and candidate not in wrong:
            wrong.append(candidate)
    return wrong


def _make_fact(rng: random.Random, template: FactTemplate, name: str) -> QA:
    value = template.draw(rng)
    wrong_values = _draw_wrong_values(rng, template, value)
    return QA(
        question=template.question.format(name=name),
        answer=template.answer.format(name=name, **value),
        paraphrased_question=template.paraphrased_question.format(name=name),
        paraphrased_answer=template.paraphrased_answer.format(name=name, **value),
        perturbed_answer=tuple(template.answer.format(name=name, **wrong) for wrong in wrong_values),
    )


def _make_subject(rng: random.Random, domain: Domain, name: str, facts_per_author: int) -> list[QA]:
    chosen = sorted(rng.sample(range(len(domain.facts)), facts_per_author))
    return [_make_fact(rng, domain.facts[index], name) for index in chosen]


def _unique_names(rng: random.Random, domain: Domain, count: int, taken: Sequence[str] = ()) -> list[str]:
    """`count` names, none of them `taken` nor drawn twice."""
    # Two subjects sharing a name would make their questions identical but their answers not.
    names: dict[str, None] = dict.fromkeys(taken)  # a dict keeps draw order, unlike a set
    while len(names) < len(taken) + count:
        names.setdefault(domain.draw_name(rng))
    return list(names)[len(taken):]


def _domain_named(name: str) -> Domain:
    if name not in DOMAINS:
        raise DataError(f"unknown built-in domain {name!r}: valid ones are {', '.join(DOMAINS)}")
    return DOMAINS[name]


def _check_sizes(num_authors: int, facts_per_author: int) -> None:
    if num_authors < 2:
        raise DataError(f"num_authors must be at least 2 (one to forget, one to retain), got {num_authors}")
    if not 1 <= facts_per_author <= MAX_FACTS_PER_AUTHOR:
        raise DataError(f"facts_per_author must be between 1 and {MAX_FACTS_PER_AUTHOR}, got {facts_per_author}")


def forget_author_count(forget_split: str, num_authors: int) -> int:
    """How many of the `num_authors` subjects (authors or companies) `forget_split` forgets."""
    return max(1, round(FORGET_FRACTION[forget_split] * num_authors))


def generate_builtin(seed: int, num_authors: int, facts_per_author: int,
                     domain: str = "authors") -> dict[str, list[QA]]:
    """All splits by their TOFU names: full, forgetXX, retainXX, holdoutXX, world_facts, real_authors.
    `num_authors` and `facts_per_author` count the subjects of `domain` and their facts (companies too)."""
    domain_spec = _domain_named(domain)
    _check_sizes(num_authors, facts_per_author)
    rng = random.Random(seed)
    names = _unique_names(rng, domain_spec, num_authors)
    subjects = [_make_subject(rng, domain_spec, name, facts_per_author) for name in names]
    splits: dict[str, list[QA]] = {"full": [row for rows in subjects for row in rows]}
    for forget_split, retain_split in RETAIN_SPLIT_FOR.items():
        # As in TOFU, the forget split is the last subjects, with all their rows.
        boundary = num_authors - forget_author_count(forget_split, num_authors)
        splits[forget_split] = [row for rows in subjects[boundary:] for row in rows]
        splits[retain_split] = [row for rows in subjects[:boundary] for row in rows]
    # Drawn after everything else, so that adding them left the other splits as they were: as many subjects
    # outside `full` as each forget split has (holdout01 the first of holdout10's, ...).
    largest = max(forget_author_count(split, num_authors) for split in HOLDOUT_SPLIT_FOR)
    outsiders = [_make_subject(rng, domain_spec, name, facts_per_author)
                 for name in _unique_names(rng, domain_spec, largest, names)]
    for forget_split, holdout_split in HOLDOUT_SPLIT_FOR.items():
        splits[holdout_split] = [row for rows in outsiders[:forget_author_count(forget_split, num_authors)]
                                 for row in rows]
    # The same utility probes for every domain: what the model knows of the real world must stay.
    splits["world_facts"] = world_facts()
    splits["real_authors"] = real_authors()
    return splits


def builtin_splits(forget_split: str, retain_split: str, *, seed: int, num_authors: int,
                   facts_per_author: int, domain: str = "authors") -> dict[str, SplitRows]:
    """The generated splits by Benchmark field; the evaluation scores the retain split itself, whose
    rows all carry perturbed answers (it has no separate retain_perturbed)."""
    generated = generate_builtin(seed, num_authors, facts_per_author, domain)
    tofu_split_for = {"full": "full", "forget": forget_split, "retain": retain_split, "eval_retain": retain_split,
                      "world_facts": "world_facts", "real_authors": "real_authors",
                      "holdout": HOLDOUT_SPLIT_FOR[forget_split]}
    return {
        field: SplitRows.numbered(f"builtin {domain} benchmark ({split})", generated[split])
        for field, split in tofu_split_for.items()
    }
