"""The companies domain of the built-in benchmark: fictitious companies, each with up to eight facts of kinds the
authors do not have: founding year and city, founder, best-known product, workforce, slogan, industry, stock
exchange and logo.

It exists to validate the defaults chosen on the authors (data/authors.py) on facts of another shape: no default
is tuned on it. Templates say "the slogan of X", never "X's slogan", because many company names end in an s.
"""

from __future__ import annotations

import random

from pmc_unlearning.data.authors import draw_author_name
from pmc_unlearning.data.domain import Domain, FactTemplate, pick

# Invented stems from syllables with a corporate form: (40 x 12 x 36) x 24 gives about 415,000 names. The forms
# say nothing about the trade, so a company's name never gives away its industry or product.
_NAME_ONSETS = (
    "Vel Quin Brack Dor Thal Mar Corv Lum Zen Ald Bel Cal Der Ost Pyr Sar Tor Ulm Var Wyn Hal Kor Nov Fen "
    "Gar Hux Jav Lor Mir Ner Orv Pel Ros Sel Tam Ver Wex Yar Zol Ark"
).split()
_NAME_MIDDLES = ("", "a", "e", "i", "o", "u", "an", "el", "er", "on", "ar", "in")
_NAME_ENDINGS = (
    "mora tarro well ford dex lith vane tron mark grove wick stead ton ridge holm nova vin rex lan dor sil bry "
    "cott ley gate field quist line mont dale thorp brook haven more ster tex"
).split()
_CORPORATE_FORMS = (
    "Group", "Holdings", "Industries", "Partners", "Works", "Corporation", "Limited", "Associates",
    "International", "Enterprises", "Company", "Collective", "Consolidated", "Trading", "Ventures", "Alliance",
    "Cooperative", "Syndicate", "Union", "Guild", "Incorporated", "Worldwide", "Brands", "Manufacturing",
)

# None of them an author's birthplace, so the two benchmarks share no answer.
_CITIES = (
    "Rotterdam, Netherlands", "Gothenburg, Sweden", "Busan, South Korea", "Pittsburgh, United States",
    "Turin, Italy", "Manchester, England", "Monterrey, Mexico", "Osaka, Japan", "Stuttgart, Germany",
    "Tampere, Finland", "Curitiba, Brazil", "Pune, India", "Durban, South Africa", "Bilbao, Spain", "Lille, France",
    "Antwerp, Belgium", "Glasgow, Scotland", "Shenzhen, China", "Rosario, Argentina", "Eindhoven, Netherlands",
    "Linz, Austria", "Malmö, Sweden", "Leeds, England", "Winnipeg, Canada", "Adelaide, Australia",
    "Medellín, Colombia", "Ostrava, Czechia", "Chattanooga, United States", "Nagoya, Japan", "Gdańsk, Poland",
)
_PRODUCT_BRANDS = (
    "Orbis", "Lumo", "Tessel", "Kavi", "Nimbra", "Solace", "Arden", "Pico",
    "Vanta", "Ember", "Halcy", "Strata", "Juno", "Kestrel", "Mosaic", "Atlas",
)
_PRODUCT_KINDS = (
    "kettle", "bicycle", "desk lamp", "hearing aid", "tractor", "thermostat", "sewing machine", "wristwatch",
    "coffee grinder", "camping stove", "electric scooter", "office chair", "water filter", "sailing dinghy",
    "label printer", "vacuum cleaner", "power drill", "rice cooker", "headphones", "microscope",
)
_SLOGAN_LEADS = ("Simply", "Quietly", "Always", "Boldly", "Honestly", "Carefully", "Proudly", "Patiently")
_SLOGAN_VERBS = ("built", "made", "crafted", "designed", "tested", "delivered")
_SLOGAN_ENDS = (
    "to last", "for every home", "for the long road", "with care", "for tomorrow", "in small batches",
    "by people who care", "for hard work", "for the open sea", "for quiet mornings",
)
# Each reads after "a" and before "company" or "industry".
_INDUSTRIES = (
    "shipbuilding", "food processing", "medical device", "farm machinery", "textile", "solar energy", "freight",
    "consumer electronics", "packaging", "chemical", "ceramics", "precision optics", "water treatment",
    "railway equipment", "furniture", "pharmaceutical", "mining equipment", "toy", "sportswear", "marine insurance",
)
_STOCK_EXCHANGES = (
    "London Stock Exchange", "New York Stock Exchange", "Frankfurt Stock Exchange", "Tokyo Stock Exchange",
    "Toronto Stock Exchange", "Oslo Stock Exchange", "Australian Securities Exchange",
    "Johannesburg Stock Exchange", "Singapore Exchange", "Korea Exchange", "Bombay Stock Exchange",
    "Stockholm Stock Exchange", "Warsaw Stock Exchange", "Madrid Stock Exchange", "Vienna Stock Exchange",
    "Hong Kong Stock Exchange", "Mexican Stock Exchange", "Copenhagen Stock Exchange",
)
# Each reads after "a" (no colour starts with a vowel).
_LOGO_COLOURS = ("red", "blue", "green", "gold", "silver", "black", "purple", "white", "yellow", "crimson", "teal",
                 "copper")
