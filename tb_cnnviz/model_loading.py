"""Load the MODEL argument of the ``tb-cnnviz`` commands: build or read the model, load its checkpoint,
put it on its device and in eval mode, and apply its input normalisation.

Four forms, all giving a :class:`LoadedModel` whose ``module`` takes images in [0, 1]
(the model's input normalisation is applied by a forward pre-hook on the root module,
so the analysis functions, the probe pictures and the overlays all work in image space
while every layer keeps its own dotted name):

- ``torchvision:NAME``: random weights unless ``weights`` is given (``DEFAULT`` or an
  enum name); then the input size, normalisation and class names come from the weights.
- ``module.path:factory`` or ``file.py:factory`` (a class or a function, called with
  ``factory_kwargs``), with an optional state_dict ``checkpoint``.
- a TorchScript file (``torch.jit.save``): no forward hooks, so only commands that need
  none (summary without shapes, filters, saliency, occlusion, class patterns) work.
- a ``torch.export`` program (``torch.export.save``, usually ``.pt2``): unflattened with
  ``torch.export.unflatten`` so that every submodule can be hooked.
- a state_dict of the example's ``SmallVGG`` given as MODEL: its width, classes and
  input channels are read from the tensors' shapes.

Every bad input raises ``ValueError`` with a one-line message naming the argument. Finding and
resolving the layers of any of these models is ``tb_cnnviz.analysis.layers``' job.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import pickle
import socket
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from tb_cnnviz.analysis.layers import conv_layers

SMALL_VGG = "tb_cnnviz.models:small_vgg"
DEFAULT_INPUT_SIZE = 224
SMALL_VGG_INPUT_SIZE = 32
DOWNLOAD_TIMEOUT_S = 30
MAX_MISMATCHES_SHOWN = 3


@dataclass
class LoadedModel:
    """A model ready for the analysis functions, and what the commands need to know about it."""

    module: nn.Module
    kind: str  # "eager", "export" or "torchscript"
    description: str  # for messages, e.g. "tb_cnnviz.models:small_vgg(width=8)"
    input_size: tuple[int, int]
    resize_size: Optional[int] = None  # shorter side before the centre crop (torchvision weights)
    mean: Optional[list[float]] = None
    std: Optional[list[float]] = None
    class_names: Optional[list[str]] = None
    in_channels: int = 3
    fixed_batch: Optional[int] = None  # an exported program traced with a static batch size
    fixed_size: bool = False  # an exported program traced with a static image size
    notes: list = field(default_factory=list)

    @property
    def hooks_supported(self) -> bool:
        """Whether forward hooks work on the model's layers (not on TorchScript)."""
        return self.kind != "torchscript"

    @property
    def layer_root(self) -> nn.Module:
        """The module whose ``named_modules()`` give the layer names the user sees (inside any normalisation wrapper)."""
        return self.module.inner if isinstance(self.module, _Normalised) else self.module


# --------------------------------------------------------------------------- loading
def load_model(
    spec: str,
    *,
    checkpoint: Optional[str] = None,
    factory_kwargs: Optional[dict] = None,
    weights: Optional[str] = None,
    input_size: Optional[tuple[int, int]] = None,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    class_names: Optional[Sequence[str]] = None,
    device: str = "cpu",
) -> LoadedModel:
    """Build or load the model named by ``spec`` on ``device``, in eval mode, taking images in [0, 1]."""
    factory_kwargs = dict(factory_kwargs or {})
    if weights is not None and not spec.startswith("torchvision:"):
        raise ValueError(f"--weights: only applies to torchvision:NAME models, got MODEL {spec!r}")
    if spec.startswith("torchvision:"):
        loaded = _torchvision(spec[len("torchvision:") :], weights, factory_kwargs)
    elif os.path.exists(spec) or spec.endswith((".pt", ".pth", ".pt2", ".ts", ".ckpt")):
        loaded = _file(spec, factory_kwargs, has_checkpoint=checkpoint is not None)
    elif ":" in spec:
        loaded = _factory(spec, factory_kwargs)
    else:
        raise ValueError(
            f"MODEL: {spec!r} is neither an existing file nor 'torchvision:NAME' nor 'module.path:factory'"
        )
    if checkpoint is not None:
        if loaded.kind != "eager":
            raise ValueError(
                f"--checkpoint: only applies to a model built by a factory or torchvision, not to a {loaded.kind} file"
            )
        load_checkpoint(loaded, checkpoint)
    elif loaded.kind == "eager" and weights is None and not loaded.notes:
        loaded.notes.append(
            f"{loaded.description} has its initial (random) weights; pass --checkpoint to load trained ones"
        )
    if input_size is not None:
        if loaded.fixed_size and tuple(input_size) != loaded.input_size:
            raise ValueError(
                f"--input-size: the exported program only accepts {loaded.input_size[0]}x{loaded.input_size[1]} "
                f"images, got {input_size[0]}x{input_size[1]}"
            )
        loaded.input_size, loaded.resize_size = tuple(input_size), None
    loaded.mean = _channels(mean, "--mean", loaded.in_channels) if mean is not None else loaded.mean
    loaded.std = _channels(std, "--std", loaded.in_channels) if std is not None else loaded.std
    if loaded.std is not None and any(value <= 0 for value in loaded.std):
        raise ValueError(f"--std: expected positive values, got {loaded.std}")
    if class_names is not None:
        loaded.class_names = list(class_names)
    _place(loaded, device)
    return loaded


