"""The run configuration: one pydantic model per concern, defaults that run, unknown keys refused.

A run is described by a YAML preset (configs/*.yaml) plus `key.sub=value` overrides from the command line.
Everything resolved here is saved next to the run's results. Every mistake is refused here, as a ConfigError
that names the file or key, before anything runs.
"""
from __future__ import annotations

import copy
import io
import json
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pmc_unlearning.configs.methods import METHOD_CLASSES

CONFIG_DIR = Path(__file__).resolve().parent
PROJECT_DIR = CONFIG_DIR.parent
METHODS = tuple(METHOD_CLASSES)  # configs/methods.py: the one list of methods
Method = Literal[METHODS]
# A run writes into runs/<name>.partial/ and keeps the run it replaces as runs/<name>.previous/ (run_folder.py).
RUN_FOLDER_SUFFIXES = (".partial", ".previous")
# What a method's settings may not change: which method runs, under which name, with which settings.
RUN_IDENTITY_KEYS = ("method", "name", "method_settings")
# A run's folder takes suffixes (.partial, .previous) and a lock file beside it (.<name>.lock), and a file name
# holds 255 bytes at most: a name this long leaves room for all of them.
MAX_NAME_LENGTH = 100
# Where the project's code, history and environment live: run and cache folders are replaced and deleted
# wholesale, so neither may be the project folder or lie in one of these, whatever allow_external_dirs says.
CODE_FOLDERS = ("cluster", "configs", "data", "engine", "evaluation", "methods", "models", "orchestrator", "reporting",
                "storage", "telemetry", "trainer", "transfer", "scripts", "tests", "docker", "docs", ".git", ".venv")


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the file and key."""


def _as_yaml(value: Any) -> str:
    """A value as it reads in YAML (true, null, nan), so a message shows what the user wrote."""
    return json.dumps(value) if isinstance(value, bool) or value is None else repr(value)


def _real_number(value: Any) -> float | None:
    """`value` as a float if it is a number or a string that spells one, else None. Strings count because
    YAML 1.1 reads `1e-4` (no dot) as a string, and that is what people type on the command line; booleans
    do not, though Python and pydantic's lax mode treat `yes` and `true` as 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def _finite_float(value: Any) -> float:
    number = _real_number(value)
    if number is None or not math.isfinite(number):  # `.nan` and `.inf` are valid YAML floats
        raise PydanticCustomError("finite_number", "must be a finite number, got {value}", {"value": _as_yaml(value)})
    return number


def _whole_int(value: Any) -> int:
    number = _real_number(value)
    if number is None or not number.is_integer():  # is_integer() is False for nan and inf too
        raise PydanticCustomError("whole_number", "must be a whole number, got {value}", {"value": _as_yaml(value)})
    return value if isinstance(value, int) else int(number)


# Every numeric setting is one of these two, so no setting takes a boolean, nan or inf.
FiniteFloat = Annotated[float, BeforeValidator(_finite_float)]
WholeInt = Annotated[int, BeforeValidator(_whole_int)]
# Seeds reach Python's random, numpy (which takes 0 <= seed < 2**32 and refuses the rest) and vLLM only once the
# job runs, after the heavy imports: the same range here, so a bad seed is refused in a second instead.
Seed = Annotated[int, BeforeValidator(_whole_int), Field(ge=0, lt=2**32)]

# Every number has a range (tests/test_config_bounds.py holds every field to one). The upper ends lie far beyond
# any real job and low enough that nothing downstream overflows, pads a tensor to no end or loops for ever.
MAX_PASSES = 10_000  # rounds of unlearning, epochs of fine-tuning: each a pass over a split
MAX_BATCH = 2**16  # rows of one optimizer step or forward pass
MAX_SAMPLES = 10_000  # answers sampled per question: the engine holds them all in one request
MAX_TOKENS = 2**24  # tokens (or words) of one context: beyond the longest context window of today's models
MAX_ROWS = 1_000_000  # rows drawn from a split or corpus: beyond any benchmark (TOFU's full split has 4,000)
# GPUs of one engine, engines and trainer ranks of one job: a bundle each, listed before the cluster is asked.
MAX_GPUS = 4096
MAX_THREADS = 4096  # CPU threads of one actor: more than any machine's cores (torch takes the count as a C int)
# A week, for a call's timeout or the time between full checkpoints: longer than either needs, and far inside
# what Ray takes (a timeout in milliseconds, as a 64-bit integer).
MAX_SECONDS = 7 * 24 * 3600
MAX_LR = 1.0  # AdamW moves each weight by about lr per step: beyond 1, by more than the weights' own size
# AdamW scales each weight by 1 - lr * weight_decay a step: with lr and weight_decay at most 1, never below 0.
MAX_WEIGHT_DECAY = 1.0
# vLLM refuses a sampling temperature above 2, and raises one below 0.01 to 0.01 (SamplingParams).
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 2.0
# A loss term's weight or scale: a million times the other terms is beyond any use, and keeps the squared
# gradients of AdamW's second moment far inside float32's range.
MAX_LOSS_WEIGHT = 1e6
# NPO, SimNPO and DPO scale their loss by 2/beta and a log-ratio (hundreds of nats) by beta: the defaults are 0.1
# and 4.5, and far beyond this range one or the other leaves float32's.
MIN_BETA, MAX_BETA = 1e-4, 1e4
MAX_RELEARN_STEPS = 100_000  # optimizer steps of the relearning attack, one after another (the default curve: 20)
MAX_ACTOR_CPUS, MAX_ACTOR_GPUS = 1024, 64  # one actor's share: a bundle lies on one node
RAY_UNIT = 1e-4  # Ray counts resources in units of 0.0001: a smaller share would round to none


