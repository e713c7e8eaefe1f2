"""Whether bfloat16 is the fast choice on this machine, and how a process keeps the memory it frees.

On CPUs without native bf16 instructions (AVX-512 BF16 or AMX) torch emulates bf16 and a SmolLM2 training
step under bf16 autocast is ~25x *slower* than fp32 (measured on an AVX2-only EPYC: 75 s against 3 s), so
"auto" settings pick bf16 only where the hardware has it.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache
from pathlib import Path

import torch

# glibc's mallopt parameters (malloc.h), and the sizes below which freed memory stays with the process
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BLOCKS_UP_TO, KEEP_FREE_TOP_UP_TO = 1 << 30, (1 << 31) - 1
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The engine's weight dtypes by name (EngineConfig.dtype): what weights are cast to on their way to vLLM.
ENGINE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@lru_cache(maxsize=1)
def fast_bf16() -> bool:
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text().split() if cpuinfo.exists() else []
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_precision(precision: str) -> str:
    """Training compute type: 'bf16' or 'fp32' ('auto': bf16 where it is fast)."""
    if precision == "auto":
        return "bf16" if fast_bf16() else "fp32"
    return precision


def resolve_engine_dtype(dtype: str) -> str:
    """vLLM weight dtype: 'auto' means bfloat16 where it is fast, else float32."""
    if dtype == "auto":
        return "bfloat16" if fast_bf16() else "float32"
    return dtype


@lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks for reuse instead of handing them back to the system (in each process
    that trains or samples; it acts once per process; False where the C library is not glibc, left as it is).

    By default glibc serves every block above a few MB (a gradient, an activation, AdamW's temporaries) with a
    fresh mmap and unmaps it when freed, so each training step faults in and zeroes its gigabyte of new pages
    again, while the same numbers are computed either way (the cost: docs/performance.md). Peak memory stays
    as it was: a step reuses what the step before it freed.
    """
    libc = ctypes.CDLL(None)  # the process's own symbols: those of the C library it runs on
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP_BLOCKS_UP_TO)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREE_TOP_UP_TO))
