"""The framework-neutral training callback: decides *when* to compute *what*, and writes it.

Three lines in a plain PyTorch loop::

    viz = CNNVizCallback(model, log_dir="runs/exp1", probe=(images, labels))
    ...  viz.on_step_end(global_step)   # after optimizer.step()
    viz.close()                        # or: with CNNVizCallback(...) as viz:

Every configuration error is raised at construction (``config.build``), before training starts.
What runs when comes from ``tb_cnnviz.kinds.SNAPSHOTS``: each snapshot row is computed by the
``tb_cnnviz.snapshots`` function of its name, on the training thread (a baseline at the first
step, then every N steps) or in the background (every N steps). :meth:`on_epoch_end` and
:meth:`close` log every enabled kind at their step unless it was logged there, so a run ends with
the pictures of its final weights; those final background jobs wait for a place in the queue
instead of being dropped. A background snapshot due while the previous ones still run is dropped:
counted per kind on disk (summary kind ``dropped``, shown by the tab) and warned once per kind.
The run's own records: ``epochs`` (the step of each :meth:`on_epoch_end`, so the tab can line runs up
by epoch) and ``layer_order`` (the logged layers in the model's order, written at the first step).
A failure inside a visualisation later is reported once as a warning and disables that kind only;
training goes on (``strict=True`` re-raises instead, for tests).
"""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import nn

from tb_cnnviz import snapshots, summary
from tb_cnnviz.callbacks import compilation, distributed, run_records, scalars, schedule, snapshot_calls
from tb_cnnviz.callbacks.background import BackgroundWorker, detached_copy, same_layers
from tb_cnnviz.callbacks.config import build, signature
from tb_cnnviz.callbacks.event_writer import writer_for
from tb_cnnviz.callbacks.windows import DeadFilterWindow
from tb_cnnviz.kinds import BACKGROUND, SNAPSHOTS, Snapshot, default_every_n_steps

DEFAULT_EVERY_N_STEPS = default_every_n_steps()


