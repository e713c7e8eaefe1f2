"""The load-time checks every data source goes through; data/loader.py lists the rules they enforce."""

from __future__ import annotations

from pmc_unlearning.data.rows import row_error
from pmc_unlearning.data.schema import SplitRows

# Splits whose truth ratio (and, on world_facts and real_authors, Prob) weighs the true answer against
# perturbed ones. Each may lack them altogether; then those metrics are n/a, keyed as in Benchmark.absent.
_OPTIONAL_PERTURBED_METRICS: dict[str, tuple[str, ...]] = {
    "eval_retain": ("truth_ratio.retain",),
    "world_facts": ("truth_ratio.world_facts", "prob.world_facts"),
    "real_authors": ("truth_ratio.real_authors", "prob.real_authors"),
}


def check_splits(splits: dict[str, SplitRows]) -> dict[str, str]:
    """Raises DataError at the first broken rule; returns the metrics the rows cannot support -> why."""
    for split in splits.values():
        check_unique_questions(split)
    forget = splits["forget"]
    _check_in_full(forget, splits["full"], "the target model learns full, so it never learnt this row",
                   same_answer=True)
    _check_in_full(splits["retain"], splits["full"], "the retain split is the part of full that is kept")
    for retain_split in ("retain", "eval_retain"):
        check_disjoint(forget, splits[retain_split], "a question cannot be both forgotten and retained")
    if "holdout" in splits:
        check_disjoint(splits["holdout"], splits["full"], "holdout rows are about what the target never learnt")
    _require_perturbed_answers(forget)
    absent: dict[str, str] = {}
    for name, metrics in _OPTIONAL_PERTURBED_METRICS.items():
        if name in splits and not has_field_on_every_row(splits[name], "perturbed_answer", "the truth ratio"):
            absent |= dict.fromkeys(metrics, f"{splits[name].where} has no perturbed_answer")
    return absent


def check_unique_questions(split: SplitRows) -> None:
    first_row_with: dict[str, int] = {}
    for number, row in split.numbered_rows():
        first = first_row_with.setdefault(row.question, number)
        if first != number:
            raise row_error(split.where, number, f"field 'question' repeats row {first} ({row.question!r}); "
                                                 "a question may appear once per split, or its answers contradict")


def _check_in_full(split: SplitRows, full: SplitRows, why: str, same_answer: bool = False) -> None:
    """Every question of `split` is one of full's (`why` says why it must be), with full's answer if `same_answer`."""
    full_row_with = {row.question: (number, row) for number, row in full.numbered_rows()}
    for number, row in split.numbered_rows():
        if row.question not in full_row_with:
            raise row_error(split.where, number, f"field 'question' {row.question!r} is not in {full.where}; {why}")
        full_number, full_row = full_row_with[row.question]
        # Stripped: a trailing newline or space is not a different answer (prompts strip answers too).
        if same_answer and row.answer.strip() != full_row.answer.strip():
            raise row_error(split.where, number, f"field 'answer' differs from {full.where}, row {full_number}, "
                                                 "for the same question; the target model learns full's answer, "
                                                 "so this one was never learnt")


def check_disjoint(split: SplitRows, other: SplitRows, why: str) -> None:
    """No question of `split` is one of `other`'s (`why` says why it must not be)."""
    other_row_with = {row.question: number for number, row in other.numbered_rows()}
    for number, row in split.numbered_rows():
        if row.question in other_row_with:
            raise row_error(split.where, number, f"field 'question' {row.question!r} is also in {other.where}, "
                                                 f"row {other_row_with[row.question]}; {why}")


def _require_perturbed_answers(forget: SplitRows) -> None:
    for number, row in forget.numbered_rows():
        if not row.perturbed_answer:
            raise row_error(forget.where, number, "field 'perturbed_answer' is missing or empty; "
                                                  "forget quality and the forget truth ratio need it on every row")


def has_field_on_every_row(split: SplitRows, field: str, needed_by: str) -> bool:
    """True when every row has `field` (not empty), False when none has; a mix is a DataError (`needed_by`: what
    needs it on every row or none)."""
    rows_with = [number for number, row in split.numbered_rows() if getattr(row, field)]
    if not rows_with:
        return False
    for number, row in split.numbered_rows():
        if not getattr(row, field):
            raise row_error(split.where, number, f"field '{field}' is missing or empty, but row {rows_with[0]} has "
                                                 f"it; {needed_by} needs it on every row or none")
    return True
