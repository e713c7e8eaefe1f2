"""Training: the losses, the Trainer that owns the torch model, and the target fine-tune."""
from pmc_unlearning.trainer.losses import Batch, nll, pack, sequence_logprobs
from pmc_unlearning.trainer.trainer import Trainer

__all__ = ["Batch", "Trainer", "nll", "pack", "sequence_logprobs"]
