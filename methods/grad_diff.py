"""Gradient difference: gradient ascent on the forget answers + lambda * NLL of paired retain rows."""
from __future__ import annotations

from pmc_unlearning.methods import grad_ascent
from pmc_unlearning.methods.method import FixedTargets


class GradDiff(FixedTargets):
    @property
    def objective(self):
        return grad_ascent.objective