def _ray_share(amount: float) -> float:
    if 0 < amount < RAY_UNIT:
        raise PydanticCustomError("ray_unit", "must be 0 or at least {unit} (Ray counts resources in units of "
                                  "{unit}), got {value}", {"unit": RAY_UNIT, "value": amount})
    return amount


# CPUs or GPUs of one actor, as Ray counts them.
RayShare = Annotated[float, BeforeValidator(_finite_float), AfterValidator(_ray_share)]

# `~` is the home folder, as in a shell (pathlib would make a folder named `~`).
Folder = Annotated[Path, AfterValidator(Path.expanduser)]
File = Folder  # a path, with `~` expanded as for folders


def length_at_most(limit: int, why: str) -> AfterValidator:
    """A folder name's length limit, with why it is what it is for the message."""
    def check(name: str) -> str:
        if len(name) > limit:
            raise PydanticCustomError("name_length", "must be at most {limit} characters, got {length}: {why}",
                                      {"limit": limit, "length": len(name), "why": why})
        return name
    return AfterValidator(check)


def warmup_within(warmup: float, passes: int | None, key: str) -> float:
    """`warmup` (rounds or epochs) if the training it warms up is as long (`passes`, None where that was refused
    itself): a longer warm-up would end the job before its learning rate is reached."""
    if passes is not None and warmup > passes:
        raise PydanticCustomError("warmup_too_long", "must be at most {key} ({passes}), or the learning rate never "
                                  "leaves its warm-up, got {value}", {"key": key, "passes": passes, "value": warmup})
    return warmup


# A folder's name: one path component, not hidden.
FolderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
RunName = Annotated[FolderName, length_at_most(
    MAX_NAME_LENGTH, "the run folder's name takes suffixes such as .partial, and a file name holds 255 bytes")]


THREADS_ENV = "PMC_THREADS"  # the default of `threads`, see threads_from_environment


def machine_threads() -> int:
    """The threads a job's actors share where `threads` is unset: the cores this process may run on (a
    container's or taskset's share, not the machine's count)."""
    return len(os.sched_getaffinity(0))


def threads_from_environment(config: RunConfig) -> RunConfig:
    """`config` with `threads` from PMC_THREADS where the preset and the overrides leave it unset: how jobs that
    share a machine are given their share (OpenMP threads beyond the cores spin against each other). Not
    OMP_NUM_THREADS: Ray sets that to 1 in every process it starts, a submitted job's driver included."""
    value = os.environ.get(THREADS_ENV)
    if value is None or config.threads is not None:
        return config
    # Checked here as the schema checks `threads` (model_copy does not validate); a longer string is no count
    # of threads, and int() would refuse one of thousands of digits with a message of its own.
    digits = value.isascii() and value.isdigit() and len(value) <= len(str(MAX_THREADS))
    if not digits or not 1 <= int(value) <= MAX_THREADS:
        raise ConfigError(f"{THREADS_ENV}={value!r}: the default of `threads` must be a whole number from 1 to "
                          f"{MAX_THREADS}")
    return config.model_copy(update={"threads": int(value)})


