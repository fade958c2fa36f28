"""Snapshots of what the network does to the probe images: the images themselves, activations, Grad-CAM
and attributions."""

from __future__ import annotations

import io
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tb_cnnviz import metadata, summary
from tb_cnnviz.analysis.activations import activation_tiles, layer_activations
from tb_cnnviz.snapshots.images import display_images, per_image_unit, to_uint8
from tb_cnnviz.snapshots.inputs import Inputs

MAX_CAM_SIDE = 64
# the raw CAMs of each probe image's predicted class, written when the maps explain the labels (issue #16)
GRADCAM_PREDICTED_MAPS = "gradcam_predicted_maps"
# grey levels of an activation tile: a value v in [0, 1] is stored as round(round(v * 127) * 255 / 127), so 0
# and the channel's peak stay exactly 0 and 255 and every pixel / 255 is within 0.5 / 127 of v. Measured on
# ResNet-50 at 224 px (random init, docs/robustness.md): with zlib's run-length strategy 473 KB per
# snapshot's PNGs instead of 589 KB (256 levels, level 1), in 20 ms instead of 28 ms of CPU
ACTIVATION_LEVELS = 128
ATTRIBUTION_METHODS = ("saliency", "guided_backprop", "occlusion")


def activations(inputs: Inputs) -> list:
    """Per layer, one PNG of per-channel tiles per probe image, bounded in size (``activation_tiles``):
    ``channels`` and ``map_size`` describe the layer, ``channels_shown``, ``tile`` and ``factor``
    the tiles (tile ``i`` is channel ``channels_shown[i]``, area-downsampled by ``factor``), ``levels``
    the grey levels a tile's values are rounded to (:data:`ACTIVATION_LEVELS`; absent: 256)."""
    outputs = layer_activations(inputs.model, [module for _, module in inputs.layers], inputs.images)
    summaries = []
    for (name, _), output in zip(inputs.layers, outputs):
        tiles = activation_tiles(output)
        summaries.append(
            summary.blob_summary(
                metadata.ACTIVATIONS,
                name,
                [grey_png(grid, ACTIVATION_LEVELS) for grid in tiles.grids],
                channels=int(output.shape[1]),
                nrow=tiles.nrow,
                padding=1,
                tile=tiles.tile,
                map_size=[int(output.shape[2]), int(output.shape[3])],
                channels_shown=tiles.channels_shown,
                factor=tiles.factor,
                levels=ACTIVATION_LEVELS,
            )
        )
    return summaries


def grey_levels(grid: torch.Tensor, levels: int) -> np.ndarray:
    """A ``[H, W]`` grid of values in [0, 1] as uint8 grey with ``levels`` levels: ``round(k * 255 / (levels - 1))``
    for ``k = round(v * (levels - 1))``."""
    steps = grid.detach().float().clamp(0, 1).mul(levels - 1).round()
    return steps.mul(255 / (levels - 1)).round().to(torch.uint8).cpu().numpy()


def grey_png(grid: torch.Tensor, levels: int) -> bytes:
    """PNG of :func:`grey_levels`, deflated with zlib's run-length strategy (smaller and faster than level 1 on
    these tiles; lossless either way)."""
    buffer = io.BytesIO()
    Image.fromarray(grey_levels(grid, levels)).save(buffer, format="PNG", compress_type=zlib.Z_RLE)
    return buffer.getvalue()


def probe(inputs: Inputs) -> list:
    """The probe images themselves (logged once), with their labels, the class names and, when the setting
    ``names`` is given (the CLI: file names), one name per image."""
    pngs = [summary.encode_png(to_uint8(image)) for image in display_images(inputs.images)]
    labels, class_names = inputs.labels, inputs.class_names
    return [
        summary.blob_summary(
            metadata.PROBE,
            None,
            pngs,
            labels=None if labels is None else [int(v) for v in labels],
            class_names=None if class_names is None else list(class_names),
            names=[str(name) for name in inputs.settings["names"]] if "names" in inputs.settings else None,
        )
    ]


