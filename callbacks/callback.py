"""The framework-neutral training callback: decides *when* to compute *what*, and writes it.

Three lines in a plain PyTorch loop::

    viz = CNNVizCallback(model, log_dir="runs/exp1", probe=(images, labels))
    ...  viz.on_step_end(global_step)   # after optimizer.step()
    viz.close()                        # or: with CNNVizCallback(...) as viz:

Every configuration error is raised here, at construction, before training starts. A
failure inside a visualisation later is reported once as a warning and disables that
kind only; training goes on (``strict=True`` re-raises instead, for tests).
"""

from __future__ import annotations

import contextlib
import copy
import os
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from tb_cnnviz import snapshots, summary
from tb_cnnviz.analysis.dead_filters import DeadFilterTracker
from tb_cnnviz.analysis.kernels import NORMALIZATIONS
from tb_cnnviz.analysis.layers import (
    LayerSpec,
    conv_layers,
    evenly_spaced,
    layer_name,
    resolve_layers,
    unwrap,
)
from tb_cnnviz.callbacks.background import BackgroundWorker

KINDS = ("kernels", "activations", "dead_filters", "gradcam", "attributions", "patterns", "embedding")
DEFAULT_EVERY_N_STEPS = {
    "kernels": 100,
    "activations": 200,
    "dead_filters": 200,
    "gradcam": 200,
    "attributions": 500,
    "patterns": 1000,
    "embedding": 1000,
}
SNAPSHOT_KINDS = (
    "kernels",
    "activations",
    "gradcam",
    "attributions",
)  # cheap: run on the training thread, baseline at the first step
SLOW_KINDS = (
    "patterns",
    "embedding",
)  # run on a copy of the model in the background thread; also at on_epoch_end
MAX_EMBEDDING_IMAGES = 10000
PROBE_KINDS = ("activations", "gradcam", "attributions")  # need probe images
DEFAULT_ACTIVATION_LAYERS = 3
MAX_PROBE_IMAGES = 64


