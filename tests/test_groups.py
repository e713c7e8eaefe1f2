"""One job on several trainer ranks and several engines: the same unlearning as one of each.

Two trainer ranks (torch.distributed on gloo, the model sharded with FSDP2, each rank half of every batch)
and two vLLM engines (each round's questions split between them, every push reaching both) against the
smoke job on one of each, from the same cached target. Tolerance: the ranks' gradients are summed in
another order than one process sums them (float32 rounding, ~1e-7 relative), and AdamW divides each
weight's step by that weight's own gradient scale, so a weight whose gradient is near zero can step
differently, and the difference grows over the rounds; measured, the per-round losses agree to 1e-6
relative after the first round and to 4e-4 after twenty. Selections, scores and the greedy
answers after are compared exactly.
"""
from __future__ import annotations

import json

import pytest
import ray
import torch

from pmc_unlearning.cluster.actors import ActorProxy, release
from pmc_unlearning.cluster.groups import TrainerGroup, call_each, split
from pmc_unlearning.configs import CONFIG_DIR, load_config
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.trainer import Trainer

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick

# Two ranks reduce in another order than one: the same to rounding at first, then drifting as the rounds compound
# it (relative, measured: under 1e-5 through round 8, then up to 2.8e-3 by round 20 with one thread per actor and
# torch's AVX2 kernels, OMP_NUM_THREADS=1 ATEN_CPU_CAPABILITY=avx2; 3e-5 with two threads). A sharding fault shows
# in the first rounds.
EARLY_ROUNDS, EARLY_TOLERANCE, LOSS_TOLERANCE = 8, 1e-4, 1e-2


def test_split_covers_every_prompt_once_in_order():
    assert split(5, 2) == [slice(0, 3), slice(3, 5)]
    assert split(1, 3) == [slice(0, 1), slice(1, 1), slice(1, 1)]
    for total in range(9):
        parts = split(total, 4)
        assert [i for part in parts for i in range(total)[part]] == list(range(total))


def test_two_trainer_ranks_and_two_engines_unlearn_as_one_of_each(smoke_run, ray_cluster, tmp_path):
    from pmc_unlearning.orchestrator.pipeline import run_unlearning

    one, one_folder = smoke_run
    config = load_config(CONFIG_DIR / "smoke.yaml", [
        f"cache_dir={one.cache_dir}", f"runs_dir={tmp_path}", "allow_external_dirs=true", "name=grouped", "ray.trainer_workers=2", "ray.sampler_replicas=2",
        "ray.num_cpus_per_actor=0.5"])  # four actors in the tests' two-CPU Ray instance: Ray's CPUs are logical
    folder = run_unlearning(config)

    rounds = [[json.loads(line) for line in (f / "metrics.jsonl").read_text().splitlines()] for f in (one_folder, folder)]
    assert len(rounds[0]) == len(rounds[1]) == one.pmc.rounds
    for single, grouped in zip(*rounds):
        for key in ("sampled_questions", "selected_score_mean", "selected_score_max", "questions_at_zero"):
            assert single[key] == grouped[key], (single["round"], key)
        for key in ("loss", "forget_loss", "retain_nll"):
            tolerance = EARLY_TOLERANCE if single["round"] <= EARLY_ROUNDS else LOSS_TOLERANCE
            assert grouped[key] == pytest.approx(single[key], rel=tolerance), (single["round"], key)

    answers = [json.loads((f / "answers.json").read_text())["after"] for f in (one_folder, folder)]
    assert answers[0] == answers[1]
    after = [json.loads((f / "eval.json").read_text())["after"] for f in (one_folder, folder)]
    for key in ("forget_rouge_l", "retain_rouge_l", "model_utility"):
        assert after[1][key] == pytest.approx(after[0][key], abs=1e-3), key

    placed = json.loads((folder / "placement.json").read_text())
    roles = placed["roles"]
    assert placed["weight_transfer"] == "shm"
    assert [roles[label]["bundle"] for label in ("sampler 0", "sampler 1", "trainer 0", "trainer 1")] == [0, 1, 2, 3]
    assert len({roles[label]["pid"] for label in roles}) == 5  # the job and four actors, each its own process


