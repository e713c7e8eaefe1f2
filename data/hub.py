"""TOFU itself: the hub repository (locuslab/TOFU by default) or a local folder laid out as it is."""

from __future__ import annotations

from pathlib import Path

from pmc_unlearning.data.rows import parse_row
from pmc_unlearning.data.schema import HOLDOUT_SPLIT_FOR, DataError, SplitRows

TOFU_REPO = "locuslab/TOFU"


def tofu_configs(forget_split: str, retain_split: str) -> dict[str, str]:
    """The TOFU config each Benchmark split is read from.

    Only the `_perturbed` configs carry the paraphrased and perturbed answers, so every split the
    evaluation scores comes from one; the retain term trains on the whole retainXX split, which has none.
    """
    return {
        "full": "full",
        "forget": f"{forget_split}_perturbed",
        "retain": retain_split,
        "eval_retain": "retain_perturbed",
        "world_facts": "world_facts_perturbed",
        "real_authors": "real_authors_perturbed",
    }


class MissingConfig(DataError):
    """The repository or folder has no such config."""


def _unreachable(tofu_path: str, config: str, err: Exception) -> DataError:
    return DataError(
        f"could not load {tofu_path!r} (config {config!r}): it is not a local folder laid out as the hub "
        f"repository, and the Hugging Face Hub could not be reached or the dataset is not cached ({err}). "
        "Without hub access use DATA=builtin for the generated TOFU-style benchmark, "
        "or DATA=<folder> for a folder of <split>.jsonl / <split>.json files (e.g. a local TOFU copy)."
    )


def _load_config(tofu_path: str, config: str, revision: str | None, *, require_paraphrase: bool) -> SplitRows:
    try:
        # Imported here: `datasets` is slow to import and only this source needs it.
        import datasets

        # `datasets` keys its cache of a local folder on the folder's name and the config, not on the
        # files' contents, so an edited copy would load stale rows: rebuild it from the files each time.
        rebuild_local_copy = "force_redownload" if Path(tofu_path).is_dir() else None
        records = datasets.load_dataset(tofu_path, config, split="train", revision=revision,
                                        download_mode=rebuild_local_copy)
    except (ImportError, OSError) as err:  # OSError covers connection, HTTP and not-found errors
        raise _unreachable(tofu_path, config, err) from err
    except ValueError as err:  # `datasets` says so when the repository has no such config
        raise MissingConfig(f"{tofu_path} (config {config!r}): cannot load the config ({err})") from err
    where = f"{tofu_path} ({config})"
    rows = tuple(
        parse_row(record, where=where, row=row, require_paraphrase=require_paraphrase)
        for row, record in enumerate(records, start=1)
    )
    return SplitRows.numbered(where, rows)


def load_tofu_splits(forget_split: str, retain_split: str, *, tofu_path: str = TOFU_REPO,
                     revision: str | None = None) -> tuple[dict[str, SplitRows], dict[str, str]]:
    """(splits by Benchmark field, absent optional splits -> why). `tofu_path` is a hub id or a local folder laid
    out as the hub repository (a README.md dataset card listing the configs and their data files); `revision`
    pins a hub revision. The holdout split (TOFU's `holdoutXX`) is read where the copy has it."""
    splits = {
        split: _load_config(tofu_path, config, revision, require_paraphrase=split == "forget")
        for split, config in tofu_configs(forget_split, retain_split).items()
    }
    holdout = HOLDOUT_SPLIT_FOR[forget_split]
    try:
        splits["holdout"] = _load_config(tofu_path, holdout, revision, require_paraphrase=False)
    except MissingConfig as err:
        return splits, {"holdout": str(err)}
    return splits, {}
