"""``tb_cnnviz.snapshots`` of the probe images: what probe, Grad-CAM, attributions, embedding and sprites
return on tiny hand-built models with known answers (read back as in tests/format/test_format_snapshots.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from snapshot_protos import fixed_conv, read_summaries
from torch import nn

from tb_cnnviz import snapshots, summary
from tb_cnnviz.snapshots import EmbeddingState, Inputs
from tb_cnnviz.snapshots.embedding import ATLAS_THUMBS


class SignedNet(nn.Module):
    """A 1x1 conv giving (x, -x) on one channel, then a bias-free linear head of weights ``head``."""

    def __init__(self, head: list[list[float]]):
        super().__init__()
        self.conv = fixed_conv([[[[1.0]]], [[[-1.0]]]])
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor(head))


class CamNet(SignedNet):
    """A = conv(x) with A0 = x, A1 = -x; scores y = W mean(A) with W = [[1, 0], [0, 2]].

    Grad-CAM for class c is ReLU(sum_k W[c, k] / (h w) A_k): for class 0 ReLU(x) / (h w),
    for class 1 ReLU(-2 x) / (h w).
    """

    def __init__(self):
        super().__init__([[1.0, 0.0], [0.0, 2.0]])

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


IMAGE = torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])  # [1, 1, 2, 2]


# ----------------------------------------------------------------------------- probe
def test_probe_images_labels_and_class_names():
    images = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.25]]]]).expand(2, 3, 1, 2)
    result = read_summaries(
        snapshots.probe(Inputs(images=images, labels=torch.tensor([1, 0]), class_names=["cat", "dog"]))
    )
    content, pngs = result["cnnviz/probe"]
    assert (content["labels"], content["class_names"], content["layer"]) == ([1, 0], ["cat", "dog"], None)
    np.testing.assert_array_equal(pngs[0][0, :, 0], [0, 255])
    np.testing.assert_array_equal(pngs[1][0, :, 0], [128, 64])
    assert pngs[0].shape == (1, 2, 3)


def test_probe_of_normalised_inputs_is_stretched_and_unlabelled():
    result = read_summaries(snapshots.probe(Inputs(images=torch.tensor([[[[-1.0, 0.0, 3.0]]]]))))
    content, (png,) = result["cnnviz/probe"]
    assert content["labels"] is None and content["class_names"] is None
    np.testing.assert_array_equal(png, [[0, 64, 255]])  # (x + 1) / 4


# ----------------------------------------------------------------------------- Grad-CAM
def test_gradcam_raw_maps_and_classes_for_the_labels():
    model = CamNet()
    images = IMAGE.expand(2, 1, 2, 2)
    inputs = Inputs(model=model, layers=[("conv", model.conv)], images=images, labels=torch.tensor([0, 1]))
    result = read_summaries(snapshots.gradcam(inputs))
    # no overlay PNGs (#18): the view draws them from the raw maps
    assert list(result) == [
        "cnnviz/gradcam_maps/conv",
        "cnnviz/gradcam_info/conv",
        "cnnviz/gradcam_predicted_maps/conv",
    ]
    maps = result["cnnviz/gradcam_maps/conv"][1]
    np.testing.assert_allclose(maps[0], [[0.25, 0.0], [0.5, 0.0]], atol=1e-6)  # ReLU(x) / 4
    np.testing.assert_allclose(maps[1], [[0.0, 0.5], [0.0, 0.0]], atol=1e-6)  # ReLU(-2 x) / 4
    content, info = result["cnnviz/gradcam_info/conv"]
    assert content["columns"] == ["target", "predicted", "probability", "target_probability"]
    p = 1 / (1 + math.exp(-1.5))  # scores (0.5, -1): class 0 wins
    np.testing.assert_allclose(info, [[0, 0, p, p], [1, 0, p, 1 - p]], atol=1e-6)
    # the predicted class (0 for both) explained too: image 0's label map, and for image 1 the class-0 map
    predicted = result["cnnviz/gradcam_predicted_maps/conv"][1]
    np.testing.assert_allclose(predicted, [[[0.25, 0.0], [0.5, 0.0]]] * 2, atol=1e-6)


def test_gradcam_overlays_when_asked_are_the_image_under_its_stretched_map():
    model = CamNet()
    images = IMAGE.expand(2, 1, 2, 2)
    inputs = Inputs(
        model=model,
        layers=[("conv", model.conv)],
        images=images,
        labels=torch.tensor([0, 1]),
        settings={"overlays": True},  # the command line's --out files
    )
    result = read_summaries(snapshots.gradcam(inputs))
    assert list(result)[:3] == ["cnnviz/gradcam/conv", "cnnviz/gradcam_maps/conv", "cnnviz/gradcam_info/conv"]
    content, overlays = result["cnnviz/gradcam/conv"]
    assert content["colormap"] == "jet" and len(overlays) == 2 and overlays[0].shape == (2, 2, 3)
    # each overlay is the display image (min-max stretched) under its map scaled to [0, 1]
    grey = np.round((IMAGE[0, 0].numpy() + 1) / 3 * 255).astype(np.uint8)
    np.testing.assert_array_equal(overlays[0], summary.heatmap_overlay(grey, np.array([[0.5, 0], [1, 0]])))
    np.testing.assert_array_equal(overlays[1], summary.heatmap_overlay(grey, np.array([[0, 1.0], [0, 0]])))


def test_gradcam_without_labels_explains_the_predicted_class():
    model = CamNet()
    inputs = Inputs(model=model, layers=[("conv", model.conv)], images=IMAGE)
    result = read_summaries(snapshots.gradcam(inputs))
    np.testing.assert_allclose(result["cnnviz/gradcam_maps/conv"][1][0], [[0.25, 0.0], [0.5, 0.0]], atol=1e-6)
    assert result["cnnviz/gradcam_info/conv"][1][0, :2].tolist() == [0.0, 0.0]


def test_gradcam_follows_logits_for_a_tuple_output():
    class TupleNet(CamNet):
        def forward(self, x):
            return super().forward(x), "extra"

    model = TupleNet()
    inputs = Inputs(
        model=model,
        layers=[("conv", model.conv)],
        images=IMAGE,
        labels=torch.tensor([1]),
        logits=lambda output: output[0],
    )
    maps = read_summaries(snapshots.gradcam(inputs))["cnnviz/gradcam_maps/conv"][1]
    np.testing.assert_allclose(maps[0], [[0.0, 0.5], [0.0, 0.0]], atol=1e-6)


# ----------------------------------------------------------------------------- attributions
def test_saliency_overlay_is_the_absolute_weight_of_the_target():
    """A linear model: the gradient of class 0 at pixel (i, j) is W[0, 2 i + j] = 1, 2, 3, 4."""
    linear = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [-4.0, 0.0, 0.0, 0.0]]))
    model = nn.Sequential(nn.Flatten(), linear)
    images = torch.tensor([[[[0.0, 0.2], [0.4, 1.0]]]])
    inputs = Inputs(model=model, images=images, labels=torch.tensor([0]), settings={"methods": ["saliency"]})
    result = read_summaries(snapshots.attributions(inputs))
    assert list(result) == ["cnnviz/attribution/saliency"]
    content, (overlay,) = result["cnnviz/attribution/saliency"]
    assert content["method"] == "saliency" and content["layer"] == "saliency"
    grey = np.round(images[0, 0].numpy() * 255).astype(np.uint8)
    heat = np.array([[0.0, 1 / 3], [2 / 3, 1.0]])
    np.testing.assert_array_equal(overlay, summary.heatmap_overlay(grey, heat, colormap="inferno"))


def test_every_attribution_method_gives_one_series_per_method():
    model = CamNet()
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    methods = list(snapshots.ATTRIBUTION_METHODS)
    inputs = Inputs(model=model, images=images, labels=torch.tensor([0, 1]), settings={"methods": methods})
    result = read_summaries(snapshots.attributions(inputs))
    assert list(result) == [f"cnnviz/attribution/{method}" for method in methods]
    for method in methods:
        content, pngs = result[f"cnnviz/attribution/{method}"]
        assert content["method"] == method
        assert [png.shape for png in pngs] == [(8, 8, 3), (8, 8, 3)]


# ----------------------------------------------------------------------------- embedding and sprites
class EmbedNet(SignedNet):
    """Codes (the last linear layer's input) are (mean x, mean -x); class 0 for bright images."""

    def __init__(self):
        super().__init__([[1.0, 0.0], [0.0, 1.0]])

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)) - torch.tensor([0.5, -0.5]))