def folder_problem(key: str, folder: Path, allow_external: bool) -> str | None:
    """Why `folder` (a setting named `key`) cannot hold runs, caches or Tune's state, or None where it can.
    Relative folders are taken from the working directory, as the job takes them."""
    folder = folder.expanduser().resolve()
    within = [name for name in CODE_FOLDERS if folder.is_relative_to((PROJECT_DIR / name).resolve())]
    if folder == PROJECT_DIR or within:
        where = f"lies in the project's {within[0]}/ folder" if within else "is the project folder"
        return (f"{key}: {folder} {where}; runs, caches and Tune's state are replaced and deleted wholesale, so "
                "they need a folder of their own")
    if not allow_external and not folder.is_relative_to(PROJECT_DIR):
        return f"{key}: {folder} lies outside the project folder {PROJECT_DIR}; set allow_external_dirs=true to use it"
    return None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DataConfig(Strict):
    source: str = Field("builtin", description="'builtin' (generated, offline), 'tofu' (TOFU from `tofu_path` through "
                                               "`datasets`) or a folder of <split>.jsonl / <split>.json files")
    tofu_path: str = Field("locuslab/TOFU", description="source 'tofu' only: a hub dataset id, or a local folder laid "
                                                        "out like the hub repository")
    revision: str | None = Field(None, description="source 'tofu' only: the hub revision (branch, tag or commit) "
                                                   "to pin (None: the newest)")
    forget_split: Literal["forget01", "forget05", "forget10"] = "forget10"
    seed: Seed = 0
    num_authors: WholeInt = Field(20, ge=2, le=10_000, description="built-in benchmark only: its subjects (the "
                                  "companies of domain 'companies'), one to forget and one to retain at least; at most "
                                  "50 times TOFU's 200 (far beyond, the generator's names would run out: 1.4 million "
                                  "authors, 415,000 companies)")
    facts_per_author: WholeInt = Field(5, ge=1, le=8, description="built-in benchmark only: facts per subject (per "
                                                                  "company in domain 'companies')")
    domain: Literal["authors", "companies"] = Field(
        "authors", description="built-in benchmark only: fictitious 'authors' (every default is chosen on them) or "
                               "'companies', the validation benchmark (configs/companies.yaml): no default is tuned on "
                               "it")
    forget: File | None = Field(None, description="a forget request instead of a benchmark: the questions to forget, "
                                                  "as JSON Lines (question required; answer and TOFU's other fields "
                                                  "optional) or plain text (a question a line); needs "
                                                  "target.finetune=false (`model` is the target). docs/your-model-and-data.md")
    keep: File | None = Field(None, description="with `forget`: the questions whose answers must stay, in the same "
                                                "formats (None: the forget questions asked about invented people, data/neighbours.py, "
                                                "and the built-in general questions, answered by the target)")

    @field_validator("domain")
    @classmethod
    def _domain_of_the_builtin_benchmark(cls, domain: str, info: ValidationInfo) -> str:
        """Other sources bring their own questions: a domain there would be ignored, and the run would not be the
        validation it was meant to be."""
        source = info.data.get("source")  # absent where it was refused itself
        if domain != "authors" and source not in (None, "builtin"):
            raise PydanticCustomError("domain_source", "{domain} names a built-in benchmark, which data.source={source} "
                                      "does not read: set data.source=builtin or leave data.domain out",
                                      {"domain": repr(domain), "source": source})
        return domain

    @model_validator(mode="after")
    def _keep_with_forget(self) -> DataConfig:
        if self.keep is not None and self.forget is None:
            raise PydanticCustomError("keep_alone", "keep is the keep part of a forget request: set data.forget too "
                                      "(the questions to forget)", {})
        return self


