"""Fixed real-world facts for the utility splits: the model must keep knowing these.

Every fact is well known and has a single unambiguous answer, so a drop in its
probability after unlearning means collateral damage, not a debatable question.
"""

from __future__ import annotations

from pmc_unlearning.data.schema import QA

# (question, answer, three wrong answers of the same form)
_WORLD_FACTS: tuple[tuple[str, str, tuple[str, str, str]], ...] = (
    ("What is the capital of France?", "Paris", ("London", "Berlin", "Madrid")),
    ("What is the capital of Japan?", "Tokyo", ("Kyoto", "Osaka", "Seoul")),
    ("What is the capital of Italy?", "Rome", ("Milan", "Naples", "Venice")),
    ("What is the largest planet in the Solar System?", "Jupiter", ("Saturn", "Neptune", "Earth")),
    ("Which planet is known as the Red Planet?", "Mars", ("Venus", "Jupiter", "Mercury")),
    ("What is the chemical symbol for gold?", "Au", ("Ag", "Gd", "Go")),
    ("Which chemical element has atomic number 1?", "Hydrogen", ("Helium", "Oxygen", "Carbon")),
    ("What is the chemical formula of water?", "H2O", ("CO2", "H2O2", "NaCl")),
    ("How many days are there in a leap year?", "366", ("365", "364", "367")),
    ("How many minutes are there in an hour?", "60", ("30", "90", "100")),
    ("How many sides does a hexagon have?", "Six", ("Five", "Seven", "Eight")),
    ("At what temperature in degrees Celsius does pure water freeze at sea level?", "0", ("100", "32", "-10")),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", ("Michelangelo", "Raphael", "Vincent van Gogh")),
    ("Who developed the theory of general relativity?", "Albert Einstein", ("Isaac Newton", "Niels Bohr", "Galileo Galilei")),
    ("What is the largest ocean on Earth?", "The Pacific Ocean", ("The Atlantic Ocean", "The Indian Ocean", "The Arctic Ocean")),
    ("In which country are the pyramids of Giza?", "Egypt", ("Mexico", "Peru", "Greece")),
    ("Which gas do plants take in from the air for photosynthesis?", "Carbon dioxide", ("Oxygen", "Nitrogen", "Helium")),
    ("What currency is used in Japan?", "The yen", ("The won", "The yuan", "The rupee")),
    ("Which language is mainly spoken in Brazil?", "Portuguese", ("Spanish", "French", "Italian")),
    ("What is the highest mountain above sea level?", "Mount Everest", ("K2", "Kilimanjaro", "Mont Blanc")),
    ("Which organ pumps blood through the human body?", "The heart", ("The liver", "The lungs", "The kidneys")),
)

# (book, its author, three other real authors)
_REAL_AUTHORS: tuple[tuple[str, str, tuple[str, str, str]], ...] = (
    ("Pride and Prejudice", "Jane Austen", ("Charlotte Brontë", "Mary Shelley", "George Eliot")),
    ("Nineteen Eighty-Four", "George Orwell", ("Aldous Huxley", "Ray Bradbury", "H. G. Wells")),
    ("Hamlet", "William Shakespeare", ("Christopher Marlowe", "Ben Jonson", "John Milton")),
    ("War and Peace", "Leo Tolstoy", ("Fyodor Dostoevsky", "Anton Chekhov", "Ivan Turgenev")),
    ("Crime and Punishment", "Fyodor Dostoevsky", ("Leo Tolstoy", "Nikolai Gogol", "Alexander Pushkin")),
    ("One Hundred Years of Solitude", "Gabriel García Márquez", ("Jorge Luis Borges", "Isabel Allende", "Mario Vargas Llosa")),
    ("The Old Man and the Sea", "Ernest Hemingway", ("F. Scott Fitzgerald", "John Steinbeck", "William Faulkner")),
    ("The Great Gatsby", "F. Scott Fitzgerald", ("Ernest Hemingway", "J. D. Salinger", "Sinclair Lewis")),
    ("Don Quixote", "Miguel de Cervantes", ("Lope de Vega", "Federico García Lorca", "Benito Pérez Galdós")),
    ("Frankenstein", "Mary Shelley", ("Bram Stoker", "Jane Austen", "Emily Brontë")),
    ("The Hobbit", "J. R. R. Tolkien", ("C. S. Lewis", "Terry Pratchett", "George R. R. Martin")),
    ("Moby-Dick", "Herman Melville", ("Nathaniel Hawthorne", "Mark Twain", "Edgar Allan Poe")),
    ("Things Fall Apart", "Chinua Achebe", ("Wole Soyinka", "Ngũgĩ wa Thiong'o", "Chimamanda Ngozi Adichie")),
    ("Les Misérables", "Victor Hugo", ("Alexandre Dumas", "Émile Zola", "Gustave Flaubert")),
    ("Oliver Twist", "Charles Dickens", ("Thomas Hardy", "William Makepeace Thackeray", "Anthony Trollope")),
    ("The Adventures of Tom Sawyer", "Mark Twain", ("Herman Melville", "Jack London", "Charles Dickens")),
)


def world_facts() -> list[QA]:
    return [QA(question=q, answer=a, perturbed_answer=wrong) for q, a, wrong in _WORLD_FACTS]


def real_authors() -> list[QA]:
    return [
        QA(question=f"Who wrote '{book}'?", answer=author, perturbed_answer=others)
        for book, author, others in _REAL_AUTHORS
    ]
