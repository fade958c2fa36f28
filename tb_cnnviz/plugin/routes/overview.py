"""Routes of the Overview tab (``api/overview/...``): one page per run built only from what the other
views' data already holds, and the findings computed from it (``tb_cnnviz/plugin/findings.py``).

``api/overview/run?run=`` answers:

- ``dead``: every dead-filter layer's dead fraction per logged step (``api/dead/fractions``' answer:
  layers whose semantics define no dead filters have null fractions and their ``semantics``);
- ``rate_spread``: per dead-filter layer and logged step, the standard deviation of its filters' finite
  activation rates (how differently its filters fire; at most 0.5);
- ``smoothness``: the first kernel layer's (natural name order) mean and spread (standard deviation
  over its filters) of the per-filter smoothness per logged step;
- ``separability``: per layer in depth order the held-out accuracy at the last logged step, and the
  deepest layer's accuracy over training (``api/separability/layers``' answer);
- ``faithfulness``: the first Grad-CAM layer's mean deletion gap and the number of probe images no
  better than random per logged step (``api/gradcam/faithfulness``' ``over_training``);
- ``probe_accuracy``: per logged Grad-CAM step the share of probe images whose predicted class is
  their label (``gradcam_info``: predicted == target; images without a label are left out);
- ``findings``: rule, severity, sentence with the evidence, and the view, layer and step to open;
- ``hints``: for each part that was not logged, what to pass to ``CNNVizCallback`` to get it.

A part that was not logged is null. Every value that is not finite is null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tb_cnnviz import kinds, metadata
from tb_cnnviz.plugin import findings as rules
from tb_cnnviz.plugin.context import RouteContext, matrix
from tb_cnnviz.plugin.faithfulness import _areas, _flags, _gaps, _over_training
from tb_cnnviz.plugin.http import Query, floats
from tb_cnnviz.plugin.routes import dead, runs, separability

SEPARABILITY = "separability"
FAITHFULNESS = "faithfulness"
FAITHFULNESS_HINT = (
    "Pass probe=(images, labels) and faithfulness=True to CNNVizCallback: it then scores each Grad-CAM map "
    "against a seeded random map by deletion and insertion (off by default: it costs a few training steps "
    "per Grad-CAM snapshot)."
)


def _dead(env: RouteContext, run: str) -> tuple[dict | None, dict | None, list]:
    """The dead fractions of every layer (``api/dead/fractions``), the spread of its filters' activation
    rates per step, and the dead-filter and non-finite activation findings."""
    answer = dead.dead_fractions(None, Query({"run": run}), env)
    if not answer["layers"]:
        return None, None, []
    found, nonfinite, spreads = [], [], []
    for entry in answer["layers"]:
        layer = entry["layer"]
        found += rules.dead_filters(
            layer, entry["semantics"], entry["steps"], entry["dead_fraction"], entry["filters"]
        )
        series = env.series(env.info(run, metadata.DEAD_FILTERS, layer))
        steps, counts = series.memo.get(("overview_nonfinite",), lambda s=series: _nonfinite_per_step(s))
        nonfinite.append((layer, steps, counts, [v.size for v in series.values]))
        spreads.append(series.memo.get(("overview_spread",), lambda s=series, name=layer: _spread(s, name)))
    return answer, {"layers": spreads}, found + rules.nonfinite_activations(nonfinite)


def _spread(series, layer: str) -> dict:
    """Per logged step, the standard deviation of the layer's finite activation rates over its filters
    (0: every filter as active as the others; rates are in [0, 1], so at most 0.5)."""
    spread = []
    for value in series.values:
        finite = value[np.isfinite(value)].astype(np.float64)
        spread.append(float(finite.std()) if finite.size else np.nan)
    return {"layer": layer, "steps": series.steps.tolist(), "spread": floats(spread)}


def _nonfinite_per_step(series) -> tuple[list, list]:
    """Per logged step, how many values of the tensor are NaN or infinite."""
    return series.steps.tolist(), [int((~np.isfinite(v)).sum()) for v in series.values]


def _kernels(env: RouteContext, run: str) -> list:
    """Non-finite weight findings of every logged kernel layer."""
    layers = []
    for layer in env.index().layers(run, metadata.KERNELS):
        series = env.series(env.info(run, metadata.KERNELS, layer))
        steps, counts = series.memo.get(("overview_nonfinite",), lambda s=series: _nonfinite_per_step(s))
        layers.append((layer, steps, counts, [v.size for v in series.values]))
    return rules.nonfinite_weights(layers)


def _smoothness(env: RouteContext, run: str) -> tuple[dict | None, list]:
    """The first kernel layer's smoothness mean and spread over its filters per step, and its finding."""
    layers = env.index().layers(run, metadata.SMOOTHNESS)
    if not layers:
        return None, []
    layer = layers[0]
    series = env.series(env.info(run, metadata.SMOOTHNESS, layer))

    def build() -> dict:
        steps, values = matrix(series)
        with np.errstate(all="ignore"):
            finite = np.where(np.isfinite(values), values, np.nan)
            some = np.isfinite(finite).any(axis=1) if values.size else np.zeros(len(steps), bool)
            mean = np.where(some, np.nanmean(np.where(some[:, None], finite, 0), axis=1), np.nan)
            spread = np.where(some, np.nanstd(np.where(some[:, None], finite, 0), axis=1), np.nan)
        return {"layer": layer, "steps": steps.tolist(), "mean": floats(mean), "spread": floats(spread)}

    answer = series.memo.get(("overview_smoothness",), build)
    return answer, rules.smoothness(layer, answer["steps"], answer["mean"])


