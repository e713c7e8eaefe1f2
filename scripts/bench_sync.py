"""Benchmark: one weight push from the trainer actor into the sampler actor's vLLM engine, per path.

    make bench-sync                      # the cached target model of `make unlearn` (run that first)
    .venv/bin/python scripts/bench_sync.py --config configs/smoke.yaml --pushes 5

The paths: `object_store` (a state dict, trainer -> Ray's object store -> sampler -> vLLM reload) and `shm`
(vLLM's weight-transfer interface with the project's shared-memory backend, transfer/weight_transfer.py).
Each is timed over `--pushes` pushes after one warm-up push, on the same actors; one PMC round of the
job (sampling, scoring and training, no push) is timed too, so the table gives each push's share of a
round. After the pushes, both paths must leave the engine with the same greedy answers.
"""
from __future__ import annotations

import argparse
import statistics
import time

from pmc_unlearning.cluster.actors import release
from pmc_unlearning.cluster.groups import start_samplers, start_trainers
from pmc_unlearning.cluster.placement import job_placement
from pmc_unlearning.cluster.session import ray_session
from pmc_unlearning.cluster.weight_sync import connect_weight_transfer, sync_weights
from pmc_unlearning.configs import CONFIG_DIR, load_config
from pmc_unlearning.methods.method import Task
from pmc_unlearning.methods.pmc import PMC
from pmc_unlearning.methods.rounds import run_rounds
from pmc_unlearning.orchestrator.pipeline import finetuned_dir, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIG_DIR / "default.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--pushes", type=int, default=5)
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    bench, base_dir, prompt = prepare(config)
    target = finetuned_dir(base_dir, bench.fingerprint(), prompt, config)
    if not (target / "config.json").is_file():
        raise SystemExit(f"no cached target model at {target}: run `make unlearn` (or make smoke) first")
    forget = [prompt.prompt(row.question) for row in bench.forget]
    retain = [prompt.example(row.question, row.answer) for row in bench.retain]
    with ray_session(), job_placement(config) as placement:
        sampler, trainer = start_samplers(target, config, placement), start_trainers(target, config, placement, seed=0)
        try:
            dtype = sampler.weight_dtype()
            originals = [c.text.strip() for c in sampler.greedy(forget)]
            rounds = []
            one_round = config.model_copy(update={"pmc": config.pmc.model_copy(update={"rounds": 1})})
            run_rounds(PMC(one_round, Task(prompt, bench.forget, retain, originals)), sampler, trainer, dtype,
                       log=rounds.append)
            seconds = rounds[0]["seconds"]
            round_s = seconds["sampling"] + seconds["scoring"] + seconds["training"]
            timings, answers = {}, {}
            for path in ("object_store", "shm"):
                if path == "shm":
                    connect_weight_transfer(trainer, sampler, dtype)
                sync_weights(trainer, sampler, dtype)  # warm-up
                pushes = []
                for _ in range(args.pushes):
                    started = time.perf_counter()
                    sync_weights(trainer, sampler, dtype)
                    pushes.append(time.perf_counter() - started)
                timings[path] = pushes
                answers[path] = [c.token_ids for c in sampler.greedy(forget)]
        finally:
            release(*sampler.members, *trainer.members)
    print(f"\nmodel {target} ({dtype}); one PMC round without its push: {round_s:.2f} s "
          f"(sampling {seconds['sampling']:.2f}, training {seconds['training']:.2f})\n")
    print("| path | push median (s) | min | max | share of a round |")
    print("|---|---|---|---|---|")
    for path, pushes in timings.items():
        median = statistics.median(pushes)
        print(f"| {path} | {median:.3f} | {min(pushes):.3f} | {max(pushes):.3f} | {median / (round_s + median):.1%} |")
    ratio = statistics.median(timings["shm"]) / statistics.median(timings["object_store"])
    print(f"\nshm / object_store: {ratio:.2f}; same greedy answers after both: {answers['shm'] == answers['object_store']}")


if __name__ == "__main__":
    main()
