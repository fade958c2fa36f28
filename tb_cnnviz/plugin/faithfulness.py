"""The Grad-CAM view's faithfulness route: deletion and insertion curves of each probe image's CAM and of
a random map, and the gap over training. Served as ``api/gradcam/faithfulness`` by the ``gradcam``
group (``routes/gradcam.py``); it lives here because every module under ``routes/`` is a view's group.

``api/gradcam/faithfulness?run=&layer=&step=`` answers, for one Grad-CAM layer:

- ``logged``: False (with a ``hint``) when the run has no faithfulness data for the layer (it is
  off by default), so the view can say how to get it instead of failing;
- ``step``: the logged faithfulness step nearest the requested one (its own schedule may differ
  from the Grad-CAM overlays'), ``requested_step`` as asked;
- ``fractions`` and per image its four curves (``deletion_cam``, ``deletion_random``,
  ``insertion_cam``, ``insertion_random``) and their areas at that step, the deletion gap (random
  minus CAM area: positive when the CAM removes the evidence faster than chance), the insertion
  gap (CAM minus random area), the explained class's probability on the original image, and
  ``no_better_than_random``: the CAM's deletion area is not below the random map's by at least
  ``MIN_GAP`` (0.01 of the area's [0, 1] range: an untrained network's gaps are about 1e-5, the
  trained example CNN's about 0.2), also in the answer as ``min_gap``;
- ``over_training``: per logged step the mean deletion and insertion gaps over the images and the
  number of images no better than random.

A value that is not finite is null, never a number; a flag of an image with a null area is null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tb_cnnviz.plugin.context import RouteContext, nearest
from tb_cnnviz.plugin.http import Query, finite, floats

KIND = "faithfulness"
CURVES_KIND = "faithfulness_curves"
MIN_GAP = 0.01  # a deletion gap below this is no better than random
COLUMNS = ("deletion_cam", "deletion_random", "insertion_cam", "insertion_random")
HINT = (
    "No faithfulness data for this layer: pass faithfulness=True to CNNVizCallback to score each "
    "Grad-CAM map against a random map by deletion and insertion (off by default: it costs a few "
    "training steps per Grad-CAM snapshot)."
)


def _areas(value: np.ndarray) -> np.ndarray:
    """``[N, 4]`` areas of one logged step (an unexpected shape reads as no images)."""
    return value.reshape(-1, 4) if value.size and value.size % 4 == 0 else np.zeros((0, 4), np.float32)


def _gaps(areas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image the deletion gap (random - CAM) and the insertion gap (CAM - random), float64."""
    areas = areas.astype(np.float64)
    return areas[:, 1] - areas[:, 0], areas[:, 2] - areas[:, 3]


def _flags(deletion_gap: np.ndarray) -> list:
    """Per image: True when the CAM is no better than random (deletion gap below ``MIN_GAP``), None if unmeasured."""
    return [None if not np.isfinite(gap) else bool(gap < MIN_GAP) for gap in deletion_gap]


def _over_training(series) -> dict:
    """Per logged step: mean gaps over the images and how many images are no better than random."""
    steps, deletion, insertion, flagged, counts = [], [], [], [], []
    for step, value in zip(series.steps, series.values):
        areas = _areas(value)
        deletion_gap, insertion_gap = _gaps(areas)
        finite_rows = np.isfinite(deletion_gap)
        steps.append(int(step))
        deletion.append(finite(deletion_gap[finite_rows].mean()) if finite_rows.any() else None)
        finite_insertion = np.isfinite(insertion_gap)
        insertion.append(finite(insertion_gap[finite_insertion].mean()) if finite_insertion.any() else None)
        flagged.append(int(sum(flag is True for flag in _flags(deletion_gap))))
        counts.append(int(len(areas)))
    return {
        "steps": steps,
        "deletion_gap": deletion,
        "insertion_gap": insertion,
        "no_better_than_random": flagged,
        "images": counts,
    }


def gradcam_faithfulness(request: Any, query: Query, env: RouteContext) -> dict:
    """One Grad-CAM layer's deletion/insertion curves at a step and its gaps over training (module docstring)."""
    run = env.run(query)
    layer = query.text("layer")
    requested = query.integer("step")
    info = env.index().get(run, KIND, layer)
    if info is None:
        return {"run": run, "layer": layer, "logged": False, "hint": HINT}
    series = env.series(info)
    if not len(series.steps):
        return {"run": run, "layer": layer, "logged": False, "hint": HINT}
    at = nearest(series, requested)
    step = int(series.steps[at])
    areas = _areas(series.values[at])
    deletion_gap, insertion_gap = _gaps(areas)
    flags = _flags(deletion_gap)
    curves_info = env.index().get(run, CURVES_KIND, layer)
    fractions, curves = None, None
    if curves_info is not None:
        curve_series = env.series(curves_info)
        where = curve_series.position(step)
        if where is not None:
            value = curve_series.values[where]
            points = len(curves_info.content.get("fractions") or [])
            if points and value.size == len(areas) * 4 * points:
                curves = value.reshape(len(areas), 4, points)
                fractions = curves_info.content["fractions"]
    images = []
    for i, row in enumerate(areas):
        images.append(
            {
                "index": i,
                **dict(zip(COLUMNS, floats(row))),
                "deletion_gap": finite(deletion_gap[i]),
                "insertion_gap": finite(insertion_gap[i]),
                "no_better_than_random": flags[i],
                "original_probability": None if curves is None else finite(curves[i, 0, 0]),
                "curves": None if curves is None else dict(zip(COLUMNS, floats(curves[i]))),
            }
        )
    over = series.memo.get("over_training", lambda: _over_training(series))
    return {
        "run": run,
        "layer": layer,
        "logged": True,
        "step": step,
        "requested_step": requested,
        "columns": list(COLUMNS),
        "fractions": fractions,
        "images": images,
        "no_better_than_random": sum(flag is True for flag in flags),
        "min_gap": MIN_GAP,
        "over_training": over,
        "probe": env.probe(run, step),
        **info.extras(),
    }