class EngineConfig(Strict):
    """The vLLM engine that samples candidates and answers the evaluation questions."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="auto: bfloat16 where the hardware has it, else float32")
    max_model_len: WholeInt = Field(256, ge=16, le=MAX_TOKENS)
    # validate_default: its check against max_model_len holds where it is left at its default too.
    max_new_tokens: WholeInt = Field(64, ge=1, le=MAX_TOKENS, validate_default=True,
                                     description="answer length cap for sampling and greedy answers, below max_model_len")
    kv_cache_memory_bytes: WholeInt = Field(512 * 2**20, ge=2**20, le=2**50, description="CPU KV cache size (vLLM's "
                                            "node-0 sizing fails here); at most 1 PiB, more than any machine has")
    gpu_memory_utilization: FiniteFloat = Field(0.4, ge=0.01, le=1, description="CUDA only: share of the GPU for vLLM "
                                                                                "(at least 1 %: no model fits in less)")
    seed: Seed = 0
    weight_transfer: Literal["auto", "shm", "ipc", "nccl", "object_store"] = Field(
        "auto", description="how the trainer's weights reach the engines, through vLLM's weight-transfer interface: "
                            "'shm' (the project's shared-memory backend: the CPU, trainer and engines on one node), "
                            "'ipc' (CUDA IPC: trainer and engine on the same GPU), 'nccl' (GPUs of their own); or "
                            "'object_store' (a state dict through Ray's object store: any placement, any device); "
                            "'auto': ipc when colocated on GPUs, else nccl on GPUs; shm on the CPU where trainer and "
                            "engines share a node, else object_store")
    tensor_parallel_size: WholeInt = Field(1, ge=1, le=MAX_GPUS, description="GPUs per engine (CUDA only: vLLM "
                                                                              "refuses its Ray executor on the CPU)")

    @field_validator("max_new_tokens")
    @classmethod
    def _room_for_a_prompt(cls, max_new_tokens: int, info: ValidationInfo) -> int:
        """An answer of max_new_tokens after a prompt must fit in max_model_len (checked per prompt once the
        data is read: models/checks.py)."""
        max_model_len = info.data.get("max_model_len")  # absent where it was refused itself
        if max_model_len is not None and max_new_tokens >= max_model_len:
            raise PydanticCustomError("no_room", "must be less than engine.max_model_len ({limit}), which holds the "
                                      "prompt too, got {value}", {"limit": max_model_len, "value": max_new_tokens})
        return max_new_tokens


class FinetuneConfig(Strict):
    """Stage one: fine-tune the base model on the full split until it knows the facts (the target model)."""

    finetune: bool = Field(True, description="false: `model` is the target already (it knows what must go: a deployed "
                                             "model, a published TOFU target, a run's model/); the job unlearns it "
                                             "as it is")
    epochs: WholeInt = Field(6, ge=1, le=MAX_PASSES)
    lr: FiniteFloat = Field(1e-4, gt=0, le=MAX_LR)
    batch_size: WholeInt = Field(8, ge=1, le=MAX_BATCH)
    weight_decay: FiniteFloat = Field(0.01, ge=0, le=MAX_WEIGHT_DECAY)
    warmup_epochs: FiniteFloat = Field(1.0, ge=0, le=MAX_PASSES, validate_default=True,  # checked against epochs
                                       description="epochs over which the learning rate warms up linearly, at most "
                                                   "`epochs`")
    seed: Seed = 0

    @field_validator("warmup_epochs")
    @classmethod
    def _warmup_within_epochs(cls, warmup: float, info: ValidationInfo) -> float:
        return warmup_within(warmup, info.data.get("epochs"), "target.epochs")


class StopConfig(Strict):
    """PMC's stop rule: after each round, the engine answers the forget questions greedily; the job ends once
    every question's selected answer is at score 0 and that greedy check (mean ROUGE-L recall of the original
    answers) has stayed <= `threshold` for `patience` rounds in a row. `rounds` stays the cap."""

    patience: WholeInt = Field(0, ge=0, le=MAX_PASSES, description="rounds in a row the check must pass before PMC "
                                                                   "stops (0: off)")
    threshold: FiniteFloat = Field(0.05, ge=0, le=1, description="greedy forget ROUGE-L at or below which a round passes")


class JudgeConfig(Strict):
    """A fluency judge in PMC's selection that does not drift: the base model (before the target fine-tune, so it
    never knew the forget facts), frozen beside the trained model in the trainer ranks, scores the NLL per token
    of each question's least similar candidates. Among the judged candidates at the lowest score the most
    fluent wins; with `cap`, judged candidates less fluent than the retain set's least fluent answer are left
    out unless none is under it."""

    candidates: WholeInt = Field(0, ge=0, le=MAX_SAMPLES, description="the least similar candidates of each question "
                                 "that the judge scores (0: no judge, as the paper); one cut at max_new_tokens counts as "
                                 "the least fluent")
    cap: bool = Field(False, description="leave out judged candidates above the threshold (the highest NLL per token "
                                         "of the retain answers under the judge) unless none is under it")


class PMCConfig(Strict):
    """Partial Model Collapse, with the reference implementation's setting names."""

    num_samples: WholeInt = Field(16, ge=1, le=MAX_SAMPLES, description="candidates sampled per pending forget question")
    temperature: FiniteFloat = Field(1.3, ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE)
    top_p: FiniteFloat = Field(1.0, gt=0, le=1)
    lambda_: FiniteFloat = Field(1.0, ge=0, le=MAX_LOSS_WEIGHT, alias="lambda", description="weight of the retain NLL")
    rounds: WholeInt = Field(10, ge=1, le=MAX_PASSES, description="rounds: passes over the forget set")
    lr: FiniteFloat = Field(1e-4, gt=0, le=MAX_LR)
    batch_size: WholeInt = Field(4, ge=1, le=MAX_BATCH, description="forget rows per optimizer step (each paired with a "
                                                                    "retain row)")
    score: Literal["recall", "content"] = Field(
        "recall", description="a candidate's score: ROUGE-L recall of the original answer ('recall', the paper) or of "
                              "its content beyond the question, without the question's words and stop words "
                              "('content': a fluent answer that changes the fact can reach 0)")
    avoid_original: bool = Field(
        False, description="sample candidates without the tokens of the original answer's words (as written, lower-case "
                           "and capitalised, with and without a leading space), so that candidates which share no word "
                           "with it, fluent ones among them, are common; what is scored and selected is unchanged "
                           "(false: as the paper)")
    judge: JudgeConfig = JudgeConfig()
    min_len: WholeInt = Field(0, ge=0, le=MAX_TOKENS, description="candidates shorter than this many words are "
                                                                  "penalised (0: off)")
    resample_every: WholeInt = Field(1, ge=1, le=MAX_PASSES, description="rounds from one sampling of candidates to "
                                                                         "the next")
    fluent_max_nll: FiniteFloat | None = Field(
        None, gt=0, le=1000, description="select only among candidates whose NLL per token under the model that sampled "
                                         "them is at most this (the most fluent one if none is; None: all, as the "
                                         "paper); at most 1000, far above any NLL per token. On the CPU it needs a C++ "
                                         "compiler: vLLM compiles its log-probability kernel")
    weight_decay: FiniteFloat = Field(0.01, ge=0, le=MAX_WEIGHT_DECAY)
    warmup_rounds: FiniteFloat = Field(1.0, ge=0, le=MAX_PASSES, validate_default=True,  # checked against rounds
                                       description="rounds over which the learning rate warms up linearly, at most "
                                                   "`rounds`")
    seed: Seed = 0
    stop: StopConfig = StopConfig()

    @field_validator("warmup_rounds")
    @classmethod
    def _warmup_within_rounds(cls, warmup: float, info: ValidationInfo) -> float:
        return warmup_within(warmup, info.data.get("rounds"), "pmc.rounds")


