"""Dead filters (CS231n): filters whose output is never positive, so a following ReLU never passes signal.

For each tracked conv layer we count, per filter, the positions (batch x height x
width) where the input of the nonlinearity that really follows the conv is active. Where that
is and what it means (``relu``: dead, exact; ``smooth``: inactive; ``residual``/``none``/...: no
dead filters defined) is found by one probe forward, see :mod:`analysis.activation_points`. Counts accumulate on the device in forward
hooks, with no host synchronisation per step; the activation rate is the count over the
number of positions, and a filter is dead when its rate is exactly 0 over a window.

A ReLU is measured at the output of the module that feeds it (the conv or any norm layer), so it
works whether the ReLU is in-place, a module reused by several convs, or ``F.relu`` in ``forward``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tb_cnnviz.analysis.activation_points import Point, find_points, probe_input
from tb_cnnviz.analysis.layers import activation_point, layer_name
from tb_cnnviz.analysis.safety import capture_outputs, safe_snapshot


def positive_counts(value: torch.Tensor) -> torch.Tensor:
    """Per channel of ``[N, C, H, W]``, the number of entries > 0, as float32 on the same device.

    Written for the training hot path: ``relu(x).sign()`` summed over a contiguous view
    costs about a third of ``(x > 0).sum(dim=(0, 2, 3))`` on the CPU (the bool
    reduction is not vectorised), and works for channels-last and half-precision
    activations. Sums are exact up to 2**24 positions per channel and call; zero stays
    exactly zero at any size, so dead filters are always exact. A channel with a NaN or
    Inf anywhere gets a NaN count (``sign(NaN)`` is 0 in torch, so the plain sum of
    ``relu(x)``, times 0, is added to carry it): non-finite activations are flagged, never
    mistaken for a dead filter.
    """
    channels = value.shape[1]
    if value.is_contiguous(memory_format=torch.channels_last) and not value.is_contiguous():
        flat, dims = value.permute(0, 2, 3, 1).reshape(-1, channels), (0,)
    else:
        flat, dims = value.reshape(value.shape[0], channels, -1), (0, 2)
    positive = torch.relu(flat)
    nonfinite = positive.sum(dim=dims, dtype=torch.float32).mul_(0)  # 0, or NaN where a NaN/Inf was summed
    return positive.sign_().sum(dim=dims, dtype=torch.float32).add_(nonfinite)


class DeadFilterTracker:
    """Persistent hooks that accumulate per-filter positive counts over training forwards.

    Only forwards with the module in training mode and grad enabled are counted, so
    validation passes and the callback's own probe snapshots do not dilute the window.
    ``count_every=k`` counts one training forward of the model in ``k`` (the first, then every
    k-th), so the hooks' cost is paid on a sample of the batches: a filter is then reported
    dead when it was dead on every counted batch. The counting hooks are attached only for the
    forwards that count when ``count_every > 1`` (a hook on every conv layer costs its dispatch
    even when it returns at once); a second pre-forward hook on the model decides. With
    ``count_every=1`` they stay attached, so a compiled training step traces them once. ``forwards`` counts the training forwards
    seen, ``batches`` the ones counted; with ``timed=True``, ``seconds`` is the time the hooks
    spent counting them (host time: on a GPU, the time to launch the counting; off under
    ``torch.compile``, which cannot trace the clock). Use as a context manager or call :meth:`remove`.

    ``images`` (optional) feed the probe forward that finds each layer's nonlinearity (two random
    64 px images otherwise); if the model cannot run on them, each layer is measured at
    :func:`layers.activation_point` with semantics ``unmeasured``. ``semantics`` holds one per layer.
    Layers whose semantics is in ``leave_out`` (e.g. ``("gate", "head")``: no spatial maps) get no
    hooks; ``kept`` lists the indices of the layers counted.

    ``reported`` (optional) names the semantics whose rate-0 filters are reported (e.g. ``("relu",
    "smooth")``); the other layers (residual, none, ...: their rates are information only) form a
    second group with a sample of its own, ``info_count_every`` (see :meth:`set_count_every`), so a
    budget can go to the reported layers first. ``group_batches`` holds the batches counted per
    group (reported, information), ``group_seconds`` the hooks' time per group, and
    :meth:`layer_batches` / :meth:`layer_count_every` the same per layer; without ``reported`` every
    layer is in the first group.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[nn.Module],
        count_every: int = 1,
        timed: bool = False,
        images: torch.Tensor | None = None,
        leave_out: Sequence[str] = (),
        reported: Sequence[str] | None = None,
    ):
        found = _points(model, layers, images)
        self.kept = [index for index, point in enumerate(found) if point.semantics not in leave_out]
        found = [found[index] for index in self.kept]
        self.points = [point.module for point in found]
        self.semantics = [point.semantics for point in found]
        # per layer: 0 = reported, 1 = information only
        self.groups = [int(reported is not None and point.semantics not in reported) for point in found]
        self._use_input = [point.use_input for point in found]
        self._threshold = [max(point.threshold, -1e4) for point in found]  # -inf: never inactive
        self.count_every = _count_every(count_every)  # checked before any hook is attached
        self.info_count_every = self.count_every
        self._positive: list[torch.Tensor | None] = [None] * len(self.points)
        self._positions = [0] * len(self.points)
        self.batches = 0  # training forwards on which any layer was counted
        self.group_batches = [0, 0]
        self.forwards = 0
        self.seconds = 0.0
        self.group_seconds = [0.0, 0.0]
        self._clock = time.perf_counter if timed else _no_clock
        self._counting = [True, True]  # per group, on the current forward
        self._model = model
        self._root = model.register_forward_pre_hook(self._start_forward)
        self._sampler = None  # while sampling: a second pre-hook attaches the counting hooks or not
        self._point_hooks: dict[int, Any] = {}
        self._members = [[i for i, g in enumerate(self.groups) if g == group] for group in (0, 1)]
        self._attached = [False, False]  # per group: its layers' counting hooks are on
        self.groups_present = [bool(self._members[0]) or not self._members[1], bool(self._members[1])]
        self._attach_points((True, True))
        self.set_count_every(self.count_every)

    def set_count_every(self, count_every: int, info_count_every: int | None = None) -> None:
        """Count one training forward in ``count_every`` at the reported layers and one in
        ``info_count_every`` (default: the same) at the others, from the next forward on."""
        self.count_every = _count_every(count_every)
        self.info_count_every = (
            self.count_every
            if info_count_every is None
            else _count_every(info_count_every, "info_count_every")
        )
        if self._root is None:
            return  # detached (or removed): attach() puts back the hooks this sample needs
        sampling = self.count_every > 1 or self.info_count_every > 1
        if sampling and self._sampler is None:
            self._sampler = self._model.register_forward_pre_hook(self._attach_when_counting)
        elif not sampling and self._sampler is not None:
            self._sampler.remove()
            self._sampler = None
            self._attach_points((True, True))

    def layer_batches(self) -> list[int]:
        """Per layer, the training batches it was counted on in this window."""
        return [self.group_batches[group] for group in self.groups]

    def layer_count_every(self) -> list[int]:
        """Per layer, its current sample: one training forward in this many is counted."""
        return [(self.count_every, self.info_count_every)[group] for group in self.groups]

    def _start_forward(self, module, _inputs):
        if module.training and torch.is_grad_enabled():
            forward = self.forwards
            counting = [
                self.groups_present[0] and forward % self.count_every == 0,
                self.groups_present[1] and forward % self.info_count_every == 0,
            ]
            self._counting = counting
            self.forwards += 1
            self.batches += counting[0] or counting[1]
            self.group_batches[0] += counting[0]
            self.group_batches[1] += counting[1]

    def _attach_when_counting(self, module, _inputs):
        if module.training and torch.is_grad_enabled():
            self._attach_points(self._counting)
        else:
            self._attach_points((False, False))

    def _attach_points(self, groups: Sequence[bool]) -> None:
        """Hooks on the layers of the groups that count (``groups[g]``), none on the others."""
        for group, counting in enumerate(groups):
            if counting == self._attached[group]:
                continue  # the usual case: nothing to do, whatever the number of layers
            self._attached[group] = counting
            for index in self._members[group]:
                if counting:
                    self._point_hooks[index] = self.points[index].register_forward_hook(
                        self._make_hook(index)
                    )
                else:
                    self._point_hooks.pop(index).remove()

    def _detach_points(self) -> None:
        self._attach_points((False, False))

    def _make_hook(self, index: int):
        group = self.groups[index]

        def hook(module, _inputs, output):
            if not (self._counting[group] and module.training and torch.is_grad_enabled()):
                return
            start = self._clock()
            value = _inputs[0] if self._use_input[index] else output
            value = value[0] if isinstance(value, (tuple, list)) else value
            with torch.no_grad():
                value = value.detach()
                if self._threshold[index] != 0.0:
                    value = value - self._threshold[index]
                count = positive_counts(value).double()
            previous = self._positive[index]
            self._positive[index] = count if previous is None else previous.add_(count)
            self._positions[index] += value.shape[0] * value.shape[2] * value.shape[3]
            elapsed = self._clock() - start
            self.seconds += elapsed
            self.group_seconds[group] += elapsed

        return hook

    def rates(self) -> list[torch.Tensor | None]:
        """Per layer, the activation rate of each filter over the window so far (None before any batch)."""
        return [
            None if positive is None else positive.div(positions).float()
            for positive, positions in zip(self._positive, self._positions)
        ]

    def counts(self) -> list[tuple[torch.Tensor | None, int]]:
        """Per layer, ``(positive counts per filter as float64, number of positions)``: what a distributed reduction sums."""
        return list(zip(self._positive, self._positions))

    def reset(self) -> None:
        """Start a new window."""
        self._positive = [None] * len(self.points)
        self._positions = [0] * len(self.points)
        self.batches = 0
        self.group_batches = [0, 0]
        self.forwards = 0
        self.seconds = 0.0
        self.group_seconds = [0.0, 0.0]

    def detach(self) -> None:
        """Remove every hook, keeping the counts: the model runs as if untracked until :meth:`attach`
        (e.g. a benchmark's steps without the tracker). Forwards while detached are not seen."""
        self._detach_points()
        for handle in (self._root, self._sampler):
            if handle is not None:
                handle.remove()
        self._root = self._sampler = None

    def attach(self) -> None:
        """Put the hooks back after :meth:`detach` (no-op when attached)."""
        if self._root is None:
            self._root = self._model.register_forward_pre_hook(self._start_forward)
            self.set_count_every(self.count_every, self.info_count_every)
            if self._sampler is None:
                self._attach_points((True, True))

    def remove(self) -> None:
        self.detach()

    def __enter__(self) -> DeadFilterTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _points(model: nn.Module, layers: Sequence[nn.Module], images: torch.Tensor | None) -> list[Point]:
    """Each layer's :class:`Point` from a probe forward; the static activation point if the probe fails."""
    layers = list(layers)
    try:
        return find_points(model, layers, probe_input(model, layers) if images is None else images)
    except ValueError:
        points = [activation_point(model, layer) for layer in layers]
        return [Point(point, layer_name(model, point), "unmeasured") for point in points]


def _no_clock() -> float:
    return 0.0


def _count_every(value, name: str = "count_every") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return value


def activation_rates(
    model: nn.Module, layers: Sequence[nn.Module], images: torch.Tensor
) -> list[torch.Tensor]:
    """One-off activation rates of ``layers`` on ``images`` (eval mode, no grad): for offline use."""
    points = [activation_point(model, layer) for layer in layers]
    context, outputs = capture_outputs(
        points, transform=lambda value: (value.detach() > 0).float().mean(dim=(0, 2, 3))
    )
    with safe_snapshot(model), torch.no_grad(), context:
        model(images)
    return list(outputs)
