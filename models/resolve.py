"""Turn a model name from the command line or a config into a local HF model folder."""

import os
from collections.abc import Sequence
from pathlib import Path

from models.errors import ModelError
from models.smollm2 import smollm2_folder
from models.tiny import tiny_model_folder

DEFAULT_MODEL = "smollm2-135m"
TINY_MODEL = "tiny"
LOCAL_FOLDER_HINT = (
    "pass a local folder instead, e.g. `make unlearn MODEL=/path/to/hf-folder` "
    "(a folder with config.json, tokenizer files and weights in safetensors)"
)
# Only what transformers and vLLM load: repos often also carry .bin, .gguf or ONNX copies of the weights.
_HUB_FILE_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"]


def resolve_model(name: str, cache_dir: Path, tokenizer_corpus: Sequence[str] = ()) -> Path:
    """Return the folder of `name`: a built-in model, a local HF folder, or a hub id downloaded into cache_dir."""
    cache_dir = Path(cache_dir)
    if name == DEFAULT_MODEL:
        return smollm2_folder(cache_dir)
    if name == TINY_MODEL:
        return tiny_model_folder(cache_dir, tokenizer_corpus)
    local = Path(name).expanduser()
    if local.exists():
        return _local_folder(local)
    return _download_from_hub(name, cache_dir)


def _local_folder(path: Path) -> Path:
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not an HF model folder: it has no config.json")
    return path.resolve()


def _download_from_hub(repo_id: str, cache_dir: Path) -> Path:
    from huggingface_hub import snapshot_download

    try:
        folder = Path(
            snapshot_download(
                repo_id,
                cache_dir=cache_dir / "hub",
                allow_patterns=_HUB_FILE_PATTERNS,
                # huggingface_hub reads HF_HUB_OFFLINE once at import; read it now so that it always counts.
                local_files_only=_hub_offline(),
            )
        )
    except Exception as error:  # noqa: BLE001 - network, auth, bad id and offline mode all end the same way
        raise ModelError(
            f"could not get model {repo_id!r} from the Hugging Face hub (the hub could not be reached or "
            f"the id was not found: {type(error).__name__}); {LOCAL_FOLDER_HINT}"
        ) from error
    if not (folder / "config.json").is_file():
        raise ModelError(f"hub model {repo_id!r} has no config.json, so it is not an HF model; {LOCAL_FOLDER_HINT}")
    return folder


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
