"""Quantization (Zhang et al., ICLR 2025): round the weights to few bits, as anyone deploying the model might,
and see whether the forgotten answers come back. An unlearning update small next to the quantization step can
round back onto the target's weights. The rounded weights are served by the engine and measured as the
evaluation measures the full-precision ones (its figures are the reference, not measured again here): greedy
forget and retain ROUGE-L, the forget leak share under sampling."""
from __future__ import annotations

from pmc_unlearning.evaluation.attacks.measure import greedy_rouge, leak_share
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
    return {"forget_rouge_l": greedy_rouge(model, data.forget, config),
            "retain_rouge_l": greedy_rouge(model, data.retain, config),
            "leak_share": leak_share(model, data.forget, config)}
