"""Routes shared by every view (``api/runs/...``): the listing, its version (what the tab polls), the logged
steps of a series, one PNG."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from tensorboard.backend import http_util

from tb_cnnviz import kinds, metadata
from tb_cnnviz.plugin.context import RouteContext, position
from tb_cnnviz.plugin.data import DataIndex, Series, SeriesInfo, natural_key
from tb_cnnviz.plugin.http import MAX_COUNT, HTTPError, Query, memo_json


def _run_entry(env: RouteContext, run: str) -> dict:
    """One run of ``runs/list``: its layers with the kinds logged at each, its run-level kinds, the probe
    set, its last logged step, its dropped snapshots and its epoch ends (one field per line below: add a
    field here)."""
    index = env.index()
    layers: dict[str, dict] = {}
    run_kinds: dict[str, dict] = {}
    sampled = []
    for info in index.of_run(run):
        entry = {"max_step": info.max_step, **info.extras()}
        found = sampling(env, info)
        if found is not None:
            entry["sampled"] = found
            sampled.append(
                {"kind": info.kind, "layer": info.layer, "view": kinds.view_of(info.kind), **found}
            )
        if info.kind == metadata.EMBEDDING and isinstance(entry.get("labels"), list):
            # up to 10,000 labels: api/embedding/points sends them with the map, the listing stays small
            entry["count"] = len(entry.pop("labels"))
        if info.max_length is not None:
            entry["count"] = info.max_length
        if info.layer is None:
            run_kinds[info.kind] = entry
        else:
            layers.setdefault(info.layer, {})[info.kind] = entry
    return {
        "name": run,
        "layers": [{"name": name, "kinds": layers[name]} for name in sorted(layers, key=natural_key)],
        "kinds": run_kinds,  # series of the whole run (no layer), e.g. the probe images
        "probe": run_kinds.get(metadata.PROBE),
        "last_step": last_step(index, run),
        "dropped": dropped(env, run),
        # series of which TensorBoard kept fewer steps than were logged (--samples_per_plugin cnnviz=N)
        "sampled": sampled,
        "epoch_ends": epoch_ends(env, run),
    }


def epoch_ends(env: RouteContext, run: str) -> list[int]:
    """The steps at which the run's epochs ended (summary kind ``epochs``, logged by ``on_epoch_end``),
    ascending; [] for a run that logged none (the tab then offers no sync by epoch)."""
    info = env.index().get(run, "epochs", None)
    return [] if info is None else [int(step) for step in env.series(info).steps]


def sampling(env: RouteContext, info: SeriesInfo, series: Series | None = None) -> dict | None:
    """``{"kept", "logged"}`` when TensorBoard kept fewer steps of the series than were logged, else None.

    Only a cap (``--samples_per_plugin cnnviz=N``, N > 0; the plugin's default 0 keeps all) samples,
    so a series is read only if it could exceed it (``max_step + 1 > N``). Sampled means it filled
    the cap and its kept steps leave holes in their own schedule: ``logged`` counts the steps from
    the first kept to the last at the greatest common interval of the kept ones (a lower bound:
    earlier steps may have been dropped too)."""
    cap = env.data.samples
    if not cap or cap <= 0 or info.max_step + 1 <= cap:
        return None
    steps = (series if series is not None else env.series(info)).steps
    if len(steps) < max(cap, 2):
        return None
    interval = int(np.gcd.reduce(np.diff(steps))) if len(steps) > 1 else 0
    logged = (int(steps[-1]) - int(steps[0])) // interval + 1 if interval > 0 else len(steps)
    return {"kept": len(steps), "logged": logged} if logged > len(steps) else None


def dropped(env: RouteContext, run: str) -> dict:
    """``{snapshot: {count, last_step, view}}`` for each background snapshot the callback dropped in ``run``
    (the previous one was still running): the last count written, the step of its last drop, its view."""
    info = env.index().get(run, metadata.DROPPED, None)
    if info is None:
        return {}
    series = env.series(info)
    names = info.content.get("snapshots") or []
    found = {}
    previous = np.zeros(len(names))
    for step, value in zip(series.steps, series.values):
        counts = np.nan_to_num(np.asarray(value, dtype=np.float64).reshape(-1)[: len(names)])
        for name, count, before in zip(names, counts, previous):
            if count > 0 and count != before:
                view = kinds.SNAPSHOTS[name].view if name in kinds.SNAPSHOTS else None
                found[name] = {"count": int(count), "last_step": int(step), "view": view}
        previous = np.pad(counts, (0, len(names) - len(counts)))
    return found


def last_step(index: DataIndex, run: str) -> int | None:
    """The largest step any of the run's series logged (None for a run with none)."""
    return max((info.max_step for info in index.of_run(run)), default=None)


def data_version(index: DataIndex) -> str:
    """A short digest of every series' version (run, tag, last step, last wall time, length): it changes
    when a run logs a new step, a series or run appears, or a run is deleted, and only then.
    Computed once per index (a poll of 500 runs would otherwise walk 10,500 series each time)."""
    if "version" in index.derived:
        return index.derived["version"]
    digest = hashlib.blake2b(digest_size=8)
    for run in index.runs:
        for info in sorted(index.of_run(run), key=lambda i: i.tag):
            digest.update(repr((run, info.tag, *info.version)).encode("utf-8", "surrogatepass"))
    index.derived["version"] = digest.hexdigest()
    return index.derived["version"]


def runs_list(request: Any, query: Query, env: RouteContext) -> Any:
    """Every run with CNN Viz data: its layers, the kinds logged for each and the probe set; the
    table of kinds (``kinds.table()``: views, titles, empty-state hints) the frontend builds itself from;
    and the data's ``version`` (what ``runs/version`` answers while nothing changed). Built once per
    version of the data (every series' last step is in the version, so an answer is never stale)."""
    index = env.index()
    version = data_version(index)

    def build() -> dict:
        return {
            "runs": [_run_entry(env, run) for run in index.runs],
            "kinds": list(metadata.KINDS),
            "views": sorted(["runs", *kinds.VIEWS]),  # the route groups
            "table": kinds.table(),
            "version": version,
        }

    return memo_json(request, env.data.listings, (env.experiment_id, version), build)


def runs_version(request: Any, query: Query, env: RouteContext) -> dict:
    """The cheap question the tab polls while it is visible: has anything changed since ``runs/list``?
    ``version`` as in ``runs/list`` and each run's last logged step; no layers, no table (a few bytes
    per run, from the index the plugin already keeps for ``index_ttl`` seconds)."""
    index = env.index()
    return {
        "version": data_version(index),
        "runs": {run: last_step(index, run) for run in index.runs},
    }


def runs_steps(request: Any, query: Query, env: RouteContext) -> dict:
    """The logged steps (and wall times) of one series, and whether TensorBoard sampled it (``sampling``)."""
    run = env.run(query)
    kind = query.choice("kind", metadata.KINDS)
    layer = query.text("layer", required=False)  # None for a run-level series such as the probe
    info = env.info(run, kind, layer)
    series = env.series(info)
    return {
        "run": run,
        "kind": kind,
        "layer": layer,
        "steps": series.steps.tolist(),
        "wall_times": series.wall_times.tolist(),
        "sampled": sampling(env, info, series),  # None: every logged step is here
    }


def runs_image(request: Any, query: Query, env: RouteContext) -> Any:
    """One PNG of a blob series (``kind`` in kernel_grid/activations/probe/...) at a logged step."""
    run = env.run(query)
    kind = query.choice("kind", metadata.BLOB_KINDS)
    layer = query.text("layer", required=False)
    step = query.integer("step")
    index = query.integer("index", minimum=0, maximum=MAX_COUNT)
    series = env.series(env.info(run, kind, layer))
    keys = series.values[position(series, step, f"{kind} of {run!r}")]
    if index >= len(keys):
        raise HTTPError(404, f"index: {index} is out of range; step {step} has {len(keys)} image(s)")
    return http_util.Respond(request, env.data.read_blob(env.ctx, keys[index], run), "image/png")


ROUTES = {"list": runs_list, "version": runs_version, "steps": runs_steps, "image": runs_image}
