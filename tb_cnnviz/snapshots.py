"""One function per summary kind: compute a snapshot with ``tb_cnnviz.analysis`` and turn it into summaries.

Shared by the training callback (which decides when each runs) and the ``tb-cnnviz``
command line (which runs them once on a trained model), so both write exactly the
same data for the plugin. Tensors stay on the model's device until encoded here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tb_cnnviz import metadata, summary
from tb_cnnviz.analysis.activations import activation_grids, layer_activations
from tb_cnnviz.analysis.kernels import kernel_grid, smoothness
from tb_cnnviz.analysis.layers import activation_point, resolve_layer

Layers = Sequence[tuple[str, nn.Module]]
MAX_CAM_SIDE = 64
ATTRIBUTION_METHODS = ("saliency", "guided_backprop", "occlusion")


def kernels(layers: Layers, normalization: str) -> list:
    """Raw weights, the normalised kernel grid PNG, per-filter smoothness and its layer mean, non-finite count."""
    summaries = []
    for name, conv in layers:
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


def activations(model: nn.Module, layers: Layers, images: torch.Tensor) -> list:
    """Per layer, one PNG of per-channel tiles per probe image."""
    outputs = layer_activations(model, [module for _, module in layers], images)
    summaries = []
    for (name, _), output in zip(layers, outputs):
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


def probe(images: torch.Tensor, labels: torch.Tensor | None, class_names: Sequence[str] | None) -> list:
    """The probe images themselves (logged once), with their labels and the class names."""
    pngs = [summary.encode_png(to_uint8(image)) for image in display_images(images)]
    return [
        summary.blob_summary(
            metadata.PROBE,
            None,
            pngs,
            labels=None if labels is None else [int(v) for v in labels],
            class_names=None if class_names is None else list(class_names),
        )
    ]


def dead_filters(
    layers: Layers, measured_at: Sequence[str], rates: Sequence[torch.Tensor | None], window: int
) -> list:
    """Per layer, the activation rate of every filter over the window, and the dead fraction as a scalar."""
    summaries = []
    for (name, _), point, rate in zip(layers, measured_at, rates):
        if rate is None:
            continue
        rate = rate.cpu().numpy()
        summaries += [
            summary.tensor_summary(metadata.DEAD_FILTERS, name, rate, window=window, measured_at=point),
            summary.scalar_summary("dead_fraction", name, float((rate == 0).mean())),
            summary.scalar_summary("nonfinite_filters", name, float(np.isnan(rate).sum())),
        ]
    return summaries


def gradcam(model: nn.Module, layers: Layers, images: torch.Tensor, labels: torch.Tensor | None) -> list:
    """Grad-CAM of the probe images for their labels (else the predicted class): overlays, raw maps, classes."""
    from tb_cnnviz.analysis.cam import grad_cam

    shown = display_images(images)
    target = None if labels is None else labels.to(images.device)
    summaries = []
    for name, layer in layers:
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


def attributions(
    model: nn.Module, methods: Sequence[str], images: torch.Tensor, labels: torch.Tensor | None
) -> list:
    """Optional attribution maps of the probe images (saliency, guided backprop, occlusion) as heat-map overlays."""
    from tb_cnnviz.analysis import attribution

    target = None if labels is None else labels.to(images.device)
    shown = display_images(images)
    summaries = []
    for method in methods:
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


def patterns(
    model: nn.Module,
    layers: Layers,
    channels: int,
    size: int,
    steps: int,
    in_channels: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> list:
    """A gallery per layer: the first ``channels`` filters' activation-maximising images, and the activation reached."""
    from tb_cnnviz.analysis.patterns import filter_patterns

    summaries = []
    for name, layer in layers:
        count = min(channels, _output_channels(layer))
        result = filter_patterns(
            model,
            layer,
            list(range(count)),
            size=size,
            steps=steps,
            in_channels=in_channels,
            mean=mean,
            std=std,
            seed=0,
            return_activations=True,
        )
        pngs = [summary.encode_png(to_uint8(image)) for image in result.images]
        summaries += [
            summary.blob_summary(
                metadata.PATTERNS, name, pngs, channels=list(result.targets), size=size, steps=steps
            ),
            summary.tensor_summary(metadata.PATTERN_VALUES, name, result.activations.float().cpu().numpy()),
        ]
    return summaries


