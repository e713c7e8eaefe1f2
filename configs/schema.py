"""The run configuration: one pydantic model per concern, defaults that run, unknown keys refused.

A run is described by a YAML preset (configs/*.yaml) plus `key.sub=value` overrides from the command line.
Everything resolved here is saved next to the run's results.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_DIR = Path(__file__).resolve().parent
METHODS = ("pmc", "grad_ascent", "grad_diff", "idk", "npo", "simnpo")
Method = Literal["pmc", "grad_ascent", "grad_diff", "idk", "npo", "simnpo"]


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the file and key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DataConfig(Strict):
    source: str = Field("builtin", description="'builtin', 'tofu' (hub) or a folder of <split>.jsonl files")
    forget_split: Literal["forget01", "forget05", "forget10"] = "forget10"
    seed: int = 0
    num_authors: int = Field(20, ge=1, description="built-in benchmark only")
    facts_per_author: int = Field(5, ge=1, le=8, description="built-in benchmark only")


class EngineConfig(Strict):
    """The vLLM engine that samples candidates and answers the evaluation questions."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="auto: bfloat16 where the hardware has it, else float32")
    max_model_len: int = Field(256, ge=16)
    max_new_tokens: int = Field(64, ge=1, description="answer length cap for sampling and greedy answers")
    kv_cache_memory_bytes: int = Field(512 * 2**20, ge=2**20, description="CPU KV cache size (vLLM's node-0 sizing fails here)")
    gpu_memory_utilization: float = Field(0.4, gt=0, le=1, description="CUDA only: share of the GPU for vLLM")
    seed: int = 0


class FinetuneConfig(Strict):
    """Stage one: fine-tune the base model on the full split until it knows the facts (the target model)."""

    epochs: int = Field(6, ge=1)
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    seed: int = 0


class PMCConfig(Strict):
    """Partial Model Collapse, with the reference implementation's setting names."""

    num_samples: int = Field(16, ge=1, description="candidates sampled per pending forget question")
    temperature: float = Field(1.3, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    lambda_: float = Field(1.0, ge=0, alias="lambda", description="weight of the retain NLL")
    epochs: int = Field(10, ge=1, description="passes over the forget set")
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(4, ge=1, description="forget rows per optimizer step (each paired with a retain row)")
    min_len: int = Field(0, ge=0, description="candidates shorter than this many words are penalised (0: off)")
    resample_every: int = Field(1, ge=1, description="epochs between sampling rounds")
    weight_decay: float = Field(0.01, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    seed: int = 0


class BaselineConfig(Strict):
    """The methods PMC is compared with. They take PMC's `epochs` and `batch_size`, so every method makes the
    same number of optimizer steps on the same forget rows and the same retain pairing."""

    lr: float = Field(1e-5, gt=0)
    lambda_: float = Field(1.0, ge=0, alias="lambda", description="retain NLL weight (grad_diff, idk, npo, simnpo)")
    npo_beta: float = Field(0.1, gt=0)
    simnpo_beta: float = Field(4.5, gt=0)
    simnpo_gamma: float = Field(0.125, ge=0)


class EntropyConfig(Strict):
    """The optional entropy regulariser (Scholten et al.'s earlier paper), added to any method's unlearning loss:
    `forget * H(forget answers) + retain * H(retain answers)`, H the mean next-token entropy over answer
    tokens. The paper uses forget 1, retain -0.25: sharpen the forget answers (less leaks when sampling)
    while keeping the retain answers' diversity. 0 and 0 (the default) turn it off."""

    forget: float = 0.0
    retain: float = 0.0


class EvalConfig(Strict):
    retain_subset: int = Field(40, ge=1, description="retain rows evaluated, drawn with a fixed seed")
    seed: int = Field(0, description="draws the retain subset and seeds the evaluation's sampling")
    score_batch_size: int = Field(16, ge=1, description="sequences per forward pass for log-probabilities")
    retain_model: bool = Field(False, description="train (once, cached) the retain model that forget quality needs")
    sampling_n: int = Field(64, ge=1, description="answers sampled per forget question (evaluation under sampling)")
    sampling_temperature: float = Field(1.0, gt=0)
    sampling_top_p: float = Field(1.0, gt=0, le=1)
    leak_threshold: float = Field(0.5, ge=0, le=1, description="a sample with ROUGE-L >= this counts as a leak")
    confidence: float = Field(0.95, gt=0, lt=1, description="confidence of the sampling bounds")
    corpus: str = Field("builtin", description="over-unlearning contexts: 'builtin' (offline) or 'wikitext' (hub)")
    max_contexts: int = Field(400, ge=0, description="over-unlearning contexts scored (0: skip the check)")
    context_tokens: int = Field(32, ge=1)


class RayConfig(Strict):
    num_cpus_per_actor: float = Field(1, ge=0)
    num_gpus_per_actor: float | None = Field(None, ge=0, description="None: 0.5 per actor when CUDA is visible, else 0")


class RunConfig(Strict):
    name: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: str = Field("smollm2-135m", description="'smollm2-135m' (embedded), 'tiny', a local HF folder or a hub id")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="training compute type, master weights stay fp32 (auto: bf16 where the hardware has it)")
    threads: int | None = Field(None, ge=1, description="torch/vLLM CPU threads per actor (None: all cores)")
    cache_dir: Path = Path(".cache")
    runs_dir: Path = Path("runs")
    method: Method = "pmc"
    method_settings: dict[Method, list[str]] = Field(
        default_factory=dict, description="per-method overrides (key.sub=value) applied when that method runs, e.g. its tuned lr")
    data: DataConfig = DataConfig()
    engine: EngineConfig = EngineConfig()
    target: FinetuneConfig = FinetuneConfig()
    pmc: PMCConfig = PMCConfig()
    baseline: BaselineConfig = BaselineConfig()
    entropy: EntropyConfig = EntropyConfig()
    eval: EvalConfig = EvalConfig()
    ray: RayConfig = RayConfig()

    def resolved(self) -> dict[str, Any]:
        """The plain-data form saved with every result (aliases as users write them)."""
        return self.model_dump(mode="json", by_alias=True)


def load_config(path: Path | str | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML preset, apply `a.b=value` overrides (values parsed as YAML), validate."""
    source = str(path) if path else "defaults"
    raw: dict[str, Any] = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
    for override in overrides:
        _apply_override(raw, override)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"{source} (with overrides {list(overrides)}): {problems}") from None


def load_method_config(path: Path | str | None = None, overrides: list[str] = ()) -> RunConfig:
    """`load_config` for one run: the chosen method's `method_settings` go in before the overrides, so a
    method runs with its tuned settings unless the command line says otherwise."""
    config = load_config(path, overrides)
    settings = config.method_settings.get(config.method, [])
    return load_config(path, [*settings, *overrides]) if settings else config


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
    node[leaf] = yaml.safe_load(value) if value != "" else None
