"""When each snapshot runs: its interval (``every_n_steps=``, checked, over the table's defaults), the
``step`` argument of ``on_step_end``/``on_epoch_end``, and which snapshots are due at a step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

from tb_cnnviz.kinds import BACKGROUND, SNAPSHOTS, TRAINING, Snapshot


def intervals(every_n_steps) -> dict[str, int]:
    """``{snapshot: interval}``: the table's defaults, overridden by one int or a partial mapping;
    faithfulness, unless named, is scored with every Grad-CAM snapshot."""
    intervals = {name: row.every_n_steps for name, row in SNAPSHOTS.items()}
    if every_n_steps is None:
        items = {}
    elif isinstance(every_n_steps, Mapping):
        unknown = sorted(set(every_n_steps) - set(SNAPSHOTS))
        if unknown:
            raise ValueError(
                f"every_n_steps: unknown kind(s) {unknown}; expected keys from {list(SNAPSHOTS)}"
            )
        items = dict(every_n_steps)
    else:
        items = {name: every_n_steps for name in SNAPSHOTS}
    for name, value in items.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(
                f"every_n_steps[{name!r}]: expected an int >= 1, got {value!r} ({type(value).__name__})"
            )
        if value < 1:
            raise ValueError(f"every_n_steps[{name!r}]: expected an int >= 1, got {value}")
        intervals[name] = int(value)
    if not (isinstance(every_n_steps, Mapping) and "faithfulness" in every_n_steps):
        intervals["faithfulness"] = intervals["gradcam"]  # scored with every Grad-CAM snapshot
    return intervals


def step_argument(step) -> int:
    """The global step given to the callback, checked: a non-negative int (or a one-element tensor)."""
    if isinstance(step, torch.Tensor) and step.numel() == 1:
        step = step.item()
    if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step: expected a non-negative int global step, got {step!r}")
    return int(step)


def due(
    rows: Iterable[Snapshot],
    step: int,
    every_n_steps: Mapping[str, int],
    enabled: Mapping[str, bool],
    logged_at: Mapping[str, int],
    first: bool = False,
    final: bool = False,
) -> list[Snapshot]:
    """The enabled snapshots to log at ``step`` and not yet logged there (or later), training-thread ones
    first: those whose interval divides ``step``; at the ``first`` step also every training-thread one
    (the baseline); at a ``final`` step (an epoch end, the close) every one."""
    return [
        row
        for thread in (TRAINING, BACKGROUND)
        for row in rows
        if row.thread == thread
        and enabled[row.name]
        and logged_at.get(row.name, -1) < step
        and (final or step % every_n_steps[row.name] == 0 or (first and thread == TRAINING))
    ]
