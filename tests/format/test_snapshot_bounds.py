"""Bytes per snapshot bounded at real input sizes (issue #14 §4): Grad-CAM maps stored at the layer's
resolution, activation grids capped in tiles and pixels, each tile the area-downsampled map."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.compat.proto import summary_pb2
from torch import nn

from tb_cnnviz import snapshots
from tb_cnnviz.analysis.activations import MAX_CHANNELS, MAX_GRID_SIDE, MAX_TILE_SIDE, activation_tiles
from tb_cnnviz.metadata import parse_plugin_content
from tb_cnnviz.snapshots import Inputs


def _read(summaries: list) -> dict:
    """``{tag: (content, value)}``: decoded PNGs for blob sequences, arrays for tensors."""
    out = {}
    for item in summaries:
        value: summary_pb2.Summary.Value = item.value[0]
        content = parse_plugin_content(value.metadata.plugin_data.content)
        tensor = value.tensor
        if tensor.string_val:
            out[value.tag] = (content, [np.asarray(Image.open(io.BytesIO(b))) for b in tensor.string_val])
        else:
            shape = [d.size for d in tensor.tensor_shape.dim]
            out[value.tag] = (content, np.frombuffer(tensor.tensor_content, np.float32).reshape(shape))
    return out


class Pooled(nn.Module):
    """``features``: 2x2 mean of the 1-channel image (stride 2); one class scoring the mean of the map."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(1, 1, 2, stride=2, bias=False)
        with torch.no_grad():
            self.features.weight.fill_(0.25)

    def forward(self, x):
        return self.features(x).mean(dim=(2, 3))


def test_the_stored_cam_has_the_layer_s_resolution():
    """Score = mean of A (h w = 4 values), so alpha = 1/4 and the CAM is ReLU(A) / 4, A the 2x2 block means."""
    image = torch.tensor(
        [[[[1.0, 3.0, -4.0, 0.0], [1.0, 3.0, 0.0, 0.0], [8.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]]]]
    )
    model = Pooled()
    result = _read(
        snapshots.gradcam(Inputs(model=model, layers=[("features", model.features)], images=image))
    )
    maps = result["cnnviz/gradcam_maps/features"][1]
    assert maps.shape == (1, 2, 2)  # not the input's 4 x 4
    np.testing.assert_allclose(maps[0], [[2.0 / 4, 0.0], [2.0 / 4, 2.0 / 4]], atol=1e-7)
    assert "cnnviz/gradcam/features" not in result  # no overlay PNG: the view draws it from the map (#18)


def test_each_tile_is_the_area_downsampled_map_divided_by_its_peak():
    values = torch.zeros(2, 3, 4, 4)
    values[0, 0] = torch.tensor([[1, 3, 0, 0], [1, 3, 0, 8], [2, 2, 4, 4], [2, 2, 4, 4]], dtype=torch.float32)
    values[1, 0] = 2.0  # image 1: every 2x2 mean is 2
    values[0, 1] = -1.0  # a channel that never fires (clamped at 0): black
    values[:, 2] = torch.tensor([[0, 0, 0, 0], [0, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
    tiles = activation_tiles(values, padding=1, max_tile_side=2)
    assert (tiles.factor, tiles.tile, tiles.nrow, tiles.channels_shown) == (2, [2, 2], 2, [0, 1, 2])
    # channel 0's block means: image 0 [[2, 2], [2, 4]], image 1 all 2; its peak over the batch is 4
    grid = tiles.grids
    assert grid.shape == (2, 1 + 2 * 3, 1 + 2 * 3)
    assert grid[0, 1:3, 1:3].tolist() == [[0.5, 0.5], [0.5, 1.0]]
    assert grid[1, 1:3, 1:3].tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert grid[:, 1:3, 4:6].tolist() == [[[0.0, 0.0], [0.0, 0.0]]] * 2  # channel 1, right of channel 0
    assert grid[0, 4:6, 1:3].tolist() == [[1.0, 0.0], [0.0, 0.0]]  # channel 2: mean 1 in its top-left block


def test_beyond_the_channel_cap_the_channels_with_the_largest_peak_are_shown_in_order():
    values = torch.zeros(1, 5, 1, 1)
    values[0, :, 0, 0] = torch.tensor([1.0, 5.0, 3.0, 3.0, 0.0])  # channels 2 and 3 tie: the lower one
    tiles = activation_tiles(values, padding=0, max_channels=3)
    assert tiles.channels_shown == [1, 2, 3] and tiles.nrow == 2
    assert tiles.grids[0].tolist() == [[1.0, 1.0], [1.0, 0.25]]  # each at its own peak; the empty cell padded


@pytest.mark.parametrize(
    ("channels", "height", "width"),
    [(64, 224, 224), (256, 112, 112), (300, 56, 56), (2048, 7, 7), (1, 500, 300), (3, 2, 2)],
)
def test_a_grid_never_exceeds_the_caps(channels, height, width):
    values = torch.rand(1, channels, height, width, generator=torch.Generator().manual_seed(channels))
    tiles = activation_tiles(values)
    assert len(tiles.channels_shown) == min(channels, MAX_CHANNELS)
    assert max(tiles.grids.shape[1:]) <= MAX_GRID_SIDE and max(tiles.tile) <= MAX_TILE_SIDE
    assert tiles.tile == [-(-height // tiles.factor), -(-width // tiles.factor)]
    if max(height, width) <= MAX_TILE_SIDE and channels <= 64:
        assert tiles.factor == 1  # small maps are shown as they are


def test_the_activations_content_says_which_channels_and_how_much_downsampled():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 300, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(300, 2))
    images = torch.rand(2, 3, 64, 64)
    result = _read(snapshots.activations(Inputs(model=model, layers=[("0", conv)], images=images)))
    content, pngs = result["cnnviz/activations/0"]
    assert (content["channels"], content["map_size"]) == (300, [64, 64])
    tiles = activation_tiles(conv(images).detach().clamp(min=0))
    assert content["channels_shown"] == tiles.channels_shown and len(tiles.channels_shown) == MAX_CHANNELS
    # 16 tiles a row within 384 px: at most 22 px a tile, so 64 px maps are shrunk 3 times (22 px, the last
    # row and column of a tile averaging what is left of the map)
    assert (content["nrow"], content["tile"], content["factor"]) == (16, [22, 22], 3)
    assert pngs[0].shape == tuple(tiles.grids.shape[1:]) == (16 * 23 + 1, 16 * 23 + 1)