def trainer_group(model, ranks: int) -> TrainerGroup:
    """`ranks` Trainer actors joined into one group, as orchestrator.groups.start_trainers makes them."""
    members = [ActorProxy(ray.remote(Trainer).options(num_cpus=0).remote(str(model), precision="fp32", seed=0,
                                                                         threads=1), f"rank {i}", "trainer", i)
               for i in range(ranks)]
    if ranks > 1:
        address = members[0].group_address()
        call_each(members, "join_group", [((address, rank, ranks), {}) for rank in range(ranks)])
    return TrainerGroup(members)


@pytest.mark.parametrize("saved_by, resumed_by", [(2, 1), (1, 2)])
def test_a_trainer_state_resumes_on_another_number_of_ranks(saved_by, resumed_by, ray_cluster, tiny_model,
                                                             small_bench, tmp_path):
    """torch.distributed.checkpoint: each rank writes its shards, any group size reads them back, exactly."""
    saver, resumer = trainer_group(tiny_model, saved_by), trainer_group(tiny_model, resumed_by)
    prompt = PromptFormat(Trainer(tiny_model).tokenizer)
    forget = [prompt.example(r.question, r.answer) for r in small_bench.forget]
    retain = [prompt.example(r.question, r.answer) for r in small_bench.retain[:8]]
    for group in (saver, resumer):
        group.configure_optimizer(1e-3, 0.01, warmup_steps=1)
    for _ in range(2):
        saver.unlearn_round(forget, retain, 1.0, 2)
    saver.save_state(str(tmp_path / "state"), then_write={str(tmp_path / "state.json"): "{}"})
    saver.wait_for_saves()
    resumer.load_state(str(tmp_path / "state"))

    saved, resumed = saver.full_state_dict(), resumer.full_state_dict()
    assert saved.keys() == resumed.keys()
    for name in saved:
        assert torch.equal(saved[name], resumed[name]), name
    # Optimizer, scheduler and random streams came along: the next round is the same, within the tolerance of
    # summing gradients over another number of ranks.
    logs = [group.unlearn_round(forget, retain, 1.0, 2) for group in (saver, resumer)]
    for key in ("loss", "forget_loss", "retain_nll"):
        assert logs[1][key] == pytest.approx(logs[0][key], rel=1e-5), key
    for group in (saver, resumer):
        release(*group.members)


# ---- the GPU paths, as far as a CPU machine checks them -------------------------------------------------

def test_weight_transfer_backends_are_resolved_per_device_and_refused_where_they_cannot_work():
    from pmc_unlearning.transfer.backends import engine_backend

    assert engine_backend("auto", cuda=False, colocated=False) == engine_backend("auto", False, True) == "shm"
    assert engine_backend("auto", cuda=True, colocated=True) == "ipc"
    assert engine_backend("auto", cuda=True, colocated=False) == "nccl"
    assert engine_backend("object_store", cuda=True, colocated=True) == "object_store"
    for backend in ("ipc", "nccl"):
        with pytest.raises(ValueError, match=f"engine.weight_transfer '{backend}' needs CUDA"):
            engine_backend(backend, cuda=False, colocated=True)


