"""Routes shared by every view (``api/runs/...``): the listing, the logged steps of a series, one PNG."""

from __future__ import annotations

from typing import Any

from tensorboard.backend import http_util

from tb_cnnviz import kinds, metadata
from tb_cnnviz.plugin.context import RouteContext, position
from tb_cnnviz.plugin.data import natural_key
from tb_cnnviz.plugin.http import MAX_COUNT, HTTPError, Query


def runs_list(request: Any, query: Query, env: RouteContext) -> dict:
    """Every run with CNN Viz data: its layers, the kinds logged for each and the probe set; and the
    table of kinds (``kinds.table()``: views, titles, empty-state hints) the frontend builds itself from."""
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
    return {
        "runs": runs,
        "kinds": list(metadata.KINDS),
        "views": sorted(["runs", *kinds.VIEWS]),  # the route groups
        "table": kinds.table(),
    }


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
    return http_util.Respond(request, env.data.read_blob(env.ctx, keys[index]), "image/png")


ROUTES = {"list": runs_list, "steps": runs_steps, "image": runs_image}
