"""Every attribution method leaves training untouched, works through wrappers
and rejects bad input clearly."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from attribution_support import ALL_METHODS, all_hooks, leaves_untouched, seeded_images, seeded_small_vgg
from torch import nn

from tb_cnnviz.analysis.attribution import (
    guided_backprop,
    occlusion,
    saliency,
)
from tb_cnnviz.analysis.cam import grad_cam

# ----------------------------------------------------------------------------- training safety


def _mixed_state_model() -> nn.Module:
    """Train mode with one BN deliberately frozen in eval, one conv frozen, grads None on some and set on others."""
    model = seeded_small_vgg()
    model.train()
    model.features.bn1.eval()
    model.features.conv1.weight.requires_grad_(False)
    generator = torch.Generator().manual_seed(3)
    for index, parameter in enumerate(model.parameters()):
        if parameter.requires_grad and index % 2 == 0:
            parameter.grad = torch.randn(parameter.shape, generator=generator)
    return model


@pytest.mark.parametrize("method_name", list(ALL_METHODS))
def test_training_state_is_untouched(method_name):
    model = _mixed_state_model()
    x = seeded_images(2, seed=11)
    x_before = x.clone()
    with leaves_untouched(model) as before:
        assert any(g is None for g in before[2]) and any(g is not None for g in before[2])
        result = ALL_METHODS[method_name](model, "features.conv5", x)
    assert all_hooks(model) == 0
    assert torch.equal(x, x_before) and not x.requires_grad and x.grad is None
    assert result.device == x.device and not result.requires_grad and torch.isfinite(result).all()
    assert model.training and not model.features.bn1.training  # flags of a model in training restored


class Boom(nn.Module):
    """Raises during the forward pass, after the target layer."""

    def forward(self, x):
        raise RuntimeError("boom inside the model")


@pytest.mark.parametrize("method_name", list(ALL_METHODS))
def test_hooks_removed_and_state_restored_when_the_model_raises(method_name):
    model = _mixed_state_model()
    model.features.add_module("boom", Boom())
    with leaves_untouched(model), pytest.raises(RuntimeError, match="boom inside the model"):
        ALL_METHODS[method_name](model, "features.conv5", seeded_images(2))
    assert all_hooks(model) == 0


def test_works_inside_no_grad_and_inference_mode():
    model = seeded_small_vgg()
    x = seeded_images(2)
    expected = grad_cam(model, "features.conv5", x)
    with torch.no_grad():
        torch.testing.assert_close(grad_cam(model, "features.conv5", x), expected, atol=0, rtol=0)
    with torch.inference_mode():
        inference_images = x.clone()
        torch.testing.assert_close(
            grad_cam(model, "features.conv5", inference_images).clone(), expected, atol=0, rtol=0
        )
        saliency(model, inference_images)


# ----------------------------------------------------------------------------- wrappers


class HoldsModule(nn.Module):
    """A DDP-like wrapper that ``layers.unwrap`` does not know: the forward goes through it."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


@pytest.mark.parametrize("wrap", ["data_parallel", "holds_module", "compile_eager"])
def test_wrappers_give_the_unwrapped_results(wrap):
    inner = seeded_small_vgg()
    x = seeded_images(3, seed=12)
    expected = {name: method(inner, "features.conv5", x) for name, method in ALL_METHODS.items()}
    if wrap == "data_parallel":
        model, layer = nn.DataParallel(inner), "features.conv5"
    elif wrap == "holds_module":
        model, layer = HoldsModule(inner), inner.features.conv5  # a module object: found inside the wrapper
    else:
        model, layer = torch.compile(inner, backend="eager"), "features.conv5"
    model.train()
    with leaves_untouched(model, rng=False):
        for name, method in ALL_METHODS.items():
            torch.testing.assert_close(method(model, layer, x), expected[name], atol=1e-6, rtol=1e-5)
    assert all_hooks(model) == 0


