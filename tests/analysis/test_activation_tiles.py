"""Activation tiles: the vectorised layout equals torchvision's ``make_grid``, tile for tile."""

import pytest
import torch
from torchvision.utils import make_grid

from tb_cnnviz.analysis.activations import activation_grids, tile_grid


@pytest.mark.parametrize(
    ("channels", "height", "width", "nrow", "padding"),
    [(2, 3, 3, 1, 1), (5, 4, 2, 3, 1), (16, 2, 2, 4, 2), (7, 1, 5, 3, 0), (64, 6, 6, 8, 1)],
)
def test_tile_grid_equals_make_grid(channels, height, width, nrow, padding):
    values = torch.rand(3, channels, height, width, generator=torch.Generator().manual_seed(channels))
    grids = tile_grid(values, nrow, padding)
    for image, grid in zip(values, grids):
        expected = make_grid(image.unsqueeze(1), nrow=nrow, padding=padding, pad_value=0.25)[0]
        torch.testing.assert_close(grid, expected, rtol=0, atol=0)


def test_a_single_channel_keeps_its_padding():
    """make_grid returns a lone map unpadded; the tiles keep one geometry for every layer (the view
    locates tile ``c`` from ``nrow`` and the padding alone)."""
    values = torch.rand(2, 1, 3, 4, generator=torch.Generator().manual_seed(0))
    grids = tile_grid(values, nrow=1, padding=1)
    assert grids.shape == (2, 5, 6)
    torch.testing.assert_close(grids[:, 1:-1, 1:-1], values[:, 0], rtol=0, atol=0)
    border = grids.clone()
    border[:, 1:-1, 1:-1] = 0.25
    assert bool((border == 0.25).all())


def test_each_channel_is_scaled_by_its_peak_over_the_probe_batch():
    values = torch.zeros(2, 2, 1, 1)
    values[0, 0], values[1, 0] = 2.0, 4.0  # channel 0 peaks at 4 on the second image
    values[1, 1] = float("nan")  # a non-finite value counts as 0: channel 1 never fires, it is black
    grids, nrow = activation_grids(values, padding=0)
    assert nrow == 2
    assert grids[:, 0, 0].tolist() == [0.5, 1.0]
    assert grids[:, 0, 1].tolist() == [0.0, 0.0]
