"""Evaluation: greedy ROUGE-L, TOFU's probability metrics, evaluation under sampling, over-unlearning,
the report and its figures. `suite.evaluate_state` runs all of it on one model state."""
