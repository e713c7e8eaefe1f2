"""The run folder: written as `.partial`, moved into place atomically, the replaced run kept as `.previous`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from configs import load_config
from orchestrator import run_folder
from orchestrator.run_folder import RunFolder


def finished_run(tmp_path: Path, marker: str) -> Path:
    config = load_config(None, [f"runs_dir={tmp_path}", "name=job", "allow_external_dirs=true"])
    run = RunFolder(config, extra={"prompt": "plain"})
    run.write_json("eval.json", {"marker": marker})
    return run


def marker(folder: Path) -> str:
    return json.loads((folder / "eval.json").read_text())["marker"]


def test_second_run_replaces_the_first_and_keeps_it_as_previous(tmp_path):
    first = finished_run(tmp_path, "first")
    assert (first.path / "config.yaml").is_file() and json.loads((first.path / "resolved.json").read_text()) == {"prompt": "plain"}
    assert first.finish() == tmp_path / "job" and marker(tmp_path / "job") == "first"
    finished_run(tmp_path, "second").finish()
    assert marker(tmp_path / "job") == "second" and marker(tmp_path / "job.previous") == "first"
    finished_run(tmp_path, "third").finish()
    assert marker(tmp_path / "job") == "third" and marker(tmp_path / "job.previous") == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job", "job.previous"]


def test_a_crash_at_any_step_of_finish_leaves_a_finished_run_in_place(tmp_path, monkeypatch):
    finished_run(tmp_path, "old").finish()
    # Crash before the exchange: the old run is still in place.
    new = finished_run(tmp_path, "new")
    monkeypatch.setattr(run_folder, "exchange_folders", lambda a, b: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        new.finish()
    assert marker(tmp_path / "job") == "old" and marker(tmp_path / "job.partial") == "new"
    monkeypatch.undo()

    # Crash right after the exchange, before the old run is renamed to .previous: the new run is in place.
    real_rename = Path.rename

    def crash_on_previous(self, target):
        if Path(target).name == "job.previous":
            raise KeyboardInterrupt
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", crash_on_previous)
    with pytest.raises(KeyboardInterrupt):
        finished_run(tmp_path, "newer").finish()
    assert marker(tmp_path / "job") == "newer" and marker(tmp_path / "job.partial") == "old"


def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("from a"), (b / "y").write_text("from b")
    run_folder.exchange_folders(a, b)
    assert (a / "y").read_text() == "from b" and (b / "x").read_text() == "from a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
