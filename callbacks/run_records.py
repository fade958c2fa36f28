"""The run's own records (``kinds.RUN_RECORDS``), summaries of the run rather than of a layer:
``epochs`` (the epochs ended so far, at each :meth:`~CNNVizCallback.on_epoch_end`'s step, so the tab can
line runs up by epoch), ``layer_order`` (the logged layers in the model's order, at the first step) and
``dropped`` (the background snapshots dropped so far, per snapshot). Writing one never stops training.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tb_cnnviz import metadata, summary
from tb_cnnviz.analysis.layers import call_order, model_device
from tb_cnnviz.callbacks import compilation

if TYPE_CHECKING:
    from tb_cnnviz.callbacks.config import CallbackConfig


def write_record(
    write: Callable[[list, int], None], kind: str, values: np.ndarray, step: int, strict: bool, **content: Any
) -> None:
    """Write one record through ``write``; a failure warns (``strict``: raises), never stops training."""
    try:
        write([summary.tensor_summary(kind, None, values, **content)], step)
    except Exception as error:
        if strict:
            raise
        warnings.warn(
            f"tb-cnnviz: writing {kind!r} at step {step} failed ({type(error).__name__}: {error})",
            RuntimeWarning,
            stacklevel=4,
        )


def layer_order(
    config: CallbackConfig, enabled: Mapping[str, bool], strict: bool
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """``(values, content)`` of the ``layer_order`` record, or None when no layer is logged.

    The layers of every enabled snapshot in the model's order, so the tab can match the layers of two
    architectures by their place in the model, not by name: the order one forward pass of a probe image
    runs them (registration order for those it does not run, and for all of them without a probe image).
    ``values`` is ``[L, 2]``: per layer its execution rank (-1: not run) and its registration rank."""
    pairs = {
        name: module
        for snapshot, layers in config.layers.items()
        if enabled.get(snapshot)
        for name, module in layers
    }
    if not pairs:
        return None
    base = config.base
    registered = {module: i for i, (_, module) in enumerate(base.named_modules())}
    images = next((x for x, _ in config.inputs.values() if x is not None), None)
    called: dict = {}
    if images is not None:
        try:
            with compilation.own_forwards(base, config.compiled):
                x = images[:1].to(model_device(base))
                called = call_order(base, x, pairs.values())
        except Exception:  # the tab falls back to registration order; training goes on
            if strict:
                raise
    ranks = {
        name: (called.get(module, -1), registered.get(module, len(registered)))
        for name, module in pairs.items()
    }
    names = sorted(ranks, key=lambda name: (ranks[name][0] < 0, ranks[name][0], ranks[name][1], name))
    values = np.array([ranks[name] for name in names], dtype=np.float32).reshape(len(names), 2)
    return values, {"layers": names, "order": "execution" if called else "registration"}


def dropped(counts: Mapping[str, int], names: Sequence[str]) -> list:
    """The ``dropped`` record: the background snapshots ``names`` dropped so far, in that order."""
    values = np.array([counts[name] for name in names], dtype=np.float32)
    return [summary.tensor_summary(metadata.DROPPED, None, values, snapshots=list(names))]
