"""DATA=tofu against TOFU's hub layout: tests/fixtures/tofu is laid out as the locuslab/TOFU repository and
is loaded offline through the very `datasets.load_dataset` call that loads the hub; plus the hub revisions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from pmc_unlearning.data import QA, Benchmark, DataError, load_benchmark
from pmc_unlearning.data.corpus import load_corpus

FIXTURES = Path(__file__).parent / "fixtures"
TOFU_COPY = FIXTURES / "tofu"
PERTURBED_FIELDS = ("paraphrased_question", "paraphrased_answer", "perturbed_answer")
PLAIN_CONFIGS = ("full", "forget01", "forget05", "forget10", "retain99", "retain95", "retain90",
                 "world_facts", "real_authors", "holdout01", "holdout05", "holdout10")
PERTURBED_CONFIGS = ("forget01_perturbed", "forget05_perturbed", "forget10_perturbed", "retain_perturbed",
                     "world_facts_perturbed", "real_authors_perturbed")


def _records(config: str, folder: Path = TOFU_COPY) -> list[dict[str, object]]:
    # Read with json, not through the package, so that the expectations do not depend on the loader.
    lines = (folder / f"{config}.json").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _expected_rows(config: str) -> tuple[QA, ...]:
    return tuple(
        QA(record["question"], record["answer"], record.get("paraphrased_question"),
           record.get("paraphrased_answer"), tuple(record.get("perturbed_answer", ())))
        for record in _records(config)
    )


@pytest.fixture(scope="module")
def tofu_copy_bench(offline_datasets: ModuleType) -> Benchmark:
    return load_benchmark("tofu", "forget10", tofu_path=str(TOFU_COPY))


# --- the fixture is laid out as the hub ------------------------------------------------


def test_dataset_card_names_every_tofu_config_and_its_file() -> None:
    front_matter = (TOFU_COPY / "README.md").read_text(encoding="utf-8").split("---\n")[1]
    configs = {entry["config_name"]: entry["data_files"] for entry in yaml.safe_load(front_matter)["configs"]}
    assert set(configs) == set(PLAIN_CONFIGS) | set(PERTURBED_CONFIGS)
    assert all((TOFU_COPY / data_file).is_file() for data_file in configs.values())


def test_only_the_perturbed_configs_carry_paraphrases_and_perturbed_answers() -> None:
    for config in PLAIN_CONFIGS:
        assert all(not set(PERTURBED_FIELDS) & set(record) for record in _records(config)), config
    for config in PERTURBED_CONFIGS:
        for record in _records(config):
            perturbed = record["perturbed_answer"]
            assert isinstance(perturbed, list) and perturbed and all(isinstance(text, str) for text in perturbed)
    # As on the hub, some retain_perturbed rows have no paraphrased question.
    retain_perturbed = _records("retain_perturbed")
    assert 0 < sum("paraphrased_question" not in record for record in retain_perturbed) < len(retain_perturbed)


def test_forget_splits_are_the_last_authors_and_disjoint_from_their_retain_splits() -> None:
    full = [record["question"] for record in _records("full")]
    for forget_split, retain_split in (("forget01", "retain99"), ("forget05", "retain95"), ("forget10", "retain90")):
        forget = [record["question"] for record in _records(forget_split)]
        retain = [record["question"] for record in _records(retain_split)]
        assert forget and retain + forget == full
        assert [record["question"] for record in _records(f"{forget_split}_perturbed")] == forget
    assert len(_records("forget10")) > len(_records("forget05")) == len(_records("forget01"))
    retain90 = {record["question"] for record in _records("retain90")}
    assert {record["question"] for record in _records("retain_perturbed")} < retain90


def test_the_fixture_is_what_its_script_writes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(FIXTURES / "make_tofu_fixture.py"), str(tmp_path)], check=True)
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(path.name for path in TOFU_COPY.iterdir())
    for name in written:
        assert (tmp_path / name).read_bytes() == (TOFU_COPY / name).read_bytes(), name


# --- loading it ------------------------------------------------------------------------


def test_forget_rows_come_from_the_perturbed_config(tofu_copy_bench: Benchmark) -> None:
    assert tofu_copy_bench.forget == _expected_rows("forget10_perturbed")
    assert all(row.paraphrased_question and row.paraphrased_answer and row.perturbed_answer
               for row in tofu_copy_bench.forget)


def test_retain_trains_on_the_plain_retain_split(tofu_copy_bench: Benchmark) -> None:
    assert tofu_copy_bench.retain == _expected_rows("retain90")
    assert all(not row.perturbed_answer and row.paraphrased_answer is None for row in tofu_copy_bench.retain)
    assert tofu_copy_bench.full == _expected_rows("full")


def test_eval_retain_comes_from_retain_perturbed(tofu_copy_bench: Benchmark) -> None:
    assert tofu_copy_bench.eval_retain == _expected_rows("retain_perturbed")
    assert all(row.perturbed_answer and row.paraphrased_answer for row in tofu_copy_bench.eval_retain)


def test_reference_splits_come_from_their_perturbed_configs(tofu_copy_bench: Benchmark) -> None:
    assert tofu_copy_bench.world_facts == _expected_rows("world_facts_perturbed")
    assert tofu_copy_bench.real_authors == _expected_rows("real_authors_perturbed")
    assert all(row.perturbed_answer for row in tofu_copy_bench.world_facts + tofu_copy_bench.real_authors)
    assert tofu_copy_bench.absent == {}  # every metric has the rows it needs


@pytest.mark.parametrize(("forget_split", "retain_split"), [("forget01", "retain99"), ("forget05", "retain95")])
def test_every_forget_split_loads(offline_datasets: ModuleType, forget_split: str, retain_split: str) -> None:
    bench = load_benchmark("tofu", forget_split, tofu_path=str(TOFU_COPY))
    assert bench.forget == _expected_rows(f"{forget_split}_perturbed")
    assert bench.retain == _expected_rows(retain_split)


def test_the_revision_reaches_load_dataset(offline_datasets: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, object]] = []
    real_load_dataset = offline_datasets.load_dataset

    def recording_load_dataset(path: str, name: str, **kwargs: object) -> object:
        calls.append((path, name, kwargs.get("revision")))
        return real_load_dataset(path, name, **kwargs)  # a local copy has no revisions and ignores it

    monkeypatch.setattr(offline_datasets, "load_dataset", recording_load_dataset)
    load_benchmark("tofu", "forget05", tofu_path=str(TOFU_COPY), revision="0123abcd")
    configs = ["full", "forget05_perturbed", "retain95", "retain_perturbed", "world_facts_perturbed",
               "real_authors_perturbed", "holdout05"]
    assert sorted(calls) == sorted((str(TOFU_COPY), config, "0123abcd") for config in configs)


def test_an_edited_local_copy_is_read_again(offline_datasets: ModuleType, tmp_path: Path) -> None:
    copy = tmp_path / "tofu"  # the same folder name as the fixture, whose rows `datasets` may have cached
    shutil.copytree(TOFU_COPY, copy)
    load_benchmark("tofu", tofu_path=str(copy))
    records = _records("world_facts_perturbed", copy)
    records[0]["answer"] = "Paris, on the Seine"
    (copy / "world_facts_perturbed.json").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert load_benchmark("tofu", tofu_path=str(copy)).world_facts[0].answer == "Paris, on the Seine"


# --- errors name the config --------------------------------------------------------------


def test_a_repeated_question_names_the_hub_config_and_both_rows(offline_datasets: ModuleType, tmp_path: Path) -> None:
    copy = tmp_path / "tofu"
    shutil.copytree(TOFU_COPY, copy)
    records = _records("world_facts_perturbed", copy)
    records[3] = records[1]
    (copy / "world_facts_perturbed.json").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_benchmark("tofu", tofu_path=str(copy))
    assert str(caught.value).startswith(f"{copy} (world_facts_perturbed), row 4: field 'question' repeats row 2")


def test_a_config_missing_from_the_card_is_named(offline_datasets: ModuleType, tmp_path: Path) -> None:
    copy = tmp_path / "tofu"
    shutil.copytree(TOFU_COPY, copy)
    card = (copy / "README.md").read_text(encoding="utf-8")
    (copy / "README.md").write_text(card.replace("config_name: retain_perturbed", "config_name: other"),
                                    encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{copy} \(config 'retain_perturbed'\): cannot load the config"):
        load_benchmark("tofu", tofu_path=str(copy))


def test_a_tofu_path_that_is_neither_folder_nor_reachable(offline_datasets: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_benchmark("tofu", tofu_path=str(tmp_path / "missing"))
    message = str(caught.value)
    assert message.startswith(f"could not load '{tmp_path / 'missing'}' (config 'full')")
    assert "DATA=builtin" in message and "DATA=<folder>" in message


# --- the wikitext corpus -----------------------------------------------------------------


def test_the_corpus_revision_reaches_load_dataset(offline_datasets: ModuleType,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def fake_load_dataset(*args: object, **kwargs: object) -> list[dict[str, str]]:
        calls.append((args, kwargs))
        return [{"text": " = Heading = "}, {"text": ""}, {"text": " A line of text. "}]

    monkeypatch.setattr(offline_datasets, "load_dataset", fake_load_dataset)
    assert load_corpus("wikitext", revision="feedbeef") == ["A line of text."]
    assert calls == [(("wikitext", "wikitext-2-raw-v1"), {"split": "train", "revision": "feedbeef"})]
