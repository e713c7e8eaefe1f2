"""`make compare`: the target model once, then every method on it with its own settings, all evaluated the
same way, and one table and figure side by side in `runs/compare-<name>/`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from configs import load_config, load_method_config
from evaluation.compare import write_comparison
from orchestrator.pipeline import ray_session, run_unlearning


def run_comparison(config_path: str, overrides: Sequence[str], methods: Sequence[str]) -> Path:
    base = load_config(config_path, overrides)
    folder = base.runs_dir / f"compare-{base.name}"
    runs = {}
    # One Ray instance for all methods; the target's fine-tune and evaluation are cached after the first.
    # Forget quality needs the retain model, so a comparison trains it (once) unless told not to.
    with ray_session():
        for method in methods:
            config = load_method_config(config_path, ["eval.retain_model=true", *overrides, f"method={method}",
                                                      f"name=compare-{base.name}-{method}"])
            print(f"== {method}: {base.method_settings.get(method) or 'preset settings'}", flush=True)
            runs[method] = run_unlearning(config)
    target = json.loads((runs[methods[0]] / "eval.json").read_text())["before"]
    write_comparison(runs, folder, reference=("target (before)", target), settings=base.method_settings)
    (folder / "runs.json").write_text(json.dumps({m: str(p) for m, p in runs.items()}, indent=1))
    return folder
