"""The callback's configuration: its keyword arguments, validated and resolved against the model in one place.

:class:`Options` lists the keyword arguments of ``CNNVizCallback`` with their defaults (the
callback publishes its signature from it). :func:`build` checks every one of them, with an
error that names the argument, and returns a frozen :class:`CallbackConfig`: the layers, inputs,
settings and schedule of every snapshot of ``kinds.SNAPSHOTS``. The schedule's keys and defaults,
the layer arguments, which input a snapshot needs and which snapshots are on all come from that
table, so a new snapshot adds its own options here (an ``Options`` field tagged with the snapshot
it turns on or configures) and nothing in the callback.

``build`` checks in one place with the help of the modules named after the arguments they check:
``schedule`` (``every_n_steps``), ``probe_checks`` (``probe``, ``embedding_probe`` and the probe's
forward), ``layer_defaults`` (the layer arguments' defaults); ``event_writer`` checks ``log_dir`` and
``writer`` when the callback opens its writer.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import nn

from tb_cnnviz.analysis.conv_extent import conv_extent
from tb_cnnviz.analysis.kernels import NORMALIZATIONS
from tb_cnnviz.analysis.layers import (
    LayerSpec,
    conv_layers,
    evenly_spaced,
    resolve_layers,
    unwrap,
)
from tb_cnnviz.callbacks import compilation, projector, schedule
from tb_cnnviz.callbacks.layer_defaults import (
    DEFAULT_ACTIVATION_LAYERS,
    not_a_cnn,
    path_defaults,
    resolve_or_default,
)
from tb_cnnviz.callbacks.probe_checks import (
    CLASS_SCORE_SNAPSHOTS,
    MAX_EMBEDDING_IMAGES,
    MAX_PROBE_IMAGES,
    check_probe_forward,
    probe_batch,
)
from tb_cnnviz.callbacks.scalars import SCALAR_MODES
from tb_cnnviz.kinds import SNAPSHOTS
from tb_cnnviz.snapshots import ATTRIBUTION_METHODS
from tb_cnnviz.snapshots.inputs import default_logits
from tb_cnnviz.snapshots.patterns import check_choice_fits, pattern_choice
from tb_cnnviz.snapshots.separability import default_layers as separability_defaults

EMBEDDING_METHODS = ("tsne", "pca", "umap")
TURNS_ON = "turns_on"  # Options field metadata: the snapshot this argument turns on (default: its layers)
SETTING = "setting"  # Options field metadata: (snapshot, key) of the snapshot's settings it fills


def _option(default: Any = None, *, turns_on: str | None = None, setting: tuple[str, str] | None = None):
    metadata = {key: value for key, value in ((TURNS_ON, turns_on), (SETTING, setting)) if value is not None}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True, eq=False)
class Options:
    """The keyword arguments of ``CNNVizCallback`` (documented there), with their defaults."""

    writer: Any = None
    probe: torch.Tensor | tuple[torch.Tensor, Any] | None = None
    class_names: Sequence[str] | None = None
    kernel_layers: Iterable[LayerSpec] | LayerSpec | None = None
    activation_layers: Iterable[LayerSpec] | LayerSpec | None = None
    dead_filter_layers: Iterable[LayerSpec] | LayerSpec | None = None
    gradcam_layers: Iterable[LayerSpec] | LayerSpec | None = None
    attributions: Sequence[str] = _option((), turns_on="attributions", setting=("attributions", "methods"))
    logits: Callable[[Any], torch.Tensor] | None = None
    pattern_layers: Iterable[LayerSpec] | LayerSpec | None = ()
    pattern_channels: int | Sequence[int] | str = _option(64, setting=("patterns", "channels"))
    pattern_steps: int = _option(64, setting=("patterns", "steps"))
    pattern_size: int | None = _option(None, setting=("patterns", "size"))
    embedding_probe: torch.Tensor | tuple[torch.Tensor, Any] | None = _option(turns_on="embedding")
    embedding_layer: LayerSpec | None = _option(None, setting=("embedding", "layer"))
    embedding_method: str = _option("tsne", setting=("embedding", "method"))
    projector: bool = False
    top_example_layers: Iterable[LayerSpec] | LayerSpec | None = None
    top_k: int = _option(9, setting=("embedding", "k"))
    separability_layers: Iterable[LayerSpec] | LayerSpec | None = None
    faithfulness: bool = _option(False, turns_on="faithfulness")
    input_mean: Sequence[float] | None = _option(None, setting=("patterns", "mean"))
    input_std: Sequence[float] | None = _option(None, setting=("patterns", "std"))
    background: bool = True
    every_n_steps: int | Mapping[str, int] | None = None
    kernel_normalization: str = _option("global", setting=("kernels", "normalization"))
    strict: bool = False
    flush_secs: float = 30.0
    overhead_budget: float = (
        0.003  # the dead-filter hooks' share; benchmarks/overhead.py: amortised <= 1% with it
    )
    scalars: str = "summary"


OPTION_NAMES = tuple(field.name for field in dataclasses.fields(Options))


def signature(init: Callable) -> inspect.Signature:
    """``CNNVizCallback(model, log_dir=None, *, <every field of Options with its default>)``: ``init``'s
    signature with its ``**options`` spelled out."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    fixed = [
        p for p in inspect.signature(init).parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD
    ]
    options = [
        inspect.Parameter(field.name, keyword, default=field.default, annotation=field.type)
        for field in dataclasses.fields(Options)
    ]
    return inspect.signature(init).replace(parameters=fixed + options)


