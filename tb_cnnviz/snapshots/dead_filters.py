"""The ``dead_filters`` snapshot: the activation rates counted over a window, as logged series."""

from __future__ import annotations

import numpy as np

from tb_cnnviz import metadata, summary
from tb_cnnviz.snapshots.inputs import FilterRates, Inputs


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