def test_the_cuda_backends_init_infos_are_vllms_own(ray_cluster):
    """What a GPU job hands vLLM's trainer factory, built here: the classes and fields of vLLM 0.32's
    `ipc` and `nccl` backends (a renamed class or field fails here, not first on a GPU)."""
    from vllm.distributed.weight_transfer.factory import WeightTransferTrainerFactory

    from pmc_unlearning.transfer.weight_transfer import trainer_init_infos

    [ipc] = trainer_init_infos("ipc", rank=1, engines=3)
    assert (ipc.backend, ipc.rank, ipc.is_sender) == ("ipc", 1, False)
    nccl = trainer_init_infos("nccl", rank=0, engines=3, engine_workers=2)
    assert [(info.backend, info.world_size, info.is_sender) for info in nccl] == [("nccl", 3, True)] * 3
    assert len({info.master_port for info in nccl}) == 3  # a group per engine
    for backend in ("shm", "ipc", "nccl"):
        assert backend in WeightTransferTrainerFactory._registry
    with pytest.raises(ValueError, match="unknown weight-transfer backend 'gloo'"):
        trainer_init_infos("gloo", rank=0, engines=1)


def test_an_engine_refuses_tensor_parallelism_on_the_cpu(tiny_model):
    from pmc_unlearning.configs import EngineConfig
    from pmc_unlearning.engine import Sampler

    with pytest.raises(ValueError, match="engine.tensor_parallel_size 2 needs CUDA"):
        Sampler(tiny_model, EngineConfig(tensor_parallel_size=2))


@pytest.mark.parametrize("engines, ranks, colocate, expected", [
    (1, 1, False, [{"CPU": 1}, {"CPU": 1}]),
    (2, 2, False, [{"CPU": 1}] * 4),
    (2, 1, True, [{"CPU": 2}, {"CPU": 1}]),
    (1, 1, True, [{"CPU": 2}]),
])
def test_a_job_has_a_bundle_per_engine_and_rank_or_one_per_pair_when_colocated(engines, ranks, colocate, expected):
    from pmc_unlearning.cluster.bundles import job_bundles
    from pmc_unlearning.configs import RayConfig

    ray_config = RayConfig(sampler_replicas=engines, trainer_workers=ranks, colocate=colocate)
    assert job_bundles(ray_config, gpus=False) == expected
    with_gpus = job_bundles(ray_config, gpus=True, tensor_parallel_size=2)
    gpus = [bundle.get("GPU", 0) for bundle in with_gpus]
    assert sum(gpus) == engines * 2 * 0.5 + ranks * 0.5  # an engine's share times its tensor-parallel size


def test_every_engine_receives_every_push_from_a_sharded_trainer(ray_cluster, tiny_model, small_bench):
    """Two trainer ranks push through the shared-memory backend to two engines: after each push, each
    engine's greedy ids are the trainer's own (HF) greedy ids, and they changed."""
    from pmc_unlearning.cluster.groups import SamplerGroup
    from pmc_unlearning.cluster.weight_sync import connect_weight_transfer, sync_weights
    from pmc_unlearning.configs import EngineConfig
    from pmc_unlearning.engine import Sampler

    engine = EngineConfig(dtype="float32", max_model_len=128, max_new_tokens=16, kv_cache_memory_bytes=64 * 2**20)
    engines = SamplerGroup([ActorProxy(ray.remote(Sampler).options(num_cpus=0).remote(str(tiny_model), engine),
                                       f"engine {i}", "sampler", i) for i in range(2)])
    trainers = trainer_group(tiny_model, 2)
    prompt = PromptFormat(Trainer(tiny_model).tokenizer)
    questions = [prompt.prompt(row.question) for row in small_bench.full[:6]]
    examples = [prompt.example(row.question, row.answer) for row in small_bench.full[:8]]
    each_engines_ids = lambda: [[list(c.token_ids) for c in member.greedy(questions)] for member in engines.members]

    before = each_engines_ids()
    connect_weight_transfer(trainers, engines, "float32")
    trainers.configure_optimizer(5e-3, 0.0, warmup_steps=0)
    for _ in range(2):
        for _ in range(2):
            trainers.sft_step(examples)
        sync_weights(trainers, engines, "float32")
        expected = trainers.greedy(questions, engine.max_new_tokens)
        assert each_engines_ids() == [expected, expected]
    assert sum(a != b for a, b in zip(expected, before[0])) >= len(questions) // 2
    release(*engines.members, *trainers.members)
