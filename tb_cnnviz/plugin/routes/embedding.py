"""Routes of the Embedding view (``api/embedding/...``): 2-D maps of the embedding probe set, its
thumbnail atlases, and each filter's top examples (also shown by the Patterns view)."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from tb_cnnviz import metadata
from tb_cnnviz.plugin.context import (
    AT_OR_BEFORE,
    RouteContext,
    checked_index,
    class_index,
    image_url,
    position,
)
from tb_cnnviz.plugin.data import SeriesInfo
from tb_cnnviz.plugin.http import HTTPError, Query, finite, floats, memo_json

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


def top_table(value: np.ndarray) -> np.ndarray:
    """``top_examples`` as ``[C, k, 6]`` (an empty table if the logged tensor has another shape)."""
    return value if value.ndim == 3 and value.shape[2] == 6 else np.zeros((0, 0, 6), np.float32)


def examples(rows: np.ndarray, meta: dict) -> list:
    """One filter's top examples: image id (an index into the embedding probe set and its sprites),
    activation, receptive-field box in input pixels, and the image's label and prediction."""
    labels, predicted = meta.get("labels") or [], meta.get("predicted") or []
    found = []
    for row in rows:
        image = class_index(float(row[0]))
        if image is None:
            continue
        box = [float(v) for v in row[2:6]]
        found.append(
            {
                "id": image,
                "activation": finite(row[1]),
                "box": floats(np.array(box), 2) if all(math.isfinite(v) for v in box) else None,
                "label": labels[image] if image < len(labels) else None,
                "predicted": predicted[image] if image < len(predicted) else None,
            }
        )
    return found


def _size(value: list | None) -> list | None:
    """An [h, w] of positive integers from checked content, else None."""
    return value if value is not None and len(value) == 2 and min(value) > 0 else None


def image_size(env: RouteContext, run: str, info: SeriesInfo, table: np.ndarray) -> list | None:
    """Input size [h, w] the boxes refer to: from the metadata when logged, else the largest box corner
    (receptive fields are clipped to the image, so some box touches its right and bottom edges)."""
    sprites = env.index().get(run, metadata.SPRITES, None) or info
    for content in (info.content, sprites.content):
        if _size(content.get("image_size")):
            return content["image_size"]
    if not table.size:
        return None
    boxes = table[..., 2:6].reshape(-1, 4)
    boxes = boxes[np.isfinite(boxes).all(axis=1) & (table[..., 0].reshape(-1) >= 0)]
    if not len(boxes):
        return None
    return [int(math.ceil(boxes[:, 3].max())), int(math.ceil(boxes[:, 2].max()))]


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
        _size(thumb) is not None
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


def embedding_top(request: Any, query: Query, env: RouteContext) -> dict:
    """Top examples of a layer at a logged step: for ``channel`` its k most activating embedding-probe images
    (ids into the sprites, activation, receptive-field box); without ``channel`` every filter's best one."""
    run, layer, info, series = env.layer_series(query, metadata.TOP_EXAMPLES)
    step = query.integer("step")
    table = top_table(series.values[position(series, step, f"top_examples of {layer!r} in {run!r}")])
    meta = embedding_meta(env, run, step)
    result = {
        "run": run,
        "layer": layer,
        "step": step,
        "filters": int(table.shape[0]),
        "k": int(table.shape[1]),
        "image_size": image_size(env, run, info, table),
        "class_names": meta["class_names"],
    }
    if query.text("channel", required=False) is None:
        best = [examples(rows[:1], meta) for rows in table]
        result["best"] = [b[0] if b else None for b in best]
        return result
    channel = checked_index(
        query, "channel", len(table), f"layer {layer!r} at step {step} ({len(table)} filters)"
    )
    result.update(channel=channel, examples=examples(table[channel], meta))
    return result


ROUTES = {"points": embedding_points, "sprites": embedding_sprites, "top": embedding_top}
