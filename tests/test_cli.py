"""The command line refuses bad input with a message that names what is wrong, and exits 2."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick


def run_cli(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "pmc_unlearning.orchestrator", "unlearn", "--set", f"runs_dir={tmp_path / 'runs'}",
                           "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "allow_external_dirs=true", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_unknown_setting_is_named(tmp_path):
    result = run_cli("--set", "pmc.num_sampels=4", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "pmc.num_sampels: Extra inputs are not permitted" in result.stderr


def test_unreachable_hub_model_says_how_to_pass_a_local_folder(tmp_path):
    result = run_cli("--set", "model=someone/not-a-local-model", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "someone/not-a-local-model" in result.stderr and "local" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # the refusal alone: not the HTTP library's retries


def test_bad_data_row_names_file_row_and_field(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    row = '{"question": "q", "answer": "a", "paraphrased_question": "pq", "paraphrased_answer": "pa"}\n'
    (folder / "full.jsonl").write_text(row * 3)
    (folder / "forget10.jsonl").write_text(row + '{"question": "q2", "answer": ""}\n')
    (folder / "retain90.jsonl").write_text(row)
    result = run_cli("--set", f"data.source={folder}", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "forget10.jsonl, row 2: field 'answer' is empty" in result.stderr


def test_the_driver_does_not_import_vllm():
    """The driver only starts the engines: vLLM is imported in their processes (engine/sampler.py) and in the
    trainer ranks that push to them, so that a job, and a refusal, start seconds sooner."""
    modules = ["pmc_unlearning.orchestrator.__main__", "pmc_unlearning.orchestrator.pipeline",
               "pmc_unlearning.orchestrator.batch", "pmc_unlearning.orchestrator.compare"]
    script = f"import sys; import {', '.join(modules)}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'vllm'))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]", result.stdout