@dataclasses.dataclass(frozen=True, eq=False)
class CallbackConfig:
    """Everything the callback needs, checked: per snapshot its interval, layers, settings and whether it is on.

    ``inputs`` maps each input a snapshot may need (``"probe"``, ``"embedding_probe"``) to its
    ``(images, labels)`` on the CPU, or ``(None, None)`` when not given.
    """

    model: nn.Module  # as given (possibly wrapped by DDP or torch.compile)
    base: nn.Module  # unwrapped: where layers are looked up and snapshots run
    compiled: bool  # torch.compile is in play
    options: Options
    every_n_steps: Mapping[str, int]
    layers: Mapping[str, list[tuple[str, nn.Module]]]  # per snapshot (empty: none or not per layer)
    inputs: Mapping[str, tuple[torch.Tensor | None, torch.Tensor | None]]
    settings: Mapping[str, Mapping[str, Any]]  # per snapshot: its ``snapshots.Inputs.settings``
    enabled: Mapping[str, bool]  # per snapshot, at construction
    class_names: list[str] | None
    logits: Callable[[Any], torch.Tensor]
    exports: Mapping[str, Callable[[Any, Any, int], None]]  # per snapshot: (writer, inputs, step) after it


def build(model: nn.Module, options: Mapping[str, Any]) -> CallbackConfig:
    """Check every argument (errors name it, its value and what was expected) and resolve it against ``model``."""
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(
            f"CNNVizCallback: unexpected keyword argument(s) {unknown}; expected any of {list(OPTION_NAMES)}"
        )
    given = Options(**options)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    base = unwrap(model)
    convs = conv_layers(base)
    if not convs:
        raise ValueError(
            f"model: {type(base).__name__} has no nn.Conv2d layer; CNNVizCallback visualises 2-D conv layers"
        )
    if given.kernel_normalization not in NORMALIZATIONS:
        raise ValueError(
            f"kernel_normalization: expected one of {NORMALIZATIONS}, got {given.kernel_normalization!r}"
        )
    if not isinstance(given.scalars, str) or given.scalars not in SCALAR_MODES:
        raise ValueError(
            "scalars: expected 'summary' (a few cards per run), 'per_layer' (one card per layer and "
            f"quantity) or 'off' (none), got {given.scalars!r}"
        )
    every_n_steps = schedule.intervals(given.every_n_steps)
    budget = given.overhead_budget
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 <= budget < 1:
        raise ValueError(
            f"overhead_budget: expected a fraction of the training time in [0, 1) "
            f"(0.003 = 0.3%; 0 counts every batch), got {budget!r}"
        )
    in_channels = convs[0][1].in_channels
    inputs = {
        "probe": probe_batch(given.probe, in_channels, "probe", MAX_PROBE_IMAGES),
        "embedding_probe": probe_batch(
            given.embedding_probe, in_channels, "embedding_probe", MAX_EMBEDDING_IMAGES
        ),
    }
    cam, stages = path_defaults(base, inputs, compilation.is_compiled(model), given.logits)
    resolved = dict(vars(given))
    resolved["kernel_layers"] = resolve_or_default(base, given.kernel_layers, [convs[0]], "kernel_layers")
    resolved["activation_layers"] = resolve_or_default(
        base,
        given.activation_layers,
        evenly_spaced(stages or convs, DEFAULT_ACTIVATION_LAYERS),
        "activation_layers",
        conv_only=False,
    )
    resolved["dead_filter_layers"] = resolve_or_default(
        base, given.dead_filter_layers, convs, "dead_filter_layers"
    )
    resolved["gradcam_layers"] = resolve_or_default(
        base, given.gradcam_layers, cam or [convs[-1]], "gradcam_layers", False
    )
    resolved["attributions"] = _attribution_methods(given.attributions)
    resolved["pattern_layers"] = resolve_or_default(base, given.pattern_layers, [], "pattern_layers", False)
    resolved["pattern_channels"] = pattern_choice(given.pattern_channels)
    check_choice_fits(resolved["pattern_channels"], resolved["pattern_layers"])
    resolved["pattern_steps"] = _positive(given.pattern_steps, "pattern_steps")
    resolved["embedding_probe"] = inputs["embedding_probe"][0]
    if given.embedding_method not in EMBEDDING_METHODS:
        raise ValueError(
            f"embedding_method: expected 'tsne', 'pca' or 'umap', got {given.embedding_method!r}"
        )
    if given.embedding_layer is not None:
        resolve_layers(base, [given.embedding_layer], argument="embedding_layer", conv_only=False)
    resolved["top_k"] = _positive(given.top_k, "top_k")
    resolved["top_example_layers"] = resolve_or_default(
        base, given.top_example_layers, resolved["activation_layers"], "top_example_layers"
    )
    resolved["separability_layers"] = resolve_or_default(
        base,
        given.separability_layers,
        separability_defaults(base, stages, inputs["embedding_probe"], given.separability_layers),
        "separability_layers",
        False,
    )
    probe_images = inputs["probe"][0]
    resolved["pattern_size"] = (
        _positive(given.pattern_size, "pattern_size")
        if given.pattern_size is not None
        else int(probe_images.shape[-1])
        if probe_images is not None
        else 64
    )
    if (
        resolved["pattern_layers"]
        and resolved["pattern_channels"].mode == "most_active"
        and probe_images is None
    ):
        raise ValueError(
            "pattern_channels: 'most_active' ranks filters by their mean activation on the probe images; "
            "pass probe=(images, labels), or pattern_channels=<n or indices>"
        )
    if not isinstance(given.faithfulness, bool):
        raise TypeError(f"faithfulness: expected True or False, got {given.faithfulness!r}")
    _check_needs(given, inputs)
    if given.logits is not None and not callable(given.logits):
        raise TypeError(f"logits: expected a callable on the model output, got {type(given.logits).__name__}")
    switches = _switches()
    enabled = {
        name: bool(_is_given(resolved[switches[name]]))
        and (row.needs is None or inputs[row.needs][0] is not None)
        for name, row in SNAPSHOTS.items()
    }
    enabled["faithfulness"] = enabled["faithfulness"] and enabled["gradcam"]  # scores the Grad-CAM maps
    _check_dead_choice(resolved, enabled)
    settings: dict[str, dict[str, Any]] = {name: {} for name in SNAPSHOTS}
    for field in _fields(SETTING):
        snapshot, key = field.metadata[SETTING]
        settings[snapshot][key] = resolved[field.name]
    settings["patterns"]["in_channels"] = in_channels
    settings["patterns"]["reference"] = inputs["probe"][0]  # a pattern must beat the best probe image
    config = CallbackConfig(
        model=model,
        base=base,
        compiled=compilation.is_compiled(model),
        options=given,
        every_n_steps=MappingProxyType(every_n_steps),
        layers=MappingProxyType(
            {
                name: list(resolved[row.layers_argument]) if row.layers_argument else []
                for name, row in SNAPSHOTS.items()
            }
        ),
        inputs=MappingProxyType(inputs),
        settings=MappingProxyType({name: MappingProxyType(value) for name, value in settings.items()}),
        enabled=MappingProxyType(enabled),
        class_names=list(given.class_names) if given.class_names is not None else None,
        logits=given.logits or default_logits,
        exports=MappingProxyType({"embedding": projector.export} if given.projector else {}),
    )
    if probe_images is not None:
        asked = given.logits is not None or bool(given.attributions) or _is_given(given.gradcam_layers)
        off = check_probe_forward(config, asked)
        if off:  # the default Grad-CAM on a model without class scores: off, said once
            warnings.warn(off, UserWarning, stacklevel=3)
            enabled = {**config.enabled, **dict.fromkeys(CLASS_SCORE_SNAPSHOTS, False)}
            config = dataclasses.replace(config, enabled=MappingProxyType(enabled))
    extent = conv_extent(base)
    if not extent.cnn:
        warnings.warn(not_a_cnn(base, extent, config), UserWarning, stacklevel=3)
    return config


