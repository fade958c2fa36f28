"""The ``embedding`` snapshot (a stable 2-D map of the codes, each filter's top images) and the sprites
that show its points."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tb_cnnviz import metadata, summary
from tb_cnnviz.analysis.layers import activation_point, model_device, resolve_layer
from tb_cnnviz.snapshots import shared_pass
from tb_cnnviz.snapshots.images import display_images, to_uint8
from tb_cnnviz.snapshots.inputs import Inputs, Layers


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
    shared = shared_pass.take(model, images) if layer is None else None  # the separability pass's
    features, outputs = (
        (shared.codes, shared.outputs)
        if shared is not None
        else extract_features(model, images, layer, batch_size=batch_size, to_cpu=True, return_outputs=True)
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


ATLAS_THUMBS = 1024
"""Thumbnails per sprite atlas: the Embedding view loads an atlas when one of its thumbnails is first shown
(hover), so 50,000 images are 49 atlases of about 1-3 MB (32 px natural images) loaded one at a time, not
one 8192 x 6272 px picture of 200 MB decoded loaded at once. Runs written before keep their larger atlases;
the readers take any ``counts``."""


def sprites(inputs: Inputs, thumb: int = 32, max_side: int = 8192, per_atlas: int = ATLAS_THUMBS) -> list:
    """Thumbnails of ``images`` packed row-major into atlases of at most ``max_side`` px a side and
    ``per_atlas`` thumbnails (one summary)."""
    shown = display_images(inputs.images)
    image_size = [int(shown.shape[-2]), int(shown.shape[-1])]
    if max(shown.shape[-2:]) > thumb:
        shown = F.interpolate(shown, size=(thumb, thumb), mode="area")
    height, width = shown.shape[-2:]
    columns = max(1, max_side // width)
    per_atlas = max(1, min(int(per_atlas), columns * max(1, max_side // height)))
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
