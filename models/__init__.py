"""Model folders for the unlearning runs: the embedded SmolLM2 default, a tiny test model, local and hub models.

Only light modules are imported here: the command line checks a model folder before torch is loaded.
The builders live in models.smollm2 and models.tiny.
"""

from pmc_unlearning.models.errors import ModelError
from pmc_unlearning.models.fingerprint import fingerprint_folder
from pmc_unlearning.models.folder import check_model_folder
from pmc_unlearning.models.resolve import DEFAULT_MODEL, TINY_MODEL, check_model_source, resolve_model

__all__ = [
    "DEFAULT_MODEL",
    "TINY_MODEL",
    "ModelError",
    "check_model_folder",
    "check_model_source",
    "fingerprint_folder",
    "resolve_model",
]
