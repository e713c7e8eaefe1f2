"""Cache folders that appear whole or not at all."""

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


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
