"""A tiny Llama with its own BPE tokenizer, built in seconds for tests and smoke runs."""

from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from pmc_unlearning.models.errors import ModelError
from pmc_unlearning.models.progress import ProgressClass, Silent
from pmc_unlearning.storage.files import build_folder_once, settings_key

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN]
VOCAB_TARGET = 2000
MAX_POSITIONS = 256
# Shape measured at 3.4M parameters: small enough to train and sample in seconds on two cores.
ARCHITECTURE = {
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 688,
    "max_position_embeddings": MAX_POSITIONS,
    "tie_word_embeddings": False,
}
# Bump when the build changes in a way the cache key would not otherwise see.
_BUILD_VERSION = 1


def tiny_model_folder(cache_dir: Path, corpus: Sequence[str], seed: int = 0, progress: ProgressClass = Silent) -> Path:
    """Build (once) and return an HF folder holding a randomly initialised tiny Llama and its tokenizer."""
    if not corpus:
        raise ModelError("the tiny model needs a non-empty corpus to train its tokenizer on")
    target = Path(cache_dir) / f"tiny-{_cache_key(corpus, seed)}"
    return build_folder_once(target, lambda folder: _build(folder, corpus, seed, progress))


def _cache_key(corpus: Sequence[str], seed: int) -> str:
    recipe = {
        "version": _BUILD_VERSION,
        "seed": seed,
        "vocab_target": VOCAB_TARGET,
        "architecture": ARCHITECTURE,
        "corpus": list(corpus),
    }
    return settings_key(recipe)


def _build(folder: Path, corpus: Sequence[str], seed: int, progress: ProgressClass) -> None:
    with progress("tiny model build", total=2) as steps:
        with steps.part("tokenizer"):
            tokenizer = _train_tokenizer(corpus)
            tokenizer.save_pretrained(folder)
        with steps.part("weights"):
            model = _init_model(tokenizer, seed)
            model.save_pretrained(folder)


def _train_tokenizer(corpus: Sequence[str]) -> PreTrainedTokenizerFast:
    # Byte-level BPE: every string encodes, whatever characters the training corpus happened to contain.
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=MAX_POSITIONS,
    )


def _init_model(tokenizer: PreTrainedTokenizerFast, seed: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        **ARCHITECTURE,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype=torch.float32,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).to(torch.float32)
