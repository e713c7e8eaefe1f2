"""Every unlearning method, by the name a config gives it, and where its class lives.

Plain data, so that the configuration (the bottom layer) knows the names without importing the methods:
methods/__init__.py imports a class only when its method runs. A new method is a file in methods/, a line
here, its tests and its settings (configs/schema.py, and its tuned `method_settings` in the presets).
"""
from __future__ import annotations

METHOD_CLASSES = {
    "pmc": "pmc_unlearning.methods.pmc:PMC",
    "grad_ascent": "pmc_unlearning.methods.grad_ascent:GradAscent",
    "grad_diff": "pmc_unlearning.methods.grad_diff:GradDiff",
    "idk": "pmc_unlearning.methods.idk:IDK",
    "npo": "pmc_unlearning.methods.npo:NPO",
    "simnpo": "pmc_unlearning.methods.simnpo:SimNPO",
    "dpo": "pmc_unlearning.methods.dpo:DPO",
    "rmu": "pmc_unlearning.methods.rmu:RMU",
}
