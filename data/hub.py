"""TOFU itself, from the Hugging Face Hub (locuslab/TOFU)."""

from __future__ import annotations

from .rows import parse_row
from .schema import QA, DataError

TOFU_REPO = "locuslab/TOFU"


def _hub_unreachable(config: str, err: Exception) -> DataError:
    return DataError(
        f"could not load {TOFU_REPO!r} (config {config!r}) from the Hugging Face Hub; "
        f"the hub could not be reached or the dataset is not cached ({err}). "
        "Without hub access use DATA=builtin for the generated TOFU-style benchmark, "
        "or DATA=<folder> for a folder of <split>.jsonl / <split>.json files (e.g. a local TOFU copy)."
    )


def _load_config(config: str, *, require_paraphrase: bool) -> tuple[QA, ...]:
    try:
        # Imported here: `datasets` is slow to import and only this source needs it.
        import datasets

        rows = datasets.load_dataset(TOFU_REPO, config, split="train")
    except (ImportError, OSError) as err:  # OSError covers connection, HTTP and not-found errors
        raise _hub_unreachable(config, err) from err
    where = f"{TOFU_REPO} ({config})"
    return tuple(
        parse_row(record, where=where, row=row, require_paraphrase=require_paraphrase)
        for row, record in enumerate(rows, start=1)
    )


def load_tofu_splits(forget_split: str, retain_split: str) -> dict[str, tuple[QA, ...]]:
    """Splits by TOFU name. The forget rows come from the `_perturbed` config, which alone
    carries the paraphrased and perturbed answers the forget metrics need."""
    return {
        "full": _load_config("full", require_paraphrase=False),
        forget_split: _load_config(f"{forget_split}_perturbed", require_paraphrase=True),
        retain_split: _load_config(retain_split, require_paraphrase=False),
        "world_facts": _load_config("world_facts", require_paraphrase=False),
        "real_authors": _load_config("real_authors", require_paraphrase=False),
    }
