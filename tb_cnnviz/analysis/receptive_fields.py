"""Receptive fields of a layer's units by convolution arithmetic along one traced forward pass.

Used to crop, from each max-activating image, the patch its maximal unit *sees* (Zeiler & Fergus
2014). The arithmetic is the classic one (Dumoulin & Visin 2016, "A guide to convolution
arithmetic"; Araujo, Norris & Sim 2019, "Computing receptive fields of convolutional neural
networks", Distill) over the Conv2d/MaxPool2d/AvgPool2d layers that one traced forward pass calls
before the chosen layer; see :func:`receptive_field` for why this rather than input gradients,
and for its limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from tb_cnnviz.analysis.layers import LayerSpec, model_device, resolve_layer, unwrap
from tb_cnnviz.analysis.safety import hooks, safe_snapshot


@dataclass(frozen=True)
class ReceptiveField:
    """Where a unit of a layer looks in the input, per axis ``(vertical, horizontal)``.

    Unit ``(row, col)`` sees input rows ``offset[0] + row * stride[0]`` up to (not
    including) that plus ``size[0]``, columns likewise. ``offset`` is negative where
    the field hangs over the border into the zero padding.
    """

    size: tuple[int, int]
    stride: tuple[int, int]
    offset: tuple[int, int]

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """The field of unit ``(row, col)`` as ``(x0, y0, x1, y1)`` (exclusive ends), not clipped."""
        y0 = self.offset[0] + row * self.stride[0]
        x0 = self.offset[1] + col * self.stride[1]
        return x0, y0, x0 + self.size[1], y0 + self.size[0]

    def window(self, row: int, col: int, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The crop for unit ``(row, col)``: ``(x0, y0, x1, y1)`` of size ``min(field, image)``, moved inside the image.

        Every crop of a layer then has the same size (for sprite atlases) and holds only
        real pixels; where the field hangs over a border the window slides inwards.
        """
        height, width = min(self.size[0], image_size[0]), min(self.size[1], image_size[1])
        x0, y0, _, _ = self.box(row, col)
        y0 = min(max(y0, 0), image_size[0] - height)
        x0 = min(max(x0, 0), image_size[1] - width)
        return x0, y0, x0 + width, y0 + height


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _geometry(module: nn.Module) -> Optional[tuple[tuple[int, int], ...]]:
    """``(kernel, stride, padding, dilation, ceil_mode)`` of a layer that moves the field; None for others."""
    if isinstance(module, nn.Conv2d):
        kernel, dilation = _pair(module.kernel_size), _pair(module.dilation)
        if isinstance(module.padding, str):  # 'valid' or 'same' (PyTorch puts the odd pixel on the far side)
            padding = (
                (0, 0)
                if module.padding == "valid"
                else tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
            )
        else:
            padding = _pair(module.padding)
        return kernel, _pair(module.stride), padding, dilation, (0, 0)
    if isinstance(module, nn.MaxPool2d):
        stride = module.stride if module.stride is not None else module.kernel_size
        ceil = int(module.ceil_mode)
        return (
            _pair(module.kernel_size),
            _pair(stride),
            _pair(module.padding),
            _pair(module.dilation),
            (ceil, ceil),
        )
    if isinstance(module, nn.AvgPool2d):
        stride = module.stride if module.stride is not None else module.kernel_size
        ceil = int(module.ceil_mode)
        return _pair(module.kernel_size), _pair(stride), _pair(module.padding), (1, 1), (ceil, ceil)
    return None


