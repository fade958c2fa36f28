"""The CNN Viz backend's JSON and PNG routes, one group per view of the UI.

Every route is ``GET api/<group>/<route>?...`` under ``/data/plugin/cnnviz/``. A view of the
frontend (``frontend/views/<view>.js``) talks to its own group plus the shared ``runs``
group (listing, logged steps, PNG blobs); adding a view adds one group to
``ROUTE_GROUPS`` and one module to the frontend.

Every request is validated here: a missing or malformed argument is a 400, an unknown
run/layer/step/index is a 404, each with a JSON ``{"error": "..."}`` that names the
argument, the value and what was expected. Nothing a client sends can produce a 500: a
data-provider failure (a run deleted while it is served, an unreadable file) is a JSON 404
or 503, and an unexpected exception is logged server-side and answered with a short JSON
500 that never carries a traceback (tests/test_plugin_fuzz.py fuzzes every route).

Groups: ``runs`` (shared), ``filters``, ``activations``, ``dead``, ``gradcam`` (overlays,
labels/predictions, raw CAMs on a shared scale, one image over training), ``patterns``
(pattern galleries; one filter with its kernel, activation rate and top examples; DeepDreams) and
``embedding`` (2-D maps, sprite atlases, top examples per filter). Per-step routes answer
a logged step exactly (404 naming the nearest otherwise); what they add from other series
logged on other schedules (kernels, dead-filter rates, attributions) comes from the nearest
(or last earlier) logged step of that series, which the answer names.

Large tensors are never sent whole: ``filters/kernels`` returns one logged step (or a
block of consecutive steps, capped at ``MAX_VALUES_PER_RESPONSE`` floats) as base64
little-endian float32, which the browser turns into a ``Float32Array`` without parsing
numbers. Per-filter series (smoothness, activation rates) are steps x filters and small;
their JSON is built and gzipped once per version of the series (``Series.memo``).
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import logging
import math
import re
from typing import Any, Callable
from urllib.parse import urlencode

import numpy as np
from tensorboard import errors as tb_errors
from tensorboard.backend import http_util
from werkzeug import wrappers

from tb_cnnviz import metadata
from tb_cnnviz.plugin_data import DataIndex, DataUnavailable, PluginData, Series, SeriesInfo, natural_key

MAX_INT = 2**63 - 1
MAX_TEXT = 4096
MAX_COUNT = 100_000
MAX_VALUES_PER_RESPONSE = 1 << 20  # floats in one kernels response (4 MiB raw)
MAX_MATRIX_VALUES = 4 << 20  # steps x filters in one series response
_INTEGER = re.compile(r"[0-9]{1,30}")

logger = logging.getLogger(__name__)


class HTTPError(Exception):
    """A client error: becomes a JSON ``{"error": message}`` response with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Query:
    """Validated access to a request's query arguments (first value of each name)."""

    def __init__(self, args: Any):
        self._args = args

    def text(self, name: str, *, required: bool = True, default: str | None = None) -> str | None:
        value = self._args.get(name)
        if value is None or value == "":
            if required:
                raise HTTPError(400, f"{name}: missing; expected a non-empty string")
            return default
        if len(value) > MAX_TEXT:
            raise HTTPError(400, f"{name}: {len(value)} characters is too long; expected at most {MAX_TEXT}")
        return value

    def integer(
        self, name: str, *, default: int | None = None, minimum: int = 0, maximum: int = MAX_INT
    ) -> int:
        value = self._args.get(name)
        if value is None or value == "":
            if default is None:
                raise HTTPError(400, f"{name}: missing; expected an integer in [{minimum}, {maximum}]")
            return default
        shown = value if len(value) <= 40 else value[:40] + "..."
        if not _INTEGER.fullmatch(value):
            raise HTTPError(
                400,
                f"{name}: {shown!r} is not a non-negative integer; expected an integer in [{minimum}, {maximum}]",
            )
        number = int(value)
        if not minimum <= number <= maximum:
            raise HTTPError(
                400, f"{name}: {shown} is out of range; expected an integer in [{minimum}, {maximum}]"
            )
        return number

    def number(self, name: str, *, default: float, minimum: float, maximum: float) -> float:
        value = self._args.get(name)
        if value is None or value == "":
            return default
        shown = value if len(value) <= 40 else value[:40] + "..."
        try:
            number = float(value)
        except ValueError:
            raise HTTPError(
                400, f"{name}: {shown!r} is not a number; expected a number in [{minimum}, {maximum}]"
            ) from None
        if not minimum <= number <= maximum:  # also rejects NaN
            raise HTTPError(
                400, f"{name}: {shown} is out of range; expected a number in [{minimum}, {maximum}]"
            )
        return number

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.text(name)
        if value not in choices:
            raise HTTPError(400, f"{name}: {value[:40]!r} is not valid; expected one of {list(choices)}")
        return value