def _fields(key: str) -> list[dataclasses.Field]:
    return [field for field in dataclasses.fields(Options) if key in field.metadata]


def _is_given(value: Any) -> bool:
    return value is not None and value is not False and (not hasattr(value, "__len__") or len(value) > 0)


def _switches() -> dict[str, str]:
    """``{snapshot: the argument that turns it on}``: the one tagged ``turns_on``, else its layers argument."""
    tagged = {field.metadata[TURNS_ON]: field.name for field in _fields(TURNS_ON)}
    switches = {name: tagged.get(name, row.layers_argument) for name, row in SNAPSHOTS.items()}
    missing = [name for name, switch in switches.items() if switch is None]
    if missing:
        raise ValueError(
            f"kinds.SNAPSHOTS: nothing turns on {missing}; give the row a layers_argument "
            "or tag an Options field with turns_on"
        )
    return switches


def _check_needs(given: Options, inputs: Mapping[str, tuple]) -> None:
    """A snapshot asked for by its argument but lacking the input it needs is an error, not silence."""
    switches = _switches()
    for needs in dict.fromkeys(row.needs for row in SNAPSHOTS.values() if row.needs):
        if inputs[needs][0] is not None:
            continue
        asked = [
            switches[name]
            for name, row in SNAPSHOTS.items()
            if row.needs == needs and switches[name] != needs and getattr(given, switches[name])
        ]
        if asked:
            raise ValueError(f"{needs}: {', '.join(asked)} need probe images; pass {needs}=(images, labels)")


