"""The ``scalars=`` option: which ordinary scalars (TensorBoard's Scalars and Time Series cards) a run gets.

The snapshot functions write one scalar per layer and quantity (``cnnviz_scalars/<what>/<layer>``:
``smoothness``, ``nonfinite_weights``, ``dead_fraction``, ``nonfinite_filters``). On a deep network
that is a hundred cards burying the user's own curves, so the callback passes every snapshot's
summaries through :func:`select` before writing them:

- ``"summary"`` (default): a few cards per run, each reduced over the layers of one snapshot
  (:data:`REDUCTIONS`): the mean and the largest dead fraction over the layers, the smoothness of
  the first kernel layer, the non-finite counts summed over the layers; a quantity without a row
  keeps its deepest (last) layer only;
- ``"per_layer"``: every scalar as written, one card per layer;
- ``"off"``: no ordinary scalar.

The per-layer detail always stays in the plugin's own series, shown by the CNN Viz tab.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

from tb_cnnviz import metadata, summary

SCALAR_MODES = ("summary", "per_layer", "off")

FIRST = "first"  # the first layer's value, under its own tag
LAST = "last"  # the last (deepest) layer's value, under its own tag

# what -> the cards it becomes in "summary": (card name, reduction over the layers' values), or FIRST/LAST
REDUCTIONS: dict[str, str | tuple[tuple[str, Callable[[np.ndarray], float]], ...]] = {
    "dead_fraction": (("mean_over_layers", np.mean), ("max_over_layers", np.max)),
    "smoothness": FIRST,
    "nonfinite_weights": (("all_layers", np.sum),),
    "nonfinite_filters": (("all_layers", np.sum),),
}


def select(summaries: Sequence[summary_pb2.Summary], mode: str) -> list[summary_pb2.Summary]:
    """``summaries`` (one snapshot's, at one step) with their ordinary scalars as ``mode`` asks."""
    if mode == "per_layer":
        return list(summaries)
    kept, per_layer = [], {}
    for proto in summaries:
        parsed = _ordinary_scalar(proto)
        if parsed is None:
            kept.append(proto)
        else:
            what, layer, value = parsed
            per_layer.setdefault(what, []).append((layer, value))
    if mode == "off":
        return kept
    for what, values in per_layer.items():
        rule = REDUCTIONS.get(what, LAST)
        if rule in (FIRST, LAST):
            layer, value = values[0] if rule == FIRST else values[-1]
            kept.append(summary.scalar_summary(what, layer, value))
            continue
        array = np.array([value for _, value in values], dtype=np.float64)
        kept += [summary.scalar_summary(what, card, float(reduce(array))) for card, reduce in rule]
    return kept


def _ordinary_scalar(proto: summary_pb2.Summary) -> tuple[str, str, float] | None:
    """``(what, layer, value)`` of a one-value ``cnnviz_scalars/<what>/<layer>`` summary, else None."""
    if len(proto.value) != 1:
        return None
    value = proto.value[0]
    parts = value.tag.split("/", 2)
    if (
        len(parts) != 3
        or parts[0] != metadata.SCALAR_PREFIX
        or value.metadata.plugin_data.plugin_name != "scalars"
    ):
        return None
    return parts[1], parts[2], float(tensor_util.make_ndarray(value.tensor))