def test_embedding_map_predictions_top_examples_and_state():
    brightness = torch.tensor([0.1, 0.9, 0.3, 0.7, 0.5, 0.2])
    images = brightness.view(-1, 1, 1, 1).expand(-1, 1, 4, 4).clone()
    images[:, :, 0, 0] = 0.0  # one dark pixel: the maximum of filter 1 is there
    model = EmbedNet()
    state = EmbeddingState()
    inputs = Inputs(
        model=model,
        layers=[("conv", model.conv)],
        images=images,
        labels=torch.tensor([1, 0, 1, 0, 0, 1]),
        class_names=["bright", "dark"],
        settings={"layer": None, "method": "pca", "k": 2},
        state=state,
    )
    result = read_summaries(snapshots.embedding(inputs))
    assert list(result) == ["cnnviz/embedding/head", "cnnviz/top_examples/conv"]
    content, points = result["cnnviz/embedding/head"]
    assert (content["method"], content["labels"], content["class_names"]) == (
        "pca",
        [1, 0, 1, 0, 0, 1],
        ["bright", "dark"],
    )
    assert points.shape == (6, 3)
    means = images.mean(dim=(1, 2, 3))
    np.testing.assert_array_equal(points[:, 2], (means < 0.5).numpy().astype(np.float32))  # predicted class
    # the codes lie on a line ordered by brightness: the map's first axis keeps that order
    assert abs(np.corrcoef(points[:, 0], means.numpy())[0, 1]) > 0.999
    np.testing.assert_array_equal(state.layout, points[:, :2])
    codes = torch.stack([means - 0.5, 0.5 - means], dim=1)  # the head's input
    np.testing.assert_allclose(state.codes.numpy(), codes.numpy(), atol=1e-6)
    content, table = result["cnnviz/top_examples/conv"]
    assert (content["k"], content["image_size"]) == (2, [4, 4])
    assert table.shape == (2, 2, 6)
    np.testing.assert_array_equal(table[0, :, 0], [1, 3])  # filter 0 (brightness): images 0.9 and 0.7
    np.testing.assert_allclose(table[0, :, 1], [0.9, 0.7], atol=1e-6)
    np.testing.assert_array_equal(table[1, :, 1], [0.0, 0.0])  # filter 1 peaks at the dark pixel (-0)
    np.testing.assert_array_equal(table[1, 0, 2:], [0, 0, 1, 1])  # a 1x1 receptive field at (0, 0)


