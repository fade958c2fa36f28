"""Routes of the Dead filters view (``api/dead/...``): activation rates and dead fractions per step.

A filter is dead at a step when its activation rate over the window (the fraction of
positions where its nonlinearity's input is active) is at most ``threshold`` (default 0).
Each layer carries its ``semantics`` (``relu``: dead; ``smooth``: inactive; ``residual``, ``none``,
``gate``, ``head``, ``unmeasured``: no dead filters defined, so its dead fraction is null; see
``analysis/activation_points.py``). Runs written before ``semantics`` existed read as ``relu``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tb_cnnviz import metadata
from tb_cnnviz.plugin.context import RouteContext, matrix
from tb_cnnviz.plugin.http import Query, floats, memo_json


def _threshold(query: Query) -> float:
    return query.number("threshold", default=0.0, minimum=0.0, maximum=1.0)


def _semantics(info: Any) -> str:
    """What a rate of 0 means for the layer (``relu`` for runs written before it was recorded)."""
    return info.content.get("semantics") or "relu"


def _dead_fraction(values: np.ndarray, steps: np.ndarray, threshold: float, semantics: str) -> np.ndarray:
    """Per step, the fraction of filters whose finite rate is <= ``threshold`` (NaN where not defined)."""
    if semantics not in metadata.REPORTED_SEMANTICS:
        return np.full(len(steps), np.nan)
    return (np.isfinite(values) & (values <= threshold)).mean(axis=1) if values.size else np.zeros(len(steps))


def _rates_json(values: np.ndarray) -> list:
    """Rates as JSON: 5 decimals, except that a rate above 0 too small for them keeps 3 significant digits, so
    only a rate of exactly 0 reads as 0 (dead) in the view."""
    answer = floats(values)
    with np.errstate(invalid="ignore"):
        tiny = np.argwhere(
            np.isfinite(values) & (values != 0) & (np.round(values.astype(np.float64), 5) == 0)
        )
    for row, column in tiny:
        answer[row][column] = float(f"{float(values[row, column]):.3g}")
    return answer


def _samples(env: RouteContext, run: str, layer: str, steps: np.ndarray) -> dict:
    """Per window, how many training batches were counted, of how many, one in k (None: not recorded)."""
    series = env.optional(run, metadata.DEAD_FILTER_SAMPLE, layer)
    by_step = {} if series is None else dict(zip(series.steps.tolist(), series.values))
    rows = [by_step.get(step) for step in steps.tolist()]
    column = lambda i: [None if r is None or r.size < 3 else int(r[i]) for r in rows]  # noqa: E731
    return {"batches_counted": column(0), "batches_seen": column(1), "count_every": column(2)}


def dead_rates(request: Any, query: Query, env: RouteContext) -> Any:
    """Steps x filters activation rates of one layer (0 = dead over the window), the dead fraction,
    and per window the training batches counted (a filter is dead when dead on every counted batch)."""
    run, layer, info, series = env.layer_series(query, metadata.DEAD_FILTERS)
    threshold = _threshold(query)

    def build() -> dict:
        steps, values = matrix(series)
        return {
            "run": run,
            "layer": layer,
            "threshold": threshold,
            "steps": steps.tolist(),
            "rates": _rates_json(values),
            "dead_fraction": floats(_dead_fraction(values, steps, threshold, _semantics(info))),
            **_samples(env, run, layer, steps),
            **info.extras(),
            "semantics": _semantics(info),
        }

    return memo_json(request, series.memo, ("rates", threshold), build)


def dead_fractions(request: Any, query: Query, env: RouteContext) -> dict:
    """For every layer of a run: the fraction of filters whose activation rate is <= ``threshold``, per step."""
    run = env.run(query)
    threshold = _threshold(query)
    layers = []
    for layer in env.index().layers(run, metadata.DEAD_FILTERS):
        info = env.info(run, metadata.DEAD_FILTERS, layer)
        series = env.series(info)

        def build(layer: str = layer, series=series, semantics: str = _semantics(info)) -> dict:
            steps, values = matrix(series)
            return {
                "layer": layer,
                "semantics": semantics,
                "steps": steps.tolist(),
                "dead_fraction": floats(_dead_fraction(values, steps, threshold, semantics)),
                "filters": int(values.shape[1]) if values.size else 0,
            }

        layers.append(series.memo.get(("fraction", threshold), build))
    return {"run": run, "threshold": threshold, "layers": layers}


ROUTES = {"rates": dead_rates, "fractions": dead_fractions}
