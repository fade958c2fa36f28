"""What a route handler works with: the request's series, found by run, kind and layer, and their steps.

A route names its series through :class:`RouteContext` (``run``/``layer`` from the query, a
404 naming what exists otherwise), reads a logged step exactly (:func:`position`, a 404
naming the nearest step otherwise) and takes what other series logged on other schedules add
through :meth:`RouteContext.logged_at` (the exact, nearest or last earlier logged step).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from urllib.parse import urlencode

import numpy as np

from tb_cnnviz import metadata
from tb_cnnviz.plugin.data import DataIndex, PluginData, Series, SeriesInfo
from tb_cnnviz.plugin.http import MAX_COUNT, HTTPError, Query

MAX_MATRIX_VALUES = 4 << 20  # steps x filters in one series response
EXACT = "exact"  # the step itself
NEAREST = "nearest"  # the nearest logged step (the earlier one on a tie)
AT_OR_BEFORE = "at_or_before"  # the last logged step at or before it (the first one if none is)


@dataclasses.dataclass(frozen=True)
class Logged:
    """One logged step of a series: its description, the step and the value there
    (an array for a tensor series, the blob keys for a blob series)."""

    info: SeriesInfo
    step: int
    value: Any


def short(names: list, limit: int = 20) -> list:
    """At most ``limit`` names for an error message, then ``"..."``."""
    return names[:limit] + (["..."] if len(names) > limit else [])


def position(series: Series, step: int, what: str) -> int:
    """Index of the logged ``step`` of ``series``; a 404 naming the nearest logged step otherwise."""
    found = series.position(step)
    if found is None:
        steps = series.steps
        if len(steps) == 0:
            raise HTTPError(404, f"step: {what} has no logged steps yet")
        nearest = int(steps[np.argmin(np.abs(steps - step))])
        raise HTTPError(
            404,
            f"step: {step} is not a logged step of {what}; nearest logged step is {nearest} "
            f"({len(steps)} steps from {int(steps[0])} to {int(steps[-1])})",
        )
    return found


def nearest(series: Series, step: int, match: str = NEAREST) -> int | None:
    """Index of the logged step of ``series`` that ``match`` picks for ``step``; None when there is none."""
    if not len(series.steps):
        return None
    if match == EXACT:
        return series.position(step)
    if match == AT_OR_BEFORE:
        return series.at_or_before(step)
    after = int(np.searchsorted(series.steps, step))
    if after >= len(series.steps):
        return len(series.steps) - 1
    if after == 0 or int(series.steps[after]) == step:
        return after
    return after if int(series.steps[after]) - step < step - int(series.steps[after - 1]) else after - 1


def matrix(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Steps x filters of a per-filter series; steps evenly thinned if it is huge; ragged steps dropped."""
    if not series.values:
        return series.steps, np.zeros((0, 0), dtype=np.float32)
    width = series.values[-1].size
    keep = [i for i, v in enumerate(series.values) if v.size == width]
    if len(keep) * width > MAX_MATRIX_VALUES:
        rows = max(1, MAX_MATRIX_VALUES // max(width, 1))
        keep = [keep[int(round(j))] for j in np.linspace(0, len(keep) - 1, rows)]
    values = np.stack([series.values[i].reshape(-1) for i in keep]).astype(np.float32)
    return series.steps[keep], values


def class_index(value: float) -> int | None:
    """A class index stored as a float (-1 or non-finite = undefined)."""
    return int(value) if math.isfinite(value) and 0 <= value < 2**31 else None


def checked_index(query: Query, name: str, count: int, what: str) -> int:
    """Query argument ``name`` as an index below ``count`` (400 if malformed, 404 if out of range)."""
    index = query.integer(name, minimum=0, maximum=MAX_COUNT)
    if index >= count:
        raise HTTPError(404, f"{name}: {index} is out of range; {what} has {count}")
    return index


def image_url(run: str, kind: str, layer: str | None, step: int, index: int) -> str:
    """Relative URL (from the plugin root) of one PNG of a blob series."""
    args = {"run": run, "kind": kind}
    if layer is not None:
        args["layer"] = layer
    args.update(step=str(step), index=str(index))
    return "api/runs/image?" + urlencode(args)


@dataclasses.dataclass
class RouteContext:
    """What a route handler needs: the request's TensorBoard context and the cached data."""

    ctx: Any
    experiment_id: str
    data: PluginData
    _index: DataIndex | None = None

    def index(self) -> DataIndex:
        """The plugin's series (read once per request)."""
        if self._index is None:
            self._index = self.data.index(self.ctx, self.experiment_id)
        return self._index

    def run(self, query: Query) -> str:
        """The query's ``run``; a 404 naming the known runs if it has no CNN Viz data."""
        run = query.text("run")
        if run not in self.index().runs:
            raise HTTPError(
                404, f"run: no CNN Viz data for run {run[:200]!r}; known runs: {short(self.index().runs)}"
            )
        return run

    def info(self, run: str, kind: str, layer: str | None) -> SeriesInfo:
        """The series of ``kind`` (and ``layer``) in ``run``; a 404 naming the layers that have it otherwise."""
        info = self.index().get(run, kind, layer)
        if info is None:
            if layer is None:
                raise HTTPError(404, f"run {run[:200]!r} has no {kind!r} data")
            layers = self.index().layers(run, kind)
            raise HTTPError(
                404,
                f"layer: run {run[:200]!r} has no {kind!r} data for layer {layer[:200]!r}; "
                f"layers with {kind}: {short(layers)}",
            )
        return info

    def series(self, info: SeriesInfo) -> Series:
        """Every kept step of a series."""
        return self.data.series(self.ctx, self.experiment_id, info)

    def layer_series(self, query: Query, kind: str) -> tuple[str, str, SeriesInfo, Series]:
        """The series of ``kind`` named by the query's ``run`` and ``layer``."""
        run = self.run(query)
        layer = query.text("layer")
        info = self.info(run, kind, layer)
        return run, layer, info, self.series(info)

    def optional(self, run: str, kind: str, layer: str | None) -> Series | None:
        """The series of ``kind`` (and ``layer``) in ``run`` if it was logged, else None."""
        info = self.index().get(run, kind, layer)
        return None if info is None else self.series(info)

    def logged_at(
        self, run: str, kind: str, layer: str | None, step: int, match: str = EXACT
    ) -> Logged | None:
        """The logged step of an optional series that ``match`` picks for ``step``; None if there is none."""
        info = self.index().get(run, kind, layer)
        if info is None:
            return None
        series = self.series(info)
        at = nearest(series, step, match)
        return None if at is None else Logged(info, int(series.steps[at]), series.values[at])

    def probe(self, run: str, step: int) -> dict | None:
        """The probe images logged at or before ``step`` (the first ones if none before), with labels,
        class names and image names (CLI runs: file names); None without probe images."""
        logged = self.logged_at(run, metadata.PROBE, None, step, AT_OR_BEFORE)
        if logged is None:
            return None
        return {
            "step": logged.step,
            "images": [
                image_url(run, metadata.PROBE, None, logged.step, i) for i in range(len(logged.value))
            ],
            "labels": logged.info.content.get("labels"),
            "class_names": logged.info.content.get("class_names"),
            "names": logged.info.content.get("names"),
        }
