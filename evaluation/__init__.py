"""Evaluation: ROUGE-L recall, and the greedy before/after evaluation of a model state."""
from evaluation.greedy import EVAL_SPLITS, EvalSet, build_eval_set, summarise
from evaluation.rouge import rouge_l_recall

__all__ = ["EVAL_SPLITS", "EvalSet", "build_eval_set", "rouge_l_recall", "summarise"]
