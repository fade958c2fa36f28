"""Routes of the Separability view (``api/separability/...``): per layer and logged step, the held-out
accuracy of a linear probe on the layer's pooled codes (``analysis/separability.py``).

``api/separability/layers?run=`` answers every layer of a run in depth order (the ``depth`` of its
content: execution order), each with its logged steps and per step the accuracy, the chance level,
the ridge strength, the accuracy on the fitted images, the held-out image count and the outcome
(an index into ``outcomes``: 0 measured; otherwise why there is no number, e.g. too few labels).
A value that was not measured is null, never a number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tb_cnnviz.plugin.context import RouteContext, matrix
from tb_cnnviz.plugin.http import Query, floats

KIND = "separability"
DEFAULT_COLUMNS = ("accuracy", "chance", "ridge", "train_accuracy", "test_images", "outcome")


def _layer(env: RouteContext, run: str, layer: str) -> dict:
    info = env.info(run, KIND, layer)
    series = env.series(info)
    columns = info.content.get("columns") or list(DEFAULT_COLUMNS)

    def build() -> dict:
        steps, values = matrix(series)
        by_name = {
            name: values[:, i] if values.ndim == 2 and i < values.shape[1] else np.full(len(steps), np.nan)
            for i, name in enumerate(columns)
        }
        outcome = by_name.get("outcome", np.zeros(len(steps)))
        return {
            "layer": layer,
            "depth": info.content.get("depth"),
            "measured_at": info.content.get("measured_at"),
            "steps": steps.tolist(),
            **{name: floats(by_name[name]) for name in columns if name not in ("outcome", "test_images")},
            "test_images": [int(v) if np.isfinite(v) else None for v in by_name.get("test_images", [])],
            "outcome": [int(v) if np.isfinite(v) else None for v in outcome],
        }

    entry = series.memo.get("layer", build)
    return {**entry, "outcomes": info.content.get("outcomes") or []}


def separability_layers(request: Any, query: Query, env: RouteContext) -> dict:
    """Every layer of a run with separability data, in depth order (layers without a depth last, by name)."""
    run = env.run(query)
    layers = [_layer(env, run, layer) for layer in env.index().layers(run, KIND)]
    layers.sort(key=lambda entry: (entry["depth"] is None, entry["depth"] or 0, entry["layer"]))
    outcomes = next((entry["outcomes"] for entry in layers if entry["outcomes"]), [])
    return {
        "run": run,
        "steps": sorted({step for entry in layers for step in entry["steps"]}),
        "outcomes": outcomes,
        "layers": [{k: v for k, v in entry.items() if k != "outcomes"} for entry in layers],
    }


ROUTES = {"layers": separability_layers}
