"""Evaluation: greedy ROUGE-L, TOFU's probability metrics, evaluation under sampling, over-unlearning,
fluency (each forget answer's verdict: `verdict.py`) and the attacks (what a reader sees of them: reporting/).
`suite.measure_state` and `suite.evaluate_state` run all of it on one model state (evaluation/result.py)."""
