"""The comparison report: every run's final state side by side, and the paper's takeaways checked on them."""
from __future__ import annotations

import json

from pmc_unlearning.reporting.side_by_side import paper_takeaways, write_comparison


def state(forget, utility, max_rouge, leak, halved):
    return {"forget_rouge_l": forget, "unlearn_quality": 100 * (1 - forget), "utility": utility,
            "retain_rouge_l": utility / 100, "model_utility": 0.4, "forget_quality": None,
            "sampling": {"max_rouge_l": max_rouge, "leak_share": leak},
            "over_unlearning": {"share_halved": halved}}


STATES = {"pmc": state(0.0, 60.0, 0.3, 0.01, 0.20),
          "grad_ascent": state(0.0, 10.0, 0.5, 0.02, 0.90),
          "grad_diff": state(0.1, 40.0, 0.2, 0.00, 0.25),  # PMC leaks more and over-unlearns about as much
          "npo": state(0.3, 62.0, 0.6, 0.20, 0.40)}  # PMC's utility is below NPO's


def test_takeaways_name_each_baseline_with_the_numbers_and_the_verdict():
    lines = "\n".join(paper_takeaways(STATES))
    assert "(1) vs grad_ascent: forget ROUGE-L 0.000 vs 0.000, utility 60.0 vs 10.0: holds" in lines
    assert "(1) vs npo: forget ROUGE-L 0.000 vs 0.300, utility 60.0 vs 62.0: **does not hold**" in lines
    assert "(2) vs grad_ascent: max ROUGE-L under sampling 0.300 vs 0.500, leak share 0.010 vs 0.020: holds" in lines
    assert "(2) vs npo" in lines and "(2) vs grad_diff" not in lines and "(2) vs idk" not in lines
    assert "(3) grad_ascent vs pmc: share of unrelated contexts where a forget token's probability halved 0.900 vs 0.200: holds" in lines
    assert "(3) grad_diff vs pmc" in lines and lines.count("**does not hold**") == 2
    assert paper_takeaways({"npo": STATES["npo"]}) == []


def test_write_comparison_table_json_and_figure(tmp_path):
    runs = {}
    for name, after in STATES.items():
        runs[name] = tmp_path / name
        runs[name].mkdir()
        (runs[name] / "eval.json").write_text(json.dumps({"before": STATES["npo"], "after": after, "wall_time_s": 12.5,
                                                           "stage_seconds": {"unlearning": 3.25}}))
    out = tmp_path / "compare-x"
    write_comparison(runs, out, reference=("target (before)", state(1.0, 70.0, 1.0, 0.9, 0.0)),
                     settings={"npo": ["baseline.lr=3e-4"]})
    report = (out / "report.md").read_text()
    assert "| target (before) | 1 | 0 | 0.7 |" in report
    assert "| pmc | 0 | 1 | 0.6 | 0.6 | 0.4 | n/a | 0.3 | 0.01 | 0.2 |" in report
    assert f"| npo | {runs['npo']} | baseline.lr=3e-4 | 12.5 | 3.25 |" in report and "| pmc | " in report
    assert json.loads((out / "compare.json").read_text()) == STATES  # the runs' `after` blocks, not the reference
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
