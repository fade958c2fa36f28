"""The ``patterns`` gallery and DeepDream: images optimised to drive the network."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from tb_cnnviz import metadata, summary
from tb_cnnviz.analysis.layers import output_channels
from tb_cnnviz.snapshots.images import display_images, to_uint8
from tb_cnnviz.snapshots.inputs import STATES, FilterRates, Inputs

CHOICES = ("most_active", "dead")  # the named choices of ``pattern_channels``
DEFAULT_CHOICE_COUNT = 64  # filters a named choice renders when no ``:N`` is given


@dataclasses.dataclass(frozen=True)
class PatternChoice:
    """Which filters of each pattern layer get a pattern (``pattern_channels``, checked by :func:`pattern_choice`).

    ``mode``: ``"first"`` (the first ``count``), ``"list"`` (``indices``), ``"most_active"`` (the ``count``
    filters of highest mean activation on the probe images) or ``"dead"`` (up to ``count`` filters the last
    closed dead-filter window reported dead, in index order)."""

    mode: str
    count: int = DEFAULT_CHOICE_COUNT
    indices: tuple[int, ...] = ()


def pattern_choice(value: Any, argument: str = "pattern_channels") -> PatternChoice:
    """``value`` as a :class:`PatternChoice`: an int n >= 1 (the first n filters), a list/tuple/range of
    distinct filter indices >= 0, ``"most_active"``/``"dead"`` (64 filters at most) or ``"most_active:N"``/``"dead:N"``.
    Errors name ``argument``, the value and what was expected."""
    expected = (
        "an int >= 1 (the first n filters), a list or range of distinct filter indices >= 0, "
        "'most_active', 'dead', 'most_active:N' or 'dead:N'"
    )
    if isinstance(value, PatternChoice):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{argument}: expected an int >= 1, got {value!r}; or {expected}")
        return PatternChoice("first", int(value))
    if isinstance(value, str):
        name, colon, count = value.partition(":")
        if name in CHOICES and (not colon or (count.isdigit() and int(count) >= 1)):
            return PatternChoice(name, int(count) if colon else DEFAULT_CHOICE_COUNT)
        raise ValueError(f"{argument}: expected {expected}, got {value!r}")
    if isinstance(value, (list, tuple, range)):
        items = list(value)
        bad = [item for item in items if isinstance(item, bool) or not isinstance(item, (int, np.integer))]
        if not items or bad or any(item < 0 for item in items):
            shown = bad[0] if bad else next((item for item in items if item < 0), value)
            raise ValueError(f"{argument}: expected {expected}, got {value!r} (offending item: {shown!r})")
        twice = sorted({int(item) for item in items if items.count(item) > 1})
        if twice:
            raise ValueError(f"{argument}: filters listed more than once: {twice}; expected distinct indices")
        return PatternChoice("list", len(items), tuple(int(item) for item in items))
    raise TypeError(f"{argument}: expected {expected}, got {type(value).__name__} {value!r}")


def check_choice_fits(choice: PatternChoice, layers, argument: str = "pattern_channels") -> None:
    """A list of indices must exist in every pattern layer (checked before training)."""
    if choice.mode != "list":
        return
    for name, layer in layers:
        count = output_channels(layer, "pattern_layers")
        outside = [index for index in choice.indices if index >= count]
        if outside:
            raise ValueError(
                f"{argument}: filter {outside[0]} is out of range for layer {name!r}, "
                f"which has {count} filters (0..{count - 1})"
            )


@dataclasses.dataclass
class PatternState:
    """What the patterns snapshot is told between runs: per layer name, the filters the last closed
    dead-filter window reported dead (``dead``; a layer absent was not measured) and that window's end step."""

    dead: Mapping[str, list[int]] = dataclasses.field(default_factory=dict)
    window_step: int | None = None

    def record(self, layers: Sequence[tuple[str, nn.Module]], measured: FilterRates, step: int) -> None:
        """Keep the dead filters of a closed window (rate 0 where 0 means dead: ``metadata.REPORTED_SEMANTICS``).
        Replaced whole, so a background snapshot reading it never sees half an update."""
        semantics = list(measured.semantics) or ["relu"] * len(measured.rates)
        dead = {}
        for (name, _), meaning, rate in zip(layers, semantics, measured.rates):
            if rate is not None and meaning in metadata.REPORTED_SEMANTICS:
                dead[name] = [int(i) for i in torch.nonzero(rate.flatten() == 0).flatten().tolist()]
        self.dead, self.window_step = dead, step


