"""Where each conv layer's nonlinearity really is, found by running the model once.

A probe forward runs under a ``TorchFunctionMode`` that sees every torch function called
(``F.batch_norm``, ``F.relu``, ``x * scale + bias``, ``torch.add``, ...) and under forward hooks
on every module. From each tracked conv's output we follow what consumes it, through norm
layers of any class (``BatchNorm2d``, ``SyncBatchNorm``, ``FrozenBatchNorm2d``, timm's
``BatchNormAct2d``, ``LayerNorm2d``, ``GroupNorm``: normalisations, reshapes and affine maps
with parameters), to the first nonlinearity. The layer's ``semantics`` is then:

- ``relu``: a ReLU-like function (ReLU, ReLU6, hardtanh, threshold) follows. Counted at its input,
  "> 0" is exactly "the ReLU passes signal": a filter with rate 0 is **dead**.
- ``smooth``: SiLU/Swish, GELU, Hardswish, Mish, ELU, softplus... Counted at its input, a position
  is *active* unless both the function's output and its slope are negligible (below ``EPSILON``
  in absolute value): the input is above the threshold found from the function itself. A filter
  with rate 0 is **inactive** (it passes neither signal nor gradient), not dead.
- ``residual``: the branch is added to another path before its nonlinearity (a ResNet's
  ``conv3``/``downsample``, a RepVGG branch); its channel's own sign says nothing about what the
  block passes, so it is not a dead-filter measurement.
- ``none``: no nonlinearity follows (ConvNeXt, a ViT patch embedding) or the output is concatenated
  or multiplied first: no dead filters are defined.
- ``gate``: the output goes through a sigmoid (squeeze-excite, attention gates); ``head``: a 1x1
  conv on a globally pooled input. Neither has spatial maps: they are not filters.
- ``unmeasured``: a nonlinearity follows but no module's output is its input (e.g. ``F.batch_norm``
  called in ``forward`` before an in-place ReLU module), so nothing can be hooked there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from tb_cnnviz.analysis.safety import hooks, safe_snapshot

EPSILON = 1e-2  # output and slope below this (absolute): a smooth nonlinearity's position is inactive
NOT_FILTERS = ("gate", "head")  # left out of the default dead-filter layers

_RELU = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "threshold", "threshold_"}
_SMOOTH = {"silu", "silu_", "gelu", "hardswish", "hardswish_", "mish", "elu", "elu_", "softplus", "selu"}
_SMOOTH |= {"celu", "leaky_relu", "leaky_relu_", "tanh", "tanh_"}
_GATE = {"sigmoid", "sigmoid_", "hardsigmoid", "hardsigmoid_"}
_PASS = {"batch_norm", "layer_norm", "group_norm", "instance_norm", "dropout", "dropout2d", "alpha_dropout"}
_PASS |= {"permute", "contiguous", "clone", "to", "float", "half", "bfloat16", "type_as", "__get__"}
_AFFINE = {"mul", "mul_", "__mul__", "__rmul__", "__imul__", "div", "div_", "__truediv__"}
_ADD = {"add", "add_", "__add__", "__radd__", "__iadd__", "sub", "sub_", "__sub__", "__rsub__"}
_POOL = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "mean", "amax", "avg_pool2d", "max_pool2d"}


@dataclass
class Point:
    """Where a conv layer's dead filters are counted and what the count means."""

    module: nn.Module  # hooked: its output (or its input when ``use_input``) is the nonlinearity's input
    measured_at: str  # that module's dotted name
    semantics: str  # relu / smooth / residual / none / gate / head / unmeasured (see the module docstring)
    use_input: bool = False
    threshold: float = 0.0  # a position is active where the measured value is > threshold


def probe_input(model: nn.Module, convs: Sequence[nn.Module], size: int = 64) -> torch.Tensor:
    """Two random images for the probe forward: the first conv's input channels, ``size`` px, on the
    model's device and in its dtype (used when no probe images are given)."""
    from tb_cnnviz.analysis.layers import conv_layers, model_device

    first = next((module for _, module in conv_layers(model)), convs[0] if convs else None)
    channels = int(getattr(first, "in_channels", 3))
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, channels, size, size, generator=generator, dtype=dtype)
    return images.to(model_device(model))


