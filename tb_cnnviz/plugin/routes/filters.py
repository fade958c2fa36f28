"""Routes of the Filters view (``api/filters/...``): raw kernels of a layer and per-filter smoothness.

Large tensors are never sent whole: ``kernels`` returns one logged step (or a block of
consecutive steps, capped at ``MAX_VALUES_PER_RESPONSE`` floats) as base64 little-endian
float32, which the browser turns into a ``Float32Array`` without parsing numbers.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from tb_cnnviz import metadata
from tb_cnnviz.plugin.context import RouteContext, matrix, position
from tb_cnnviz.plugin.http import MAX_COUNT, Query, floats, incompressible_json, memo_json

MAX_VALUES_PER_RESPONSE = 1 << 20  # floats in one kernels response (4 MiB raw)


def filters_kernels(request: Any, query: Query, env: RouteContext) -> Any:
    """Raw kernels ``[out, in, kh, kw]`` at ``step`` (and up to ``count - 1`` following logged steps).

    The browser normalises them (globally or per filter) itself, so the toggle needs no
    round trip; a block of steps lets the step slider scrub from memory.
    """
    run, layer, info, series = env.layer_series(query, metadata.KERNELS)
    step = query.integer("step")
    count = query.integer("count", default=1, minimum=1, maximum=MAX_COUNT)
    start = position(series, step, f"kernels of {layer!r} in {run!r}")
    shape = series.values[start].shape
    per_step = max(int(np.prod(shape)), 1)
    count = max(1, min(count, MAX_VALUES_PER_RESPONSE // per_step, len(series.steps) - start))
    stop = start + 1
    while stop < start + count and series.values[stop].shape == shape:
        stop += 1
    block = np.stack(series.values[start:stop]).astype("<f4", copy=False)
    return incompressible_json(
        {
            "run": run,
            "layer": layer,
            "shape": list(shape),
            "steps": series.steps[start:stop].tolist(),
            "wall_times": series.wall_times[start:stop].tolist(),
            "dtype": "float32",
            "data": base64.b64encode(np.ascontiguousarray(block).tobytes()).decode("ascii"),
        }
    )


def filters_smoothness(request: Any, query: Query, env: RouteContext) -> Any:
    """Per-filter smoothness in [-1, 1] (1 = smooth) at every logged step, and its layer mean."""
    run, layer, info, series = env.layer_series(query, metadata.SMOOTHNESS)

    def build() -> dict:
        steps, values = matrix(series)
        with np.errstate(all="ignore"):
            finite = np.where(np.isfinite(values), values, np.nan)
            mean = np.nanmean(finite, axis=1) if values.size else np.zeros(len(steps))
        return {
            "run": run,
            "layer": layer,
            "steps": steps.tolist(),
            "values": floats(values),
            "mean": floats(mean),
        }

    return memo_json(request, series.memo, ("smoothness",), build)


ROUTES = {"kernels": filters_kernels, "smoothness": filters_smoothness}
