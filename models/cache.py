"""Cache folders that appear whole or not at all, named by a key of what they depend on."""

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def build_folder_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Return `target`, building it first with `build(tmp_folder)` if it does not exist yet.

    The build writes into a temporary sibling that is renamed at the end: an interrupted build leaves only
    a `.tmp-*` folder, never a half-written `target` that a later run would trust.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        build(tmp)
        tmp.rename(target)
    except OSError:
        # Another process finished the same build first: its folder is as good as ours.
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def settings_key(settings: dict[str, Any]) -> str:
    """A short stable key for a JSON-able description of everything a cached folder depends on."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
