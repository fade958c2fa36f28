"""Routes of the Top images view (``api/top_images/...``): per layer and logged step, each filter's most
activating images of the embedding probe set, with the receptive field of the maximum.

The ``embedding`` snapshot writes them (``top_examples``, from its pass over the embedding probe);
the thumbnails are cut from its sprites (``api/embedding/sprites``) and the labels and predictions
come from its map (``embedding_meta``). The Patterns view's filter detail reads them too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tb_cnnviz import metadata
from tb_cnnviz.plugin.context import RouteContext, checked_index, class_index, position
from tb_cnnviz.plugin.data import SeriesInfo
from tb_cnnviz.plugin.http import Query, finite, floats
from tb_cnnviz.plugin.routes.embedding import embedding_meta, pixel_size


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


def image_size(env: RouteContext, run: str, info: SeriesInfo, table: np.ndarray) -> list | None:
    """Input size [h, w] the boxes refer to: from the metadata when logged, else the largest box corner
    (receptive fields are clipped to the image, so some box touches its right and bottom edges)."""
    sprites = env.index().get(run, metadata.SPRITES, None) or info
    for content in (info.content, sprites.content):
        if pixel_size(content.get("image_size")):
            return content["image_size"]
    if not table.size:
        return None
    boxes = table[..., 2:6].reshape(-1, 4)
    boxes = boxes[np.isfinite(boxes).all(axis=1) & (table[..., 0].reshape(-1) >= 0)]
    if not len(boxes):
        return None
    return [int(math.ceil(boxes[:, 3].max())), int(math.ceil(boxes[:, 2].max()))]


def top_images_examples(request: Any, query: Query, env: RouteContext) -> dict:
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


ROUTES = {"examples": top_images_examples}
