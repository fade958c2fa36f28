"""Tiny models with closed-form attributions, references and state checks shared by the attribution tests."""

from __future__ import annotations

import contextlib
import copy
import random

import numpy as np
import torch
import torchvision
from torch import nn

from tb_cnnviz.analysis.attribution import (
    guided_backprop,
    guided_grad_cam,
    occlusion,
    saliency,
)
from tb_cnnviz.analysis.cam import grad_cam
from tb_cnnviz.models import small_vgg


class LinearCAMNet(nn.Module):
    """x -> [avgpool 2] -> conv1x1 (1 -> K, weights w) -> global mean -> linear (K -> C, weights V), no biases.

    Grad-CAM at ``conv`` in closed form: dy_c/dA_k = V[c, k] / (h w) everywhere, so
    ``cam = ReLU(p * sum_k V[c, k] w_k / (h w))`` with ``p`` the (pooled) input.
    """

    def __init__(self, weights: torch.Tensor, classifier: torch.Tensor, pool: bool = False):
        super().__init__()
        channels = weights.numel()
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()
        self.conv = nn.Conv2d(1, channels, kernel_size=1, bias=False)
        self.head = nn.Linear(channels, classifier.shape[0], bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(weights.view(channels, 1, 1, 1))
            self.head.weight.copy_(classifier)

    def forward(self, x):
        return self.head(self.conv(self.pool(x)).mean(dim=(2, 3)))


def linear_cam_net(pool: bool = False) -> tuple[LinearCAMNet, torch.Tensor, torch.Tensor]:
    weights = torch.tensor([1.0, -2.0, 0.5])
    classifier = torch.tensor([[1.0, 0.5, -1.0], [-1.0, 1.0, 2.0], [0.3, -0.2, 0.1], [2.0, 0.0, 0.0]])
    return LinearCAMNet(weights, classifier, pool), weights, classifier


def all_hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(m._backward_pre_hooks)
        for m in model.modules()
    )


def model_state(model: nn.Module):
    """Every module's training flag, every parameter's requires_grad and a copy of its .grad."""
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
    )


def assert_state_equal(before, after) -> None:
    assert before[0] == after[0], "a module's training flag changed"
    assert before[1] == after[1], "a parameter's requires_grad changed"
    for old, new in zip(before[2], after[2]):
        assert (old is None) == (new is None), ".grad appeared or vanished"
        if old is not None:
            assert torch.equal(old, new), ".grad values changed"


def rng_states():
    return torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def assert_rng_equal(before, after) -> None:
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]


@contextlib.contextmanager
def leaves_untouched(model: nn.Module | None = None, *, rng: bool = True):
    """Asserts, when the block ends without an error, that it left ``model``'s state (``model_state``: training
    flags, requires_grad, .grad) and, with ``rng``, the global random generators (torch, numpy, random) as they
    were on entry. Yields the model's state on entry (None without a model)."""
    before = None if model is None else model_state(model)
    rng_before = rng_states() if rng else None
    yield before
    if model is not None:
        assert_state_equal(before, model_state(model))
    if rng:
        assert_rng_equal(rng_before, rng_states())


def seeded_images(count: int, channels: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, channels, size, size, generator=torch.Generator().manual_seed(seed))


def seeded_small_vgg(width: int = 8, **kwargs) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = small_vgg(width=width, **kwargs)
    # Non-trivial BN statistics, so eval mode differs from train mode.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.2, 0.2, generator=torch.Generator().manual_seed(1))
                module.running_var.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(2))
    return model.eval()


class GuidedReLU(torch.autograd.Function):
    """Reference for guided backprop: forward ReLU, backward (x > 0) * ReLU(grad)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp_min(0) * (x > 0)


class GuidedReLUModule(nn.Module):
    def forward(self, x):
        return GuidedReLU.apply(x)


def guided_reference(model: nn.Module, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    reference = copy.deepcopy(model).eval()
    for parent in list(reference.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, GuidedReLUModule())
    x = images.clone().requires_grad_(True)
    score = reference(x).gather(1, target[:, None]).sum()
    return torch.autograd.grad(score, x)[0]


def torchvision_model(name: str) -> nn.Module:
    """A torchvision architecture with seeded random weights, in eval mode."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return getattr(torchvision.models, name)(weights=None).eval()


ALL_METHODS = {
    "grad_cam": lambda model, layer, x, target=None: grad_cam(model, layer, x, target),
    "grad_cam++": lambda model, layer, x, target=None: grad_cam(model, layer, x, target, method="gradcam++"),
    "saliency": lambda model, layer, x, target=None: saliency(model, x, target),
    "guided_backprop": lambda model, layer, x, target=None: guided_backprop(model, x, target),
    "guided_grad_cam": lambda model, layer, x, target=None: guided_grad_cam(model, layer, x, target),
    "occlusion": lambda model, layer, x, target=None: occlusion(model, x, target, window=8, stride=8),
}
