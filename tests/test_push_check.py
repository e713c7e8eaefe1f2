"""The check after every weight push, on fingerprints and probe log-probabilities as the trainer and the engines
report them."""
from __future__ import annotations

import pytest

from pmc_unlearning.cluster.weight_sync import PROBE_TOLERANCE, PushNotServed, TrainingDiverged, check_probe, check_push


def test_weights_that_are_not_finite_end_the_job_as_diverged_training_not_as_a_failed_push():
    sent = {"model.embed_tokens.weight": ([8, 4], 1.5), "model.norm.weight": ([4], float("nan"))}
    with pytest.raises(TrainingDiverged, match="training diverged: 1 weights are not finite numbers any more "
                                                "\\(model.norm.weight\\)"):
        check_push(sent, [[{"model.embed_tokens.weight": ([8, 4], 1.5), "model.norm.weight": ([4], float("nan"))}]])


def test_every_worker_of_every_engine_is_compared_and_the_one_that_differs_is_named():
    sent = {"model.norm.weight": ([4], 1.5), "model.layers.0.mlp.down_proj.weight": ([8, 4], 2.0)}
    sharded = {"model.norm.weight": ([4], 1.5), "model.layers.0.mlp.down_proj.weight": ([8, 2], 1.0)}  # not comparable
    check_push(sent, [[sharded, sharded], [dict(sent)]])
    stale = {**sharded, "model.norm.weight": ([4], 1.25)}
    with pytest.raises(PushNotServed, match=r"^engine 1 \(worker 1\) does not serve the weights the trainer pushed "
                                            r"\(model.norm.weight differ\)"):
        check_push(sent, [[sharded, sharded], [sharded, stale]])


@pytest.mark.parametrize("dtype", sorted(PROBE_TOLERANCE))
def test_probe_log_probabilities_further_than_the_dtypes_tolerance_from_the_trainers_are_a_push_that_did_not_arrive(dtype):
    tolerance = PROBE_TOLERANCE[dtype]
    expected = [-1.0, -2.0, -0.5]
    check_probe(expected, [[-1.0, -2.0 + 0.9 * tolerance, -0.5], list(expected)], dtype)
    with pytest.raises(PushNotServed, match=rf"^engine 1 does not serve the weights the trainer pushed \(its "
                                            rf"log-probabilities of a probe text differ from the trainer's by up to "
                                            rf"{1.5 * tolerance:.3g}, more than the {tolerance:g} a {dtype} engine"):
        check_probe(expected, [list(expected), [-1.0, -2.0, -0.5 - 1.5 * tolerance]], dtype)
    with pytest.raises(PushNotServed, match="differ from the trainer's by up to nan"):
        check_probe(expected, [[-1.0, float("nan"), -0.5]], dtype)