def gradcam(inputs: Inputs) -> list:
    """Grad-CAM of the probe images for their labels (else the predicted class): raw maps at the layer's
    resolution (at most ``MAX_CAM_SIDE``) and classes. A dense output ``[N, classes, H, W]`` is explained by
    the mean score of the class over the pixels where it is predicted (``analysis.cam``).

    With labels, the maps of each image's predicted class too (``gradcam_predicted_maps``: the view's "explain
    the predicted class"), from the same forward pass (a second gradient from the scores to the layer).

    Settings: ``overlays`` (default False): also write the overlay PNGs (``gradcam``), as the command line
    does for its ``--out`` files. The callback writes none (about 30 KB per probe image at 224 px): the view
    draws each overlay from the raw map and the probe image as the PNG was made: upsampled bilinearly to the
    image's size (half-pixel centres, as ``grad_cam``), stretched per image from its minimum to its peak,
    coloured jet and blended at 0.5 over the image."""
    from tb_cnnviz.analysis.cam import grad_cam

    model, images, target = inputs.scores_model(), inputs.images, inputs.target()
    overlays = bool(inputs.settings.get("overlays", False))
    shown = display_images(images) if overlays else None
    summaries = []
    for name, layer in inputs.layers:
        result = grad_cam(
            model,
            layer,
            images,
            target,
            normalize="none",
            return_details=True,
            predicted_too=target is not None,
        )
        if overlays:
            pngs = [
                summary.encode_png(summary.heatmap_overlay(to_uint8(image), heat.cpu().numpy()))
                for image, heat in zip(shown, per_image_unit(result.cam))
            ]
            summaries.append(summary.blob_summary(metadata.GRADCAM, name, pngs, colormap="jet"))
        # stored at the layer's resolution (a 7 x 7 CAM is 49 floats, not the input's 50,176): the views
        # upsample it when drawing
        raw = _stored_map(result.native)
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
            summary.tensor_summary(metadata.GRADCAM_MAPS, name, raw.float().cpu().numpy()),
            summary.tensor_summary(
                metadata.GRADCAM_INFO,
                name,
                info.float().cpu().numpy(),
                columns=["target", "predicted", "probability", "target_probability"],
            ),
        ]
        predicted = None if target is None else _predicted_class_maps(result, raw)
        if predicted is not None:
            summaries.append(
                summary.tensor_summary(GRADCAM_PREDICTED_MAPS, name, predicted.float().cpu().numpy())
            )
    return summaries


def _stored_map(native: torch.Tensor) -> torch.Tensor:
    """A CAM ``[N, h, w]`` as stored: the layer's resolution, area-pooled to ``MAX_CAM_SIDE`` when larger."""
    if max(native.shape[-2:]) > MAX_CAM_SIDE:  # an early layer's map: keep event files small
        return F.adaptive_avg_pool2d(native[:, None], MAX_CAM_SIDE)[:, 0]
    return native


def _predicted_class_maps(result, stored: torch.Tensor) -> torch.Tensor | None:
    """``[N, h, w]``: each image's CAM of its predicted class (``grad_cam(..., predicted_too=True)``: the same
    forward pass), stored as ``stored`` is; exactly the explained class's map where the two agree. None when the
    model's output has no predicted class."""
    if result.predicted_native is None or result.predicted is None or result.target is None:
        return None
    differ = (result.predicted.to(result.target.device) != result.target).to(stored.device)
    predicted = _stored_map(result.predicted_native).to(stored.dtype)
    return torch.where(differ[:, None, None], predicted, stored)


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
        display = per_image_unit(maps)
        pngs = [
            summary.encode_png(
                summary.heatmap_overlay(to_uint8(image), heat.cpu().numpy(), colormap="inferno")
            )
            for image, heat in zip(shown, display)
        ]
        summaries.append(summary.blob_summary(metadata.ATTRIBUTION, method, pngs, method=method))
    return summaries


def _or_minus_one(values: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    if values is None:
        return torch.full((like.shape[0],), -1.0, device=like.device)
    return values.detach().float().to(like.device)