def test_real_ddp_training_step_after_snapshots(tmp_path):
    """DistributedDataParallel (gloo, one process): no collective is issued and the next step's gradients are exact.

    After a training step, a forward through the DDP wrapper broadcasts the module
    buffers from rank 0 (a collective): a snapshot taken on rank 0 only would hang the
    job. So the functions run the wrapped ``.module``.
    """
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        inner = seeded_small_vgg()
        plain = copy.deepcopy(inner).train()
        model = nn.parallel.DistributedDataParallel(inner).train()
        x, labels = seeded_images(4, seed=14), torch.tensor([0, 1, 2, 3])
        F.cross_entropy(model(x), labels).backward()  # a training step's backward: grads now set
        collectives = []
        sync_buffers = model._sync_buffers
        model._sync_buffers = lambda: (collectives.append("broadcast buffers"), sync_buffers())[1]
        with leaves_untouched(model, rng=False):
            for method in ALL_METHODS.values():
                method(model, "features.conv5", x)
        assert collectives == [] and model.require_forward_param_sync
        with torch.no_grad():
            model(x)  # the counter works: a forward through the wrapper does broadcast
        assert collectives == ["broadcast buffers"]
        for parameter in model.parameters():
            parameter.grad = None
        F.cross_entropy(model(x), labels).backward()  # the next step still synchronises and reduces
        F.cross_entropy(plain(x), labels).backward()
        for ours, reference in zip(inner.parameters(), plain.parameters()):
            torch.testing.assert_close(ours.grad, reference.grad, atol=1e-6, rtol=1e-5)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_compiled_model_is_not_recompiled():
    """A default (inductor) compiled model: we run its original module, so no new graph is compiled for eval/frozen params."""
    from torch._dynamo.utils import counters

    inner = seeded_small_vgg()
    model = torch.compile(inner)
    x = seeded_images(2, seed=13)
    model.train()
    model(x)  # compiled for training
    graphs = counters["stats"]["unique_graphs"]
    cam = grad_cam(model, "features.conv5", x)
    torch.testing.assert_close(cam, grad_cam(inner, "features.conv5", x), atol=1e-6, rtol=1e-5)
    assert counters["stats"]["unique_graphs"] == graphs
    assert model.training and all_hooks(model) == 0


# ----------------------------------------------------------------------------- bad input


def test_bad_input_errors():
    model = seeded_small_vgg()
    x = seeded_images(2)
    with pytest.raises(ValueError, match=r"images: expected a 4-D tensor.*\(3, 32, 32\)"):
        grad_cam(model, "features.conv5", x[0])
    with pytest.raises(TypeError, match="images: expected a floating-point"):
        saliency(model, (x * 255).to(torch.uint8))
    with pytest.raises(TypeError, match="images: expected a torch.Tensor"):
        occlusion(model, x.numpy())
    with pytest.raises(ValueError, match=r"layer: no layer named 'features.conv9'.*features.conv5"):
        grad_cam(model, "features.conv9", x)
    with pytest.raises(ValueError, match="layer: 'classifier' outputs"):
        grad_cam(model, "classifier", x)
    with pytest.raises(TypeError, match="layer: expected a layer name"):
        grad_cam(model, 3, x)
    with pytest.raises(
        ValueError, match=r"target: class index 10 is out of range for a model with 10 classes"
    ):
        grad_cam(model, "features.conv5", x, 10)
    with pytest.raises(ValueError, match=r"target: class index -1 is out of range"):
        saliency(model, x, [0, -1])
    with pytest.raises(ValueError, match=r"target: class index 12 is out of range"):
        occlusion(model, x, 12)
    with pytest.raises(TypeError, match="target: expected None, an int"):
        grad_cam(model, "features.conv5", x, "cat")
    with pytest.raises(TypeError, match="target: expected None, an int.*bool"):
        grad_cam(model, "features.conv5", x, True)
    with pytest.raises(TypeError, match="target: expected an integer tensor"):
        grad_cam(model, "features.conv5", x, torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="target: expected a list of int"):
        guided_backprop(model, x, [1, 2.5])
    with pytest.raises(ValueError, match=r"target: expected one class index per image \(2\), got 3"):
        grad_cam(model, "features.conv5", x, [1, 2, 3])
    with pytest.raises(ValueError, match=r"target: the callable must return one score per image"):
        grad_cam(model, "features.conv5", x, lambda out: out.sum())
    with pytest.raises(ValueError, match="normalize: expected one of"):
        grad_cam(model, "features.conv5", x, normalize="minmax")
    with pytest.raises(ValueError, match="method: expected one of"):
        grad_cam(model, "features.conv5", x, method="scorecam")
    with pytest.raises(ValueError, match=r"window: \(40, 8\) is larger than the images \(32x32\)"):
        occlusion(model, x, window=(40, 8))
    with pytest.raises(ValueError, match="window: expected positive sizes, got 0"):
        occlusion(model, x, window=0)
    with pytest.raises(TypeError, match="window: expected a positive int or a pair"):
        occlusion(model, x, window=4.5)
    with pytest.raises(ValueError, match=r"stride: expected positive sizes, got \(2, -1\)"):
        occlusion(model, x, stride=(2, -1))
    with pytest.raises(TypeError, match="stride: expected a positive int or a pair"):
        occlusion(model, x, stride=(1, 2, 3))
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got 0"):
        occlusion(model, x, batch_size=0)
    with pytest.raises(ValueError, match="fill: expected 'mean' or a number"):
        occlusion(model, x, fill="zeros")
    assert all_hooks(model) == 0 and not model.training


class SharedConv(nn.Module):
    """One conv module applied twice: its output is ambiguous as a Grad-CAM layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.conv(self.conv(x)).mean(dim=(2, 3)))


def test_layer_used_twice_is_an_error_and_leaves_no_hook():
    model = SharedConv()
    with pytest.raises(ValueError, match="layer: 'conv' runs more than once in one forward pass"):
        grad_cam(model, "conv", seeded_images(1, size=8))
    assert all_hooks(model) == 0 and all(p.requires_grad for p in model.parameters())