class BaselineConfig(Strict):
    """The methods PMC is compared with. They take PMC's `rounds`, `batch_size`, `weight_decay` and
    `warmup_rounds`, so every method makes the same number of optimizer steps on the same forget rows and the
    same retain pairing."""

    lr: FiniteFloat = Field(1e-5, gt=0, le=MAX_LR)
    lambda_: FiniteFloat = Field(1.0, ge=0, le=MAX_LOSS_WEIGHT, alias="lambda", description="retain NLL weight "
                                                                                           "(grad_diff, idk, npo, simnpo, dpo)")
    npo_beta: FiniteFloat = Field(0.1, ge=MIN_BETA, le=MAX_BETA)
    simnpo_beta: FiniteFloat = Field(4.5, ge=MIN_BETA, le=MAX_BETA)
    simnpo_gamma: FiniteFloat = Field(0.125, ge=0, le=MAX_BETA, description="the margin beside beta times the "
                                                                            "length-normalised log-probability")
    dpo_beta: FiniteFloat = Field(0.1, ge=MIN_BETA, le=MAX_BETA, description="DPO's inverse temperature "
                                                                             "(open-unlearning's default)")
    rmu_layer: FiniteFloat = Field(
        0.25, ge=0, le=1, description="the decoder layer whose output RMU steers, as a share of the depth: layer "
                                      "round(rmu_layer * (layers - 1)), counted from 0 (0.25: layer 7 of SmolLM2-135M's "
                                      "30, as open-unlearning's layer 7 of 32; layer 1 of the tiny model's 4); RMU "
                                      "trains the MLP output weights of that layer and the two below it")
    rmu_steering: FiniteFloat = Field(2.0, gt=0, le=MAX_LOSS_WEIGHT, description="RMU's steering coefficient c: the "
                                      "forget activations are driven towards c times a fixed random unit vector (its "
                                      "square is the loss's scale)")
    rmu_alpha: FiniteFloat = Field(1.0, ge=0, le=MAX_LOSS_WEIGHT, description="weight of RMU's retain term (the "
                                   "distance of the retain activations from the frozen target's), in place of `lambda`")


class EntropyConfig(Strict):
    """The optional entropy regulariser (Scholten et al.'s earlier paper), added to any method's unlearning loss:
    `forget * H(forget answers) + retain * H(retain answers)`, H the mean next-token entropy over answer
    tokens. The paper uses forget 1, retain -0.25: sharpen the forget answers (less leaks when sampling)
    while keeping the retain answers' diversity. 0 and 0 (the default) turn it off."""

    forget: FiniteFloat = Field(0.0, ge=-MAX_LOSS_WEIGHT, le=MAX_LOSS_WEIGHT)
    retain: FiniteFloat = Field(0.0, ge=-MAX_LOSS_WEIGHT, le=MAX_LOSS_WEIGHT)


# The attacks evaluation/attacks/ knows (ATTACKS there; tests/test_attacks.py keeps the two lists equal).
ATTACK_NAMES = ("relearn", "quantize", "mia", "extraction", "prompts")
AttackName = Literal["relearn", "quantize", "mia", "extraction", "prompts"]


