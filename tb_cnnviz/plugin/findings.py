"""Findings of the Overview tab: rules over what a run logged, each with its evidence and a link.

Pure functions over plain lists and arrays (no TensorBoard, no data provider), so each rule is
tested on inputs made to trigger it and on inputs that must not (``tests/plugin/test_findings.py``);
``routes/overview.py`` feeds them what the other views' routes read. The rules, their thresholds and
the reasons for each threshold are in ``docs/findings.md``. A finding names the view and the layer
and step that show its evidence, so the Overview links to it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

ERROR = "error"  # the numbers themselves are broken (non-finite weights or activations)
WARNING = "warning"  # training or the network most likely needs a change
INFO = "info"  # worth knowing; the picture may be incomplete
SEVERITIES = (ERROR, WARNING, INFO)

# Thresholds (reasons in docs/findings.md)
DEAD_FRACTION = 0.25  # a layer with at least this share of dead filters at its last logged step...
DEAD_RISE = 0.10  # ...that rose by at least this much since its first logged step
SMOOTHNESS_LOW = 0.15  # first-layer smoothness below this is noise-like (white noise scores ~0)
SMOOTHNESS_BAND = 0.02  # "flat": the mean stays within this of its last value
FLAT_POINTS = 4  # ...over at least this many logged steps
FLAT_SHARE = 0.5  # ...spanning at least this share of the logged steps' range
NOT_FAITHFUL_SHARE = 0.25  # Grad-CAM no better than random on at least this share of the probe images
SEPARABILITY_MARGIN = 0.02  # the deepest layer must beat the shallowest by more than this (or one image)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One finding: which rule, how serious, the sentence with its evidence, and where it is shown."""

    rule: str
    severity: str
    text: str
    view: str
    layer: str | None = None
    step: int | None = None

    def as_json(self) -> dict:
        return dataclasses.asdict(self)


def steps_text(step: int) -> str:
    """``4,000``: a step as people read it."""
    return f"{int(step):,}"


def percent(value: float) -> str:
    """``38%`` (``<1%`` for a small non-zero share)."""
    shown = round(100 * float(value))
    return "<1%" if shown == 0 and value > 0 else f"{shown}%"