def _check_dead_choice(resolved: Mapping[str, Any], enabled: Mapping[str, bool]) -> None:
    """``pattern_channels="dead"`` needs dead-filter statistics on every pattern layer."""
    if not resolved["pattern_layers"] or resolved["pattern_channels"].mode != "dead":
        return
    measured = {name for name, _ in resolved["dead_filter_layers"]} if enabled["dead_filters"] else set()
    missing = [name for name, _ in resolved["pattern_layers"] if name not in measured]
    if missing:
        raise ValueError(
            f"pattern_channels: 'dead' renders the filters the dead-filter window found dead, but {missing} "
            "are not among dead_filter_layers; add them there, or pass pattern_channels=<n or indices>"
        )


def _positive(value, argument: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{argument}: expected an int >= 1, got {value!r}")
    return int(value)


def _attribution_methods(methods) -> tuple[str, ...]:
    """The ``attributions=`` argument: names of attribution methods."""
    if isinstance(methods, str):
        methods = (methods,)
    try:
        methods = tuple(methods)
    except TypeError:
        raise TypeError(
            f"attributions: expected a list of method names, got {type(methods).__name__}"
        ) from None
    unknown = [m for m in methods if m not in ATTRIBUTION_METHODS]
    if unknown:
        raise ValueError(
            f"attributions: unknown method(s) {unknown}; expected any of {list(ATTRIBUTION_METHODS)}"
        )
    return methods