def receptive_field(
    model: nn.Module,
    layer: LayerSpec,
    input_shape: Sequence[int] = (3, 32, 32),
) -> ReceptiveField:
    """Receptive field of the units of ``layer``'s output, by convolution arithmetic along the traced path.

    One forward pass of zeros ``[1, *input_shape]`` (training-safe: eval mode restored,
    no gradient, hooks removed) records the leaf modules in call order with their input
    and output sizes. Walking them up to the first call of ``layer``, each Conv2d /
    MaxPool2d / AvgPool2d whose input has the size the path has reached updates, per
    axis, with effective kernel ``k' = d (k - 1) + 1``:
    ``size += (k' - 1) * jump``, ``offset -= padding * jump``, ``jump *= stride``.
    A layer whose input has another size is on another branch (a ResNet shortcut's
    1x1 downsampling conv) and is skipped; the main path's field contains the shortcut's.

    Why not input gradients: the gradient of one unit is zero wherever a ReLU is off
    or a max-pool chose another element, so its support is smaller than the field and
    changes from image to image. The arithmetic is exact for chains of conv/pool layers
    (VGG, AlexNet) and for ResNet-style blocks; parallel branches at the same size
    (Inception) are added up, which over-estimates (crops too large, never too small).
    Each step's predicted output size is checked against the traced one: a layer that
    changes the size by other means (``F.max_pool2d`` in ``forward``, ``Upsample``,
    adaptive pooling) raises ``ValueError`` rather than giving a wrong field.
    """
    base = unwrap(model)
    name, target = resolve_layer(base, layer, argument="layer", conv_only=False)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"input_shape: expected (channels, height, width) of positive sizes, got {tuple(input_shape)}"
        )
    leaves = [m for m in base.modules() if not list(m.children())]
    if target not in leaves:
        leaves.append(target)
    calls: list[tuple[nn.Module, Optional[tuple[int, int]], Optional[tuple[int, int]]]] = []

    class _Reached(Exception):
        pass

    def spatial(value) -> Optional[tuple[int, int]]:
        value = value[0] if isinstance(value, (tuple, list)) and value else value
        return tuple(value.shape[-2:]) if isinstance(value, torch.Tensor) and value.dim() == 4 else None

    def make_hook(module):
        def hook(_module, args, output):
            calls.append((module, spatial(args), spatial(output)))
            if module is target:
                raise _Reached

        return hook

    device = model_device(base)
    dtype = next((p.dtype for p in base.parameters() if p.is_floating_point()), torch.float32)
    with safe_snapshot(model), torch.no_grad(), hooks() as handles:
        for module in leaves:
            handles.append(module.register_forward_hook(make_hook(module)))
        try:
            model(torch.zeros((1,) + shape, device=device, dtype=dtype))
        except _Reached:
            pass
    if not calls or calls[-1][0] is not target:
        raise ValueError(f"layer: {name!r} was not called in a forward pass of an input of shape {shape}")

    reached = shape[1:]
    size, jump, offset = [1, 1], [1, 1], [0, 0]
    for module, in_size, out_size in calls:
        if module is target and list(module.children()):
            # A block chosen as the layer: its children were walked already, its output must be where they led.
            if out_size != reached:
                raise ValueError(
                    f"layer: {name!r} gives a {out_size} map but its conv/pool layers lead to {reached}; "
                    "cannot derive the receptive field"
                )
            break
        if in_size is None or out_size is None or in_size != reached:
            if module is target:
                raise ValueError(
                    f"layer: {name!r} receives a {in_size} map but the conv/pool layers before it lead to {reached}; "
                    "the model changes sizes outside nn.Conv2d/MaxPool2d/AvgPool2d modules (functional pooling?) "
                    "or the layer takes no 4-D feature map, so its receptive field cannot be derived"
                )
            continue
        geometry = _geometry(module)
        if geometry is None:
            if out_size != in_size:
                raise ValueError(
                    f"layer: {type(module).__name__} changes the map from {in_size} to {out_size} before {name!r}; "
                    "only Conv2d, MaxPool2d and AvgPool2d are understood for the receptive field"
                )
            continue
        kernel, stride, padding, dilation, ceil = geometry
        predicted = []
        for axis in range(2):
            effective = dilation[axis] * (kernel[axis] - 1) + 1
            span = in_size[axis] + 2 * padding[axis] - effective
            length = (-(-span // stride[axis]) if ceil[axis] else span // stride[axis]) + 1
            if ceil[axis] and (length - 1) * stride[axis] >= in_size[axis] + padding[axis]:
                length -= 1  # PyTorch's ceil_mode never starts a window in the right padding
            predicted.append(length)
            size[axis] += (effective - 1) * jump[axis]
            offset[axis] -= padding[axis] * jump[axis]
            jump[axis] *= stride[axis]
        if tuple(predicted) != out_size:
            raise ValueError(
                f"layer: {type(module).__name__} on the path to {name!r} gives {out_size}, the arithmetic predicts "
                f"{tuple(predicted)}; cannot derive the receptive field"
            )
        reached = out_size
    return ReceptiveField(size=(size[0], size[1]), stride=(jump[0], jump[1]), offset=(offset[0], offset[1]))