STATES["patterns"] = PatternState  # the callback records each closed dead-filter window in it


def chosen_filters(
    choice: PatternChoice, name: str, model: nn.Module, layer: nn.Module, reference, state
) -> tuple[list[int], str | None]:
    """The filters of ``layer`` to render under ``choice``, and why, when they stand in for the ones asked
    (the first filters: ``"dead"`` while no dead filter was found)."""
    from tb_cnnviz.analysis.patterns import unit_activations

    count = output_channels(layer, "pattern_layers")
    first = list(range(min(choice.count, count)))
    if choice.mode == "first":
        return first, None
    if choice.mode == "list":
        return [index for index in choice.indices if index < count], None
    if choice.mode == "most_active":
        if reference is None:
            return first, "most_active needs probe images: the first filters were rendered"
        mean = unit_activations(model, layer, reference).float().mean(dim=0)
        order = torch.argsort(mean, descending=True, stable=True)
        return [int(i) for i in order[: min(choice.count, count)]], None
    dead = None if state is None else state.dead.get(name)
    if dead is None:
        when = (
            "no dead-filter window has closed yet"
            if state is None or state.window_step is None
            else (f"dead filters are not measured on {name!r}")
        )
        return first, f"{when}: the first {len(first)} filters were rendered instead of dead ones"
    if not dead:
        return first, (
            f"no dead filters in the window ending at step {state.window_step}: "
            f"the first {len(first)} filters were rendered instead"
        )
    return dead[: choice.count], None


def patterns(inputs: Inputs) -> list:
    """A gallery per layer: the chosen filters' activation-maximising images (content ``choice``: how they
    were chosen), the activation each reached, the filters of this step (``pattern_channels``: which they
    are, and which stand in for the ones asked) and, when ``reference`` images are set (the probe), the best
    activation of the same filter on them (``pattern_reference``: a pattern below it has failed).

    Settings: ``channels`` (a :class:`PatternChoice` or anything :func:`pattern_choice` accepts),
    ``size`` (px), ``steps`` (Adam steps), ``in_channels``, ``mean`` and ``std`` (the model's input
    normalisation, or None), ``reference`` (model inputs ``[N, C, H, W]``, or None). ``state``: a
    :class:`PatternState` (the dead filters of the last window), or None."""
    from tb_cnnviz.analysis.patterns import filter_patterns, unit_activations

    settings = inputs.settings
    size, steps = settings["size"], settings["steps"]
    choice = pattern_choice(settings["channels"])
    reference = settings.get("reference")
    state = inputs.state if isinstance(inputs.state, PatternState) else None
    summaries = []
    for name, layer in inputs.layers:
        channels, note = chosen_filters(choice, name, inputs.model, layer, reference, state)
        result = filter_patterns(
            inputs.model,
            layer,
            channels,
            size=size,
            steps=steps,
            in_channels=settings["in_channels"],
            mean=settings["mean"],
            std=settings["std"],
            seed=0,
            return_activations=True,
        )
        summaries += pattern_summaries(
            name, result, size, steps, choice=choice.mode, stand_in=note is not None
        )
        if reference is not None:
            best = unit_activations(inputs.model, layer, reference)[:, channels].amax(dim=0)
            summaries.append(
                summary.tensor_summary(metadata.PATTERN_REFERENCE, name, best.float().cpu().numpy())
            )
    return summaries


