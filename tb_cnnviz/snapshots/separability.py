"""The ``separability`` snapshot: per layer, the held-out accuracy of a linear probe on its pooled codes.

One forward pass of the labelled embedding probe (in batches, eval mode, no gradient) pools every
tracked layer's activations over positions as they come (``analysis.separability.pool``), so no
feature map of the whole probe is kept; then ``analysis.separability.probe_accuracy`` fits the ridge
probe per layer on the fixed seeded split. An ``nn.Linear`` is measured at its input (the codes it
maps: the default "classifier input" is the last linear layer's), every other layer at its output.
Writes one ``separability`` row per layer (content ``depth``: the layer's rank in execution order)
and the deepest layer's accuracy as the ordinary scalar ``cnnviz_scalars/separability/<layer>``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from tb_cnnviz import summary
from tb_cnnviz.analysis.features import default_feature_layer
from tb_cnnviz.analysis.layers import model_device, unwrap
from tb_cnnviz.analysis.safety import hooks, safe_snapshot
from tb_cnnviz.analysis.separability import (
    COLUMNS,
    MEASURED,
    NOT_ENOUGH_LABELS,
    OUTCOMES,
    labels_problem,
    pool,
    probe_accuracy,
    stratified_split,
    unmeasured,
)
from tb_cnnviz.snapshots import shared_pass
from tb_cnnviz.snapshots.inputs import Inputs, Layers

KIND = "separability"


def separability(inputs: Inputs) -> list:
    """Per layer of ``inputs.layers`` the probe's row (``analysis.separability.COLUMNS``), and the deepest
    layer's accuracy as a scalar. Labels with too few images per class give the ``NOT_ENOUGH_LABELS``
    outcome for every layer (no forward pass, no scalar). Settings: ``batch_size`` (default 256)."""
    if inputs.labels is None:
        raise ValueError(
            "separability: the embedding probe has no labels; pass embedding_probe=(images, labels)"
        )
    layers = list(inputs.layers)
    if not layers:
        return []
    labels = torch.as_tensor(inputs.labels).reshape(-1)
    if labels_problem(labels) is not None:
        results = [unmeasured(NOT_ENOUGH_LABELS)] * len(layers)
        depths = list(range(len(layers)))
    else:
        features, depths = pooled_features(
            inputs.model, layers, inputs.images, inputs.settings.get("batch_size", 256)
        )
        split = stratified_split(labels)
        results = [probe_accuracy(value, labels, split) for value in features]
    summaries = [
        summary.tensor_summary(
            KIND,
            name,
            np.asarray(result.row(), dtype=np.float32),
            columns=list(COLUMNS),
            outcomes=list(OUTCOMES),
            measured_at="input" if isinstance(module, nn.Linear) else "output",
            depth=int(depth),
        )
        for (name, module), result, depth in zip(layers, results, depths)
    ]
    deepest = max(range(len(layers)), key=lambda i: depths[i])
    if results[deepest].outcome == MEASURED:
        summaries.append(summary.scalar_summary(KIND, layers[deepest][0], results[deepest].accuracy))
    return summaries


def pooled_features(
    model: nn.Module, layers: Layers, images: torch.Tensor, batch_size: int = 256
) -> tuple[list[torch.Tensor], list[int]]:
    """Per layer the pooled codes ``[N, C]`` (float64, CPU) of ``images`` and its rank in execution order.

    A module called twice in one forward keeps its last call (as ``features.extract_features``). When
    the last ``nn.Linear`` is one of the layers, its input codes and the outputs are handed on to the
    embedding snapshot on the same copy (``shared_pass``).
    """
    device = model_device(model)
    pooled: list[list[torch.Tensor]] = [[] for _ in layers]
    outputs: list[torch.Tensor] = []
    first_call: dict[int, int] = {}
    current: list[torch.Tensor | None] = [None] * len(layers)

    def make_hook(index: int, at_input: bool):
        def hook(_module, args, output=None):
            value = args if at_input else output
            value = value[0] if isinstance(value, (tuple, list)) and value else value
            if not isinstance(value, torch.Tensor):
                where = "input" if at_input else "output"
                raise TypeError(f"separability_layers: the {where} of {layers[index][0]!r} is not a tensor")
            first_call.setdefault(index, len(first_call))
            current[index] = pool(value.detach().float())

        return hook

    with safe_snapshot(model), torch.no_grad(), hooks() as handles:
        for index, (_, module) in enumerate(layers):
            at_input = isinstance(module, nn.Linear)
            hook = make_hook(index, at_input)
            handles.append(
                module.register_forward_pre_hook(hook) if at_input else module.register_forward_hook(hook)
            )
        for start in range(0, len(images), batch_size):
            current[:] = [None] * len(layers)
            result = model(images[start : start + batch_size].to(device))
            result = result[0] if isinstance(result, (tuple, list)) else result
            if isinstance(result, torch.Tensor):
                outputs.append(result.detach().float().cpu())
            missing = [layers[i][0] for i, value in enumerate(current) if value is None]
            if missing:
                raise RuntimeError(
                    f"separability_layers: {missing} were not called during the forward pass, so they have no codes"
                )
            for index, value in enumerate(current):
                pooled[index].append(value)
    codes = [torch.cat(parts).float().cpu() for parts in pooled]
    _hand_on(model, layers, images, codes, outputs)
    return [value.double() for value in codes], [first_call[i] for i in range(len(layers))]


def _hand_on(model: nn.Module, layers: Layers, images: torch.Tensor, codes: list, outputs: list) -> None:
    """The last linear layer's input codes and the outputs, for the embedding snapshot on this copy."""
    try:
        classifier = default_feature_layer(model)[1]
    except ValueError:
        return
    index = next((i for i, (_, module) in enumerate(layers) if module is classifier), None)
    if index is not None and sum(len(o) for o in outputs) == len(images):
        shared_pass.keep(model, images, codes[index], torch.cat(outputs))


def default_layers(
    model: nn.Module, stages: Layers, embedding_probe: tuple, given: object
) -> list[tuple[str, nn.Module]]:
    """The default ``separability_layers``: the stage outputs and the last ``nn.Linear`` (at its input).

    None without embedding-probe labels (it needs them); asking for layers without labels is an
    error. Labels too few per class are warned about here and logged as that outcome.
    """
    images, labels = embedding_probe
    if labels is None:
        if images is not None and given is not None and not _empty(given):
            raise ValueError(
                "separability_layers: the linear probe needs labelled images; pass embedding_probe=(images, labels)"
            )
        return []
    problem = labels_problem(labels)
    if problem is not None and (given is None or not _empty(given)):
        warnings.warn(
            f"tb-cnnviz: separability: {problem}; it is logged as such", RuntimeWarning, stacklevel=4
        )
    linears = [(name, m) for name, m in unwrap(model).named_modules() if isinstance(m, nn.Linear)]
    return list(stages) + linears[-1:]


def _empty(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 0
