"""Filter-pattern galleries and class-model images by activation maximisation.

``filter_patterns`` finds, for every requested channel k of a layer, an input image
x_k that maximises the channel's mean activation::

    x_k = argmax_x  mean_{i,j} a_k(T(x))[i, j]

(Erhan et al. 2009, "Visualizing Higher-Layer Features of a Deep Network";
Chollet, "Deep Learning with Python" 5.4.2), where ``T`` is a random transform drawn
each step. ``class_patterns`` maximises a class logit instead (Simonyan et al. 2014,
"Deep Inside Convolutional Networks", class model visualisation; sources in docs/design.md).

What makes it fast: all requested channels are optimised together, one image per
channel, with the objective ``sum_k mean a_k(x_k)``. Images do not interact (the model
runs in eval mode, so BatchNorm uses running statistics), hence the gradient of the
sum with respect to x_k is exactly the gradient of image k's own objective, and one
batched forward/backward replaces K sequential ones. The network is truncated after
the target layer (``truncation.truncated_forward``), parameters are frozen so the
backward computes input gradients only, and channels are split into chunks that fit
a memory budget.

What makes it look good (``param="fourier"``, the default): the decorrelated-colour
Fourier parametrisation with a 1/f spectrum, random pad/jitter/scale/rotation every
step and Adam (Olah et al., "Feature Visualization", Distill 2017).
``param="pixel"`` keeps Chollet's plain pixel gradient ascent with an RMS-normalised
gradient, ``x += lr * g / sqrt(mean(g^2))`` (per image), for comparison.

Determinism and batching invariance: every image has its own ``torch.Generator``
seeded from ``(seed, channel)``; its initialisation and all its random transforms come
from that generator alone, so channel c gives the same pattern whether it is rendered
alone, in a chunk or with all channels, and no global random state is used.

Thread use: these are pure functions of the model's weights and the arguments. To run
them in a background thread during training, pass a *copy* of the model (eval mode is
set on the model passed in, so the live model must not be used concurrently). The
global RNG guard (``safety.preserved_rng``) is applied only on the main thread:
restoring process-wide RNG state from a worker thread would rewind the training
thread's random stream; nothing here draws from it anyway.

The argument checks and ``RenderSettings`` live in ``pattern_settings``, the optimisation loop in
``pattern_optimisation``; their public names are re-exported here.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from tb_cnnviz.analysis.layers import LayerSpec, activation_point, model_device, resolve_layer, unwrap
from tb_cnnviz.analysis.pattern_optimisation import optimise_images, unit_objective
from tb_cnnviz.analysis.pattern_settings import (
    CLASS_DEFAULT_LR,
    DEFAULT_LR,
    DEFAULT_MEMORY_BUDGET,
    Param,
    RenderSettings,
    Size,
    TransformsSpec,
    analysis_context,
    check_device,
    check_normalisation,
    check_size,
    check_targets,
    chunk_size,
    image_seed,
    infer_in_channels,
    model_dtype,
    render_settings,
)
from tb_cnnviz.analysis.truncation import activation_bytes, truncated_forward

__all__ = [
    "CLASS_DEFAULT_LR",
    "DEFAULT_LR",
    "DEFAULT_MEMORY_BUDGET",
    "Param",
    "PatternResult",
    "RenderSettings",
    "Size",
    "TransformsSpec",
    "analysis_context",
    "check_device",
    "check_normalisation",
    "check_size",
    "check_targets",
    "chunk_size",
    "class_patterns",
    "filter_patterns",
    "image_seed",
    "infer_in_channels",
    "model_dtype",
    "optimise_images",
    "unit_activations",
    "render_settings",
    "unit_objective",
]

# The keyword arguments of filter_patterns and class_patterns that go to render_settings unchanged.
_SETTINGS = tuple(inspect.signature(render_settings).parameters)[1:]

Run = Callable[[torch.Tensor], list[torch.Tensor]]


@dataclass
class PatternResult:
    """Optimised images and the activation each reached (measured on the final, untransformed image).

    ``images`` [K, C, H, W] in [0, 1]; ``activations`` [K]: mean activation of channel
    ``targets[k]`` (or the logit of class ``targets[k]``) on ``images[k]``.
    """

    images: torch.Tensor
    activations: torch.Tensor
    targets: list[int]
    layer: str
    param: str = "fourier"
    steps: int = 0


def _render(
    model: nn.Module,
    forward: contextlib.AbstractContextManager[Run],
    options: dict,
    *,
    layer: str,
    argument: str,
    requested: Sequence[int] | int | None,
    what: str,
    check_output: Callable[[torch.Tensor], None],
    default_lr: dict[str, float],
    return_activations: bool,
) -> torch.Tensor | PatternResult:
    """What ``filter_patterns`` and ``class_patterns`` share: settings, a probe forward that sizes the
    targets and the chunks, and the optimisation of one image per target under ``analysis_context``.

    ``forward`` yields ``run(x) -> [output]``; it is entered inside the analysis context, so
    settings and probes are normal tensors even under a caller's ``inference_mode``.
    """
    base = unwrap(model)
    if options["lr"] is None and isinstance(options["param"], str):
        options["lr"] = default_lr.get(options["param"])
    with analysis_context(base), forward as run:
        settings = render_settings(model, **options)
        probe = settings.probe()
        with torch.no_grad():
            output = run(probe)[0]
        check_output(output)
        targets = check_targets(argument, requested, output.shape[1], what)
        chunk = chunk_size(settings, activation_bytes(base, run, probe), len(targets))
        images, values = optimise_images(
            lambda x, index: unit_objective(run(x)[0], index), targets, settings, chunk
        )
    if not return_activations:
        return images
    return PatternResult(
        images=images,
        activations=values,
        targets=targets,
        layer=layer,
        param=settings.param,
        steps=settings.steps,
    )


def filter_patterns(
    model: nn.Module,
    layer: LayerSpec,
    channels: Sequence[int] | int | None = None,
    *,
    size: Size = 64,
    steps: int = 128,
    param: Param = "fourier",
    transforms: TransformsSpec = "auto",
    lr: float | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    in_channels: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    return_activations: bool = False,
) -> torch.Tensor | PatternResult:
    """One image per channel of ``layer`` that maximises that channel's mean activation, [K, C, H, W] in [0, 1].

    - ``layer``: a dotted name or module. A Conv2d directly followed by a BatchNorm is
      measured after the BatchNorm (``layers.activation_point``), i.e. what the next
      ReLU sees; otherwise the module's own output ([B, C, H, W] or [B, F]).
    - ``channels``: indices to render (default: all), each image seeded from ``(seed, channel)``.
    - ``param``: ``"fourier"`` (decorrelated colour, 1/f spectrum, Adam, ``lr`` 0.15) or
      ``"pixel"`` (Chollet: RMS-normalised gradient ascent on pixels, ``lr`` 0.01 per step).
    - ``transforms``: ``"auto"`` = ``RandomTransforms.standard(size)`` for Fourier and none
      for pixel; ``"standard"``, ``None``/``"none"`` or a ``RandomTransforms``.
    - ``mean``/``std``: the model's input normalisation (images are optimised in [0, 1]
      and fed as ``(x - mean) / std``); default identity.
    - ``in_channels``: input channel count, inferred from the first Conv2d (1 gives grayscale patterns).
    - ``batch_size``: images per chunk; default: as many as fit ``memory_budget`` bytes.
    - ``return_activations=True`` returns a ``PatternResult`` with the activation each pattern reached.

    Results stay on the model's device; an explicit ``device`` must match it.
    """
    options = {name: value for name, value in locals().items() if name in _SETTINGS}
    base = unwrap(model)
    name, module = resolve_layer(base, layer, conv_only=False)
    measured = activation_point(base, module) if isinstance(module, nn.Conv2d) else module

    def check_output(output: torch.Tensor) -> None:
        if output.dim() < 2:
            raise ValueError(
                f"layer: {name!r} produces outputs of shape {tuple(output.shape)}; expected [B, C, ...]"
            )

    return _render(
        model,
        truncated_forward(base, [measured], [name]),
        options,
        layer=name,
        argument="channels",
        requested=channels,
        what="channel",
        check_output=check_output,
        default_lr=DEFAULT_LR,
        return_activations=return_activations,
    )


def unit_activations(model: nn.Module, layer: LayerSpec, images: torch.Tensor) -> torch.Tensor:
    """``[N, C]``: the mean activation of each channel of ``layer`` on each of ``images`` (model inputs, as
    fed to the model), measured where ``filter_patterns`` measures it. The best of natural images is the
    yardstick of a pattern: an optimised image that drives its filter less has failed.
    Eval mode, no gradient; modes, RNG and hooks restored."""
    base = unwrap(model)
    name, module = resolve_layer(base, layer, conv_only=False)
    measured = activation_point(base, module) if isinstance(module, nn.Conv2d) else module
    with analysis_context(base), torch.no_grad(), truncated_forward(base, [measured], [name]) as run:
        output = run(images.to(model_device(base), model_dtype(base)))[0]
    return output.flatten(2).mean(dim=2) if output.dim() > 2 else output


def class_patterns(
    model: nn.Module,
    classes: Sequence[int] | int | None = None,
    *,
    size: Size = 64,
    steps: int = 128,
    param: Param = "fourier",
    transforms: TransformsSpec = "auto",
    lr: float | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    in_channels: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    return_activations: bool = False,
) -> torch.Tensor | PatternResult:
    """One image per class that maximises the class logit (not the softmax, which can grow by
    suppressing the other classes): Simonyan et al. 2014 class model visualisation.

    The model's output must be [B, num_classes] (a tuple's first element is used). The default
    Fourier ``lr`` is 0.1 (``CLASS_DEFAULT_LR``), below the filter-pattern default (0.15).
    Same arguments and guarantees as ``filter_patterns``; image k is seeded from
    ``(seed, classes[k])`` and ``PatternResult.activations`` holds the logits reached.
    """
    options = {name: value for name, value in locals().items() if name in _SETTINGS}
    base = unwrap(model)

    def run(x: torch.Tensor) -> list[torch.Tensor]:
        output = base(x)
        output = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"model: expected the forward to return logits as a tensor, got {type(output).__name__}"
            )
        return [output]

    def check_output(logits: torch.Tensor) -> None:
        if logits.dim() != 2:
            raise ValueError(f"model: expected logits of shape [B, num_classes], got {tuple(logits.shape)}")

    return _render(
        model,
        contextlib.nullcontext(run),
        options,
        layer="logits",
        argument="classes",
        requested=classes,
        what="class",
        check_output=check_output,
        default_lr=CLASS_DEFAULT_LR,
        return_activations=return_activations,
    )
