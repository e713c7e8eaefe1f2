"""The check after every weight push, on fingerprints as the trainer and the engines report them."""
from __future__ import annotations

import pytest

from pmc_unlearning.cluster.weight_sync import TrainingDiverged, check_push


def test_weights_that_are_not_finite_end_the_job_as_diverged_training_not_as_a_failed_push():
    sent = {"model.embed_tokens.weight": ([8, 4], 1.5), "model.norm.weight": ([4], float("nan"))}
    with pytest.raises(TrainingDiverged, match="training diverged: 1 weights are not finite numbers any more "
                                                "\\(model.norm.weight\\)"):
        check_push(sent, [{"model.embed_tokens.weight": ([8, 4], 1.5), "model.norm.weight": ([4], float("nan"))}])
