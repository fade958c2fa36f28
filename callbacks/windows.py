"""The dead-filter snapshot's windows: counted during training, closed every N steps.

Unlike the other snapshots, dead filters are not computed at a step: hooks on the layers count,
during the training forwards between two window ends, how often each filter fires. Every rank
counts; the counts are summed across ranks when a window closes.

Counting costs a few percent of a training step on a deep network (it grows with the number of
conv layers), so it is done on a sample of the batches: with ``overhead_budget=b`` the window
measures the hooks' time per counted batch and the time per training step, and counts one
training forward in ``k = ceil(hook time / (b x step time))``, but at least ``MIN_COUNTED``
batches per window. ``overhead_budget=0`` counts every batch. Under ``torch.compile`` every
batch is counted (a changing sample would recompile the training step).

The budget goes to the layers whose dead filters are reported (``metadata.REPORTED_SEMANTICS``).
The others (residual branches, convs with no nonlinearity after them: their rates are shown as
information only, in the Dead filters view and the Overview's rate spread) cost as much to count
(on ConvNeXt-Nano 32 of 46 layers, on ResNet-50 20 of 53); when the budget does not cover counting
every layer on every batch, they are counted on ``MIN_COUNTED`` batches per window (the sparsest
sample) and the reported layers get what is left of the budget. Each layer's summary logs the
batches it was counted on.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections import deque

from tb_cnnviz import metadata
from tb_cnnviz.analysis.activation_points import NOT_FILTERS
from tb_cnnviz.analysis.dead_filters import DeadFilterTracker
from tb_cnnviz.analysis.layers import layer_name, model_device
from tb_cnnviz.callbacks import compilation, distributed
from tb_cnnviz.callbacks.config import CallbackConfig
from tb_cnnviz.snapshots.inputs import FilterRates

MIN_COUNTED = 8  # counted batches per window at least, whatever the budget
STEP_TIMES = 16  # recent step intervals whose median is the time per training step


class DeadFilterWindow:
    """Counting hooks on the dead-filter layers and the bookkeeping of their windows."""

    snapshot = "dead_filters"  # the row of kinds.SNAPSHOTS measured this way (its interval: the window)

    def __init__(self, config: CallbackConfig):
        self.base = config.base
        self.layers = config.layers[self.snapshot]
        self.every = config.every_n_steps[self.snapshot]
        self.budget = 0.0 if config.compiled else config.options.overhead_budget
        modules = [module for _, module in self.layers]
        probe = config.inputs.get("probe", (None, None))[0]
        probe = None if probe is None else probe[:2].to(model_device(self.base))
        # the tracker's probe forward (it finds each layer's nonlinearity) runs eagerly, like our other forwards
        with compilation.own_forwards(self.base, config.compiled):
            self.tracker = DeadFilterTracker(
                self.base,
                modules,
                timed=self.budget > 0,
                images=probe,
                # by default, squeeze-excite gates and post-pooling heads are not filters with maps
                leave_out=NOT_FILTERS if config.options.dead_filter_layers is None else (),
                reported=metadata.REPORTED_SEMANTICS,
            )
        # the config's own list, so the snapshot writes exactly the layers counted
        self.layers[:] = [self.layers[index] for index in self.tracker.kept]
        self._warned_no_forward = False
        self._last_step_time: float | None = None
        self._step_times: deque[float] = deque(maxlen=STEP_TIMES)
        # per group of layers (reported, information only): recent hook time per counted batch
        self._hook_times = (deque(maxlen=STEP_TIMES), deque(maxlen=STEP_TIMES))
        self._seen = ((0.0, 0), (0.0, 0))  # per group, the tracker's (seconds, batches) at the last step end
        if config.compiled:
            compilation.retrace_with_hooks()

    def step_ended(self, snapshot_work: bool) -> None:
        """Called at every ``on_step_end``: time the step, and choose the sample for the budget.

        ``snapshot_work``: the previous step ran snapshots, so its interval is not a training step's.
        """
        now = time.perf_counter()
        if self._last_step_time is not None and not snapshot_work:
            self._step_times.append(now - self._last_step_time)
        self._last_step_time = now
        tracker = self.tracker
        now_seen = tuple(zip(tracker.group_seconds, tracker.group_batches))
        for times, (seconds, batches), (seconds_before, batches_before) in zip(
            self._hook_times, now_seen, self._seen
        ):
            if batches > batches_before:
                times.append((seconds - seconds_before) / (batches - batches_before))
        self._seen = now_seen
        groups = tracker.groups_present
        measured = all(len(times) >= 2 for times, present in zip(self._hook_times, groups) if present)
        if self.budget > 0 and len(self._step_times) >= 4 and measured:
            # medians: the first batches (warm-up) and steps with other work would skew means
            step = statistics.median(self._step_times)
            costs = [statistics.median(times) / step if times else 0.0 for times in self._hook_times]
            tracker.set_count_every(*sample_for_budget(costs[0], costs[1], self.budget, self.every))

    def due(self, step: int) -> bool:
        """Whether a window ends at ``step``."""
        return step % self.every == 0

    def counted(self) -> bool:
        """Whether there is anything to close: a counted batch here, or possibly on another rank."""
        return bool(self.tracker.batches) or distributed.is_distributed()

    def close(self, step: int, start: int | None) -> FilterRates:
        """The rates of the window from ``start`` to ``step``, summed over ranks (all ranks call this); a new window starts.

        The collective stays outside any failure handling: if rank 0 disabled the kind after a
        write error while other ranks kept reducing, they would wait for it forever.
        """
        tracker = self.tracker
        if distributed.is_distributed():
            rates, batches, forwards, group_batches = distributed.reduced_rates(
                tracker, self.layers, model_device(self.base)
            )
        else:
            rates, batches, forwards = tracker.rates(), tracker.batches, tracker.forwards
            group_batches = list(tracker.group_batches)
        count_every = tracker.count_every
        layer_count_every = tracker.layer_count_every()
        tracker.reset()
        self._seen = ((0.0, 0), (0.0, 0))
        measured_at = [layer_name(self.base, point) for point in tracker.points]
        window = step - start if start is not None else 0
        layer_batches = [group_batches[group] for group in tracker.groups]
        return FilterRates(
            rates,
            measured_at,
            window,
            batches,
            forwards,
            count_every,
            tracker.semantics,
            layer_batches=layer_batches,
            layer_count_every=layer_count_every,
        )

    def sample(self) -> dict[str, int]:
        """The current sample per group of layers that has any: one training batch in k is counted."""
        tracker, groups = self.tracker, ("reported layers", "other layers")
        every = (tracker.count_every, tracker.info_count_every)
        return {groups[g]: every[g] for g in (0, 1) if tracker.groups_present[g]}

    def warn_no_forward(self, start: int, step: int) -> None:
        """Say once that no training forward reached the hooks (e.g. a step compiled before the callback)."""
        if step > start and not self._warned_no_forward:
            self._warned_no_forward = True
            warnings.warn(
                f"tb-cnnviz: no forward pass of the model reached the dead-filter hooks between steps "
                f"{start} and {step}, so dead filters are not measured. Is the training step "
                f"compiled (torch.compile) from before CNNVizCallback was created, or run on another "
                f"copy of the model?",
                RuntimeWarning,
                stacklevel=3,
            )

    def remove(self) -> None:
        self.tracker.remove()


def sample_for_budget(reported: float, others: float, budget: float, every: int) -> tuple[int, int]:
    """``(count_every, info_count_every)``: one batch in k counted at the reported layers and at the others,
    given their counting cost per counted batch (fractions of a training step) and the budget (> 0).

    Every batch at both when the budget covers it; otherwise the others at the sparsest sample
    (``MIN_COUNTED`` batches per window) and the reported layers within what is left (sparsest
    too if nothing is left).
    """
    sparsest = max(1, every // MIN_COUNTED)
    if reported + others <= budget:
        return 1, 1
    if not others:
        count_every = min(math.ceil(reported / budget), sparsest)
        return count_every, count_every
    left = budget - others / sparsest
    count_every = sparsest if left <= 0 else max(1, min(math.ceil(reported / left), sparsest))
    return count_every, sparsest
