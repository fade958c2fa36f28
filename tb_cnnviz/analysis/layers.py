"""Finding layers: unwrapping DDP/compiled models, naming conv layers, resolving user specs.

Every public entry point accepts a layer either as a dotted name from
``model.named_modules()`` or as the module object itself; errors list the valid names.
The functions work on any model the ``tb-cnnviz`` command loads, too: a TorchScript module
or a ``torch.export`` program unflattened into modules. Their layers are no longer
instances of their eager class, so a conv layer there is a module owning a 4-D ``weight``,
and :func:`layer_types` reads the class names the user knows from the compiled code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

import torch
from torch import nn

from tb_cnnviz.analysis.safety import hooks, safe_snapshot

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


def is_compiled(module: nn.Module) -> bool:
    """Whether ``module`` is TorchScript or part of an unflattened ``torch.export`` program (it runs a graph)."""
    return isinstance(module, torch.jit.ScriptModule) or isinstance(
        getattr(module, "graph", None), torch.fx.Graph
    )


def is_conv(module: nn.Module) -> bool:
    """A 2-D conv layer: an ``nn.Conv2d``, or a compiled module owning a 4-D ``weight``."""
    if isinstance(module, _CONV_TYPES):
        return True
    return is_compiled(module) and getattr(_own_weight(module), "ndim", 0) == 4


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """All 2-D conv layers of ``model`` (unwrapped) in registration order, with dotted names."""
    return [(name, module) for name, module in unwrap(model).named_modules() if is_conv(module)]


def layer_types(model: nn.Module) -> dict[str, str]:
    """Dotted name -> the class name a user knows, for every module of ``model`` (unwrapped).

    TorchScript keeps it as ``original_name``; an unflattened ``torch.export`` program in the
    ``nn_module_stack`` of its graphs' nodes; eager modules are their own class.
    """
    recorded: dict[str, str] = {}
    for module in unwrap(model).modules():
        graph = getattr(module, "graph", None)
        if isinstance(graph, torch.fx.Graph):
            for node in graph.nodes:
                for path, class_name in (node.meta.get("nn_module_stack") or {}).values():
                    recorded.setdefault(path, str(class_name).rpartition(".")[2])
    types = {}
    for name, module in unwrap(model).named_modules():
        if isinstance(module, torch.jit.ScriptModule):
            types[name] = getattr(module, "original_name", type(module).__name__)
        else:
            types[name] = recorded.get(name, type(module).__name__)
    return types


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
    if conv_only and not is_conv(module):
        shown = layer_types(base).get(name, type(module).__name__)
        raise ValueError(
            f"{argument}: {name!r} is a {shown}, not a Conv2d; valid conv layer names: {_short_list(valid)}"
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


def output_channels(module: nn.Module, argument: str = "layer") -> int:
    """Output channels of a layer: ``out_channels``/``num_features``/``out_features``, else the first dimension
    of its own ``weight`` (conv, linear and norm layers of compiled models)."""
    for attribute in ("out_channels", "num_features", "out_features"):
        if hasattr(module, attribute):
            return int(getattr(module, attribute))
    weight = _own_weight(module)
    if weight is not None and weight.ndim >= 1:
        return int(weight.shape[0])
    raise ValueError(
        f"{argument}: cannot tell how many channels a {type(module).__name__} has; choose a conv layer"
    )


def leaf_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers a table lists: modules without children, and containers owning parameters themselves."""
    return [
        (name, module)
        for name, module in unwrap(model).named_modules()
        if name and (not list(module.children()) or list(module.parameters(recurse=False)))
    ]


def call_order(model: nn.Module, images: torch.Tensor, modules: Iterable[nn.Module]) -> dict[nn.Module, int]:
    """``{module: rank}``: the order in which one forward pass of ``images`` finishes each of ``modules`` the
    first time (its output's place in the data flow; a stage finishes after the convs inside it). Modules the
    pass does not run are left out. Eval mode, no gradient; modes, RNG and hooks restored."""
    order: dict[nn.Module, int] = {}

    def hook(module, _inputs, _output):
        order.setdefault(module, len(order))

    with hooks() as handles, safe_snapshot(model), torch.no_grad():
        handles += [module.register_forward_hook(hook) for module in dict.fromkeys(modules)]
        model(images)
    return order


