"""The dead-filter snapshot's windows: counted during training, closed every N steps.

Unlike the other snapshots, dead filters are not computed at a step: hooks on the layers count,
during the training forwards between two window ends, how often each filter fires. Every rank
counts; the counts are summed across ranks when a window closes.
"""

from __future__ import annotations

import warnings

from tb_cnnviz.analysis.dead_filters import DeadFilterTracker
from tb_cnnviz.analysis.layers import layer_name, model_device
from tb_cnnviz.callbacks import compilation, distributed
from tb_cnnviz.callbacks.config import CallbackConfig
from tb_cnnviz.snapshot_inputs import FilterRates


class DeadFilterWindow:
    """Counting hooks on the dead-filter layers and the bookkeeping of their windows."""

    snapshot = "dead_filters"  # the row of kinds.SNAPSHOTS measured this way (its interval: the window)

    def __init__(self, config: CallbackConfig):
        self.base = config.base
        self.layers = config.layers[self.snapshot]
        self.every = config.every_n_steps[self.snapshot]
        self.tracker = DeadFilterTracker(self.base, [module for _, module in self.layers])
        self._warned_no_forward = False
        if config.compiled:
            compilation.retrace_with_hooks()

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
        rates = (
            distributed.reduced_rates(self.tracker, self.layers, model_device(self.base))
            if distributed.is_distributed()
            else self.tracker.rates()
        )
        self.tracker.reset()
        measured_at = [layer_name(self.base, point) for point in self.tracker.points]
        return FilterRates(rates, measured_at, step - start if start is not None else 0)

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
