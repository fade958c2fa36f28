"""The ``dead_filters`` snapshot: the activation rates counted over a window, as logged series."""

from __future__ import annotations

import numpy as np

from tb_cnnviz import metadata, summary
from tb_cnnviz.snapshots.inputs import FilterRates, Inputs


def dead_filters(inputs: Inputs) -> list:
    """Per layer, the activation rate of every filter over the window (``state``: :class:`FilterRates`),
    with what was measured and where (``semantics``, ``measured_at``), and the dead fraction as a scalar
    for the layers where a rate of 0 means dead or inactive (``relu``/``smooth``)."""
    measured: FilterRates = inputs.state
    # "dead over the window" means "dead on every counted batch": each layer says how many were counted
    sample = np.array([measured.batches, measured.forwards, measured.count_every], dtype=np.float32)
    summaries = []
    semantics = list(measured.semantics) or ["relu"] * len(measured.rates)
    for (name, _), point, meaning, rate in zip(
        inputs.layers, measured.measured_at, semantics, measured.rates
    ):
        if rate is None:
            continue
        rate = rate.cpu().numpy()
        summaries += [
            summary.tensor_summary(
                metadata.DEAD_FILTERS,
                name,
                rate,
                window=measured.window,
                measured_at=point,
                semantics=meaning,
            ),
            summary.tensor_summary(metadata.DEAD_FILTER_SAMPLE, name, sample),
        ]
        if meaning in metadata.REPORTED_SEMANTICS:
            summaries.append(summary.scalar_summary("dead_fraction", name, float((rate == 0).mean())))
        summaries.append(summary.scalar_summary("nonfinite_filters", name, float(np.isnan(rate).sum())))
    return summaries
