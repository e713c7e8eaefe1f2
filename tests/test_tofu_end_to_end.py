"""TOFU as the hub lays it out (a local copy read through the hub code path), unlearned end to end with a chat
model: every metric is reported, and the chat format is what the run resolved and recorded."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pmc_unlearning.configs import CONFIG_DIR, load_config

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick

TOFU_COPY = Path(__file__).parent / "fixtures" / "tofu"


def test_tofu_copy_runs_end_to_end_and_reports_every_metric(chat_tiny_model, offline_datasets, ray_cluster, tmp_path):
    from pmc_unlearning.orchestrator.pipeline import run_unlearning

    config = load_config(CONFIG_DIR / "smoke.yaml", [
        f"model={chat_tiny_model}", "data.source=tofu", f"data.tofu_path={TOFU_COPY}", "name=tofu",
        f"cache_dir={tmp_path / 'cache'}", f"runs_dir={tmp_path / 'runs'}", "allow_external_dirs=true",
        "eval.retain_model=true", "target.epochs=8", "pmc.rounds=3", "eval.sampling_n=8",
        "eval.attacks.run=[]"])  # the attacks' TOFU-specific piece (in-context room) is tests/test_attacks_engine.py's
    folder = run_unlearning(config)

    resolved = json.loads((folder / "resolved.json").read_text())
    assert resolved["prompt"]["style"] == "chat" and resolved["absent_metrics"] == {}
    assert json.loads((folder / "model" / "prompt_format.json").read_text()) == {"style": "chat"}
    evaluation = json.loads((folder / "eval.json").read_text())
    for state in ("before", "after"):
        m = evaluation[state]
        assert set(m["prob"]) == set(m["truth_ratio"]) == {"forget", "retain", "world_facts", "real_authors"}
        assert m["model_utility_parts"] == 9 and m["model_utility"] is not None and m["not_measured"] == {}
        assert isinstance(m["forget_quality"], float)
        for key in ("forget_rouge_l", "forget_para_rouge_l", "retain_rouge_l", "world_facts_rouge_l", "real_authors_rouge_l"):
            assert 0 <= m[key] <= 1
        assert m["sampling"]["n"] == 8
    assert evaluation["after"]["over_unlearning"]["count"] > 0
    # The evaluation's retain rows are TOFU's retain_perturbed, not retain90.
    lines = (TOFU_COPY / "retain_perturbed.json").read_text().splitlines()  # JSON lines, as the hub stores it
    retain_perturbed = {json.loads(line)["question"] for line in lines}
    answers = json.loads((folder / "answers.json").read_text())["after"]["retain"]
    assert answers and {row["question"] for row in answers} <= retain_perturbed
