"""``tb_cnnviz.snapshots`` of the model's weights and layers: what kernels, activations, dead filters,
patterns and dream return on tiny hand-built models with known answers.

Every function takes one ``Inputs`` and returns a list of ``Summary`` protos; these tests read
the protos back (tag, kind, content, values) without TensorBoard's reader, which
tests/format/test_format_summary.py covers. The snapshots of the probe images (probe, Grad-CAM,
attributions, embedding, sprites) are in tests/format/test_format_probe_snapshots.py.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from snapshot_protos import fixed_conv, read_summaries
from torch import nn

from tb_cnnviz import kinds, snapshots
from tb_cnnviz.snapshots import FilterRates, Inputs


# ----------------------------------------------------------------------------- kernels
def test_kernels_raw_weights_grid_smoothness_and_scalars():
    constant = [[[1.0] * 3] * 3]
    checkerboard = [[[(-1.0) ** (i + j) for j in range(3)] for i in range(3)]]
    conv = fixed_conv([constant, checkerboard])
    result = read_summaries(
        snapshots.kernels(Inputs(layers=[("c1", conv)], settings={"normalization": "global"}))
    )
    assert list(result) == [
        "cnnviz/kernels/c1",
        "cnnviz/kernel_grid/c1",
        "cnnviz/smoothness/c1",
        "cnnviz_scalars/smoothness/c1",
        "cnnviz_scalars/nonfinite_weights/c1",
    ]
    np.testing.assert_array_equal(result["cnnviz/kernels/c1"][1], conv.weight.detach().numpy())
    content, (grid,) = result["cnnviz/kernel_grid/c1"]
    assert (content["normalization"], content["padding"], content["nrow"]) == ("global", 1, 2)
    grey = grid if grid.ndim == 2 else grid[..., 0]
    assert grey.shape == (5, 9)  # two 3x3 tiles in a row, 1 px of padding around each
    np.testing.assert_array_equal(grey[1:4, 1:4], np.full((3, 3), 255))  # +1 is white
    np.testing.assert_array_equal(grey[1:4, 5:8], np.array(checkerboard[0]) * 127.5 + 127.5)  # -1 black
    # smoothness: 1 for a constant filter, -1 for a checkerboard; the layer mean is 0
    np.testing.assert_allclose(result["cnnviz/smoothness/c1"][1], [1.0, -1.0], atol=1e-6)
    assert result["cnnviz_scalars/smoothness/c1"][1] == pytest.approx(0.0, abs=1e-6)
    assert result["cnnviz_scalars/nonfinite_weights/c1"][1] == 0.0


def test_kernels_count_non_finite_weights_and_cover_every_layer():
    first, second = fixed_conv([[[[1.0, 2.0]]]]), fixed_conv([[[[0.5]]], [[[0.25]]]])
    with torch.no_grad():
        first.weight[0, 0, 0, 1] = math.nan
    summaries = snapshots.kernels(
        Inputs(layers=[("a", first), ("b", second)], settings={"normalization": "per_filter"})
    )
    result = read_summaries(summaries)
    assert result["cnnviz_scalars/nonfinite_weights/a"][1] == 1.0
    assert result["cnnviz_scalars/nonfinite_weights/b"][1] == 0.0
    assert result["cnnviz/kernel_grid/b"][0]["normalization"] == "per_filter"
    assert len(summaries) == 10


# ----------------------------------------------------------------------------- activations
def test_activations_tiles_are_each_channel_over_its_probe_maximum():
    conv = fixed_conv([[[[1.0]]], [[[2.0]]]])
    model = nn.Sequential(conv, nn.ReLU())
    images = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    result = read_summaries(snapshots.activations(Inputs(model=model, layers=[("0", conv)], images=images)))
    assert list(result) == ["cnnviz/activations/0"]
    content, grids = result["cnnviz/activations/0"]
    assert (content["channels"], content["nrow"], content["padding"], content["tile"]) == (2, 2, 1, [2, 2])
    assert len(grids) == 2
    # both channels are the image times a positive factor, each divided by its maximum over the batch (1.0),
    # at 128 grey levels: round(round(v * 127) * 255 / 127)
    assert content["levels"] == 128
    for image, grid in zip(images, grids):
        expected = np.round(np.round(image[0].numpy().astype(np.float64) * 127) * 255 / 127).astype(np.uint8)
        np.testing.assert_array_equal(grid[1:3, 1:3], expected)  # first tile, after one padding pixel
        np.testing.assert_array_equal(grid[1:3, 4:6], expected)  # second tile


# ----------------------------------------------------------------------------- dead filters
def test_dead_filters_rates_content_and_scalars_skip_unreached_layers():
    rates = FilterRates(
        rates=[torch.tensor([0.0, 0.5, math.nan, 0.0]), None],
        measured_at=["a.bn", "b"],
        window=7,
        batches=3,
        forwards=7,
        count_every=3,
    )
    layers = [("a", nn.Identity()), ("b", nn.Identity())]
    result = read_summaries(snapshots.dead_filters(Inputs(layers=layers, state=rates)))
    assert list(result) == [
        "cnnviz/dead_filters/a",
        "cnnviz/dead_filter_sample/a",
        "cnnviz_scalars/dead_fraction/a",
        "cnnviz_scalars/nonfinite_filters/a",
    ]
    np.testing.assert_array_equal(result["cnnviz/dead_filter_sample/a"][1], [3, 7, 3])  # counted, seen, k
    content, values = result["cnnviz/dead_filters/a"]
    assert (content["window"], content["measured_at"]) == (7, "a.bn")
    np.testing.assert_array_equal(values, np.array([0.0, 0.5, np.nan, 0.0], np.float32))
    assert result["cnnviz_scalars/dead_fraction/a"][1] == 0.5  # NaN is never dead
    assert result["cnnviz_scalars/nonfinite_filters/a"][1] == 1.0


# ----------------------------------------------------------------------------- patterns
def test_patterns_gallery_of_the_first_filters_and_the_activation_reached():
    """Filter 0 of a 1x1 conv is the image's brightness, filter 1 its darkness: the maximising
    images are bright and dark, and each reaches a higher activation than a grey image (0.5, -0.5)."""
    conv = fixed_conv([[[[1.0]]], [[[-1.0]]]], bias=True)
    model = nn.Sequential(conv, nn.ReLU())
    settings = {"channels": 5, "size": 8, "steps": 24, "in_channels": 1, "mean": None, "std": None}
    result = read_summaries(snapshots.patterns(Inputs(model=model, layers=[("0", conv)], settings=settings)))
    assert list(result) == ["cnnviz/patterns/0", "cnnviz/pattern_values/0", "cnnviz/pattern_channels/0"]
    content, (bright, dark) = result["cnnviz/patterns/0"]  # only 2 filters, though 5 were asked for
    assert (content["channels"], content["size"], content["steps"]) == ([0, 1], 8, 24)
    assert content["choice"] == "first"
    # this step's filters, both the ones asked for (the first 5: there are 2)
    np.testing.assert_array_equal(result["cnnviz/pattern_channels/0"][1], [[0, 1], [1, 1]])
    assert bright.shape[:2] == (8, 8) and dark.shape[:2] == (8, 8)
    assert bright.mean() > 160 > 96 > dark.mean()
    values = result["cnnviz/pattern_values/0"][1]
    assert values.shape == (2,) and values[0] > 0.5 and 0 >= values[1] > -0.5
    # the activation reached is the filter's mean response to the returned image
    np.testing.assert_allclose(values, [bright.mean() / 255, -dark.mean() / 255], atol=0.01)


# ----------------------------------------------------------------------------- dream
def test_dream_one_summary_with_both_images_settings_and_gain():
    """A 1x1 conv with weight 2: the objective ||a||_2 / sqrt(numel a) is 2 rms(x)."""
    conv = fixed_conv([[[[2.0]]]])
    model = nn.Sequential(conv)
    image = torch.full((1, 1, 4, 4), 0.25)
    settings = {"octaves": 1, "steps": 3, "lr": 0.05, "seed": 3}
    summaries = snapshots.dream(Inputs(model=model, layers=[("0", conv)], images=image, settings=settings))
    result = read_summaries(summaries)
    assert list(result) == ["cnnviz/dream/0"]
    content, (original, dreamed) = result["cnnviz/dream/0"]
    assert content["layers"] == ["0"] and content["size"] == [4, 4]
    assert (content["octaves"], content["steps"], content["lr"], content["seed"]) == (1, 3, 0.05, 3)
    np.testing.assert_array_equal(original, np.full((4, 4), 64))
    before, after = content["objective"]
    assert before == pytest.approx(0.5, rel=1e-5)
    assert after == pytest.approx(2 * math.sqrt(np.mean((dreamed / 255.0) ** 2)), abs=0.02)
    assert after > before and content["gain"] == pytest.approx(after / before)


def test_dream_of_several_layers_names_them_all():
    first, second = fixed_conv([[[[1.0]]]]), fixed_conv([[[[1.0]]]])
    model = nn.Sequential(first, nn.ReLU(), second)
    image = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    inputs = Inputs(model=model, layers=[("0", first), ("2", second)], images=image, settings={"steps": 1})
    content = read_summaries(snapshots.dream(inputs))["cnnviz/dream/0+2"][0]
    assert content["layers"] == ["0", "2"]
    assert (content["octaves"], content["octave_scale"], content["seed"]) == (4, 1.4, 0)


def test_every_snapshot_of_the_table_is_a_function_of_one_inputs():
    """The callback calls ``getattr(snapshots, name)(inputs)`` for every row of ``kinds.SNAPSHOTS``."""
    for name in kinds.SNAPSHOTS:
        parameters = list(inspect.signature(getattr(snapshots, name)).parameters)
        assert parameters == ["inputs"], (name, parameters)
