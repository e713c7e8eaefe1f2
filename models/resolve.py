"""Turn a model name from the command line or a config into a local HF model folder."""

import os
import re
from collections.abc import Sequence
from pathlib import Path

from pmc_unlearning.models.errors import ModelError
from pmc_unlearning.models.folder import check_model_folder
from pmc_unlearning.models.progress import ProgressClass, Silent

DEFAULT_MODEL = "smollm2-135m"
TINY_MODEL = "tiny"
LOCAL_FOLDER_HINT = (
    "pass a local folder instead, e.g. `make unlearn MODEL=/path/to/hf-folder` "
    "(a folder with config.json, tokenizer files and weights in safetensors)"
)
# "owner/name" or a bare "name", as the hub spells repositories; anything else is meant as a path.
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")
# Only what transformers and vLLM load: repos often also carry .bin, .gguf or ONNX copies of the weights.
_HUB_FILE_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"]


def check_model_source(name: str) -> None:
    """The checks that need no download and no torch: a local folder is complete; anything else is a built-in
    name or looks like a hub id. Run before the job starts, so bad input fails in a second."""
    if name in (DEFAULT_MODEL, TINY_MODEL):
        return
    local = Path(name).expanduser()
    if local.exists():
        check_model_folder(local)
    elif not _HUB_ID.match(name):
        raise ModelError(f"model {name!r}: no such folder, and not a hub id (owner/name); {LOCAL_FOLDER_HINT}")


def resolve_model(name: str, cache_dir: Path, tokenizer_corpus: Sequence[str] = (), revision: str | None = None,
                  progress: ProgressClass = Silent) -> Path:
    """Return the folder of `name`: a built-in model, a local HF folder, or a hub id downloaded into cache_dir
    (at `revision`, a branch, tag or commit, when given). A built-in model built now reports to `progress`."""
    check_model_source(name)
    cache_dir = Path(cache_dir)
    # The builders import torch and transformers: only when they are needed.
    if name == DEFAULT_MODEL:
        from pmc_unlearning.models.smollm2 import smollm2_folder

        return smollm2_folder(cache_dir, progress)
    if name == TINY_MODEL:
        from pmc_unlearning.models.tiny import tiny_model_folder

        return tiny_model_folder(cache_dir, tokenizer_corpus, progress=progress)
    local = Path(name).expanduser()
    if local.exists():
        return local.resolve()
    return _download_from_hub(name, cache_dir, revision)


def _download_from_hub(repo_id: str, cache_dir: Path, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    at = f" at revision {revision!r}" if revision else ""
    try:
        folder = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=cache_dir / "hub",
                allow_patterns=_HUB_FILE_PATTERNS,
                # huggingface_hub reads HF_HUB_OFFLINE once at import; read it now so that it always counts.
                local_files_only=_hub_offline(),
            )
        )
    except Exception as error:  # noqa: BLE001 - network, auth, bad id and offline mode all end the same way
        raise ModelError(
            f"could not get model {repo_id!r}{at} from the Hugging Face hub (the hub could not be reached or "
            f"the id was not found: {type(error).__name__}); {LOCAL_FOLDER_HINT}"
        ) from error
    check_model_folder(folder)
    return folder


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
