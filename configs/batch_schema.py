"""Batch files (configs/batch/*.yaml): many unlearning jobs from one preset, a grid, variants and repeats.

    name: seeds                     # runs/<name>/ (default: the file's name)
    base: configs/default.yaml      # the preset every trial starts from
    set: [eval.retain_model=true]   # overrides for every trial
    grid:                           # every combination of these values is a trial ...
      method: [pmc, npo]
    variants:                       # ... crossed with each of these (optional)
      - {}
      - {pmc.lr: 3.0e-4}
    repeats: 3                      # ... each repeated with seeds 0, 1, 2 (written to every key of seed_keys)

Every trial's config is built and checked when the batch is loaded, so a bad key or value is refused
before the first trial starts, with the trial's name and the key in the message.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from pmc_unlearning.configs.schema import (
    MAX_ACTOR_CPUS,
    MAX_NAME_LENGTH,
    MAX_THREADS,
    PROJECT_DIR,
    RAY_UNIT,
    ConfigError,
    FolderName,
    RayShare,
    RunConfig,
    Strict,
    WholeInt,
    folder_problem,
    length_at_most,
    load_method_config,
    machine_threads,
    read_mapping,
    validated,
)

Scalar = str | int | float | bool | None
# The batch's own files in runs/<batch>/, which no trial may be named.
BATCH_FILES = ("report.md", "results.json", "batch.json", "figures", "tune")
# Every trial's config is built and checked when the batch loads: a grid that multiplies out to millions of
# trials would take the machine's memory and minutes before anything runs, and is a mistake in any case.
MAX_TRIALS = 1000
# runs/<batch>/ takes no suffix, but `make compare` names its batch compare-<run name>.
MAX_BATCH_NAME_LENGTH = MAX_NAME_LENGTH + 20
BatchName = Annotated[FolderName, length_at_most(
    MAX_BATCH_NAME_LENGTH, "a file name holds 255 bytes, and a comparison's name is compare-<run name>")]


class BatchConfig(Strict):
    name: BatchName = Field(description="runs/<name>/ holds the batch's trials and report")
    base: str = Field("configs/default.yaml", description="the preset every trial starts from (relative to the project)")
    set: list[str] = Field(default_factory=list, description="overrides (key.sub=value) for every trial")
    grid: dict[str, list[Scalar]] = Field(default_factory=dict, description="setting -> values: one trial per combination")
    variants: list[dict[str, Scalar]] = Field(default_factory=list, description="settings of one trial each, crossed with the grid")
    repeats: WholeInt = Field(1, ge=1, le=MAX_TRIALS, description="each trial repeated with seeds 0..repeats-1 (1: the "
                                                                  "preset's seeds)")
    seed_keys: list[str] = Field(["pmc.seed"], min_length=1, description="the settings a repeat's seed is written to")
    max_concurrent_trials: WholeInt = Field(2, ge=1, le=MAX_TRIALS, description="trials at once (no more than a batch "
                                                                                "may have)")
    max_failures: WholeInt = Field(1, ge=0, le=100, description="retries of a trial that failed (its process died, an "
                                                                "error); at most 100: one that fails that often has "
                                                                "a reason to")
    threads_per_trial: WholeInt | None = Field(
        None, ge=1, le=MAX_THREADS, description="CPU threads of each trial's sampler and trainer where the preset leaves "
                                                "`threads` unset (None: this machine's cores / max_concurrent_trials, at "
                                                "least 1)")
    trial_cpus: RayShare = Field(1.0, ge=RAY_UNIT, le=MAX_ACTOR_CPUS, description="CPUs of the trial's own process "
                                                                                 "(bundle 0 of its placement group)")
    storage_path: str | None = Field(None, description="Tune's experiment state, on storage every node sees "
                                                       "(None: runs/<name>/tune); outside the project only with the "
                                                       "preset's allow_external_dirs=true")
    trackers: list[Literal["mlflow", "wandb"]] = Field(
        default_factory=list, description="experiment trackers that get every trial's per-round metrics, besides "
                                          "TensorBoard's event files in Tune's folder (Tune's default logger)")

    @model_validator(mode="after")
    def _every_grid_key_has_values(self) -> BatchConfig:
        """An empty list multiplies the grid out to no trial at all."""
        for key, values in self.grid.items():
            if not values:
                raise PydanticCustomError("empty_grid", "grid.{key}: no values, so the grid makes no trial; give at "
                                                        "least one value or drop the key", {"key": key})
        return self

    @model_validator(mode="after")
    def _seeds_set_in_one_place(self) -> BatchConfig:
        """Each repeat writes its seed to every key of seed_keys after the grid's and the variant's settings, so
        that a grid or variant over one of those keys would be overwritten: trials meant to differ would share
        a seed."""
        if self.repeats == 1:
            return self
        varied = [("grid", self.grid), *((f"variants.{i}", variant) for i, variant in enumerate(self.variants))]
        for where, settings in varied:
            for key in settings:
                if key in self.seed_keys:
                    raise PydanticCustomError(
                        "seed_twice", "{where}.{key}: is in seed_keys, which each of the {repeats} repeats sets to its "
                        "own seed, so its values here would be lost and trials share seeds; drop it from one of the "
                        "two, or set repeats: 1", {"where": where, "key": key, "repeats": self.repeats})
        return self

    @model_validator(mode="after")
    def _trials_within_bounds(self) -> BatchConfig:
        count = math.prod(map(len, self.grid.values())) * max(1, len(self.variants)) * self.repeats
        if count > MAX_TRIALS:
            raise PydanticCustomError("too_many_trials", "grid x variants x repeats make {count} trials; a batch runs "
                                                         "{limit} at most", {"count": count, "limit": MAX_TRIALS})
        return self


@dataclass(frozen=True)
class Trial:
    name: str  # its run folder: runs/<batch>/<name>/
    settings: dict[str, Scalar]  # what sets it apart from the other trials, the seed aside
    seed: int | None  # its repeat's seed (None: the preset's seeds)
    overrides: tuple[str, ...]  # applied to the base preset, in order

    @property
    def group(self) -> str:
        """Trials that differ only by their seed form one group (their spread is the seed spread)."""
        return ", ".join(f"{key}={value}" for key, value in self.settings.items()) or "base"


@dataclass(frozen=True)
class Batch:
    config: BatchConfig
    source: str  # the batch file, or how the batch was made (`make compare`)
    base: Path  # the preset, absolute
    trials: tuple[Trial, ...]
    runs_dir: Path  # runs/<batch>/, absolute
    configs: dict[str, RunConfig]  # each trial's config, by trial name: built and checked once, at load

    def trial_config(self, trial: Trial) -> RunConfig:
        return self.configs[trial.name]

    def describe(self) -> dict:
        """The batch as it runs (saved as runs/<batch>/batch.json): a rerun continues it only if this is unchanged."""
        return {"source": self.source, "config": self.config.model_dump(mode="json"), "base": str(self.base),
                "trials": [{"name": t.name, "settings": t.settings, "seed": t.seed, "overrides": list(t.overrides)}
                           for t in self.trials]}


def load_batch(path: Path | str, overrides: list[str] = ()) -> Batch:
    """A batch file, every trial's config checked (ConfigError naming the file, the trial and the key)."""
    path = Path(path)
    raw = {"name": path.stem, **read_mapping(path)}
    batch = validated(raw, str(path), BatchConfig)
    if overrides:
        batch = batch.model_copy(update={"set": [*batch.set, *overrides]})
    return make_batch(batch, str(path))


