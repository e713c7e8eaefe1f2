import re
from pathlib import Path
from typing import Annotated, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from configs import CONFIG_DIR, ConfigError, RunConfig, load_config


def test_presets_validate():
    assert load_config(CONFIG_DIR / "default.yaml").model == "smollm2-135m"
    assert load_config(CONFIG_DIR / "smoke.yaml").model == "tiny"


def test_defaults_run_without_a_file():
    assert load_config(None) == RunConfig()


def test_overrides_are_parsed_as_yaml_and_lambda_keeps_its_name():
    config = load_config(None, ["pmc.lambda=1.5", "pmc.epochs=3", "model=/tmp/x", "data.source=builtin"])
    assert config.pmc.lambda_ == 1.5 and config.pmc.epochs == 3 and config.model == "/tmp/x"
    assert config.resolved()["pmc"]["lambda"] == 1.5


def test_unknown_keys_are_refused_by_name(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("pmc:\n  num_sample: 4\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*pmc\.num_sample: Extra inputs are not permitted"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"colour: Extra inputs"):
        load_config(None, ["colour=red"])


def test_bad_values_name_the_key():
    with pytest.raises(ConfigError, match=r"pmc\.temperature: Input should be greater than 0"):
        load_config(None, ["pmc.temperature=0"])
    with pytest.raises(ConfigError, match=r"data\.forget_split"):
        load_config(None, ["data.forget_split=forget3"])
    with pytest.raises(ConfigError, match=r"not of the form key\.sub=value"):
        load_config(None, ["pmc.epochs"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_a_method_runs_with_its_own_settings_unless_the_command_line_says_otherwise(tmp_path):
    from configs import load_method_config

    path = tmp_path / "preset.yaml"
    path.write_text('baseline:\n  lr: 1.0e-4\nmethod_settings:\n  npo: ["baseline.lr=3.0e-5", "baseline.npo_beta=0.2"]\n')
    assert load_method_config(path, ["method=npo"]).baseline.lr == 3e-5
    assert load_method_config(path, ["method=npo"]).baseline.npo_beta == 0.2
    assert load_method_config(path, ["method=npo", "baseline.lr=7e-5"]).baseline.lr == 7e-5
    assert load_method_config(path, ["method=idk"]).baseline.lr == 1e-4
    assert load_method_config(CONFIG_DIR / "smoke.yaml", ["method=simnpo"]).baseline.simnpo_beta == 2.5


def numeric_settings(model: type[BaseModel] = RunConfig, prefix: str = ""):
    """Every int and float setting of the schema: (`key.sub` as users write it, int or float)."""
    for name, field in model.model_fields.items():
        key, kind = f"{prefix}{field.alias or name}", field.annotation
        if get_origin(kind) is Union:  # `X | None`
            kind = next(arg for arg in get_args(kind) if arg is not type(None))
        if get_origin(kind) is Annotated:
            kind = get_args(kind)[0]
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from numeric_settings(kind, f"{key}.")
        elif kind in (int, float):
            yield key, kind


def test_every_numeric_setting_refuses_booleans_and_non_finite_values():
    settings = dict(numeric_settings())
    assert {"pmc.lr": float, "pmc.epochs": int, "threads": int, "ray.num_gpus_per_actor": float}.items() <= settings.items()
    for key, kind in settings.items():
        allowed = "a finite number" if kind is float else "a whole number"
        for value, shown in (("yes", "true"), ("false", "false"), (".nan", "nan"), ("-.inf", "-inf"), ("nan", "'nan'")):
            with pytest.raises(ConfigError, match=rf"{re.escape(key)}: must be {allowed}, got {re.escape(shown)}$"):
                load_config(None, [f"{key}={value}"])


def test_whole_numbers_refuse_fractions_and_numbers_written_as_strings_still_parse(tmp_path):
    with pytest.raises(ConfigError, match=r"pmc\.epochs: must be a whole number, got 2\.5$"):
        load_config(None, ["pmc.epochs=2.5"])
    with pytest.raises(ConfigError, match=r"pmc\.lr: must be a finite number, got 'fast'$"):
        load_config(None, ["pmc.lr=fast"])
    config = load_config(None, ["pmc.lr=1e-4", "pmc.epochs=4.0", "engine.kv_cache_memory_bytes=1e8"])
    assert (config.pmc.lr, config.pmc.epochs, config.engine.kv_cache_memory_bytes) == (1e-4, 4, 10**8)
    assert type(config.pmc.epochs) is int
    path = tmp_path / "preset.yaml"
    path.write_text("target:\n  lr: 3e-4\n")  # YAML 1.1 reads this as the string '3e-4'
    assert load_config(path).target.lr == 3e-4


def test_a_key_given_twice_in_a_preset_is_refused_with_its_line(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("pmc:\n  lr: 1.0e-4\n  epochs: 3\n  lr: 2.0e-4\n")
    with pytest.raises(ConfigError, match=r"twice\.yaml, line 4: pmc\.lr is given twice \(first on line 2\)$"):
        load_config(path)
    path.write_text("name: a\nmodel: tiny\nname: b\n")
    with pytest.raises(ConfigError, match=r"twice\.yaml, line 3: name is given twice \(first on line 1\)$"):
        load_config(path)


def test_a_preset_that_is_not_readable_utf8_text_is_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml is not UTF-8 text \(byte 0xe9 at offset 9\)"):
        load_config(path)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"config file .*folder\.yaml is a folder, not a YAML file$"):
        load_config(folder)
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    with pytest.raises(ConfigError, match=r"config file .*loop\.yaml cannot be read: Too many levels of symbolic links$"):
        load_config(loop)


def test_a_bad_override_value_is_a_config_error():
    with pytest.raises(ConfigError, match=r"override 'pmc\.lr=\[1': not valid YAML"):
        load_config(None, ["pmc.lr=[1"])


@pytest.mark.parametrize("entry, message", [
    ("baseline.lr=abc", r"'baseline\.lr=abc': baseline\.lr: must be a finite number, got 'abc'"),
    ("baseline.lrr=1e-4", r"'baseline\.lrr=1e-4': baseline\.lrr: Extra inputs are not permitted"),
    ("baseline.lr", r"override 'baseline\.lr' is not of the form key\.sub=value"),
    ("method=idk", r"'method=idk': a method's settings cannot set method"),
    ("name=other", r"'name=other': a method's settings cannot set name"),
    ("method_settings.idk=[]", r"'method_settings\.idk=\[\]': a method's settings cannot set method_settings"),
])
def test_every_methods_settings_are_checked_when_the_config_is_loaded(tmp_path, entry, message):
    path = tmp_path / "preset.yaml"
    path.write_text(f'method: pmc\nmethod_settings:\n  idk: ["baseline.lr=1.0e-5"]\n  npo: ["baseline.npo_beta=0.2", "{entry}"]\n')
    with pytest.raises(ConfigError, match=rf"^method_settings\.npo: {message}$"):
        load_config(path)  # pmc runs here, and npo's settings are still checked


def test_compare_refuses_an_empty_or_repeated_method_list(capsys):
    from orchestrator.__main__ import main

    for methods, message in (("", "no method given; valid ones are pmc, grad_ascent"), (" , ", "no method given"),
                             ("npo,pmc,npo", "['npo'] given more than once")):
        assert main(["compare", "--methods", methods]) == 2
        assert f"error: --methods: {message}" in capsys.readouterr().err


def test_a_run_cannot_take_its_folders_working_names():
    for name in ("x.partial", "x.previous"):
        with pytest.raises(ConfigError, match=rf"name: must not end in \.partial or \.previous .*, got '{name}'$"):
            load_config(None, [f"name={name}"])
    with pytest.raises(ConfigError, match=r"name: String should match pattern"):
        load_config(None, ["name=../x"])
    assert load_config(None, ["name=x.partial-2"]).name == "x.partial-2"


def test_folders_outside_the_project_need_an_explicit_opt_in(tmp_path, monkeypatch):
    monkeypatch.chdir(CONFIG_DIR.parent)
    assert load_config(None, ["runs_dir=runs/sub", "cache_dir=.cache"]).runs_dir == Path("runs/sub")
    for key, value in (("runs_dir", str(tmp_path)), ("cache_dir", "~/pmc-cache"), ("runs_dir", "runs/../../elsewhere")):
        with pytest.raises(ConfigError, match=rf"{key}: \S+ lies outside the project folder {re.escape(str(CONFIG_DIR.parent))}; "
                                              r"set allow_external_dirs=true to use it$"):
            load_config(None, [f"{key}={value}"])
    config = load_config(None, [f"runs_dir={tmp_path}", "cache_dir=~/pmc-cache", "allow_external_dirs=true"])
    assert config.runs_dir == tmp_path and config.cache_dir == Path.home() / "pmc-cache"
    monkeypatch.chdir(tmp_path)  # relative folders are relative to the current folder
    with pytest.raises(ConfigError, match=rf"runs_dir: {re.escape(str(tmp_path.resolve() / 'runs'))} lies outside"):
        load_config(None)


def test_prompt_and_revision_settings_have_defaults_and_are_checked():
    def new_settings(config):
        return config.prompt, config.model_revision, config.data.tofu_path, config.data.revision

    assert new_settings(load_config(None)) == ("auto", None, "locuslab/TOFU", None)
    chosen = load_config(None, ["prompt=chat", "model_revision=v2.0", "data.tofu_path=/data/TOFU", "data.revision=main"])
    assert new_settings(chosen) == ("chat", "v2.0", "/data/TOFU", "main")
    with pytest.raises(ConfigError, match=r"prompt: Input should be 'auto', 'plain' or 'chat'"):
        load_config(None, ["prompt=instruct"])