def pattern_summaries(
    name: str, result, size, steps: int, choice: str | None = None, stand_in: bool = False
) -> list:
    """The ``patterns`` gallery, ``pattern_values`` and ``pattern_channels`` of one ``analysis.patterns``
    result (with activations), for any targets: filters of layer ``name``, or classes (``name``
    ``"logits"``); ``choice`` (how the targets were chosen) goes in the gallery's content when given,
    ``stand_in``: the targets stand in for the ones asked (``pattern_channels`` row 1 is 0)."""
    pngs = [summary.encode_png(to_uint8(image)) for image in result.images]
    extra = {} if choice is None else {"choice": choice}
    targets = np.array(result.targets, dtype=np.float32)
    asked = np.full_like(targets, 0.0 if stand_in else 1.0)
    return [
        summary.blob_summary(
            metadata.PATTERNS, name, pngs, channels=list(result.targets), size=size, steps=steps, **extra
        ),
        summary.tensor_summary(metadata.PATTERN_VALUES, name, result.activations.float().cpu().numpy()),
        summary.tensor_summary(metadata.PATTERN_CHANNELS, name, np.stack([targets, asked])),
    ]


def dream(inputs: Inputs) -> list:
    """DeepDream of one image on ``layers``, and how much it amplified them: one ``dream`` summary.

    ``images``: one image ``[1, C, H, W]`` in [0, 1]. Settings (all optional): ``octaves`` (4),
    ``octave_scale`` (1.4), ``steps`` per octave (10), ``lr`` (0.01), ``seed`` (0), ``progress`` (False).
    The summary holds ``[original PNG, dreamed PNG]``, the settings, the DeepDream objective
    ``L(x) = sum_l ||a_l(x)||_2 / sqrt(numel(a_l))`` (Mordvintsev et al. 2015; see ``analysis.dream``)
    of the original and of the dream (``objective``), and the gain ``after / before`` (None when the
    layers are silent on the original).
    """
    from tb_cnnviz.analysis.dream import deep_dream

    if inputs.images is None or inputs.images.dim() != 4 or len(inputs.images) != 1:
        shape = None if inputs.images is None else tuple(inputs.images.shape)
        raise ValueError(f"images: expected one image [1, C, H, W], got {shape}")
    settings = {"octaves": 4, "octave_scale": 1.4, "steps": 10, "lr": 0.01, "seed": 0, **inputs.settings}
    image, modules = inputs.images[0], [module for _, module in inputs.layers]
    dreamed = deep_dream(
        inputs.model,
        image,
        modules,
        octaves=settings["octaves"],
        octave_scale=settings["octave_scale"],
        steps=settings["steps"],
        lr=settings["lr"],
        seed=settings["seed"],
        progress=settings.get("progress", False),
    )
    pair = torch.stack([image, dreamed])
    before, after = (float(v) for v in dream_objective(inputs.model, modules, pair))
    gain = after / before if before > 0 and math.isfinite(after / before) else None
    names = [name for name, _ in inputs.layers]
    return [
        summary.blob_summary(
            metadata.DREAM,
            "+".join(names),
            [summary.encode_png(to_uint8(picture)) for picture in display_images(pair)],
            layers=names,
            octaves=int(settings["octaves"]),
            octave_scale=float(settings["octave_scale"]),
            steps=int(settings["steps"]),
            lr=float(settings["lr"]),
            seed=int(settings["seed"]),
            size=[int(image.shape[-2]), int(image.shape[-1])],
            objective=[_finite_or_none(before), _finite_or_none(after)],
            gain=gain,
        )
    ]


def dream_objective(model: nn.Module, layers: Sequence[nn.Module], images: torch.Tensor) -> torch.Tensor:
    """Per image ``[N]``: what DeepDream maximises, ``sum_l ||a_l||_2 / sqrt(numel(a_l))`` over the
    outputs of ``layers`` (measured as ``analysis.dream`` measures them: each at its first call, no ReLU after).
    Eval mode, no gradient; modes, RNG and hooks restored."""
    from tb_cnnviz.analysis.layers import unwrap
    from tb_cnnviz.analysis.safety import safe_snapshot
    from tb_cnnviz.analysis.truncation import truncated_forward

    base = unwrap(model)
    parameter = next(base.parameters(), None)
    if parameter is not None and parameter.is_floating_point():
        # A half-precision model gets half-precision images, as in deep_dream.
        images = images.to(parameter.dtype)
    with safe_snapshot(base), torch.no_grad(), truncated_forward(base, list(layers)) as run:
        outputs = run(images)
    return sum(output.flatten(1).float().norm(dim=1) / output[0].numel() ** 0.5 for output in outputs)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
