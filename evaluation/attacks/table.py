"""The attacks in report.md: one table (a row per figure, a column per model) and the notes on what is absent."""
from __future__ import annotations


def attack_rows(attacks: dict[str, dict]) -> list[tuple[str, list]]:
    """(label, [figure or None per model]) for every figure one of the models has, in the table's order;
    `attacks` maps a model's column title to its attack results."""
    models = list(attacks.values())
    rows: list[tuple[str, list]] = []

    def add(label: str, get) -> None:
        values = []
        for results in models:
            try:
                values.append(get(results))
            except (KeyError, IndexError, TypeError):
                values.append(None)
        if any(v is not None for v in values):
            rows.append((label, values))

    steps = sorted({point["steps"] for results in models for point in results.get("relearn", {}).get("curve", [])})
    for i, k in enumerate(steps):
        add(f"relearn: held-out forget ROUGE-L after {k} steps", lambda r, i=i: r["relearn"]["curve"][i]["forget_rouge_l"])
    if steps:
        add(f"relearn: held-out leak share after {steps[-1]} steps", lambda r: r["relearn"]["curve"][-1]["leak_share"])
        add(f"benign relearn (retain rows): held-out forget ROUGE-L after {steps[-1]} steps",
            lambda r: r["relearn"]["benign_curve"][-1]["forget_rouge_l"])
        add("relearn: recovered share (0: as if never learned, 1: all back)", lambda r: r["relearn"]["recovered_share"])
    levels = []
    for results in models:
        levels += [level for level in results.get("quantize", {}).get("levels", {}) if level not in levels]
    for level in levels:
        add(f"quantize {level}-bit: forget ROUGE-L", lambda r, level=level: r["quantize"]["levels"][level]["forget_rouge_l"])
        add(f"quantize {level}-bit: leak share", lambda r, level=level: r["quantize"]["levels"][level]["leak_share"])
        add(f"quantize {level}-bit: retain ROUGE-L", lambda r, level=level: r["quantize"]["levels"][level]["retain_rouge_l"])
    for attack, label in (("loss", "LOSS"), ("zlib", "ZLib"), ("min_k", "Min-K %"), ("min_k_plus_plus", "Min-K %++")):
        add(f"MIA AUC, forget vs holdout: {label}", lambda r, attack=attack: r["mia"]["auc"][attack])
    add("PrivLeak (the strongest MIA against the retain model's)", lambda r: r["mia"]["privleak"])
    add("exact memorization", lambda r: r["extraction"]["exact_memorization"])
    add("extraction strength", lambda r: r["extraction"]["extraction_strength"])
    add("prefill: forget ROUGE-L of the rest", lambda r: r["prompts"]["prefill"]["forget_rouge_l"])
    add("other prompt format: forget ROUGE-L", lambda r: r["prompts"]["format_shift"]["forget_rouge_l"])
    add("retain rows in context: forget ROUGE-L", lambda r: r["prompts"]["in_context"]["forget_rouge_l"])
    add("multiple choice: share with the truth most likely", lambda r: r["prompts"]["multiple_choice"]["highest"])
    add("multiple choice: share with the truth least likely", lambda r: r["prompts"]["multiple_choice"]["lowest"])
    for attack in ("relearn", "quantize", "mia", "extraction", "prompts"):
        add(f"{attack}: seconds", lambda r, attack=attack: {"value": r[attack]["seconds"]})
    return rows


def cell(figure: dict | None) -> str:
    """"0.123 [0.050, 0.200]"; "n/a" where the model has no such figure or it is absent."""
    if figure is None or figure.get("value") is None:
        return "n/a"
    value = f"{figure['value']:.3f}"
    return f"{value} [{figure['interval'][0]:.3f}, {figure['interval'][1]:.3f}]" if "interval" in figure else value


def absences(attacks: dict[str, dict]) -> list[str]:
    """What an attack could not give, and why, once per reason: "<model>: <attack> (<reason>)"."""
    found = []
    for model, results in attacks.items():
        for attack, result in results.items():
            for where, value in _walk(result, attack):
                if isinstance(value, dict) and "absent" in value:
                    note = f"{where}: {value['absent']}"
                    if note not in [n for _, n in found]:
                        found.append((model, note))
    return [f"{model}: {note}" for model, note in found]


def _walk(value, where: str):
    yield where, value
    if isinstance(value, dict):
        for key, inner in value.items():
            if key != "absent":
                yield from _walk(inner, f"{where} {key}")
