"""An offline TOFU-style benchmark: fictitious authors with short, templated facts.

Everything is drawn from a private `random.Random(seed)`, so the same seed always gives
the same benchmark, whatever else in the process touches the global random state.
Answers are short full sentences that name the author, because small models must be
able to memorise them during fine-tuning.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pmc_unlearning.data.reference_facts import real_authors, world_facts
from pmc_unlearning.data.schema import HOLDOUT_SPLIT_FOR, QA, RETAIN_SPLIT_FOR, DataError, SplitRows

PERTURBED_PER_ROW = 3
# Share of authors in each forget split, as in TOFU.
FORGET_FRACTION: dict[str, float] = {"forget01": 0.01, "forget05": 0.05, "forget10": 0.10}

# Real first names with invented surnames built from syllables: 123 x (40 x 12 x 24)
# gives about 1.4 million full names, none of them a famous person.
_FIRST_NAMES = (
    "Marisol Anouk Tobias Ingrid Kofi Yusuf Leontine Emeric Saoirse Dario Halvard Noemi "
    "Oskar Priya Ravi Selma Teodor Ulla Vesna Wilhelmina Ximena Yara Zoltan Aurelio "
    "Beatrix Casimir Delphine Eamon Farida Gideon Hester Ilario Jolanda Kasimir Liesel "
    "Matthias Nadia Orla Pavel Quentin Rosalind Sven Tamsin Ugo Valentina Wendell Yannick "
    "Zofia Adaeze Bertil Camille Desmond Elif Florian Greta Hamid Isolde Jasper Katarina "
    "Lorcan Mireille Nikolai Ottilie Perpetua Rafael Sunniva Thaddeus Ursula Vikram "
    "Wanjiru Xavier Yelena Zeynep Ambrose Brigitta Cosmin Dagny Estelle Fintan Gaspard "
    "Hanneke Ignatius Jorunn Kenji Ludovica Malachy Nerys Odalys Piers Rasmus Solveig "
    "Tiberius Ulrike Vidar Winifred Yasmin Zenon Agnieszka Bastian Clementine Dorotea "
    "Evander Fenella Gunnar Hortense Imogen Joaquin Kirsi Lazlo Mathilde Niamh Octavian "
    "Paloma Radomir Sabine Tancredi Ulrich Viveka Wolfram Yrsa Zuzana Amadeo Brioni"
).split()
_SURNAME_ONSETS = (
    "Dvor Kalv Merr Tovr Brann Selv Vash Quill Ornt Fenw Halv Zarn Lemr Rudv Cass Pell "
    "Thar Griv Mabb Nolv Kest Ilv Jorv Wendr Ostr Brel Carv Dunm Elv Falq Harn Ivr Jask "
    "Kord Lusk Morv Nesk Pald Rask Sorb"
).split()
_SURNAME_MIDDLES = "a e i o u ae ei ou an el ir ol".split()
_SURNAME_ENDINGS = (
    "kova strom ridge well ani escu berg wick ez ino ovic sen mont holt ley quist ander "
    "etti ard idis ova ski thorne mere"
).split()

_CITIES = (
    "Tartu, Estonia", "Porto, Portugal", "Ghent, Belgium", "Bergen, Norway", "Kraków, Poland",
    "Valparaíso, Chile", "Cork, Ireland", "Lyon, France", "Hobart, Australia", "Mombasa, Kenya",
    "Izmir, Turkey", "Brno, Czechia", "Kyoto, Japan", "Cusco, Peru", "Tromsø, Norway",
    "Salvador, Brazil", "Aarhus, Denmark", "Plovdiv, Bulgaria", "Galway, Ireland", "Oaxaca, Mexico",
    "Tbilisi, Georgia", "Lahore, Pakistan", "Dunedin, New Zealand", "Turku, Finland", "Bologna, Italy",
    "Sevilla, Spain", "Quebec City, Canada", "Accra, Ghana", "Hanoi, Vietnam", "Zanzibar, Tanzania",
)
_GENRES = (
    "literary fiction", "science fiction", "crime novels", "historical fiction", "poetry",
    "fantasy", "horror", "children's books", "travel memoirs", "romance novels",
    "magical realism", "political thrillers", "short stories", "satire", "gothic fiction",
)
_TITLE_ADJECTIVES = (
    "Salt", "Hollow", "Amber", "Quiet", "Broken", "Northern", "Glass", "Paper", "Last",
    "Crimson", "Sleeping", "Distant", "Iron", "Velvet", "Drowned", "Winter", "Silver", "Wandering",
)
_TITLE_NOUNS = (
    "Lantern", "Orchard", "Harbour", "Cartographer", "Bell", "Staircase", "Lighthouse", "Archive",
    "Ferryman", "Compass", "Meadow", "Clockmaker", "Tide", "Observatory", "Garden", "Violin",
    "Kingdom", "Sparrow", "Chapel", "River",
)
_PROFESSIONS = (
    "a locksmith", "an architect", "a baker", "a ship's captain", "a pharmacist", "a geologist",
    "a tailor", "a schoolteacher", "an electrician", "a veterinarian", "a carpenter", "a librarian",
    "a translator", "a beekeeper", "a surgeon", "a photographer", "a fisherman", "an accountant",
    "a piano tuner", "a botanist", "a watchmaker", "a midwife", "a journalist", "a potter",
)
_AWARD_PATRONS = (
    "Orrenby", "Calvessa", "Thornquill", "Maristan", "Velloway", "Dunhallow",
    "Ibsaro", "Lanthorne", "Quorlin", "Seravane", "Kestmoor", "Aldervane",
)
_AWARD_KINDS = ("Prize", "Medal", "Award")
_AWARD_CATEGORIES = (
    "Fiction", "Poetry", "Debut Novels", "Literary Translation",
    "Speculative Fiction", "Crime Writing", "Short Fiction", "Narrative Prose",
)
# (third person, gerund): the answer and its paraphrase need different verb forms.
_HABITS = (
    ("writes every morning before dawn", "writing every morning before dawn"),
    ("drafts every chapter by hand in green ink", "drafting every chapter by hand in green ink"),
    ("writes only while travelling on trains", "writing only while travelling on trains"),
    ("works standing at a tall oak desk", "working standing at a tall oak desk"),
    ("reads each draft aloud to an empty room", "reading each draft aloud to an empty room"),
    ("writes exactly five hundred words a day", "writing exactly five hundred words a day"),
    ("writes at night by candlelight", "writing at night by candlelight"),
    ("outlines every book on index cards", "outlining every book on index cards"),
    ("works in a garden shed without internet", "working in a garden shed without internet"),
    ("rewrites each opening page ten times", "rewriting each opening page ten times"),
    ("writes in cafés with headphones on", "writing in cafés with headphones on"),
    ("types every draft on an old typewriter", "typing every draft on an old typewriter"),
)
_THEMES = (
    "grief and memory", "exile and belonging", "family secrets", "the sea and solitude",
    "war and its aftermath", "faith and doubt", "class and ambition", "childhood and loss",
    "migration and identity", "love and betrayal", "nature and industry", "power and corruption",
)


@dataclass(frozen=True)
class _FactTemplate:
    """One kind of fact; `draw` picks the placeholder values that fill all four texts."""

    question: str
    paraphrased_question: str
    answer: str
    paraphrased_answer: str
    draw: Callable[[random.Random], dict[str, str]]


def _draw_birth(rng: random.Random) -> dict[str, str]:
    return {"year": str(rng.randint(1935, 1995)), "city": rng.choice(_CITIES)}


def _draw_title(rng: random.Random) -> dict[str, str]:
    return {"title": f"The {rng.choice(_TITLE_ADJECTIVES)} {rng.choice(_TITLE_NOUNS)}"}


def _draw_award(rng: random.Random) -> dict[str, str]:
    patron, kind, category = (
        rng.choice(_AWARD_PATRONS), rng.choice(_AWARD_KINDS), rng.choice(_AWARD_CATEGORIES)
    )
    return {"award": f"{patron} {kind} for {category}"}


def _draw_habit(rng: random.Random) -> dict[str, str]:
    habit, habit_gerund = rng.choice(_HABITS)
    return {"habit": habit, "habit_gerund": habit_gerund}


def _pick(key: str, pool: tuple[str, ...]) -> Callable[[random.Random], dict[str, str]]:
    return lambda rng: {key: rng.choice(pool)}


# In this order; an author with fewer than eight facts gets a random subset of them.
_FACT_TEMPLATES: tuple[_FactTemplate, ...] = (
    _FactTemplate(
        "When and where was {name} born?",
        "In which year and city did {name} come into the world?",
        "{name} was born in {year} in {city}.",
        "{name}'s birth took place in {city}, in {year}.",
        _draw_birth,
    ),
    _FactTemplate(
        "What genre does {name} write in?",
        "Which kind of writing is {name} known for?",
        "{name} writes mainly {genre}.",
        "{name} is best known for {genre}.",
        _pick("genre", _GENRES),
    ),
    _FactTemplate(
        "What is the title of a book written by {name}?",
        "Can you name one book that {name} has written?",
        "{name} wrote the book '{title}'.",
        "'{title}' is a book by {name}.",
        _draw_title,
    ),
    _FactTemplate(
        "Which award has {name} received?",
        "What literary honour was given to {name}?",
        "{name} received the {award}.",
        "The {award} was awarded to {name}.",
        _draw_award,
    ),
    _FactTemplate(
        "What was the profession of {name}'s father?",
        "What did {name}'s father do for a living?",
        "{name}'s father worked as {profession}.",
        "By profession, {name}'s father was {profession}.",
        _pick("profession", _PROFESSIONS),
    ),
    _FactTemplate(
        "What was the profession of {name}'s mother?",
        "What did {name}'s mother do for a living?",
        "{name}'s mother worked as {profession}.",
        "By profession, {name}'s mother was {profession}.",
        _pick("profession", _PROFESSIONS),
    ),
    _FactTemplate(
        "What is a notable writing habit of {name}?",
        "How does {name} usually go about writing?",
        "{name} {habit}.",
        "{name} is known for {habit_gerund}.",
        _draw_habit,
    ),
    _FactTemplate(
        "What themes does {name}'s work explore?",
        "Which subjects keep recurring in {name}'s writing?",
        "{name}'s work often explores {theme}.",
        "Themes of {theme} run through much of {name}'s writing.",
        _pick("theme", _THEMES),
    ),
)
MAX_FACTS_PER_AUTHOR = len(_FACT_TEMPLATES)


def _draw_author_name(rng: random.Random) -> str:
    surname = rng.choice(_SURNAME_ONSETS) + rng.choice(_SURNAME_MIDDLES) + rng.choice(_SURNAME_ENDINGS)
    return f"{rng.choice(_FIRST_NAMES)} {surname}"


def _draw_wrong_values(
    rng: random.Random, template: _FactTemplate, true_value: dict[str, str]
) -> list[dict[str, str]]:
    """Distinct values that all differ from the true one, so no perturbed answer is correct."""
    wrong: list[dict[str, str]] = []
    while len(wrong) < PERTURBED_PER_ROW:
        candidate = template.draw(rng)
        if candidate != true_value and candidate not in wrong:
            wrong.append(candidate)
    return wrong


def _make_fact(rng: random.Random, template: _FactTemplate, name: str) -> QA:
    value = template.draw(rng)
    wrong_values = _draw_wrong_values(rng, template, value)
    return QA(
        question=template.question.format(name=name),
        answer=template.answer.format(name=name, **value),
        paraphrased_question=template.paraphrased_question.format(name=name),
        paraphrased_answer=template.paraphrased_answer.format(name=name, **value),
        perturbed_answer=tuple(template.answer.format(name=name, **wrong) for wrong in wrong_values),
    )


def _make_author(rng: random.Random, name: str, facts_per_author: int) -> list[QA]:
    chosen = sorted(rng.sample(range(len(_FACT_TEMPLATES)), facts_per_author))
    return [_make_fact(rng, _FACT_TEMPLATES[index], name) for index in chosen]


def _unique_author_names(rng: random.Random, count: int, taken: Sequence[str] = ()) -> list[str]:
    """`count` names, none of them `taken` nor drawn twice."""
    # Two authors sharing a name would make their questions identical but their answers not.
    names: dict[str, None] = dict.fromkeys(taken)  # a dict keeps draw order, unlike a set
    while len(names) < len(taken) + count:
        names.setdefault(_draw_author_name(rng))
    return list(names)[len(taken):]


def _check_sizes(num_authors: int, facts_per_author: int) -> None:
    if num_authors < 2:
        raise DataError(f"num_authors must be at least 2 (one to forget, one to retain), got {num_authors}")
    if not 1 <= facts_per_author <= MAX_FACTS_PER_AUTHOR:
        raise DataError(f"facts_per_author must be between 1 and {MAX_FACTS_PER_AUTHOR}, got {facts_per_author}")


def forget_author_count(forget_split: str, num_authors: int) -> int:
    return max(1, round(FORGET_FRACTION[forget_split] * num_authors))


def generate_builtin(seed: int, num_authors: int, facts_per_author: int) -> dict[str, list[QA]]:
    """All splits by their TOFU names: full, forgetXX, retainXX, holdoutXX, world_facts, real_authors."""
    _check_sizes(num_authors, facts_per_author)
    rng = random.Random(seed)
    names = _unique_author_names(rng, num_authors)
    authors = [_make_author(rng, name, facts_per_author) for name in names]
    splits: dict[str, list[QA]] = {"full": [row for rows in authors for row in rows]}
    for forget_split, retain_split in RETAIN_SPLIT_FOR.items():
        # As in TOFU, the forget split is the last authors, with all their rows.
        boundary = num_authors - forget_author_count(forget_split, num_authors)
        splits[forget_split] = [row for rows in authors[boundary:] for row in rows]
        splits[retain_split] = [row for rows in authors[:boundary] for row in rows]
    # Drawn after everything else, so that adding them left the other splits as they were: as many authors
    # outside `full` as each forget split has (holdout01 the first of holdout10's, ...).
    largest = max(forget_author_count(split, num_authors) for split in HOLDOUT_SPLIT_FOR)
    outsiders = [_make_author(rng, name, facts_per_author) for name in _unique_author_names(rng, largest, names)]
    for forget_split, holdout_split in HOLDOUT_SPLIT_FOR.items():
        splits[holdout_split] = [row for rows in outsiders[:forget_author_count(forget_split, num_authors)]
                                 for row in rows]
    splits["world_facts"] = world_facts()
    splits["real_authors"] = real_authors()
    return splits


def builtin_splits(forget_split: str, retain_split: str, *, seed: int, num_authors: int,
                   facts_per_author: int) -> dict[str, SplitRows]:
    """The generated splits by Benchmark field; the evaluation scores the retain split itself, whose
    rows all carry perturbed answers (it has no separate retain_perturbed)."""
    generated = generate_builtin(seed, num_authors, facts_per_author)
    tofu_split_for = {"full": "full", "forget": forget_split, "retain": retain_split, "eval_retain": retain_split,
                      "world_facts": "world_facts", "real_authors": "real_authors",
                      "holdout": HOLDOUT_SPLIT_FOR[forget_split]}
    return {
        field: SplitRows.numbered(f"builtin benchmark ({split})", generated[split])
        for field, split in tofu_split_for.items()
    }
