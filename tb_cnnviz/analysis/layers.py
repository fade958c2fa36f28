"""Finding layers: unwrapping DDP/compiled models, naming conv layers, resolving user specs.

Every public entry point accepts a layer either as a dotted name from
``model.named_modules()`` or as the module object itself; errors list the valid names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Union

import torch
from torch import nn

LayerSpec = Union[str, nn.Module]

_CONV_TYPES = (nn.Conv2d,)
_NORM_TYPES = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's own module inside DDP / DataParallel (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    seen = set()
    while id(model) not in seen:
        seen.add(id(model))
        if hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        elif isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
    return model


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """All 2-D conv layers of ``model`` (unwrapped) in registration order, with dotted names."""
    return [
        (name, module) for name, module in unwrap(model).named_modules() if isinstance(module, _CONV_TYPES)
    ]


def layer_name(model: nn.Module, layer: nn.Module) -> str:
    """Dotted name of ``layer`` inside ``model`` (unwrapped)."""
    for name, module in unwrap(model).named_modules():
        if module is layer:
            return name
    raise ValueError(f"layer: the module {type(layer).__name__} is not part of the model")


def resolve_layer(
    model: nn.Module, layer: LayerSpec, *, argument: str = "layer", conv_only: bool = True
) -> tuple[str, nn.Module]:
    """Turn a layer spec into ``(name, module)``, with an error that lists the valid choices."""
    base = unwrap(model)
    valid = (
        [name for name, _ in conv_layers(base)] if conv_only else [n for n, _ in base.named_modules() if n]
    )
    kind = "conv layer" if conv_only else "layer"
    if isinstance(layer, nn.Module):
        name = layer_name(base, layer)
        module = layer
    elif isinstance(layer, str):
        modules = dict(base.named_modules())
        if layer not in modules or layer == "":
            raise ValueError(
                f"{argument}: no layer named {layer!r} in the model; valid {kind} names: {_short_list(valid)}"
            )
        name, module = layer, modules[layer]
    else:
        raise TypeError(
            f"{argument}: expected a layer name (str) or an nn.Module, got {type(layer).__name__}"
        )
    if conv_only and not isinstance(module, _CONV_TYPES):
        raise ValueError(
            f"{argument}: {name!r} is a {type(module).__name__}, not a Conv2d; valid conv layer names: {_short_list(valid)}"
        )
    return name, module


def resolve_layers(
    model: nn.Module, layers: Iterable[LayerSpec] | LayerSpec, *, argument: str, conv_only: bool = True
) -> list[tuple[str, nn.Module]]:
    """Resolve a list of layer specs; duplicates are an error (they would log twice under one tag)."""
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    try:
        items = list(layers)
    except TypeError:
        raise TypeError(
            f"{argument}: expected a list of layer names or modules, got {type(layers).__name__}"
        ) from None
    resolved = [resolve_layer(model, item, argument=argument, conv_only=conv_only) for item in items]
    names = [name for name, _ in resolved]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{argument}: layers listed more than once: {duplicates}")
    return resolved


def evenly_spaced(items: Sequence, count: int) -> list:
    """``count`` items spread over ``items``, always including the first and the last."""
    if count >= len(items):
        return list(items)
    if count == 1:
        return [items[0]]
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def activation_point(model: nn.Module, conv: nn.Module) -> nn.Module:
    """The module whose output a following nonlinearity sees: the conv, or its normalisation layer.

    A conv immediately followed (in registration order of leaf modules) by a
    BatchNorm/GroupNorm with matching channel count is measured after the norm layer,
    so "positive output" means "a following ReLU passes signal" for conv→BN→ReLU too.
    Measuring at this module instead of at the ReLU makes in-place ReLUs, one ReLU
    module reused by several convs (torchvision ResNet blocks) and ``F.relu`` in
    ``forward`` all work the same way.
    """
    leaves = [module for module in unwrap(model).modules() if not list(module.children())]
    for index, module in enumerate(leaves):
        if module is conv and index + 1 < len(leaves):
            following = leaves[index + 1]
            channels = getattr(following, "num_features", getattr(following, "num_channels", None))
            if isinstance(following, _NORM_TYPES) and channels == conv.out_channels:
                return following
            break
    return conv


def model_device(model: nn.Module, default: torch.device | str = "cpu") -> torch.device:
    """The device of the model's first parameter (or buffer); ``default`` for a model with neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device(default)


def _short_list(names: Sequence[str], limit: int = 30) -> str:
    if not names:
        return "(none: the model has no Conv2d layer)"
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
