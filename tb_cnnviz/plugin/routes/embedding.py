"""Routes of the Embedding view (``api/embedding/...``): 2-D maps of the embedding probe set and its
thumbnail atlases (which the Top images and Patterns views cut their thumbnails from)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from tb_cnnviz import metadata
from tb_cnnviz.plugin.context import (
    AT_OR_BEFORE,
    RouteContext,
    class_index,
    image_url,
    position,
)
from tb_cnnviz.plugin.http import HTTPError, Query, memo_json

MAX_THUMB = 4096


def embedding_meta(env: RouteContext, run: str, step: int) -> dict:
    """Labels, class names and predictions (at the embedding step at or before ``step``) of the embedding probe set."""
    layers = env.index().layers(run, metadata.EMBEDDING)
    if not layers:
        return {"labels": None, "class_names": None, "predicted": None}
    info = env.info(run, metadata.EMBEDDING, layers[0])
    logged = env.logged_at(run, metadata.EMBEDDING, layers[0], step, AT_OR_BEFORE)
    predicted = None
    if logged is not None and logged.value.ndim == 2 and logged.value.shape[1] >= 3:
        predicted = [class_index(float(v)) for v in logged.value[:, 2]]
    return {
        "labels": info.content.get("labels"),
        "class_names": info.content.get("class_names"),
        "predicted": predicted,
    }


def pixel_size(value: list | None) -> list | None:
    """An [h, w] of positive integers from checked content, else None."""
    return value if value is not None and len(value) == 2 and min(value) > 0 else None


def embedding_points(request: Any, query: Query, env: RouteContext) -> Any:
    """The 2-D map of the embedding probe set at a logged step: x, y (base64 float32 pairs), predicted
    class, label and class names, and how many are misclassified."""
    run, layer, info, series = env.layer_series(query, metadata.EMBEDDING)
    step = query.integer("step")
    at = position(series, step, f"embedding of {layer!r} in {run!r}")
    value = series.values[at]
    if value.ndim != 2 or value.shape[1] < 2:
        raise HTTPError(
            404,
            f"step: the embedding of {layer!r} at step {step} has shape {list(value.shape)}; expected [N, 3]",
        )

    def build() -> dict:
        xy = np.ascontiguousarray(value[:, :2], dtype="<f4")
        predicted = (
            [class_index(float(v)) for v in value[:, 2]] if value.shape[1] >= 3 else [None] * len(value)
        )
        labels = info.content.get("labels")
        if labels is not None and len(labels) != len(value):
            labels = None
        points = xy[np.isfinite(xy).all(axis=1)]
        bounds = (
            [
                float(points[:, 0].min()),
                float(points[:, 0].max()),
                float(points[:, 1].min()),
                float(points[:, 1].max()),
            ]
            if len(points)
            else None
        )
        known = [(t, p) for t, p in zip(labels or [], predicted) if t is not None and p is not None]
        return {
            "run": run,
            "layer": layer,
            "step": step,
            "count": len(value),
            "method": info.content.get("method"),
            "xy": base64.b64encode(xy.tobytes()).decode("ascii"),
            "predicted": predicted,
            "labels": labels,
            "class_names": info.content.get("class_names"),
            "bounds": bounds,
            "misclassified": sum(1 for t, p in known if t != p) if known else None,
            "accuracy": round(sum(1 for t, p in known if t == p) / len(known), 5) if known else None,
        }

    return memo_json(request, series.memo, ("points", at), build)


def embedding_sprites(request: Any, query: Query, env: RouteContext) -> dict:
    """The thumbnail atlases of the embedding probe set: image ``i`` is cell ``i`` (row-major, ``columns``
    cells a row) of the atlases in order, each holding ``counts[a]`` cells of ``thumb`` = [h, w] px."""
    run = env.run(query)
    info = env.info(run, metadata.SPRITES, None)
    series = env.series(info)
    if not len(series.steps):
        raise HTTPError(404, f"run {run[:200]!r} has no logged sprites yet")
    step = int(series.steps[-1])
    count = len(series.values[-1])
    thumb, columns, counts = (info.content.get(key) for key in ("thumb", "columns", "counts"))
    valid = (
        pixel_size(thumb) is not None
        and max(thumb) <= MAX_THUMB
        and columns is not None
        and columns > 0
        and counts is not None
        and len(counts) == count
        and min(counts, default=0) >= 0
    )
    if not valid:
        raise HTTPError(
            404,
            f"run {run[:200]!r}: its sprites metadata is malformed (thumb {str(thumb)[:40]}, "
            f"columns {str(columns)[:20]}); expected thumb [h, w], columns and counts per atlas",
        )
    return {
        "run": run,
        "step": step,
        "thumb": thumb,
        "columns": columns,
        "counts": counts,
        "image_size": info.content.get("image_size"),
        "atlases": [image_url(run, metadata.SPRITES, None, step, i) for i in range(count)],
    }


ROUTES = {"points": embedding_points, "sprites": embedding_sprites}
