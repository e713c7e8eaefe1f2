"""Per-round checkpoints of an unlearning job, in `runs/<name>.partial/checkpoint/`.

A job killed at any moment (kill -9, a lost machine) and started again with the same command resumes from
its last complete round and ends with the same numbers as a job that never stopped: the checkpoint holds the
trainer's weights, optimizer and scheduler state and random streams, PMC's selection cache and every round's
metrics, and PMC's sampling is seeded per round and question (orchestrator/pmc.py).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = "state.json"


@dataclass(frozen=True)
class Saved:
    round: int  # the last complete round
    records: list[dict]  # the metrics of every round up to it
    selections: list[dict | None] | None  # PMC's selection cache (None for the baselines)
    trainer_state: Path


@dataclass
class Checkpoints:
    folder: Path
    enabled: bool = True
    seconds: float = 0.0  # spent saving, in all
    records: list[dict] = field(default_factory=list)

    def latest(self) -> Saved | None:
        path = self.folder / STATE_FILE
        if not path.is_file():
            return None
        state = json.loads(path.read_text())
        return Saved(state["round"], state["records"], state["selections"], self.folder / state["trainer_state"])

    def resume(self, trainer) -> Saved | None:
        """The last checkpoint, loaded into `trainer` (its optimizer configured as at the start), or None."""
        saved = self.latest()
        if saved:
            trainer.load_state(str(saved.trainer_state.resolve()))
            self.records = list(saved.records)
        return saved

    def save(self, trainer, round_: int, record: dict, selections: list[dict | None] | None = None) -> None:
        """Make `round_` the last complete round. The trainer (an actor too) writes its own state: no weights
        pass through the driver. Then one atomic rename of the state file switches to the new checkpoint,
        and the trainer state of the one before is removed."""
        self.records.append(record)
        if not self.enabled:
            return
        started = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        trainer_state = f"trainer-{round_}.pt"
        trainer.save_state(str((self.folder / trainer_state).resolve()))
        tmp = self.folder / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps({"round": round_, "records": self.records, "selections": selections,
                                   "trainer_state": trainer_state}))
        os.replace(tmp, self.folder / STATE_FILE)
        for old in self.folder.glob("trainer-*.pt"):
            if old.name != trainer_state:
                old.unlink()
        self.seconds += time.perf_counter() - started
