"""Model folders for the unlearning runs: the embedded SmolLM2 default, a tiny test model, local and hub models."""

from models.errors import ModelError
from models.fingerprint import fingerprint_folder
from models.resolve import DEFAULT_MODEL, TINY_MODEL, resolve_model
from models.smollm2 import smollm2_folder
from models.tiny import tiny_model_folder

__all__ = [
    "DEFAULT_MODEL",
    "TINY_MODEL",
    "ModelError",
    "fingerprint_folder",
    "resolve_model",
    "smollm2_folder",
    "tiny_model_folder",
]
