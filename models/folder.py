"""What makes a folder an HF model folder that transformers and vLLM can load, checked before anything heavy
runs: a readable config.json, tokenizer files and weights (every shard an index names)."""
from __future__ import annotations

import json
from pathlib import Path

from pmc_unlearning.models.errors import ModelError

# Any one of these is a complete tokenizer: fast (tokenizer.json), sentencepiece, BPE vocab + merges, WordPiece.
TOKENIZER_FILE_SETS = (("tokenizer.json",), ("tokenizer.model",), ("vocab.json", "merges.txt"), ("vocab.txt",))
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def check_model_folder(folder: Path) -> None:
    """Raise ModelError naming the folder and everything a loadable model folder lacks."""
    if not folder.is_dir():
        raise ModelError(f"{folder} is not a folder: a model is an HF folder with config.json, tokenizer files and weights")
    _check_config(folder / "config.json")
    missing = []
    if not any(all((folder / name).is_file() for name in names) for names in TOKENIZER_FILE_SETS):
        missing.append("tokenizer files (tokenizer.json, tokenizer.model, vocab.json + merges.txt, or vocab.txt)")
    if not any(path.is_file() for pattern in WEIGHT_PATTERNS for path in folder.glob(pattern)):
        missing.append("weights (*.safetensors or pytorch_model*.bin)")
    missing += _missing_shards(folder)
    if missing:
        raise ModelError(f"{folder} is not a complete HF model folder: it has no {' and no '.join(missing)}")


def _check_config(path: Path) -> None:
    if not path.is_file():
        raise ModelError(f"{path.parent} is not an HF model folder: it has no config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise ModelError(f"{path}: not a model config (a JSON object with a 'model_type' key)")


def _missing_shards(folder: Path) -> list[str]:
    """The weight files that an index (sharded checkpoint) names but the folder lacks."""
    missing = []
    for index_name in WEIGHT_INDEXES:
        index = folder / index_name
        if not index.is_file():
            continue
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise ModelError(f"{index}: not a weight index with a 'weight_map' ({err})") from None
        missing += [f"shard {name} (named in {index_name})" for name in sorted(shards) if not (folder / name).is_file()]
    return missing
