"""Routes of the Grad-CAM view (``api/gradcam/...``): overlays with labels and predictions, raw CAMs
on a shared scale, and one probe image over training.

The CAMs are logged unnormalised, so their maxima compare across training steps (the overlay
PNGs are stretched per image and cannot): each image's largest peak over the logged steps, outlier
peaks excepted (``_robust_scale``: one exploding step must not blank every other), is the shared colour
scale of the raw-CAM mode; the outlier steps are answered so the view can say they are clipped. A map is stored at the Grad-CAM layer's resolution (7 x 7 for
ResNet-50's ``layer4`` at 224 px; older runs stored it upsampled to the input): the routes serve
each step's own shape and the view upsamples it when drawing.

Since issue #18 the callback logs no overlay PNGs (``gradcam``: 30 KB per probe image at 224 px, half of a
ResNet-50 run's bytes): the view draws each overlay from the raw map, stretched per image as the PNG was.
The routes anchor on ``gradcam`` when a run has it (older runs: ``overlay`` URLs as before) and on
``gradcam_maps`` otherwise (``overlay`` is None; the strip carries each thumbnail's map).
"""

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
from tb_cnnviz.plugin.data import Series
from tb_cnnviz.plugin.faithfulness import gradcam_faithfulness
from tb_cnnviz.plugin.http import HTTPError, Query, floats, incompressible_json

DEFAULT_STRIP = 24
MAX_STRIP = 500
NO_INFO = {"target": None, "predicted": None, "probability": None, "target_probability": None}


def _probability(value: float) -> float | None:
    return round(float(value), 5) if math.isfinite(value) and 0 <= value <= 1 else None


def _info_rows(value: np.ndarray | None, count: int) -> list:
    """``gradcam_info`` rows ``[target, predicted, probability, target_probability]`` as dicts (None: undefined)."""
    table = (
        value.reshape(-1, 4)
        if value is not None and value.size and value.size % 4 == 0
        else np.zeros((0, 4), np.float32)
    )
    rows: list = []
    for i in range(count):
        if i >= len(table):
            rows.append(None)
            continue
        target, predicted, probability, target_probability = (float(v) for v in table[i])
        rows.append(
            {
                "target": class_index(target),
                "predicted": class_index(predicted),
                "probability": _probability(probability),
                "target_probability": _probability(target_probability),
            }
        )
    return rows


