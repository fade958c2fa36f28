"""Routes of the Filters view (``api/filters/...``): raw kernels of a layer and per-filter smoothness.

Large tensors are never sent whole: ``kernels`` returns one logged step (or a block of
consecutive steps, capped at ``MAX_VALUES_PER_RESPONSE`` values) as base64 little-endian
float32, which the browser turns into a ``Float32Array`` without parsing numbers. With
``encoding=int8`` (or ``auto`` for a layer of more than ``QUANTISE_ABOVE`` weights, such as a
ResNet-50's 512×512×3×3 ``layer4.0.conv2``: 12.6 MB of JSON per step as float32) each filter is
quantised symmetrically to int8 with its own scale (``value = q × scale``, error at most
``scale / 2``; ``q = -128`` marks a non-finite weight), a quarter of the bytes.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from tb_cnnviz import metadata
from tb_cnnviz.plugin.context import RouteContext, matrix, position
from tb_cnnviz.plugin.http import MAX_COUNT, HTTPError, Query, floats, incompressible_json, memo_json

MAX_VALUES_PER_RESPONSE = 1 << 20  # weights in one kernels response (4 MiB raw as float32)
QUANTISE_ABOVE = 1 << 16  # weights per step above which encoding=auto sends int8
ENCODINGS = ("float32", "int8", "auto")
NON_FINITE = -128  # the int8 code of a NaN or infinite weight (finite ones use -127..127)


def quantise(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[steps, out, ...]`` float -> (int8 codes of the same shape, float32 scales ``[steps, out]``).

    Per filter: ``scale = max |w| / 127`` over its finite weights, ``q = round(w / scale)``, so
    ``q * scale`` is within ``scale / 2`` of ``w``; a filter of zeros has scale 0 (exact); a
    non-finite weight is ``NON_FINITE``.
    """
    flat = block.reshape(block.shape[0], block.shape[1], -1).astype(np.float32, copy=False)
    if flat.shape[2] == 0:
        return np.zeros(block.shape, np.int8), np.zeros(flat.shape[:2], np.float32)
    finite = bool(np.isfinite(flat).all())  # the usual case: no mask, no temporary per weight
    clean = flat if finite else np.where(np.isfinite(flat), flat, 0)
    magnitude = np.maximum(clean.max(axis=2), -clean.min(axis=2))
    scales = (magnitude / np.float32(127)).astype(np.float32)
    # codes from the float32 scale that is sent, in float64: |q * scale - w| <= scale / 2 exactly
    divisor = np.where(scales > 0, scales, 1).astype(np.float64)[:, :, None]
    codes = np.rint(clean / divisor).astype(np.int8)  # |w| / (max|w| / 127) <= 127 (+ rounding)
    if not finite:
        codes[~np.isfinite(flat)] = NON_FINITE
    return codes.reshape(block.shape), scales


def filters_kernels(request: Any, query: Query, env: RouteContext) -> Any:
    """Raw kernels ``[out, in, kh, kw]`` at ``step`` (and up to ``count - 1`` following logged steps).

    The browser normalises them (globally or per filter) itself, so the toggle needs no
    round trip; a block of steps lets the step slider scrub from memory.
    """
    run, layer, info, series = env.layer_series(query, metadata.KERNELS)
    step = query.integer("step")
    count = query.integer("count", default=1, minimum=1, maximum=MAX_COUNT)
    encoding = query.text("encoding", required=False, default="float32")
    if encoding not in ENCODINGS:
        raise HTTPError(400, f"encoding: {encoding[:40]!r} is not valid; expected one of {list(ENCODINGS)}")
    start = position(series, step, f"kernels of {layer!r} in {run!r}")
    shape = series.values[start].shape
    per_step = max(int(np.prod(shape)), 1)
    count = max(1, min(count, MAX_VALUES_PER_RESPONSE // per_step, len(series.steps) - start))
    stop = start + 1
    while stop < start + count and series.values[stop].shape == shape:
        stop += 1
    block = np.stack(series.values[start:stop]).astype("<f4", copy=False)
    answer = {
        "run": run,
        "layer": layer,
        "shape": list(shape),
        "steps": series.steps[start:stop].tolist(),
        "wall_times": series.wall_times[start:stop].tolist(),
    }
    if encoding == "int8" or (encoding == "auto" and per_step > QUANTISE_ABOVE and len(shape) > 1):
        codes, scales = quantise(block)
        answer.update(
            dtype="int8",
            data=base64.b64encode(codes.tobytes()).decode("ascii"),
            scales=base64.b64encode(scales.astype("<f4").tobytes()).decode("ascii"),
        )
    else:
        answer.update(
            dtype="float32", data=base64.b64encode(np.ascontiguousarray(block).tobytes()).decode("ascii")
        )
    return incompressible_json(answer)


def filters_smoothness(request: Any, query: Query, env: RouteContext) -> Any:
    """Per-filter smoothness in [-1, 1] (1 = smooth) at every logged step, and its layer mean."""
    run, layer, info, series = env.layer_series(query, metadata.SMOOTHNESS)

    def build() -> dict:
        steps, values = matrix(series)
        with np.errstate(all="ignore"):
            finite = np.where(np.isfinite(values), values, np.nan)
            mean = np.nanmean(finite, axis=1) if values.size else np.zeros(len(steps))
        return {
            "run": run,
            "layer": layer,
            "steps": steps.tolist(),
            "values": floats(values),
            "mean": floats(mean),
        }

    return memo_json(request, series.memo, ("smoothness",), build)


ROUTES = {"kernels": filters_kernels, "smoothness": filters_smoothness}
