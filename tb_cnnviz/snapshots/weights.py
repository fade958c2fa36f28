"""The ``kernels`` snapshot: what the conv layers' weights look like."""

from __future__ import annotations

import math

import numpy as np

from tb_cnnviz import metadata, summary
from tb_cnnviz.analysis.kernels import kernel_grid, smoothness
from tb_cnnviz.snapshots.images import to_uint8
from tb_cnnviz.snapshots.inputs import Inputs
from tb_cnnviz.snapshots.precision import half_summary


def kernels(inputs: Inputs) -> list:
    """Raw weights (float16, ``snapshots.precision``: the view renormalises them to 8-bit grey), the
    normalised kernel grid PNG, per-filter smoothness and its layer mean (from the float32 weights), and
    the non-finite count.

    Settings: ``normalization`` (``"global"`` or ``"per_filter"``)."""
    normalization = inputs.settings["normalization"]
    summaries = []
    for name, conv in inputs.layers:
        weight = conv.weight.detach()
        grid, nrow = kernel_grid(weight, normalization)
        scores = smoothness(weight).cpu().numpy()
        raw = weight.float().cpu().numpy()
        summaries += [
            half_summary(metadata.KERNELS, name, raw),
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