@dataclasses.dataclass
class RouteContext:
    """What a route handler needs: the request's TensorBoard context and the cached data."""

    ctx: Any
    experiment_id: str
    data: PluginData
    _index: DataIndex | None = None

    def index(self) -> DataIndex:
        if self._index is None:
            self._index = self.data.index(self.ctx, self.experiment_id)
        return self._index

    def run(self, query: Query) -> str:
        run = query.text("run")
        if run not in self.index().runs:
            raise HTTPError(
                404, f"run: no CNN Viz data for run {run[:200]!r}; known runs: {_short(self.index().runs)}"
            )
        return run

    def info(self, run: str, kind: str, layer: str | None) -> SeriesInfo:
        info = self.index().get(run, kind, layer)
        if info is None:
            if layer is None:
                raise HTTPError(404, f"run {run[:200]!r} has no {kind!r} data")
            layers = self.index().layers(run, kind)
            raise HTTPError(
                404,
                f"layer: run {run[:200]!r} has no {kind!r} data for layer {layer[:200]!r}; layers with {kind}: {_short(layers)}",
            )
        return info

    def series(self, info: SeriesInfo) -> Series:
        return self.data.series(self.ctx, self.experiment_id, info)

    def layer_series(self, query: Query, kind: str) -> tuple[str, str, SeriesInfo, Series]:
        run = self.run(query)
        layer = query.text("layer")
        info = self.info(run, kind, layer)
        return run, layer, info, self.series(info)


Handler = Callable[[Any, Query, RouteContext], Any]


def _short(names: list, limit: int = 20) -> list:
    return names[:limit] + (["..."] if len(names) > limit else [])


def _position(series: Series, step: int, what: str) -> int:
    position = series.position(step)
    if position is None:
        steps = series.steps
        if len(steps) == 0:
            raise HTTPError(404, f"step: {what} has no logged steps yet")
        nearest = int(steps[np.argmin(np.abs(steps - step))])
        raise HTTPError(
            404,
            f"step: {step} is not a logged step of {what}; nearest logged step is {nearest} ({len(steps)} steps from {int(steps[0])} to {int(steps[-1])})",
        )
    return position


def _floats(array: np.ndarray, digits: int = 5) -> list:
    """Nested lists of rounded floats with ``None`` for NaN/Inf (JSON has no NaN)."""
    rounded = np.round(np.asarray(array, dtype=np.float64), digits)
    finite = np.isfinite(rounded)
    if finite.all():
        return rounded.tolist()
    with_none = rounded.astype(object)
    with_none[~finite] = None
    return with_none.tolist()


MEMO_ENTRIES = 16


def _memo_json(request: Any, series: Series, key: tuple, build: Callable[[], dict]) -> Any:
    """JSON of ``build()``, serialised and gzipped once per version of ``series`` (and ``key``)."""
    body = series.memo.get(key)
    if body is None:
        text = json.dumps(build(), allow_nan=False, separators=(",", ":")).encode("utf-8")
        body = gzip.compress(text, compresslevel=3, mtime=0)
        if len(series.memo) >= MEMO_ENTRIES:
            series.memo.clear()
        series.memo[key] = body
    # Respond un-gzips for a client that does not accept gzip.
    return http_util.Respond(request, body, "application/json", content_encoding="gzip")


def _incompressible_json(payload: dict) -> Any:
    """JSON sent without gzip: base64 of float32 weights barely compresses, and gzip would cost more than it saves."""
    body = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    return wrappers.Response(
        body,
        status=200,
        content_type="application/json",
        headers=[
            ("X-Content-Type-Options", "nosniff"),
            ("Expires", "0"),
            ("Cache-Control", "no-cache, must-revalidate"),
        ],
    )


def image_url(run: str, kind: str, layer: str | None, step: int, index: int) -> str:
    """Relative URL (from the plugin root) of one PNG of a blob series."""
    args = {"run": run, "kind": kind}
    if layer is not None:
        args["layer"] = layer
    args.update(step=str(step), index=str(index))
    return "api/runs/image?" + urlencode(args)


