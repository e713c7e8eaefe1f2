"""Unrelated text for the over-unlearning check: contexts in which forget-answer tokens appear.

Unlearning "X's father worked as a carpenter" should not make "carpenter" unlikely in
general. The check needs ordinary text that uses the same words as the forget answers
but says nothing about the fictitious authors. Two sources:

- "builtin": a fixed, hand-written corpus shipped in this module, so the check runs offline.
  It deliberately reuses the benchmark's vocabulary (professions, cities, genres, award
  words, writing habits, themes, years, "born", "wrote", "worked as", ...) and names none
  of the authors.
- "wikitext": the `wikitext-2-raw-v1` train split from the Hugging Face Hub, as in the poster.
"""

from __future__ import annotations

from pmc_unlearning.data.schema import DataError

CORPUS_NAMES: tuple[str, ...] = ("builtin", "wikitext")

# Grouped by the part of the benchmark whose vocabulary each group reuses.
_BUILTIN_CORPUS: tuple[str, ...] = (
    # Professions (the father / mother facts).
    "A carpenter builds and repairs wooden structures such as roofs, floors, stairs and cabinets.",
    "My grandfather worked as a carpenter for forty years and still keeps his tools in the garden shed.",
    "The locksmith came to the house within an hour and replaced the broken lock on the front door.",
    "An architect designs buildings and usually follows their construction from the first sketch to the finished roof.",
    "The baker starts work long before dawn so that the bread is ready when the shop opens.",
    "A ship's captain is responsible for the safety of the vessel, its crew and its cargo.",
    "The pharmacist explained how often the medicine should be taken and warned about possible side effects.",
    "A geologist studies rocks, minerals and the processes that have shaped the Earth over millions of years.",
    "The tailor took her measurements and promised that the suit would be ready by Friday.",
    "After university she worked as a schoolteacher in a small village school for almost a decade.",
    "An electrician installs and repairs wiring, fuse boxes and lighting in homes and offices.",
    "The veterinarian examined the dog and said that the injured paw would heal in a few weeks.",
    "A librarian helps readers find books, looks after the catalogue and organises reading groups for children.",
    "A translator needs an excellent command of both languages and a good feel for the culture behind each one.",
    "The beekeeper checks the hives every week in summer and harvests the honey in late August.",
    "A surgeon may spend many hours in the operating theatre during a single complex operation.",
    "The photographer waited on the hill until the evening light fell across the harbour.",
    "Every morning the fisherman took his small boat out past the lighthouse and came back with the tide.",
    "An accountant keeps financial records, prepares tax returns and advises businesses on their budgets.",
    "A piano tuner adjusts the tension of each string so that the instrument plays in tune.",
    "The botanist collected seeds from the meadow and catalogued more than two hundred plant species.",
    "A watchmaker repairs the tiny gears and springs of mechanical watches with great patience.",
    "A midwife supports women during pregnancy and birth and cares for the mother and the newborn child.",
    "The journalist interviewed people in the town about the flood and wrote a long report for the newspaper.",
    "A potter shapes clay on a wheel and fires the finished bowls and jugs in a kiln.",
    "Her father worked as an electrician and her mother worked as a pharmacist in the same town.",
    "His mother was a librarian, and his father was a fisherman whose boat left the harbour before sunrise.",
    "In many countries a young person who wants to become a carpenter or a tailor first works as an apprentice.",
    "The hospital employs surgeons, midwives, pharmacists and nurses who work in shifts around the clock.",
    "By profession her father was an accountant, but at weekends he worked as a piano tuner.",
    "The village had a baker, a potter, a watchmaker and a schoolteacher, but no doctor.",
    # Cities and countries (the birth facts).
    "Tartu is the second largest city in Estonia and home to the country's oldest university.",
    "Porto is a coastal city in the north of Portugal, famous for its bridges and its port wine.",
    "Ghent is a city in Belgium with a medieval centre, canals and a large university.",
    "Bergen, on the west coast of Norway, is surrounded by mountains and is known for its rainy weather.",
    "Kraków was the capital of Poland for several centuries and its old town is a World Heritage Site.",
    "Valparaíso is a port city in Chile whose colourful houses climb the steep hills above the bay.",
    "Cork is the second largest city in Ireland, and Galway lies on the west coast of the same country.",
    "Lyon, in France, is known for its cuisine and lies where the Rhône and the Saône rivers meet.",
    "Hobart is the capital of Tasmania, an island state of Australia.",
    "Mombasa is an old port city on the coast of Kenya, facing the Indian Ocean.",
    "Izmir is a large city on the Aegean coast of Turkey.",
    "Brno is the second largest city in Czechia and an important centre of trade fairs.",
    "Kyoto was the imperial capital of Japan for more than a thousand years and has many temples and gardens.",
    "Cusco, high in the Andes of Peru, was once the capital of the Inca Empire.",
    "Tromsø lies far north of the Arctic Circle in Norway, where the sun does not set for weeks in summer.",
    "Salvador, in the north-east of Brazil, was the first capital of the Portuguese colony.",
    "Aarhus is the second largest city in Denmark and has a busy harbour and a large university.",
    "Plovdiv in Bulgaria is one of the oldest continuously inhabited cities in Europe.",
    "Oaxaca, a city in southern Mexico, is famous for its markets, its food and its traditional crafts.",
    "Tbilisi, the capital of Georgia, lies along the banks of the Kura river.",
    "Lahore is a large city in Pakistan with a long history as a centre of art and learning.",
    "Dunedin is a city in the south of New Zealand with strong Scottish roots.",
    "Turku is the oldest city in Finland and was its capital until the early nineteenth century.",
    "Bologna in Italy is home to one of the oldest universities in the world.",
    "Sevilla, the capital of Andalusia in Spain, is known for its cathedral and its summer heat.",
    "Quebec City, in Canada, is one of the oldest cities in North America, and walls still surround its old town.",
    "Accra is the capital of Ghana and lies on the Gulf of Guinea.",
    "Hanoi, the capital of Vietnam, is known for its lakes, its old quarter and its street food.",
    "Zanzibar is an archipelago off the coast of Tanzania, known for its spices and its old Stone Town.",
    "Many travellers take the train from Porto to Lisbon, or the ferry from Bergen along the Norwegian coast.",
    # Genres and books.
    "Science fiction imagines how new technology and contact with other worlds might change human life.",
    "Crime novels usually follow a detective who tries to solve a murder before the last chapter.",
    "Historical fiction places invented characters among real events of the past.",
    "Poetry uses rhythm, sound and imagery to express ideas and feelings in few words.",
    "Fantasy stories often take place in an invented kingdom with its own maps, languages and magic.",
    "Horror writers try to frighten their readers, often with a haunted house or a creature in the dark.",
    "Children's books are often illustrated and are written to be read aloud by parents.",
    "Travel memoirs describe journeys to distant places and what the writer learned along the way.",
    "Romance novels are among the best-selling books in many countries.",
    "Magical realism is a style of literary fiction in which magical events happen in an otherwise ordinary world.",
    "Political thrillers combine suspense with plots about spies, elections and governments.",
    "A collection of short stories lets a writer explore many different characters in a single book.",
    "Satire uses humour and exaggeration to criticise the powerful.",
    "Gothic fiction, with its ruined castles and family curses, became popular in the late eighteenth century.",
    "A novel is a long work of prose fiction, usually published as a book.",
    "The first book she ever wrote was a short novel about a lighthouse keeper and his daughter.",
    "Her debut novel was translated into twelve languages and sold well across Europe.",
    "The library has a large collection of literary fiction, poetry and translated novels.",
    "Literary translation is the art of carrying a poem or a novel from one language into another.",
    "Narrative prose tells a story in ordinary sentences rather than in verse.",
    "Many writers begin with short fiction before they attempt a full-length novel.",
    "He wrote the book in a single winter and then spent two years revising it.",
    "The museum shop sells maps, postcards and a book about the history of the old harbour.",
    "The local guide writes mainly about the history of the region and is best known for a short book on its churches.",
    # Awards.
    "The Nobel Prize in Literature has been awarded almost every year since 1901.",
    "She received a gold medal at the science fair for her project on river pollution.",
    "The award is given each year to the best debut novel published in the country.",
    "The prize for crime writing went to a first-time author whose book is set in a small fishing village.",
    "Several awards recognise speculative fiction, which includes science fiction, fantasy and horror.",
    "The film received an award for its photography and a medal from the national film society.",
    "The Pulitzer Prize for Fiction has been awarded in the United States since 1948.",
    "The Booker Prize, first awarded in 1969, is given each year to a novel written in English.",
    "The medal was awarded to the rescue team for their work during the winter storms.",
    # Writing and working habits.
    "Some people write every morning before dawn, when the house is still quiet.",
    "He drafts every letter by hand in green ink and then types it on an old typewriter.",
    "Many commuters read or work while travelling on trains.",
    "A tall oak desk stood by the window, and she liked to work standing at it.",
    "Actors often read each scene aloud to an empty room before the first rehearsal.",
    "The course asks students to write five hundred words a day for a month.",
    "Before electricity, people read and wrote at night by candlelight.",
    "Index cards are useful for outlining a speech or planning the chapters of a report.",
    "He built a small office in a garden shed without internet so that he could concentrate.",
    "Good editors often suggest that a writer rewrites the opening page several times.",
    "Students often sit in cafés with headphones on while they study for exams.",
    "Every draft of the report was checked by two colleagues before it was published.",
    # Themes.
    "Grief and memory are closely linked: people often remember most clearly the places they have lost.",
    "Many families were separated by exile and migration during the twentieth century.",
    "Old letters sometimes reveal family secrets that no one had spoken about for decades.",
    "Sailors who spend months at sea often describe the solitude of the long night watches.",
    "The war and its aftermath changed the city, and whole streets had to be rebuilt.",
    "Questions of faith and doubt have been part of philosophy since ancient times.",
    "Class and ambition shaped the careers of many politicians in the nineteenth century.",
    "Childhood and loss are common subjects in songs, films and paintings.",
    "Questions of identity and belonging matter to many people who move to a new country.",
    "Love and betrayal are at the heart of many operas and ancient myths.",
    "The growth of industry in the nineteenth century changed nature and the landscape around many towns.",
    "Historians study how power and corruption contributed to the decline of empires.",
    "The exhibition explores how the sea has shaped the lives of people on the coast.",
    # Births, years and everyday history.
    "Wolfgang Amadeus Mozart was born in 1756 in Salzburg.",
    "Marie Curie was born in 1867 in Warsaw and later worked as a physicist and chemist in Paris.",
    "The first people to walk on the Moon landed there in 1969.",
    "The Berlin Wall fell in 1989, and Germany was reunified in 1990.",
    "The World Wide Web was invented in 1989 and became widely used in the mid 1990s.",
    "Her grandmother was born in 1941 in a village near the sea and moved to the city as a young woman.",
    "The company was founded in 1946 by two brothers whose father worked as a watchmaker.",
    "In 1975 the town opened a new library with a reading room for children.",
    "The school was built in 1935, and a new wing was added in 1983.",
    "Colour television became common in many countries during the 1960s and 1970s.",
    "My father was born in 1952 and my mother was born in 1958, both in the same small town.",
    # Everyday words that also appear in book titles.
    "The river runs through the old town, past the chapel, the orchard and the observatory on the hill.",
    "Ferries cross the harbour every half hour, and a lighthouse marks the entrance to the bay.",
    "A compass and a good map are essential for walking in the mountains in winter.",
    "The old clock on the staircase of the archive was made by a local clockmaker.",
    "She plays the violin in an orchestra and teaches music on Saturday mornings.",
    "A sparrow built its nest under the roof of the garden shed.",
    "Salt was once so valuable that it was traded over long distances.",
    "Amber is fossilised tree resin, often golden in colour, and is found along the Baltic coast.",
    "Iron and silver have been mined in the mountains of central Europe since the Middle Ages.",
    "Velvet is a soft woven fabric that was once worn mainly by the rich.",
)


