"""The ``dead_filters`` snapshot: the activation rates counted over a window, as logged series."""

from __future__ import annotations

import numpy as np

from tb_cnnviz import metadata, summary
from tb_cnnviz.snapshots.inputs import FilterRates, Inputs
from tb_cnnviz.snapshots.precision import half_summary


def dead_filters(inputs: Inputs) -> list:
    """Per layer, the activation rate of every filter over the window (``state``: :class:`FilterRates`),
    with what was measured and where (``semantics``, ``measured_at``), and the dead fraction as a scalar
    for the layers where a rate of 0 means dead or inactive (``relu``/``smooth``). Rates are stored as float16
    (``snapshots.precision``: within 0.05% relative from 6.1e-5 up, 0 exact, and a rate above 0 never
    stored as 0); the dead fraction is counted on the float32 rates."""
    measured: FilterRates = inputs.state
    # "dead over the window" means "dead on every counted batch": each layer says how many were counted
    count = len(measured.rates)
    batches = list(measured.layer_batches) or [measured.batches] * count
    count_every = list(measured.layer_count_every) or [measured.count_every] * count
    summaries = []
    semantics = list(measured.semantics) or ["relu"] * count
    for (name, _), point, meaning, rate, counted, every in zip(
        inputs.layers, measured.measured_at, semantics, measured.rates, batches, count_every
    ):
        if rate is None:
            continue
        sample = np.array([counted, measured.forwards, every], dtype=np.float32)
        rate = rate.cpu().numpy()
        summaries += [
            half_summary(
                metadata.DEAD_FILTERS,
                name,
                rate,
                keep_nonzero=True,
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
