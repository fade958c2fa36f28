"""The callback's configuration: its keyword arguments, validated and resolved against the model in one place.

:class:`Options` lists the keyword arguments of ``CNNVizCallback`` with their defaults (the
callback publishes its signature from it). :func:`build` checks every one of them, with an
error that names the argument, and returns a frozen :class:`CallbackConfig`: the layers, inputs,
settings and schedule of every snapshot of ``kinds.SNAPSHOTS``. The schedule's keys and defaults,
the layer arguments, which input a snapshot needs and which snapshots are on all come from that
table, so a new snapshot adds its own options here (an ``Options`` field tagged with the snapshot
it turns on or configures) and nothing in the callback.
"""

from __future__ import annotations

import dataclasses
import os
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
    model_device,
    resolve_layers,
    unwrap,
)
from tb_cnnviz.analysis.paths import main_path
from tb_cnnviz.callbacks import compilation, projector
from tb_cnnviz.callbacks.scalars import SCALAR_MODES
from tb_cnnviz.kinds import SNAPSHOTS
from tb_cnnviz.snapshots import ATTRIBUTION_METHODS
from tb_cnnviz.snapshots.inputs import default_logits
from tb_cnnviz.snapshots.patterns import check_choice_fits, pattern_choice
from tb_cnnviz.snapshots.separability import default_layers as separability_defaults

