"""How the callback calls one snapshot of ``kinds.SNAPSHOTS``: the ``snapshots.Inputs`` it gets from the
configuration, the summaries it writes once per run (the probe images, a sprite), and the calls of the
``tb_cnnviz.snapshots`` functions of their names.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from torch import nn

from tb_cnnviz import snapshots
from tb_cnnviz.analysis.layers import model_device
from tb_cnnviz.kinds import SUMMARY_KINDS, Snapshot

if TYPE_CHECKING:
    from tb_cnnviz.callbacks.config import CallbackConfig


def inputs(config: CallbackConfig, row: Snapshot, model: nn.Module, layers, state: Any) -> snapshots.Inputs:
    """The one input of every ``snapshots`` function: this snapshot's layers (default: the configured
    ones), images on ``model``'s device, settings and ``state``."""
    images, labels = config.inputs[row.needs] if row.needs else (None, None)
    return snapshots.Inputs(
        model=model,
        layers=config.layers[row.name] if layers is None else layers,
        images=None if images is None else images.to(model_device(model)),
        labels=labels,
        class_names=config.class_names,
        logits=config.logits,
        settings=config.settings[row.name],
        state=state,
    )


def once(row: Snapshot, written: Collection[str]) -> list[str]:
    """The summaries ``row`` writes once per run (one series per run, e.g. the probe images) not yet ``written``."""
    return [kind for kind in row.writes if not SUMMARY_KINDS[kind].per_layer and kind not in written]


def probe_once(rows: Iterable[Snapshot]) -> set[str]:
    """The summaries written once from the probe images by ``rows`` (saved as ``logged_probe`` by
    ``CNNVizCallback.state_dict``)."""
    rows = [row for row in rows if row.needs == "probe"]
    return {kind for row in rows for kind in row.writes if not SUMMARY_KINDS[kind].per_layer}


def compute(row: Snapshot, inputs: snapshots.Inputs, once: list[str]) -> list:
    """The snapshot's summaries, then those written once (each from the same inputs, by the function of its name)."""
    summaries = list(getattr(snapshots, row.name)(inputs))
    for kind in once:
        summaries += getattr(snapshots, kind)(inputs)
    return summaries
