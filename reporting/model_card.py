"""The unlearned model folder's README.md: a Hugging Face model card (its metadata header, then what was
forgotten, how, and how well), so that the folder can be pushed to a hub as it is."""
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


def write_model_card(folder: Path, base_model: str, method: str, data: dict, forget_rows: int,
                     evaluation: dict) -> None:
    """`folder`/README.md for the model unlearned from `base_model` by `method` on the forget split `data`
    describes (the run's data settings), with eval.json's numbers before and after."""
    forget_set = f"{data['source']} {data['forget_split']} ({forget_rows} questions)"
    lines = ["---", f"base_model: {base_model}", "library_name: transformers", "pipeline_tag: text-generation",
             f"tags: [machine-unlearning, {method.replace('_', '-')}, pmc-unlearning]", "---", "",
             f"# {base_model}, unlearned with {method}", "",
             f"This model is `{base_model}` fine-tuned on a benchmark of question-answer pairs (the target model), then "
             f"made to forget the forget set `{forget_set}` by `{method}` "
             "(the pmc-unlearning tool). The run folder that holds this folder has the full report (report.md), every "
             "number (eval.json), the resolved configuration and the package versions.", "",
             "| metric | target | unlearned |" + (" retain model |" if "retain_model" in evaluation else ""),
             "|---|---|---|" + ("---|" if "retain_model" in evaluation else "")]
    for label, path in CARD_ROWS:
        values = [value_at(evaluation.get(state, {}), path) for state in ("before", "after", "retain_model")
                  if state != "retain_model" or state in evaluation]
        if any(v is not None for v in values):
            lines.append(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in values) + " |")
    lines += ["", "Lower forget figures mean more forgotten; the retain model (never trained on the forget set) is what "
                  "\"never learned\" looks like. PrivLeak near 0: the forget answers look as unfamiliar as ones never "
                  "seen.", ""]
    (folder / "README.md").write_text("\n".join(lines))


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