def _cam_maxima(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Per logged step of ``gradcam_maps``, each image's largest raw CAM value: ``(steps, [S, N])`` (NaN: unknown)."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        width = max((v.shape[0] for v in series.values if v.ndim == 3), default=0)
        table = np.full((len(series.steps), width), np.nan, dtype=np.float64)
        with np.errstate(all="ignore"):
            for i, value in enumerate(series.values):
                if value.ndim == 3 and value.shape[1] * value.shape[2] > 0:
                    largest = (
                        np.where(np.isfinite(value), value, -np.inf).reshape(value.shape[0], -1).max(axis=1)
                    )
                    table[i, : value.shape[0]] = np.where(np.isfinite(largest), largest, np.nan)
        return series.steps, table

    return series.memo.get(("cam_max",), build)


MIN_FENCE_STEPS = 4  # fewer logged peaks: no quartiles to judge by, the shared scale is their largest
FENCE_IQRS = (
    3.0  # an outlier peak lies this many interquartile ranges of log10(peak) above the upper quartile
)
FENCE_DECADES = 1.0  # ... and at least ten times the upper quartile (a flat run's small bump is no outlier)
SCALE_RULE = (
    "per image, the largest CAM peak over the logged steps that is not an outlier (an outlier: above "
    f"{FENCE_DECADES:g} decade and {FENCE_IQRS:g} interquartile ranges of log10(peak) over the upper quartile; "
    f"judged from {MIN_FENCE_STEPS} logged steps on)"
)


def _robust_scale(peaks: np.ndarray) -> tuple[float | None, np.ndarray]:
    """The top of one image's shared colour scale from its CAM peaks over the logged steps, and which steps
    are outliers above it (clipped when drawn).

    A high percentile alone does not do it: over 10 logged steps with one at 3.8e9 the 99th percentile is
    3.4e9 and every other step is still blank. CAM peaks legitimately grow by orders of magnitude over
    training, so the fence is in log10 space: upper quartile + max(3 IQR, 1 decade)."""
    finite = np.isfinite(peaks)
    outliers = np.zeros(peaks.shape, bool)
    if not finite.any():
        return None, outliers
    positive = finite & (peaks > 0)
    if positive.sum() >= MIN_FENCE_STEPS:
        logs = np.log10(peaks[positive])
        q1, q3 = np.percentile(logs, [25, 75])
        fence = q3 + max(FENCE_IQRS * (q3 - q1), FENCE_DECADES)
        with np.errstate(all="ignore"):
            outliers = positive & (np.log10(np.where(positive, peaks, 1.0)) > fence)
    return float(np.max(peaks[finite & ~outliers])), outliers


def _cam_scales(table: np.ndarray, count: int) -> tuple[list, np.ndarray]:
    """Per image (``count`` of them) the top of its shared colour scale over all logged steps, and the
    ``[S, N]`` table of outlier peaks above it."""
    scales, outliers = [], np.zeros(table.shape, bool)
    for i in range(table.shape[1]):
        scale, outliers[:, i] = _robust_scale(table[:, i])
        scales.append(np.nan if scale is None else scale)
    return (floats(np.array(scales, np.float64)) + [None] * count)[:count], outliers


def _outlier_steps(steps: np.ndarray, table: np.ndarray, outliers: np.ndarray) -> list:
    """The logged steps with a CAM peak above its image's shared scale: step, largest such peak, images."""
    answer = []
    for row in np.flatnonzero(outliers.any(axis=1)):
        images = [int(i) for i in np.flatnonzero(outliers[row])]
        answer.append({"step": int(steps[row]), "peak": float(np.max(table[row, images])), "images": images})
    return answer


def _misclassified(label: int | None, row: dict | None) -> bool | None:
    if label is None or row is None or row["predicted"] is None:
        return None
    return label != row["predicted"]


def _attributions(env: RouteContext, run: str, step: int) -> list:
    """The attribution maps of every method at the last logged step at or before ``step``."""
    attributions = []
    for method in env.index().layers(run, metadata.ATTRIBUTION):
        logged = env.logged_at(run, metadata.ATTRIBUTION, method, step, AT_OR_BEFORE)
        if logged is None:
            continue
        attributions.append(
            {
                "method": method,
                "step": logged.step,
                "images": [
                    image_url(run, metadata.ATTRIBUTION, method, logged.step, i)
                    for i in range(len(logged.value))
                ],
            }
        )
    return attributions


def _anchor(query: Query, env: RouteContext) -> tuple[str, str, Any, Series, bool]:
    """``(run, layer, info, series, overlays)``: the layer's ``gradcam`` overlays when logged (older runs),
    else its ``gradcam_maps``; a 404 naming the layers with either otherwise."""
    run = env.run(query)
    layer = query.text("layer")
    overlays = env.index().get(run, metadata.GRADCAM, layer) is not None
    if not overlays and env.index().get(run, metadata.GRADCAM_MAPS, layer) is None:
        layers = sorted(
            set(env.index().layers(run, metadata.GRADCAM))
            | set(env.index().layers(run, metadata.GRADCAM_MAPS))
        )
        raise HTTPError(
            404,
            f"layer: run {run[:200]!r} has no Grad-CAM for layer {layer[:200]!r}; layers with Grad-CAM: "
            f"{layers[:20]}",
        )
    info = env.info(run, metadata.GRADCAM if overlays else metadata.GRADCAM_MAPS, layer)
    return run, layer, info, env.series(info), overlays


EXPLAINS = ("target", "predicted")
PREDICTED_MAPS = "gradcam_predicted_maps"  # tb_cnnviz.snapshots.probe_images.GRADCAM_PREDICTED_MAPS


def _maps_kind(query: Query) -> str:
    """The series of raw maps the query's ``explain`` asks for: the explained class's (``target``, default)
    or each image's predicted class's (``predicted``, logged when the maps explain the labels)."""
    explain = query.text("explain", required=False, default="target")
    if explain not in EXPLAINS:
        raise HTTPError(400, f"explain: {explain[:40]!r} is not valid; expected one of {list(EXPLAINS)}")
    return PREDICTED_MAPS if explain == "predicted" else metadata.GRADCAM_MAPS


def _maps_series(env: RouteContext, run: str, layer: str, kind: str) -> Series | None:
    """The raw maps of ``kind``; for the predicted class a 404 saying when they are logged if they are not."""
    series = env.optional(run, kind, layer)
    if series is None and kind == PREDICTED_MAPS:
        raise HTTPError(
            404,
            f"explain: run {run[:200]!r} logged no predicted-class maps for layer {layer[:200]!r}; the callback "
            "logs them with the label's maps when the probe images have labels (runs from before issue #16 have none)",
        )
    return series


def _count(value: Any) -> int:
    """Probe images at a logged step: overlay keys, or the first axis of a ``[N, h, w]`` map."""
    if isinstance(value, np.ndarray):
        return int(value.shape[0]) if value.ndim == 3 else 0
    return len(value)


def gradcam_step(request: Any, query: Query, env: RouteContext) -> dict:
    """The Grad-CAM cards of a layer at a logged step: each image's overlay PNG (older runs; None: the view
    draws it from the raw map), label, prediction and probabilities, its CAM maximum, the probe images and
    any attribution maps."""
    run, layer, info, series, overlays = _anchor(query, env)
    step = query.integer("step")
    count = _count(series.values[position(series, step, f"Grad-CAM of {layer!r} in {run!r}")])
    logged_info = env.logged_at(run, metadata.GRADCAM_INFO, layer, step)
    rows = _info_rows(logged_info.value if logged_info else None, count)
    probe = env.probe(run, step)
    labels = (probe or {}).get("labels") or []
    cam = {"max": [None] * count, "scale": [None] * count, "shape": None, "clipped": [False] * count}
    outlier_steps: list = []
    maps = env.optional(run, metadata.GRADCAM_MAPS, layer)
    if maps is not None:
        map_steps, table = _cam_maxima(maps)
        cam["scale"], outliers = _cam_scales(table, count)
        at = maps.position(step)
        if at is not None:
            cam["max"] = (floats(table[at]) + [None] * count)[:count]
            cam["shape"] = list(maps.values[at].shape)
            cam["clipped"] = ([bool(v) for v in outliers[at]] + [False] * count)[:count]
        outlier_steps = _outlier_steps(map_steps, table, outliers)
    images = []
    for i in range(count):
        label = labels[i] if i < len(labels) else None
        images.append(
            {
                "index": i,
                "overlay": image_url(run, metadata.GRADCAM, layer, step, i) if overlays else None,
                "label": label,
                **(rows[i] or NO_INFO),
                "misclassified": _misclassified(label, rows[i]),
                "cam_max": cam["max"][i],
                "cam_scale": cam["scale"][i],
                "cam_clipped": cam["clipped"][i],
            }
        )
    return {
        "run": run,
        "layer": layer,
        "step": step,
        "count": count,
        "images": images,
        "cam_shape": cam["shape"],
        "overlays_logged": overlays,
        "cam_scale_rule": SCALE_RULE,
        "outlier_steps": outlier_steps,
        # the callback explains the label when the probe images have labels, else the predicted class; with
        # labels it logs the predicted class's maps too (snapshots.probe_images.gradcam; not before #16)
        "explains": "label" if labels else "predicted",
        "predicted_maps_logged": not labels or env.index().get(run, PREDICTED_MAPS, layer) is not None,
        "class_names": (probe or {}).get("class_names"),
        "probe": probe,
        "attributions": _attributions(env, run, step),
        **info.extras(),
    }


def gradcam_maps(request: Any, query: Query, env: RouteContext) -> Any:
    """Raw (unnormalised) CAMs ``[N, h, w]`` of a layer at a logged step as base64 float32, and each image's
    maximum over all logged steps, so the browser can colour every step on one scale; ``explain=predicted``:
    the maps of each image's predicted class (``gradcam_predicted_maps``) instead of the explained class's."""
    kind = _maps_kind(query)
    run = env.run(query)
    layer = query.text("layer")
    if kind == PREDICTED_MAPS:
        _maps_series(env, run, layer, kind)
    info = env.info(run, kind, layer)
    series = env.series(info)
    step = query.integer("step")
    value = series.values[position(series, step, f"{kind} of {layer!r} in {run!r}")]
    if value.ndim != 3:
        raise HTTPError(
            404,
            f"step: gradcam_maps of {layer!r} at step {step} has shape {list(value.shape)}; expected [N, h, w]",
        )
    map_steps, table = _cam_maxima(series)
    scale, outliers = _cam_scales(table, value.shape[0])
    return incompressible_json(
        {
            "run": run,
            "layer": layer,
            "step": step,
            "shape": list(value.shape),
            "explain": "predicted" if kind == PREDICTED_MAPS else "target",
            "dtype": "float32",
            "data": base64.b64encode(np.ascontiguousarray(value, dtype="<f4").tobytes()).decode("ascii"),
            "scale": scale,
            "scale_rule": SCALE_RULE,
            "outlier_steps": _outlier_steps(map_steps, table, outliers),
        }
    )


def _thin(count: int, limit: int) -> list[int]:
    """At most ``limit`` indices spread evenly over ``range(count)``, always the first and the last."""
    if count <= limit:
        return list(range(count))
    if limit == 1:
        return [count - 1]
    return sorted({int(round(i * (count - 1) / (limit - 1))) for i in range(limit)})


def gradcam_image(request: Any, query: Query, env: RouteContext) -> dict:
    """One probe image over training: its prediction, probabilities and CAM maximum at every logged step,
    and its overlay at up to ``limit`` steps spread over the run (the "watch one image" strip: an overlay URL,
    or when no overlays were logged the image's raw map ``[h, w]`` at that step, which the view colours)."""
    run, layer, info, series, overlays = _anchor(query, env)
    if not len(series.steps):
        raise HTTPError(404, f"layer: Grad-CAM of {layer!r} in {run!r} has no logged steps yet")
    index = checked_index(
        query,
        "index",
        _count(series.values[-1]),
        f"the last logged step ({int(series.steps[-1])}) of Grad-CAM {layer!r}",
    )
    limit = query.integer("limit", default=DEFAULT_STRIP, minimum=1, maximum=MAX_STRIP)
    kind = _maps_kind(query)
    steps = [int(s) for s in series.steps]
    info_series = env.optional(run, metadata.GRADCAM_INFO, layer)
    rows = []
    for step in steps:
        at = info_series.position(step) if info_series is not None else None
        rows.append(_info_rows(info_series.values[at] if at is not None else None, index + 1)[index])
    cam_max: list = [None] * len(steps)
    cam_scale, cam_outliers = None, []
    maps = _maps_series(env, run, layer, kind)
    if maps is not None:
        map_steps, table = _cam_maxima(maps)
        column = table[:, index] if index < table.shape[1] else np.full(len(map_steps), np.nan)
        by_step = dict(zip((int(s) for s in map_steps), floats(column)))
        cam_max = [by_step.get(step) for step in steps]
        scale, outliers = _robust_scale(column)
        cam_scale = floats([np.nan if scale is None else scale])[0]
        cam_outliers = [
            {"step": int(map_steps[row]), "peak": float(column[row])} for row in np.flatnonzero(outliers)
        ]
    probe = env.probe(run, steps[-1])
    labels = (probe or {}).get("labels") or []

    def field(name: str) -> list:
        return [row[name] if row else None for row in rows]

    return {
        "run": run,
        "layer": layer,
        "index": index,
        "label": labels[index] if index < len(labels) else None,
        "class_names": (probe or {}).get("class_names"),
        "probe_image": probe["images"][index] if probe and index < len(probe["images"]) else None,
        "steps": steps,
        "target": field("target"),
        "predicted": field("predicted"),
        "probability": field("probability"),
        "target_probability": field("target_probability"),
        "cam_max": cam_max,
        "cam_scale": cam_scale,
        "cam_outliers": cam_outliers,
        "explain": "predicted" if kind == PREDICTED_MAPS else "target",
        "strip": _strip(run, layer, index, steps, limit, series, maps, overlays and kind != PREDICTED_MAPS),
    }


def _strip(
    run: str,
    layer: str,
    index: int,
    steps: list,
    limit: int,
    series: Series,
    maps: Series | None,
    overlays: bool,
) -> list:
    """Up to ``limit`` thumbnails of image ``index`` spread over the logged steps: overlay URLs (``overlays``),
    else the image's raw map from ``maps`` at each step that has one."""
    entries = []
    for i in _thin(len(steps), limit):
        if overlays:
            if index < _count(series.values[i]):
                entries.append(_strip_entry(run, layer, steps[i], index, series.values[i], True))
            continue
        at = maps.position(steps[i]) if maps is not None else None
        if at is not None and index < _count(maps.values[at]):
            entries.append(_strip_entry(run, layer, steps[i], index, maps.values[at], False))
    return entries


def _strip_entry(run: str, layer: str, step: int, index: int, value: Any, overlays: bool) -> dict:
    """One thumbnail of the strip: the overlay PNG's URL, or image ``index``'s raw map at ``step``."""
    if overlays:
        return {"step": step, "overlay": image_url(run, metadata.GRADCAM, layer, step, index)}
    # base64 float32, as api/gradcam/maps: a map of tiny values (1e-7) must not round to a flat one
    data = base64.b64encode(np.ascontiguousarray(value[index], dtype="<f4").tobytes()).decode("ascii")
    return {
        "step": step,
        "overlay": None,
        "map": {"shape": list(value.shape[1:]), "dtype": "float32", "data": data},
    }


ROUTES = {
    "step": gradcam_step,
    "image": gradcam_image,
    "maps": gradcam_maps,
    "faithfulness": gradcam_faithfulness,
}