class CNNVizCallback:
    """Log kernels, filter smoothness, probe activation maps, dead-filter statistics and Grad-CAM during training.

    Args:
        model: the network being trained (DDP and ``torch.compile`` wrappers are unwrapped).
        log_dir: where to write TensorBoard event files (created if needed). Give this or ``writer``.
        writer: an existing ``torch.utils.tensorboard.SummaryWriter`` to write through (not closed by us).
        probe: fixed probe images ``[N, C, H, W]`` (float), or ``(images, labels)``; needed for activation maps.
        class_names: names of the classes, shown with the probe labels.
        kernel_layers: conv layers whose kernels and smoothness are logged (default: the first conv layer).
        activation_layers: conv layers whose probe activation maps are logged (default: 3 evenly spaced convs).
        dead_filter_layers: conv layers with dead-filter statistics (default: every conv layer).
        gradcam_layers: layers whose Grad-CAM of the probe images is logged, for the probe labels
            when given, else the predicted class (default: the last conv layer; any layer with a
            ``[N, K, h, w]`` output works, e.g. a ResNet block).
        attributions: optional extra maps of the probe images, off by default: any of
            ``"saliency"``, ``"guided_backprop"``, ``"occlusion"``.
        logits: how to get the class scores ``[N, classes]`` from the model output, for Grad-CAM
            and attributions (default: the output itself, the first element of a tuple, or a
            dict's ``"logits"``/``"out"``). Checked on the probe at construction.
        pattern_layers: layers whose filter-pattern gallery (activation maximisation of the
            first ``pattern_channels`` filters, ``pattern_steps`` Adam steps on ``pattern_size``
            px images) is logged; off by default (it takes seconds). Also logged at every
            :meth:`on_epoch_end`.
        embedding_probe: a fixed held-out set ``(images, labels)`` (up to a few thousand images):
            enables t-SNE maps of its codes (the input of the last linear layer, or
            ``embedding_layer``), each started from and aligned to the previous map so
            clusters stay put between steps, with thumbnails; and, for
            ``top_example_layers`` (default: the activation layers), each filter's
            ``top_k`` most activating images with the receptive field of the maximum.
            Computed in the background every N steps and at :meth:`on_epoch_end`.
        embedding_method: ``"tsne"`` (openTSNE), ``"pca"`` or ``"umap"`` (needs umap-learn).
        projector: also export each embedding snapshot's codes, labels and thumbnails to
            TensorBoard's built-in Projector tab (``add_embedding``), for its 3-D view.
        input_mean, input_std: the model's input normalisation, so patterns are optimised in
            image space (default: none).
        background: compute slow kinds (patterns) on a copy of the model in a background
            thread so training does not wait; a snapshot due while one is still running is
            dropped and counted in ``dropped``.
        every_n_steps: one int for every kind, or a mapping ``{kind: n}`` overriding
            ``DEFAULT_EVERY_N_STEPS``; for ``dead_filters`` it is the window length.
        kernel_normalization: ``"global"`` (default) or ``"per_filter"`` for the kernel PNG.
        strict: re-raise visualisation errors instead of warning and disabling the kind.
        flush_secs: how often the event file is flushed to disk when we own the writer.

    Layers are dotted names from ``model.named_modules()`` or module objects; an empty
    list turns a kind off.
    """

    def __init__(
        self,
        model: nn.Module,
        log_dir: str | os.PathLike | None = None,
        *,
        writer: Any = None,
        probe: torch.Tensor | tuple[torch.Tensor, Any] | None = None,
        class_names: Sequence[str] | None = None,
        kernel_layers: Iterable[LayerSpec] | LayerSpec | None = None,
        activation_layers: Iterable[LayerSpec] | LayerSpec | None = None,
        dead_filter_layers: Iterable[LayerSpec] | LayerSpec | None = None,
        gradcam_layers: Iterable[LayerSpec] | LayerSpec | None = None,
        attributions: Sequence[str] = (),
        logits: Callable[[Any], torch.Tensor] | None = None,
        pattern_layers: Iterable[LayerSpec] | LayerSpec = (),
        pattern_channels: int = 64,
        pattern_steps: int = 64,
        pattern_size: int | None = None,
        embedding_probe: torch.Tensor | tuple[torch.Tensor, Any] | None = None,
        embedding_layer: LayerSpec | None = None,
        embedding_method: str = "tsne",
        projector: bool = False,
        top_example_layers: Iterable[LayerSpec] | LayerSpec | None = None,
        top_k: int = 9,
        input_mean: Sequence[float] | None = None,
        input_std: Sequence[float] | None = None,
        background: bool = True,
        every_n_steps: int | Mapping[str, int] | None = None,
        kernel_normalization: str = "global",
        strict: bool = False,
        flush_secs: float = 30.0,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.base = unwrap(model)
        self._compiled = _compiled(model)
        convs = conv_layers(self.base)
        if not convs:
            raise ValueError(
                f"model: {type(self.base).__name__} has no nn.Conv2d layer; CNNVizCallback visualises 2-D conv layers"
            )
        if kernel_normalization not in NORMALIZATIONS:
            raise ValueError(
                f"kernel_normalization: expected one of {NORMALIZATIONS}, got {kernel_normalization!r}"
            )
        self.kernel_normalization = kernel_normalization
        self.strict = bool(strict)
        self.every_n_steps = _schedule(every_n_steps)
        self.kernel_layers = self._layers(kernel_layers, [convs[0]], "kernel_layers")
        self.activation_layers = self._layers(
            activation_layers, evenly_spaced(convs, DEFAULT_ACTIVATION_LAYERS), "activation_layers"
        )
        self.dead_filter_layers = self._layers(dead_filter_layers, convs, "dead_filter_layers")
        self.gradcam_layers = self._layers(gradcam_layers, [convs[-1]], "gradcam_layers", conv_only=False)
        self.attributions = _attributions(attributions)
        self.pattern_layers = self._layers(pattern_layers, [], "pattern_layers", conv_only=False)
        self.pattern_settings = {
            "channels": _positive(pattern_channels, "pattern_channels"),
            "steps": _positive(pattern_steps, "pattern_steps"),
            "in_channels": convs[0][1].in_channels,
            "mean": input_mean,
            "std": input_std,
        }
        self.probe_images, self.probe_labels = _probe(probe, in_channels=convs[0][1].in_channels)
        self.embedding_images, self.embedding_labels = _probe(
            embedding_probe, convs[0][1].in_channels, "embedding_probe", max_images=MAX_EMBEDDING_IMAGES
        )
        if embedding_method not in ("tsne", "pca", "umap"):
            raise ValueError(f"embedding_method: expected 'tsne', 'pca' or 'umap', got {embedding_method!r}")
        if embedding_layer is not None:
            resolve_layers(self.base, [embedding_layer], argument="embedding_layer", conv_only=False)
        self.embedding_settings = {
            "layer": embedding_layer,
            "method": embedding_method,
            "k": _positive(top_k, "top_k"),
            "class_names": list(class_names) if class_names is not None else None,
            "top_layers": self._layers(top_example_layers, self.activation_layers, "top_example_layers"),
        }
        self._embedding_state = snapshots.EmbeddingState()
        self.projector = bool(projector)
        default_size = int(self.probe_images.shape[-1]) if self.probe_images is not None else 64
        self.pattern_settings["size"] = (
            _positive(pattern_size, "pattern_size") if pattern_size is not None else default_size
        )
        self.class_names = list(class_names) if class_names is not None else None
        if self.probe_images is None:
            asked = [
                name
                for name, value in (
                    ("activation_layers", activation_layers),
                    ("gradcam_layers", gradcam_layers),
                    ("attributions", attributions or None),
                )
                if value
            ]
            if asked:
                raise ValueError(f"probe: {', '.join(asked)} need probe images; pass probe=(images, labels)")
        self.rank = _rank()
        self._own_writer = writer is None
        # Under torch.distributed only global rank 0 writes; every rank tracks dead filters,
        # whose counts are summed across ranks at the end of each window.
        self.writer = _open_writer(log_dir, writer, flush_secs) if self.rank == 0 else None
        self.enabled = {
            "kernels": bool(self.kernel_layers),
            "activations": bool(self.activation_layers),
            "dead_filters": bool(self.dead_filter_layers),
            "gradcam": bool(self.gradcam_layers),
            "attributions": bool(self.attributions),
            "patterns": bool(self.pattern_layers),
            "embedding": self.embedding_images is not None,
        }
        self.background = bool(background)
        # One job per slow kind may wait while another runs: patterns and a map due at the same
        # epoch end both get done; a further one is dropped.
        self._worker = BackgroundWorker("snapshots", on_error=lambda error: None, max_pending=len(SLOW_KINDS))
        if logits is not None and not callable(logits):
            raise TypeError(f"logits: expected a callable on the model output, got {type(logits).__name__}")
        self._scores_model = snapshots.Logits(self.base, logits or snapshots.default_logits)
        if self.probe_images is not None:
            self._check_probe_forward()
        self._background_error: BaseException | None = None
        if self.probe_images is None:
            self.enabled.update({kind: False for kind in PROBE_KINDS})
        self._tracker = (
            DeadFilterTracker(self.base, [m for _, m in self.dead_filter_layers])
            if self.enabled["dead_filters"]
            else None
        )
        if self._tracker is not None and self._compiled:
            # torch.compile does not guard on empty hook dicts (torch._dynamo.config.skip_nnmodule_hook_guards):
            # code traced before our counting hooks existed (an earlier call of this model, or another
            # instance of its class) would run without them and no dead-filter window would ever be
            # logged. Drop compiled code; the next training forward re-traces with the hooks.
            torch.compiler.reset()
        self._window_start: int | None = None
        self._warned_no_forward = False
        self._last_step: int | None = None
        self._logged_probe = False
        self._last_slow_step: dict[str, int] = {}
        self._closed = False

    # ----------------------------------------------------------------- schedule
    def on_step_end(self, step: int) -> None:
        """Call after ``optimizer.step()`` with the global step; logs whatever is due at this step.

        The first call logs every snapshot kind as a baseline; after that each kind logs
        when ``step`` is a multiple of its ``every_n_steps``.
        """
        if self._closed:
            raise RuntimeError("on_step_end: the callback was closed")
        step = _step(step)
        if self._last_step is not None and step <= self._last_step:
            return
        first = self._last_step is None
        self._last_step = step
        if self._window_start is None:
            self._window_start = step
        self._raise_background_error()
        for kind in SNAPSHOT_KINDS:
            if self.rank == 0 and self.enabled[kind] and (first or step % self.every_n_steps[kind] == 0):
                self._run(kind, step)
        for kind in SLOW_KINDS:
            if self.rank == 0 and self.enabled[kind] and step % self.every_n_steps[kind] == 0:
                self._run(kind, step)
        if self._tracker is not None and step % self.every_n_steps["dead_filters"] == 0:
            if self._tracker.batches or _distributed():
                self._end_window(step)
            elif step > self._window_start and not self._warned_no_forward:
                self._warned_no_forward = True
                warnings.warn(
                    f"tb-cnnviz: no forward pass of the model reached the dead-filter hooks between steps "
                    f"{self._window_start} and {step}, so dead filters are not measured. Is the training step "
                    f"compiled (torch.compile) from before CNNVizCallback was created, or run on another "
                    f"copy of the model?",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def on_epoch_end(self, step: int) -> None:
        """Call at the end of an epoch with the global step: logs the slow kinds (pattern galleries)."""
        if self._closed:
            raise RuntimeError("on_epoch_end: the callback was closed")
        step = _step(step)
        self._raise_background_error()
        for kind in SLOW_KINDS:
            if self.rank == 0 and self.enabled[kind] and step != self._last_slow_step.get(kind):
                self._run(kind, step)

    def flush(self) -> None:
        """Wait for background snapshots to finish and flush the event file to disk."""
        self._worker.join()
        self._raise_background_error()
        if self.writer is not None:
            self.writer.flush()

    @property
    def dropped(self) -> int:
        """Background snapshots dropped because the previous one was still running."""
        return self._worker.dropped

    def close(self) -> None:
        """Finish background work, log the unfinished dead-filter window, flush, remove the hooks, close our writer."""
        if self._closed:
            return
        try:
            self._worker.close()
            self._raise_background_error()
            pending = self._tracker is not None and (self._tracker.batches or _distributed())
            if pending and self._last_step is not None and self._last_step != self._window_start:
                self._end_window(self._last_step)
        finally:
            self._closed = True
            if self._tracker is not None:
                self._tracker.remove()
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
            "logged_probe": self._logged_probe,
            "enabled": dict(self.enabled),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._last_step = state.get("last_step")
        self._window_start = state.get("window_start")
        self._logged_probe = bool(state.get("logged_probe", False))
        for kind, flag in dict(state.get("enabled", {})).items():
            if kind in self.enabled:
                self.enabled[kind] = self.enabled[kind] and bool(flag)

    def __enter__(self) -> CNNVizCallback:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _end_window(self, step: int) -> None:
        """Close the dead-filter window: reduce counts across ranks (all ranks, always), then log on rank 0.

        The collective stays outside the failure handling of :meth:`_run`: if rank 0
        disabled the kind after a write error while other ranks kept reducing, they
        would wait for it forever.
        """
        rates = (
            self._tracker.rates()
            if not _distributed()
            else _reduced_rates(self._tracker, self.dead_filter_layers, _device(self.base))
        )
        window = step - self._window_start if self._window_start is not None else 0
        self._tracker.reset()
        self._window_start = step
        if self.rank == 0 and self.enabled["dead_filters"]:
            self._run("dead_filters", step, rates, window)

    def _run(self, kind: str, step: int, *args) -> None:
        """Compute and write one kind; a slow kind returns a job that finishes in the background."""
        try:
            with self._own_forwards():
                result = getattr(self, f"_{kind}")(step, *args)
                if callable(result):
                    if not self.background:
                        self._write(result(), step)
                        self._last_slow_step[kind] = step
                    elif self._worker.submit(lambda: self._finish(kind, step, result)):
                        self._last_slow_step[kind] = step
                else:
                    self._write(result, step)
        except Exception as error:  # a visualisation never stops training
            if self.strict:
                raise
            self._disable(kind, step, error)

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
        if self.writer is not None:
            summary.write(self.writer, summaries, step)

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

    # ------------------------------------------------------------------- kinds
    def _own_forwards(self) -> contextlib.ExitStack:
        """Where our own forwards run: in float32 even when the caller is inside a ``torch.autocast``
        region (a snapshot must not depend on where ``on_step_end`` is called), and eagerly when the
        model was compiled in place (``module.compile()``): its compiled code, traced without the
        snapshot's temporary hooks, would skip them, or recompile at every snapshot."""
        stack = contextlib.ExitStack()
        device = _device(self.base).type
        if torch.amp.is_autocast_available(device):
            stack.enter_context(torch.autocast(device_type=device, enabled=False))
        if self._compiled:
            stack.enter_context(torch.compiler.set_stance("force_eager"))
        return stack

    def _probe_on_device(self) -> torch.Tensor:
        return self.probe_images.to(_device(self.base))

    def _kernels(self, step: int) -> list:
        return snapshots.kernels(self.kernel_layers, self.kernel_normalization)

    def _with_probe(self, summaries: list) -> list:
        """The probe images and labels, logged once with the first probe-based snapshot (views draw on them)."""
        if not self._logged_probe:
            summaries += snapshots.probe(self.probe_images, self.probe_labels, self.class_names)
            self._logged_probe = True
        return summaries

    def _activations(self, step: int) -> list:
        return self._with_probe(
            snapshots.activations(self.base, self.activation_layers, self._probe_on_device())
        )

    def _gradcam(self, step: int) -> list:
        return self._with_probe(
            snapshots.gradcam(
                self._scores_model, self.gradcam_layers, self._probe_on_device(), self.probe_labels
            )
        )

    def _attributions(self, step: int) -> list:
        return snapshots.attributions(
            self._scores_model, self.attributions, self._probe_on_device(), self.probe_labels
        )

    def _check_probe_forward(self) -> None:
        """One eval forward of two probe images at construction, so a probe the model cannot
        take, or an output Grad-CAM cannot explain, fails before training starts."""
        from tb_cnnviz.analysis.safety import safe_snapshot

        images = self.probe_images[:2].to(_device(self.base))
        try:
            with safe_snapshot(self.base), torch.no_grad(), self._own_forwards():
                output = self.base(images)
        except Exception as error:
            raise ValueError(
                f"probe: the model cannot run on the probe images of shape {tuple(self.probe_images.shape)}: "
                f"{type(error).__name__}: {error}"
            ) from error
        if not (self.enabled["gradcam"] or self.enabled["attributions"]):
            return
        scores = self._scores_model.select(output)
        if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise ValueError(
                f"logits: Grad-CAM needs class scores [N, classes] from the model output, got {shape}; "
                "pass logits=a function picking them, or gradcam_layers=[] to turn Grad-CAM off"
            )
        if (
            self.probe_labels is not None
            and len(self.probe_labels)
            and int(self.probe_labels.max()) >= scores.shape[1]
        ):
            raise ValueError(
                f"probe: label {int(self.probe_labels.max())} is out of range for a model with {scores.shape[1]} classes"
            )

    def _patterns(self, step: int):
        model = _detached_copy(self.base)  # taken now, on the training thread; used later in the background
        return lambda: snapshots.patterns(
            model, _same_layers(model, self.pattern_layers), **self.pattern_settings
        )

    def _embedding(self, step: int):
        model = _detached_copy(self.base)
        settings = dict(
            self.embedding_settings, top_layers=_same_layers(model, self.embedding_settings["top_layers"])
        )
        first = self._embedding_state.layout is None

        def job() -> list:
            images = self.embedding_images.to(_device(model))
            summaries = snapshots.embedding(
                model, images, self.embedding_labels, state=self._embedding_state, **settings
            )
            codes = self._embedding_state.codes
            if (
                self.projector and self.writer is not None
            ):  # TensorBoard's own Projector tab, for its 3-D view
                labels = (
                    None
                    if self.embedding_labels is None
                    else [self._class_name(int(v)) for v in self.embedding_labels]
                )
                self.writer.add_embedding(
                    codes,
                    metadata=labels,
                    label_img=snapshots.display_images(self.embedding_images),
                    global_step=step,
                    tag="cnnviz_embedding",
                )
            return summaries + (snapshots.sprites(self.embedding_images) if first else [])

        return job

    def _class_name(self, label: int) -> str:
        names = self.class_names
        return names[label] if names is not None and 0 <= label < len(names) else str(label)

    def _dead_filters(self, step: int, rates: list, window: int) -> list:
        measured_at = [layer_name(self.base, point) for point in self._tracker.points]
        return snapshots.dead_filters(self.dead_filter_layers, measured_at, rates, window)

    def _layers(self, spec, default, argument: str, conv_only: bool = True) -> list[tuple[str, nn.Module]]:
        if spec is None:
            return list(default)
        return resolve_layers(self.base, spec, argument=argument, conv_only=conv_only)


# ---------------------------------------------------------------- distributed
def _distributed() -> bool:
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def _rank() -> int:
    return (
        torch.distributed.get_rank()
        if torch.distributed.is_available() and torch.distributed.is_initialized()
        else 0
    )


def _reduced_rates(tracker: DeadFilterTracker, layers, device: torch.device) -> list[torch.Tensor]:
    """Activation rates summed over all ranks in one collective: a filter is dead only if dead on every rank.

    Every rank calls this at the same steps (the schedule depends on the step only);
    a rank that saw no batch contributes zeros.
    """
    parts = []
    for (positive, positions), (_, conv) in zip(tracker.counts(), layers):
        counts = (
            positive
            if positive is not None
            else torch.zeros(conv.out_channels, dtype=torch.float64, device=device)
        )
        parts += [
            counts.to(device=device, dtype=torch.float64),
            torch.tensor([float(positions)], dtype=torch.float64, device=device),
        ]
    flat = torch.cat(parts)
    torch.distributed.all_reduce(flat)
    rates, offset = [], 0
    for _, conv in layers:
        counts, positions = flat[offset : offset + conv.out_channels], flat[offset + conv.out_channels]
        rates.append(counts / positions if positions > 0 else None)
        offset += conv.out_channels + 1
    return rates


# ----------------------------------------------------------------- validation
def _schedule(every_n_steps) -> dict[str, int]:
    schedule = dict(DEFAULT_EVERY_N_STEPS)
    if every_n_steps is None:
        return schedule
    if isinstance(every_n_steps, Mapping):
        unknown = sorted(set(every_n_steps) - set(KINDS))
        if unknown:
            raise ValueError(f"every_n_steps: unknown kind(s) {unknown}; expected keys from {list(KINDS)}")
        items = dict(every_n_steps)
    else:
        items = {kind: every_n_steps for kind in KINDS}
    for kind, value in items.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(
                f"every_n_steps[{kind!r}]: expected an int >= 1, got {value!r} ({type(value).__name__})"
            )
        if value < 1:
            raise ValueError(f"every_n_steps[{kind!r}]: expected an int >= 1, got {value}")
        schedule[kind] = int(value)
    return schedule


def _detached_copy(model: nn.Module) -> nn.Module:
    """A copy of the model's current weights for background work: no hooks (ours count training
    forwards), no gradients, on the same device."""
    clone = copy.deepcopy(model)
    for module in clone.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        module._backward_hooks.clear()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
        parameter.grad = None
    return clone


def _same_layers(clone: nn.Module, layers) -> list[tuple[str, nn.Module]]:
    """The modules of ``clone`` with the names of ``layers``."""
    modules = dict(clone.named_modules())
    return [(name, modules[name]) for name, _ in layers]


def _positive(value, argument: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{argument}: expected an int >= 1, got {value!r}")
    return int(value)


def _attributions(methods) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    try:
        methods = tuple(methods)
    except TypeError:
        raise TypeError(
            f"attributions: expected a list of method names, got {type(methods).__name__}"
        ) from None
    unknown = [m for m in methods if m not in snapshots.ATTRIBUTION_METHODS]
    if unknown:
        raise ValueError(
            f"attributions: unknown method(s) {unknown}; expected any of {list(snapshots.ATTRIBUTION_METHODS)}"
        )
    return methods


def _probe(
    probe, in_channels: int, argument: str = "probe", max_images: int = MAX_PROBE_IMAGES
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Validate a probe batch (images or ``(images, labels)``); a CPU copy is kept, moved to the model when used."""
    if probe is None:
        return None, None
    labels = None
    if isinstance(probe, (tuple, list)):
        if len(probe) != 2:
            raise ValueError(
                f"{argument}: expected images or (images, labels), got a {type(probe).__name__} of length {len(probe)}"
            )
        probe, labels = probe
    if not isinstance(probe, torch.Tensor):
        raise TypeError(f"{argument}: expected a float tensor [N, C, H, W], got {type(probe).__name__}")
    if probe.dim() != 4 or not probe.is_floating_point():
        raise ValueError(
            f"{argument}: expected a 4-D float tensor [N, C, H, W], got shape {tuple(probe.shape)} and dtype {probe.dtype}"
        )
    if probe.shape[1] != in_channels:
        raise ValueError(
            f"{argument}: the model's first conv layer takes {in_channels} channels, the images have {probe.shape[1]} (shape {tuple(probe.shape)})"
        )
    if not 1 <= probe.shape[0] <= max_images:
        typical = " (8-16 is typical)" if argument == "probe" else ""
        raise ValueError(f"{argument}: expected 1 to {max_images} images{typical}, got {probe.shape[0]}")
    if not torch.isfinite(probe).all():
        raise ValueError(f"{argument}: the images contain NaN or Inf values")
    if labels is not None:
        labels = torch.as_tensor(labels).detach().cpu().reshape(-1)
        if labels.numel() != probe.shape[0]:
            raise ValueError(f"{argument}: {probe.shape[0]} images but {labels.numel()} labels")
    return probe.detach().cpu().clone(), labels


def _open_writer(log_dir, writer, flush_secs: float):
    if writer is not None:
        if log_dir is not None:
            raise ValueError("log_dir: give either log_dir or writer, not both")
        if not hasattr(writer, "_get_file_writer"):
            raise TypeError(
                f"writer: expected a torch.utils.tensorboard.SummaryWriter, got {type(writer).__name__}"
            )
        return writer
    if log_dir is None:
        raise ValueError(
            "log_dir: expected a directory for the event files (or pass writer=SummaryWriter(...))"
        )
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"log_dir: cannot create {str(log_dir)!r}: {error.strerror or error}") from None
    if not os.access(log_dir, os.W_OK):
        raise ValueError(f"log_dir: {str(log_dir)!r} is not writable")
    from torch.utils.tensorboard import SummaryWriter  # imported late: pulls in tensorboard

    return SummaryWriter(log_dir=str(log_dir), flush_secs=flush_secs)


def _step(step) -> int:
    if isinstance(step, torch.Tensor) and step.numel() == 1:
        step = step.item()
    if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step: expected a non-negative int global step, got {step!r}")
    return int(step)


def _compiled(model: nn.Module) -> bool:
    """Whether ``torch.compile`` is in play: a compiled wrapper (``torch.compile(model)``, possibly inside or
    around DDP) or a module compiled in place (``module.compile()``)."""
    return any(
        isinstance(getattr(module, "_orig_mod", None), nn.Module)
        or getattr(module, "_compiled_call_impl", None) is not None
        for module in model.modules()
    )


def _device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")