def _finite_pairs(steps: Sequence, values: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` and ``values`` (None/NaN dropped) as arrays, in step order."""
    pairs = [(int(s), float(v)) for s, v in zip(steps, values) if v is not None and math.isfinite(float(v))]
    pairs.sort()
    return np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs])


# ----------------------------------------------------------------------------- dead filters
def dead_filters(
    layer: str, semantics: str, steps: Sequence[int], fractions: Sequence, filters: int | None = None
) -> list[Finding]:
    """A layer whose dead (``relu``) or inactive (``smooth``) fraction is at least ``DEAD_FRACTION`` at its
    last logged step and rose by at least ``DEAD_RISE`` since its first: "since" is the first step of the
    last stretch at or above the threshold. Layers whose semantics define no dead filters never trigger."""
    if semantics not in ("relu", "smooth"):
        return []
    xs, ys = _finite_pairs(steps, fractions)
    if len(ys) < 2 or ys[-1] < DEAD_FRACTION or ys[-1] - ys[0] < DEAD_RISE:
        return []
    since = len(ys) - 1
    while since > 0 and ys[since - 1] >= DEAD_FRACTION:
        since -= 1
    word = "dead" if semantics == "relu" else "inactive"
    count = f" ({round(ys[-1] * filters)} of {filters})" if filters else ""
    text = (
        f"{layer}: {percent(ys[-1])} of filters {word}{count} since step {steps_text(xs[since])} "
        f"(was {percent(ys[0])} at step {steps_text(xs[0])})"
    )
    return [Finding("dead_filters_rising", WARNING, text, "dead", layer, int(xs[since]))]


# ----------------------------------------------------------------------------- smoothness
def smoothness(layer: str, steps: Sequence[int], means: Sequence) -> list[Finding]:
    """The first layer's mean smoothness flat (within ``SMOOTHNESS_BAND`` of its last value) and low
    (below ``SMOOTHNESS_LOW``) over the trailing stretch of at least ``FLAT_POINTS`` logged steps that
    covers at least ``FLAT_SHARE`` of the logged range: noisy filters (CS231n, seed 002)."""
    xs, ys = _finite_pairs(steps, means)
    if len(ys) < FLAT_POINTS or ys[-1] >= SMOOTHNESS_LOW:
        return []
    start = len(ys) - 1
    while start > 0 and abs(ys[start - 1] - ys[-1]) <= SMOOTHNESS_BAND:
        start -= 1
    points = len(ys) - start
    span = int(xs[-1] - xs[start])
    if points < FLAT_POINTS or span < FLAT_SHARE * (xs[-1] - xs[0]) or span <= 0:
        return []
    text = (
        f"{layer}: first-layer smoothness flat at {ys[-1]:.2f} for {steps_text(span)} steps "
        f"(from step {steps_text(xs[start])}; white noise scores about 0): noisy filters, "
        "more training or more regularisation (CS231n)"
    )
    return [Finding("smoothness_flat", WARNING, text, "filters", layer, int(xs[-1]))]


# ----------------------------------------------------------------------------- Grad-CAM faithfulness
def faithfulness(layer: str, step: int, no_better_than_random: Sequence) -> list[Finding]:
    """Grad-CAM no better than a random map (the faithfulness route's flag per probe image) on at least
    ``NOT_FAITHFUL_SHARE`` of the measured images at the last logged step."""
    measured = [flag for flag in no_better_than_random if flag is not None]
    flagged = sum(flag is True for flag in measured)
    if not measured or flagged == 0 or flagged < NOT_FAITHFUL_SHARE * len(measured):
        return []
    text = (
        f"{layer}: Grad-CAM no better than random on {flagged} of {len(measured)} probe images "
        f"at step {steps_text(step)} (deletion test)"
    )
    return [Finding("gradcam_not_faithful", WARNING, text, "gradcam", layer, int(step))]


# ----------------------------------------------------------------------------- non-finite values
def _first_nonfinite(layers: Sequence[tuple]) -> tuple | None:
    """Of ``(layer, steps, counts, total)`` rows (in layer order), the earliest step with a non-zero
    count and the first layer that has one there: ``(layer, step, count, total, layers with any)``."""
    first = None
    affected = 0
    for layer, steps, counts, totals in layers:
        hits = [
            (int(step), int(count), int(total))
            for step, count, total in zip(steps, counts, totals)
            if count > 0
        ]
        if not hits:
            continue
        affected += 1
        if first is None or hits[0][0] < first[1]:
            first = (layer, *hits[0])
    return None if first is None else (*first, affected)


def nonfinite_weights(layers: Sequence[tuple]) -> list[Finding]:
    """Non-finite (NaN or infinite) weights in a logged kernel. ``layers``: ``(layer, steps, non-finite
    counts, weights per step)`` per kernel layer, in layer order. One finding: the first step with any,
    the first layer with some there, and how many layers have some by the end."""
    first = _first_nonfinite(layers)
    if first is None:
        return []
    layer, step, count, total, affected = first
    more = f"; {affected} of {len(layers)} logged kernel layers have some" if affected > 1 else ""
    text = f"{layer}: non-finite weights at step {steps_text(step)} ({count:,} of {total:,} weights){more}"
    return [Finding("nonfinite_weights", ERROR, text, "filters", layer, step)]


def nonfinite_activations(layers: Sequence[tuple]) -> list[Finding]:
    """Filters whose activation rate is NaN: a NaN or infinite value reached the layer's activations.
    ``layers``: ``(layer, steps, NaN-rate counts, filters per step)`` per dead-filter layer, in layer order.
    One finding, as :func:`nonfinite_weights`."""
    first = _first_nonfinite(layers)
    if first is None:
        return []
    layer, step, count, total, affected = first
    more = f"; {affected} of {len(layers)} layers have some" if affected > 1 else ""
    text = (
        f"{layer}: non-finite activations at step {steps_text(step)} ({count} of {total} filters; "
        f"NaN or infinite weights or inputs upstream){more}"
    )
    return [Finding("nonfinite_activations", ERROR, text, "dead", layer, step)]


# ----------------------------------------------------------------------------- separability
def separability(
    step: int, layers: Sequence[str], accuracies: Sequence, test_images: Sequence | None = None
) -> list[Finding]:
    """At the last logged step, the deepest measured layer's held-out accuracy is not above the shallowest
    one's by more than ``SEPARABILITY_MARGIN`` (or one held-out image, whichever is larger): depth does not
    make the classes more linearly separable (``layers`` in depth order)."""
    measured = [
        (name, float(acc), (test_images[i] if test_images else None))
        for i, (name, acc) in enumerate(zip(layers, accuracies))
        if acc is not None and math.isfinite(float(acc))
    ]
    if len(measured) < 2:
        return []
    (first, low, _), (last, high, images) = measured[0], measured[-1]
    margin = max(SEPARABILITY_MARGIN, 1 / images if images else 0)
    if high - low > margin + 1e-6:  # accuracies arrive rounded to 5 digits
        return []
    best = max(measured, key=lambda m: m[1])
    peak = f"; best {best[0]} {best[1]:.2f}" if best[0] not in (first, last) else ""
    text = (
        f"separability not rising with depth at step {steps_text(step)}: {first} {low:.2f}, "
        f"{last} {high:.2f}{peak} (held-out linear-probe accuracy)"
    )
    return [Finding("separability_flat", WARNING, text, "separability", last, int(step))]


# ----------------------------------------------------------------------------- skipped snapshots
def dropped(skipped: Mapping[str, Mapping]) -> list[Finding]:
    """Background snapshots the callback skipped (``api/runs/list``'s ``dropped``): the picture has gaps."""
    found = []
    for name, entry in sorted(skipped.items()):
        count = int(entry.get("count") or 0)
        if count <= 0:
            continue
        text = (
            f"{count} {name} snapshot{'s' if count != 1 else ''} skipped (last at step "
            f"{steps_text(entry.get('last_step') or 0)}): the previous one was still running; "
            "a longer interval for it would log every one"
        )
        found.append(
            Finding("snapshots_skipped", INFO, text, entry.get("view") or "", None, entry.get("last_step"))
        )
    return found


def ordered(findings: Sequence[Finding]) -> list[Finding]:
    """Most serious first, then by step."""
    return sorted(
        findings, key=lambda f: (SEVERITIES.index(f.severity), f.step if f.step is not None else -1)
    )
