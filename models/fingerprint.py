"""Cheap, stable identities for cache keys and run folders: of a model folder, and of the project's own code."""

import ast
import functools
import hashlib
from pathlib import Path

# Files whose content defines the model; weights are identified by name, size and mtime instead of content
# because hashing hundreds of MB on every run would cost more than the work it keys.
_CONTENT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json")
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf")


def fingerprint_folder(folder: Path) -> str:
    """sha256 hex digest over the folder's config/tokenizer files and its weight files' name, size, mtime."""
    digest = _digest_of_content_files(Path(folder))
    for path in _weight_files(Path(folder)):
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def content_fingerprint(folder: Path) -> str:
    """sha256 hex digest over the folder's config/tokenizer files and its weight files' bytes: the model's
    identity wherever it is copied to (a target given by the user, recorded with the run and its lineage)."""
    digest = _digest_of_content_files(Path(folder))
    for path in _weight_files(Path(folder)):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as weights:
            for block in iter(lambda: weights.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()


def _digest_of_content_files(folder: Path):
    digest = hashlib.sha256()
    for name in _CONTENT_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest


def _weight_files(folder: Path) -> list[Path]:
    return sorted({path for pattern in _WEIGHT_PATTERNS for path in folder.glob(pattern)})


PROJECT_DIR = Path(__file__).resolve().parents[1]
# The project's packages by what they produce: a run's training (what a resumed run must share with its first
# attempt) and its evaluation (what a finished run and a cached evaluation must share with a new one).
TRAINING_CODE = ("cluster", "configs", "data", "engine", "methods", "models", "orchestrator", "storage", "trainer", "transfer")
EVALUATION_CODE = ("evaluation",)
# The orchestrator runs the evaluation too: its own files count for training, what it imports only for the
# evaluation does not (a change there leaves a resume possible).
ORCHESTRATION = "orchestrator"


@functools.cache
def fingerprint_code(packages: tuple[str, ...]) -> str:
    """sha256 hex digest of the project's Python source that `packages` consist of and import (`code_files`), as
    it is on disk (uncommitted edits included) when this process first asks: a change to any of those files
    changes it, whatever git knows. Once per process: a job asks for it at every check of its run folder and
    cache key, and its code is the code it started with."""
    digest = hashlib.sha256()
    for path in code_files(packages):
        digest.update(f"{path.relative_to(PROJECT_DIR)}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_files(packages: tuple[str, ...]) -> list[Path]:
    """The source files of `packages` and of every project module they import, directly or through others
    (read from the files' import statements, so that the list cannot fall behind the code): PMC's selection
    scores with evaluation/rouge.py, so that file is training code. The orchestrator's imports are not
    followed (ORCHESTRATION)."""
    found = {path for package in packages for path in (PROJECT_DIR / package).rglob("*.py")}
    to_read = [path for path in found if path.relative_to(PROJECT_DIR).parts[0] != ORCHESTRATION]
    while to_read:
        for imported in _project_imports(to_read.pop()):
            if imported not in found:
                found.add(imported)
                to_read.append(imported)
    return sorted(found)


def _project_imports(path: Path) -> set[Path]:
    """The project's source files that `path` imports (`import pmc_unlearning.x.y`, `from pmc_unlearning.x import
    y`, where y may be a module)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {file for module in modules for file in _module_files(module)}


def _module_files(module: str) -> list[Path]:
    """The file of a project module (with its package's __init__.py files); none for other modules."""
    parts = module.split(".")
    if parts[0] != "pmc_unlearning" or len(parts) < 2:
        return []
    base = PROJECT_DIR.joinpath(*parts[1:])
    inits = [PROJECT_DIR.joinpath(*parts[1:depth], "__init__.py") for depth in range(2, len(parts) + 1)]
    files = [base.with_suffix(".py"), base / "__init__.py", *inits]
    return [file for file in files if file.is_file()]


# Rows of each weight that a push's check sums: first, a third, two thirds, last.
_CHECKED_ROWS = (0.0, 1 / 3, 2 / 3, 1.0)


def fingerprint_weights(named_tensors, dtype=None) -> dict[str, tuple[list[int], float]]:
    """name -> (shape, sum of a fixed sample of rows, in float64) for every non-empty tensor, cast to `dtype`
    first if given: what a weight push's sender and receiver compare (transfer/weight_transfer.py). Cheap: a few
    rows a tensor. torch is imported here, not with the module, which the command line imports light."""
    import torch

    found = {}
    with torch.no_grad():
        for name, tensor in named_tensors:
            if tensor.numel() == 0:  # vLLM's CPU engine keeps linear weights in oneDNN handles, not parameters
                continue
            rows = tensor.detach().reshape(tensor.shape[0] if tensor.dim() > 1 else 1, -1)
            picked = sorted({round(share * (rows.shape[0] - 1)) for share in _CHECKED_ROWS})
            sample = rows[picked].to("cpu", dtype) if dtype is not None else rows[picked].cpu()
            found[name] = (list(tensor.shape), float(sample.to(torch.float64).sum()))
    return found
