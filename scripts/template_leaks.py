"""What a request's "leaking" samples say: 64 samples (temperature 1, seed 0, as the evaluation draws them) per forget
question from an unlearned model, their ROUGE-L recall of the target's answer (the leak share counts those at
>= 0.5), and how many of them carry the fact itself: every word of the target's answer that neither the question
nor the target's answer to the same question about another person (a neighbour, data/neighbours.py: the answer's
template) contains.

    .venv/bin/python scripts/template_leaks.py MODEL TARGET FORGET_FILE   (FORGET_FILE: a question a line)

On short templated answers ("X's father worked as a surgeon") a template answer with another profession recalls
most of the answer's words: the leak share counts it, the fact share does not.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from pmc_unlearning.configs import CONFIG_DIR, load_config  # noqa: E402
from pmc_unlearning.data.neighbours import neighbour_questions  # noqa: E402
from pmc_unlearning.engine import Sampler  # noqa: E402
from pmc_unlearning.evaluation.rouge import rouge_l_recall  # noqa: E402
from pmc_unlearning.orchestrator.pipeline import prepare  # noqa: E402

SAMPLES, LEAK_AT = 64, 0.5


def words(text: str) -> set[str]:
    return {word.strip(".,'\"").lower() for word in text.replace("'s", " ").split()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the unlearned model folder")
    parser.add_argument("target", type=Path, help="the target it was unlearned from")
    parser.add_argument("forget", type=Path, help="the forget questions, a question a line")
    args = parser.parse_args()
    config = load_config(CONFIG_DIR / "default.yaml", [f"model={args.target}", "target.finetune=false", "allow_external_dirs=true",
                                f"data.forget={args.forget}"])
    prompt = prepare(config)[2]
    questions = [line.strip() for line in args.forget.read_text().splitlines() if line.strip()]
    target = Sampler(args.target, config.engine)
    originals = [answer.text for answer in target.greedy([prompt.prompt(q) for q in questions])]
    templates = [answer.text for answer in target.greedy([prompt.prompt(neighbour_questions([q])[0]) for q in questions])]
    del target
    samples = Sampler(args.model, config.engine).sample([prompt.prompt(q) for q in questions], SAMPLES, 1.0, 1.0, seed=0)
    leaks = facts = 0
    for question, original, template, answers in zip(questions, originals, templates, samples):
        fact = words(original) - words(question) - words(template)
        leaked = [answer.text for answer in answers if rouge_l_recall(original, answer.text) >= LEAK_AT]
        with_fact = [text for text in leaked if fact <= words(text)]
        leaks, facts = leaks + len(leaked), facts + len(with_fact)
        print(f"{question} | target: {original} | template: {template} | fact words {sorted(fact)} | "
              f"{len(leaked)} leak, {len(with_fact)} with the fact" + "".join(f"\n    {text}" for text in leaked[:3]))
    total = SAMPLES * len(questions)
    print(f"leak share {leaks / total:.4f} ({leaks}/{total}); with every fact word {facts / total:.4f} ({facts}/{total})")


if __name__ == "__main__":
    main()