def make_batch(batch: BatchConfig, source: str) -> Batch:
    base = Path(batch.base) if Path(batch.base).is_absolute() else PROJECT_DIR / batch.base
    if not base.is_file():
        raise ConfigError(f"{source}: base: preset {batch.base} does not exist")
    preset = load_method_config(base, batch.set)  # where the batch's runs and caches go
    if batch.storage_path is not None:  # Tune writes there as the trials' folders are written
        problem = folder_problem("storage_path", Path(batch.storage_path), preset.allow_external_dirs)
        if problem:
            raise ConfigError(f"{source}: {problem}")
    # Absolute folders: a trial may run on another node, in another working directory.
    runs_dir = (preset.runs_dir if preset.runs_dir.is_absolute() else PROJECT_DIR / preset.runs_dir) / batch.name
    cache_dir = preset.cache_dir if preset.cache_dir.is_absolute() else PROJECT_DIR / preset.cache_dir
    # Concurrent trials whose actors each took every core would slow each other down more than they gain.
    threads = preset.threads or batch.threads_per_trial or max(1, machine_threads() // batch.max_concurrent_trials)
    trials = expand(batch, [f"threads={threads}"], [f"runs_dir={runs_dir}", f"cache_dir={cache_dir}", "allow_external_dirs=true"])
    configs = {}
    for trial in trials:  # every trial's config, checked now rather than when its turn comes
        try:
            configs[trial.name] = load_method_config(base, list(trial.overrides))
        except ConfigError as err:
            raise ConfigError(f"{source}: trial {trial.name!r}: {err}") from None
    return Batch(batch, source, base, trials, runs_dir, configs)


def expand(batch: BatchConfig, defaults: list[str], where: list[str]) -> tuple[Trial, ...]:
    """One trial per variant x grid point x repeat, named after what sets it apart. Its overrides: `defaults`
    (what the batch, its grid and variants may change), the batch's `set`, its own settings and seed, then
    `where` (the absolute folders)."""
    keys = list(batch.grid)
    points = [dict(zip(keys, values)) for values in itertools.product(*batch.grid.values())]
    seeds = list(range(batch.repeats)) if batch.repeats > 1 else [None]
    specs = [({**point, **variant}, seed) for variant in batch.variants or [{}] for point in points for seed in seeds]
    names = [trial_name(settings, seed) for settings, seed in specs]
    if len(set(names)) < len(names):  # two variants that read alike: numbered, so each keeps its own folder
        names = [f"t{i:02d}-{name}" for i, name in enumerate(names)]
    names = [fitting_name(name) for name in names]
    trials = []
    for name, (settings, seed) in zip(names, specs):
        seeded = [f"{key}={seed}" for key in batch.seed_keys] if seed is not None else []
        settings_set = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
        trials.append(Trial(name, settings, seed, (*defaults, *batch.set, *settings_set, *seeded, *where, f"name={name}")))
    return tuple(trials)


def trial_name(settings: dict[str, Scalar], seed: int | None) -> str:
    """`npo_lr-0.0003_seed-1`: the method by its name, other settings as leaf-value (a path by its last part)."""
    shown = lambda value: Path(value).name if isinstance(value, str) and "/" in value else value
    parts = [str(value) if key == "method" else f"{key.split('.')[-1]}-{shown(value)}" for key, value in settings.items()]
    parts += [f"seed-{seed}"] if seed is not None else []
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts) or "base").strip("-.") or "base"
    return f"trial-{name}" if name in BATCH_FILES else name


def fitting_name(name: str) -> str:
    """`name` cut to a run name's length limit where it is longer (many grid keys), ending in a hash of the
    whole name so that trials cut alike keep folders of their own."""
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME_LENGTH - len(digest) - 1]}-{digest}"