def _separability(env: RouteContext, run: str) -> tuple[dict | None, list]:
    """Accuracy per layer at the last logged step and the deepest layer's over training, and its finding."""
    answer = separability.separability_layers(None, Query({"run": run}), env)
    if not answer["layers"] or not answer["steps"]:
        return None, []
    step = answer["steps"][-1]

    def at(entry: dict, field: str) -> Any:
        return entry[field][entry["steps"].index(step)] if step in entry["steps"] else None

    layers = [
        {
            "layer": entry["layer"],
            "measured_at": entry["measured_at"],
            "accuracy": at(entry, "accuracy"),
            "chance": at(entry, "chance"),
            "test_images": at(entry, "test_images"),
        }
        for entry in answer["layers"]
    ]
    deepest = answer["layers"][-1]
    part = {
        "step": step,
        "layers": layers,
        "deepest": {"layer": deepest["layer"], "steps": deepest["steps"], "accuracy": deepest["accuracy"]},
    }
    found = rules.separability(
        step,
        [entry["layer"] for entry in layers],
        [entry["accuracy"] for entry in layers],
        [entry["test_images"] for entry in layers],
    )
    return part, found


def _faithfulness(env: RouteContext, run: str) -> tuple[dict | None, list]:
    """The first faithfulness layer's gaps over training (as ``api/gradcam/faithfulness``), and its finding."""
    layers = env.index().layers(run, FAITHFULNESS)
    if not layers:
        return None, []
    layer = layers[0]
    series = env.series(env.info(run, FAITHFULNESS, layer))
    if not len(series.steps):
        return None, []
    over = series.memo.get("over_training", lambda: _over_training(series))
    step = int(series.steps[-1])
    flags = _flags(_gaps(_areas(series.values[-1]))[0])
    return {"layer": layer, **over}, rules.faithfulness(layer, step, flags)


def _probe_accuracy(env: RouteContext, run: str) -> dict | None:
    """Per logged Grad-CAM step, the share of labelled probe images classified as their label."""
    layers = env.index().layers(run, metadata.GRADCAM_INFO)
    if not layers:
        return None
    layer = layers[0]
    series = env.series(env.info(run, metadata.GRADCAM_INFO, layer))

    def build() -> dict:
        accuracy, images = [], []
        for value in series.values:
            table = value.reshape(-1, 4) if value.size and value.size % 4 == 0 else np.zeros((0, 4))
            with np.errstate(invalid="ignore"):
                target, predicted = table[:, 0], table[:, 1]
                known = np.isfinite(target) & np.isfinite(predicted) & (target >= 0) & (predicted >= 0)
            images.append(int(known.sum()))
            accuracy.append(float((target[known] == predicted[known]).mean()) if known.any() else None)
        return {
            "layer": layer,
            "steps": series.steps.tolist(),
            "accuracy": [None if a is None else round(a, 5) for a in accuracy],
            "images": images,
        }

    return series.memo.get(("overview_probe_accuracy",), build)


def overview_run(request: Any, query: Query, env: RouteContext) -> dict:
    """Every part of the Overview of one run and its findings (module docstring)."""
    run = env.run(query)
    dead_part, spread_part, dead_found = _dead(env, run)
    smoothness_part, smoothness_found = _smoothness(env, run)
    separability_part, separability_found = _separability(env, run)
    faithfulness_part, faithfulness_found = _faithfulness(env, run)
    probe_part = _probe_accuracy(env, run)
    found = (
        dead_found
        + _kernels(env, run)
        + smoothness_found
        + separability_found
        + faithfulness_found
        + rules.dropped(runs.dropped(env, run))
    )
    view_hints = {view["name"]: view["hint"] for view in kinds.table()["views"]}
    parts = {
        "dead": (dead_part, view_hints["dead"]),
        "rate_spread": (spread_part, view_hints["dead"]),
        "smoothness": (smoothness_part, view_hints["filters"]),
        "separability": (separability_part, view_hints["separability"]),
        "faithfulness": (faithfulness_part, FAITHFULNESS_HINT),
        "probe_accuracy": (probe_part, view_hints["gradcam"]),
    }
    return {
        "run": run,
        **{name: part for name, (part, _) in parts.items()},
        "findings": [finding.as_json() for finding in rules.ordered(found)],
        "hints": {name: hint for name, (part, hint) in parts.items() if part is None},
        "last_step": runs.last_step(env.index(), run),
    }


ROUTES = {"run": overview_run}
