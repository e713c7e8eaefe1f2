"""Quantization (Zhang et al., ICLR 2025): round the weights to few bits, as anyone deploying the model might,
and see whether the forgotten answers come back. An unlearning update small next to the quantization step can
round back onto the target's weights. The rounded weights are served by the engine and measured as the
evaluation measures the full-precision ones (its figures are the reference, not measured again here): greedy
forget and retain ROUGE-L, the forget leak share under sampling."""
from __future__ import annotations

from pmc_unlearning.evaluation.attacks.measure import asked, greedy_rouge_and_leak
from pmc_unlearning.evaluation.attacks.model import AttackData, AttackedModel


def quantize(model: AttackedModel, data: AttackData, config) -> dict:
    settings = config.eval.attacks
    levels = {}
    for bits in settings.quantize_bits:
        with model.changed_weights():
            model.quantize(bits, settings.quantize_group)
            levels[str(bits)] = measured(model, data, config)
    return {"group": settings.quantize_group, "levels": levels}


def measured(model: AttackedModel, data: AttackData, config) -> dict:
    greedy = {"forget_rouge_l": asked(model, data.forget), "retain_rouge_l": asked(model, data.retain)}
    return greedy_rouge_and_leak(model, greedy, data.forget, config)
