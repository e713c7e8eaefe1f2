"""The attacks that try to get forgotten answers back, one module each, run on every state a run evaluates.

`run_attacks` applies the chosen ones (`eval.attacks.run`) to one model state; `judge_attacks` then sets each
state's results against the retain model's (the model that never saw the forget set: the yardstick of "as if
never learned"): the recovered share after relearning, and MUSE's PrivLeak. `headline` picks the figures the
comparison tables show.
"""
from __future__ import annotations

import importlib
import time

from pmc_unlearning.configs import ATTACK_NAMES
from pmc_unlearning.evaluation.attacks.intervals import absent
from pmc_unlearning.evaluation.attacks.model import AttackData, AttackedModel

ATTACKS = {name: f"pmc_unlearning.evaluation.attacks.{name}:{name}" for name in ATTACK_NAMES}
NO_RETAIN_MODEL = "the run has no retain model (eval.retain_model=false)"


def run_attacks(model: AttackedModel, data: AttackData, config) -> dict:
    """{attack: its results and its seconds} for each attack the config chooses, in the config's order; the
    engines serve the model's own weights again afterwards."""
    results = {}
    for name in config.eval.attacks.run:
        module, function = ATTACKS[name].split(":")
        started = time.perf_counter()
        results[name] = {**getattr(importlib.import_module(module), function)(model, data, config),
                         "seconds": round(time.perf_counter() - started, 2)}
    model.serve()
    return results


def judge_attacks(state: dict, target: dict, retain_model: dict | None) -> dict:
    """`state`'s attack results with the figures that set it against the target's and the retain model's (None
    where the run has none): the relearning's recovered share and PrivLeak, each absent with the reason where it
    cannot be computed."""
    judged = {name: dict(result) for name, result in state.items()}
    retain_model = retain_model or {}
    if "curve" in judged.get("relearn", {}):
        judged["relearn"]["recovered_share"] = recovered_share(judged["relearn"], target.get("relearn"),
                                                               retain_model.get("relearn"))
    if "auc" in judged.get("mia", {}):
        judged["mia"]["privleak"] = privleak(judged["mia"], retain_model.get("mia"))
    return judged


def recovered_share(relearn: dict, target: dict | None, retain: dict | None) -> dict:
    """(unlearned_k - retain_k) / (target_k - retain_k) of the held-out half's greedy forget ROUGE-L at the largest
    k: 0 = as if never learned, 1 = all back."""
    if not retain or "curve" not in retain:
        return absent(NO_RETAIN_MODEL)
    if not target or "curve" not in target:
        return absent("the target's relearning curve is missing")
    last = lambda curve: curve[-1]["forget_rouge_l"]["value"]
    unlearned, never, known = last(relearn["curve"]), last(retain["curve"]), last(target["curve"])
    if known - never <= 0:
        return absent("after relearning, the target does not answer the held-out half better than the retain "
                      "model: nothing is there to recover")
    return {"value": (unlearned - never) / (known - never), "steps": relearn["curve"][-1]["steps"]}


def privleak(mia: dict, retain: dict | None) -> dict:
    """MUSE's PrivLeak, (AUC - AUC_retain) / AUC_retain, for the attack that separates forget from holdout answers
    best on this state (the strongest evidence of membership): near 0 as if never trained, large positive still
    recognisably seen, large negative over-unlearned."""
    if not retain or "auc" not in retain:
        return absent(NO_RETAIN_MODEL)
    attack = max(mia["auc"], key=lambda name: mia["auc"][name]["value"])
    auc, reference = mia["auc"][attack]["value"], retain["auc"][attack]["value"]
    return {"value": (auc - reference) / reference, "attack": attack}


def headline(attacks: dict) -> dict[str, float | None]:
    """The figures a comparison shows per method: held-out forget ROUGE-L after the largest relearn, forget
    ROUGE-L at the fewest bits, PrivLeak, extraction strength and prefill forget ROUGE-L (None where not run)."""
    relearn, quantize = attacks.get("relearn", {}), attacks.get("quantize", {})
    fewest_bits = min(quantize.get("levels", {}), key=int, default=None)
    value = lambda figure: None if figure is None else figure.get("value")
    return {
        "relearned_forget_rouge_l": value(relearn["curve"][-1]["forget_rouge_l"]) if relearn.get("curve") else None,
        "quantized_forget_rouge_l": value(quantize["levels"][fewest_bits]["forget_rouge_l"]) if fewest_bits else None,
        "privleak": value(attacks.get("mia", {}).get("privleak")),
        "extraction_strength": value(attacks.get("extraction", {}).get("extraction_strength")),
        "prefill_forget_rouge_l": value(attacks.get("prompts", {}).get("prefill", {}).get("forget_rouge_l")),
    }
