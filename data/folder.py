"""A benchmark stored as one `<split>.jsonl` or `<split>.json` file per split."""

from __future__ import annotations

import json
from pathlib import Path

from pmc_unlearning.data.rows import json_type_name, parse_row
from pmc_unlearning.data.schema import HOLDOUT_SPLIT_FOR, DataError, SplitRows

SPLIT_SUFFIXES = (".jsonl", ".json")
OPTIONAL_SPLITS = ("world_facts", "real_authors")
# As in TOFU: the retain rows the evaluation scores, with perturbed answers; optional in a folder.
EVAL_RETAIN_SPLIT = "retain_perturbed"


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the file ({err})") from err


def raw_rows_jsonl(path: Path, hint: str = "") -> list[tuple[int, object]]:
    """(line number, decoded value) per non-blank line; line numbers are what an editor shows. `hint` ends the
    message of a line that is not JSON."""
    rows: list[tuple[int, object]] = []
    for line_number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((line_number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, row {line_number}: invalid JSON ({err.msg}){hint}") from err
    return rows


def raw_rows_json(path: Path) -> list[tuple[int, object]]:
    """(position from 1, value) per item of the file's JSON list."""
    try:
        value = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {err.lineno}: invalid JSON ({err.msg})") from err
    if not isinstance(value, list):
        raise DataError(f"{path}: expected a JSON list of objects, got {json_type_name(value)}")
    return list(enumerate(value, start=1))


def _split_file(folder: Path, split: str) -> Path | None:
    present = [folder / f"{split}{suffix}" for suffix in SPLIT_SUFFIXES if (folder / f"{split}{suffix}").is_file()]
    if len(present) > 1:
        raise DataError(f"{folder}: both {present[0].name} and {present[1].name} exist; keep only one")
    return present[0] if present else None


def read_split_file(path: Path, *, require_paraphrase: bool) -> SplitRows:
    raw_rows = raw_rows_jsonl(path) if path.suffix == ".jsonl" else raw_rows_json(path)
    if not raw_rows:
        raise DataError(f"{path}: the file has no rows")
    return SplitRows(
        where=str(path),
        rows=tuple(
            parse_row(record, where=str(path), row=row, require_paraphrase=require_paraphrase)
            for row, record in raw_rows
        ),
        row_numbers=tuple(row for row, _ in raw_rows),
    )


def _required_split(folder: Path, split: str, *, require_paraphrase: bool = False) -> SplitRows:
    path = _split_file(folder, split)
    if path is None:
        expected = " or ".join(f"{split}{suffix}" for suffix in SPLIT_SUFFIXES)
        raise DataError(f"{folder}: missing the '{split}' split; expected a file named {expected}")
    return read_split_file(path, require_paraphrase=require_paraphrase)


def load_folder_splits(folder: Path, forget_split: str,
                       retain_split: str) -> tuple[dict[str, SplitRows], dict[str, str]]:
    """(splits by Benchmark field, absent optional splits -> why); an absent split is not in the first."""
    splits = {
        "full": _required_split(folder, "full"),
        "forget": _required_split(folder, forget_split, require_paraphrase=True),
        "retain": _required_split(folder, retain_split),
    }
    eval_retain_path = _split_file(folder, EVAL_RETAIN_SPLIT)
    splits["eval_retain"] = (
        read_split_file(eval_retain_path, require_paraphrase=False) if eval_retain_path else splits["retain"]
    )
    absent: dict[str, str] = {}
    optional = {split: split for split in OPTIONAL_SPLITS} | {"holdout": HOLDOUT_SPLIT_FOR[forget_split]}
    for field, split in optional.items():
        path = _split_file(folder, split)
        if path is None:
            absent[field] = f"no {split} file in {folder}"
        else:
            splits[field] = read_split_file(path, require_paraphrase=False)
    return splits, absent