def layer_before_last_linear(model: nn.Module) -> str:
    """Name of the leaf module registered just before the last one owning a 2-D ``weight``.

    Its output is the classifier's input: the default code of a compiled model, where
    ``nn.Linear`` can no longer be recognised by its class.
    """
    leaves = [
        (name, module)
        for name, module in unwrap(model).named_modules()
        if name and not list(module.children())
    ]
    linear = [
        index for index, (_, module) in enumerate(leaves) if getattr(_own_weight(module), "ndim", 0) == 2
    ]
    if not linear or linear[-1] == 0:
        raise ValueError(
            "layer: cannot find the model's last linear layer to take its input; name the feature layer"
        )
    return leaves[linear[-1] - 1][0]


def layer_table(
    model: nn.Module, images: torch.Tensor, *, root: Optional[nn.Module] = None, argument: str = "images"
) -> tuple[list[dict], str]:
    """One row per :func:`leaf_layers` entry of ``root`` (default ``model``) and the shape of ``model(images)``.

    A row holds ``name``, ``type`` (see :func:`layer_types`), ``output`` (the output shape measured
    with forward hooks, ``(xN calls)`` for a module run N times; ``-`` when not run or when ``root``
    is TorchScript, which has no hooks), ``params`` and ``trainable`` (``yes``/``no``/``partly``/``-``).
    ``root`` names the layers when ``model`` wraps them (e.g. an input normalisation around TorchScript).
    Eval mode, no gradient; modes, RNG and hooks restored. A model that cannot run raises ``ValueError``.
    """
    root = model if root is None else root
    leaves = leaf_layers(root)
    types = layer_types(root)
    shapes: dict[str, list[str]] = {name: [] for name, _ in leaves}

    def make_hook(name: str):
        def hook(_module, _inputs, output):
            shapes[name].append(_shape(output))

        return hook

    try:
        with hooks() as handles, safe_snapshot(model), torch.no_grad():
            if not isinstance(unwrap(root), torch.jit.ScriptModule):
                handles += [module.register_forward_hook(make_hook(name)) for name, module in leaves]
            output = model(images)
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(
            f"{argument}: the model cannot run on a {images.shape[-2]}x{images.shape[-1]} input "
            f"({type(error).__name__}: {first})"
        ) from None
    rows = []
    for name, module in leaves:
        params = list(module.parameters(recurse=False))
        trainable = [p.requires_grad for p in params]
        seen = shapes[name]
        rows.append(
            {
                "name": name,
                "type": types.get(name, type(module).__name__),
                "output": "-" if not seen else seen[0] + (f" (x{len(seen)} calls)" if len(seen) > 1 else ""),
                "params": sum(p.numel() for p in params),
                "trainable": "-"
                if not params
                else "yes"
                if all(trainable)
                else "no"
                if not any(trainable)
                else "partly",
            }
        )
    return rows, _shape(output)


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
    ``forward`` all work the same way. Any other layer (a block's or an activation's output,
    as the default activation layers are) is measured as it is, whatever follows it.
    """
    if not is_conv(conv):
        return conv
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


def _own_weight(module: nn.Module) -> Optional[torch.Tensor]:
    return dict(module.named_parameters(recurse=False)).get("weight")


def _shape(value: Any) -> str:
    """``[1, 10]`` for a tensor, nested brackets for tuples, lists and dicts of tensors."""
    if isinstance(value, torch.Tensor):
        return str(list(value.shape))
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shape(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shape(v)}" for k, v in value.items()) + "}"
    return type(value).__name__


def _short_list(names: Sequence[str], limit: int = 30) -> str:
    if not names:
        return "(none: the model has no Conv2d layer)"
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
