"""Models that are not plain CNN classifiers (issue #14 §3): a segmentation model, a detector, a ViT.

Kernels, activations and dead filters need no class scores; Grad-CAM explains a dense output
``[N, classes, H, W]`` by the mean score of the class over the pixels where it is predicted
(checked by hand on a two-layer model), is turned off with one warning for a detector's list of
dicts, and a vision transformer is said once to be a CNN only up to its patch embedding, whose
dead filters are not reported (no nonlinearity follows it). Random init, small inputs (fcn at
64 px, ssdlite at 64 px, resized to 320 px inside the model; the ViT at its own 224 px): about
15 s on one CPU thread.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torchvision
from support import read_logdir
from torch import nn

from tb_cnnviz.analysis.cam import dense_class_scores, grad_cam, target_scores
from tb_cnnviz.callbacks import CNNVizCallback

EVERY = {"kernels": 1, "activations": 1, "gradcam": 1, "dead_filters": 1}


def _callback(model, log_dir, probe, **options):
    """The callback at default layers, every snapshot at every step, the warnings it gave at construction."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viz = CNNVizCallback(model, log_dir, probe=probe, every_n_steps=EVERY, strict=True, **options)
    return viz, [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- the dense target by hand
class DenseNet(nn.Module):
    """``x`` (1 channel) -> ``features`` (identity 1x1 conv) -> ``head``: class 0 scores ``x``, class 1 ``-x``."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(1, 1, 1, bias=False)
        self.head = nn.Conv2d(1, 2, 1, bias=False)
        with torch.no_grad():
            self.features.weight.fill_(1.0)
            self.head.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))

    def forward(self, x):
        return {"out": self.head(self.features(x))}


X = torch.tensor([[[[1.0, -2.0], [3.0, 4.0]]], [[[1.0, 2.0], [0.5, 3.0]]]], dtype=torch.float64)


def test_the_dense_target_is_the_mean_class_score_where_the_class_is_predicted():
    with torch.no_grad():
        output = DenseNet().double()(X)["out"]
    # image 0: class 0 (score x) wins at 1, 3, 4 and class 1 (score -x) at -2; image 1: class 0 everywhere
    scores = dense_class_scores(output, torch.tensor([0, 0]))
    np.testing.assert_allclose(scores.numpy(), [(1 + 3 + 4) / 3, (1 + 2 + 0.5 + 3) / 4])
    scores = dense_class_scores(output, torch.tensor([1, 1]))
    # image 1: class 1 is predicted nowhere: its mean score over every pixel
    np.testing.assert_allclose(scores.numpy(), [2.0, -(1 + 2 + 0.5 + 3) / 4])
    # without a class: the one predicted on most pixels (class 0 in both images)
    scores, classes = target_scores(output, None)
    assert classes.tolist() == [0, 0]
    np.testing.assert_allclose(scores.numpy(), [8 / 3, 6.5 / 4])


def test_grad_cam_of_a_dense_model_by_hand():
    """Score of class 0 = mean of A over the mask M (pixels where x > 0): dS/dA = M / |M|, so
    alpha = mean_ij M / |M| = 1 / (h w) and the CAM is ReLU(A) / (h w) at the layer's resolution."""
    model = DenseNet().double()
    result = grad_cam(_Out(model), "model.features", X, torch.tensor([0, 1]), return_details=True)
    np.testing.assert_allclose(result.native[0].numpy(), np.maximum(X[0, 0].numpy(), 0) / 4)
    # image 1, class 1 (predicted nowhere, so every pixel): alpha = -1 / 4, CAM = ReLU(-x) / 4 = 0
    np.testing.assert_allclose(result.native[1].numpy(), np.zeros((2, 2)))
    np.testing.assert_allclose(result.score.numpy(), [8 / 3, -6.5 / 4])
    # the class predicted on most pixels and its softmax probability averaged over the pixels
    assert result.predicted.tolist() == [0, 0]
    p0 = torch.softmax(torch.stack([X[0, 0], -X[0, 0]]), 0)[0].mean()
    np.testing.assert_allclose(result.probability[0].item(), p0.item(), rtol=1e-6)
    p1 = torch.softmax(torch.stack([X[1, 0], -X[1, 0]]), 0)[1].mean()
    np.testing.assert_allclose(result.target_probability[1].item(), p1.item(), rtol=1e-6)


class _Out(nn.Module):
    """A dict-returning model followed by its ``out`` (what the callback's default ``logits`` picks)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


# ----------------------------------------------------------------------------- real models
def test_fcn_resnet50_logs_every_kind_with_grad_cam_on_the_dense_target(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=3)
    images, labels = torch.rand(2, 3, 64, 64), torch.tensor([1, 2])
    viz, warned = _callback(model, tmp_path, (images, labels))
    assert warned == []
    # Grad-CAM at the head's last map before the class map (the class map itself is never chosen)
    assert [name for name, _ in viz.gradcam_layers] == ["classifier.2"]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    masks = torch.randint(0, 3, (2, 64, 64), generator=torch.Generator().manual_seed(0))
    model.train()
    for step in (1, 2):
        loss = nn.functional.cross_entropy(model(images)["out"], masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        viz.on_step_end(step)
    viz.close()
    run = read_logdir(str(tmp_path))["."]
    kinds = {tag.split("/")[1] for tag in run}
    # no overlay PNGs (#18); with labels the predicted class's maps too (#16: the dominant class of a dense output)
    assert {
        "kernels",
        "activations",
        "dead_filters",
        "gradcam_maps",
        "gradcam_info",
        "gradcam_predicted_maps",
    } <= kinds
    assert all(run[f"cnnviz/activations/{name}"]["steps"] == [1, 2] for name, _ in viz.activation_layers)
    # the stored CAM is the native one (the head runs at 1/8 of the input: 8 x 8) and equals a recomputation
    cam = grad_cam(_Out(model), "model.classifier.2", images, labels, return_details=True)
    logged = run["cnnviz/gradcam_maps/classifier.2"]["values"][-1]
    assert logged.shape == (2, 8, 8) == tuple(cam.native.shape)
    np.testing.assert_allclose(logged, cam.native.numpy(), rtol=1e-4, atol=1e-6)
    info = run["cnnviz/gradcam_info/classifier.2"]["values"][-1]
    assert info[:, 0].tolist() == [1, 2]  # the labels are the explained classes
    assert info[:, 1].tolist() == cam.predicted.tolist()


def test_a_detector_constructs_with_one_warning_and_grad_cam_off(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    images = torch.rand(2, 3, 64, 64)
    viz, warned = _callback(model, tmp_path, images)
    assert len(warned) == 1 and "Grad-CAM is off for SSD" in warned[0] and "logits=" in warned[0]
    assert "list of 2 dict" in warned[0]
    assert not viz.enabled["gradcam"] and not viz.enabled["attributions"]
    assert viz.enabled["kernels"] and viz.enabled["activations"] and viz.enabled["dead_filters"]
    # trained as a user trains it: training mode, with targets; the snapshots (eval mode) do not crash (strict)
    targets = [
        {"boxes": torch.tensor([[4.0, 4.0, 40.0, 40.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[10.0, 20.0, 60.0, 50.0]]), "labels": torch.tensor([2])},
    ]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    losses = model(list(images), targets)
    optimizer.zero_grad()
    sum(losses.values()).backward()
    optimizer.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        viz.on_step_end(1)
        viz.close()
    run = read_logdir(str(tmp_path))["."]
    kinds = {tag.split("/")[1] for tag in run}
    assert {"kernels", "activations", "dead_filters"} <= kinds and not kinds & {"gradcam", "gradcam_maps"}
    # asked for explicitly, Grad-CAM without class scores is an error naming logits
    with pytest.raises(ValueError, match="logits: Grad-CAM needs class scores"):
        CNNVizCallback(model, tmp_path / "asked", probe=images, gradcam_layers=["backbone.features.0"])


def test_a_vision_transformer_is_said_once_to_be_a_cnn_up_to_its_patch_embedding(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=4)
    images, labels = torch.rand(2, 3, 224, 224), torch.tensor([0, 3])
    viz, warned = _callback(model, tmp_path, (images, labels))
    assert len(warned) == 1
    assert "VisionTransformer is not a CNN beyond its 1 conv layer(s): after 'patch_embed.proj'" in warned[0]
    assert "no dead filters are reported" in warned[0]
    model.train()
    loss = nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    viz.on_step_end(1)
    viz.close()
    run = read_logdir(str(tmp_path))["."]
    dead = run["cnnviz/dead_filters/patch_embed.proj"]
    assert dead["content"]["semantics"] == "none"  # nothing nonlinear follows the patch embedding
    scalars = read_logdir(str(tmp_path), plugin="scalars")["."]
    assert not any(tag.startswith("cnnviz_scalars/dead_fraction") for tag in scalars)
    assert run["cnnviz/gradcam_maps/patch_embed.proj"]["values"][-1].shape == (2, 14, 14)


def test_a_dict_without_class_scores_turns_grad_cam_off_once_at_the_defaults(tmp_path):
    class Boxes(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return {"boxes": self.conv(x).mean(dim=(1, 2, 3))}

    viz, warned = _callback(Boxes(), tmp_path, torch.rand(2, 3, 8, 8))
    assert len(warned) == 1 and "its output (dict with keys ['boxes'])" in warned[0]
    assert not viz.enabled["gradcam"] and viz.enabled["activations"]
    viz.close()


def test_saliency_of_a_dense_model_explains_the_same_dense_target():
    """dS/dx for class 0 of image 0 (score x, predicted at 3 of 4 pixels): 1/3 on those pixels, 0 elsewhere."""
    from tb_cnnviz.analysis.attribution import saliency

    maps = saliency(_Out(DenseNet().double()), X[:1], torch.tensor([0]))
    np.testing.assert_allclose(maps[0].numpy(), [[1 / 3, 0.0], [1 / 3, 1 / 3]])
