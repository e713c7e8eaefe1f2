#!/usr/bin/env bash
# The device check (issue 10): the trainer group with NCCL, one rank per GPU, on Llama-3.2-1B- and 3B-shaped
# random models in bf16; step time, peak memory, full-state-dict hand-over. For a GPU machine lent through the
# device tool (torch and transformers there, no vLLM, no Ray), in one call of a few minutes:
#     bash scripts/device_check.sh                      # every GPU, shapes 1b,3b
#     NPROC=2 bash scripts/device_check.sh --shapes tiny    # the same code on the CPU (gloo): how it is checked here
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(test -x .venv/bin/python && echo .venv/bin/python || echo python3)}
NPROC=${NPROC:-$("$PYTHON" -c "import torch; print(max(torch.cuda.device_count(), 1))")}
export PYTHONUNBUFFERED=1
if ! "$PYTHON" -c "import pmc_unlearning.trainer" 2>/dev/null; then
    # The project not installed (a device machine has no .venv): the checkout is the package, through a link.
    LINK_DIR=$(mktemp -d)
    trap 'rm -rf "$LINK_DIR"' EXIT
    ln -s "$PWD" "$LINK_DIR/pmc_unlearning"
    export PYTHONPATH="$LINK_DIR${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" scripts/device_check.py "$@"
