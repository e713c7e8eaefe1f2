"""A catalogue of bad inputs through the real command line (`python -m pmc_unlearning.orchestrator ...`): each is refused with
exit code 2 and one line that names the culprit, before anything under runs/ or the cache is written.

Every case runs in a second: the command line checks the config, the data and the model folder before it
imports torch, Ray or vLLM.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pmc_unlearning.data import generate_builtin

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick

PROJECT = Path(__file__).resolve().parents[1]
SPLIT_FILES = ("full", "forget10", "retain90", "world_facts", "real_authors")


def row(qa) -> dict:
    record = {k: v for k, v in dataclasses.asdict(qa).items() if v is not None}
    record["perturbed_answer"] = list(qa.perturbed_answer)
    return record


def write_data(folder: Path, change=None) -> str:
    """A valid data folder (the small built-in benchmark as .jsonl files), then `change(folder, rows)`."""
    folder.mkdir()
    rows = {split: [row(qa) for qa in qas] for split, qas in generate_builtin(0, 10, 4).items() if split in SPLIT_FILES}
    if change:
        change(rows)
    for split, records in rows.items():
        if records is not None:
            (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(folder)


def write_model(folder: Path, files: dict[str, str | bytes]) -> str:
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(folder)


def write_preset(path: Path, content: str | bytes) -> str:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def data_case(rows=None, files=None):
    """The command line of a job on a valid data folder, broken by `rows(records by split)` before it is
    written and by `files(folder)` after."""
    def args(d: Path) -> list[str]:
        folder = write_data(d / "data", rows)
        if files:
            files(Path(folder))
        return ["unlearn", "--set", f"data.source={folder}"]
    return args


def model_case(files: dict[str, str | bytes], command: str = "unlearn"):
    """The command line of a job on a model folder that holds only `files`."""
    return lambda d: [command, "--set", f"model={write_model(d / 'm', files)}"]


def drop_last_brace_of_row_3(folder: Path) -> None:
    lines = (folder / "full.jsonl").read_text().splitlines()
    lines[2] = lines[2][:-1]
    (folder / "full.jsonl").write_text("\n".join(lines) + "\n")


def full_as_json_object(folder: Path) -> None:
    (folder / "full.jsonl").unlink()
    (folder / "full.json").write_text('{"rows": []}')


def alias_bomb(levels: int = 10) -> str:
    """"Billion laughs": each line an anchored list of ten aliases of the line before, 10**levels values in all."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def batch_case(content: str, *flags: str):
    """The command line of `batch` on a batch file that holds `content`, then `flags`."""
    return lambda d: ["batch", write_preset(d / "b.yaml", content), *flags]


def foreign_folder(folder: Path) -> list[str]:
    """A folder of the user's at `folder` (no arguments to add)."""
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    return []


def request_args(forget, keep=None) -> list[str]:
    """`make forget`'s settings for a request of the files `forget` and `keep`."""
    return ["--set", "target.finetune=false", "--set", f"data.forget={forget}",
            *(["--set", f"data.keep={keep}"] if keep else [])]


CONFIG_JSON = '{"model_type": "llama"}'
DEFAULT = str(PROJECT / "configs" / "default.yaml")

