"""Per-round checkpoints of an unlearning job, in `runs/<name>.partial/checkpoint/`.

A job killed at any moment (kill -9, a lost machine) and started again with the same command resumes after
its last complete round and ends with the same numbers as a job that never stopped. After every round the
checkpoint records that round's metrics and what it trained on (PMC's selection cache); the trainer's full
state (weights, optimizer and scheduler state, random streams: 1.6 GB for the 135M default) is written at
most once every `full_state_every_s` seconds, and a resumed job trains the rounds since then again, exactly
(training is deterministic, and PMC's sampling is seeded per round and question, see methods/pmc.py).
"""
from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pmc_unlearning.storage.files import make_private_folder, write_text_atomically

STATE_FILE = "state.json"
_TRAINER_STATE = re.compile(r"trainer-\d+")  # the names `save` gives: a folder of the checkpoint's own


class UnreadableCheckpoint(ValueError):
    """A checkpoint that cannot be resumed (a torn state file, or one naming a trainer state that is not its
    own): the job is refused, and the checkpoint kept, unless it starts over (`--fresh`)."""


@dataclass(frozen=True)
class Saved:
    round: int  # the last complete round
    records: list[dict]  # the metrics of every round up to it
    selections: list[dict | None] | None  # PMC's selection cache after it (None for the baselines)
    # What each round after the last full trainer state trained on, to train again: PMC's selection cache
    # after that round (the baselines train on fixed targets: None).
    replay: list[list[dict | None] | None]
    trainer_state: Path | None  # the last full trainer state (None: none yet, the job starts from the target)


@dataclass
class Checkpoints:
    folder: Path
    enabled: bool = True
    full_state_every_s: float = 300.0
    seconds: float = 0.0  # spent checkpointing, in all
    records: list[dict] = field(default_factory=list)
    replay: list = field(default_factory=list)
    trainer_state: str | None = None
    last_full_state: float = field(default_factory=time.monotonic)

    def latest(self) -> Saved | None:
        """The last complete round's checkpoint; None if there is none; UnreadableCheckpoint if its state file
        cannot be read or names a trainer state that is not there."""
        path = self.folder / STATE_FILE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text())
            trainer_state = state["trainer_state"] and self.folder / state["trainer_state"]
            saved = Saved(state["round"], state["records"], state["selections"], state["replay"], trainer_state)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UnreadableCheckpoint(f"the checkpoint {path} cannot be read ({type(err).__name__}: {err})") from None
        if trainer_state and not _TRAINER_STATE.fullmatch(state["trainer_state"]):
            raise UnreadableCheckpoint(f"the checkpoint {path} names a trainer state {state['trainer_state']!r} that is "
                                       "not a folder of its own (trainer-<round>)")
        if trainer_state and not trainer_state.is_dir():
            raise UnreadableCheckpoint(f"the checkpoint {path} names a trainer state {trainer_state} that is not there")
        return saved

    def resume(self, trainer) -> Saved | None:
        """The last checkpoint, its full trainer state loaded into `trainer` (whose optimizer is configured as at
        the start), or None. The caller trains `replay` again."""
        saved = self.latest()
        if saved:
            if saved.trainer_state:
                trainer.load_state(str(saved.trainer_state.resolve()))
                self.trainer_state = saved.trainer_state.name
            self.records, self.replay = list(saved.records), list(saved.replay)
        self.last_full_state = time.monotonic()
        return saved

    def save(self, trainer, round_: int, record: dict, selections: list[dict | None] | None = None) -> None:
        """Make `round_` the last complete round. The full trainer state, when due, is written by the trainer
        (an actor too: no weights pass through the driver) in the background, followed by the state file that
        points at it; until then the state file before stays valid, and so does the trainer state it names.
        `selections` (PMC's cache after the round) is also what the round trained on."""
        self.records.append(record)
        self.replay.append(selections)
        if not self.enabled:
            return
        started = time.perf_counter()
        make_private_folder(self.folder)  # only its user can enter it: a resume unpickles what is in it
        trainer.wait_for_saves()  # state files appear in order
        if time.monotonic() - self.last_full_state >= self.full_state_every_s:
            self._remove_trainer_states(keep=self.trainer_state)
            self.trainer_state, self.replay = f"trainer-{round_}", []
            trainer.save_state(str(self.folder.resolve() / self.trainer_state),
                               then_write={str(self.folder.resolve() / STATE_FILE): self._state(round_, selections)})
            self.last_full_state = time.monotonic()
        else:
            state = self._state(round_, selections)
            write_text_atomically(self.folder / STATE_FILE, state)
        self.seconds += time.perf_counter() - started

    def wait(self, trainer) -> None:
        """Until the last checkpoint is on disk (before the run folder is moved into place)."""
        started = time.perf_counter()
        trainer.wait_for_saves()
        self.seconds += time.perf_counter() - started

    def _state(self, round_: int, selections: list[dict | None] | None) -> str:
        return json.dumps({"round": round_, "records": self.records, "selections": selections, "replay": self.replay,
                           "trainer_state": self.trainer_state})

    def _remove_trainer_states(self, keep: str | None) -> None:
        """Older full states (folders), no state file names them any more (the one named now stays until
        replaced), and any left half-written by a killed job."""
        for old in self.folder.glob("trainer-*"):
            if old.name != keep:
                shutil.rmtree(old)
