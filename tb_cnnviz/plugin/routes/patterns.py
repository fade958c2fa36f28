"""Routes of the Patterns view (``api/patterns/...``): pattern galleries (activation maximisation),
one filter with its kernel, activation rate and top examples, and DeepDreams (``tb-cnnviz dream``).

What a filter's detail adds from series logged on other schedules (kernels, dead-filter rates,
top examples) comes from the nearest logged step of that series, which the answer names.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tb_cnnviz import metadata
from tb_cnnviz.plugin.context import NEAREST, RouteContext, image_url, position, short
from tb_cnnviz.plugin.data import SeriesInfo
from tb_cnnviz.plugin.http import MAX_COUNT, HTTPError, Query, finite, floats
from tb_cnnviz.plugin.routes.embedding import embedding_meta
from tb_cnnviz.plugin.routes.top_images import examples, image_size, top_table

MAX_SETTING = 2**31  # integer settings of a dream (octaves, steps, seed) are below this


def _channels(info: SeriesInfo, count: int, logged=None) -> tuple[list[int], int]:
    """The filter index of each pattern PNG of one step, and how many stand in for the filters asked: the
    step's ``pattern_channels`` (``logged``, when its shape fits), else the content ``channels`` (older runs,
    where every step had the same filters), else 0..count-1."""
    value = None if logged is None else np.asarray(logged.value if hasattr(logged, "value") else logged)
    if value is not None and value.shape == (2, count) and np.isfinite(value).all():
        return [int(v) for v in value[0]], int((value[1] == 0).sum())
    channels = info.content.get("channels")
    return (list(channels) if channels is not None and len(channels) == count else list(range(count))), 0


def failed_patterns(reached: list, reference: list | None) -> list[bool | None]:
    """Per pattern, whether its optimisation failed: the activation it reached is not positive, or is below
    the best probe image's (``reference``; when logged and positive). None where nothing was reached."""
    reference = reference or [None] * len(reached)
    return [
        None if value is None else value <= 0 or (best is not None and best > 0 and value < best)
        for value, best in zip(reached, reference)
    ]


def patterns_step(request: Any, query: Query, env: RouteContext) -> dict:
    """A layer's pattern gallery at a logged step: one PNG per filter, the activation each reached, the best
    activation of its filter on the probe images (when logged) and which patterns failed."""
    run, layer, info, series = env.layer_series(query, metadata.PATTERNS)
    step = query.integer("step")
    count = len(series.values[position(series, step, f"patterns of {layer!r} in {run!r}")])
    logged = {i.kind for i in env.index().of_run(run) if i.layer == layer}
    reached = env.logged_at(run, metadata.PATTERN_VALUES, layer, step)
    values = (floats(reached.value.reshape(-1)) if reached is not None else []) + [None] * count
    best = env.logged_at(run, metadata.PATTERN_REFERENCE, layer, step)
    reference = (floats(best.value.reshape(-1)) + [None] * count)[:count] if best is not None else None
    channels, stand_ins = _channels(info, count, env.logged_at(run, metadata.PATTERN_CHANNELS, layer, step))
    return {
        "run": run,
        "layer": layer,
        "step": step,
        "channels": channels,
        "choice": info.content.get("choice"),
        "stand_ins": stand_ins,
        "images": [image_url(run, metadata.PATTERNS, layer, step, i) for i in range(count)],
        "values": values[:count],
        "reference": reference,
        "failed": failed_patterns(values[:count], reference),
        "size": info.content.get("size"),
        "optimisation_steps": info.content.get("steps"),
        "has": {
            kind: kind in logged for kind in (metadata.KERNELS, metadata.DEAD_FILTERS, metadata.TOP_EXAMPLES)
        },
    }


def _filter_kernel(env: RouteContext, run: str, layer: str, step: int, channel: int) -> dict | None:
    logged = env.logged_at(run, metadata.KERNELS, layer, step, NEAREST)
    if logged is None or logged.value.ndim != 4 or channel >= logged.value.shape[0]:
        return None
    weights = logged.value[channel]
    return {"step": logged.step, "shape": list(weights.shape), "values": floats(weights, 6)}


def _filter_dead(env: RouteContext, run: str, layer: str, step: int, channel: int) -> dict | None:
    logged = env.logged_at(run, metadata.DEAD_FILTERS, layer, step, NEAREST)
    if logged is None or channel >= logged.value.size:
        return None
    rate = float(logged.value.reshape(-1)[channel])
    return {
        "step": logged.step,
        "rate": finite(rate),
        "dead": (rate <= 0) if math.isfinite(rate) else None,
        "window": logged.info.content.get("window"),
        "measured_at": logged.info.content.get("measured_at"),
    }


