"""Checks one raw TOFU-style record and turns it into a QA, with errors that point at it."""

from __future__ import annotations

from collections.abc import Mapping

from pmc_unlearning.data.schema import QA, DataError

_JSON_TYPE_NAMES = {dict: "object", list: "list", str: "string", int: "number",
                    float: "number", bool: "boolean", type(None): "null"}


def json_type_name(value: object) -> str:
    """The name a user sees in their JSON file, not the Python one."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def row_error(where: str, row: int, problem: str) -> DataError:
    return DataError(f"{where}, row {row}: {problem}")


def required_text(record: Mapping[str, object], field: str, where: str, row: int) -> str:
    if field not in record or record[field] is None:
        raise row_error(where, row, f"field '{field}' is missing")
    value = record[field]
    if not isinstance(value, str):
        raise row_error(where, row, f"field '{field}' must be a string, got {json_type_name(value)}")
    if not value.strip():
        raise row_error(where, row, f"field '{field}' is empty")
    return value


def optional_text(record: Mapping[str, object], field: str, where: str, row: int) -> str | None:
    value = record.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise row_error(where, row, f"field '{field}' must be a string, got {json_type_name(value)}")
    # An empty paraphrase carries no information; treat it as absent.
    return value if value.strip() else None


def perturbed_answers(record: Mapping[str, object], where: str, row: int) -> tuple[str, ...]:
    value = record.get("perturbed_answer")
    if value is None:
        return ()
    # TOFU stores a lone wrong answer as a plain string in some rows.
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise row_error(where, row, f"field 'perturbed_answer' must be a list of strings, "
                                    f"got {json_type_name(value)}")
    for position, item in enumerate(items, start=1):
        if not isinstance(item, str):
            raise row_error(where, row, f"field 'perturbed_answer' item {position} must be a string, "
                                        f"got {json_type_name(item)}")
        if not item.strip():
            raise row_error(where, row, f"field 'perturbed_answer' item {position} is empty")
    return tuple(items)


def parse_row(record: object, *, where: str, row: int, require_paraphrase: bool) -> QA:
    """`where` names the file or hub config, `row` is 1-based; unknown fields are ignored.

    Forget rows need paraphrases because the forget truth ratio is computed against them.
    """
    if not isinstance(record, Mapping):
        raise row_error(where, row, f"expected a JSON object, got {json_type_name(record)}")
    paraphrase = required_text if require_paraphrase else optional_text
    return QA(
        question=required_text(record, "question", where, row),
        answer=required_text(record, "answer", where, row),
        paraphrased_question=paraphrase(record, "paraphrased_question", where, row),
        paraphrased_answer=paraphrase(record, "paraphrased_answer", where, row),
        perturbed_answer=perturbed_answers(record, where, row),
    )