def _torchvision(name: str, weights: Optional[str], kwargs: dict) -> LoadedModel:
    import torchvision

    available = torchvision.models.list_models()
    if name not in available:
        close = difflib.get_close_matches(name, available, n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see torchvision.models.list_models()"
        raise ValueError(f"MODEL: torchvision has no model named {name!r}{hint}")
    chosen = None
    if weights is not None and weights.lower() != "none":
        enum = torchvision.models.get_model_weights(name)
        if weights not in enum.__members__:
            raise ValueError(
                f"--weights: {name} has no weights {weights!r}; expected one of {list(enum.__members__)}"
            )
        chosen = enum[weights]
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        module = torchvision.models.get_model(name, weights=chosen, **kwargs)
    except TypeError as error:
        raise ValueError(f"--factory-kwargs: torchvision {name} does not accept {kwargs}: {error}") from None
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a corrupt download a RuntimeError
        if chosen is None:
            raise
        raise ValueError(
            f"--weights {weights}: could not download the weights of torchvision:{name} "
            f"({type(error).__name__}: {error}); check the network, or use random weights or --checkpoint"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    loaded = _loaded(module, "eager", f"torchvision:{name}")
    if chosen is not None:
        preset = chosen.transforms()
        crop = list(getattr(preset, "crop_size", [DEFAULT_INPUT_SIZE]))
        loaded.input_size = (crop[0], crop[-1])
        resize = getattr(preset, "resize_size", None)
        loaded.resize_size = int(resize[0]) if resize else None
        loaded.mean, loaded.std = list(preset.mean), list(preset.std)
        loaded.class_names = list(chosen.meta.get("categories") or []) or None
        loaded.description += f" ({weights} weights)"
        loaded.notes.append(
            f"input {loaded.input_size[0]}x{loaded.input_size[1]}, mean {loaded.mean}, std {loaded.std} "
            f"from the {chosen} weights"
        )
    return loaded


def _factory(spec: str, kwargs: dict) -> LoadedModel:
    target, _, attribute = spec.rpartition(":")
    if not target or not attribute:
        raise ValueError(f"MODEL: expected 'module.path:factory', got {spec!r}")
    try:
        if target.endswith(".py"):
            if not os.path.isfile(target):
                raise ValueError(f"MODEL: {target}: no such file")
            module_spec = importlib.util.spec_from_file_location(
                os.path.splitext(os.path.basename(target))[0], target
            )
            python_module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(python_module)
        else:
            python_module = importlib.import_module(target)
    except ImportError as error:
        raise ValueError(f"MODEL: cannot import {target!r} ({type(error).__name__}: {error})") from None
    factory = getattr(python_module, attribute, None)
    if factory is None or not callable(factory):
        raise ValueError(f"MODEL: {target!r} has no callable named {attribute!r}")
    try:
        module = factory(**kwargs)
    except TypeError as error:
        raise ValueError(f"--factory-kwargs: {spec}(**{kwargs}) failed: {error}") from None
    if not isinstance(module, nn.Module):
        raise ValueError(f"MODEL: {spec}() returned a {type(module).__name__}, expected a torch.nn.Module")
    shown = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    size = SMALL_VGG_INPUT_SIZE if type(module).__name__ == "SmallVGG" else DEFAULT_INPUT_SIZE
    return _loaded(module, "eager", f"{spec}({shown})", size)


def _file(path: str, kwargs: dict, has_checkpoint: bool) -> LoadedModel:
    if not os.path.exists(path):
        raise ValueError(f"MODEL: {path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"MODEL: {path} is a directory; expected a model file or 'module.path:factory'")
    names = zipfile.ZipFile(path).namelist() if zipfile.is_zipfile(path) else []
    if path.endswith(".pt2") or any(
        n.endswith("/models/model.json") or n.endswith("/archive_format") for n in names
    ):
        return _exported(path)
    if any("/code/__torch__" in n for n in names):
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", FutureWarning
            )  # "torch.jit.load is deprecated": the user chose the format
            module = torch.jit.load(path, map_location="cpu")
        return _loaded(module, "torchscript", f"TorchScript {path}")
    state = read_state_dict(path, "MODEL")
    if has_checkpoint:
        raise ValueError(
            f"MODEL: {path} holds weights only; give the architecture as MODEL (module.path:factory) and the weights as --checkpoint"
        )
    detected = small_vgg_kwargs(state)
    if detected is None:
        raise ValueError(
            f"MODEL: {path} holds weights only (a state_dict); give the architecture: "
            f"tb-cnnviz COMMAND module.path:factory --checkpoint {path}"
        )
    detected.update(kwargs)
    loaded = _factory(SMALL_VGG, detected)
    loaded.notes.append(f"{path} looks like the example's checkpoint: using {loaded.description}")
    _load_state(loaded, state, path, "MODEL")
    return loaded


def _exported(path: str) -> LoadedModel:
    try:
        program = torch.export.load(path)
    except Exception as error:  # a damaged or foreign archive: many exception types
        raise ValueError(
            f"MODEL: {path} is not a readable torch.export program ({type(error).__name__}: {error})"
        ) from None
    module = torch.export.unflatten(program)
    shape = None
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in program.graph_signature.user_inputs:
            value = node.meta.get("val")
            shape = None if value is None else list(value.shape)
            break
    loaded = LoadedModel(
        module=module,
        kind="export",
        description=f"torch.export program {path}",
        input_size=(DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE),
    )
    if shape is not None and len(shape) == 4:
        loaded.in_channels = int(shape[1])
        if isinstance(shape[0], int):
            loaded.fixed_batch = shape[0]
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            loaded.input_size, loaded.fixed_size = (shape[2], shape[3]), True
    return loaded


# --------------------------------------------------------------------------- checkpoints
def read_state_dict(path: str, argument: str) -> dict:
    """A state_dict from ``path`` (``torch.save``), unwrapping ``{"state_dict": ...}``-style containers and DDP prefixes."""
    if not os.path.isfile(path):
        raise ValueError(f"{argument}: {path}: no such file")
    with open(path, "rb") as file:
        magic = file.read(2)
    if (
        not zipfile.is_zipfile(path) and magic[:1] != b"\x80"
    ):  # neither torch.save's zip format nor a legacy pickle
        raise ValueError(f"{argument}: {path} is not a file saved with torch.save")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{argument}: {path} pickles Python objects, not only tensors (a whole model?); "
            "save model.state_dict() instead"
        ) from None
    except Exception as error:
        raise ValueError(
            f"{argument}: {path} is not a checkpoint torch.load can read ({type(error).__name__}: {error})"
        ) from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{argument}: {path} does not hold a state_dict (a dict of tensors), got {type(state).__name__}"
        )
    for prefix in ("module.", "_orig_mod.", "model."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def small_vgg_kwargs(state: dict) -> Optional[dict]:
    """``small_vgg`` arguments that rebuild the network a state_dict came from, or ``None`` if it is not one."""
    wanted = [f"features.conv{i}.weight" for i in range(1, 6)] + ["classifier.weight"]
    if not all(key in state for key in wanted) or any(key.startswith("features.conv6") for key in state):
        return None
    conv1, classifier = state["features.conv1.weight"], state["classifier.weight"]
    if conv1.dim() != 4 or classifier.dim() != 2:
        return None
    found = {
        "width": int(conv1.shape[0]),
        "num_classes": int(classifier.shape[0]),
        "in_channels": int(conv1.shape[1]),
        "batch_norm": "features.bn1.weight" in state,
    }
    defaults = {"width": 32, "num_classes": 10, "in_channels": 3, "batch_norm": True}
    return {
        key: value for key, value in found.items() if value != defaults[key]
    }  # only what differs from the defaults


def load_checkpoint(loaded: LoadedModel, path: str) -> None:
    """Load the state_dict at ``path`` into ``loaded.module``; a mismatch names its first keys."""
    _load_state(loaded, read_state_dict(path, "--checkpoint"), path, "--checkpoint")


def _load_state(loaded: LoadedModel, state: dict, path: str, argument: str) -> None:
    own = loaded.module.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    shapes = [
        f"{key} {list(state[key].shape)} vs {list(own[key].shape)}"
        for key in own
        if key in state and state[key].shape != own[key].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (
            ("shape mismatch (checkpoint vs model)", shapes),
            ("missing", missing),
            ("unexpected", unexpected),
        ):
            if items:
                more = (
                    f" (+{len(items) - MAX_MISMATCHES_SHOWN} more)"
                    if len(items) > MAX_MISMATCHES_SHOWN
                    else ""
                )
                parts.append(f"{label}: {', '.join(items[:MAX_MISMATCHES_SHOWN])}{more}")
        detected = small_vgg_kwargs(state)
        flags = f" --factory-kwargs {','.join(f'{k}={v}' for k, v in detected.items())}" if detected else ""
        if detected is None:
            hint = "; build the same architecture (--factory-kwargs)"
        elif loaded.description.startswith(SMALL_VGG):
            hint = f"; it fits{flags}" if flags else ""
        else:
            hint = f"; it looks like the example's network: MODEL {SMALL_VGG}{flags}"
        raise ValueError(f"{argument}: {path} does not match {loaded.description}: {'; '.join(parts)}{hint}")
    loaded.module.load_state_dict(state)


# --------------------------------------------------------------------------- placing and normalising
def _place(loaded: LoadedModel, device: str) -> None:
    try:
        loaded.module.to(device)
    except (RuntimeError, AssertionError) as error:
        raise ValueError(f"--device: cannot use {device!r} ({error})") from None
    loaded.module.eval()
    if loaded.mean is None and loaded.std is None:
        return
    mean = torch.tensor(loaded.mean or [0.0] * loaded.in_channels, device=device).view(1, -1, 1, 1)
    std = torch.tensor(loaded.std or [1.0] * loaded.in_channels, device=device).view(1, -1, 1, 1)

    def normalise(_module, args):
        return ((args[0] - mean.to(args[0].dtype)) / std.to(args[0].dtype),) + tuple(args[1:])

    if (
        loaded.kind == "torchscript"
    ):  # no hooks on a ScriptModule: wrap it (its layers keep their names in .inner)
        loaded.module = _Normalised(loaded.module, mean, std)
    else:
        loaded.module.register_forward_pre_hook(normalise)


class _Normalised(nn.Module):
    def __init__(self, inner: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.inner = inner
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return self.inner((x - self.mean) / self.std)


# --------------------------------------------------------------------------- argument checks
def _channels(values: Sequence[float], argument: str, channels: int) -> list[float]:
    values = [float(v) for v in values]
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise ValueError(
            f"{argument}: expected 1 or {channels} values (one per input channel), got {len(values)}"
        )
    return values


def _loaded(module: nn.Module, kind: str, description: str, size: int = DEFAULT_INPUT_SIZE) -> LoadedModel:
    """A ``LoadedModel`` of a square input ``size`` whose input channels are those of its first conv."""
    return LoadedModel(
        module=module,
        kind=kind,
        description=description,
        input_size=(size, size),
        in_channels=_first_conv_channels(module),
    )


def _first_conv_channels(module: nn.Module) -> int:
    """The input channels of the model's first conv layer (3 when it has none)."""
    convs = conv_layers(module)
    return int(convs[0][1].weight.shape[1]) if convs else 3