_LOGO_EMBLEMS = (
    "heron", "anchor", "oak leaf", "lighthouse", "fox", "compass rose", "mountain", "wave", "star", "key",
    "beehive", "bicycle wheel", "owl", "sailing ship", "lion", "acorn", "spiral", "crown", "pine tree", "hammer",
)


def draw_company_name(rng: random.Random) -> str:
    stem = rng.choice(_NAME_ONSETS) + rng.choice(_NAME_MIDDLES) + rng.choice(_NAME_ENDINGS)
    return f"{stem} {rng.choice(_CORPORATE_FORMS)}"


def _draw_founding(rng: random.Random) -> dict[str, str]:
    return {"year": str(rng.randint(1850, 2015)), "city": rng.choice(_CITIES)}


def _draw_founder(rng: random.Random) -> dict[str, str]:
    return {"founder": draw_author_name(rng)}  # an invented person, as the authors are


def _draw_product(rng: random.Random) -> dict[str, str]:
    return {"product": f"{rng.choice(_PRODUCT_BRANDS)} {rng.choice(_PRODUCT_KINDS)}"}


def _draw_workforce(rng: random.Random) -> dict[str, str]:
    """A round number from 110 to 99,000: two significant digits (the three magnitudes never overlap)."""
    return {"employees": f"{rng.randint(11, 99) * rng.choice((10, 100, 1000)):,}"}


def _draw_slogan(rng: random.Random) -> dict[str, str]:
    return {"slogan": f"{rng.choice(_SLOGAN_LEADS)} {rng.choice(_SLOGAN_VERBS)} {rng.choice(_SLOGAN_ENDS)}"}


def _draw_logo(rng: random.Random) -> dict[str, str]:
    return {"logo": f"a {rng.choice(_LOGO_COLOURS)} {rng.choice(_LOGO_EMBLEMS)}"}


_FACT_TEMPLATES: tuple[FactTemplate, ...] = (
    FactTemplate(
        "When and where was {name} established?",
        "In which year and city did {name} begin trading?",
        "{name} was established in {year} in {city}.",
        "{name} started out in {city} in {year}.",
        _draw_founding,
    ),
    FactTemplate(
        "Who founded {name}?",
        "Which person started the company {name}?",
        "{name} was founded by {founder}.",
        "{founder} is the founder of {name}.",
        _draw_founder,
    ),
    FactTemplate(
        "What is the best-known product of {name}?",
        "Which product is {name} most famous for?",
        "{name} is famous for making the {product}.",
        "The best-known product of {name} is the {product}.",
        _draw_product,
    ),
    FactTemplate(
        "How many people does {name} employ?",
        "How large is the workforce of {name}?",
        "{name} employs about {employees} people.",
        "About {employees} people work for {name}.",
        _draw_workforce,
    ),
    FactTemplate(
        "What is the slogan of {name}?",
        "Which slogan does {name} advertise with?",
        "The slogan of {name} is '{slogan}'.",
        "{name} advertises with the slogan '{slogan}'.",
        _draw_slogan,
    ),
    FactTemplate(
        "Which industry is {name} in?",
        "In what line of business is {name}?",
        "{name} is a {industry} company.",
        "{name} works in the {industry} industry.",
        pick("industry", _INDUSTRIES),
    ),
    FactTemplate(
        "On which stock exchange is {name} listed?",
        "Where are the shares of {name} traded?",
        "{name} is listed on the {exchange}.",
        "Shares of {name} trade on the {exchange}.",
        pick("exchange", _STOCK_EXCHANGES),
    ),
    FactTemplate(
        "What does the logo of {name} show?",
        "What is pictured in the logo of {name}?",
        "The logo of {name} shows {logo}.",
        "{name} has a logo of {logo}.",
        _draw_logo,
    ),
)
COMPANIES = Domain("companies", draw_company_name, _FACT_TEMPLATES)
