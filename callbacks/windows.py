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
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections import deque

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
            )
        # the config's own list, so the snapshot writes exactly the layers counted
        self.layers[:] = [self.layers[index] for index in self.tracker.kept]
        self._warned_no_forward = False
        self._last_step_time: float | None = None
        self._step_times: deque[float] = deque(maxlen=STEP_TIMES)
        self._hook_times: deque[float] = deque(maxlen=STEP_TIMES)  # per counted batch, recent
        self._seen = (0.0, 0)  # the tracker's (seconds, batches) at the last step end
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
        seconds, batches = self.tracker.seconds - self._seen[0], self.tracker.batches - self._seen[1]
        if batches > 0:
            self._hook_times.append(seconds / batches)
        self._seen = (self.tracker.seconds, self.tracker.batches)
        if self.budget > 0 and len(self._step_times) >= 4 and len(self._hook_times) >= 2:
            # medians: the first batches (warm-up) and steps with other work would skew means
            cost = statistics.median(self._hook_times) / statistics.median(self._step_times)
            wanted = math.ceil(cost / self.budget)
            self.tracker.set_count_every(max(1, min(wanted, self.every // MIN_COUNTED)))

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
            rates, batches, forwards = distributed.reduced_rates(
                tracker, self.layers, model_device(self.base)
            )
        else:
            rates, batches, forwards = tracker.rates(), tracker.batches, tracker.forwards
        count_every = tracker.count_every
        tracker.reset()
        self._seen = (0.0, 0)
        measured_at = [layer_name(self.base, point) for point in tracker.points]
        window = step - start if start is not None else 0
        return FilterRates(rates, measured_at, window, batches, forwards, count_every, tracker.semantics)

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
