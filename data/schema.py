"""The benchmark's data types, shared by every data source."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

# TOFU's forget splits and the retain split that completes each one to `full`.
RETAIN_SPLIT_FOR: dict[str, str] = {
    "forget01": "retain99",
    "forget05": "retain95",
    "forget10": "retain90",
}
FORGET_SPLITS: tuple[str, ...] = tuple(RETAIN_SPLIT_FOR)
# TOFU's holdout splits: questions about authors outside `full` (no model here saw them), as many as the forget
# split has; the membership-inference attacks (evaluation/attacks/mia.py) score forget answers against them.
HOLDOUT_SPLIT_FOR: dict[str, str] = {forget: forget.replace("forget", "holdout") for forget in FORGET_SPLITS}
# The Benchmark fields that hold rows; every source returns its splits under these names.
BENCHMARK_SPLITS: tuple[str, ...] = ("full", "forget", "retain", "eval_retain", "world_facts", "real_authors",
                                     "holdout")


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
class SplitRows:
    """One split as a source read it, with where each row came from so a check can point at it."""

    where: str  # the file, "<hub repo or folder> (<config>)", or "builtin <domain> benchmark (<split>)"
    rows: tuple[QA, ...]
    row_numbers: tuple[int, ...]  # 1-based, as the user counts them (a .jsonl file's line numbers)

    @classmethod
    def numbered(cls, where: str, rows: tuple[QA, ...] | list[QA]) -> SplitRows:
        """Rows numbered 1, 2, ...: sources without line numbers of their own."""
        return cls(where, tuple(rows), tuple(range(1, len(rows) + 1)))

    def numbered_rows(self) -> Iterator[tuple[int, QA]]:
        return zip(self.row_numbers, self.rows)


@dataclass(frozen=True)
class Benchmark:
    """The rows of one benchmark, checked at load time (the rules are in data/loader.py).

    `absent` names what the evaluation must report as n/a, with the reason to show:
    - "world_facts" / "real_authors": the whole split is missing (a data folder without its file);
    - "truth_ratio.retain": no eval_retain row has perturbed answers;
    - "truth_ratio.world_facts", "prob.world_facts" (and the same for real_authors): no row of the split
      has perturbed answers, which both TOFU metrics compare the true answer against;
    - "holdout": the source has no holdout split for the forget split (the attacks that need it are absent).
    """

    source: str  # "builtin", "tofu", or the folder path
    forget_split: str  # e.g. "forget10"
    full: tuple[QA, ...]  # everything the target model is fine-tuned on (forget + retain)
    forget: tuple[QA, ...]  # with paraphrases and perturbed answers on every row
    retain: tuple[QA, ...]  # the retainXX split matching forget_split: what the retain term trains on
    # The retain rows the evaluation scores: TOFU's retain_perturbed, a folder's optional retain_perturbed
    # file, else the retain split itself.
    eval_retain: tuple[QA, ...]
    world_facts: tuple[QA, ...]
    real_authors: tuple[QA, ...]
    # About authors outside `full`, in the forget rows' style (HOLDOUT_SPLIT_FOR); () where the source has none.
    holdout: tuple[QA, ...] = ()
    # Derived from the rows, so left out of equality and of the hash (which a dict would break).
    absent: dict[str, str] = field(default_factory=dict, compare=False)
    # Where each split's rows were read (SplitRows.where, row numbers), so that a check made after loading
    # (models/checks.py) names the file and row as the load checks do; empty for a Benchmark built in memory.
    origins: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict, compare=False)

    def row_place(self, split: str, index: int) -> str:
        """`<file or hub config>, row <n>` for row `index` (from 0) of the Benchmark field `split`."""
        where, numbers = self.origins.get(split, (f"the {split} split", ()))
        return f"{where}, row {numbers[index] if index < len(numbers) else index + 1}"

    def fingerprint(self) -> str:
        """sha256 hex of the content, for cache keys.

        `source` is left out on purpose: the same rows loaded from a folder or generated
        in memory are the same benchmark and must share cached models and results.
        eval_retain is counted only where it differs from retain, so that benchmarks from
        before it existed (where it was the retain split) keep their keys and cached models.
        The holdout split is left out, as no model is trained on it: `holdout_fingerprint` keys what it feeds.
        """
        splits = ["full", "forget", "retain", "world_facts", "real_authors"]
        if self.eval_retain != self.retain:
            splits.append("eval_retain")
        content = {
            "forget_split": self.forget_split,
            "splits": {name: [dataclasses.asdict(row) for row in getattr(self, name)] for name in splits},
        }
        return sha256_of(content)

    def holdout_fingerprint(self) -> str:
        """sha256 hex of the holdout rows, for the keys of results computed from them (the attacks')."""
        return sha256_of([dataclasses.asdict(row) for row in self.holdout])


def sha256_of(content) -> str:
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_forget_split(forget_split: str) -> str:
    """Returns the retain split matching `forget_split`, or raises DataError."""
    if forget_split not in RETAIN_SPLIT_FOR:
        raise DataError(
            f"unknown forget split {forget_split!r}: valid ones are {', '.join(FORGET_SPLITS)}"
        )
    return RETAIN_SPLIT_FOR[forget_split]
