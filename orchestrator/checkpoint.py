"""Per-round checkpoints of an unlearning job, in `runs/<name>.partial/checkpoint/`.

A job killed at any moment (kill -9, a lost machine) and started again with the same command resumes from
its last complete round and ends with the same numbers as a job that never stopped: the checkpoint holds the
trainer's weights, optimizer and scheduler state and random streams, PMC's selection cache and every round's
metrics, and PMC's sampling is seeded per round and question (orchestrator/pmc.py).
"""
from __future__ import annotations

import json
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
        """Make `round_` the last complete round, once it is on disk. The trainer (an actor too) writes its own
        state, in the background while the job goes on, and then the state file that points at it: no weights
        pass through the driver, and until the new state file appears the one before stays valid. So the
        trainer state of the round before is kept; older ones are removed."""
        self.records.append(record)
        if not self.enabled:
            return
        started = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        trainer_state = self.folder.resolve() / f"trainer-{round_}.pt"
        state = json.dumps({"round": round_, "records": self.records, "selections": selections,
                            "trainer_state": trainer_state.name})
        trainer.save_state(str(trainer_state), then_write={str(self.folder.resolve() / STATE_FILE): state})
        for old in self.folder.glob("trainer-*.pt"):
            if int(old.stem.partition("-")[2]) < round_ - 1:
                old.unlink()
        self.seconds += time.perf_counter() - started

    def wait(self, trainer) -> None:
        """Until the last checkpoint is on disk (before the run folder is moved into place)."""
        started = time.perf_counter()
        trainer.wait_for_saves()
        self.seconds += time.perf_counter() - started