# (id, command line after `python -m pmc_unlearning.orchestrator`, what the message must name). A callable builds its
# inputs in the test's own folder first.
CASES = [
    # --- configuration --------------------------------------------------------------------------------
    ("unknown-key", ["unlearn", "--set", "pmc.num_sampels=4"], "pmc.num_sampels: Extra inputs are not permitted"),
    ("bool-as-rate", ["unlearn", "--set", "pmc.lr=yes"], "pmc.lr: must be a finite number, got true"),
    ("bool-as-count", ["unlearn", "--set", "pmc.rounds=true"], "pmc.rounds: must be a whole number, got true"),
    ("nan-temperature", ["unlearn", "--set", "pmc.temperature=.nan"], "pmc.temperature: must be a finite number"),
    ("inf-rate", ["unlearn", "--set", "pmc.lr=inf"], "pmc.lr: must be a finite number, got 'inf'"),
    ("fractional-count", ["unlearn", "--set", "pmc.rounds=2.5"], "pmc.rounds: must be a whole number, got 2.5"),
    ("zero-temperature", ["unlearn", "--set", "pmc.temperature=0"], "pmc.temperature: Input should be greater than or equal to 0.01"),
    ("unknown-forget-split", ["unlearn", "--set", "data.forget_split=forget3"], "data.forget_split"),
    ("unknown-method", ["unlearn", "--set", "method=ru"], "method: Input should be"),
    ("unknown-prompt", ["unlearn", "--set", "prompt=fancy"], "prompt: Input should be 'auto', 'plain' or 'chat'"),
    ("override-without-value", ["unlearn", "--set", "pmc.rounds"], "override 'pmc.rounds' is not of the form key.sub=value"),
    ("override-bad-yaml", ["unlearn", "--set", "pmc.lr=[1"], "override 'pmc.lr=[1': not valid YAML: expected ',' or ']', but got '<stream end>' (line 1, column 3)"),
    ("preset-missing", lambda d: ["unlearn", "--config", str(d / "nope.yaml")], "nope.yaml does not exist"),
    ("preset-folder", lambda d: ["unlearn", "--config", str(d)], "is a folder, not a YAML file"),
    ("preset-not-utf8", lambda d: ["unlearn", "--config", write_preset(d / "latin1.yaml", "name: caf\xe9\n".encode("latin-1"))],
     "latin1.yaml is not UTF-8 text"),
    ("preset-bad-yaml", lambda d: ["unlearn", "--config", write_preset(d / "bad.yaml", "pmc: [1, 2\n")], "bad.yaml: not valid YAML"),
    ("preset-not-a-mapping", lambda d: ["unlearn", "--config", write_preset(d / "list.yaml", "- a\n- b\n")],
     "list.yaml: the top level must be a mapping"),
    ("preset-duplicate-key", lambda d: ["unlearn", "--config", write_preset(d / "dup.yaml", "pmc:\n  lr: 1.0e-4\n  lr: 1.0e-3\n")],
     "dup.yaml, line 3: pmc.lr is given twice (first on line 2)"),
    ("method-settings-bad-value", lambda d: ["unlearn", "--config", write_preset(
        d / "ms.yaml", 'method_settings:\n  npo: ["baseline.lr=abc"]\n')],
     "method_settings.npo: 'baseline.lr=abc': baseline.lr: must be a finite number, got 'abc'"),
    ("method-settings-unknown-key", lambda d: ["compare", "--config", write_preset(
        d / "ms.yaml", 'method_settings:\n  idk: ["baseline.lrr=1.0e-4"]\n')], "method_settings.idk: 'baseline.lrr=1.0e-4'"),
    ("method-settings-sets-method", lambda d: ["unlearn", "--config", write_preset(
        d / "ms.yaml", 'method_settings:\n  npo: ["method=idk"]\n')], "a method's settings cannot set method"),
    ("name-partial", ["unlearn", "--set", "name=x.partial"], "name: must not end in .partial or .previous"),
    ("name-previous", ["unlearn", "--set", "name=x.previous"], "got 'x.previous'"),
    ("name-path", ["unlearn", "--set", "name=../escape"], "name: String should match pattern"),
    ("name-too-long", ["unlearn", "--set", f"name={'n' * 250}"], "name: must be at most 100 characters, got 250"),
    ("seed-negative", ["unlearn", "--set", "pmc.seed=-1"], "pmc.seed: Input should be greater than or equal to 0"),
    ("seed-negative-data", ["eval", "--set", "data.seed=-3"], "data.seed: Input should be greater than or equal to 0"),
    ("seed-beyond-numpy", ["unlearn", "--set", "engine.seed=4294967296"], "engine.seed: Input should be less than 4294967296"),
    ("eval-corpus-unknown", ["unlearn", "--set", "eval.corpus=wikipedia"], "eval.corpus: Input should be 'builtin' or 'wikitext'"),
    ("preset-alias-bomb", lambda d: ["unlearn", "--config", write_preset(d / "bomb.yaml", alias_bomb())],
     "bomb.yaml, line 1: YAML anchor &a0: anchors and aliases are not accepted here"),
    ("preset-alias", lambda d: ["unlearn", "--config", write_preset(d / "alias.yaml", "pmc:\n  lr: 1.0e-4\nbaseline: *lr\n")],
     "alias.yaml, line 3: YAML alias *lr"),
    ("preset-nested-too-deeply", lambda d: ["unlearn", "--config", write_preset(d / "deep.yaml", "a: " + "[" * 5000)],
     "deep.yaml: nested too deeply to read"),
    ("runs-dir-project", ["unlearn", "--set", f"runs_dir={PROJECT}"], f"runs_dir: {PROJECT} is the project folder"),
    ("runs-dir-in-code", ["unlearn", "--set", "runs_dir=configs/runs"], f"runs_dir: {PROJECT}/configs/runs lies in the project's configs/ folder"),
    ("cache-dir-in-venv", ["unlearn", "--set", "cache_dir=.venv/cache"], f"cache_dir: {PROJECT}/.venv/cache lies in the project's .venv/ folder"),
    ("runs-dir-outside", lambda d: ["unlearn", "--set", "allow_external_dirs=false", "--set", "cache_dir=.cache",
                                    "--set", f"runs_dir={d / 'elsewhere'}"],
     "runs_dir: {d}/elsewhere lies outside the project folder"),
    ("cache-dir-outside", lambda d: ["unlearn", "--set", "allow_external_dirs=false", "--set", "runs_dir=runs",
                                     "--set", f"cache_dir={d / 'elsewhere'}"],
     "cache_dir: {d}/elsewhere lies outside the project folder"),
    # --- batch files ----------------------------------------------------------------------------------
    ("batch-grid-empty", batch_case("grid:\n  method: []\n"), "b.yaml: grid.method: no values, so the grid makes no trial"),
    ("batch-seed-in-grid-and-repeats", batch_case("grid:\n  pmc.seed: [1, 2]\nrepeats: 2\n"),
     "b.yaml: grid.pmc.seed: is in seed_keys, which each of the 2 repeats sets to its own seed"),
    ("batch-seed-in-variant-and-repeats", batch_case("variants:\n  - {}\n  - {target.seed: 3}\nrepeats: 3\n"
                                                     "seed_keys: [pmc.seed, target.seed]\n"),
     "b.yaml: variants.1.target.seed: is in seed_keys"),
    ("batch-too-many-trials", batch_case("grid:\n  pmc.rounds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nrepeats: 101\n"),
     "b.yaml: grid x variants x repeats make 1010 trials; a batch runs 1000 at most"),
    ("batch-name-too-long", batch_case(f"name: {'b' * 200}\ngrid:\n  method: [pmc]\n"), "name: must be at most 120 characters, got 200"),
    ("batch-negative-seed-in-grid", batch_case("grid:\n  eval.seed: [0, -1]\n"), "eval.seed: Input should be greater than or equal to 0"),
    ("batch-alias-bomb", batch_case(alias_bomb()), "b.yaml, line 1: YAML anchor &a0"),
    ("batch-storage-in-code", batch_case(f"grid:\n  method: [pmc]\nstorage_path: {PROJECT}/tests/tune\n"),
     f"b.yaml: storage_path: {PROJECT}/tests/tune lies in the project's tests/ folder"),
    ("batch-storage-outside", lambda d: ["batch", write_preset(d / "b.yaml", f"grid:\n  method: [pmc]\nstorage_path: {d / 'tune'}\n"),
                                         "--set", "allow_external_dirs=false", "--set", "runs_dir=runs", "--set", "cache_dir=.cache"],
     "b.yaml: storage_path: {d}/tune lies outside the project folder"),
    # --- folders the project did not make (tests/test_run_folder.py has the rest) ----------------------
    ("run-folder-not-ours", ["unlearn", "--config", str(PROJECT / "configs" / "smoke.yaml"), "--set", "name=default"],
     "default is not a folder this project made (it holds eval.json)"),
    ("batch-storage-not-ours", lambda d: ["batch", write_preset(d / "b.yaml", f"base: configs/smoke.yaml\ngrid:\n  method: [pmc]\n"
                                                                             f"storage_path: {d / 'store'}\n"),
                                          *foreign_folder(d / "store" / "b")],
     "store/b is not a folder this project made (it holds notes.txt)"),
    # --- command line ---------------------------------------------------------------------------------
    ("methods-empty", ["compare", "--methods", ""], "--methods: no method given"),
    ("methods-unknown", ["compare", "--methods", "pmc,ru"], "--methods: unknown ['ru']"),
    ("methods-twice", ["compare", "--methods", "npo,pmc,npo"], "--methods: ['npo'] given more than once"),
    ("unknown-command", ["frobnicate"], "invalid choice: 'frobnicate'"),
    ("unknown-flag", ["unlearn", "--bogus"], "unrecognized arguments: --bogus"),
    # --- data -----------------------------------------------------------------------------------------
    ("data-source-missing", lambda d: ["unlearn", "--set", f"data.source={d / 'nowhere'}"], "unknown data source"),
    ("data-no-full", data_case(rows=lambda r: r.update(full=None)),
     "missing the 'full' split"),
    ("data-empty-answer", data_case(rows=lambda r: r['forget10'][1].update(answer='')),
     "forget10.jsonl, row 2: field 'answer' is empty"),
    ("data-answer-not-text", data_case(rows=lambda r: r['retain90'][4].update(answer=7)),
     "retain90.jsonl, row 5: field 'answer' must be a string, got number"),
    ("data-bad-json", data_case(files=drop_last_brace_of_row_3), "full.jsonl, row 3: invalid JSON"),
    ("data-perturbed-on-some-rows", data_case(rows=lambda r: r['world_facts'][1].pop('perturbed_answer')),
     "world_facts.jsonl, row 2: field 'perturbed_answer' is missing or empty, but row 1 has it"),
    ("data-forget-without-perturbed", data_case(rows=lambda r: r['forget10'][0].pop('perturbed_answer')),
     "forget10.jsonl, row 1: field 'perturbed_answer' is missing or empty"),
    ("data-forget-without-paraphrase", data_case(rows=lambda r: r['forget10'][2].pop('paraphrased_answer')),
     "forget10.jsonl, row 3: field 'paraphrased_answer' is missing"),
    ("data-duplicate-question", data_case(rows=lambda r: r['retain90'].append(r['retain90'][0])),
     "retain90.jsonl, row 37: field 'question' repeats row 1"),
    ("data-forget-not-in-full", data_case(rows=lambda r: r['forget10'][0].update(question='Who is nobody?')),
     "forget10.jsonl, row 1: field 'question' 'Who is nobody?' is not in"),
    ("data-forget-answer-differs", data_case(rows=lambda r: r['forget10'][2].update(answer='Nobody knows.')),
     "forget10.jsonl, row 3: field 'answer' differs from "),
    ("data-retain-not-in-full", data_case(rows=lambda r: r['retain90'][5].update(question='Who is nobody?')),
     "retain90.jsonl, row 6: field 'question' 'Who is nobody?' is not in "),
    ("data-forget-also-retained", data_case(rows=lambda r: r['retain90'].append(r['forget10'][0])),
     "is also in"),
    ("data-two-files-one-split", data_case(files=lambda f: (f / "full.json").write_text("[]")), "both full.jsonl and full.json exist; keep only one"),
    ("data-json-not-a-list", data_case(files=full_as_json_object), "full.json: expected a JSON list of objects, got object"),
    ("data-not-utf8", data_case(files=lambda f: (f / "real_authors.jsonl").write_bytes('{"question": "Qui a écrit ?"}'.encode("latin-1"))), "real_authors.jsonl: cannot read the file"),
    # --- forget requests (make forget) -----------------------------------------------------------------
    ("request-file-missing", lambda d: ["unlearn", *request_args(d / "none.txt")], "none.txt: cannot read the file"),
    ("request-row-without-question", lambda d: ["unlearn", *request_args(write_preset(d / "f.jsonl", '{"answer": "x"}\n'))],
     "f.jsonl, row 1: field 'question' is missing"),
    ("request-keeps-a-forget-question", lambda d: ["unlearn", *request_args(write_preset(d / "f.txt", "Q1?\nQ2?\n"),
                                                                            write_preset(d / "k.txt", "Q3?\nQ2?\n"))],
     "f.txt, row 2: field 'question' 'Q2?' is also in"),
    ("request-fine-tunes-its-target", lambda d: ["unlearn", "--set", f"data.forget={write_preset(d / 'f.txt', 'Q?')}"],
     "set target.finetune=false"),
    ("request-with-retain-model", lambda d: ["unlearn", *request_args(write_preset(d / "f.txt", "Q?")), "--set",
                                             "eval.retain_model=true"], "a forget request has no retain model"),
    # --- model folders ----------------------------------------------------------------------------------
    ("model-config-only", model_case({"config.json": CONFIG_JSON}),
     "is not a complete HF model folder: it has no tokenizer files"),
    ("model-no-weights", model_case({"config.json": CONFIG_JSON, "tokenizer.json": '{}'}),
     "it has no weights (*.safetensors or pytorch_model*.bin)"),
    ("model-missing-shard", model_case({"config.json": CONFIG_JSON, "tokenizer.json": "{}", "model-00001-of-00002.safetensors": b"",
                "model.safetensors.index.json": json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                                                           "b": "model-00002-of-00002.safetensors"}})},
               command="eval"),
     "no shard model-00002-of-00002.safetensors"),
    ("model-config-broken", model_case({"config.json": "{oops"}), "config.json: not valid JSON"),
    ("model-no-config", model_case({"model.safetensors": b''}), "it has no config.json"),
    ("model-is-a-file", lambda d: ["unlearn", "--set", f"model={write_preset(d / 'model.bin', b'x')}"], "model.bin is not a folder"),
    ("model-path-missing", ["unlearn", "--set", "model=./no/such/model"], "model './no/such/model': no such folder, and not a hub id"),
]