class CNNVizCallback:
    """Log kernels, filter smoothness, probe activation maps, dead-filter statistics and Grad-CAM during training.

    Args:
        model: the network being trained (DDP and ``torch.compile`` wrappers are unwrapped).
        log_dir: where to write TensorBoard event files (created if needed). Give this or ``writer``.
        writer: an existing ``torch.utils.tensorboard.SummaryWriter`` to write through (not closed by us).
        probe: fixed probe images ``[N, C, H, W]`` (float), or ``(images, labels)``; needed for activation maps.
        class_names: names of the classes, shown with the probe labels.
        kernel_layers: conv layers whose kernels and smoothness are logged (default: the first conv layer).
        activation_layers: layers whose probe activation maps are logged (default: 3 evenly spaced stage
            outputs, the last map at each resolution on the path from the input to the logits, found by
            running two probe images once; ResNet ``relu``, ``layer2``, ``layer4``).
        dead_filter_layers: conv layers with dead-filter statistics (default: every conv layer).
        gradcam_layers: layers whose Grad-CAM of the probe images is logged, for the probe labels
            when given, else the predicted class (default: the last spatial map before the global
            pooling, e.g. ResNet ``layer4``; any layer with a ``[N, K, h, w]`` output works).
        attributions: optional extra maps of the probe images, off by default: any of
            ``"saliency"``, ``"guided_backprop"``, ``"occlusion"``.
        faithfulness: score each Grad-CAM map against a seeded random map of the same size by
            deletion and insertion curves (RISE), with every Grad-CAM snapshot; off by default (it
            costs about 3 training steps per snapshot for the example CNN, 9 for ResNet-50).
        logits: how to get the class scores ``[N, classes]`` from the model output, for Grad-CAM
            and attributions (default: the output itself, the first element of a tuple, or a
            dict's ``"logits"``/``"out"``). Checked on the probe at construction.
        pattern_layers: layers whose filter-pattern gallery (activation maximisation of the
            ``pattern_channels`` filters, ``pattern_steps`` Adam steps on ``pattern_size``
            px images) is logged; off by default (it takes seconds).
        pattern_channels: which filters get a pattern: an int n (the first n, default 64), a list
            or range of indices, ``"most_active"`` (the 64 of highest mean activation on the probe
            images) or ``"dead"`` (up to 64 filters the last dead-filter window found dead; the
            first ones, with a note in the gallery, while none are); ``"most_active:16"`` and
            ``"dead:16"`` set the number.
        embedding_probe: a fixed held-out set ``(images, labels)`` (up to a few thousand images):
            enables t-SNE maps of its codes (the input of the last linear layer, or
            ``embedding_layer``), each started from and aligned to the previous map so
            clusters stay put between steps, with thumbnails; and, for
            ``top_example_layers`` (default: the activation layers), each filter's
            ``top_k`` most activating images with the receptive field of the maximum.
            Computed in the background every N steps.
        separability_layers: layers whose linear separability is logged with the labels of
            ``embedding_probe``: the held-out accuracy of a ridge probe on their globally pooled codes
            (default: every stage output and the last linear layer's input; on when the embedding
            probe has labels). Computed with the embedding map, on the same copy of the weights.
        embedding_method: ``"tsne"`` (openTSNE), ``"pca"`` or ``"umap"`` (needs umap-learn).
        projector: also export each embedding snapshot's codes, labels and thumbnails to
            TensorBoard's built-in Projector tab (``add_embedding``), for its 3-D view.
        input_mean, input_std: the model's input normalisation, so patterns are optimised in
            image space (default: none).
        background: compute slow kinds (patterns) on a copy of the model in a background
            thread so training does not wait; a snapshot due while the previous ones are still
            running is dropped, counted in ``dropped`` and on disk (the tab says so), and warned
            once per kind. The final snapshots of :meth:`on_epoch_end` and :meth:`close` are
            never dropped.
        every_n_steps: one int for every kind, or a mapping ``{kind: n}`` overriding
            ``DEFAULT_EVERY_N_STEPS`` (the intervals of ``tb_cnnviz.kinds.SNAPSHOTS``); for
            ``dead_filters`` it is the window length.
        kernel_normalization: ``"global"`` (default) or ``"per_filter"`` for the kernel PNG.
        strict: re-raise visualisation errors instead of warning and disabling the kind.
        flush_secs: how often the event file is flushed to disk when we own the writer.
        overhead_budget: the share of training time the dead-filter counting may take (default
            0.003, 0.3%): it counts one training batch in k, k chosen from its measured cost, and
            at least 8 batches per window; a filter is dead when dead on every counted batch.
            ``0`` counts every batch.
        scalars: the ordinary scalars written for TensorBoard's Scalars and Time Series tabs:
            ``"summary"`` (default: a few cards per run, e.g. the mean and largest dead fraction
            over the layers, the first kernel layer's smoothness, non-finite counts summed over
            the layers), ``"per_layer"`` (one card per layer and quantity) or ``"off"``. The
            per-layer detail is always in the CNN Viz tab.

    Layers are dotted names from ``model.named_modules()`` or module objects; an empty
    list turns a kind off. The resolved ``(name, module)`` pairs of each layers argument are
    attributes of the same name (``viz.kernel_layers``); ``enabled``, ``every_n_steps`` and
    ``config`` (the checked :class:`~tb_cnnviz.callbacks.config.CallbackConfig`) say what runs when.
    """

    def __init__(self, model: nn.Module, log_dir: str | os.PathLike | None = None, **options: Any):
        self.config = build(model, options)
        self.model, self.base = self.config.model, self.config.base
        self.strict = bool(self.config.options.strict)
        self.background = bool(self.config.options.background)
        self.every_n_steps = dict(self.config.every_n_steps)
        self.enabled = dict(self.config.enabled)
        self.rank = distributed.rank()
        self.writer, self._own_writer = writer_for(self.config, log_dir, self.rank)
        # Snapshots computed at a step by their ``snapshots`` function (dead filters are measured in windows).
        self._computed = [row for row in SNAPSHOTS.values() if row.name != DeadFilterWindow.snapshot]
        # One job per background snapshot may wait while another runs: patterns and a map due at the
        # same epoch end both get done; a further one is dropped.
        slow = [row for row in self._computed if row.thread == BACKGROUND]
        self._worker = BackgroundWorker("snapshots", on_error=lambda error: None, max_pending=len(slow))
        self._background_error: BaseException | None = None
        self._copy: tuple[int, nn.Module] | None = None  # (step, the copy its background snapshots share)
        self._states = {row.name: snapshots.new_state(row.name) for row in self._computed}
        self._window = DeadFilterWindow(self.config) if self.enabled[DeadFilterWindow.snapshot] else None
        self._window_start: int | None = None
        self._last_step: int | None = None
        self._written_once: set[str] = set()  # summary kinds logged once per run (probe images, sprites)
        self._logged_at: dict[str, int] = {}  # snapshot -> its last step logged (or queued)
        self._background_names = [row.name for row in slow]
        self._dropped = dict.fromkeys(self._background_names, 0)  # per background snapshot
        self._epochs = 0  # epochs ended so far (logged as summary kind ``epochs`` at each end's step)
        self._epoch_end: int | None = None  # the step of the last epoch end logged
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        """``viz.<layers argument>``: the resolved layers of that argument, e.g. ``viz.kernel_layers``."""
        rows = [row for row in SNAPSHOTS.values() if row.layers_argument == name]
        if rows and "config" in self.__dict__:
            return self.config.layers[rows[0].name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ----------------------------------------------------------------- schedule
    def on_step_end(self, step: int) -> None:
        """Call after ``optimizer.step()`` with the global step; logs whatever is due at this step.

        The first call logs every snapshot kind as a baseline; after that each kind logs
        when ``step`` is a multiple of its ``every_n_steps``.
        """
        if self._closed:
            raise RuntimeError("on_step_end: the callback was closed")
        step = schedule.step_argument(step)
        if self._last_step is not None and step <= self._last_step:
            return
        self._copy = None  # the weights change from step to step
        first = self._last_step is None
        self._last_step = step
        if first:
            self._log_layer_order(step)
        if self._window_start is None:
            self._window_start = step
        self._raise_background_error()
        worked = False
        if self.rank == 0:  # not logged at step already: on_epoch_end may have logged it
            for row in schedule.due(
                self._computed, step, self.every_n_steps, self.enabled, self._logged_at, first=first
            ):
                self._run(row, step)
                worked = True
        if self._window is not None:
            if self._window.due(step):
                worked = True
                if self._window.counted():
                    self._end_window(step)
                else:
                    self._window.warn_no_forward(self._window_start, step)
            self._window.step_ended(snapshot_work=worked or first)

    def on_epoch_end(self, step: int) -> None:
        """Call at the end of an epoch with the global step: records the epoch end (summary kind ``epochs``)
        and logs every enabled kind not yet logged at ``step`` (background ones are queued, waiting for a
        place rather than dropped)."""
        if self._closed:
            raise RuntimeError("on_epoch_end: the callback was closed")
        step = schedule.step_argument(step)
        self._raise_background_error()
        self._log_epoch_end(step)
        self._final_snapshots(step)

    def _log_epoch_end(self, step: int) -> None:
        """Log that an epoch ended at ``step`` (summary kind ``epochs``: the epochs completed), once per step."""
        if self._epoch_end is not None and step <= self._epoch_end:
            return  # called twice for one epoch end (or with an older step)
        self._epochs += 1
        self._epoch_end = step
        if self.rank == 0:
            self._record("epochs", np.array([self._epochs], dtype=np.float32), step)

    def _log_layer_order(self, step: int) -> None:
        """Log the layers of every enabled snapshot in the model's order (summary kind ``layer_order``)."""
        order = run_records.layer_order(self.config, self.enabled, self.strict) if self.rank == 0 else None
        if order is not None:
            values, content = order
            self._record("layer_order", values, step, **content)

    def _record(self, kind: str, values: np.ndarray, step: int, **content: Any) -> None:
        """Write one of the run's own records (``kinds.RUN_RECORDS``); a failure warns, never stops training."""
        run_records.write_record(self._write, kind, values, step, self.strict, **content)

    def _final_snapshots(self, step: int) -> None:
        """Log every enabled snapshot kind at ``step`` unless it was logged there (or later); on rank 0."""
        if self.rank != 0:
            return
        for row in schedule.due(
            self._computed, step, self.every_n_steps, self.enabled, self._logged_at, final=True
        ):
            self._run(row, step, final=True)

    def flush(self) -> None:
        """Wait for background snapshots to finish and flush the event file to disk."""
        self._worker.join()
        self._raise_background_error()
        if self.writer is not None:
            self.writer.flush()

    @property
    def dropped(self) -> int:
        """Background snapshots dropped because the previous ones were still running (all kinds)."""
        return sum(self._dropped.values())

    def close(self, final: bool = True) -> None:
        """Log the final snapshot of every kind at the last step (unless logged there; ``final=False``: not,
        as when leaving a ``with`` block on an exception), finish the background work, log the unfinished
        dead-filter window, flush, remove the hooks, close our writer."""
        if self._closed:
            return
        try:
            if final and self._last_step is not None:
                self._final_snapshots(self._last_step)
            self._worker.close()
            self._raise_background_error()
            pending = self._window is not None and self._window.counted()
            if pending and self._last_step is not None and self._last_step != self._window_start:
                self._end_window(self._last_step)
        finally:
            self._closed = True
            if self._window is not None:
                self._window.remove()
            if self.writer is not None:
                try:
                    self.writer.close() if self._own_writer else self.writer.flush()
                except Exception as error:  # e.g. the disk filled up: report, never raise into training code
                    if self.strict:
                        raise
                    warnings.warn(
                        f"tb-cnnviz: flushing the event file failed ({type(error).__name__}: {error})",
                        RuntimeWarning,
                        stacklevel=2,
                    )

    def state_dict(self) -> dict:
        """Schedule state, so a resumed run continues its windows and does not re-log the baseline."""
        return {
            "last_step": self._last_step,
            "window_start": self._window_start,
            "logged_probe": self._probe_once() <= self._written_once,
            "enabled": dict(self.enabled),
            "epochs": self._epochs,
            "epoch_end": self._epoch_end,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the schedule saved by :meth:`state_dict` (a kind disabled then stays disabled)."""
        self._last_step = state.get("last_step")
        self._window_start = state.get("window_start")
        self._epochs = int(state.get("epochs", 0) or 0)
        self._epoch_end = state.get("epoch_end")
        if state.get("logged_probe", False):
            self._written_once |= self._probe_once()
        for kind, flag in dict(state.get("enabled", {})).items():
            if kind in self.enabled:
                self.enabled[kind] = self.enabled[kind] and bool(flag)

    def __enter__(self) -> CNNVizCallback:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(final=exc_type is None)  # training failed or was interrupted: no new pictures, just flush

    # ------------------------------------------------------------------ running
    def _end_window(self, step: int) -> None:
        """Close the dead-filter window on every rank (the reduction is collective), then log it on rank 0."""
        measured = self._window.close(step, self._window_start)
        self._window_start = step
        record = getattr(self._states.get("patterns"), "record", None)
        if record is not None:  # pattern_channels="dead" renders the filters this window found dead
            record(self.config.layers[DeadFilterWindow.snapshot], measured, step)
        if self.rank == 0 and self.enabled[DeadFilterWindow.snapshot]:
            self._run(SNAPSHOTS[DeadFilterWindow.snapshot], step, measured)

    def _run(self, row: Snapshot, step: int, measured: Any = None, final: bool = False) -> None:
        """Compute and write one snapshot; a background one is computed on a copy of the model later
        (``final``: queued even when the queue is full, waiting for a place)."""
        try:
            with compilation.own_forwards(self.base, self.config.compiled):
                if row.thread == BACKGROUND:
                    self._submit(row, step, final)
                else:
                    self._logged_at[row.name] = step  # tried here: a strict failure is not retried at close
                    once = self._once(row)
                    summaries = self._compute(row, self._inputs(row, self.base, measured=measured), once)
                    self._written_once.update(once)
                    self._write(summaries, step)
        except Exception as error:  # a visualisation never stops training
            if self.strict:
                raise
            self._disable(row.name, step, error)

    def _submit(self, row: Snapshot, step: int, final: bool = False) -> None:
        """Copy the model now, on the training thread (one copy per step for every background snapshot due at
        it: separability's pass over the embedding probe gives the embedding its codes); compute, export
        and write in the background."""
        if self._copy is None or self._copy[0] != step:  # dropped at the next on_step_end
            self._copy = (step, detached_copy(self.base))
        model = self._copy[1]
        layers = same_layers(model, self.config.layers[row.name])
        once = self._once(row)

        def job() -> list:
            inputs = self._inputs(row, model, layers)
            summaries = self._compute(row, inputs, once)
            export = self.config.exports.get(row.name)
            if export is not None and self.writer is not None:
                export(self.writer, inputs, step)
            return summaries

        if not self.background:
            self._write(job(), step)
        elif not self._worker.submit(lambda: self._finish(row.name, step, job), wait=final):
            self._count_drop(row.name, step)
            return
        self._logged_at[row.name] = step
        self._written_once.update(once)

    def _count_drop(self, kind: str, step: int) -> None:
        """A background snapshot was dropped: write the counts so far (the tab shows them), warn once per kind."""
        self._dropped[kind] += 1
        self._write(run_records.dropped(self._dropped, self._background_names), step)
        if self._dropped[kind] == 1:
            warnings.warn(
                f"tb-cnnviz: {kind} snapshot at step {step} skipped: the previous one was still running "
                f"(later skips are counted and shown in the CNN Viz tab; every_n_steps={{{kind!r}: N}} "
                "with a larger N avoids them)",
                RuntimeWarning,
                stacklevel=5,
            )

    def _inputs(self, row: Snapshot, model: nn.Module, layers=None, measured: Any = None) -> snapshots.Inputs:
        """The one input of every ``snapshots`` function: this snapshot's layers, images, settings and state."""
        state = self._states.get(row.name) if measured is None else measured
        return snapshot_calls.inputs(self.config, row, model, layers, state)

    def _once(self, row: Snapshot) -> list[str]:
        """The summaries ``row`` writes once per run not yet written."""
        return snapshot_calls.once(row, self._written_once)

    def _probe_once(self) -> set[str]:
        """The summaries written once from the probe images (saved as ``logged_probe`` by :meth:`state_dict`)."""
        return snapshot_calls.probe_once(self._computed)

    _compute = staticmethod(snapshot_calls.compute)

    def _finish(self, kind: str, step: int, job) -> None:
        """Runs on the background thread: errors are reported there (or kept for ``strict``), never lost."""
        try:
            self._write(job(), step)
        except Exception as error:
            if self.strict:
                self._background_error = error
            else:
                self._disable(kind, step, error)

    def _write(self, summaries: list, step: int) -> None:
        """Write through the one write path, with the ordinary scalars that ``scalars=`` asks for."""
        if self.writer is not None:
            summary.write(self.writer, scalars.select(summaries, self.config.options.scalars), step)

    def _disable(self, kind: str, step: int, error: BaseException) -> None:
        self.enabled[kind] = False
        details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        warnings.warn(
            f"tb-cnnviz: logging {kind!r} failed at step {step} and is now disabled "
            f"({type(error).__name__}: {error})\n{details}",
            RuntimeWarning,
            stacklevel=4,
        )

    def _raise_background_error(self) -> None:
        if self._background_error is not None:
            error, self._background_error = self._background_error, None
            raise error


CNNVizCallback.__init__.__signature__ = signature(CNNVizCallback.__init__)
