"""Grad-CAM and Grad-CAM++: closed forms, target forms, and captum as the reference on real architectures."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from attribution_support import (
    ALL_METHODS,
    all_hooks,
    assert_state_equal,
    linear_cam_net,
    model_state,
    seeded_images,
    seeded_small_vgg,
    torchvision_model,
)

from tb_cnnviz.analysis.attribution import (
    guided_backprop,
    occlusion,
    saliency,
)
from tb_cnnviz.analysis.cam import GradCAMResult, grad_cam

# ----------------------------------------------------------------------------- closed-form Grad-CAM


@pytest.mark.parametrize("pool", [False, True])
@pytest.mark.parametrize("target", [0, 1, 3])
def test_grad_cam_closed_form(pool, target):
    model, weights, classifier = linear_cam_net(pool)
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    p = F.avg_pool2d(x, 2) if pool else x
    h, w = p.shape[-2:]
    expected = F.relu(p[:, 0] * (classifier[target] @ weights) / (h * w))
    if pool:
        expected = F.interpolate(expected[:, None], size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    cam = grad_cam(model, "conv", x, target)
    assert cam.shape == (3, 8, 8)
    torch.testing.assert_close(cam, expected, atol=1e-6, rtol=1e-5)
    assert cam.max() > 0 and (cam == 0).any()  # the ReLU cut something and kept something


def test_grad_cam_plus_plus_closed_form():
    """Grad-CAM++ with constant gradients g_k = V[c, k] / (h w): a_k = g^2 / (2 g^2 + S_k g^3), w_k = h w a_k ReLU(g_k)."""
    model, weights, classifier = linear_cam_net()
    x = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    target, hw = 1, 36
    gradient = classifier[target] / hw  # [K]
    activation_sum = weights[None, :] * x.sum(dim=(1, 2, 3))[:, None]  # S_k per image, [N, K]
    alpha = gradient**2 / (2 * gradient**2 + activation_sum * gradient**3)
    channel_weights = hw * alpha * F.relu(gradient)  # [N, K]
    expected = F.relu(torch.einsum("nk,k,nhw->nhw", channel_weights, weights, x[:, 0]))
    cam = grad_cam(model, model.conv, x, target, method="gradcam++")
    torch.testing.assert_close(cam, expected, atol=1e-6, rtol=1e-5)
    assert cam.max() > 0


def test_targets_all_forms_agree_and_callable_is_any_score():
    model, weights, classifier = linear_cam_net()
    x = torch.randn(4, 1, 5, 5, generator=torch.Generator().manual_seed(1))
    as_int = grad_cam(model, "conv", x, 2)
    for form in (
        [2, 2, 2, 2],
        (2, 2, 2, 2),
        torch.tensor([2, 2, 2, 2]),
        torch.tensor(2),
        lambda out: out[:, 2],
    ):
        torch.testing.assert_close(grad_cam(model, "conv", x, form), as_int, atol=0, rtol=0)
    # A callable may explain any scalar: a logit difference has V[1] - V[0] as classifier row.
    difference = grad_cam(model, "conv", x, lambda out: out[:, 1] - out[:, 0])
    expected = F.relu(x[:, 0] * ((classifier[1] - classifier[0]) @ weights) / 25)
    torch.testing.assert_close(difference, expected, atol=1e-6, rtol=1e-5)
    # Per-image classes pick per-image rows.
    mixed = grad_cam(model, "conv", x, [0, 1, 2, 3])
    for index in range(4):
        torch.testing.assert_close(
            mixed[index], F.relu(x[index, 0] * (classifier[index] @ weights) / 25), atol=1e-6, rtol=1e-5
        )


def test_predicted_target_details_and_normalisation():
    model = seeded_small_vgg()
    x = seeded_images(6)
    with torch.no_grad():
        logits = model(x)
    result = grad_cam(model, "features.conv5", x, return_details=True)
    assert (
        isinstance(result, GradCAMResult) and result.layer == "features.conv5" and result.method == "gradcam"
    )
    probs = logits.softmax(1)
    assert torch.equal(result.target, logits.argmax(1)) and torch.equal(result.predicted, logits.argmax(1))
    torch.testing.assert_close(result.probability, probs.max(1).values, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        result.score, logits.gather(1, result.target[:, None])[:, 0], atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(
        grad_cam(model, "features.conv5", x, logits.argmax(1)), result.cam, atol=0, rtol=0
    )

    other = grad_cam(model, "features.conv5", x, 3, return_details=True)
    torch.testing.assert_close(other.target_probability, probs[:, 3], atol=1e-6, rtol=1e-5)
    assert torch.equal(other.predicted, logits.argmax(1))

    normalised = grad_cam(model, "features.conv5", x, normalize="per_image")
    raw = result.cam
    flat = normalised.flatten(1)
    for index in range(6):
        if raw[index].max() > raw[index].min():
            assert flat[index].max().item() == pytest.approx(1.0) and flat[
                index
            ].min().item() == pytest.approx(0.0)
            span = raw[index].max() - raw[index].min()
            torch.testing.assert_close(
                normalised[index], (raw[index] - raw[index].min()) / span, atol=1e-6, rtol=1e-5
            )
    assert (raw >= 0).all() and raw.max() > 0


# ----------------------------------------------------------------------------- captum as reference, architectures


def captum_grad_cam(model, layer_module, x, target):
    from captum.attr import LayerAttribution, LayerGradCam

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cam = LayerGradCam(model, layer_module).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, x.shape[-2:], "bilinear")[:, 0].detach()


ARCHITECTURES = [
    # name, builder, layer, input channels, input size. (Random-init mobilenet_v3_small at 64 px has input gradients
    # of ~1e-11 whose float32 round-off makes batched and single differ by 0.3% of the max; at 32 px it is 1e-6.)
    ("small_vgg", lambda: seeded_small_vgg(), "features.conv5", 3, 32),
    ("small_vgg_gray", lambda: seeded_small_vgg(in_channels=1), "features.relu4", 1, 32),
    ("resnet18", lambda: torchvision_model("resnet18"), "layer4", 3, 64),
    ("vgg11", lambda: torchvision_model("vgg11"), "features.18", 3, 32),
    ("mobilenet_v3_small", lambda: torchvision_model("mobilenet_v3_small"), "features.8", 3, 32),
]


@pytest.mark.parametrize(
    "name, build, layer, channels, size", ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES]
)
def test_architectures_match_captum_and_per_image(name, build, layer, channels, size):
    model = build()
    x = seeded_images(2, channels, size, seed=5)
    target = torch.tensor([0, 7])
    before = model_state(model)
    cam = grad_cam(model, layer, x, target)
    assert_state_equal(before, model_state(model))
    reference = captum_grad_cam(model, dict(model.named_modules())[layer], x, target)
    scale = reference.abs().max()
    assert scale > 0
    torch.testing.assert_close(cam, reference, atol=1e-5 * float(scale), rtol=1e-4)
    # Batched equals one image at a time, for every gradient method on this architecture.
    methods = ("grad_cam", "saliency", "guided_backprop")
    for method_name in methods:
        method = ALL_METHODS[method_name]
        batched = method(model, layer, x, target)
        single = torch.cat([method(model, layer, x[i : i + 1], target[i : i + 1]) for i in range(2)])
        assert batched.abs().max() > 0 and torch.isfinite(batched).all()
        torch.testing.assert_close(batched, single, atol=1e-5 * float(batched.abs().max()), rtol=1e-4)
    assert all_hooks(model) == 0


def test_grayscale_occlusion_and_saliency_shapes_and_values():
    model = seeded_small_vgg(in_channels=1)
    x = seeded_images(2, channels=1, seed=7)
    probs = occlusion(model, x, None, window=8, stride=8)
    assert probs.shape == (2, 4, 4) and ((probs >= 0) & (probs <= 1)).all()
    assert saliency(model, x).shape == (2, 32, 32)
    assert guided_backprop(model, x).shape == (2, 1, 32, 32)