def _filter_top(env: RouteContext, run: str, layer: str, step: int, channel: int) -> dict | None:
    logged = env.logged_at(run, metadata.TOP_EXAMPLES, layer, step, NEAREST)
    if logged is None:
        return None
    table = top_table(logged.value)
    if channel >= len(table):
        return None
    return {
        "step": logged.step,
        "layer": layer,
        "image_size": image_size(env, run, logged.info, table),
        "examples": examples(table[channel], embedding_meta(env, run, logged.step)),
    }


def patterns_filter(request: Any, query: Query, env: RouteContext) -> dict:
    """One filter of a pattern gallery: the activation its pattern reached at every logged step, and,
    at the logged step nearest to ``step``, its kernel, its activation rate (dead or not) and its top examples."""
    run, layer, info, series = env.layer_series(query, metadata.PATTERNS)
    step = query.integer("step")
    keys = series.values[position(series, step, f"patterns of {layer!r} in {run!r}")]
    channel = query.integer("channel", maximum=MAX_COUNT)
    channels, _ = _channels(info, len(keys), env.logged_at(run, metadata.PATTERN_CHANNELS, layer, step))
    if channel not in channels:
        raise HTTPError(
            404,
            f"channel: filter {channel} has no pattern in layer {layer!r} at step {step}; "
            f"filters with patterns: {short(channels)}",
        )
    column = channels.index(channel)
    values: dict = {"steps": [], "values": []}
    reached = env.optional(run, metadata.PATTERN_VALUES, layer)
    if reached is not None:
        # the filters may change from step to step (pattern_channels "most_active" or "dead"): each step's own
        by_step = env.optional(run, metadata.PATTERN_CHANNELS, layer)
        per_step = {} if by_step is None else dict(zip(by_step.steps.tolist(), by_step.values))
        column_values = []
        for at, v in zip(reached.steps.tolist(), reached.values):
            there, _ = _channels(info, v.size, per_step.get(at))
            column_values.append(float(v.reshape(-1)[there.index(channel)]) if channel in there else math.nan)
        values = {"steps": reached.steps.tolist(), "values": floats(np.array(column_values))}
    return {
        "run": run,
        "layer": layer,
        "step": step,
        "channel": channel,
        "image": image_url(run, metadata.PATTERNS, layer, step, column),
        "values": values,
        "kernel": _filter_kernel(env, run, layer, step, channel),
        "dead": _filter_dead(env, run, layer, step, channel),
        "top": _filter_top(env, run, layer, step, channel),
    }


def _setting(value: int | None) -> int | None:
    """An integer setting of a dream (checked content), None outside [0, 2**31)."""
    return value if value is not None and 0 <= value < MAX_SETTING else None


def patterns_dream(request: Any, query: Query, env: RouteContext) -> dict:
    """A DeepDream (``tb-cnnviz dream``) at a logged step (default: the last): the original and the dreamed
    image, the layers dreamed on, the settings, and the activation gain (DeepDream objective of the dream
    over that of the original)."""
    run, layer, info, series = env.layer_series(query, metadata.DREAM)
    if not len(series.steps):
        raise HTTPError(404, f"layer: the dream of {layer!r} in {run!r} has no logged steps yet")
    step = query.integer("step", default=int(series.steps[-1]))
    keys = series.values[position(series, step, f"dream of {layer!r} in {run!r}")]
    if len(keys) < 2:
        raise HTTPError(
            404,
            f"step: the dream of {layer!r} at step {step} has {len(keys)} image(s); expected 2 (original, dream)",
        )
    content = info.content
    # The objective pair is judged item by item (one unreadable value does not hide the other).
    written = info.written.get("objective")
    objective = (
        [finite(v, 6) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in written]
        if isinstance(written, list) and len(written) == 2
        else [None, None]
    )
    size = content.get("size")
    return {
        "run": run,
        "layer": layer,
        "step": step,
        "steps": series.steps.tolist(),
        "layers": content.get("layers") or layer.split("+"),
        "original": image_url(run, metadata.DREAM, layer, step, 0),
        "dream": image_url(run, metadata.DREAM, layer, step, 1),
        "gain": finite(content.get("gain"), 6),
        "objective": objective,
        "size": size if size is not None and len(size) == 2 and min(size) > 0 else None,
        "octaves": _setting(content.get("octaves")),
        "octave_scale": finite(content.get("octave_scale"), 6),
        "optimisation_steps": _setting(content.get("steps")),
        "lr": finite(content.get("lr"), 6),
        "seed": _setting(content.get("seed")),
    }


ROUTES = {"step": patterns_step, "filter": patterns_filter, "dream": patterns_dream}