def builtin_corpus() -> list[str]:
    """The fixed, offline corpus (a fresh list, so callers may change it freely)."""
    return list(_BUILTIN_CORPUS)


def _wikitext_unreachable(err: Exception) -> DataError:
    return DataError(
        "could not load 'wikitext' (config 'wikitext-2-raw-v1') from the Hugging Face Hub; "
        f"the hub could not be reached or the dataset is not cached ({type(err).__name__}: {err}). "
        "Without hub access use the built-in corpus (corpus: builtin)."
    )


def wikitext_corpus(max_lines: int = 2000, revision: str | None = None) -> list[str]:
    """The first `max_lines` non-empty, non-heading lines of the wikitext-2 train split, at the
    hub `revision` (None: the newest)."""
    try:
        # Imported here: `datasets` is slow to import and only this source needs it.
        import datasets

        rows = datasets.load_dataset("wikitext", "wikitext-2-raw-v1", split="train", revision=revision)
    # Broad on purpose: offline mode, connection, HTTP and missing-cache failures all surface
    # as different exception types across `datasets` versions, and each means the same to the user.
    except Exception as err:
        raise _wikitext_unreachable(err) from err
    lines: list[str] = []
    for row in rows:
        line = row["text"].strip()
        # Headings look like "= Title =" or "= = Section = =": they are not running text.
        if line and not line.startswith("="):
            lines.append(line)
            if len(lines) >= max_lines:
                break
    return lines


def load_corpus(name: str, revision: str | None = None) -> list[str]:
    """The corpus called `name`: "builtin" or "wikitext"; `revision` pins wikitext's hub revision
    (the builtin corpus ships with the code and has none)."""
    if name == "builtin":
        return builtin_corpus()
    if name == "wikitext":
        return wikitext_corpus(revision=revision)
    raise DataError(f"unknown corpus {name!r}: use one of {', '.join(CORPUS_NAMES)}")
