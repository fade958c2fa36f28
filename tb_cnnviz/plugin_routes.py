"""The CNN Viz backend's JSON and PNG routes, one group per view of the UI.

Every route is ``GET api/<group>/<route>?...`` under ``/data/plugin/cnnviz/``. A view of the
frontend (``frontend/views/<view>.js``) talks to its own group plus the shared ``runs``
group (listing, logged steps, PNG blobs); adding a view adds one group to
``ROUTE_GROUPS`` and one module to the frontend.

Every request is validated here: a missing or malformed argument is a 400, an unknown
run/layer/step/index is a 404, each with a JSON ``{"error": "..."}`` that names the
argument, the value and what was expected. Nothing a client sends can produce a 500.

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
import re
from typing import Any, Callable
from urllib.parse import urlencode

import numpy as np
from tensorboard import errors as tb_errors
from tensorboard.backend import http_util
from werkzeug import wrappers

from tb_cnnviz import metadata
from tb_cnnviz.plugin_data import DataIndex, PluginData, Series, SeriesInfo, natural_key

MAX_INT = 2**63 - 1
MAX_TEXT = 4096
MAX_COUNT = 100_000
MAX_VALUES_PER_RESPONSE = 1 << 20  # floats in one kernels response (4 MiB raw)
MAX_MATRIX_VALUES = 4 << 20  # steps x filters in one series response
_INTEGER = re.compile(r"[0-9]{1,30}")


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

    def integer(self, name: str, *, default: int | None = None, minimum: int = 0, maximum: int = MAX_INT) -> int:
        value = self._args.get(name)
        if value is None or value == "":
            if default is None:
                raise HTTPError(400, f"{name}: missing; expected an integer in [{minimum}, {maximum}]")
            return default
        shown = value if len(value) <= 40 else value[:40] + "..."
        if not _INTEGER.fullmatch(value):
            raise HTTPError(400, f"{name}: {shown!r} is not a non-negative integer; expected an integer in [{minimum}, {maximum}]")
        number = int(value)
        if not minimum <= number <= maximum:
            raise HTTPError(400, f"{name}: {shown} is out of range; expected an integer in [{minimum}, {maximum}]")
        return number

    def number(self, name: str, *, default: float, minimum: float, maximum: float) -> float:
        value = self._args.get(name)
        if value is None or value == "":
            return default
        shown = value if len(value) <= 40 else value[:40] + "..."
        try:
            number = float(value)
        except ValueError:
            raise HTTPError(400, f"{name}: {shown!r} is not a number; expected a number in [{minimum}, {maximum}]") from None
        if not minimum <= number <= maximum:  # also rejects NaN
            raise HTTPError(400, f"{name}: {shown} is out of range; expected a number in [{minimum}, {maximum}]")
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
            raise HTTPError(404, f"run: no CNN Viz data for run {run[:200]!r}; known runs: {_short(self.index().runs)}")
        return run

    def info(self, run: str, kind: str, layer: str | None) -> SeriesInfo:
        info = self.index().get(run, kind, layer)
        if info is None:
            if layer is None:
                raise HTTPError(404, f"run {run[:200]!r} has no {kind!r} data")
            layers = self.index().layers(run, kind)
            raise HTTPError(404, f"layer: run {run[:200]!r} has no {kind!r} data for layer {layer[:200]!r}; layers with {kind}: {_short(layers)}")
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
        raise HTTPError(404, f"step: {step} is not a logged step of {what}; nearest logged step is {nearest} ({len(steps)} steps from {int(steps[0])} to {int(steps[-1])})")
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
    return wrappers.Response(body, status=200, content_type="application/json", headers=[
        ("X-Content-Type-Options", "nosniff"), ("Expires", "0"), ("Cache-Control", "no-cache, must-revalidate")])


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
            if info.max_length is not None:
                entry["count"] = info.max_length
            if info.layer is None:
                run_kinds[info.kind] = entry
            else:
                layers.setdefault(info.layer, {})[info.kind] = entry
        runs.append({
            "name": run,
            "layers": [{"name": name, "kinds": layers[name]} for name in sorted(layers, key=natural_key)],
            "kinds": run_kinds,  # series of the whole run (no layer), e.g. the probe images
            "probe": run_kinds.get(metadata.PROBE),
        })
    return {"runs": runs, "kinds": list(metadata.KINDS), "views": sorted(ROUTE_GROUPS)}


def runs_steps(request: Any, query: Query, env: RouteContext) -> dict:
    """The logged steps (and wall times) of one series."""
    run = env.run(query)
    kind = query.choice("kind", metadata.KINDS)
    layer = query.text("layer", required=False)  # None for a run-level series such as the probe
    series = env.series(env.info(run, kind, layer))
    return {"run": run, "kind": kind, "layer": layer, "steps": series.steps.tolist(), "wall_times": series.wall_times.tolist()}


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
    return _incompressible_json({
        "run": run,
        "layer": layer,
        "shape": list(shape),
        "steps": series.steps[start:stop].tolist(),
        "wall_times": series.wall_times[start:stop].tolist(),
        "dtype": "float32",
        "data": base64.b64encode(np.ascontiguousarray(block).tobytes()).decode("ascii"),
    })


def filters_smoothness(request: Any, query: Query, env: RouteContext) -> dict:
    """Per-filter smoothness in [-1, 1] (1 = smooth) at every logged step, and its layer mean."""
    run, layer, info, series = env.layer_series(query, metadata.SMOOTHNESS)

    def build() -> dict:
        steps, matrix = _matrix(series)
        with np.errstate(all="ignore"):
            finite = np.where(np.isfinite(matrix), matrix, np.nan)
            mean = np.nanmean(finite, axis=1) if matrix.size else np.zeros(len(steps))
        return {"run": run, "layer": layer, "steps": steps.tolist(), "values": _floats(matrix), "mean": _floats(mean)}

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
        "probe": None,
    }
    probe_info = env.index().get(run, metadata.PROBE, None)
    if probe_info is not None:
        probe = env.series(probe_info)
        if len(probe.steps):
            at = probe.at_or_before(step)
            probe_step = int(probe.steps[at])
            result["probe"] = {
                "step": probe_step,
                "images": [image_url(run, metadata.PROBE, None, probe_step, i) for i in range(len(probe.values[at]))],
                "labels": probe_info.content.get("labels"),
                "class_names": probe_info.content.get("class_names"),
            }
    return result


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
            fraction = (np.isfinite(matrix) & (matrix <= threshold)).mean(axis=1) if matrix.size else np.zeros(len(steps))
            entry = {"layer": layer, "steps": steps.tolist(), "dead_fraction": _floats(fraction), "filters": int(matrix.shape[1]) if matrix.size else 0}
            if len(series.memo) >= MEMO_ENTRIES:
                series.memo.clear()
            series.memo[("fraction", threshold)] = entry
        layers.append(entry)
    return {"run": run, "threshold": threshold, "layers": layers}


ROUTE_GROUPS: dict[str, dict[str, Handler]] = {
    "runs": {"list": runs_list, "steps": runs_steps, "image": runs_image},
    "filters": {"kernels": filters_kernels, "smoothness": filters_smoothness},
    "activations": {"step": activations_step},
    "dead": {"rates": dead_rates, "fractions": dead_fractions},
}


def json_response(request: Any, payload: Any, status: int = 200) -> Any:
    """JSON with NaN-free numbers (``allow_nan=False``), gzip when the client accepts it."""
    body = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    return http_util.Respond(request, body, "application/json", code=status)


def error_response(request: Any, status: int, message: str) -> Any:
    return json_response(request, {"error": message}, status=status)


def dispatch(request: Any, group: str, route: str, env: RouteContext) -> Any:
    """Run ``api/<group>/<route>``; client errors become 4xx JSON."""
    routes = ROUTE_GROUPS.get(group)
    if routes is None:
        return error_response(request, 404, f"unknown view {group[:100]!r}; expected one of {sorted(ROUTE_GROUPS)}")
    handler = routes.get(route)
    if handler is None:
        return error_response(request, 404, f"unknown route {route[:100]!r} of view {group!r}; expected one of {sorted(routes)}")
    if request.method not in ("GET", "HEAD"):
        return error_response(request, 405, f"method {request.method} not allowed; expected GET")
    try:
        result = handler(request, Query(request.args), env)
    except HTTPError as error:
        return error_response(request, error.status, error.message)
    except tb_errors.PublicError as error:  # raised by the data provider (e.g. a run removed meanwhile)
        return error_response(request, error.http_code, str(error)[:500])
    if isinstance(result, dict):
        return json_response(request, result)
    return result
