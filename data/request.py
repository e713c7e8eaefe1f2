"""A forget request: the questions whose answers a model must forget, as a user has them, and optionally the
questions whose answers it must keep.

A request file is JSON Lines (`.jsonl`: one object a line), a JSON list (`.json`), or plain text (any other
name: one question a line, blank lines skipped). In JSON, `question` is required; `answer` is optional (the
target's own greedy answer stands in where it is missing: "what the model said before"), and so are TOFU's
`paraphrased_question`, `paraphrased_answer` and `perturbed_answer`, each on every row or on none (the metrics
that need them are n/a otherwise, with the reason). Other fields are ignored.

PMC needs only the questions: it scores candidates against the model's own original answers. The answers and
TOFU's fields serve the evaluation. A request becomes a Benchmark once the target has answered the questions
that came without an answer (`Request.benchmark`); its utility probes are the built-in world facts and real
authors. With no keep file its retain set is made: the forget questions asked about other people
(data/neighbours.py), which mark where forgetting must stop, and the built-in general questions
(data/general_questions.py), which keep everything else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pmc_unlearning.data.checks import check_disjoint, check_unique_questions, has_field_on_every_row
from pmc_unlearning.data.folder import raw_rows_json, raw_rows_jsonl, read_text
from pmc_unlearning.data.general_questions import GENERAL_QUESTIONS
from pmc_unlearning.data.neighbours import neighbour_questions
from pmc_unlearning.data.reference_facts import real_authors, world_facts
from pmc_unlearning.data.rows import json_type_name, optional_text, perturbed_answers, required_text, row_error
from pmc_unlearning.data.schema import QA, Benchmark, DataError, SplitRows, sha256_of

REQUEST_SOURCE = "request"  # Benchmark.source and forget_split of a request
TARGET_ANSWER = "the target's own greedy answer"


@dataclass(frozen=True)
class RequestRow:
    """A request row: a QA whose answer may be missing (None: the target's own answer stands in)."""

    question: str
    answer: str | None = None
    paraphrased_question: str | None = None
    paraphrased_answer: str | None = None
    perturbed_answer: tuple[str, ...] = ()

    def answered(self, answers: Mapping[str, str]) -> QA:
        return QA(self.question, self.answer or answers[self.question], self.paraphrased_question,
                  self.paraphrased_answer, self.perturbed_answer)


@dataclass(frozen=True)
class Request:
    forget: SplitRows  # of RequestRow
    keep: SplitRows  # of RequestRow: the keep file's, or default_keep's
    absent: dict[str, str]  # the metrics the rows cannot give -> why (as Benchmark.absent)

    def unanswered(self) -> list[str]:
        """The questions the target answers (in order, each once): those that came without an answer."""
        return list(dict.fromkeys(row.question for row in (*self.forget.rows, *self.keep.rows) if not row.answer))

    def references(self) -> dict[str, str]:
        """What the forget and retain (keep) rows' greedy ROUGE-L are computed against, as the report says it: the
        given answers, the target's own, or which rows have which."""
        return {"forget": _reference(self.forget.rows), "retain": _reference(self.keep.rows)}

    def fingerprint(self) -> str:
        """sha256 hex of what the user gave (the target's answers are keyed with the target, not here)."""
        return sha256_of({split: [dataclasses.asdict(row) for row in rows.rows]
                          for split, rows in (("forget", self.forget), ("keep", self.keep))})

    def benchmark(self, answers: Mapping[str, str]) -> Benchmark:
        """The request as a Benchmark, `answers` (question -> the target's greedy answer) filling the missing
        answers. No fine-tune reads it: `full` is the forget and keep rows, for the benchmark's own checks."""
        forget = tuple(row.answered(answers) for row in self.forget.rows)
        keep = tuple(row.answered(answers) for row in self.keep.rows)
        origins = {"forget": (self.forget.where, self.forget.row_numbers),
                   "retain": (self.keep.where, self.keep.row_numbers),
                   "eval_retain": (self.keep.where, self.keep.row_numbers)}
        return Benchmark(source=REQUEST_SOURCE, forget_split=REQUEST_SOURCE, full=forget + keep, forget=forget,
                         retain=keep, eval_retain=keep, world_facts=tuple(world_facts()),
                         real_authors=tuple(real_authors()), absent=dict(self.absent), origins=origins)


def _reference(rows: tuple[RequestRow, ...]) -> str:
    given = sum(1 for row in rows if row.answer)
    if given == len(rows):
        return f"the given answers ({given} rows)"
    if given == 0:
        return f"{TARGET_ANSWER} ({len(rows)} rows)"
    return f"the given answers ({given} rows), else {TARGET_ANSWER} ({len(rows) - given} rows)"


def load_request(forget_file: Path, keep_file: Path | None) -> Request:
    """The checked request: every row parsed (a DataError names the file, the row and the field), no question
    twice in a file, none both forgotten and kept."""
    forget = read_request_file(forget_file)
    keep = read_request_file(keep_file) if keep_file else default_keep(forget)
    for split in (forget, keep):
        check_unique_questions(split)
    check_disjoint(forget, keep, "a question cannot be both forgotten and kept")
    absent = {"holdout": "a forget request has no holdout questions (about what the target never learnt), which "
                         "the membership-inference attacks score the forget answers against",
              "truth_ratio.retain": f"{keep.where} has no perturbed_answer"}
    if not has_field_on_every_row(forget, "perturbed_answer", "the forget truth ratio"):
        absent["truth_ratio.forget"] = f"{forget.where} has no perturbed_answer"
        absent["forget_quality"] = f"{forget.where} has no perturbed_answer (and a request has no retain model)"
    has_question = has_field_on_every_row(forget, "paraphrased_question", "the paraphrased forget ROUGE-L")
    has_answer = has_field_on_every_row(forget, "paraphrased_answer", "the paraphrased forget ROUGE-L")
    if has_question != has_answer:
        given = "paraphrased_question" if has_question else "paraphrased_answer"
        raise DataError(f"{forget.where}: every row has '{given}' but none has its pair; the paraphrased forget "
                        "ROUGE-L asks the paraphrased question and scores against the paraphrased answer")
    if not has_question:
        absent["forget_para"] = f"{forget.where} has no paraphrased_question and paraphrased_answer"
    return Request(forget, keep, absent)


def default_keep(forget: SplitRows) -> SplitRows:
    """The retain set of a request without a keep file: the neighbour questions of its forget questions, then the
    built-in general questions, none of them a forget question."""
    asked = [row.question for row in forget.rows]
    neighbours = neighbour_questions(asked)
    general = tuple(question for question in GENERAL_QUESTIONS if question not in asked)
    where = (f"{len(neighbours)} neighbour questions (data/neighbours.py) and {len(general)} built-in general "
             "questions (data/general_questions.py)")
    return SplitRows.numbered(where, tuple(RequestRow(question) for question in (*neighbours, *general)))


def read_request_file(path: Path) -> SplitRows:
    """A request file's rows (see the module's docstring for the formats), numbered as an editor numbers lines."""
    if path.suffix == ".jsonl":
        records = raw_rows_jsonl(path, hint="; a .jsonl file holds one JSON object a line (a plain question a line: "
                                             "name the file .txt)")
    elif path.suffix == ".json":
        records = raw_rows_json(path)
    else:  # plain text: a question a line
        records = [(number, {"question": line.strip()})
                   for number, line in enumerate(read_text(path).splitlines(), start=1) if line.strip()]
    if not records:
        raise DataError(f"{path}: the file has no questions")
    where = str(path)
    return SplitRows(where, tuple(_request_row(record, where, number) for number, record in records),
                     tuple(number for number, _ in records))


def _request_row(record: object, where: str, row: int) -> RequestRow:
    if not isinstance(record, Mapping):
        raise row_error(where, row, f"expected a JSON object with a 'question', got {json_type_name(record)}")
    return RequestRow(question=required_text(record, "question", where, row),
                      answer=optional_text(record, "answer", where, row),
                      paraphrased_question=optional_text(record, "paraphrased_question", where, row),
                      paraphrased_answer=optional_text(record, "paraphrased_answer", where, row),
                      perturbed_answer=perturbed_answers(record, where, row))
