"""Every number of every config schema has a range that nothing downstream overflows (issue 34, item 9).

The settings are found by walking the schemas (RunConfig and the batch file's BatchConfig), so that a new numeric
setting is covered as soon as it exists. Each gets extreme values (0, -1, 2**63, 1e308, inf, nan, the smallest
floats, each side of its declared bounds) and values hypothesis draws, set as `--set key=value` sets them: each is
refused with a one-line ConfigError that names the setting, or accepted inside the range the setting declares,
which itself lies inside what a 64-bit integer or a float32 holds. Through the command line, such a refusal is one
line and exit code 2 within seconds.
"""
from __future__ import annotations

import math
import operator
import re
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin
from unittest import mock

import annotated_types
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from pmc_unlearning.configs import ConfigError, RunConfig, batch_schema, load_method_config
from pmc_unlearning.configs.batch_schema import BatchConfig, load_batch
from pmc_unlearning.configs.schema import Strict

PROJECT = Path(__file__).resolve().parents[1]
# Absolute folders in the project: relative ones are taken from the working directory, which may lie outside it.
FOLDERS = [f"runs_dir={PROJECT / 'runs'}", f"cache_dir={PROJECT / '.cache'}"]
SCHEMAS = (RunConfig, BatchConfig)  # the roots: a preset with its overrides, a batch file
# What an accepted number must fit, whatever its setting declares: a 64-bit integer (numpy, torch and Ray take
# counts as one), a float32 (the trainer's tensors).
INT64 = 2**63
FLOAT32_MAX = 3.4028234663852886e38
EXTREMES = (0, -1, 1, 2**31, 2**32, INT64 - 1, INT64, 2**64, -INT64 - 1, 0.0, -0.0, 5e-324, -5e-324,
            sys.float_info.min, 1e-300, 0.5, 1e308, -1e308, sys.float_info.max, math.inf, -math.inf, math.nan)
LIMIT = {annotated_types.Ge: "ge", annotated_types.Gt: "gt", annotated_types.Le: "le", annotated_types.Lt: "lt"}
HOLDS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


@dataclass(frozen=True)
class Setting:
    schema: type[BaseModel]  # the root it is set in
    key: str  # as users write it: pmc.lambda, eval.attacks.relearn_steps
    kind: type  # int or float
    listed: bool  # a tuple of numbers, each with the range (set here as a list of one)
    bounds: tuple[tuple[str, float], ...]  # ("ge", 0), ("lt", 2**32), ...

    def within(self, value: int | float) -> bool:
        return all(HOLDS[name](value, limit) for name, limit in self.bounds)


def numeric_settings(schema: type[BaseModel], root: type[BaseModel], prefix: str = "") -> Iterator[Setting]:
    """Every int or float setting under `schema`, its nested sections and tuples included."""
    for name, field in schema.model_fields.items():
        key, annotation, metadata = f"{prefix}{field.alias or name}", without_none(field.annotation), list(field.metadata)
        listed = get_origin(annotation) is tuple
        if listed:
            annotation = get_args(annotation)[0]
        if get_origin(annotation) is Annotated:
            annotation, *extra = get_args(annotation)
            metadata += extra
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from numeric_settings(annotation, root, f"{key}.")
        elif annotation in (int, float):  # not bool, which is a setting of its own kind
            yield Setting(root, key, annotation, listed, declared_bounds(metadata))


def without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        return next(arg for arg in get_args(annotation) if arg is not type(None))
    return annotation


def declared_bounds(metadata: list) -> tuple[tuple[str, float], ...]:
    """The bounds among a field's metadata, those of a `Field(...)` inside `Annotated` included."""
    found = []
    for item in metadata:
        for bound in item.metadata if isinstance(item, FieldInfo) else [item]:
            if type(bound) in LIMIT:
                name = LIMIT[type(bound)]
                found.append((name, getattr(bound, name)))
    return tuple(found)


def schemas_under(schema: type[BaseModel]) -> set[type[BaseModel]]:
    found = {schema}
    for field in schema.model_fields.values():
        nested = without_none(field.annotation)
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            found |= schemas_under(nested)
    return found


def every_subclass(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *every_subclass(direct)}}


@pytest.fixture(autouse=True, scope="module")
def hypothesis_home(tmp_path_factory):
    """hypothesis keeps its caches in the test's temporary folder, not in the checkout (its default)."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))


SETTINGS = [setting for schema in SCHEMAS for setting in numeric_settings(schema, schema)]


def setting_id(setting: Setting) -> str:
    return f"{setting.schema.__name__}.{setting.key}"


def yaml_text(value: Any) -> str:
    """`value` as a user types it after `key=` (.inf, .nan, 1.0e+308)."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip()


def loaded(setting: Setting, value: int | float, folder: Path) -> BaseModel:
    """The config with `setting` set to `value`, through the loader of its schema."""
    text = yaml_text([value] if setting.listed else value)
    if setting.schema is RunConfig:
        return load_method_config(None, [f"{setting.key}={text}", *FOLDERS])  # --set, as the command line has it
    path = folder / "bounds.yaml"
    path.write_text(f"base: configs/default.yaml\n{setting.key}: {text}\n")
    # The batch file's own settings as load_batch reads and checks them; the trials it would build next are run
    # configs (above), each loaded in full: a thousand repeats would take seconds per value.
    with mock.patch.object(batch_schema, "make_batch", lambda batch, source: batch):
        return load_batch(path)


