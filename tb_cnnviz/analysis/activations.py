"""Per-channel activation maps of fixed probe images, as tile grids.

TensorFlow's kernel-summary recipe (docs/design.md, Sources) transposes ``[batch, h, w, channels]``
to ``[channels, h, w, 1]`` so every channel becomes a grey image; we do the same per probe image
and lay the channels out as ``torchvision.utils.make_grid`` does, in a fixed channel order, so the
same tile is the same filter at every step. The layout is one reshape rather than ``make_grid``
itself: its per-tile copies cost 0.3 s for the 8 x 3,300 tiles of a ResNet-50 snapshot.

At real input sizes the grids are bounded (issue #14 §4: VGG16-BN's first layer at 224 px made a
1,801 px grid, 6.6 MB per snapshot): at most :data:`MAX_CHANNELS` tiles (the channels with the
largest peak over the probe batch, kept in channel order and named in ``channels_shown``) and
tiles area-downsampled by a whole factor so that a grid side stays within :data:`MAX_GRID_SIDE`
px and a tile within :data:`MAX_TILE_SIDE` px.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tb_cnnviz.analysis.layers import activation_point
from tb_cnnviz.analysis.paths import output_tensor
from tb_cnnviz.analysis.safety import capture_outputs, safe_snapshot

MAX_CHANNELS = 256  # tiles per grid; beyond it the channels that fire most are shown
MAX_TILE_SIDE = 32  # px of one tile (a 112 px map is shown at 28 px, a 224 px one at 32 px)
MAX_GRID_SIDE = 384  # px of a grid's side (with MAX_CHANNELS tiles: at most 22 px tiles)


@dataclasses.dataclass
class TileGrids:
    """Per probe image one grid of per-channel tiles, and what a view needs to locate tile ``i``.

    ``grids``: ``[N, H', W']`` in [0, 1]; ``nrow``: tiles per row; ``channels_shown``: the channel
    of each tile, ascending (all channels unless more than the cap); ``tile``: ``[h, w]`` px of a
    tile; ``factor``: each tile pixel is the mean of a ``factor`` x ``factor`` block of the map
    (1: not downsampled).
    """

    grids: torch.Tensor
    nrow: int
    channels_shown: list[int]
    tile: list[int]
    factor: int


def layer_activations(
    model: nn.Module, layers: Sequence[nn.Module], images: torch.Tensor
) -> list[torch.Tensor]:
    """Outputs of each conv layer's activation point (see :func:`layers.activation_point`) for ``images``.

    Runs in eval mode under ``no_grad``; every module's training flag, the RNG and the
    hooks are restored. Values are clamped at 0: what a following ReLU passes on.
    """
    points = [activation_point(model, layer) for layer in layers]
    context, outputs = capture_outputs(points, transform=_map_of)
    with safe_snapshot(model), torch.no_grad(), context:
        model(images)
    missing = [index for index, output in enumerate(outputs) if output is None]
    if missing:
        raise RuntimeError(f"layers: the model's forward pass never called layer(s) at positions {missing}")
    return list(outputs)


def _map_of(value) -> torch.Tensor:
    """The map a layer's output stands for (a dict's ``out``, a tuple's first tensor: ``paths.output_tensor``,
    as the default layers were found), clamped at 0."""
    tensor = output_tensor(value)
    if tensor is None:
        raise TypeError(f"layers: a layer returned {type(value).__name__}, which holds no tensor to show")
    return tensor.detach().clamp(min=0)


def activation_grids(activations: torch.Tensor, padding: int = 1) -> tuple[torch.Tensor, int]:
    """``(grids, nrow)`` of :func:`activation_tiles` at the default caps."""
    tiles = activation_tiles(activations, padding)
    return tiles.grids, tiles.nrow


def activation_tiles(
    activations: torch.Tensor,
    padding: int = 1,
    *,
    max_channels: int = MAX_CHANNELS,
    max_tile_side: int = MAX_TILE_SIDE,
    max_grid_side: int = MAX_GRID_SIDE,
) -> TileGrids:
    """Tile grids ``[N, H', W']`` in [0, 1], one per image, bounded in size (see the module docstring).

    Each shown channel is divided by its maximum over the whole probe batch (after downsampling),
    so tiles are comparable across probe images; a channel that never fires is black. Non-finite
    values count as 0. With more than ``max_channels`` channels, the ``max_channels`` with the
    largest peak over the batch are shown (ties: the lower channel), in channel order.
    """
    if activations.dim() != 4:
        raise ValueError(f"activations: expected [N, C, H, W], got shape {tuple(activations.shape)}")
    for value, argument in ((max_channels, "max_channels"), (max_tile_side, "max_tile_side")):
        if value < 1:
            raise ValueError(f"{argument}: expected an int >= 1, got {value!r}")
    values = torch.nan_to_num(activations.detach().float(), nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0)
    channels = values.shape[1]
    shown = list(range(channels))
    if channels > max_channels:
        peak = values.amax(dim=(0, 2, 3))
        order = torch.argsort(-peak, stable=True)[:max_channels]
        shown = sorted(int(c) for c in order)
        values = values[:, shown]
    nrow = max(1, math.ceil(math.sqrt(len(shown))))
    height, width = values.shape[-2:]
    side = min(max_tile_side, max(1, (max_grid_side - padding) // nrow - padding))
    factor = max(1, math.ceil(max(height, width) / side))
    if factor > 1:  # area: each tile pixel is the mean of a factor x factor block (ragged at the edge)
        values = F.avg_pool2d(values, factor, ceil_mode=True)
    peak = values.amax(dim=(0, 2, 3), keepdim=True)
    values = torch.where(peak > 0, values / peak.clamp_min(1e-30), torch.zeros_like(values))
    return TileGrids(
        grids=tile_grid(values, nrow, padding),
        nrow=nrow,
        channels_shown=shown,
        tile=[int(values.shape[2]), int(values.shape[3])],
        factor=factor,
    )


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
