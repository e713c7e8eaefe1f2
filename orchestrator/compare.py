"""`make compare`: every method on the same target model, as a batch (orchestrator/batch.py) whose groups
differ by method alone: `runs/compare-<name>/report.md` has the table, the trade-off figure and the paper's
takeaways. The same as `make batch BATCH=configs/batch/compare.yaml` for the default preset."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pmc_unlearning.configs import load_config
from pmc_unlearning.configs.batch_schema import Batch, BatchConfig, make_batch


def comparison_batch(config_path: str, overrides: Sequence[str], methods: Sequence[str]) -> Batch:
    """Each method with its `method_settings`; forget quality needs the retain model, so a comparison trains
    it (once, cached) unless told not to."""
    name = f"compare-{load_config(config_path, list(overrides)).name}"
    spec = BatchConfig(name=name, base=str(Path(config_path).resolve()), set=["eval.retain_model=true", *overrides],
                       grid={"method": list(methods)})
    return make_batch(spec, f"make compare --config {config_path}")
