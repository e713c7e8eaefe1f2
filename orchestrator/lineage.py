"""A model's lineage of unlearning runs, and a forget request's record.

Every unlearned model folder holds `unlearning_lineage.json`: one entry per run that made it, oldest first (the
target's own lineage, then this run): the run folder, the method, the target and its content fingerprint, the
data's or request's fingerprint and how many questions were forgotten. No question and no answer goes into the
model folder, which may be shared or pushed to a hub: a request's questions and the answers they were scored
against stay in its run folder (`request.json`), where a later request on this model finds them to check that
they stay forgotten.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from pmc_unlearning.data import QA

LINEAGE_FILE = "unlearning_lineage.json"
REQUEST_FILE = "request.json"


def lineage_of(model_dir: Path) -> list[dict]:
    """The entries of the runs that made `model_dir`, oldest first ([] for a model no run of this tool made)."""
    path = Path(model_dir) / LINEAGE_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def write_lineage(model_dir: Path, earlier: list[dict], entry: dict) -> list[dict]:
    lineage = [*earlier, entry]
    (Path(model_dir) / LINEAGE_FILE).write_text(json.dumps(lineage, indent=1))
    return lineage


def write_request_record(run_path: Path, fingerprint: str, forget: tuple[QA, ...], references: dict) -> None:
    """`request.json`: the forget questions and the answers each was scored against (given or the target's)."""
    record = {"fingerprint": fingerprint, "references": references,
              "forget": [{"question": row.question, "reference": row.answer} for row in forget]}
    # The user's alone, whatever the umask: it holds what was to be forgotten.
    descriptor = os.open(run_path / REQUEST_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(json.dumps(record, indent=1, ensure_ascii=False))


def earlier_requests(lineage: list[dict]) -> list[tuple[dict, tuple[QA, ...] | None, str | None]]:
    """(entry, its forget rows, None), or (entry, None, why they cannot be read), for each request in `lineage`.
    Only a record that is the user's own and that nobody else can write is read: it decides what is reported as
    still forgotten."""
    found = []
    for entry in lineage:
        if "request_fingerprint" not in entry:
            continue  # a benchmark's run: the benchmark is not a request to keep forgotten
        path = Path(entry["run"]) / REQUEST_FILE
        why = _unreadable(path)
        if why is None:
            record = json.loads(path.read_text())
            if record["fingerprint"] != entry["request_fingerprint"]:
                why = f"{path} is of another request than the one the lineage names"
        found.append((entry, None, why) if why else
                     (entry, tuple(QA(row["question"], row["reference"]) for row in record["forget"]), None))
    return found


def _unreadable(path: Path) -> str | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return f"its record {path} is gone (the run folder was moved or deleted)"
    if status.st_uid != os.getuid() or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"its record {path} is not the user's own, or others can write it"
    return None
