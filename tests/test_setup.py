"""The set-up script stops at the first failed install, with pip's own error, and marks nothing as installed."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def test_a_failed_install_stops_the_setup_with_pips_own_error(tmp_path):
    no_wheels = tmp_path / "no-wheels"
    no_wheels.mkdir()
    # No index and an empty wheel folder: pip itself is there, every other install must fail.
    env = {**os.environ, "VENV": str(tmp_path / "venv"), "VLLM_VARIANT": "cpu", "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": str(no_wheels)}
    result = subprocess.run(["bash", "scripts/setup_env.sh"], cwd=PROJECT, env=env, capture_output=True, text=True,
                            timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ERROR: Could not find a version that satisfies the requirement" in output  # pip's words
    assert "environment check failed" not in output  # it stopped at the install, not at the check after it
    assert not (tmp_path / "venv" / ".installed").exists()
