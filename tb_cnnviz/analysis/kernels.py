"""Conv kernels as pictures (TensorFlow kernel summaries, docs/design.md) and a per-filter smoothness score.

Well-trained first-layer filters look like smooth edge, colour and blob detectors;
noisy filters point to too high a learning rate, too little data or too little
regularisation (CS231n). The grid makes that visible, the score makes it a curve.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torchvision.utils import make_grid

Normalization = Literal["global", "per_filter"]
NORMALIZATIONS = ("global", "per_filter")
NONFINITE_COLOUR = (
    1.0,
    0.0,
    1.0,
)  # magenta: never produced by a normalised finite weight in a grey or RGB tile


def normalize_kernels(weight: torch.Tensor, normalization: Normalization = "global") -> torch.Tensor:
    """Min-max scale conv weights ``[out, in, kh, kw]`` to [0, 1] over finite values.

    ``global`` uses one min/max for the whole layer (default: drift and growth of the
    weights stay visible across training steps); ``per_filter`` one per output filter
    (shows each filter's structure at full contrast). Non-finite weights become NaN.
    """
    _check_weight(weight)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization: expected one of {NORMALIZATIONS}, got {normalization!r}")
    weight = weight.detach().float()
    finite = torch.isfinite(weight)
    dims = tuple(range(weight.dim())) if normalization == "global" else tuple(range(1, weight.dim()))
    low = torch.where(finite, weight, torch.full_like(weight, math.inf)).amin(dim=dims, keepdim=True)
    high = torch.where(finite, weight, torch.full_like(weight, -math.inf)).amax(dim=dims, keepdim=True)
    span = (high - low).clamp_min(1e-12)
    scaled = ((weight - low) / span).clamp(0, 1)
    # A constant (or all non-finite) filter has no contrast: show it mid-grey.
    scaled = torch.where(torch.isfinite(high - low) & (high > low), scaled, torch.full_like(scaled, 0.5))
    return torch.where(finite, scaled, torch.full_like(scaled, math.nan))


def kernel_grid(
    weight: torch.Tensor, normalization: Normalization = "global", padding: int = 1
) -> tuple[torch.Tensor, int]:
    """The kernels of a conv layer as one picture ``[3, H, W]`` in [0, 1], and the number of tiles per row.

    RGB tiles when the layer has 3 input channels (a first layer); otherwise one grey tile
    per (filter, input channel), one filter per row. Non-finite weights are drawn magenta.
    """
    scaled = normalize_kernels(weight, normalization)
    out_channels, in_channels = scaled.shape[:2]
    if in_channels == 3:
        tiles, nrow = scaled, max(1, math.ceil(math.sqrt(out_channels)))
    else:
        tiles = scaled.reshape(out_channels * in_channels, 1, *scaled.shape[2:]).expand(-1, 3, -1, -1)
        nrow = in_channels if in_channels > 1 else max(1, math.ceil(math.sqrt(out_channels)))
    nonfinite = torch.isnan(tiles).any(dim=1, keepdim=True)
    colour = torch.tensor(NONFINITE_COLOUR, dtype=tiles.dtype, device=tiles.device).view(1, 3, 1, 1)
    tiles = torch.where(nonfinite, colour.expand_as(tiles), tiles)
    return make_grid(tiles, nrow=nrow, padding=padding, pad_value=0.0), nrow


def smoothness(weight: torch.Tensor) -> torch.Tensor:
    """Per-filter smoothness in [-1, 1]: how alike horizontally and vertically neighbouring weights are.

    For each filter, summing over all pairs ``(a, b)`` of spatial neighbours within the
    same input channel::

        s = sum(w_a * w_b) / sum((w_a**2 + w_b**2) / 2) = 1 - sum((w_a - w_b)**2) / sum(w_a**2 + w_b**2)

    i.e. one minus the share of the filter's energy in neighbour differences (its
    high-frequency part). ``s`` is scale-invariant: 1 for a constant filter, about 0 for
    zero-mean white noise, -1 for a checkerboard. An all-zero filter scores 1; filters
    with non-finite weights and 1x1 kernels (no neighbours) score NaN.
    """
    _check_weight(weight)
    weight = weight.detach().float()
    pairs = [(weight[..., :, 1:], weight[..., :, :-1]), (weight[..., 1:, :], weight[..., :-1, :])]
    products = sum((a * b).sum(dim=(1, 2, 3)) for a, b in pairs)
    energy = sum(((a * a + b * b) / 2).sum(dim=(1, 2, 3)) for a, b in pairs)
    score = torch.where(energy > 0, products / energy.clamp_min(1e-30), torch.ones_like(energy))
    score = torch.where(torch.isfinite(weight).flatten(1).all(dim=1), score, torch.full_like(score, math.nan))
    if weight.shape[2] * weight.shape[3] == 1:
        score = torch.full_like(score, math.nan)
    return score


def _check_weight(weight: torch.Tensor) -> None:
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight: expected a conv weight tensor [out, in, kh, kw], got {shape}")
