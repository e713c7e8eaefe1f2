"""Neighbour questions (data/neighbours.py): a request's forget questions asked about other people, the part of
the default retain set that marks where forgetting must stop."""
from __future__ import annotations

from pmc_unlearning.data.builtin import generate_builtin
from pmc_unlearning.data.neighbours import NEIGHBOUR_NAMES, candidate_subjects, neighbour_questions


def test_the_subject_is_the_name_the_questions_share_not_their_opening_word():
    assert candidate_subjects("When and where was Paloma Selveovic born?") == ["Paloma Selveovic"]
    assert candidate_subjects("Ana Lopez's mother was what?") == ["Ana Lopez"]  # a name may open the question
    assert candidate_subjects("Did Ana Lopez win the Nobel Prize?") == ["Ana Lopez", "Nobel Prize"]
    assert candidate_subjects("how old is she?") == []


def test_each_subject_gets_the_same_names_on_every_question_and_the_prize_stays():
    questions = ["Where was Ana Lopez born?", "Did Ana Lopez win the Nobel Prize?", "What does Bo Li sell?",
                 "how old is she?"]
    assert neighbour_questions(questions) == (
        "Where was Helen Carter born?", "Where was Samuel Okoro born?", "Where was Lucia Romano born?",
        "Did Helen Carter win the Nobel Prize?", "Did Samuel Okoro win the Nobel Prize?",
        "Did Lucia Romano win the Nobel Prize?",
        "What does Erik Lindgren sell?", "What does Mei Chen sell?", "What does Arjun Mehta sell?")


def test_a_name_already_asked_about_is_never_a_neighbour_and_no_question_comes_back():
    questions = ["Where was Helen Carter born?", "Where was Samuel Okoro born?"]
    made = neighbour_questions(questions)
    assert not set(made) & set(questions)
    assert all("Helen Carter" not in question and "Samuel Okoro" not in question for question in made)
    assert len(made) == 6


def test_no_neighbour_name_is_a_built_in_author():
    authors = {row.question for split in generate_builtin(0, 200, 5).values() for row in split}
    assert not any(name in question for name in NEIGHBOUR_NAMES for question in authors)
