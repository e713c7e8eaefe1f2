"""Tests for the data package: the builtin generator, the folder loader, the load-time checks and the hub error."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from collections.abc import Collection
from pathlib import Path

import pytest

from pmc_unlearning.data import FORGET_SPLITS, QA, Benchmark, DataError, generate_builtin, load_benchmark

RETAIN_FOR = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
HOLDOUT_FOR = {"forget01": "holdout01", "forget05": "holdout05", "forget10": "holdout10"}
TOFU_FIXTURE = Path(__file__).parent / "fixtures" / "tofu"


def _row_dict(row: QA) -> dict[str, object]:
    # Written independently of the package, in TOFU's own field layout, to test the documented format.
    record = dataclasses.asdict(row)
    record["perturbed_answer"] = list(row.perturbed_answer)
    return {key: value for key, value in record.items() if value is not None}


def _write_jsonl(path: Path, rows: list[dict[str, object]] | tuple[QA, ...]) -> None:
    records = [_row_dict(row) if isinstance(row, QA) else row for row in rows]
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def _write_benchmark(folder: Path, benchmark: Benchmark) -> None:
    _write_jsonl(folder / "full.jsonl", benchmark.full)
    _write_jsonl(folder / f"{benchmark.forget_split}.jsonl", benchmark.forget)
    _write_jsonl(folder / f"{RETAIN_FOR[benchmark.forget_split]}.jsonl", benchmark.retain)
    _write_jsonl(folder / "world_facts.jsonl", benchmark.world_facts)
    _write_jsonl(folder / "real_authors.jsonl", benchmark.real_authors)
    _write_jsonl(folder / f"{HOLDOUT_FOR[benchmark.forget_split]}.jsonl", benchmark.holdout)


@pytest.fixture(scope="module")
def default_benchmark() -> Benchmark:
    return load_benchmark()


@pytest.fixture
def folder(tmp_path: Path, default_benchmark: Benchmark) -> Path:
    _write_benchmark(tmp_path, default_benchmark)
    return tmp_path


# --- builtin benchmark ---------------------------------------------------------------


def test_same_seed_same_fingerprint_and_different_seed_differs() -> None:
    assert load_benchmark(seed=3).fingerprint() == load_benchmark(seed=3).fingerprint()
    assert load_benchmark(seed=3).fingerprint() != load_benchmark(seed=4).fingerprint()


def test_fingerprint_is_a_sha256_hex_that_sees_every_field(default_benchmark: Benchmark) -> None:
    fingerprint = default_benchmark.fingerprint()
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    changed_row = dataclasses.replace(default_benchmark.forget[0], perturbed_answer=("something else",))
    changed = dataclasses.replace(default_benchmark, forget=(changed_row, *default_benchmark.forget[1:]))
    assert changed.fingerprint() != fingerprint


def test_fingerprint_is_unchanged_while_eval_retain_is_the_retain_split(default_benchmark: Benchmark) -> None:
    # What load_benchmark().fingerprint() gave before eval_retain existed: the key of models cached since.
    assert default_benchmark.eval_retain == default_benchmark.retain
    assert default_benchmark.fingerprint() == "be2c22a6140e536e00ad146f5b1aa2c9824b1235efa27bfb050d4e4b685544b9"


def test_fingerprint_sees_eval_retain_when_it_differs(default_benchmark: Benchmark) -> None:
    five = dataclasses.replace(default_benchmark, eval_retain=default_benchmark.retain[:5])
    six = dataclasses.replace(default_benchmark, eval_retain=default_benchmark.retain[:6])
    assert len({default_benchmark.fingerprint(), five.fingerprint(), six.fingerprint()}) == 3


def test_generation_ignores_global_random_state() -> None:
    import random

    random.seed(1)
    first = generate_builtin(0, 10, 3)
    random.seed(2)
    assert generate_builtin(0, 10, 3) == first


@pytest.mark.parametrize(("num_authors", "facts"), [(20, 5), (200, 8), (7, 1)])
def test_split_sizes_and_forget_plus_retain_is_full(num_authors: int, facts: int) -> None:
    splits = generate_builtin(0, num_authors, facts)
    assert len(splits["full"]) == num_authors * facts
    for forget_split, share in (("forget01", 0.01), ("forget05", 0.05), ("forget10", 0.10)):
        forget, retain = splits[forget_split], splits[RETAIN_FOR[forget_split]]
        assert len(forget) == max(1, round(share * num_authors)) * facts
        assert retain + forget == splits["full"]
        assert set(forget).isdisjoint(retain)
        assert set(forget) | set(retain) == set(splits["full"])
        assert forget == splits["full"][-len(forget):]  # the last authors, as in TOFU


def test_default_benchmark_sizes(default_benchmark: Benchmark) -> None:
    assert (len(default_benchmark.full), len(default_benchmark.forget), len(default_benchmark.retain)) == (100, 10, 90)
    assert len(default_benchmark.world_facts) >= 15 and len(default_benchmark.real_authors) >= 15


def test_author_rows_have_all_tofu_fields_and_wrong_perturbed_answers(default_benchmark: Benchmark) -> None:
    for row in default_benchmark.full:
        assert row.question and row.answer and row.paraphrased_question and row.paraphrased_answer
        assert row.paraphrased_question != row.question and row.paraphrased_answer != row.answer
        assert len(row.perturbed_answer) == 3 and len(set(row.perturbed_answer)) == 3
        assert row.answer not in row.perturbed_answer
        assert len(row.answer.split()) < 25


def test_reference_splits_have_wrong_perturbed_answers_and_ignore_the_seed() -> None:
    first, second = generate_builtin(0, 5, 2), generate_builtin(9, 5, 2)
    for split in ("world_facts", "real_authors"):
        assert first[split] == second[split]
        for row in first[split]:
            assert len(set(row.perturbed_answer)) == 3 and row.answer not in row.perturbed_answer


@pytest.mark.parametrize(("seed", "num_authors", "facts"), [(0, 20, 5), (0, 10, 4), (1, 2, 1), (2, 2, 8),
                                                          (3, 7, 1), (4, 200, 8)])
def test_generated_splits_repeat_no_question_and_pass_the_load_checks(seed: int, num_authors: int, facts: int) -> None:
    # Duplicate questions with different answers would make the benchmark contradictory.
    for split, rows in generate_builtin(seed, num_authors, facts).items():
        assert max(Counter(row.question for row in rows).values()) == 1, split
    for forget_split in FORGET_SPLITS:
        bench = load_benchmark(forget_split=forget_split, seed=seed, num_authors=num_authors, facts_per_author=facts)
        assert bench.eval_retain == bench.retain and bench.absent == {}


@pytest.mark.parametrize(("num_authors", "facts"), [(1, 5), (20, 0), (20, 9)])
def test_bad_generator_sizes(num_authors: int, facts: int) -> None:
    with pytest.raises(DataError):
        load_benchmark(num_authors=num_authors, facts_per_author=facts)


def test_bad_forget_split_lists_the_valid_ones() -> None:
    with pytest.raises(DataError, match="forget01, forget05, forget10"):
        load_benchmark(forget_split="forget20")


def test_unknown_source() -> None:
    with pytest.raises(DataError, match="'builtin', 'tofu'"):
        load_benchmark("/no/such/folder")


# --- folder source -------------------------------------------------------------------


def test_folder_round_trip_keeps_the_fingerprint(folder: Path, default_benchmark: Benchmark) -> None:
    loaded = load_benchmark(str(folder))
    assert loaded.source == str(folder)
    assert loaded.fingerprint() == default_benchmark.fingerprint()


@pytest.mark.parametrize("forget_split", FORGET_SPLITS)
def test_folder_round_trip_for_every_forget_split(tmp_path: Path, forget_split: str) -> None:
    benchmark = load_benchmark(forget_split=forget_split, num_authors=4, facts_per_author=2)
    _write_benchmark(tmp_path, benchmark)
    assert load_benchmark(str(tmp_path), forget_split).fingerprint() == benchmark.fingerprint()


def test_folder_accepts_json_lists_tofu_single_string_and_unknown_fields(folder: Path) -> None:
    rows = [{"question": "Q?", "answer": "A.", "perturbed_answer": "B.", "extra": 1}]
    (folder / "world_facts.jsonl").unlink()
    (folder / "world_facts.json").write_text(json.dumps(rows), encoding="utf-8")
    assert load_benchmark(str(folder)).world_facts == (QA("Q?", "A.", perturbed_answer=("B.",)),)


def test_folder_optional_splits_may_be_absent(folder: Path) -> None:
    for split in ("world_facts", "real_authors", "holdout10"):
        (folder / f"{split}.jsonl").unlink()
    loaded = load_benchmark(str(folder))
    assert loaded.world_facts == () and loaded.real_authors == () and loaded.holdout == ()
    assert loaded.absent == {"world_facts": f"no world_facts file in {folder}",
                             "real_authors": f"no real_authors file in {folder}",
                             "holdout": f"no holdout10 file in {folder}"}


def test_a_folder_holdout_row_about_a_learnt_question_names_both_places(folder: Path,
                                                                      default_benchmark: Benchmark) -> None:
    learnt = default_benchmark.full[3]
    _write_jsonl(folder / "holdout10.jsonl", [*default_benchmark.holdout[:2], learnt])
    with pytest.raises(DataError) as raised:
        load_benchmark(str(folder))
    assert str(raised.value).startswith(f"{folder / 'holdout10.jsonl'}, row 3: field 'question' ")
    assert f"is also in {folder / 'full.jsonl'}, row 4;" in str(raised.value)


# --- the holdout split ---------------------------------------------------------------


@pytest.mark.parametrize(("num_authors", "facts"), [(20, 5), (200, 8), (7, 1)])
def test_each_holdout_split_is_as_large_as_its_forget_split_and_outside_full(num_authors: int, facts: int) -> None:
    splits = generate_builtin(0, num_authors, facts)
    learnt = {row.question for row in splits["full"]}
    for forget_split, holdout_split in HOLDOUT_FOR.items():
        holdout = splits[holdout_split]
        assert len(holdout) == len(splits[forget_split]) and not learnt & {row.question for row in holdout}
    assert splits["holdout01"] == splits["holdout10"][:len(splits["holdout01"])]


def test_the_holdout_split_leaves_the_others_and_their_fingerprint_as_they_were(default_benchmark: Benchmark) -> None:
    # The holdout authors are drawn after everything else: test_fingerprint_is_unchanged_... pins the rest.
    changed = dataclasses.replace(default_benchmark, holdout=default_benchmark.holdout[1:])
    assert changed.fingerprint() == default_benchmark.fingerprint()
    assert changed.holdout_fingerprint() != default_benchmark.holdout_fingerprint()
    assert load_benchmark().holdout_fingerprint() == default_benchmark.holdout_fingerprint()


@pytest.mark.parametrize("forget_split", FORGET_SPLITS)
def test_a_tofu_copy_gives_its_holdout_config_and_without_one_the_holdout_is_absent(
        offline_datasets, tmp_path: Path, forget_split: str) -> None:
    holdout_split = HOLDOUT_FOR[forget_split]
    expected = generate_builtin(0, 20, 2)[holdout_split]
    loaded = load_benchmark("tofu", forget_split, tofu_path=str(TOFU_FIXTURE))
    assert [(row.question, row.answer) for row in loaded.holdout] == [(row.question, row.answer) for row in expected]
    assert "holdout" not in loaded.absent

    copy = tmp_path / "tofu"
    shutil.copytree(TOFU_FIXTURE, copy)
    entry = f'  - config_name: {holdout_split}\n    data_files: "{holdout_split}.json"\n'
    card = (copy / "README.md").read_text()
    assert entry in card
    (copy / "README.md").write_text(card.replace(entry, ""))
    without = load_benchmark("tofu", forget_split, tofu_path=str(copy))
    assert without.holdout == () and f"(config '{holdout_split}')" in without.absent["holdout"]


def test_missing_split_file_names_folder_and_expected_files(folder: Path) -> None:
    (folder / "retain90.jsonl").unlink()
    with pytest.raises(DataError) as caught:
        load_benchmark(str(folder))
    assert str(folder) in str(caught.value)
    assert "retain90.jsonl or retain90.json" in str(caught.value)


def test_both_jsonl_and_json_for_one_split_is_ambiguous(folder: Path) -> None:
    (folder / "full.json").write_text("[]", encoding="utf-8")
    with pytest.raises(DataError, match="full.jsonl and full.json"):
        load_benchmark(str(folder))


_DROP = object()  # marks a field to remove from the row


def _good_forget_row() -> dict[str, object]:
    return {"question": "Q?", "answer": "A.", "paraphrased_question": "Q2?",
            "paraphrased_answer": "A2.", "perturbed_answer": ["B.", "C."]}


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ({"question": _DROP}, "field 'question' is missing"),
        ({"answer": "   "}, "field 'answer' is empty"),
        ({"question": 7}, "field 'question' must be a string, got number"),
        ({"paraphrased_answer": ""}, "field 'paraphrased_answer' is empty"),
        ({"paraphrased_question": None}, "field 'paraphrased_question' is missing"),
        ({"perturbed_answer": {"a": 1}}, "field 'perturbed_answer' must be a list of strings, got object"),
        ({"perturbed_answer": ["B.", ""]}, "field 'perturbed_answer' item 2 is empty"),
        ({"perturbed_answer": ["B.", 3]}, "field 'perturbed_answer' item 2 must be a string, got number"),
    ],
)
def test_bad_forget_row_names_file_row_and_field(folder: Path, bad_row: dict[str, object], expected: str) -> None:
    row = {key: value for key, value in (_good_forget_row() | bad_row).items() if value is not _DROP}
    _write_jsonl(folder / "forget10.jsonl", [_good_forget_row(), _good_forget_row(), row])
    with pytest.raises(DataError) as caught:
        load_benchmark(str(folder))
    assert str(caught.value) == f"{folder / 'forget10.jsonl'}, row 3: {expected}"


def test_paraphrases_are_optional_outside_the_forget_split(folder: Path, default_benchmark: Benchmark) -> None:
    _write_jsonl(folder / "retain90.jsonl", [{"question": "Q?", "answer": "A.", "paraphrased_answer": ""}])
    _write_jsonl(folder / "full.jsonl", (*default_benchmark.full, QA("Q?", "A.")))  # retain rows are rows of full
    assert load_benchmark(str(folder)).retain == (QA("Q?", "A."),)


def test_invalid_json_line_is_reported_by_line_number(folder: Path) -> None:
    path = folder / "full.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[4] = '{"question": "Q?", "answer": '
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=r"full\.jsonl, row 5: invalid JSON"):
        load_benchmark(str(folder))


def test_row_that_is_not_an_object(folder: Path) -> None:
    _write_jsonl(folder / "retain90.jsonl", [{"question": "Q?", "answer": "A."}, ["Q?", "A."]])
    with pytest.raises(DataError, match=r"retain90\.jsonl, row 2: expected a JSON object, got list"):
        load_benchmark(str(folder))


def test_json_file_rows_are_counted_from_one(folder: Path) -> None:
    (folder / "real_authors.jsonl").unlink()
    rows = [{"question": "Q?", "answer": "A."}, {"question": "Q?", "answer": ""}]
    (folder / "real_authors.json").write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"real_authors\.json, row 2: field 'answer' is empty"):
        load_benchmark(str(folder))


def test_empty_split_file(folder: Path) -> None:
    (folder / "full.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"full\.jsonl: the file has no rows"):
        load_benchmark(str(folder))


# --- eval_retain and the perturbed answers the metrics need ----------------------------


def _scored_rows(benchmark: Benchmark, split_file: str) -> tuple[QA, ...]:
    """Rows for a file the evaluation scores with perturbed answers (retain90 when there is no retain_perturbed)."""
    return {"world_facts.jsonl": benchmark.world_facts, "real_authors.jsonl": benchmark.real_authors,
            "retain_perturbed.jsonl": benchmark.retain[:5], "retain90.jsonl": benchmark.retain}[split_file]


def _strip_perturbed(rows: tuple[QA, ...], row_indexes: Collection[int]) -> list[QA]:
    return [dataclasses.replace(row, perturbed_answer=()) if index in row_indexes else row
            for index, row in enumerate(rows)]


def _load_error(folder: Path) -> str:
    with pytest.raises(DataError) as caught:
        load_benchmark(str(folder))
    return str(caught.value)


def test_folder_retain_perturbed_file_is_what_the_evaluation_scores(folder: Path, default_benchmark: Benchmark) -> None:
    _write_jsonl(folder / "retain_perturbed.jsonl", default_benchmark.retain[:7])
    loaded = load_benchmark(str(folder))
    assert loaded.eval_retain == default_benchmark.retain[:7]
    assert loaded.retain == default_benchmark.retain  # the retain term still trains on retain90


def test_without_retain_perturbed_the_evaluation_scores_the_retain_split(folder: Path) -> None:
    loaded = load_benchmark(str(folder))
    assert loaded.eval_retain == loaded.retain and len(loaded.retain) == 90


@pytest.mark.parametrize(
    ("split_file", "metrics"),
    [
        ("world_facts.jsonl", ("truth_ratio.world_facts", "prob.world_facts")),
        ("real_authors.jsonl", ("truth_ratio.real_authors", "prob.real_authors")),
        ("retain_perturbed.jsonl", ("truth_ratio.retain",)),
        ("retain90.jsonl", ("truth_ratio.retain",)),  # no retain_perturbed file: retain90 is scored
    ],
)
def test_a_split_without_any_perturbed_answer_makes_its_metrics_absent(
    folder: Path, default_benchmark: Benchmark, split_file: str, metrics: tuple[str, ...]
) -> None:
    rows = _scored_rows(default_benchmark, split_file)
    _write_jsonl(folder / split_file, _strip_perturbed(rows, range(len(rows))))
    loaded = load_benchmark(str(folder))
    assert loaded.absent == dict.fromkeys(metrics, f"{folder / split_file} has no perturbed_answer")


@pytest.mark.parametrize("split_file", ["world_facts.jsonl", "real_authors.jsonl", "retain_perturbed.jsonl",
                                        "retain90.jsonl"])
def test_a_split_where_only_some_rows_have_perturbed_answers_is_refused(
    folder: Path, default_benchmark: Benchmark, split_file: str
) -> None:
    rows = _scored_rows(default_benchmark, split_file)
    _write_jsonl(folder / split_file, _strip_perturbed(rows, [2, 3]))
    assert _load_error(folder).startswith(
        f"{folder / split_file}, row 3: field 'perturbed_answer' is missing or empty, but row 1 has it")


def test_a_forget_row_without_perturbed_answers_is_refused(folder: Path, default_benchmark: Benchmark) -> None:
    _write_jsonl(folder / "forget10.jsonl", _strip_perturbed(default_benchmark.forget, [4]))
    assert _load_error(folder).startswith(f"{folder / 'forget10.jsonl'}, row 5: field 'perturbed_answer' is missing")


# --- sanity of the rows --------------------------------------------------------------


@pytest.mark.parametrize("split", ["full", "forget10", "retain90", "world_facts"])
def test_a_repeated_question_names_the_file_and_both_rows(folder: Path, split: str) -> None:
    path = folder / f"{split}.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _load_error(folder).startswith(f"{path}, row 6: field 'question' repeats row 2")


@pytest.mark.parametrize("split, file, index", [("forget", "forget10.jsonl", 3), ("retain", "retain90.jsonl", 6)])
def test_a_forget_or_retain_row_missing_from_full_is_named(split: str, file: str, index: int, folder: Path,
                                                           default_benchmark: Benchmark) -> None:
    missing = getattr(default_benchmark, split)[index]
    _write_jsonl(folder / "full.jsonl", tuple(row for row in default_benchmark.full if row != missing))
    assert _load_error(folder).startswith(
        f"{folder / file}, row {index + 1}: field 'question' {missing.question!r} is not in {folder / 'full.jsonl'}")


def test_a_forget_answer_that_differs_from_fulls_names_both_rows(folder: Path, default_benchmark: Benchmark) -> None:
    changed = dataclasses.replace(default_benchmark.forget[2], answer="Nobody knows.")
    _write_jsonl(folder / "forget10.jsonl", (*default_benchmark.forget[:2], changed, *default_benchmark.forget[3:]))
    full_row = 1 + default_benchmark.full.index(default_benchmark.forget[2])
    assert _load_error(folder).startswith(
        f"{folder / 'forget10.jsonl'}, row 3: field 'answer' differs from {folder / 'full.jsonl'}, row {full_row}, "
        "for the same question")


def test_answers_that_differ_only_by_surrounding_spaces_are_the_same(folder: Path, default_benchmark: Benchmark) -> None:
    padded = dataclasses.replace(default_benchmark.forget[0], answer=default_benchmark.forget[0].answer + "\n")
    _write_jsonl(folder / "forget10.jsonl", (padded, *default_benchmark.forget[1:]))
    assert load_benchmark(str(folder), "forget10").forget[0] == padded


def test_a_benchmark_names_where_each_row_was_read(folder: Path, default_benchmark: Benchmark) -> None:
    path = folder / "world_facts.jsonl"
    path.write_text("\n" + path.read_text(encoding="utf-8"), encoding="utf-8")  # row numbers are line numbers
    loaded = load_benchmark(str(folder), "forget10")
    assert loaded.row_place("world_facts", 0) == f"{path}, row 2"
    assert loaded.row_place("eval_retain", 3) == f"{folder / 'retain90.jsonl'}, row 4"
    assert default_benchmark.row_place("forget", 1) == "builtin authors benchmark (forget10), row 2"
    in_memory = dataclasses.replace(default_benchmark, origins={})
    assert in_memory == default_benchmark and in_memory.row_place("retain", 0) == "the retain split, row 1"


def test_a_question_both_forgotten_and_retained_names_both_places(folder: Path, default_benchmark: Benchmark) -> None:
    _write_jsonl(folder / "retain90.jsonl", (*default_benchmark.retain, default_benchmark.forget[1]))
    assert _load_error(folder).startswith(
        f"{folder / 'forget10.jsonl'}, row 2: field 'question' {default_benchmark.forget[1].question!r} "
        f"is also in {folder / 'retain90.jsonl'}, row 91")


def test_a_forget_question_in_retain_perturbed_is_refused(folder: Path, default_benchmark: Benchmark) -> None:
    _write_jsonl(folder / "retain_perturbed.jsonl", (*default_benchmark.retain[:3], default_benchmark.forget[0]))
    assert _load_error(folder).startswith(
        f"{folder / 'forget10.jsonl'}, row 1: field 'question' {default_benchmark.forget[0].question!r} "
        f"is also in {folder / 'retain_perturbed.jsonl'}, row 4")


# --- hub source ----------------------------------------------------------------------


def test_unreachable_hub_says_how_to_work_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    # `datasets` reads these at import time, which may already have happened; an empty
    # cache makes sure nothing cached from an earlier run satisfies the request.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)
    with pytest.raises(DataError) as caught:
        load_benchmark("tofu")
    message = str(caught.value)
    assert "locuslab/TOFU" in message and "could not be reached" in message
    assert "DATA=builtin" in message and "DATA=<folder>" in message
