"""The unlearned model folder's README.md: a Hugging Face model card (its metadata header, then what was
forgotten, how, and how well, and the model's lineage of unlearning runs), so that the folder can be pushed to a
hub as it is."""
from __future__ import annotations

from pathlib import Path

from pmc_unlearning.telemetry.console import value_at

CARD_ROWS = (  # (label, path in an eval.json state block)
    ("forget ROUGE-L (greedy)", ("forget_rouge_l",)),
    ("retain ROUGE-L (greedy)", ("retain_rouge_l",)),
    ("model utility (TOFU)", ("model_utility",)),
    ("forget quality (TOFU)", ("forget_quality",)),
    ("leak share under sampling", ("sampling", "leak_share")),
    ("forget ROUGE-L after relearning", ("attacks_headline", "relearned_forget_rouge_l")),
    ("forget ROUGE-L, quantized", ("attacks_headline", "quantized_forget_rouge_l")),
    ("forget ROUGE-L with a prefilled answer start", ("attacks_headline", "prefill_forget_rouge_l")),
    ("extraction strength", ("attacks_headline", "extraction_strength")),
    ("PrivLeak", ("attacks_headline", "privleak")),
)


def figures_table(evaluation: dict) -> list[str]:
    """The headline figures of the target, the unlearned model and the retain model (where the run has one), as
    markdown table lines; a figure the run did not measure is n/a."""
    has_retain = "retain_model" in evaluation
    lines = ["| metric | target | unlearned |" + (" retain model |" if has_retain else ""),
             "|---|---|---|" + ("---|" if has_retain else "")]
    for label, path in CARD_ROWS:
        values = [value_at(evaluation.get(state, {}), path) for state in ("before", "after", "retain_model")
                  if state != "retain_model" or has_retain]
        if any(v is not None for v in values):
            lines.append(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in values) + " |")
    return lines


def write_model_card(folder: Path, model: str, method: str, forget_set: str, target_given: bool, evaluation: dict,
                     lineage: list[dict]) -> None:
    """`folder`/README.md for the model unlearned from `model` by `method` (`forget_set`: what it forgot, in
    words; `target_given`: `model` was the target as it is, not fine-tuned by the run), with eval.json's numbers
    before and after and the `lineage` of unlearning runs (orchestrator/lineage.py) that made it."""
    made = (f"This model is `{model}` (given as the target, as it was) made to forget {forget_set}" if target_given else
            f"This model is `{model}` fine-tuned on a benchmark of question-answer pairs (the target model), then "
            f"made to forget {forget_set}")
    lines = ["---", f"base_model: {model}", "library_name: transformers", "pipeline_tag: text-generation",
             f"tags: [machine-unlearning, {method.replace('_', '-')}, pmc-unlearning]", "---", "",
             f"# {model}, unlearned with {method}", "",
             f"{made} by `{method}` (the pmc-unlearning tool). The run folder that holds this folder has the full "
             "report (report.md), a one-page summary (summary.md), every number (eval.json), the resolved "
             "configuration and the package versions.", "", *figures_table(evaluation), "",
             "Lower forget figures mean more forgotten; the retain model (never trained on the forget set) is what "
             "\"never learned\" looks like. PrivLeak near 0: the forget answers look as unfamiliar as ones never "
             "seen.", "", "## Lineage", "",
             "The unlearning runs that made this model, oldest first (also in `unlearning_lineage.json`; no "
             "question or answer is kept in this folder):", "",
             "| run | method | target (content fingerprint) | questions forgotten | data or request fingerprint |",
             "|---|---|---|---|---|"]
    for entry in lineage:
        data = entry.get("request_fingerprint") or entry.get("data_fingerprint")
        lines.append(f"| {entry['run']} | {entry['method']} | {entry['target']} ({entry['target_fingerprint'][:12]}) "
                     f"| {entry['forget_questions']} | {'request' if 'request_fingerprint' in entry else 'data'} "
                     f"{data[:12]} |")
    (folder / "README.md").write_text("\n".join(lines) + "\n")


def card_base_model(folder: Path) -> str | None:
    """The `base_model` in `folder`/README.md's metadata header, or None where there is no such card."""
    card = folder / "README.md"
    lines = card.read_text().splitlines() if card.is_file() else []
    if not lines or lines[0] != "---":
        return None
    for line in lines[1:]:
        if line == "---":
            return None
        key, _, value = line.partition(":")
        if key.strip() == "base_model" and value.strip():
            return value.strip()
    return None
