"""Round-to-nearest weight quantization, the attack of Zhang et al. (ICLR 2025, "Catastrophic failure of LLM
unlearning via quantization"): what a small unlearning update moved can fall back onto the grid of the target's
weights, and the forgotten answers with it.

Symmetric, per group of `group` consecutive input columns of each row: the group's scale is its largest
magnitude over the largest level, 2^(bits - 1) - 1, each weight rounded to the nearest level times the scale.
The weights come back dequantized (as the float the integer grid stands for), so the engine serves them as it
serves any other.
"""
from __future__ import annotations

import torch


def quantized(weight: torch.Tensor, bits: int, group: int) -> torch.Tensor:
    """`weight` (rows, input columns) rounded to `bits` per group of `group` columns (a shorter last group where
    the columns do not divide), dequantized, in its dtype."""
    if bits < 2 or group < 1:
        raise ValueError(f"quantization needs at least 2 bits and groups of at least 1, got {bits} bits, group {group}")
    rows, columns = weight.shape
    group = min(group, columns)  # a wider group is the whole row: the same scales, without padding to its width
    padded = -columns % group  # zeros change no group's largest magnitude
    grouped = torch.nn.functional.pad(weight.float(), (0, padded)).view(rows, -1, group)
    levels = 2 ** (bits - 1) - 1
    scale = grouped.abs().amax(dim=-1, keepdim=True) / levels
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # an all-zero group stays zero
    rounded = torch.clamp(torch.round(grouped / scale), -levels, levels) * scale
    return rounded.view(rows, -1)[:, :columns].to(weight.dtype)