def read_back(config: BaseModel, key: str) -> Any:
    value = config.model_dump(by_alias=True)
    for part in key.split("."):
        value = value[part]
    return value


def fits_its_type(setting: Setting, value: int | float) -> bool:
    if setting.kind is int:
        return type(value) is int and -INT64 <= value < INT64
    return type(value) is float and math.isfinite(value) and abs(value) <= FLOAT32_MAX


def check(setting: Setting, value: int | float, folder: Path) -> None:
    """Refused with a one-line ConfigError naming the setting, or accepted as `value`, inside its range."""
    try:
        config = loaded(setting, value, folder)
    except ConfigError as refused:
        message = str(refused)
        assert setting.key in message and "\n" not in message, message
        return
    accepted = read_back(config, setting.key)
    for number in accepted if setting.listed else [accepted]:
        assert number == value and fits_its_type(setting, number) and setting.within(number), (setting.key, value)
    assert type(config).model_validate(config.model_dump(by_alias=True)) == config


def near_bounds(setting: Setting) -> list[int | float]:
    """Each declared bound, one either side of it, and the floats just either side of it."""
    return [near for _, limit in setting.bounds for near in (limit, limit - 1, limit + 1, math.nextafter(limit, -math.inf),
                                                             math.nextafter(limit, math.inf))]


def around_bounds(setting: Setting) -> st.SearchStrategy:
    """Any int or float (nan and the infinities among them), and numbers a little either side of each bound."""
    nearby = [strategy for _, limit in setting.bounds
              for strategy in (st.integers(math.floor(limit) - 3, math.ceil(limit) + 3),
                               st.floats(limit - 3, limit + 3))]
    return st.one_of(st.integers(), st.floats(), *nearby)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bounds")  # module-wide: hypothesis runs many examples in one test call


def test_the_walk_reaches_every_schema_and_the_settings_the_issue_names():
    assert every_subclass(Strict) <= set().union(*map(schemas_under, SCHEMAS)), "a schema no root reaches: add it to SCHEMAS"
    keys = {setting.key for setting in SETTINGS}
    assert {"pmc.warmup_rounds", "ray.call_timeout_s", "pmc.lambda", "data.seed", "eval.attacks.relearn_steps",
            "eval.attacks.quantize_bits", "ray.num_gpus_per_actor", "threads", "repeats", "trial_cpus"} <= keys


@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
def test_every_numeric_setting_declares_a_range_its_type_holds(setting):
    names = {name for name, _ in setting.bounds}
    assert names & {"ge", "gt"} and names & {"le", "lt"}, f"{setting.key}: a lower and an upper bound, with why"
    for _, limit in setting.bounds:
        assert -INT64 <= limit < INT64 if setting.kind is int else abs(limit) <= FLOAT32_MAX, setting.key


@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
def test_extreme_values_are_refused_by_name_or_accepted_within_the_range(setting, folder):
    for value in (*EXTREMES, *near_bounds(setting)):
        check(setting, value, folder)


@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_drawn_values_are_refused_by_name_or_accepted_within_the_range(setting, folder, data):
    check(setting, data.draw(around_bounds(setting), label=setting.key), folder)


@pytest.mark.parametrize("overrides, message", [
    (["pmc.rounds=4", "pmc.warmup_rounds=4.5"], "pmc.warmup_rounds: must be at most pmc.rounds (4)"),
    (["target.epochs=2", "target.warmup_epochs=3"], "target.warmup_epochs: must be at most target.epochs (2)"),
    (["engine.max_model_len=64", "engine.max_new_tokens=64"],
     "engine.max_new_tokens: must be less than engine.max_model_len (64)"),
    (["ray.num_cpus_per_actor=0.00001"], "ray.num_cpus_per_actor: must be 0 or at least 0.0001"),
    (["pmc.rounds=" + "9" * 5000], "a value too long to read"),
])
def test_bounds_set_by_another_setting_or_by_ray_and_yaml_are_refused_by_name(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_method_config(None, [*overrides, *FOLDERS])


def test_a_warm_up_as_long_as_the_training_is_accepted():
    config = load_method_config(None, ["pmc.rounds=4", "pmc.warmup_rounds=4", "target.epochs=2",
                                       "target.warmup_epochs=2", *FOLDERS])
    assert (config.pmc.warmup_rounds, config.target.warmup_epochs) == (4, 2)


@pytest.mark.parametrize("value", ["0", "4097", "9" * 5000, "²", "-1"])
def test_pmc_threads_is_held_to_the_range_of_threads(monkeypatch, value):
    monkeypatch.setenv("PMC_THREADS", value)
    with pytest.raises(ConfigError, match="PMC_THREADS=.*must be a whole number from 1 to 4096"):
        load_method_config(None, FOLDERS)


@pytest.mark.parametrize("override", ["pmc.warmup_rounds=1e308", "ray.call_timeout_s=1e300"])
def test_the_command_line_refuses_an_out_of_range_number_in_one_line_at_once(override, tmp_path):
    """The child inherits PYTHONPATH: it runs the code under test wherever the suite imports it from."""
    where = [f"runs_dir={tmp_path / 'runs'}", f"cache_dir={tmp_path / 'cache'}", "allow_external_dirs=true"]
    command = [sys.executable, "-m", "pmc_unlearning.orchestrator", "unlearn", "--set", override,
               *(arg for setting in where for arg in ("--set", setting))]
    started = time.monotonic()
    result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 5, "refused, but only after the heavy imports"
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    key = override.partition("=")[0]
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"{key}: " in lines[0], result.stderr
