"""The benchmark's data types, shared by every data source."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

# TOFU's forget splits and the retain split that completes each one to `full`.
RETAIN_SPLIT_FOR: dict[str, str] = {
    "forget01": "retain99",
    "forget05": "retain95",
    "forget10": "retain90",
}
FORGET_SPLITS: tuple[str, ...] = tuple(RETAIN_SPLIT_FOR)


class DataError(ValueError):
    """Bad data or bad data options; the message says what to fix and where."""


@dataclass(frozen=True)
class QA:
    """One TOFU row. Paraphrases and perturbed answers feed the truth-ratio metrics."""

    question: str
    answer: str
    paraphrased_question: str | None = None
    paraphrased_answer: str | None = None
    perturbed_answer: tuple[str, ...] = ()


@dataclass(frozen=True)
class Benchmark:
    source: str  # "builtin", "tofu", or the folder path
    forget_split: str  # e.g. "forget10"
    full: tuple[QA, ...]  # everything the target model is fine-tuned on (forget + retain)
    forget: tuple[QA, ...]
    retain: tuple[QA, ...]  # the retainXX split matching forget_split
    world_facts: tuple[QA, ...]
    real_authors: tuple[QA, ...]

    def fingerprint(self) -> str:
        """sha256 hex of the content, for cache keys.

        `source` is left out on purpose: the same rows loaded from a folder or generated
        in memory are the same benchmark and must share cached models and results.
        """
        content = {
            "forget_split": self.forget_split,
            "splits": {
                name: [dataclasses.asdict(row) for row in getattr(self, name)]
                for name in ("full", "forget", "retain", "world_facts", "real_authors")
            },
        }
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_forget_split(forget_split: str) -> str:
    """Returns the retain split matching `forget_split`, or raises DataError."""
    if forget_split not in RETAIN_SPLIT_FOR:
        raise DataError(
            f"unknown forget split {forget_split!r}: valid ones are {', '.join(FORGET_SPLITS)}"
        )
    return RETAIN_SPLIT_FOR[forget_split]