def dream(
    model: nn.Module,
    layers: Layers,
    image: torch.Tensor,
    *,
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps: int = 10,
    lr: float = 0.01,
    seed: int = 0,
    progress: bool = False,
) -> tuple[list, torch.Tensor, tuple[float, float]]:
    """DeepDream of one image ``[C, H, W]`` in [0, 1] on ``layers`` (seed 001), and how much it amplified them.

    Returns ``(summaries, dreamed, (before, after))``: one ``dream`` summary ``[original PNG, dreamed PNG]``
    with the settings, the DeepDream objective ``L(x) = sum_l ||a_l(x)||_2 / sqrt(numel(a_l))``
    (Mordvintsev et al. 2015; see ``analysis.dream``) of the original (``before``) and of the dream
    (``after``), and the gain ``after / before`` (None when the layers are silent on the original).
    """
    from tb_cnnviz.analysis.dream import deep_dream

    modules = [module for _, module in layers]
    dreamed = deep_dream(
        model,
        image,
        modules,
        octaves=octaves,
        octave_scale=octave_scale,
        steps=steps,
        lr=lr,
        seed=seed,
        progress=progress,
    )
    before, after = (float(v) for v in dream_objective(model, modules, torch.stack([image, dreamed])))
    gain = after / before if before > 0 and math.isfinite(after / before) else None
    names = [name for name, _ in layers]
    shown = display_images(torch.stack([image, dreamed]))
    pngs = [summary.encode_png(to_uint8(picture)) for picture in shown]
    item = summary.blob_summary(
        metadata.DREAM,
        "+".join(names),
        pngs,
        layers=names,
        octaves=int(octaves),
        octave_scale=float(octave_scale),
        steps=int(steps),
        lr=float(lr),
        seed=int(seed),
        size=[int(image.shape[-2]), int(image.shape[-1])],
        objective=[_finite_or_none(before), _finite_or_none(after)],
        gain=gain,
    )
    return [item], dreamed, (before, after)


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
        images = images.to(
            parameter.dtype
        )  # a half-precision model gets half-precision images, as in deep_dream
    with safe_snapshot(base), torch.no_grad(), truncated_forward(base, list(layers)) as run:
        outputs = run(images)
    return sum(output.flatten(1).float().norm(dim=1) / output[0].numel() ** 0.5 for output in outputs)


@dataclasses.dataclass
class EmbeddingState:
    """What one embedding snapshot hands to the next (and to its caller).

    ``layout``: the last 2-D map, which the next map starts from and is aligned to, so clusters
    stay put between steps; ``codes``: the features of the last snapshot (for the Projector).
    """

    layout: np.ndarray | None = None
    codes: torch.Tensor | None = None


def embedding(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    state: EmbeddingState,
    layer=None,
    method: str = "tsne",
    top_layers: Layers = (),
    k: int = 9,
    class_names: Sequence[str] | None = None,
    batch_size: int = 256,
) -> list:
    """2-D projection of the codes of ``images`` (stable: started from and aligned to ``state.layout``)
    and the top-``k`` most activating images of every filter of ``top_layers``; updates ``state``."""
    from tb_cnnviz.analysis.features import default_feature_layer, extract_features
    from tb_cnnviz.analysis.projection import project
    from tb_cnnviz.analysis.safety import capture_outputs, safe_snapshot
    from tb_cnnviz.analysis.top_examples import TopExamples, receptive_field

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
            class_names=None if class_names is None else list(class_names),
        )
    ]
    if top_layers:
        device = next(model.parameters()).device
        trackers = [
            TopExamples(k, receptive_field(model, module, tuple(images.shape[1:])))
            for _, module in top_layers
        ]
        context, captured = capture_outputs([activation_point(model, module) for _, module in top_layers])
        with safe_snapshot(model), torch.no_grad(), context:
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size].to(device)
                model(batch)
                ids = torch.arange(start, start + len(batch), device=device)
                for tracker, output in zip(trackers, captured):
                    tracker.update(output, ids)
        for (name, _), tracker in zip(top_layers, trackers):
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
                    metadata.TOP_EXAMPLES,
                    name,
                    table.cpu().numpy(),
                    k=k,
                    image_size=[int(images.shape[-2]), int(images.shape[-1])],
                )
            )
    return summaries


def sprites(images: torch.Tensor, thumb: int = 32, max_side: int = 8192) -> list:
    """Thumbnails of ``images`` packed row-major into atlases of at most ``max_side`` px a side (one summary)."""
    shown = display_images(images)
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


class Logits(nn.Module):
    """``model`` followed by ``select`` (e.g. the first element of a tuple output): class scores for Grad-CAM."""

    def __init__(self, model: nn.Module, select):
        super().__init__()
        self.model = model
        self.select = select

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.select(self.model(images))


def default_logits(output):
    """The class scores in a model output: the output itself, a tuple's first element, or a dict's ``logits``/``out``."""
    if isinstance(output, (tuple, list)) and output:
        return output[0]
    if isinstance(output, dict):
        for key in ("logits", "out"):
            if key in output:
                return output[key]
        raise ValueError(
            f"logits: the model returns a dict with keys {sorted(map(str, output))}; pass logits=lambda out: out[KEY]"
        )
    return output


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