DEFAULT_ACTIVATION_LAYERS = 3
MAX_PROBE_IMAGES = 64
MAX_EMBEDDING_IMAGES = 50_000
"""The Embedding view's supported maximum (5x TensorBoard Projector's 10,000): its t-SNE, map and lazily
loaded thumbnails are measured at this size (benchmarks/embedding.py, tests/browser/test_embedding_scale_e2e.py)."""
EMBEDDING_METHODS = ("tsne", "pca", "umap")
WRITER_QUEUE = 1000  # events our own SummaryWriter queues before the training thread waits for the disk
TURNS_ON = "turns_on"  # Options field metadata: the snapshot this argument turns on (default: its layers)
SETTING = "setting"  # Options field metadata: (snapshot, key) of the snapshot's settings it fills
# explain a class: need class scores from the output
CLASS_SCORE_SNAPSHOTS = ("gradcam", "attributions", "faithfulness")


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
    every_n_steps = _schedule(given.every_n_steps)
    if not (isinstance(given.every_n_steps, Mapping) and "faithfulness" in given.every_n_steps):
        every_n_steps["faithfulness"] = every_n_steps["gradcam"]  # scored with every Grad-CAM snapshot
    budget = given.overhead_budget
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 <= budget < 1:
        raise ValueError(
            f"overhead_budget: expected a fraction of the training time in [0, 1) "
            f"(0.003 = 0.3%; 0 counts every batch), got {budget!r}"
        )
    in_channels = convs[0][1].in_channels
    inputs = {
        "probe": _probe(given.probe, in_channels, "probe", MAX_PROBE_IMAGES),
        "embedding_probe": _probe(
            given.embedding_probe, in_channels, "embedding_probe", MAX_EMBEDDING_IMAGES
        ),
    }
    cam, stages = _path_defaults(base, inputs, compilation.is_compiled(model), given.logits)
    resolved = dict(vars(given))
    resolved["kernel_layers"] = _layers(base, given.kernel_layers, [convs[0]], "kernel_layers")
    resolved["activation_layers"] = _layers(
        base,
        given.activation_layers,
        evenly_spaced(stages or convs, DEFAULT_ACTIVATION_LAYERS),
        "activation_layers",
        conv_only=False,
    )
    resolved["dead_filter_layers"] = _layers(base, given.dead_filter_layers, convs, "dead_filter_layers")
    resolved["gradcam_layers"] = _layers(
        base, given.gradcam_layers, cam or [convs[-1]], "gradcam_layers", False
    )
    resolved["attributions"] = _attribution_methods(given.attributions)
    resolved["pattern_layers"] = _layers(base, given.pattern_layers, [], "pattern_layers", False)
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
    resolved["top_example_layers"] = _layers(
        base, given.top_example_layers, resolved["activation_layers"], "top_example_layers"
    )
    resolved["separability_layers"] = _layers(
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
        off = _check_probe_forward(config)
        if off:  # the default Grad-CAM on a model without class scores: off, said once
            warnings.warn(off, UserWarning, stacklevel=3)
            enabled = {**config.enabled, **dict.fromkeys(CLASS_SCORE_SNAPSHOTS, False)}
            config = dataclasses.replace(config, enabled=MappingProxyType(enabled))
    extent = conv_extent(base)
    if not extent.cnn:
        warnings.warn(_not_a_cnn(base, extent, config), UserWarning, stacklevel=3)
    return config


def _not_a_cnn(base: nn.Module, extent, config: CallbackConfig) -> str:
    """The one warning for a model that is not a CNN beyond its convs (a vision transformer): what is shown."""
    after = extent.after
    names = ", ".join(repr(name) for name in after[:3]) + (", ..." if len(after) > 3 else "")
    cam = [name for name, _ in config.layers["gradcam"]] if config.enabled["gradcam"] else []
    return (
        f"tb-cnnviz: {type(base).__name__} is not a CNN beyond its {extent.convs} conv layer(s): after "
        f"{extent.last_conv!r} it runs {len(after)} linear or attention layers ({names}), which tb-cnnviz "
        "does not show. Shown: the kernels and activations of the conv layer(s)"
        + (f", Grad-CAM at {', '.join(map(repr, cam))}" if cam else "")
        + ", and dead filters only where a nonlinearity follows a conv (a conv that none follows, such as "
        "a patch embedding, is marked 'none': no dead filters are reported for it)."
    )


def _path_defaults(
    base: nn.Module, inputs: Mapping[str, tuple], compiled: bool, logits: Callable | None
) -> tuple[list, list]:
    """Default Grad-CAM layer and stage outputs, found by running two probe images through the model
    to the class scores that ``logits`` picks (the callback's own argument, so both agree).

    ``([], [])`` without images, or when the model cannot run on them (the probe check that
    follows then names the problem); the callers fall back to the conv layers.
    """
    images = next((images for images, _ in inputs.values() if images is not None), None)
    if images is None:
        return [], []
    try:
        with compilation.own_forwards(base, compiled):
            path = main_path(base, images[:2].to(model_device(base)), logits if callable(logits) else None)
    except Exception:  # noqa: BLE001 - reported by the probe check with the model's own error
        return [], []
    cam = path.gradcam_layer()
    return ([(cam.name, cam.module)] if cam else []), [(p.name, p.module) for p in path.stage_outputs()]


def writer_for(config: CallbackConfig, log_dir: str | os.PathLike | None, rank: int) -> tuple[Any, bool]:
    """``(writer, ours)``: the given writer, or one we open on ``log_dir`` (checked); None off rank 0."""
    if rank != 0:
        return None, False
    options = config.options
    return _open_writer(log_dir, options.writer, options.flush_secs), options.writer is None


def _fields(key: str) -> list[dataclasses.Field]:
    return [field for field in dataclasses.fields(Options) if key in field.metadata]


def _is_given(value: Any) -> bool:
    return value is not None and value is not False and (not hasattr(value, "__len__") or len(value) > 0)


def _layers(base: nn.Module, spec, default, argument: str, conv_only: bool = True):
    if spec is None:
        return list(default)
    return resolve_layers(base, spec, argument=argument, conv_only=conv_only)


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


def _check_probe_forward(config: CallbackConfig) -> str | None:
    """One eval forward of two probe images at construction, so a probe the model cannot
    take, or an output Grad-CAM cannot explain, fails before training starts.

    Grad-CAM explains class scores ``[N, classes]`` or dense ones ``[N, classes, H, W]`` (a
    segmentation model, explained per class over the pixels where it is predicted:
    ``analysis.cam.dense_class_scores``). Another output (a detector's list of dicts) is an error
    when the user asked for Grad-CAM or attributions or gave ``logits``; at the defaults it
    returns the warning that turns them off (kernels, activations and dead filters go on)."""
    from tb_cnnviz.analysis.safety import safe_snapshot

    probe_images, probe_labels = config.inputs["probe"]
    images = probe_images[:2].to(model_device(config.base))
    try:
        with (
            safe_snapshot(config.base),
            torch.no_grad(),
            compilation.own_forwards(config.base, config.compiled),
        ):
            output = config.base(images)
    except Exception as error:
        raise ValueError(
            f"probe: the model cannot run on the probe images of shape {tuple(probe_images.shape)}: "
            f"{type(error).__name__}: {error}"
        ) from error
    if not (config.enabled["gradcam"] or config.enabled["attributions"]):
        return None
    options = config.options
    asked = options.logits is not None or bool(options.attributions) or _is_given(options.gradcam_layers)
    try:
        scores = config.logits(output)
    except Exception:
        if asked:
            raise
        scores = None
    if not isinstance(scores, torch.Tensor) or scores.dim() not in (2, 4):
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else _describe(output)
        if asked:
            raise ValueError(
                f"logits: Grad-CAM needs class scores [N, classes] (or dense [N, classes, H, W]) from the "
                f"model output, got {shape}; pass logits=a function picking them, or gradcam_layers=[] "
                "to turn Grad-CAM off"
            )
        return (
            f"tb-cnnviz: Grad-CAM is off for {type(config.base).__name__}: its output ({shape}) holds no "
            "class scores [N, classes] or dense class scores [N, classes, H, W] (a dict's 'logits' or 'out'). "
            "To turn it on, pass logits=lambda output: <the class scores in output> to CNNVizCallback "
            "(or gradcam_layers=[] to silence this warning). Kernels, activations and dead filters are "
            "logged as usual."
        )
    if scores.dim() == 4 and "occlusion" in options.attributions:
        raise ValueError(
            f"attributions: 'occlusion' needs class scores [N, classes]; the model's output is dense "
            f"{tuple(scores.shape)} (use 'saliency' or 'guided_backprop', which explain dense outputs)"
        )
    if probe_labels is not None and len(probe_labels) and int(probe_labels.max()) >= scores.shape[1]:
        raise ValueError(
            f"probe: label {int(probe_labels.max())} is out of range for a model with {scores.shape[1]} classes"
        )
    return None


def _describe(output: Any) -> str:
    """A model output in a few words: ``list of 2 dict``, ``dict with keys ['a', 'b']``, a shape."""
    if isinstance(output, torch.Tensor):
        return f"shape {tuple(output.shape)}"
    if isinstance(output, dict):
        return f"dict with keys {sorted(map(str, output))}"
    if isinstance(output, (list, tuple)):
        kinds = sorted({type(item).__name__ for item in output})
        return f"{type(output).__name__} of {len(output)} {'/'.join(kinds) or 'items'}"
    return type(output).__name__


def _schedule(every_n_steps) -> dict[str, int]:
    """``{snapshot: interval}``: the table's defaults, overridden by one int or a partial mapping."""
    intervals = {name: row.every_n_steps for name, row in SNAPSHOTS.items()}
    if every_n_steps is None:
        return intervals
    if isinstance(every_n_steps, Mapping):
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
    return intervals


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


def _probe(
    probe, in_channels: int, argument: str, max_images: int
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
        typical = (
            " (8-16 is typical)"
            if argument == "probe"
            else " (the Embedding view's supported maximum; pass a subset)"
            if max_images == MAX_EMBEDDING_IMAGES
            else ""
        )
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

    # The event writer's queue (10 events by default) blocks the caller when full: a dead-filter window of a
    # ResNet-50 writes over 100 summaries at once (68 ms on the training thread with 10, 0.6 ms with 1000)
    return SummaryWriter(log_dir=str(log_dir), flush_secs=flush_secs, max_queue=WRITER_QUEUE)
