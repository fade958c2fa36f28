"""Routes of the Activations view (``api/activations/...``)."""

from __future__ import annotations

from typing import Any

from tb_cnnviz import metadata
from tb_cnnviz.plugin.context import RouteContext, image_url, position
from tb_cnnviz.plugin.http import Query


def activations_step(request: Any, query: Query, env: RouteContext) -> dict:
    """The activation-grid PNGs (one per probe image) of a layer at a step, with the probe images."""
    run, layer, info, series = env.layer_series(query, metadata.ACTIVATIONS)
    step = query.integer("step")
    keys = series.values[position(series, step, f"activations of {layer!r} in {run!r}")]
    return {
        "run": run,
        "layer": layer,
        "step": step,
        "images": [image_url(run, metadata.ACTIVATIONS, layer, step, i) for i in range(len(keys))],
        **info.extras(),
        "probe": env.probe(run, step),
    }


ROUTES = {"step": activations_step}
