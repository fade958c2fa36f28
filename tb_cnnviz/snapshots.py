"""One function per snapshot of ``kinds.SNAPSHOTS`` (and per summary written once per run, ``probe`` and
``sprites``): compute it with ``tb_cnnviz.analysis`` and turn it into a list of summaries.

Shared by the training callback (which decides when each runs) and the ``tb-cnnviz``
command line (which runs them once on a trained model), so both write exactly the
same data for the plugin. Every such function takes one :class:`Inputs`, so the callback
calls each kind alike (``getattr(snapshots, name)(inputs)``) and a new kind needs no
edit there. Tensors stay on the model's device until encoded here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tb_cnnviz import metadata, summary
from tb_cnnviz.analysis.activations import activation_grids, layer_activations
from tb_cnnviz.analysis.kernels import kernel_grid, smoothness
from tb_cnnviz.analysis.layers import activation_point, model_device, resolve_layer
from tb_cnnviz.snapshot_inputs import (  # noqa: F401 (re-exported: snapshots.Inputs(...), snapshots.EmbeddingState())
    EmbeddingState,
    FilterRates,
    Inputs,
    Layers,
    new_state,
)

MAX_CAM_SIDE = 64
ATTRIBUTION_METHODS = ("saliency", "guided_backprop", "occlusion")


def kernels(inputs: Inputs) -> list:
    """Raw weights, the normalised kernel grid PNG, per-filter smoothness and its layer mean, non-finite count.

    Settings: ``normalization`` (``"global"`` or ``"per_filter"``)."""
    normalization = inputs.settings["normalization"]
    summaries = []
    for name, conv in inputs.layers:
        weight = conv.weight.detach()
        grid, nrow = kernel_grid(weight, normalization)
        scores = smoothness(weight).cpu().numpy()
        raw = weight.float().cpu().numpy()
        summaries += [
            summary.tensor_summary(metadata.KERNELS, name, raw),
            summary.blob_summary(
                metadata.KERNEL_GRID,
                name,
                [summary.encode_png(to_uint8(grid))],
                normalization=normalization,
                nrow=nrow,
                padding=1,
            ),
            summary.tensor_summary(metadata.SMOOTHNESS, name, scores),
            summary.scalar_summary(
                "smoothness", name, float(np.nanmean(scores)) if np.isfinite(scores).any() else math.nan
            ),
            summary.scalar_summary("nonfinite_weights", name, float((~np.isfinite(raw)).sum())),
        ]
    return summaries


def activations(inputs: Inputs) -> list:
    """Per layer, one PNG of per-channel tiles per probe image."""
    outputs = layer_activations(inputs.model, [module for _, module in inputs.layers], inputs.images)
    summaries = []
    for (name, _), output in zip(inputs.layers, outputs):
        grids, nrow = activation_grids(output)
        summaries.append(
            summary.blob_summary(
                metadata.ACTIVATIONS,
                name,
                [summary.encode_png(to_uint8(grid)) for grid in grids],
                channels=int(output.shape[1]),
                nrow=nrow,
                padding=1,
                tile=[int(output.shape[2]), int(output.shape[3])],
            )
        )
    return summaries


def probe(inputs: Inputs) -> list:
    """The probe images themselves (logged once), with their labels and the class names."""
    pngs = [summary.encode_png(to_uint8(image)) for image in display_images(inputs.images)]
    labels, class_names = inputs.labels, inputs.class_names
    return [
        summary.blob_summary(
            metadata.PROBE,
            None,
            pngs,
            labels=None if labels is None else [int(v) for v in labels],
            class_names=None if class_names is None else list(class_names),
        )
    ]


def dead_filters(inputs: Inputs) -> list:
    """Per layer, the activation rate of every filter over the window (``state``: :class:`FilterRates`),
    and the dead fraction as a scalar."""
    measured: FilterRates = inputs.state
    # "dead over the window" means "dead on every counted batch": each layer says how many were counted
    sample = np.array([measured.batches, measured.forwards, measured.count_every], dtype=np.float32)
    summaries = []
    for (name, _), point, rate in zip(inputs.layers, measured.measured_at, measured.rates):
        if rate is None:
            continue
        rate = rate.cpu().numpy()
        summaries += [
            summary.tensor_summary(
                metadata.DEAD_FILTERS, name, rate, window=measured.window, measured_at=point
            ),
            summary.tensor_summary(metadata.DEAD_FILTER_SAMPLE, name, sample),
            summary.scalar_summary("dead_fraction", name, float((rate == 0).mean())),
            summary.scalar_summary("nonfinite_filters", name, float(np.isnan(rate).sum())),
        ]
    return summaries


def gradcam(inputs: Inputs) -> list:
    """Grad-CAM of the probe images for their labels (else the predicted class): overlays, raw maps, classes."""
    from tb_cnnviz.analysis.cam import grad_cam

    model, images, target = inputs.scores_model(), inputs.images, inputs.target()
    shown = display_images(images)
    summaries = []
    for name, layer in inputs.layers:
        result = grad_cam(model, layer, images, target, normalize="none", return_details=True)
        display = _per_image_unit(result.cam)
        overlays = [
            summary.encode_png(summary.heatmap_overlay(to_uint8(image), heat.cpu().numpy()))
            for image, heat in zip(shown, display)
        ]
        raw = result.cam
        if max(raw.shape[-2:]) > MAX_CAM_SIDE:  # keep event files small: the CAM is coarse anyway
            raw = F.adaptive_avg_pool2d(raw[:, None], MAX_CAM_SIDE)[:, 0]
        info = torch.stack(
            [
                _or_minus_one(result.target, raw),
                _or_minus_one(result.predicted, raw),
                _or_minus_one(result.probability, raw),
                _or_minus_one(result.target_probability, raw),
            ],
            dim=1,
        )
        summaries += [
            summary.blob_summary(metadata.GRADCAM, name, overlays, colormap="jet"),
            summary.tensor_summary(metadata.GRADCAM_MAPS, name, raw.float().cpu().numpy()),
            summary.tensor_summary(
                metadata.GRADCAM_INFO,
                name,
                info.float().cpu().numpy(),
                columns=["target", "predicted", "probability", "target_probability"],
            ),
        ]
    return summaries


def attributions(inputs: Inputs) -> list:
    """Optional attribution maps of the probe images as heat-map overlays, one ``attribution`` series per method.

    Settings: ``methods``, any of :data:`ATTRIBUTION_METHODS`."""
    from tb_cnnviz.analysis import attribution

    model, images, target = inputs.scores_model(), inputs.images, inputs.target()
    shown = display_images(images)
    summaries = []
    for method in inputs.settings["methods"]:
        if method == "saliency":
            maps = attribution.saliency(model, images, target)
        elif method == "guided_backprop":
            maps = attribution.guided_backprop(model, images, target).abs().amax(dim=1)
        else:  # occlusion: low probability where the occluder hurts; show the drop
            window = max(2, min(images.shape[-2:]) // 4)
            probability = attribution.occlusion(
                model, images, target, window=window, stride=max(1, window // 2)
            )
            drop = (probability.amax(dim=(1, 2), keepdim=True) - probability)[:, None]
            maps = F.interpolate(drop, size=images.shape[-2:], mode="nearest")[:, 0]
        display = _per_image_unit(maps)
        pngs = [
            summary.encode_png(
                summary.heatmap_overlay(to_uint8(image), heat.cpu().numpy(), colormap="inferno")
            )
            for image, heat in zip(shown, display)
        ]
        summaries.append(summary.blob_summary(metadata.ATTRIBUTION, method, pngs, method=method))
    return summaries


def patterns(inputs: Inputs) -> list:
    """A gallery per layer: the first ``channels`` filters' activation-maximising images, and the activation reached.

    Settings: ``channels``, ``size`` (px), ``steps`` (Adam steps), ``in_channels``, ``mean`` and ``std``
    (the model's input normalisation, or None)."""
    from tb_cnnviz.analysis.patterns import filter_patterns

    settings = inputs.settings
    size, steps = settings["size"], settings["steps"]
    summaries = []
    for name, layer in inputs.layers:
        count = min(settings["channels"], _output_channels(layer))
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


def embedding(inputs: Inputs) -> list:
    """2-D projection of the codes of ``images`` (stable: started from and aligned to ``state.layout``, an
    :class:`EmbeddingState` it updates) and the top-``k`` most activating images of every filter of ``layers``.

    Settings: ``layer`` (whose input are the codes; None: the last linear layer's), ``method``
    (``"tsne"``, ``"pca"``, ``"umap"``), ``k``, and optionally ``batch_size`` (default 256)."""
    from tb_cnnviz.analysis.features import default_feature_layer, extract_features
    from tb_cnnviz.analysis.projection import project

    model, images, labels, state = inputs.model, inputs.images, inputs.labels, inputs.state
    layer, method = inputs.settings["layer"], inputs.settings["method"]
    batch_size = inputs.settings.get("batch_size", 256)
    features, outputs = extract_features(
        model, images, layer, batch_size=batch_size, to_cpu=True, return_outputs=True
    )
    layout = project(features.numpy(), method, previous=state.layout)
    state.layout, state.codes = layout, features
    predicted = outputs.float().argmax(dim=1).numpy() if outputs.dim() == 2 else np.full(len(layout), -1)
    feature_layer = (
        default_feature_layer(model)[0] if layer is None else resolve_layer(model, layer, conv_only=False)[0]
    )
    points = np.concatenate([layout, predicted[:, None].astype(np.float32)], axis=1)
    summaries = [
        summary.tensor_summary(
            metadata.EMBEDDING,
            feature_layer,
            points,
            method=method,
            labels=None if labels is None else [int(v) for v in labels],
            class_names=None if inputs.class_names is None else list(inputs.class_names),
        )
    ]
    return summaries + _top_examples(model, inputs.layers, images, inputs.settings["k"], batch_size)


def _top_examples(model: nn.Module, layers: Layers, images: torch.Tensor, k: int, batch_size: int) -> list:
    """Per layer, each filter's ``k`` most activating images with the receptive field of the maximum."""
    from tb_cnnviz.analysis.safety import capture_outputs, safe_snapshot
    from tb_cnnviz.analysis.top_examples import TopExamples, receptive_field

    if not layers:
        return []
    device = model_device(model)
    trackers = [
        TopExamples(k, receptive_field(model, module, tuple(images.shape[1:]))) for _, module in layers
    ]
    context, captured = capture_outputs([activation_point(model, module) for _, module in layers])
    with safe_snapshot(model), torch.no_grad(), context:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)
            model(batch)
            ids = torch.arange(start, start + len(batch), device=device)
            for tracker, output in zip(trackers, captured):
                tracker.update(output, ids)
    image_size = [int(images.shape[-2]), int(images.shape[-1])]
    summaries = []
    for (name, _), tracker in zip(layers, trackers):
        table = torch.cat(
            [
                tracker.image_ids[..., None].float(),
                torch.nan_to_num(tracker.values, neginf=0.0)[..., None].float(),
                tracker.boxes(tuple(images.shape[-2:])).float(),
            ],
            dim=-1,
        )
        summaries.append(
            summary.tensor_summary(
                metadata.TOP_EXAMPLES, name, table.cpu().numpy(), k=k, image_size=image_size
            )
        )
    return summaries


