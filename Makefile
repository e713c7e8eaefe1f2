# Everything a fresh machine needs: `make unlearn` (the default job) and `make test` (the suite).
# Both create and fill .venv on first use (scripts/setup_env.sh; VLLM_VARIANT=cpu|cuda to override).
PYTHON := .venv/bin/python
VENV_STAMP := .venv/.installed
CONFIG ?= configs/default.yaml
MODEL ?=
METHOD ?=
DATA ?=
NAME ?=
SET ?=
RUNS ?=
METHODS ?=
BATCH ?= configs/batch/smoke.yaml
FORGET ?=
KEEP ?=
VARIANT ?= cpu
export PYTHONUNBUFFERED := 1
export VLLM_LOGGING_LEVEL ?= WARNING

OVERRIDES = $(if $(MODEL),--set model=$(MODEL)) $(if $(DATA),--set data.source=$(DATA)) $(if $(METHOD),--set method=$(METHOD)) \
            $(if $(NAME),--set name=$(NAME)) $(foreach s,$(SET),--set $(s))

.PHONY: setup unlearn forget smoke eval report compare compare-smoke batch batch-smoke tune test test-quick lint bench bench-sync bench-ttq device-check image image-smoke image-team clean
setup: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh

unlearn: $(VENV_STAMP)
	$(PYTHON) -m pmc_unlearning.orchestrator unlearn --config $(CONFIG) $(OVERRIDES)

# A forget request on a model that already knows what must go: MODEL is the target as it is (no fine-tune), FORGET
# the questions to forget, KEEP (optional) those whose answers must stay: JSON Lines or a question a line
# (docs/your-model-and-data.md). The run folder is runs/forget unless NAME= says otherwise.
forget: $(VENV_STAMP)
	@test -n "$(FORGET)" || { echo "error: make forget needs FORGET=<a file of the questions to forget>" >&2; exit 2; }
	$(PYTHON) -m pmc_unlearning.orchestrator unlearn --config $(CONFIG) --set name=forget --set target.finetune=false \
	    --set data.forget=$(FORGET) $(if $(KEEP),--set data.keep=$(KEEP)) $(OVERRIDES)

smoke: $(VENV_STAMP)
	$(PYTHON) -m pmc_unlearning.orchestrator unlearn --config configs/smoke.yaml $(OVERRIDES)

eval: $(VENV_STAMP)
	$(PYTHON) -m pmc_unlearning.orchestrator eval --config $(CONFIG) $(OVERRIDES) $(if $(NAME),,--set name=eval)

compare: $(VENV_STAMP)
	$(PYTHON) -m pmc_unlearning.orchestrator compare --config $(CONFIG) $(OVERRIDES) $(if $(METHODS),--methods $(METHODS))

compare-smoke: $(VENV_STAMP)
	$(PYTHON) -m pmc_unlearning.orchestrator compare --config configs/smoke.yaml $(OVERRIDES) $(if $(METHODS),--methods $(METHODS))

# Many jobs on Ray Tune (configs/batch/*.yaml); SET=... (and MODEL=, DATA=, METHOD=) apply to every trial.
batch: $(VENV_STAMP)
	$(PYTHON) -m pmc_unlearning.orchestrator batch $(BATCH) $(OVERRIDES)

batch-smoke: $(VENV_STAMP)
	$(PYTHON) -m pmc_unlearning.orchestrator batch configs/batch/smoke.yaml $(OVERRIDES)

# The baselines' learning-rate search (a Tune grid search): prints the method_settings block for CONFIG.
tune: $(VENV_STAMP)
	$(PYTHON) scripts/tune_baselines.py --config $(CONFIG) $(foreach s,$(SET),--set $(s))

report: $(VENV_STAMP)
	$(PYTHON) -m pmc_unlearning.reporting.side_by_side $(RUNS)

# Two workers, a test file each at a time, each (and every job it starts) with its share of the cores' threads;
# the session's smoke job is made once for both (tests/conftest.py).
test: $(VENV_STAMP)
	$(PYTHON) -m pytest -q -n 2 --dist loadfile

# The tests that need no Ray, vLLM engine or job (tests/conftest.py: the `heavy` marker), in under a minute.
test-quick: $(VENV_STAMP)
	$(PYTHON) -m pytest -q -m "not heavy"

# The linter's short rule set (pyproject.toml: [tool.ruff]).
lint: $(VENV_STAMP)
	.venv/bin/ruff check .

bench: $(VENV_STAMP)
	$(PYTHON) scripts/bench_sampling.py $(if $(MODEL),--model $(MODEL))

# One weight push per path (object store, vLLM's interface with shared memory) and its share of a PMC round.
bench-sync: $(VENV_STAMP)
	$(PYTHON) scripts/bench_sync.py --config $(CONFIG) $(foreach s,$(SET),--set $(s))

# Time to a forgotten model: the project's PMC job against the reference-style loop (scripts/reference_pmc.py),
# same target and settings, back to back: both loops' times, their ratio, both after-metrics.
bench-ttq: $(VENV_STAMP)
	$(PYTHON) scripts/bench_ttq.py --config $(CONFIG) $(foreach s,$(SET),--set $(s))

# For a GPU machine with torch and transformers (no .venv, no vLLM needed): see scripts/device_check.sh.
device-check:
	bash scripts/device_check.sh

# The container image (docker/Dockerfile) with docker or podman: VARIANT=cpu|cuda. image-smoke runs `make smoke`
# inside the CPU image with runs/ mounted and checks the run folder it leaves (scripts/image.sh); SAME_AS=runs/smoke
# also checks that its numbers equal those of that run, made outside the image.
image:
	bash scripts/image.sh build $(VARIANT)

image-smoke:
	bash scripts/image.sh smoke cpu

# Two users of the image's group run jobs side by side on one group-shared runs folder and cache, then try to
# change each other's (scripts/image.sh team; docs/shared-machines.md).
image-team:
	bash scripts/image.sh team cpu

clean:
	rm -rf runs .cache
