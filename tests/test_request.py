"""Forget requests (data/request.py): the files a practitioner has, read into rows, checked with errors that name
the file, the row and the field, and made into a benchmark once the target has answered what came unanswered."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pmc_unlearning.configs import ConfigError, load_config
from pmc_unlearning.data import DataError
from pmc_unlearning.data.general_questions import GENERAL_QUESTIONS
from pmc_unlearning.data.reference_facts import real_authors, world_facts
from pmc_unlearning.data.request import load_request
from pmc_unlearning.models.fingerprint import content_fingerprint, fingerprint_folder


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_plain_text_is_a_question_a_line_and_the_target_answers_every_one(tmp_path):
    forget = tmp_path / "forget.txt"
    forget.write_text("Where was Ada born?\n\n  What does Ada write?  \n")
    request = load_request(forget, None)
    assert [row.question for row in request.forget.rows] == ["Where was Ada born?", "What does Ada write?"]
    assert request.forget.row_numbers == (1, 3)  # as an editor numbers the lines
    # Without a keep file the target keeps its answers to the same questions about others, and general ones.
    neighbours = ["Where was Helen Carter born?", "Where was Samuel Okoro born?", "Where was Lucia Romano born?",
                  "What does Helen Carter write?", "What does Samuel Okoro write?", "What does Lucia Romano write?"]
    assert request.unanswered() == ["Where was Ada born?", "What does Ada write?", *neighbours, *GENERAL_QUESTIONS]
    assert request.keep.where == ("6 neighbour questions (data/neighbours.py) and 48 built-in general questions "
                                  "(data/general_questions.py)")
    assert request.references() == {"forget": "the target's own greedy answer (2 rows)",
                                     "retain": f"the target's own greedy answer ({6 + len(GENERAL_QUESTIONS)} rows)"}
    # What a question-only request cannot give is named, with its reason, never a silent 0.
    assert {"forget_para", "truth_ratio.forget", "forget_quality", "holdout", "truth_ratio.retain"} <= set(request.absent)
    bench = request.benchmark({question: f"said: {question}" for question in request.unanswered()})
    assert [row.answer for row in bench.forget] == ["said: Where was Ada born?", "said: What does Ada write?"]
    assert bench.retain == bench.eval_retain and len(bench.retain) == 6 + len(GENERAL_QUESTIONS)
    assert bench.world_facts == tuple(world_facts()) and bench.real_authors == tuple(real_authors())
    assert bench.holdout == ()


def test_given_answers_are_kept_and_only_the_missing_ones_come_from_the_target(tmp_path):
    forget = write_jsonl(tmp_path / "forget.jsonl", [
        {"question": "Where was Ada born?", "answer": "In Oslo.", "perturbed_answer": ["In Rome.", "In Lima."]},
        {"question": "What does Ada write?", "note": "other fields are ignored", "perturbed_answer": "Poems."}])
    keep = write_jsonl(tmp_path / "keep.jsonl", [{"question": "Where was Bo born?", "answer": "In Turku."},
                                                 {"question": "What does Bo write?"}])
    request = load_request(forget, keep)
    assert request.unanswered() == ["What does Ada write?", "What does Bo write?"]
    assert request.references() == {
        "forget": "the given answers (1 rows), else the target's own greedy answer (1 rows)",
        "retain": "the given answers (1 rows), else the target's own greedy answer (1 rows)"}
    assert "truth_ratio.forget" not in request.absent  # every forget row has perturbed answers
    bench = request.benchmark({"What does Ada write?": "Novels.", "What does Bo write?": "Essays."})
    assert [(row.answer, row.perturbed_answer) for row in bench.forget] == [("In Oslo.", ("In Rome.", "In Lima.")),
                                                                            ("Novels.", ("Poems.",))]
    assert [row.answer for row in bench.retain] == ["In Turku.", "Essays."]


def test_the_fingerprint_is_of_what_was_given(tmp_path):
    first = load_request(write_jsonl(tmp_path / "a.jsonl", [{"question": "Q?"}]), None)
    same = load_request(write_jsonl(tmp_path / "b.jsonl", [{"question": "Q?"}]), None)
    answered = load_request(write_jsonl(tmp_path / "c.jsonl", [{"question": "Q?", "answer": "A."}]), None)
    assert first.fingerprint() == same.fingerprint() != answered.fingerprint()


@pytest.mark.parametrize("rows,keep,message", [
    ([{"answer": "In Oslo."}], None, "forget.jsonl, row 1: field 'question' is missing"),
    ([{"question": "Q1?"}, {"question": 3}], None, "forget.jsonl, row 2: field 'question' must be a string, got number"),
    ([{"question": "Q1?"}, {"question": "Q1?"}], None, "forget.jsonl, row 2: field 'question' repeats row 1"),
    ([{"question": "Q1?", "perturbed_answer": ["x"]}, {"question": "Q2?"}], None,
     "forget.jsonl, row 2: field 'perturbed_answer' is missing or empty, but row 1 has it"),
    ([{"question": "Q1?", "paraphrased_question": "Q1 again?"}], None,
     "every row has 'paraphrased_question' but none has its pair"),
    ([{"question": "Q1?"}], [{"question": "Q2?"}, {"question": "Q1?"}],
     "forget.jsonl, row 1: field 'question' 'Q1?' is also in"),
    (["Q1?"], None, "forget.jsonl, row 1: expected a JSON object with a 'question', got string"),
])
def test_bad_request_rows_are_refused_naming_file_row_and_field(tmp_path, rows, keep, message):
    forget = write_jsonl(tmp_path / "forget.jsonl", rows)
    keep_file = write_jsonl(tmp_path / "keep.jsonl", keep) if keep else None
    with pytest.raises(DataError, match=message.replace("?", r"\?").replace("(", r"\(")):
        load_request(forget, keep_file)


def test_unreadable_empty_and_malformed_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="none.txt: cannot read the file"):
        load_request(tmp_path / "none.txt", None)
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(DataError, match="empty.txt: the file has no questions"):
        load_request(tmp_path / "empty.txt", None)
    (tmp_path / "lines.jsonl").write_text("Where was Ada born?\n")
    with pytest.raises(DataError, match=r"lines.jsonl, row 1: invalid JSON .*name the file \.txt"):
        load_request(tmp_path / "lines.jsonl", None)


def test_a_request_unlearns_its_model_as_it_is_and_has_no_retain_model(tmp_path):
    forget = tmp_path / "q.txt"
    forget.write_text("Q?\n")
    outside = ["allow_external_dirs=true", f"data.forget={forget}"]
    with pytest.raises(ConfigError, match="set target.finetune=false"):
        load_config(None, outside)
    with pytest.raises(ConfigError, match="a forget request has no retain model"):
        load_config(None, [*outside, "target.finetune=false", "eval.retain_model=true"])
    with pytest.raises(ConfigError, match="set data.forget too"):
        load_config(None, [f"data.keep={forget}"])
    assert load_config(None, [*outside, "target.finetune=false"]).data.forget == forget


def test_a_models_content_fingerprint_follows_its_bytes_not_its_copy(tiny_model, tmp_path):
    copy = Path(shutil.copytree(tiny_model, tmp_path / "copy"))
    weights = next(copy.glob("*.safetensors"))
    weights.touch()  # another mtime: the cheap fingerprint moves, the content one does not
    assert fingerprint_folder(copy) != fingerprint_folder(tiny_model)
    assert content_fingerprint(copy) == content_fingerprint(tiny_model)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert content_fingerprint(copy) != content_fingerprint(tiny_model)