def sprites(inputs: Inputs, thumb: int = 32, max_side: int = 8192) -> list:
    """Thumbnails of ``images`` packed row-major into atlases of at most ``max_side`` px a side (one summary)."""
    shown = display_images(inputs.images)
    image_size = [int(shown.shape[-2]), int(shown.shape[-1])]
    if max(shown.shape[-2:]) > thumb:
        shown = F.interpolate(shown, size=(thumb, thumb), mode="area")
    height, width = shown.shape[-2:]
    columns = max(1, max_side // width)
    per_atlas = columns * max(1, max_side // height)
    pngs, counts = [], []
    for start in range(0, len(shown), per_atlas):
        chunk = shown[start : start + per_atlas]
        rows = -(-len(chunk) // columns)
        atlas = torch.zeros(shown.shape[1], rows * height, min(columns, len(chunk)) * width)
        for index, image in enumerate(chunk):
            row, column = divmod(index, columns)
            atlas[:, row * height : (row + 1) * height, column * width : (column + 1) * width] = image
        pngs.append(summary.encode_png(to_uint8(atlas)))
        counts.append(len(chunk))
    return [
        summary.blob_summary(
            metadata.SPRITES,
            None,
            pngs,
            thumb=[int(height), int(width)],
            columns=columns,
            counts=counts,
            image_size=image_size,
        )
    ]


# ---------------------------------------------------------------------- helpers
def _output_channels(layer: nn.Module) -> int:
    for attribute in ("out_channels", "num_features", "out_features"):
        if hasattr(layer, attribute):
            return int(getattr(layer, attribute))
    raise ValueError(
        f"pattern_layers: cannot tell how many channels {type(layer).__name__} produces; use a conv layer"
    )


def display_images(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] for display: normalised inputs (outside [0, 1]) are min-max stretched;
    inputs with other than 1 or 3 channels are shown as the grey mean of their channels."""
    images = images.detach().float()
    if images.shape[1] not in (1, 3):
        images = images.mean(dim=1, keepdim=True)
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        images = (images - low) / max(high - low, 1e-12)
    return images


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[C, H, W] or [H, W] float in [0, 1] -> uint8 HWC numpy for PNG encoding."""
    image = image.detach().float().clamp(0, 1).mul(255).add(0.5).to(torch.uint8).cpu()
    return (image.permute(1, 2, 0) if image.dim() == 3 else image).numpy()


def _per_image_unit(maps: torch.Tensor) -> torch.Tensor:
    maps = torch.nan_to_num(maps.detach().float())
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def _or_minus_one(values: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    if values is None:
        return torch.full((like.shape[0],), -1.0, device=like.device)
    return values.detach().float().to(like.device)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