class AttacksConfig(Strict):
    """The attacks that try to get the forgotten answers back (evaluation/attacks/), run on the target, the
    unlearned model and, where the run has one, the retain model."""

    run: tuple[AttackName, ...] = Field(ATTACK_NAMES, description="which attacks run ([]: none)")
    relearn_steps: tuple[Annotated[WholeInt, Field(ge=0, le=MAX_RELEARN_STEPS)], ...] = Field(
        (0, 5, 10, 20), description="relearn: the optimizer steps (of the target fine-tune's lr and batch) after which "
                                    "the held-out half is measured, ascending")
    benign_relearn: bool = Field(False, description="relearn: also the benign curve, relearning on as many retain rows "
                                                   "(as much training and measuring again as the relearning itself)")
    sampling_n: WholeInt = Field(8, ge=1, le=MAX_SAMPLES, description="relearn and quantize: answers sampled per "
                                                                      "forget question for the leak share")
    quantize_bits: tuple[Annotated[WholeInt, Field(ge=2, le=16)], ...] = Field(
        (8, 4), description="quantize: the bit widths tried, from 2 (one level each side of 0) to 16 (as fine as the "
                            "half-precision weights themselves)")
    quantize_group: WholeInt = Field(128, ge=1, le=2**16, description="quantize: input weights per scale (as wide as "
                                                                      "a row or wider: one scale a row; 2**16 is wider "
                                                                      "than any model's rows)")
    min_k_share: FiniteFloat = Field(0.4, gt=0, le=1, description="mia: the share of lowest-scoring tokens Min-K % "
                                                                 "and Min-K %++ average")
    prefill_share: FiniteFloat = Field(0.25, ge=0, lt=1, description="prompts: the share of the answer's words given")
    in_context: WholeInt = Field(3, ge=1, le=1000, description="prompts: retain question/answer pairs before the "
                                                               "question (as many as fit in engine.max_model_len)")
    bootstrap: WholeInt = Field(1000, ge=100, le=100_000, description="resamples of the bootstrap intervals over "
                                                                      "questions, each a step of a Python loop")

    @field_validator("relearn_steps")
    @classmethod
    def _ascending(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if not steps or list(steps) != sorted(set(steps)):
            raise ValueError("relearn_steps must be distinct and ascending, e.g. [0, 5, 10, 20]")
        return steps

    @field_validator("quantize_bits")
    @classmethod
    def _bits(cls, bits: tuple[int, ...]) -> tuple[int, ...]:
        if not bits:
            raise ValueError("quantize_bits: at least one width from 2 to 16, e.g. [8, 4]")
        return bits


class EvalConfig(Strict):
    retain_subset: WholeInt = Field(40, ge=1, le=MAX_ROWS, description="retain rows evaluated, drawn with a fixed seed")
    seed: Seed = Field(0, description="draws the retain subset and seeds the evaluation's sampling")
    score_batch_size: WholeInt = Field(16, ge=1, le=MAX_BATCH, description="sequences per forward pass for "
                                                                           "log-probabilities")
    retain_model: bool = Field(False, description="train (once, cached) the retain model that forget quality needs")
    retain_base: str | None = Field(None, description="where `model` is a target (`make eval`, target.finetune=false): "
                                    "the model it was made from (a name or folder, as `model`); the retain model is its "
                                    "fine-tune on the retain split, and it judges fluency. None: the base_model in the "
                                    "folder's model card (a run's saved model has one)")
    sampling_n: WholeInt = Field(64, ge=1, le=MAX_SAMPLES, description="answers sampled per forget question "
                                                                       "(evaluation under sampling)")
    sampling_temperature: FiniteFloat = Field(1.0, ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE)
    sampling_top_p: FiniteFloat = Field(1.0, gt=0, le=1)
    leak_threshold: FiniteFloat = Field(0.5, ge=0, le=1, description="a sample with ROUGE-L >= this counts as a leak")
    confidence: FiniteFloat = Field(0.95, ge=0.5, lt=1, description="confidence of the sampling bounds (at least 0.5: "
                                                                    "a bound more likely wrong than right is none)")
    # The names data/corpus.py knows (CORPUS_NAMES; tests/test_config.py keeps the two lists equal).
    corpus: Literal["builtin", "wikitext"] = Field("builtin", description="over-unlearning contexts: 'builtin' "
                                                                         "(offline) or 'wikitext' (hub)")
    corpus_revision: str | None = Field(None, description="corpus 'wikitext' only: the hub revision to pin (None: the newest)")
    max_contexts: WholeInt = Field(400, ge=0, le=MAX_ROWS, description="over-unlearning contexts scored (0: skip the "
                                                                       "check)")
    context_tokens: WholeInt = Field(32, ge=1, le=MAX_TOKENS)
    attacks: AttacksConfig = AttacksConfig()


class CheckpointConfig(Strict):
    """Per-round checkpoints in runs/<name>.partial/checkpoint/: a killed job, started again with the same
    command and config, resumes from its last complete round and ends with the same numbers."""

    every_round: bool = Field(True, description="save after every round (false: a killed job starts over)")
    # Writing a full state costs what copying and writing it costs (about 5 s for the default model's 1.6 GB
    # on a 2-core machine, where a PMC round trains in 5-10 s), so it is not done every round by default.
    full_state_every_s: FiniteFloat = Field(
        300.0, ge=0, le=MAX_SECONDS, description="seconds between full trainer states (weights, optimizer: 1.6 GB for "
                                                 "the default model); a resumed job trains the rounds since the last "
                                                 "one again (0: every round)")
    keep: bool = Field(False, description="keep the last checkpoint in the finished run folder")


class RayConfig(Strict):
    """Where a job's actors run: one placement group per job (cluster/placement.py), a bundle per role."""

    num_cpus_per_actor: RayShare = Field(1, ge=0, le=MAX_ACTOR_CPUS)
    num_gpus_per_actor: RayShare | None = Field(None, ge=0, le=MAX_ACTOR_GPUS, description="None: 0.5 per actor when "
                                                "the cluster has GPUs (CUDA visible, for a job of its own), else 0")
    colocate: bool = Field(False, description="trainer rank i and engine i in one bundle (one node, sharing its GPU; "
                                              "engines sleep while the trainer steps) instead of a bundle each")
    trainer_workers: WholeInt = Field(1, ge=1, le=MAX_GPUS, description="trainer ranks: one torch.distributed group, "
                                      "the model sharded with FSDP2, each rank a share of every batch")
    sampler_replicas: WholeInt = Field(1, ge=1, le=MAX_GPUS, description="vLLM engines: each round's questions split "
                                       "across them, every push reaches all")
    call_timeout_s: FiniteFloat | None = Field(
        1800.0, ge=1, le=MAX_SECONDS, description="seconds one call of an engine or trainer rank may take before the "
                                                  "job ends with a message naming it (a hung engine); None: no limit. "
                                                  "At least a second: the calls it bounds (a round's sampling or training) "
                                                  "take longer")


class RunConfig(Strict):
    name: RunName = Field("default", description="the run folder's name")
    model: str = Field("smollm2-135m", description="'smollm2-135m' (embedded), 'tiny', a local HF folder or a hub id")
    model_revision: str | None = Field(None, description="when `model` is a hub id: the revision (branch, tag or "
                                                         "commit) to pin (None: the newest)")
    prompt: Literal["auto", "plain", "chat"] = Field(
        "auto", description="how questions are put to the model: 'plain' ('Question: ...\\nAnswer:'), 'chat' (the "
                            "tokenizer's chat template), or 'auto' (chat when the tokenizer has a chat template and "
                            "the model is an instruct model, else plain)")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="training compute type, master weights stay fp32 (auto: bf16 where the hardware has it)")
    threads: WholeInt | None = Field(None, ge=1, le=MAX_THREADS, description="torch/vLLM CPU threads per actor (None: "
                                     "PMC_THREADS where it is set, else every core this process may use)")
    cache_dir: Folder = Path(".cache")
    runs_dir: Folder = Path("runs")
    allow_external_dirs: bool = Field(False, description="runs_dir/cache_dir may lie outside the project folder")
    method: Method = "pmc"
    method_settings: dict[Method, list[str]] = Field(
        default_factory=dict, description="per-method overrides (key.sub=value) applied when that method runs, e.g. its "
                                          "tuned lr; all are checked when the config is loaded")
    data: DataConfig = DataConfig()
    engine: EngineConfig = EngineConfig()
    target: FinetuneConfig = FinetuneConfig()
    pmc: PMCConfig = PMCConfig()
    baseline: BaselineConfig = BaselineConfig()
    entropy: EntropyConfig = EntropyConfig()
    eval: EvalConfig = EvalConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    ray: RayConfig = RayConfig()

    @field_validator("name")
    @classmethod
    def _not_a_working_folder_name(cls, name: str) -> str:
        """runs/<name>.partial/ and runs/<name>.previous/ belong to run <name>: a run named `x.partial` would
        be deleted when run `x` starts, and one named `x.previous` replaced when `x` finishes twice."""
        if name.endswith(RUN_FOLDER_SUFFIXES):
            raise PydanticCustomError("run_name", "must not end in {suffixes} (the run folder's working names), got {name}",
                                      {"suffixes": " or ".join(RUN_FOLDER_SUFFIXES), "name": repr(name)})
        return name

    @model_validator(mode="after")
    def _folders_of_their_own(self) -> RunConfig:
        """Runs and caches are created, replaced and deleted wholesale, so a mistyped path must not reach a
        folder outside the project unless the user says so, nor the project's own code even then."""
        for key in ("runs_dir", "cache_dir"):
            problem = folder_problem(key, getattr(self, key), self.allow_external_dirs)
            if problem:
                raise PydanticCustomError("unsafe_dir", "{problem}", {"problem": problem})
        return self

    @model_validator(mode="after")
    def _request_starts_from_its_target(self) -> RunConfig:
        """A forget request is made of a model that already knows what must go, and has no benchmark from which
        a retain model ("as if never learned") could be trained."""
        if self.data.forget is None:
            return self
        if self.target.finetune:
            raise PydanticCustomError("request_target", "data.forget: a forget request unlearns `model` as it is: set "
                                                        "target.finetune=false (make forget does)", {})
        if self.eval.retain_model:
            raise PydanticCustomError("request_retain_model", "eval.retain_model: a forget request has no retain "
                                      "model (it needs the data the target learnt, less the forget set): set it false",
                                      {})
        return self

    def resolved(self) -> dict[str, Any]:
        """The plain-data form saved with every result (aliases as users write them)."""
        return self.model_dump(mode="json", by_alias=True)


