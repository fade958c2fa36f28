"""Per-channel activation maps of fixed probe images, as tile grids.

TensorFlow's kernel-summary recipe (docs/design.md, Sources) transposes ``[batch, h, w, channels]``
to ``[channels, h, w, 1]`` so every channel becomes a grey image; we do the same per probe image
and lay the channels out as ``torchvision.utils.make_grid`` does, in a fixed channel order, so the
same tile is the same filter at every step. The layout is one reshape rather than ``make_grid``
itself: its per-tile copies cost 0.3 s for the 8 x 3,300 tiles of a ResNet-50 snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tb_cnnviz.analysis.layers import activation_point
from tb_cnnviz.analysis.safety import capture_outputs, safe_snapshot


def layer_activations(
    model: nn.Module, layers: Sequence[nn.Module], images: torch.Tensor
) -> list[torch.Tensor]:
    """Outputs of each conv layer's activation point (see :func:`layers.activation_point`) for ``images``.

    Runs in eval mode under ``no_grad``; every module's training flag, the RNG and the
    hooks are restored. Values are clamped at 0: what a following ReLU passes on.
    """
    points = [activation_point(model, layer) for layer in layers]
    context, outputs = capture_outputs(points, transform=lambda value: value.detach().clamp(min=0))
    with safe_snapshot(model), torch.no_grad(), context:
        model(images)
    missing = [index for index, output in enumerate(outputs) if output is None]
    if missing:
        raise RuntimeError(f"layers: the model's forward pass never called layer(s) at positions {missing}")
    return list(outputs)


def activation_grids(activations: torch.Tensor, padding: int = 1) -> tuple[torch.Tensor, int]:
    """Tile grids ``[N, H', W']`` in [0, 1], one per image, and the number of tiles per row.

    Each channel is divided by its maximum over the whole probe batch, so tiles are
    comparable across probe images; a channel that never fires is black. Non-finite
    values count as 0.
    """
    if activations.dim() != 4:
        raise ValueError(f"activations: expected [N, C, H, W], got shape {tuple(activations.shape)}")
    values = torch.nan_to_num(activations.detach().float(), nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0)
    peak = values.amax(dim=(0, 2, 3), keepdim=True)
    values = torch.where(peak > 0, values / peak.clamp_min(1e-30), torch.zeros_like(values))
    channels = values.shape[1]
    nrow = max(1, math.ceil(math.sqrt(channels)))
    return tile_grid(values, nrow, padding), nrow


def tile_grid(values: torch.Tensor, nrow: int, padding: int = 1, pad_value: float = 0.25) -> torch.Tensor:
    """``[N, C, h, w]`` -> ``[N, H', W']``: per image, its ``C`` maps as tiles ``nrow`` to a row, laid out
    exactly as ``make_grid(image.unsqueeze(1), nrow, padding, pad_value=pad_value)[0]``, except that a
    single map keeps its padding (make_grid returns it bare) so every layer's tiles have one geometry."""
    count, channels, height, width = values.shape
    rows = math.ceil(channels / nrow)
    cells = values.new_full((count, rows * nrow, height + padding, width + padding), pad_value)
    cells[:, :channels, padding:, padding:] = values
    grid = cells.reshape(count, rows, nrow, height + padding, width + padding).permute(0, 1, 3, 2, 4)
    grid = grid.reshape(count, rows * (height + padding), nrow * (width + padding))
    return F.pad(grid, (0, padding, 0, padding), value=pad_value)