def test_embedding_without_top_example_layers_writes_the_map_only():
    model = EmbedNet()
    images = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    inputs = Inputs(
        model=model,
        images=images,
        settings={"layer": "head", "method": "pca", "k": 3},
        state=EmbeddingState(),
    )
    result = read_summaries(snapshots.embedding(inputs))
    assert list(result) == ["cnnviz/embedding/head"]
    content = result["cnnviz/embedding/head"][0]
    assert content["labels"] is None and content["class_names"] is None


def test_sprites_pack_thumbnails_row_major_into_atlases():
    images = (torch.arange(5, dtype=torch.float32) * 40 / 255).view(5, 1, 1, 1).expand(5, 1, 4, 4)
    result = read_summaries(snapshots.sprites(Inputs(images=images), thumb=4, max_side=8))
    content, atlases = result["cnnviz/sprites"]
    assert (content["thumb"], content["columns"], content["counts"], content["image_size"]) == (
        [4, 4],
        2,
        [4, 1],
        [4, 4],
    )
    assert atlases[0].shape == (8, 8) and atlases[1].shape == (4, 4)
    np.testing.assert_array_equal(atlases[0][::4, ::4], [[0, 40], [80, 120]])
    np.testing.assert_array_equal(atlases[1], np.full((4, 4), 160))


def test_sprites_shrink_large_images_to_thumbnails():
    images = torch.zeros(2, 3, 8, 8)
    images[1] = 1.0
    content, (atlas,) = read_summaries(snapshots.sprites(Inputs(images=images), thumb=4))["cnnviz/sprites"]
    assert (content["thumb"], content["image_size"], content["counts"]) == ([4, 4], [8, 8], [2])
    assert atlas.shape == (4, 8, 3)
    assert atlas[:, :4].max() == 0 and atlas[:, 4:].min() == 255


def test_sprites_split_into_atlases_of_at_most_per_atlas_thumbnails():
    """The Embedding view loads an atlas when one of its thumbnails is shown: 1,024 a side by default."""
    images = (torch.arange(7, dtype=torch.float32) * 30 / 255).view(7, 1, 1, 1).expand(7, 1, 4, 4)
    content, atlases = read_summaries(snapshots.sprites(Inputs(images=images), thumb=4, per_atlas=3))[
        "cnnviz/sprites"
    ]
    assert (content["columns"], content["counts"]) == (2048, [3, 3, 1])
    assert [a.shape for a in atlases] == [(4, 12), (4, 12), (4, 4)]
    np.testing.assert_array_equal(atlases[1][0, ::4], [90, 120, 150])  # images 3, 4 and 5
    tiny = torch.rand(2500, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    content, atlases = read_summaries(snapshots.sprites(Inputs(images=tiny)))["cnnviz/sprites"]
    assert content["counts"] == [1024, 1024, 452]
    assert ATLAS_THUMBS == 1024 and [a.shape for a in atlases] == [(1, 1024), (1, 1024), (1, 452)]
