"""`make compare`: the target model once, then every method on it with its own settings, all evaluated the
same way, and one table and figure side by side in `runs/compare-<name>/`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from configs import load_config
from evaluation.compare import write_comparison
from orchestrator.pipeline import ray_session, run_unlearning


def run_comparison(config_path: str, overrides: Sequence[str], methods: Sequence[str]) -> Path:
    base = load_config(config_path, overrides)
    folder = base.runs_dir / f"compare-{base.name}"
    runs = {}
    with ray_session():  # one Ray instance for all methods; the target fine-tune is cached after the first
        for method in methods:
            settings = base.method_settings.get(method, [])
            config = load_config(config_path, [*settings, *overrides, f"method={method}",
                                               f"name=compare-{base.name}-{method}"])
            print(f"== {method}: {settings or 'preset settings'}", flush=True)
            runs[method] = run_unlearning(config)
    write_comparison(runs, folder)
    (folder / "runs.json").write_text(json.dumps({m: str(p) for m, p in runs.items()}, indent=1))
    return folder
