"""Saliency, guided backprop, guided Grad-CAM and occlusion: values against references and explicit loops."""

from __future__ import annotations

import copy

import torch
from attribution_support import (
    guided_reference,
    seeded_images,
    seeded_small_vgg,
    torchvision_model,
)
from torch import nn

from tb_cnnviz.analysis.attribution import (
    guided_backprop,
    guided_grad_cam,
    occlusion,
    occlusion_positions,
    saliency,
)
from tb_cnnviz.analysis.cam import grad_cam

# ----------------------------------------------------------------------------- saliency, guided backprop, guided Grad-CAM


def test_saliency_is_max_abs_input_gradient():
    model = seeded_small_vgg()
    x = seeded_images(4, seed=2)
    target = torch.tensor([1, 2, 3, 4])
    reference_model = copy.deepcopy(model)
    inputs = x.clone().requires_grad_(True)
    gradient = torch.autograd.grad(reference_model(inputs).gather(1, target[:, None]).sum(), inputs)[0]
    torch.testing.assert_close(saliency(model, x, target), gradient.abs().amax(1), atol=1e-7, rtol=1e-5)


def test_guided_backprop_matches_reference_with_inplace_relu():
    model = seeded_small_vgg()  # ReLU(inplace=True) after every BN
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    x = seeded_images(3, seed=4)
    target = torch.tensor([5, 0, 9])
    guided = guided_backprop(model, x, target)
    reference = guided_reference(model, x, target)
    assert reference.abs().max() > 0
    torch.testing.assert_close(guided, reference, atol=1e-6 * float(reference.abs().max()), rtol=1e-4)
    plain = saliency(model, x, target)
    assert not torch.allclose(guided.abs().amax(1), plain)  # the guidance changed something


def test_guided_backprop_resnet_reused_relu_matches_reference():
    model = torchvision_model("resnet18")  # one inplace ReLU module called twice per block
    x = seeded_images(2, size=48, seed=6)
    target = torch.tensor([10, 500])
    reference = guided_reference(model, x, target)
    torch.testing.assert_close(
        guided_backprop(model, x, target), reference, atol=1e-5 * float(reference.abs().max()), rtol=1e-4
    )


def test_guided_grad_cam_is_product_of_its_parts():
    model = seeded_small_vgg()
    x = seeded_images(3, seed=8)
    cam = grad_cam(model, "features.conv4", x)
    guided = guided_backprop(model, x)
    torch.testing.assert_close(
        guided_grad_cam(model, "features.conv4", x), guided * cam[:, None], atol=1e-7, rtol=1e-5
    )


# ----------------------------------------------------------------------------- occlusion


def test_occlusion_matches_explicit_loop_and_mean_fill():
    model = seeded_small_vgg()
    x = seeded_images(2, seed=9)
    target = torch.tensor([3, 6])
    tops, lefts = occlusion_positions(32, (8, 12), (6, 10))
    assert tops == [0, 6, 12, 18, 24] and lefts == [0, 10, 20]
    probs = occlusion(model, x, target, window=(8, 12), stride=(6, 10), batch_size=7)
    assert probs.shape == (2, 5, 3)
    expected = torch.empty(2, 5, 3)
    with torch.no_grad():
        for n in range(2):
            for i, top in enumerate(tops):
                for j, left in enumerate(lefts):
                    copy_ = x[n : n + 1].clone()
                    copy_[:, :, top : top + 8, left : left + 12] = x[n].mean(dim=(1, 2))[None, :, None, None]
                    expected[n, i, j] = model(copy_).softmax(1)[0, target[n]]
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        occlusion(model, x, target, window=(8, 12), stride=(6, 10), batch_size=4096),
        probs,
        atol=1e-6,
        rtol=1e-5,
    )
    constant = occlusion(model, x, target, window=(8, 12), stride=(6, 10), fill=0.0)
    assert not torch.allclose(constant, probs)
    # A callable target gives its own score: here the same probability of class 3 for both images.
    as_callable = occlusion(
        model, x, lambda out: out.softmax(1)[:, 3], window=(8, 12), stride=(6, 10), batch_size=5
    )
    torch.testing.assert_close(as_callable[0], probs[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        as_callable, occlusion(model, x, 3, window=(8, 12), stride=(6, 10)), atol=1e-6, rtol=1e-5
    )