def find_points(model: nn.Module, convs: Sequence[nn.Module], images: torch.Tensor) -> list[Point]:
    """One :class:`Point` per conv of ``convs``, found by one forward of ``images`` (eval mode, no grad;
    modes, RNG and hooks restored). Raises ``ValueError`` naming ``images`` if the model cannot run."""
    from tb_cnnviz.analysis.layers import layer_name, unwrap

    base = unwrap(model)
    names = {id(module): name for name, module in base.named_modules()}
    tracer = _Tracer(list(convs))
    stashed = [
        (module, dict(module._forward_pre_hooks), dict(module._forward_hooks)) for module in base.modules()
    ]
    for module, _, _ in stashed:  # the user's hooks do not see the probe
        module._forward_pre_hooks.clear()
        module._forward_hooks.clear()
    try:
        with hooks() as handles, safe_snapshot(model), torch.no_grad():
            for module in base.modules():
                handles.append(module.register_forward_pre_hook(tracer.pre_hook))
                handles.append(module.register_forward_hook(tracer.post_hook))
            with tracer:
                model(images)
    except Exception as error:  # noqa: BLE001 - reported with the model's own error
        raise ValueError(
            f"images: the model cannot run on a {tuple(images.shape)} probe input "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    finally:
        for module, pre, post in stashed:
            module._forward_pre_hooks.update(pre)
            module._forward_hooks.update(post)
    points = []
    for index, conv in enumerate(convs):
        semantics, tensor, threshold = tracer.found.get(index, ("none", None, 0.0))
        if tracer.pooled_input.get(index) and semantics != "gate":
            semantics = "head"
        module, use_input = conv, False
        if semantics in ("relu", "smooth", "residual") and tensor is not None:
            module, use_input = tracer.hookable(tensor, conv)
            if module is None:
                module, semantics = conv, semantics if semantics == "residual" else "unmeasured"
        points.append(
            Point(module, names.get(id(module)) or layer_name(base, module), semantics, use_input, threshold)
        )
    return points


def smooth_threshold(function, epsilon: float = EPSILON) -> float:
    """The largest ``t`` such that for every ``x <= t`` both ``|f(x)|`` and ``|f'(x)|`` are below ``epsilon``
    (``-inf`` when there is none: the function is never inactive, e.g. leaky ReLU, tanh)."""
    grid = torch.linspace(-40.0, 0.0, 40001, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        value = function(grid)
        (slope,) = torch.autograd.grad(value.sum(), grid)
    negligible = (value.detach().abs() < epsilon) & (slope.abs() < epsilon)
    if not bool(negligible[0]):
        return -math.inf
    last = int(torch.nonzero(~negligible)[0]) - 1 if bool((~negligible).any()) else len(grid) - 1
    return float(grid.detach()[last])


class _Tracer(TorchFunctionMode):
    """Follows each tracked conv's output through the probe forward to its first nonlinearity."""

    def __init__(self, convs: list[nn.Module]):
        super().__init__()
        self.conv_index = {id(conv): index for index, conv in enumerate(convs)}
        self.state: dict[int, list[tuple[int, str]]] = {}  # id(tensor) -> [(conv index, "norm"/"residual")]
        self.found: dict[int, tuple[str, Optional[torch.Tensor], float]] = {}
        self.pooled: set[int] = set()
        self.pooled_input: dict[int, bool] = {}
        self.producer: dict[int, nn.Module] = {}  # id(tensor) -> innermost module that returned it
        self.consumers: dict[int, list[nn.Module]] = {}  # id(tensor) -> modules called on it
        self.calls: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps every tensor alive so that ids are not reused

    def pre_hook(self, module, inputs):
        self.calls[id(module)] = self.calls.get(id(module), 0) + 1
        if inputs and isinstance(inputs[0], torch.Tensor):
            self.consumers.setdefault(id(inputs[0]), []).append(module)

    def post_hook(self, module, inputs, output):
        if isinstance(output, torch.Tensor):
            self.keep.append(output)
            self.producer.setdefault(id(output), module)
            index = self.conv_index.get(id(module))
            if index is not None:
                self.state.setdefault(id(output), []).append((index, "norm"))
                self.pooled_input[index] = bool(inputs) and id(inputs[0]) in self.pooled

    def hookable(self, tensor: torch.Tensor, conv: nn.Module) -> tuple[Optional[nn.Module], bool]:
        """The module to hook for ``tensor``: the one that returned it, else a non-in-place module called
        once on it (its input)."""
        if tensor.dim() != 4 or tensor.shape[1] != conv.out_channels:
            return None, False
        if id(tensor) in self.producer:
            return self.producer[id(tensor)], False
        for module in self.consumers.get(id(tensor), []):
            if self.calls.get(id(module)) == 1 and not getattr(module, "inplace", False):
                return module, True
        return None, False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        self.keep.append(result)
        name = getattr(func, "__name__", "")
        flat = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
        if (
            name in _POOL
            and isinstance(result, torch.Tensor)
            and result.dim() == 4
            and result.shape[-2:] == (1, 1)
        ):
            self.pooled.add(id(result))
        for tensor in flat:
            for index, how in list(self.state.get(id(tensor), ())):
                self._follow(func, name, index, how, tensor, flat, result)
        return result

    def _follow(
        self, func, name: str, index: int, how: str, tensor: torch.Tensor, flat: list, result
    ) -> None:
        if index in self.found:
            return
        if name in _RELU or name in _SMOOTH or name in _GATE:
            if name in _GATE:
                self.found[index] = ("gate", None, 0.0)
            elif how == "residual":
                self.found[index] = ("residual", tensor, 0.0)
            elif name in _RELU:
                self.found[index] = ("relu", tensor, 0.0)
            else:
                self.found[index] = ("smooth", tensor, smooth_threshold(func))
            return
        if not isinstance(result, torch.Tensor):
            return
        others = [other for other in flat if other is not tensor]
        same_shape = any(other.shape == tensor.shape for other in others)
        if name in _PASS or (name in _AFFINE and not same_shape):
            self._mark(result, index, how)
        elif name in _ADD:
            self._mark(result, index, "residual" if same_shape else how)

    def _mark(self, result: torch.Tensor, index: int, how: str) -> None:
        marks = self.state.setdefault(id(result), [])
        marks[:] = [mark for mark in marks if mark[0] != index] + [(index, how)]