# Cases that must be refused faster than the others' 60 s: a walk of the alias bomb's expansion would take hours.
TIMEOUTS = {"preset-alias-bomb": 5, "batch-alias-bomb": 5}


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under the roots: (size, modification time)."""
    found = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            stat = path.stat()
            found[str(path)] = (stat.st_size if path.is_file() else -1, stat.st_mtime_ns)
    return found


def test_the_catalogue_is_large_and_its_cases_distinct():
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id,args,culprit", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_in_one_line_and_nothing_is_written(case_id, args, culprit, tmp_path):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    # A finished run and a cache entry that must survive untouched.
    (runs / "default").mkdir(parents=True)
    (runs / "default" / "eval.json").write_text("{}")
    (cache / "targets" / "abc").mkdir(parents=True)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args = args(inputs) if callable(args) else args
    command, *rest = args
    where = [] if command == "frobnicate" else ["--set", f"runs_dir={runs}", "--set", f"cache_dir={cache}",
                                                "--set", "allow_external_dirs=true"]
    watched = (runs, cache, PROJECT / "runs", PROJECT / ".cache")
    before = snapshot(*watched)

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pmc_unlearning.orchestrator", command, *where, *rest], cwd=PROJECT,
                            capture_output=True, text=True, env=env, timeout=TIMEOUTS.get(case_id, 60))
    assert time.monotonic() - started < 5, "refused, but only after the heavy imports"

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert culprit.format(d=inputs) in lines[0]
    assert result.stdout == ""
    assert snapshot(*watched) == before
