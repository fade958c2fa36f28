"""Feature vectors ("CNN codes", CS231n) of many images from one layer, for embeddings and retrieval.

By default the code of an image is the *input* of the model's last ``nn.Linear``: the
vector the classifier separates linearly (for ``SmallVGG(width=w)``, the globally pooled
``4 * w`` channels; for AlexNet, the 4096-D ReLU output before the last layer). Any
other layer can be chosen by name or module; its output is used, and a feature map
``[N, C, H, W]`` is flattened or pooled over positions.

Training-safe: the model runs under ``safety.safe_snapshot`` (eval mode with every
module's own ``training`` flag restored afterwards, global RNG states restored) and
``torch.no_grad()``; the one hook is removed in ``finally``, also when the model raises;
parameters and their ``.grad`` are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Optional, Union

import torch
from torch import nn

from tb_cnnviz.analysis.layers import LayerSpec, model_device, resolve_layer, unwrap
from tb_cnnviz.analysis.safety import hooks, safe_snapshot

Point = Literal["input", "output"]
Pool = Literal["flatten", "avg", "max"]
Inputs = Union[torch.Tensor, Iterable]


def default_feature_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """``(name, module)`` of the last ``nn.Linear`` registered in ``model``: its input is the default code."""
    linears = [
        (name, module) for name, module in unwrap(model).named_modules() if isinstance(module, nn.Linear)
    ]
    if not linears:
        raise ValueError(
            "layer: the model has no nn.Linear, so there is no default feature layer; pass layer= with a module name"
        )
    return linears[-1]


def extract_features(
    model: nn.Module,
    inputs: Inputs,
    layer: Optional[LayerSpec] = None,
    *,
    point: Optional[Point] = None,
    pool: Pool = "flatten",
    batch_size: int = 256,
    to_cpu: bool = False,
    return_outputs: bool = False,
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Features [N, D] of ``inputs`` at ``layer``, computed in batches with no gradient.

    - ``inputs``: a tensor [N, ...] (split into ``batch_size`` chunks) or an iterable of
      batches (a ``DataLoader``); a batch that is a tuple/list/dict uses its first
      element / ``"image"`` or ``"input"`` key. Batches are moved to the model's device.
    - ``layer``: ``None`` = the last ``nn.Linear`` (see :func:`default_feature_layer`),
      else a module name or module. ``point``: ``"input"`` or ``"output"`` of that
      layer; default ``"input"`` for the default layer, ``"output"`` for a chosen one.
    - ``pool`` for outputs with more than 2 dimensions: ``"flatten"`` keeps every
      position, ``"avg"``/``"max"`` pool over the positions (dims 2...).
    - Returns a tensor on the model's device in the layer's dtype, or, with
      ``to_cpu=True``, a float32 CPU tensor (``.numpy()`` it for the projections, which
      run off the training thread). With ``return_outputs=True`` returns
      ``(features, outputs)``, the model's outputs (e.g. logits, for predictions) from
      the same forward passes, on the same device/dtype rule.

    Batched and unbatched calls agree to float rounding (the model is in eval mode, so
    BatchNorm uses its running statistics).
    """
    base = unwrap(model)
    if layer is None:
        name, module = default_feature_layer(base)
        point = "input" if point is None else point
    else:
        name, module = resolve_layer(base, layer, argument="layer", conv_only=False)
        point = "output" if point is None else point
    if point not in ("input", "output"):
        raise ValueError(f"point: expected 'input' or 'output', got {point!r}")
    if pool not in ("flatten", "avg", "max"):
        raise ValueError(f"pool: expected 'flatten', 'avg' or 'max', got {pool!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    device = model_device(base)
    captured: list[torch.Tensor] = []

    def keep(value) -> None:
        if isinstance(value, (tuple, list)):
            value = value[0] if value else None
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"layer: the {point} of {name!r} is a {type(value).__name__}, expected a tensor")
        captured.append(_reduce(value.detach(), pool))

    def pre_hook(_module, args):
        keep(args)

    def forward_hook(_module, _args, output):
        keep(output)

    features: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    with safe_snapshot(model), torch.no_grad(), hooks() as handles:
        handles.append(
            module.register_forward_pre_hook(pre_hook)
            if point == "input"
            else module.register_forward_hook(forward_hook)
        )
        for batch in _batches(inputs, batch_size):
            captured.clear()
            result = model(batch.to(device, non_blocking=True))
            if not captured:
                raise RuntimeError(
                    f"layer: {name!r} was not called during the forward pass, so it has no {point} to extract"
                )
            # A module called twice in one forward (weight sharing) keeps its last call, like capture_outputs.
            value = captured[-1]
            features.append(value.float().cpu() if to_cpu else value)
            if return_outputs:
                result = result[0] if isinstance(result, (tuple, list)) else result
                outputs.append(result.detach().float().cpu() if to_cpu else result.detach())
    if not features:
        raise ValueError("inputs: no batch was given (empty tensor or iterable)")
    stacked = torch.cat(features)
    if return_outputs:
        return stacked, torch.cat(outputs)
    return stacked


def _reduce(value: torch.Tensor, pool: Pool) -> torch.Tensor:
    """[N, ...] -> [N, D]; a copy, so an in-place op later in the model cannot change it."""
    if value.dim() < 2:
        raise ValueError(
            f"layer: expected a batched tensor [N, ...] at the layer, got shape {tuple(value.shape)}"
        )
    if value.dim() > 2 and pool != "flatten":
        dims = tuple(range(2, value.dim()))
        return value.mean(dim=dims) if pool == "avg" else value.amax(dim=dims)
    return value.flatten(1).clone()


def _batches(inputs: Inputs, batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() < 1:
            raise ValueError(
                f"inputs: expected a batch tensor [N, ...], got a scalar of shape {tuple(inputs.shape)}"
            )
        for start in range(0, inputs.shape[0], batch_size):
            yield inputs[start : start + batch_size]
        return
    if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
        raise TypeError(
            f"inputs: expected a tensor [N, ...] or an iterable of batches, got {type(inputs).__name__}"
        )
    for index, batch in enumerate(inputs):
        if isinstance(batch, dict):
            key = next((k for k in ("image", "images", "input", "inputs", "x") if k in batch), None)
            if key is None:
                raise TypeError(
                    f"inputs: batch {index} is a dict without an 'image'/'input' key (keys: {sorted(batch)})"
                )
            batch = batch[key]
        elif isinstance(batch, (tuple, list)):
            if not batch:
                raise TypeError(f"inputs: batch {index} is an empty {type(batch).__name__}")
            batch = batch[0]
        if not isinstance(batch, torch.Tensor):
            raise TypeError(f"inputs: batch {index} is a {type(batch).__name__}, expected a tensor")
        yield batch


__all__ = ["default_feature_layer", "extract_features"]
