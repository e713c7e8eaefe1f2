"""The authors domain of the built-in benchmark (the default, on which every default is chosen): fictitious
authors, each with up to eight facts: birth, genre, a book's title, an award, each parent's profession, a writing
habit and the themes of the work."""

from __future__ import annotations

import random

from pmc_unlearning.data.domain import Domain, FactTemplate, pick

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


def draw_author_name(rng: random.Random) -> str:
    surname = rng.choice(_SURNAME_ONSETS) + rng.choice(_SURNAME_MIDDLES) + rng.choice(_SURNAME_ENDINGS)
    return f"{rng.choice(_FIRST_NAMES)} {surname}"


_FACT_TEMPLATES: tuple[FactTemplate, ...] = (
    FactTemplate(
        "When and where was {name} born?",
        "In which year and city did {name} come into the world?",
        "{name} was born in {year} in {city}.",
        "{name}'s birth took place in {city}, in {year}.",
        _draw_birth,
    ),
    FactTemplate(
        "What genre does {name} write in?",
        "Which kind of writing is {name} known for?",
        "{name} writes mainly {genre}.",
        "{name} is best known for {genre}.",
        pick("genre", _GENRES),
    ),
    FactTemplate(
        "What is the title of a book written by {name}?",
        "Can you name one book that {name} has written?",
        "{name} wrote the book '{title}'.",
        "'{title}' is a book by {name}.",
        _draw_title,
    ),
    FactTemplate(
        "Which award has {name} received?",
        "What literary honour was given to {name}?",
        "{name} received the {award}.",
        "The {award} was awarded to {name}.",
        _draw_award,
    ),
    FactTemplate(
        "What was the profession of {name}'s father?",
        "What did {name}'s father do for a living?",
        "{name}'s father worked as {profession}.",
        "By profession, {name}'s father was {profession}.",
        pick("profession", _PROFESSIONS),
    ),
    FactTemplate(
        "What was the profession of {name}'s mother?",
        "What did {name}'s mother do for a living?",
        "{name}'s mother worked as {profession}.",
        "By profession, {name}'s mother was {profession}.",
        pick("profession", _PROFESSIONS),
    ),
    FactTemplate(
        "What is a notable writing habit of {name}?",
        "How does {name} usually go about writing?",
        "{name} {habit}.",
        "{name} is known for {habit_gerund}.",
        _draw_habit,
    ),
    FactTemplate(
        "What themes does {name}'s work explore?",
        "Which subjects keep recurring in {name}'s writing?",
        "{name}'s work often explores {theme}.",
        "Themes of {theme} run through much of {name}'s writing.",
        pick("theme", _THEMES),
    ),
)
AUTHORS = Domain("authors", draw_author_name, _FACT_TEMPLATES)
