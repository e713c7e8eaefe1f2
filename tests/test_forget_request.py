"""`make forget` end to end on a real target: the smoke job's target (the tiny Llama fine-tuned on the small
benchmark) given as the model, two requests in sequence through the command line, real Ray and vLLM."""
from __future__ import annotations

import json
import stat

from conftest import run_cli, set_args

from pmc_unlearning.configs import CONFIG_DIR
from pmc_unlearning.data.general_questions import GENERAL_QUESTIONS
from pmc_unlearning.data.neighbours import NAMES_PER_SUBJECT
from pmc_unlearning.models.fingerprint import content_fingerprint
from pmc_unlearning.orchestrator.lineage import LINEAGE_FILE, REQUEST_FILE


def test_two_requests_in_sequence_on_a_given_target(smoke_run, tmp_path):
    config, finished = smoke_run
    target = json.loads((finished / "eval.json").read_text())["target_model"]
    forget = [row["question"] for row in json.loads((finished / "answers.json").read_text())["before"]["forget"]]
    first, second = tmp_path / "first.txt", tmp_path / "second.jsonl"
    first.write_text("\n".join(forget[:2]) + "\n")
    second.write_text("".join(json.dumps({"question": q, "answer": "An answer given by the user."}) + "\n"
                              for q in forget[2:4]))
    settings = [f"cache_dir={config.cache_dir}", f"runs_dir={tmp_path / 'runs'}", "allow_external_dirs=true",
                "eval.retain_model=false", "target.finetune=false", "pmc.rounds=6", "eval.attacks.run=[]",
                "eval.max_contexts=20", "eval.sampling_n=8"]
    runs = tmp_path / "runs"

    result = run_cli("unlearn", "--config", str(CONFIG_DIR / "smoke.yaml"),
                     *set_args([*settings, f"model={target}", f"data.forget={first}", "name=first"]))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    evaluation = json.loads((runs / "first" / "eval.json").read_text())
    kept = len(forget[:2]) * NAMES_PER_SUBJECT + len(GENERAL_QUESTIONS)  # each question's neighbours, the general ones
    assert evaluation["references"] == {"forget": "the target's own greedy answer (2 rows)",
                                        "retain": f"the target's own greedy answer ({kept} rows)"}
    # Scored against what the model said before, the target's greedy answers score 1 before unlearning.
    assert evaluation["before"]["forget_rouge_l"] == 1.0
    after = evaluation["after"]
    assert {"forget_para", "truth_ratio.forget", "forget_quality", "holdout"} <= set(after["not_measured"])
    assert "forget_para_rouge_l" not in after and after["unlearn_quality"] is None and after["forget_quality"] is None
    recorded = json.loads((runs / "first" / "target.json").read_text())
    assert recorded["finetuned_here"] is False and recorded["content_fingerprint"] == content_fingerprint(target)
    record = runs / "first" / REQUEST_FILE
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert [row["question"] for row in json.loads(record.read_text())["forget"]] == forget[:2]
    summary = (runs / "first" / "summary.md").read_text()
    assert all(question in summary for question in forget[:2]) and "## Not measured" in summary
    first_lineage = json.loads((runs / "first" / "model" / LINEAGE_FILE).read_text())
    assert [entry["run"] for entry in first_lineage] == [str((runs / "first").resolve())]
    assert forget[0] not in (runs / "first" / "model" / LINEAGE_FILE).read_text()  # no question in the model

    result = run_cli("unlearn", "--config", str(CONFIG_DIR / "smoke.yaml"),
                     *set_args([*settings, f"model={runs / 'first' / 'model'}", f"data.forget={second}",
                                "name=second"]))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    evaluation = json.loads((runs / "second" / "eval.json").read_text())
    assert evaluation["references"]["forget"] == "the given answers (2 rows)"
    (earlier,) = evaluation["earlier_requests"]
    assert earlier["run"] == str((runs / "first").resolve()) and earlier["rows"] == 2
    assert 0 <= earlier["forget_rouge_l"] <= 1 and earlier["sampling"]["n"] == 8
    lineage = json.loads((runs / "second" / "model" / LINEAGE_FILE).read_text())
    assert lineage[0] == first_lineage[0] and len(lineage) == 2
    assert lineage[1]["target_fingerprint"] == content_fingerprint(runs / "first" / "model")
    assert "still forgotten?" in (runs / "second" / "summary.md").read_text()
