import pytest

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