def _matrix(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Steps x filters of a per-filter series; steps evenly thinned if it is huge; ragged steps dropped."""
    if not series.values:
        return series.steps, np.zeros((0, 0), dtype=np.float32)
    width = series.values[-1].size
    keep = [i for i, v in enumerate(series.values) if v.size == width]
    if len(keep) * width > MAX_MATRIX_VALUES:
        rows = max(1, MAX_MATRIX_VALUES // max(width, 1))
        keep = [keep[int(round(j))] for j in np.linspace(0, len(keep) - 1, rows)]
    matrix = np.stack([series.values[i].reshape(-1) for i in keep]).astype(np.float32)
    return series.steps[keep], matrix


# ------------------------------------------------------------------ runs (shared by every view)
def runs_list(request: Any, query: Query, env: RouteContext) -> dict:
    """Every run with CNN Viz data: its layers, the kinds logged for each, and the probe set."""
    index = env.index()
    runs = []
    for run in index.runs:
        layers: dict[str, dict] = {}
        run_kinds: dict[str, dict] = {}
        for info in index.of_run(run):
            entry = {"max_step": info.max_step, **info.extras()}
            if info.kind == metadata.EMBEDDING and isinstance(entry.get("labels"), list):
                # up to 10,000 labels: api/embedding/points sends them with the map, the listing stays small
                entry["count"] = len(entry.pop("labels"))
            if info.max_length is not None:
                entry["count"] = info.max_length
            if info.layer is None:
                run_kinds[info.kind] = entry
            else:
                layers.setdefault(info.layer, {})[info.kind] = entry
        runs.append(
            {
                "name": run,
                "layers": [{"name": name, "kinds": layers[name]} for name in sorted(layers, key=natural_key)],
                "kinds": run_kinds,  # series of the whole run (no layer), e.g. the probe images
                "probe": run_kinds.get(metadata.PROBE),
            }
        )
    return {"runs": runs, "kinds": list(metadata.KINDS), "views": sorted(ROUTE_GROUPS)}


def runs_steps(request: Any, query: Query, env: RouteContext) -> dict:
    """The logged steps (and wall times) of one series."""
    run = env.run(query)
    kind = query.choice("kind", metadata.KINDS)
    layer = query.text("layer", required=False)  # None for a run-level series such as the probe
    series = env.series(env.info(run, kind, layer))
    return {
        "run": run,
        "kind": kind,
        "layer": layer,
        "steps": series.steps.tolist(),
        "wall_times": series.wall_times.tolist(),
    }


def runs_image(request: Any, query: Query, env: RouteContext) -> Any:
    """One PNG of a blob series (``kind`` in kernel_grid/activations/probe) at a logged step."""
    run = env.run(query)
    kind = query.choice("kind", metadata.BLOB_KINDS)
    layer = query.text("layer", required=False)
    step = query.integer("step")
    index = query.integer("index", minimum=0, maximum=MAX_COUNT)
    info = env.info(run, kind, layer)
    series = env.series(info)
    keys = series.values[_position(series, step, f"{kind} of {run!r}")]
    if index >= len(keys):
        raise HTTPError(404, f"index: {index} is out of range; step {step} has {len(keys)} image(s)")
    data = env.data.read_blob(env.ctx, keys[index])
    return http_util.Respond(request, data, "image/png")


# --------------------------------------------------------------------------- filters view
def filters_kernels(request: Any, query: Query, env: RouteContext) -> dict:
    """Raw kernels ``[out, in, kh, kw]`` at ``step`` (and up to ``count - 1`` following logged steps).

    The browser normalises them (globally or per filter) itself, so the toggle needs no
    round trip; a block of steps lets the step slider scrub from memory.
    """
    run, layer, info, series = env.layer_series(query, metadata.KERNELS)
    step = query.integer("step")
    count = query.integer("count", default=1, minimum=1, maximum=MAX_COUNT)
    start = _position(series, step, f"kernels of {layer!r} in {run!r}")
    shape = series.values[start].shape
    per_step = max(int(np.prod(shape)), 1)
    count = max(1, min(count, MAX_VALUES_PER_RESPONSE // per_step, len(series.steps) - start))
    stop = start + 1
    while stop < start + count and series.values[stop].shape == shape:
        stop += 1
    block = np.stack(series.values[start:stop]).astype("<f4", copy=False)
    return _incompressible_json(
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


def filters_smoothness(request: Any, query: Query, env: RouteContext) -> dict:
    """Per-filter smoothness in [-1, 1] (1 = smooth) at every logged step, and its layer mean."""
    run, layer, info, series = env.layer_series(query, metadata.SMOOTHNESS)

    def build() -> dict:
        steps, matrix = _matrix(series)
        with np.errstate(all="ignore"):
            finite = np.where(np.isfinite(matrix), matrix, np.nan)
            mean = np.nanmean(finite, axis=1) if matrix.size else np.zeros(len(steps))
        return {
            "run": run,
            "layer": layer,
            "steps": steps.tolist(),
            "values": _floats(matrix),
            "mean": _floats(mean),
        }

    return _memo_json(request, series, ("smoothness",), build)


# ---------------------------------------------------------------------- activations view
def activations_step(request: Any, query: Query, env: RouteContext) -> dict:
    """The activation-grid PNGs (one per probe image) of a layer at a step, with the probe images."""
    run, layer, info, series = env.layer_series(query, metadata.ACTIVATIONS)
    step = query.integer("step")
    keys = series.values[_position(series, step, f"activations of {layer!r} in {run!r}")]
    result = {
        "run": run,
        "layer": layer,
        "step": step,
        "images": [image_url(run, metadata.ACTIVATIONS, layer, step, i) for i in range(len(keys))],
        **info.extras(),
        "probe": _probe(env, run, step),
    }
    return result


def _probe(env: RouteContext, run: str, step: int) -> dict | None:
    """The probe images logged at or before ``step`` (the first ones if none before), with labels and class names."""
    probe_info = env.index().get(run, metadata.PROBE, None)
    if probe_info is None:
        return None
    probe = env.series(probe_info)
    if not len(probe.steps):
        return None
    at = probe.at_or_before(step)
    probe_step = int(probe.steps[at])
    return {
        "step": probe_step,
        "images": [image_url(run, metadata.PROBE, None, probe_step, i) for i in range(len(probe.values[at]))],
        "labels": _int_list(probe_info.content.get("labels")),
        "class_names": _name_list(probe_info.content.get("class_names")),
    }


# ------------------------------------------------------------------------ dead filters view
def dead_rates(request: Any, query: Query, env: RouteContext) -> dict:
    """Steps x filters activation rates of one layer (0 = dead over the window) and the dead fraction."""
    run, layer, info, series = env.layer_series(query, metadata.DEAD_FILTERS)
    threshold = query.number("threshold", default=0.0, minimum=0.0, maximum=1.0)

    def build() -> dict:
        steps, matrix = _matrix(series)
        dead = np.isfinite(matrix) & (matrix <= threshold)
        fraction = dead.mean(axis=1) if matrix.size else np.zeros(len(steps))
        return {
            "run": run,
            "layer": layer,
            "threshold": threshold,
            "steps": steps.tolist(),
            "rates": _floats(matrix),
            "dead_fraction": _floats(fraction),
            **info.extras(),
        }

    return _memo_json(request, series, ("rates", threshold), build)


def dead_fractions(request: Any, query: Query, env: RouteContext) -> dict:
    """For every layer of a run: the fraction of filters whose activation rate is <= ``threshold``, per step."""
    run = env.run(query)
    threshold = query.number("threshold", default=0.0, minimum=0.0, maximum=1.0)
    layers = []
    for layer in env.index().layers(run, metadata.DEAD_FILTERS):
        series = env.series(env.info(run, metadata.DEAD_FILTERS, layer))
        entry = series.memo.get(("fraction", threshold))
        if entry is None:
            steps, matrix = _matrix(series)
            fraction = (
                (np.isfinite(matrix) & (matrix <= threshold)).mean(axis=1)
                if matrix.size
                else np.zeros(len(steps))
            )
            entry = {
                "layer": layer,
                "steps": steps.tolist(),
                "dead_fraction": _floats(fraction),
                "filters": int(matrix.shape[1]) if matrix.size else 0,
            }
            if len(series.memo) >= MEMO_ENTRIES:
                series.memo.clear()
            series.memo[("fraction", threshold)] = entry
        layers.append(entry)
    return {"run": run, "threshold": threshold, "layers": layers}


# -------------------------------------------------------------------------- shared helpers
def _int_list(value: Any) -> list | None:
    """A list of class indices from plugin content (anything else: None; bad entries: None)."""
    if not isinstance(value, list):
        return None
    return [
        int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
        for v in value
    ]


def _name_list(value: Any) -> list | None:
    """Class names from plugin content, as strings (the UI inserts them as text)."""
    if not isinstance(value, list):
        return None
    return [str(v)[:MAX_TEXT] for v in value]


def _float(value: Any, digits: int = 5) -> float | None:
    """A rounded float, None for NaN/Inf (JSON has no NaN)."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _class_index(value: float) -> int | None:
    """A class index stored as a float (-1 or non-finite = undefined)."""
    return int(value) if math.isfinite(value) and value >= 0 and value < 2**31 else None


def _probability(value: float) -> float | None:
    return round(float(value), 5) if math.isfinite(value) and 0 <= value <= 1 else None


def _nearest(series: Series, step: int, *, at_or_before: bool = False) -> int | None:
    """Index of the logged step nearest to ``step`` (the earlier one on a tie; or the last at or
    before it, else the first), None when the series is empty."""
    if not len(series.steps):
        return None
    if at_or_before:
        return series.at_or_before(step)
    after = int(np.searchsorted(series.steps, step))
    if after >= len(series.steps):
        return len(series.steps) - 1
    if after == 0 or int(series.steps[after]) == step:
        return after
    return after if int(series.steps[after]) - step < step - int(series.steps[after - 1]) else after - 1


def _optional_series(
    env: RouteContext, run: str, kind: str, layer: str | None
) -> tuple[SeriesInfo, Series] | None:
    info = env.index().get(run, kind, layer)
    return None if info is None else (info, env.series(info))


def _keys_at(series: Series, step: int, what: str) -> tuple:
    return series.values[_position(series, step, what)]


def _checked_index(query: Query, name: str, count: int, what: str) -> int:
    index = query.integer(name, minimum=0, maximum=MAX_COUNT)
    if index >= count:
        raise HTTPError(404, f"{name}: {index} is out of range; {what} has {count}")
    return index


def _thin(count: int, limit: int) -> list[int]:
    """At most ``limit`` indices spread evenly over ``range(count)``, always the first and the last."""
    if count <= limit:
        return list(range(count))
    if limit == 1:
        return [count - 1]
    return sorted({int(round(i * (count - 1) / (limit - 1))) for i in range(limit)})


# ------------------------------------------------------------------------------ grad-cam view
CAM_MEMO = ("cam_max",)
DEFAULT_STRIP = 24
MAX_STRIP = 500


def _info_rows(value: np.ndarray | None, count: int) -> list:
    """``gradcam_info`` rows ``[target, predicted, probability, target_probability]`` as dicts (None: undefined)."""
    rows: list = []
    table = (
        value.reshape(-1, 4)
        if value is not None and value.size and value.size % 4 == 0
        else np.zeros((0, 4), np.float32)
    )
    for i in range(count):
        if i >= len(table):
            rows.append(None)
            continue
        target, predicted, probability, target_probability = (float(v) for v in table[i])
        rows.append(
            {
                "target": _class_index(target),
                "predicted": _class_index(predicted),
                "probability": _probability(probability),
                "target_probability": _probability(target_probability),
            }
        )
    return rows


def _cam_maxima(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Per logged step of ``gradcam_maps``, each image's largest raw CAM value: ``(steps, [S, N])`` (NaN: unknown).

    The CAMs are logged unnormalised, so these maxima compare across training steps
    (the overlay PNGs are stretched per image and cannot).
    """
    cached = series.memo.get(CAM_MEMO)
    if cached is None:
        width = max((v.shape[0] for v in series.values if v.ndim == 3), default=0)
        table = np.full((len(series.steps), width), np.nan, dtype=np.float64)
        with np.errstate(all="ignore"):
            for i, value in enumerate(series.values):
                if value.ndim == 3 and value.shape[1] * value.shape[2] > 0:
                    finite = (
                        np.where(np.isfinite(value), value, -np.inf).reshape(value.shape[0], -1).max(axis=1)
                    )
                    table[i, : value.shape[0]] = np.where(np.isfinite(finite), finite, np.nan)
        if len(series.memo) >= MEMO_ENTRIES:
            series.memo.clear()
        cached = series.memo[CAM_MEMO] = (series.steps, table)
    return cached


def _cam_scale(table: np.ndarray) -> list:
    """Per image, the largest CAM value over all logged steps (the shared colour scale of the raw-CAM mode)."""
    with np.errstate(all="ignore"):
        return _floats(
            np.nanmax(table, axis=0)
            if table.size and np.isfinite(table).any()
            else np.full(table.shape[1], np.nan)
        )


def _misclassified(label: int | None, row: dict | None) -> bool | None:
    if label is None or row is None or row["predicted"] is None:
        return None
    return label != row["predicted"]


def gradcam_step(request: Any, query: Query, env: RouteContext) -> dict:
    """The Grad-CAM overlays (one PNG per probe image) of a layer at a logged step, with each image's
    label, prediction and probabilities, its CAM maximum, the probe images and any attribution maps."""
    run, layer, info, series = env.layer_series(query, metadata.GRADCAM)
    step = query.integer("step")
    keys = _keys_at(series, step, f"gradcam of {layer!r} in {run!r}")
    count = len(keys)
    info_series = _optional_series(env, run, metadata.GRADCAM_INFO, layer)
    value = None
    if info_series is not None:
        position = info_series[1].position(step)
        value = info_series[1].values[position] if position is not None else None
    rows = _info_rows(value, count)
    probe = _probe(env, run, step)
    labels = (probe or {}).get("labels") or []
    cam = {"max": [None] * count, "scale": [None] * count, "shape": None}
    maps = _optional_series(env, run, metadata.GRADCAM_MAPS, layer)
    if maps is not None:
        steps, table = _cam_maxima(maps[1])
        position = maps[1].position(step)
        if position is not None:
            cam["max"] = (_floats(table[position]) + [None] * count)[:count]
            cam["shape"] = list(maps[1].values[position].shape)
        cam["scale"] = (_cam_scale(table) + [None] * count)[:count]
    images = []
    for i in range(count):
        label = labels[i] if i < len(labels) else None
        images.append(
            {
                "index": i,
                "overlay": image_url(run, metadata.GRADCAM, layer, step, i),
                "label": label,
                **(
                    rows[i]
                    or {"target": None, "predicted": None, "probability": None, "target_probability": None}
                ),
                "misclassified": _misclassified(label, rows[i]),
                "cam_max": cam["max"][i],
                "cam_scale": cam["scale"][i],
            }
        )
    attributions = []
    for method in env.index().layers(run, metadata.ATTRIBUTION):
        method_series = env.series(env.info(run, metadata.ATTRIBUTION, method))
        at = _nearest(method_series, step, at_or_before=True)
        if at is None:
            continue
        method_step = int(method_series.steps[at])
        attributions.append(
            {
                "method": method,
                "step": method_step,
                "images": [
                    image_url(run, metadata.ATTRIBUTION, method, method_step, i)
                    for i in range(len(method_series.values[at]))
                ],
            }
        )
    return {
        "run": run,
        "layer": layer,
        "step": step,
        "count": count,
        "images": images,
        "cam_shape": cam["shape"],
        "class_names": (probe or {}).get("class_names"),
        "probe": probe,
        "attributions": attributions,
        **info.extras(),
    }


def gradcam_maps(request: Any, query: Query, env: RouteContext) -> Any:
    """Raw (unnormalised) CAMs ``[N, h, w]`` of a layer at a logged step as base64 float32, and each image's
    maximum over all logged steps, so the browser can colour every step on one scale."""
    run, layer, info, series = env.layer_series(query, metadata.GRADCAM_MAPS)
    step = query.integer("step")
    value = series.values[_position(series, step, f"gradcam_maps of {layer!r} in {run!r}")]
    if value.ndim != 3:
        raise HTTPError(
            404,
            f"step: gradcam_maps of {layer!r} at step {step} has shape {list(value.shape)}; expected [N, h, w]",
        )
    _, table = _cam_maxima(series)
    return _incompressible_json(
        {
            "run": run,
            "layer": layer,
            "step": step,
            "shape": list(value.shape),
            "dtype": "float32",
            "data": base64.b64encode(np.ascontiguousarray(value, dtype="<f4").tobytes()).decode("ascii"),
            "scale": (_cam_scale(table) + [None] * value.shape[0])[: value.shape[0]],
        }
    )


def gradcam_image(request: Any, query: Query, env: RouteContext) -> dict:
    """One probe image over training: its prediction, probabilities and CAM maximum at every logged step,
    and its overlay at up to ``limit`` steps spread over the run (the "watch one image" strip)."""
    run, layer, info, series = env.layer_series(query, metadata.GRADCAM)
    if not len(series.steps):
        raise HTTPError(404, f"layer: gradcam of {layer!r} in {run!r} has no logged steps yet")
    index = _checked_index(
        query,
        "index",
        len(series.values[-1]),
        f"the last logged step ({int(series.steps[-1])}) of gradcam {layer!r}",
    )
    limit = query.integer("limit", default=DEFAULT_STRIP, minimum=1, maximum=MAX_STRIP)
    steps = [int(s) for s in series.steps]
    info_series = _optional_series(env, run, metadata.GRADCAM_INFO, layer)
    rows = []
    for step in steps:
        position = info_series[1].position(step) if info_series is not None else None
        value = info_series[1].values[position] if position is not None else None
        rows.append(_info_rows(value, index + 1)[index])
    cam_max: list = [None] * len(steps)
    maps = _optional_series(env, run, metadata.GRADCAM_MAPS, layer)
    if maps is not None:
        map_steps, table = _cam_maxima(maps[1])
        column = table[:, index] if index < table.shape[1] else np.full(len(map_steps), np.nan)
        by_step = dict(zip((int(s) for s in map_steps), _floats(column)))
        cam_max = [by_step.get(step) for step in steps]
    probe = _probe(env, run, steps[-1])
    labels = (probe or {}).get("labels") or []
    label = labels[index] if index < len(labels) else None

    def field(name: str) -> list:
        return [row[name] if row else None for row in rows]

    strip = [
        {"step": steps[i], "overlay": image_url(run, metadata.GRADCAM, layer, steps[i], index)}
        for i in _thin(len(steps), limit)
        if index < len(series.values[i])
    ]
    return {
        "run": run,
        "layer": layer,
        "index": index,
        "label": label,
        "class_names": (probe or {}).get("class_names"),
        "probe_image": probe["images"][index] if probe and index < len(probe["images"]) else None,
        "steps": steps,
        "target": field("target"),
        "predicted": field("predicted"),
        "probability": field("probability"),
        "target_probability": field("target_probability"),
        "cam_max": cam_max,
        "strip": strip,
    }


# ------------------------------------------------------------------------------ patterns view
def _channels(info: SeriesInfo, count: int) -> list[int]:
    """The filter index of each pattern PNG (content ``channels``; 0..count-1 if absent or inconsistent)."""
    channels = info.content.get("channels")
    if (
        isinstance(channels, list)
        and len(channels) == count
        and all(isinstance(c, int) and not isinstance(c, bool) for c in channels)
    ):
        return list(channels)
    return list(range(count))


def _values_at(env: RouteContext, run: str, kind: str, layer: str, step: int, count: int) -> list:
    found = _optional_series(env, run, kind, layer)
    if found is None or found[1].position(step) is None:
        return [None] * count
    value = found[1].values[found[1].position(step)].reshape(-1)
    return (_floats(value) + [None] * count)[:count]


def patterns_step(request: Any, query: Query, env: RouteContext) -> dict:
    """A layer's pattern gallery at a logged step: one PNG per filter and the activation each reached."""
    run, layer, info, series = env.layer_series(query, metadata.PATTERNS)
    step = query.integer("step")
    keys = _keys_at(series, step, f"patterns of {layer!r} in {run!r}")
    channels = _channels(info, len(keys))
    kinds = {i.kind for i in env.index().of_run(run) if i.layer == layer}
    return {
        "run": run,
        "layer": layer,
        "step": step,
        "channels": channels,
        "images": [image_url(run, metadata.PATTERNS, layer, step, i) for i in range(len(keys))],
        "values": _values_at(env, run, metadata.PATTERN_VALUES, layer, step, len(keys)),
        "size": info.content.get("size"),
        "optimisation_steps": info.content.get("steps"),
        "has": {
            kind: kind in kinds for kind in (metadata.KERNELS, metadata.DEAD_FILTERS, metadata.TOP_EXAMPLES)
        },
    }


def patterns_filter(request: Any, query: Query, env: RouteContext) -> dict:
    """One filter of a pattern gallery: the activation its pattern reached at every logged step, and,
    at the logged step nearest to ``step``, its kernel, its activation rate (dead or not) and its top examples."""
    run, layer, info, series = env.layer_series(query, metadata.PATTERNS)
    step = query.integer("step")
    keys = _keys_at(series, step, f"patterns of {layer!r} in {run!r}")
    channel = query.integer("channel", maximum=MAX_COUNT)
    channels = _channels(info, len(keys))
    if channel not in channels:
        raise HTTPError(
            404,
            f"channel: filter {channel} has no pattern in layer {layer!r} at step {step}; filters with patterns: {_short(channels)}",
        )
    column = channels.index(channel)
    result: dict = {
        "run": run,
        "layer": layer,
        "step": step,
        "channel": channel,
        "image": image_url(run, metadata.PATTERNS, layer, step, column),
        "values": {"steps": [], "values": []},
        "kernel": None,
        "dead": None,
        "top": None,
    }
    found = _optional_series(env, run, metadata.PATTERN_VALUES, layer)
    if found is not None:
        values = [float(v.reshape(-1)[column]) if v.size > column else math.nan for v in found[1].values]
        result["values"] = {"steps": found[1].steps.tolist(), "values": _floats(np.array(values))}
    found = _optional_series(env, run, metadata.KERNELS, layer)
    at = _nearest(found[1], step) if found is not None else None
    if at is not None and found[1].values[at].ndim == 4 and channel < found[1].values[at].shape[0]:
        weights = found[1].values[at][channel]
        result["kernel"] = {
            "step": int(found[1].steps[at]),
            "shape": list(weights.shape),
            "values": _floats(weights, 6),
        }
    found = _optional_series(env, run, metadata.DEAD_FILTERS, layer)
    at = _nearest(found[1], step) if found is not None else None
    if at is not None and channel < found[1].values[at].size:
        rate = float(found[1].values[at].reshape(-1)[channel])
        result["dead"] = {
            "step": int(found[1].steps[at]),
            "rate": _float(rate),
            "dead": (rate <= 0) if math.isfinite(rate) else None,
            "window": found[0].content.get("window"),
            "measured_at": found[0].content.get("measured_at"),
        }
    found = _optional_series(env, run, metadata.TOP_EXAMPLES, layer)
    at = _nearest(found[1], step) if found is not None else None
    if at is not None:
        table = _top_table(found[1].values[at])
        if channel < len(table):
            result["top"] = {
                "step": int(found[1].steps[at]),
                "layer": layer,
                "image_size": _image_size(env, run, found[0], table),
                "examples": _examples(table[channel], _embedding_meta(env, run, int(found[1].steps[at]))),
            }
    return result


def _content_number(value: Any) -> float | None:
    """A finite number from plugin content (anything else: None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return round(float(value), 6)


def _content_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None


def patterns_dream(request: Any, query: Query, env: RouteContext) -> dict:
    """A DeepDream (``tb-cnnviz dream``) at a logged step (default: the last): the original and the dreamed
    image, the layers dreamed on, the settings, and the activation gain (DeepDream objective of the dream
    over that of the original)."""
    run, layer, info, series = env.layer_series(query, metadata.DREAM)
    if not len(series.steps):
        raise HTTPError(404, f"layer: the dream of {layer!r} in {run!r} has no logged steps yet")
    step = query.integer("step", default=int(series.steps[-1]))
    keys = _keys_at(series, step, f"dream of {layer!r} in {run!r}")
    if len(keys) < 2:
        raise HTTPError(
            404,
            f"step: the dream of {layer!r} at step {step} has {len(keys)} image(s); expected 2 (original, dream)",
        )
    content = info.content
    objective = content.get("objective")
    objective = (
        [_content_number(v) for v in objective]
        if isinstance(objective, list) and len(objective) == 2
        else [None, None]
    )
    size = content.get("size")
    size = size if isinstance(size, list) and len(size) == 2 and all(_content_int(v) for v in size) else None
    return {
        "run": run,
        "layer": layer,
        "step": step,
        "steps": series.steps.tolist(),
        "layers": _name_list(content.get("layers")) or layer.split("+"),
        "original": image_url(run, metadata.DREAM, layer, step, 0),
        "dream": image_url(run, metadata.DREAM, layer, step, 1),
        "gain": _content_number(content.get("gain")),
        "objective": objective,
        "size": size,
        "octaves": _content_int(content.get("octaves")),
        "octave_scale": _content_number(content.get("octave_scale")),
        "optimisation_steps": _content_int(content.get("steps")),
        "lr": _content_number(content.get("lr")),
        "seed": _content_int(content.get("seed")),
    }


# ----------------------------------------------------------------------------- embedding view
def _embedding_meta(env: RouteContext, run: str, step: int) -> dict:
    """Labels, class names and predictions (at the embedding step at or before ``step``) of the embedding probe set."""
    layers = env.index().layers(run, metadata.EMBEDDING)
    if not layers:
        return {"labels": None, "class_names": None, "predicted": None}
    info = env.info(run, metadata.EMBEDDING, layers[0])
    series = env.series(info)
    at = _nearest(series, step, at_or_before=True)
    predicted = None
    if at is not None and series.values[at].ndim == 2 and series.values[at].shape[1] >= 3:
        predicted = [_class_index(float(v)) for v in series.values[at][:, 2]]
    return {
        "labels": _int_list(info.content.get("labels")),
        "class_names": _name_list(info.content.get("class_names")),
        "predicted": predicted,
    }


def _top_table(value: np.ndarray) -> np.ndarray:
    """``top_examples`` as ``[C, k, 6]`` (an empty table if the logged tensor has another shape)."""
    return value if value.ndim == 3 and value.shape[2] == 6 else np.zeros((0, 0, 6), np.float32)


def _examples(rows: np.ndarray, meta: dict) -> list:
    """One filter's top examples: image id (an index into the embedding probe set and its sprites),
    activation, receptive-field box in input pixels, and the image's label and prediction."""
    labels, predicted = meta.get("labels") or [], meta.get("predicted") or []
    examples = []
    for row in rows:
        image = _class_index(float(row[0]))
        if image is None:
            continue
        box = [float(v) for v in row[2:6]]
        examples.append(
            {
                "id": image,
                "activation": _float(row[1]),
                "box": _floats(np.array(box), 2) if all(math.isfinite(v) for v in box) else None,
                "label": labels[image] if image < len(labels) else None,
                "predicted": predicted[image] if image < len(predicted) else None,
            }
        )
    return examples


def embedding_points(request: Any, query: Query, env: RouteContext) -> Any:
    """The 2-D map of the embedding probe set at a logged step: x, y (base64 float32 pairs), predicted
    class, label and class names, and how many are misclassified."""
    run, layer, info, series = env.layer_series(query, metadata.EMBEDDING)
    step = query.integer("step")
    position = _position(series, step, f"embedding of {layer!r} in {run!r}")
    value = series.values[position]
    if value.ndim != 2 or value.shape[1] < 2:
        raise HTTPError(
            404,
            f"step: the embedding of {layer!r} at step {step} has shape {list(value.shape)}; expected [N, 3]",
        )

    def build() -> dict:
        xy = np.ascontiguousarray(value[:, :2], dtype="<f4")
        predicted = (
            [_class_index(float(v)) for v in value[:, 2]] if value.shape[1] >= 3 else [None] * len(value)
        )
        labels = _int_list(info.content.get("labels"))
        if labels is not None and len(labels) != len(value):
            labels = None
        finite = xy[np.isfinite(xy).all(axis=1)]
        bounds = (
            [
                float(finite[:, 0].min()),
                float(finite[:, 0].max()),
                float(finite[:, 1].min()),
                float(finite[:, 1].max()),
            ]
            if len(finite)
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
            "class_names": _name_list(info.content.get("class_names")),
            "bounds": bounds,
            "misclassified": sum(1 for t, p in known if t != p) if known else None,
            "accuracy": round(sum(1 for t, p in known if t == p) / len(known), 5) if known else None,
        }

    return _memo_json(request, series, ("points", position), build)


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
    thumb, columns, counts = (
        info.content.get("thumb"),
        info.content.get("columns"),
        info.content.get("counts"),
    )
    valid = (
        isinstance(thumb, list)
        and len(thumb) == 2
        and all(isinstance(v, int) and 0 < v <= 4096 for v in thumb)
        and isinstance(columns, int)
        and columns > 0
        and isinstance(counts, list)
        and len(counts) == count
        and all(isinstance(v, int) and v >= 0 for v in counts)
    )
    if not valid:
        raise HTTPError(
            404,
            f"run {run[:200]!r}: its sprites metadata is malformed (thumb {str(thumb)[:40]}, columns {str(columns)[:20]}); expected thumb [h, w], columns and counts per atlas",
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


def _image_size(env: RouteContext, run: str, info: SeriesInfo, table: np.ndarray) -> list | None:
    """Input size [h, w] the boxes refer to: from the metadata when logged, else the largest box corner
    (receptive fields are clipped to the image, so some box touches its right and bottom edges)."""
    for content in (info.content, (env.index().get(run, metadata.SPRITES, None) or info).content):
        size = content.get("image_size")
        if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
            return size
    boxes = table[..., 2:6].reshape(-1, 4) if table.size else np.zeros((0, 4))
    boxes = boxes[np.isfinite(boxes).all(axis=1) & (table[..., 0].reshape(-1) >= 0)] if table.size else boxes
    if not len(boxes):
        return None
    return [int(math.ceil(boxes[:, 3].max())), int(math.ceil(boxes[:, 2].max()))]


def embedding_top(request: Any, query: Query, env: RouteContext) -> dict:
    """Top examples of a layer at a logged step: for ``channel`` its k most activating embedding-probe images
    (ids into the sprites, activation, receptive-field box); without ``channel`` every filter's best one."""
    run, layer, info, series = env.layer_series(query, metadata.TOP_EXAMPLES)
    step = query.integer("step")
    table = _top_table(series.values[_position(series, step, f"top_examples of {layer!r} in {run!r}")])
    meta = _embedding_meta(env, run, step)
    result = {
        "run": run,
        "layer": layer,
        "step": step,
        "filters": int(table.shape[0]),
        "k": int(table.shape[1]),
        "image_size": _image_size(env, run, info, table),
        "class_names": meta["class_names"],
    }
    if query.text("channel", required=False) is None:
        best = [_examples(rows[:1], meta) for rows in table]
        result["best"] = [b[0] if b else None for b in best]
        return result
    channel = _checked_index(
        query, "channel", len(table), f"layer {layer!r} at step {step} ({len(table)} filters)"
    )
    result.update(channel=channel, examples=_examples(table[channel], meta))
    return result


ROUTE_GROUPS: dict[str, dict[str, Handler]] = {
    "runs": {"list": runs_list, "steps": runs_steps, "image": runs_image},
    "filters": {"kernels": filters_kernels, "smoothness": filters_smoothness},
    "activations": {"step": activations_step},
    "dead": {"rates": dead_rates, "fractions": dead_fractions},
    "gradcam": {"step": gradcam_step, "image": gradcam_image, "maps": gradcam_maps},
    "patterns": {"step": patterns_step, "filter": patterns_filter, "dream": patterns_dream},
    "embedding": {"points": embedding_points, "sprites": embedding_sprites, "top": embedding_top},
}


def json_response(request: Any, payload: Any, status: int = 200) -> Any:
    """JSON with NaN-free numbers (``allow_nan=False``), gzip when the client accepts it."""
    body = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    return http_util.Respond(request, body, "application/json", code=status)


def error_response(request: Any, status: int, message: str) -> Any:
    return json_response(request, {"error": message}, status=status)


def dispatch(request: Any, group: str, route: str, env: RouteContext) -> Any:
    """Run ``api/<group>/<route>``; client errors become 4xx JSON, provider failures 404/503 JSON.

    An unexpected exception (a bug) is logged with its traceback on the server and answered
    with a short JSON 500: a response never carries a traceback.
    """
    routes = ROUTE_GROUPS.get(group)
    if routes is None:
        return error_response(
            request, 404, f"unknown view {group[:100]!r}; expected one of {sorted(ROUTE_GROUPS)}"
        )
    handler = routes.get(route)
    if handler is None:
        return error_response(
            request,
            404,
            f"unknown route {route[:100]!r} of view {group[:100]!r}; expected one of {sorted(routes)}",
        )
    if request.method not in ("GET", "HEAD"):
        response = error_response(request, 405, f"method {request.method[:20]!r} not allowed; expected GET")
        response.headers["Allow"] = "GET, HEAD"
        return response
    try:
        result = handler(request, Query(request.args), env)
    except HTTPError as error:
        return error_response(request, error.status, error.message)
    except DataUnavailable as error:
        return error_response(request, error.status, error.message[:500])
    except tb_errors.PublicError as error:  # raised by the data provider (e.g. a run removed meanwhile)
        return error_response(request, error.http_code, str(error)[:500])
    except Exception:  # noqa: BLE001 - a bug: log it here, never send a traceback to the browser
        logger.exception("tb-cnnviz: route api/%s/%s failed for %s", group, route, request.full_path[:500])
        return error_response(
            request, 500, f"internal error in api/{group}/{route}; the traceback is in TensorBoard's log"
        )
    if isinstance(result, dict):
        return json_response(request, result)
    return result
