import os
import re
from pathlib import Path
from typing import Annotated, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from pmc_unlearning.configs import CONFIG_DIR, ConfigError, RunConfig, load_config
from pmc_unlearning.configs.batch_schema import fitting_name, load_batch, trial_name
from pmc_unlearning.configs.schema import CODE_FOLDERS, MAX_NAME_LENGTH, PROJECT_DIR, _refuse_duplicate_keys


def test_presets_validate():
    assert load_config(CONFIG_DIR / "default.yaml").model == "smollm2-135m"
    assert load_config(CONFIG_DIR / "smoke.yaml").model == "tiny"


def test_defaults_run_without_a_file(monkeypatch):
    monkeypatch.delenv("PMC_THREADS", raising=False)  # make test's share for its own jobs
    assert load_config(None) == RunConfig()


def test_overrides_are_parsed_as_yaml_and_lambda_keeps_its_name():
    config = load_config(None, ["pmc.lambda=1.5", "pmc.rounds=3", "model=/tmp/x", "data.source=builtin"])
    assert config.pmc.lambda_ == 1.5 and config.pmc.rounds == 3 and config.model == "/tmp/x"
    assert config.resolved()["pmc"]["lambda"] == 1.5


def test_unknown_keys_are_refused_by_name(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("pmc:\n  num_sample: 4\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*pmc\.num_sample: Extra inputs are not permitted"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"colour: Extra inputs"):
        load_config(None, ["colour=red"])


def test_bad_values_name_the_key():
    with pytest.raises(ConfigError, match=r"pmc\.temperature: Input should be greater than or equal to 0\.01"):
        load_config(None, ["pmc.temperature=0"])
    with pytest.raises(ConfigError, match=r"data\.forget_split"):
        load_config(None, ["data.forget_split=forget3"])
    with pytest.raises(ConfigError, match=r"not of the form key\.sub=value"):
        load_config(None, ["pmc.rounds"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_a_method_runs_with_its_own_settings_unless_the_command_line_says_otherwise(tmp_path):
    from pmc_unlearning.configs import load_method_config

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
    assert {"pmc.lr": float, "pmc.rounds": int, "threads": int, "ray.num_gpus_per_actor": float}.items() <= settings.items()
    for key, kind in settings.items():
        allowed = "a finite number" if kind is float else "a whole number"
        for value, shown in (("yes", "true"), ("false", "false"), (".nan", "nan"), ("-.inf", "-inf"), ("nan", "'nan'")):
            with pytest.raises(ConfigError, match=rf"{re.escape(key)}: must be {allowed}, got {re.escape(shown)}$"):
                load_config(None, [f"{key}={value}"])


def test_whole_numbers_refuse_fractions_and_numbers_written_as_strings_still_parse(tmp_path):
    with pytest.raises(ConfigError, match=r"pmc\.rounds: must be a whole number, got 2\.5$"):
        load_config(None, ["pmc.rounds=2.5"])
    with pytest.raises(ConfigError, match=r"pmc\.lr: must be a finite number, got 'fast'$"):
        load_config(None, ["pmc.lr=fast"])
    config = load_config(None, ["pmc.lr=1e-4", "pmc.rounds=4.0", "engine.kv_cache_memory_bytes=1e8"])
    assert (config.pmc.lr, config.pmc.rounds, config.engine.kv_cache_memory_bytes) == (1e-4, 4, 10**8)
    assert type(config.pmc.rounds) is int
    path = tmp_path / "preset.yaml"
    path.write_text("target:\n  lr: 3e-4\n")  # YAML 1.1 reads this as the string '3e-4'
    assert load_config(path).target.lr == 3e-4


def test_a_key_given_twice_in_a_preset_is_refused_with_its_line(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("pmc:\n  lr: 1.0e-4\n  rounds: 3\n  lr: 2.0e-4\n")
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
    from pmc_unlearning.orchestrator.__main__ import main

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


SEED_KEYS = {"data.seed", "engine.seed", "target.seed", "pmc.seed", "eval.seed"}


def test_every_seed_is_one_numpy_and_vllm_take():
    assert {key for key in dict(numeric_settings()) if key.endswith("seed")} == SEED_KEYS
    for key in SEED_KEYS:
        with pytest.raises(ConfigError, match=rf"{re.escape(key)}: Input should be greater than or equal to 0$"):
            load_config(None, [f"{key}=-1"])
        with pytest.raises(ConfigError, match=rf"{re.escape(key)}: Input should be less than 4294967296$"):
            load_config(None, [f"{key}={2**32}"])
    config = load_config(None, [f"{key}={2**32 - 1}" for key in SEED_KEYS])
    assert config.pmc.seed == config.data.seed == 2**32 - 1


def test_a_run_name_leaves_room_for_its_folders_suffixes():
    assert load_config(None, ["name=" + "n" * 100]).name == "n" * 100
    with pytest.raises(ConfigError, match=r"name: must be at most 100 characters, got 250: the run folder's name takes "
                                          r"suffixes such as \.partial, and a file name holds 255 bytes$"):
        load_config(None, ["name=" + "n" * 250])


def test_the_eval_corpus_is_one_the_data_package_knows():
    from pmc_unlearning.configs import EvalConfig
    from pmc_unlearning.data.corpus import CORPUS_NAMES

    assert get_args(EvalConfig.model_fields["corpus"].annotation) == CORPUS_NAMES
    with pytest.raises(ConfigError, match=r"eval\.corpus: Input should be 'builtin' or 'wikitext'$"):
        load_config(None, ["eval.corpus=wikipedia"])


@pytest.mark.parametrize("folder", [".", *CODE_FOLDERS, "configs/batch", "tests/fixtures/runs", ".git/objects/x"])
@pytest.mark.parametrize("key", ["runs_dir", "cache_dir"])
def test_runs_and_caches_never_go_in_the_project_folder_or_its_code(key, folder, monkeypatch):
    monkeypatch.chdir(PROJECT_DIR)
    shown = PROJECT_DIR if folder == "." else PROJECT_DIR / folder
    where = "is the project folder" if folder == "." else f"lies in the project's {folder.split('/')[0]}/ folder"
    for value in (folder, str(shown)):
        with pytest.raises(ConfigError, match=rf"{key}: {re.escape(str(shown))} {re.escape(where)}; runs, caches and "
                                              r"Tune's state are replaced and deleted wholesale"):
            load_config(None, [f"{key}={value}", "allow_external_dirs=true"])


def test_a_link_to_the_code_is_refused_and_folders_that_only_look_alike_are_not(tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT_DIR)
    (tmp_path / "link").symlink_to(PROJECT_DIR / "models")
    with pytest.raises(ConfigError, match=r"cache_dir: \S+/models lies in the project's models/ folder"):
        load_config(None, [f"cache_dir={tmp_path / 'link'}", "allow_external_dirs=true"])
    assert load_config(None, ["runs_dir=runs/configs", "cache_dir=.cache/tests"]).cache_dir == Path(".cache/tests")
    assert load_config(None, [f"runs_dir={PROJECT_DIR}/configs-old"]).runs_dir == PROJECT_DIR / "configs-old"


def test_anchors_and_aliases_are_refused_with_their_line(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("pmc: &defaults\n  lr: 1.0e-4\nbaseline:\n  <<: *defaults\n")
    with pytest.raises(ConfigError, match=r"anchors\.yaml, line 1: YAML anchor &defaults: anchors and aliases are not "
                                          r"accepted here; write each setting out$"):
        load_config(path)
    path.write_text("pmc:\n  lr: 1.0e-4\nbaseline:\n  lr: *x\n")
    with pytest.raises(ConfigError, match=r"anchors\.yaml, line 4: YAML alias \*x"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"override 'name=\*x', line 1: YAML alias \*x"):
        load_config(None, ["name=*x"])


def test_the_duplicate_key_walk_visits_a_shared_node_once():
    """With aliases, one node stands for many: a walk of the expansion would visit 10**10 nodes here."""
    lines = ["a0: &a0 [{k: 1}, {k: 2}]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    node = yaml.compose("\n".join(lines), Loader=yaml.SafeLoader)
    _refuse_duplicate_keys(node, "bomb.yaml", (), set())
    twice = yaml.compose("a: &a {k: 1, k: 2}\nb: *a\n", Loader=yaml.SafeLoader)
    with pytest.raises(ConfigError, match=r"bomb\.yaml, line 1: a\.k is given twice"):
        _refuse_duplicate_keys(twice, "bomb.yaml", (), set())


def test_a_preset_nested_too_deeply_is_refused_in_one_line(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("pmc: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"deep\.yaml: nested too deeply to read; a setting is a few levels deep at most$"):
        load_config(path)


def write_batch(tmp_path, **fields) -> Path:
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(fields))
    return path


@pytest.mark.parametrize("fields, message", [
    ({"grid": {"method": ["pmc"], "pmc.lr": []}}, r"grid\.pmc\.lr: no values, so the grid makes no trial"),
    ({"grid": {"pmc.seed": [1, 2]}, "repeats": 2}, r"grid\.pmc\.seed: is in seed_keys, which each of the 2 repeats"),
    ({"variants": [{"eval.seed": 1}], "repeats": 3, "seed_keys": ["pmc.seed", "eval.seed"]},
     r"variants\.0\.eval\.seed: is in seed_keys"),
    ({"grid": {"pmc.lr": list(range(1, 11))}, "variants": [{"pmc.rounds": i} for i in range(1, 11)], "repeats": 11},
     r"grid x variants x repeats make 1100 trials; a batch runs 1000 at most"),
    ({"name": "b" * 121}, r"name: must be at most 120 characters, got 121"),
    ({"storage_path": "docs/tune"}, rf"storage_path: {re.escape(str(PROJECT_DIR))}/docs/tune lies in the project's docs/ folder"),
    ({"storage_path": "/elsewhere/tune"}, r"storage_path: /elsewhere/tune lies outside the project folder"),
])
def test_a_batch_that_would_run_other_trials_than_it_says_is_refused(tmp_path, monkeypatch, fields, message):
    monkeypatch.chdir(PROJECT_DIR)
    with pytest.raises(ConfigError, match=rf"b\.yaml: {message}"):
        load_batch(write_batch(tmp_path, **fields))


def test_a_seed_grid_without_repeats_and_an_opted_in_storage_path_are_fine(tmp_path):
    batch = load_batch(write_batch(tmp_path, grid={"pmc.seed": [1, 2]}, storage_path=str(tmp_path / "tune"),
                                   set=["allow_external_dirs=true"]))
    assert [batch.trial_config(trial).pmc.seed for trial in batch.trials] == [1, 2]


def test_long_trial_names_are_cut_to_distinct_names_that_fit():
    settings = [{f"section.setting_number_{i}": 1 for i in range(8)} | {"section.last": value} for value in (1, 2)]
    names = [fitting_name(trial_name(s, None)) for s in settings]
    assert all(len(name) == MAX_NAME_LENGTH for name in names) and len(set(names)) == 2
    assert fitting_name("pmc_seed-0") == "pmc_seed-0"


def test_the_methods_a_config_takes_are_the_registrys_and_their_settings_are_checked():
    from pmc_unlearning.configs import METHODS
    from pmc_unlearning.configs.methods import METHOD_CLASSES

    assert METHODS == tuple(METHOD_CLASSES) and {"dpo", "rmu"} <= set(METHODS)
    assert load_config(None, ["method=rmu", "baseline.rmu_layer=1"]).baseline.rmu_layer == 1.0
    with pytest.raises(ConfigError, match=r"method: Input should be 'pmc', .* or 'rmu'"):
        load_config(None, ["method=kto"])
    with pytest.raises(ConfigError, match=r"baseline\.rmu_layer: Input should be less than or equal to 1"):
        load_config(None, ["baseline.rmu_layer=7"])
    with pytest.raises(ConfigError, match=r"baseline\.rmu_steering: Input should be greater than 0"):
        load_config(None, ["baseline.rmu_steering=0"])
    with pytest.raises(ConfigError, match=r"baseline\.dpo_gamma: Extra inputs are not permitted"):
        load_config(None, ["baseline.dpo_gamma=1"])
    with pytest.raises(ConfigError, match=r"pmc\.epochs: Extra inputs are not permitted"):  # now pmc.rounds
        load_config(None, ["pmc.epochs=3"])


def test_threads_left_unset_are_pmc_threads_else_the_cores_this_process_may_use(monkeypatch):
    from pmc_unlearning.cluster.placement import Placement
    from pmc_unlearning.configs import machine_threads

    allowed = os.sched_getaffinity(0)
    smoke = CONFIG_DIR / "smoke.yaml"
    monkeypatch.setenv("PMC_THREADS", "6")
    assert load_config(smoke).threads == 6
    assert Placement(None, 0, load_config(smoke)).threads(2) == 3  # two trainer ranks share the six
    assert load_config(smoke, ["threads=4"]).threads == 4  # a job's own setting wins
    monkeypatch.setenv("PMC_THREADS", "two")
    with pytest.raises(ConfigError, match="PMC_THREADS='two': the default of `threads` must be a whole number"):
        load_config(smoke)
    # Not OMP_NUM_THREADS, which Ray sets to 1 in the processes it starts (a submitted job's driver too).
    monkeypatch.delenv("PMC_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert load_config(smoke).threads is None
    assert Placement(None, 0, load_config(smoke)).threads(1) == machine_threads() == len(allowed)
    os.sched_setaffinity(0, {min(allowed)})  # as taskset or a container's cpuset leaves it: not os.cpu_count()
    try:
        assert machine_threads() == 1
    finally:
        os.sched_setaffinity(0, allowed)


def _flat(settings: dict, prefix: str = "") -> dict:
    return {key: value for name, setting in settings.items()
            for key, value in (_flat(setting, f"{prefix}{name}.").items() if isinstance(setting, dict)
                               else [(f"{prefix}{name}", setting)])}


def test_the_fluent_preset_is_the_default_job_with_the_fluent_option_and_nothing_else():
    default = _flat(load_config(CONFIG_DIR / "default.yaml").resolved())
    fluent = _flat(load_config(CONFIG_DIR / "fluent.yaml").resolved())
    assert {key: fluent[key] for key in fluent if fluent[key] != default.get(key)} == {
        "name": "fluent", "pmc.avoid_original": True, "pmc.temperature": 1.0, "pmc.num_samples": 64,
        "pmc.judge.candidates": 64, "pmc.judge.cap": True}


def test_a_presets_base_is_read_beneath_it_and_a_bad_base_is_named(tmp_path):
    (tmp_path / "low.yaml").write_text("name: low\npmc:\n  rounds: 3\n  lr: 2.0e-4\n")
    (tmp_path / "high.yaml").write_text("base: low.yaml\nname: high\npmc:\n  rounds: 4\n")
    config = load_config(tmp_path / "high.yaml", ["pmc.batch_size=2"])
    assert (config.name, config.pmc.rounds, config.pmc.lr, config.pmc.batch_size) == ("high", 4, 2.0e-4, 2)
    (tmp_path / "loop.yaml").write_text("base: loop2.yaml\n")
    (tmp_path / "loop2.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match=r"loop2.yaml: base 'loop.yaml' leads back to .*loop.yaml, a preset based on itself"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "lost.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"config file .*nowhere.yaml does not exist"):
        load_config(tmp_path / "lost.yaml")
    (tmp_path / "odd.yaml").write_text("base: [low.yaml]\n")
    with pytest.raises(ConfigError, match=r"odd.yaml: base must be the file name of another preset, got \['low.yaml'\]"):
        load_config(tmp_path / "odd.yaml")
