"""A cheap, stable identity of a model folder, for cache keys."""

import hashlib
from pathlib import Path

# Files whose content defines the model; weights are identified by name, size and mtime instead of content
# because hashing hundreds of MB on every run would cost more than the work it keys.
_CONTENT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json")
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf")


def fingerprint_folder(folder: Path) -> str:
    """sha256 hex digest over the folder's config/tokenizer files and its weight files' name, size, mtime."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in _CONTENT_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for path in _weight_files(folder):
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def _weight_files(folder: Path) -> list[Path]:
    return sorted({path for pattern in _WEIGHT_PATTERNS for path in folder.glob(pattern)})