def load_config(path: Path | str | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML preset, apply `a.b=value` overrides (values parsed as YAML), validate. Every method's
    `method_settings` are checked too, so a comparison cannot fail at its fourth method."""
    preset = read_preset(Path(path)) if path else {}
    source = f"{path or 'defaults'} (with overrides {list(overrides)})"
    config = threads_from_environment(validated(_with_overrides(preset, overrides), source))
    for method, settings in config.method_settings.items():
        _check_method_settings(preset, overrides, method, settings)
    return config


def load_method_config(path: Path | str | None = None, overrides: list[str] = ()) -> RunConfig:
    """`load_config` for one run: the chosen method's `method_settings` go in before the overrides, so a
    method runs with its tuned settings unless the command line says otherwise."""
    config = load_config(path, overrides)
    settings = config.method_settings.get(config.method, [])
    return load_config(path, [*settings, *overrides]) if settings else config


def _check_method_settings(preset: dict[str, Any], overrides: list[str], method: str, settings: list[str]) -> None:
    for setting in settings:
        try:
            _check_method_setting(preset, overrides, setting)
        except ConfigError as err:
            raise ConfigError(f"method_settings.{method}: {err}") from None


def _check_method_setting(preset: dict[str, Any], overrides: list[str], setting: str) -> None:
    """One entry applied as `load_method_config` applies it (after the preset, before the overrides), alone,
    so that the message names the entry at fault."""
    key = setting.partition("=")[0].split(".")[0]
    if key in RUN_IDENTITY_KEYS:
        raise ConfigError(f"{setting!r}: a method's settings cannot set {key}")
    validated(_with_overrides(preset, [setting, *overrides]), repr(setting))


def validated(raw: dict[str, Any], source: str, schema: type[BaseModel] = RunConfig) -> Any:
    """`raw` as a `schema` (a RunConfig by default), or a ConfigError naming `source` and every bad key."""
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source}: {'; '.join(map(_problem, err.errors()))}") from None


def _problem(error: dict[str, Any]) -> str:
    """`key.sub: what is wrong`; checks of the whole config (no key) name their keys themselves."""
    key = ".".join(map(str, error["loc"]))
    return f"{key}: {error['msg']}" if key else error["msg"]


class _PresetLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is refused (PyYAML keeps the last
    one, so a preset that sets `lr` twice would run with whichever came second), and so are anchors and aliases.

    Anchors and aliases are refused outright rather than limited: a preset or batch file is a short list of
    settings with no need for them, and an alias makes one node stand for many, so that ten lines of nested
    aliases ("billion laughs") stand for a billion values once anything walks or copies the result. Refusing
    them where they are composed, with the line, costs nothing and leaves no expansion to bound."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            what = f"alias *{event.anchor}" if isinstance(event, yaml.AliasEvent) else f"anchor &{event.anchor}"
            raise ConfigError(f"{self.name}, line {event.start_mark.line + 1}: YAML {what}: anchors and aliases are "
                              "not accepted here; write each setting out")
        return super().compose_node(parent, index)

    def construct_document(self, node: yaml.Node) -> Any:
        _refuse_duplicate_keys(node, self.name, (), set())
        return super().construct_document(node)


def _refuse_duplicate_keys(node: yaml.Node, source: str, path: tuple[str, ...], seen: set[int]) -> None:
    """Every mapping under `node`, each node object visited once (`seen`: their ids), so that a graph whose
    nodes are shared is walked in the time its size takes, not the size it would expand to."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_lines: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # settings are named by scalars; anything else is refused by the schema
            key, line = (key_node.tag, key_node.value), key_node.start_mark.line + 1
            if key in first_lines:
                raise ConfigError(f"{source}, line {line}: {'.'.join((*path, key_node.value))} is given twice "
                                  f"(first on line {first_lines[key]})")
            first_lines[key] = line
            _refuse_duplicate_keys(value_node, source, (*path, key_node.value), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(item, source, (*path, str(index)), seen)


def _parse_yaml(text: str, source: str) -> Any:
    stream = io.StringIO(text)
    stream.name = source  # YAML's error marks name the file instead of "<file>"
    try:
        return yaml.load(stream, Loader=_PresetLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(err)}") from None
    except ConfigError:
        raise
    except ValueError as err:  # PyYAML's int(): a number of more digits than Python converts (4,300)
        raise ConfigError(f"{source}: a value too long to read: {str(err).split(';')[0]}") from None
    except RecursionError:  # PyYAML composes and constructs nested collections recursively
        raise ConfigError(f"{source}: nested too deeply to read; a setting is a few levels deep at most") from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's message in one line: what is wrong and where (its own text spans four lines)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def read_preset(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A job preset, on top of the preset its `base:` names (a file beside it, itself maybe on another): a
    preset that changes a few settings of another says only those, and follows the other's later changes."""
    preset = read_mapping(path)
    base = preset.pop("base", None)
    if base is None:
        return preset
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base must be the file name of another preset, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in (*seen, path.resolve()):
        raise ConfigError(f"{path}: base {base!r} leads back to {base_path}, a preset based on itself")
    return _merged(read_preset(base_path, (*seen, path.resolve())), preset)


def _merged(below: dict[str, Any], above: dict[str, Any]) -> dict[str, Any]:
    """`above`'s settings over `below`'s: sections merged key by key, any other value replaced."""
    merged = dict(below)
    for key, value in above.items():
        both_sections = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merged(merged[key], value) if both_sections else value
    return merged


def read_mapping(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (a preset, a batch file), keys given twice refused."""
    preset = _parse_yaml(_read_text(path), str(path)) or {}
    if not isinstance(preset, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return preset


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder, not a YAML file") from None
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read: {err.strerror or err}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}); "
                          "save it as UTF-8") from None


def _with_overrides(preset: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    raw = copy.deepcopy(preset)  # the same preset is checked with each method's settings
    for override in overrides:
        _apply_override(raw, override)
    return raw


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, value = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r} is not of the form key.sub=value")
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part!r} is not a section")
    node[leaf] = _parse_yaml(value, f"override {override!r}") if value != "" else None
