"""One entry point for every data source."""

from __future__ import annotations

from pathlib import Path

from .builtin import generate_builtin
from .folder import load_folder_splits
from .hub import load_tofu_splits
from .schema import Benchmark, DataError, QA, check_forget_split


def _benchmark(source: str, forget_split: str, retain_split: str,
               splits: dict[str, tuple[QA, ...]] | dict[str, list[QA]]) -> Benchmark:
    return Benchmark(
        source=source,
        forget_split=forget_split,
        full=tuple(splits["full"]),
        forget=tuple(splits[forget_split]),
        retain=tuple(splits[retain_split]),
        world_facts=tuple(splits["world_facts"]),
        real_authors=tuple(splits["real_authors"]),
    )


def load_benchmark(source: str = "builtin", forget_split: str = "forget10", *, seed: int = 0,
                   num_authors: int = 20, facts_per_author: int = 5) -> Benchmark:
    """`source` is "builtin" (generated offline), "tofu" (the hub) or a folder path.

    seed, num_authors and facts_per_author only shape the builtin benchmark.
    """
    retain_split = check_forget_split(forget_split)
    if source == "builtin":
        splits = generate_builtin(seed, num_authors, facts_per_author)
    elif source == "tofu":
        splits = load_tofu_splits(forget_split, retain_split)
    elif Path(source).is_dir():
        splits = load_folder_splits(Path(source), forget_split, retain_split)
    else:
        raise DataError(f"unknown data source {source!r}: use 'builtin', 'tofu' or the path of an existing folder")
    return _benchmark(source, forget_split, retain_split, splits)
