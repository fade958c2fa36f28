"""The ``patterns`` gallery and DeepDream: images optimised to drive the network."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tb_cnnviz import metadata, summary
from tb_cnnviz.analysis.layers import output_channels
from tb_cnnviz.snapshots.images import display_images, to_uint8
from tb_cnnviz.snapshots.inputs import Inputs


def patterns(inputs: Inputs) -> list:
    """A gallery per layer: the first ``channels`` filters' activation-maximising images, the activation
    each reached and, when ``reference`` images are set (the probe), the best activation of the same
    filter on them (``pattern_reference``: a pattern below it has failed).

    Settings: ``channels``, ``size`` (px), ``steps`` (Adam steps), ``in_channels``, ``mean`` and ``std``
    (the model's input normalisation, or None), ``reference`` (model inputs ``[N, C, H, W]``, or None)."""
    from tb_cnnviz.analysis.patterns import filter_patterns, unit_activations

    settings = inputs.settings
    size, steps = settings["size"], settings["steps"]
    summaries = []
    for name, layer in inputs.layers:
        count = min(settings["channels"], output_channels(layer, "pattern_layers"))
        result = filter_patterns(
            inputs.model,
            layer,
            list(range(count)),
            size=size,
            steps=steps,
            in_channels=settings["in_channels"],
            mean=settings["mean"],
            std=settings["std"],
            seed=0,
            return_activations=True,
        )
        summaries += pattern_summaries(name, result, size, steps)
        reference = settings.get("reference")
        if reference is not None:
            best = unit_activations(inputs.model, layer, reference)[:, :count].amax(dim=0)
            summaries.append(
                summary.tensor_summary(metadata.PATTERN_REFERENCE, name, best.float().cpu().numpy())
            )
    return summaries


def pattern_summaries(name: str, result, size, steps: int) -> list:
    """The ``patterns`` gallery and ``pattern_values`` of one ``analysis.patterns`` result (with activations),
    for any targets: filters of layer ``name``, or classes (``name`` ``"logits"``)."""
    pngs = [summary.encode_png(to_uint8(image)) for image in result.images]
    return [
        summary.blob_summary(
            metadata.PATTERNS, name, pngs, channels=list(result.targets), size=size, steps=steps
        ),
        summary.tensor_summary(metadata.PATTERN_VALUES, name, result.activations.float().cpu().numpy()),
    ]


def dream(inputs: Inputs) -> list:
    """DeepDream of one image on ``layers``, and how much it amplified them: one ``dream`` summary.

    ``images``: one image ``[1, C, H, W]`` in [0, 1]. Settings (all optional): ``octaves`` (4),
    ``octave_scale`` (1.4), ``steps`` per octave (10), ``lr`` (0.01), ``seed`` (0), ``progress`` (False).
    The summary holds ``[original PNG, dreamed PNG]``, the settings, the DeepDream objective
    ``L(x) = sum_l ||a_l(x)||_2 / sqrt(numel(a_l))`` (Mordvintsev et al. 2015; see ``analysis.dream``)
    of the original and of the dream (``objective``), and the gain ``after / before`` (None when the
    layers are silent on the original).
    """
    from tb_cnnviz.analysis.dream import deep_dream

    if inputs.images is None or inputs.images.dim() != 4 or len(inputs.images) != 1:
        shape = None if inputs.images is None else tuple(inputs.images.shape)
        raise ValueError(f"images: expected one image [1, C, H, W], got {shape}")
    settings = {"octaves": 4, "octave_scale": 1.4, "steps": 10, "lr": 0.01, "seed": 0, **inputs.settings}
    image, modules = inputs.images[0], [module for _, module in inputs.layers]
    dreamed = deep_dream(
        inputs.model,
        image,
        modules,
        octaves=settings["octaves"],
        octave_scale=settings["octave_scale"],
        steps=settings["steps"],
        lr=settings["lr"],
        seed=settings["seed"],
        progress=settings.get("progress", False),
    )
    pair = torch.stack([image, dreamed])
    before, after = (float(v) for v in dream_objective(inputs.model, modules, pair))
    gain = after / before if before > 0 and math.isfinite(after / before) else None
    names = [name for name, _ in inputs.layers]
    return [
        summary.blob_summary(
            metadata.DREAM,
            "+".join(names),
            [summary.encode_png(to_uint8(picture)) for picture in display_images(pair)],
            layers=names,
            octaves=int(settings["octaves"]),
            octave_scale=float(settings["octave_scale"]),
            steps=int(settings["steps"]),
            lr=float(settings["lr"]),
            seed=int(settings["seed"]),
            size=[int(image.shape[-2]), int(image.shape[-1])],
            objective=[_finite_or_none(before), _finite_or_none(after)],
            gain=gain,
        )
    ]


def dream_objective(model: nn.Module, layers: Sequence[nn.Module], images: torch.Tensor) -> torch.Tensor:
    """Per image ``[N]``: what DeepDream maximises, ``sum_l ||a_l||_2 / sqrt(numel(a_l))`` over the
    outputs of ``layers`` (measured as ``analysis.dream`` measures them: each at its first call, no ReLU after).
    Eval mode, no gradient; modes, RNG and hooks restored."""
    from tb_cnnviz.analysis.layers import unwrap
    from tb_cnnviz.analysis.safety import safe_snapshot
    from tb_cnnviz.analysis.truncation import truncated_forward

    base = unwrap(model)
    parameter = next(base.parameters(), None)
    if parameter is not None and parameter.is_floating_point():
        # A half-precision model gets half-precision images, as in deep_dream.
        images = images.to(parameter.dtype)
    with safe_snapshot(base), torch.no_grad(), truncated_forward(base, list(layers)) as run:
        outputs = run(images)
    return sum(output.flatten(1).float().norm(dim=1) / output[0].numel() ** 0.5 for output in outputs)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
