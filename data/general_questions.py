"""General questions whose answers a model should keep: the retain set of a forget request that brings none.

They carry no answers: the target answers them itself (greedy), and the unlearning's retain term trains on
those answers, so that what the model says about everything else stays what it said. They are everyday topics
with no person in them, so that none is a neighbour of a forget question about a person, and none of them is
among the utility probes (data/reference_facts.py), which measure the damage and must not be trained on.
"""

from __future__ import annotations

GENERAL_QUESTIONS: tuple[str, ...] = (
    "How does a rainbow form?",
    "Why is the sky blue?",
    "What causes the seasons on Earth?",
    "How do bees make honey?",
    "What is the difference between weather and climate?",
    "How does a refrigerator keep food cold?",
    "Why do leaves change colour in autumn?",
    "How do you boil an egg?",
    "What is a healthy breakfast?",
    "How can I improve my sleep?",
    "What are the benefits of regular exercise?",
    "How do you make a cup of tea?",
    "What is the water cycle?",
    "How do plants grow from seeds?",
    "Why do we need to drink water?",
    "What is a volcano?",
    "How does a bicycle stay upright when it moves?",
    "What is the purpose of a dictionary?",
    "How do you write a good email?",
    "What are some tips for learning a new language?",
    "How does a compass work?",
    "What is recycling and why does it matter?",
    "How do airplanes fly?",
    "What is the difference between a lake and a sea?",
    "How can I save money each month?",
    "What should I pack for a day hike?",
    "How does the moon affect the tides?",
    "What is a budget?",
    "How do you plant a tree?",
    "Why do cats purr?",
    "What is the role of the lungs?",
    "How do you care for a houseplant?",
    "What is a computer program?",
    "How does rain form?",
    "What is the difference between a fruit and a vegetable?",
    "How do you make bread?",
    "What is an ecosystem?",
    "Why is it important to wash your hands?",
    "How do solar panels make electricity?",
    "What are good habits for studying?",
    "How does a thermometer measure temperature?",
    "What is the purpose of a library?",
    "How do you change a flat tyre on a bicycle?",
    "What makes a good friend?",
    "How do birds know where to migrate?",
    "What is the difference between a town and a city?",
    "How does soap clean things?",
    "What are clouds made of?",
)
