"""DeepDream: output geometry, how much it amplifies the chosen layer, determinism, safety, errors.

Thresholds on the trained net carry the range measured over training seeds 0-4 x {1, 2} threads.
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from torch import nn

from tb_cnnviz.analysis.dream import deep_dream, octave_sizes
from tb_cnnviz.analysis.truncation import truncated_forward
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    images, _ = ShapesDataset(4, seed=3).tensors()
    return images


def _norms(model: nn.Module, images: torch.Tensor, layer: str) -> torch.Tensor:
    with torch.no_grad(), truncated_forward(model, [dict(model.named_modules())[layer]]) as run:
        return run(images)[0].flatten(1).norm(dim=1)


def test_dream_keeps_the_size_and_amplifies_the_layer(trained_small_vgg, photos):
    model = trained_small_vgg
    dreamed = deep_dream(model, photos, "features.relu3", octaves=4, octave_scale=1.4, steps=10, lr=0.01)
    assert dreamed.shape == photos.shape
    assert 0 <= dreamed.min() and dreamed.max() <= 1
    gain = _norms(model, dreamed, "features.relu3") / _norms(model, photos, "features.relu3")
    assert bool((gain > 1.5).all()), gain  # smallest gain measured 2.3-10; none would be 1
    # it is a dream of *this* image: the picture is changed, but not replaced (measured 0.10-0.13)
    change = (dreamed - photos).abs().mean()
    assert 0.03 < change < 0.3


def test_single_image_and_non_square_size(trained_small_vgg, photos):
    image = torch.nn.functional.interpolate(photos[:1], size=(28, 40), mode="bilinear", align_corners=False)[
        0
    ].clamp(0, 1)
    dreamed = deep_dream(trained_small_vgg, image, ["features.conv2"], octaves=3, steps=4)
    assert dreamed.shape == (3, 28, 40)
    # measured gain 1.7-3.6
    assert _norms(trained_small_vgg, dreamed[None], "features.conv2") > 1.25 * _norms(
        trained_small_vgg, image[None], "features.conv2"
    )


def test_several_layers_are_amplified_together(trained_small_vgg, photos):
    layers = ["features.relu2", "features.relu4"]
    dreamed = deep_dream(trained_small_vgg, photos[:2], layers, octaves=2, steps=6)
    for layer in layers:  # smallest gain measured 2.2-6.1
        assert bool(
            (
                _norms(trained_small_vgg, dreamed, layer) > 1.5 * _norms(trained_small_vgg, photos[:2], layer)
            ).all()
        )


def test_octaves_add_coarse_structure(trained_small_vgg, photos):
    one = deep_dream(trained_small_vgg, photos[:2], "features.relu3", octaves=1, steps=6)
    three = deep_dream(trained_small_vgg, photos[:2], "features.relu3", octaves=3, steps=6)
    assert (one - three).abs().mean() > 0.01  # measured 0.06-0.09


def test_octave_sizes():
    assert octave_sizes(32, 32, 4, 1.4) == [(32, 32), (23, 23), (16, 16), (12, 12)]
    assert octave_sizes(224, 300, 3, 2.0) == [(224, 300), (112, 150), (56, 75)]
    assert octave_sizes(16, 16, 5, 2.0) == [(16, 16), (8, 8)]  # stops before a side < 8 px


def test_deterministic_for_a_seed(photos):
    torch.manual_seed(0)
    model = small_vgg(width=8).eval()
    a = deep_dream(model, photos[:2], "features.conv2", octaves=2, steps=3, seed=5)
    b = deep_dream(model, photos[:2], "features.conv2", octaves=2, steps=3, seed=5)
    c = deep_dream(model, photos[:2], "features.conv2", octaves=2, steps=3, seed=6)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_normalisation_and_inference_mode(photos):
    torch.manual_seed(0)
    model = small_vgg(width=8).eval()
    with torch.inference_mode():
        dreamed = deep_dream(
            model, photos[:1], "features.conv2", octaves=2, steps=3, mean=[0.5, 0.5, 0.5], std=0.25
        )
    plain = deep_dream(model, photos[:1], "features.conv2", octaves=2, steps=3)
    assert dreamed.shape == photos[:1].shape and (dreamed - plain).abs().max() > 1e-3


def _state(model: nn.Module):
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
    )


def _same(before, after):
    assert before[0] == after[0] and before[1] == after[1] and before[3] == after[3]
    for a, b in zip(before[2], after[2]):
        assert (a is None and b is None) or torch.equal(a, b)


def test_training_safety(photos):
    torch.manual_seed(0)
    model = small_vgg(width=8).train()
    model.features.bn1.eval()
    model.features.conv2.weight.grad = torch.ones_like(model.features.conv2.weight)
    before = _state(model)
    rng = torch.get_rng_state()
    deep_dream(model, photos[:1], "features.relu3", octaves=2, steps=2)
    _same(before, _state(model))
    assert torch.equal(torch.get_rng_state(), rng)
    # in a worker thread (no RNG guard there) on a copy: still no global randomness consumed
    worker_copy = copy.deepcopy(model)
    thread = threading.Thread(
        target=lambda: deep_dream(worker_copy, photos[:1], "features.relu3", octaves=2, steps=2)
    )
    thread.start()
    thread.join()
    assert torch.equal(torch.get_rng_state(), rng)
    # and cleanup when the model raises
    model.features.pool2 = _Boom()
    with pytest.raises(RuntimeError, match="boom"):
        deep_dream(model, photos[:1], "features.relu3", octaves=2, steps=2)
    _same(before, _state(model))


class _Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(image=torch.full((3, 16, 16), 2.0)), ValueError, r"image: expected values in \[0, 1\]"),
        (dict(image=torch.zeros(16, 16)), ValueError, "image: expected a float tensor"),
        (dict(image=[[0.0]]), TypeError, "image: expected a float tensor"),
        (dict(octaves=0), ValueError, "octaves: expected an int >= 1"),
        (dict(octave_scale=1.0), ValueError, "octave_scale: expected a number > 1"),
        (dict(steps=0), ValueError, "steps: expected an int >= 1"),
        (dict(lr=0), ValueError, "lr: expected a positive number"),
        (dict(jitter=-1), ValueError, "jitter: expected an int >= 0"),
        (dict(layers="features.conv9"), ValueError, "layers: no layer named 'features.conv9'"),
        (
            dict(layers=["features.conv1", "features.conv1"]),
            ValueError,
            "layers: layers listed more than once",
        ),
        (dict(mean=[0.1, 0.2]), ValueError, "mean: expected a number or 3 values"),
        (dict(device="cuda"), ValueError, "device: the model's parameters are on cpu"),
    ],
)
def test_clear_errors(kwargs, error, match):
    model = small_vgg(width=8)
    arguments = dict(
        image=torch.rand((3, 16, 16), generator=torch.Generator().manual_seed(0)),
        layers="features.conv1",
        steps=1,
        octaves=1,
    )
    arguments.update(kwargs)
    image = arguments.pop("image")
    layers = arguments.pop("layers")
    with pytest.raises(error, match=match):
        deep_dream(model, image, layers, **arguments)
