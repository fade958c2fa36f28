"""Validated settings of an activation-maximisation render (``filter_patterns``, ``class_patterns``).

Checks every argument once, with a message that names it, and derives what the optimisation
needs: the image size the network sees after the random transforms, the input normalisation,
the model's device and dtype, per-image seeds and how many images fit the memory budget.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Union

import torch
from torch import nn

from tb_cnnviz.analysis.layers import conv_layers, model_device
from tb_cnnviz.analysis.safety import eval_mode, frozen_parameters, preserved_rng
from tb_cnnviz.analysis.transforms import RandomTransforms, resolve_transforms

Param = Literal["fourier", "pixel"]
TransformsSpec = Union[RandomTransforms, str, None]
Size = Union[int, Sequence[int]]

# Fourier 0.15 (was 0.2), chosen by benchmarks/pattern_defaults.py on the example's CNN over training seeds
# 0-2 (docs/patterns.md): at 64 steps it cuts saturated pixels 2-3x (conv3 3.1-4.9% -> 1.0-1.7%, conv5
# 4.7-5.0% -> 2.0-2.2%) with no failed filter and the same cost; 0.1 saturates less (0.1-0.5%) but leaves
# 3% of conv3's filters below the best natural image at seeds 1 and 2, even at 96 steps (1.5x the time).
DEFAULT_LR = {"fourier": 0.15, "pixel": 0.01}
# Class logits sit at the end of the network and respond to global contrast; a smaller Fourier
# step keeps the other logits from rising with the target (10/10 vs 6/10 class-model images
# classified as their class on the shapes SmallVGG at 48 steps, against 0.2).
CLASS_DEFAULT_LR = {"fourier": 0.1, "pixel": 0.01}
DEFAULT_MEMORY_BUDGET = 1 << 30
# Backward keeps the forward's saved tensors and creates gradients of about the same size.
_BACKWARD_FACTOR = 3


def image_seed(seed: int, key: int) -> int:
    """A well-mixed 63-bit generator seed for image ``key`` (a channel or class) under ``seed`` (splitmix64)."""
    mask = (1 << 64) - 1
    x = (seed * 0x9E3779B97F4A7C15 + (key + 1) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return (x ^ (x >> 31)) & ((1 << 63) - 1)


@contextlib.contextmanager
def analysis_context(model: nn.Module) -> Iterator[None]:
    """Eval mode (each module's flag restored), frozen parameters, gradients enabled locally,
    and the global RNG guard when on the main thread (thread use: see ``tb_cnnviz.analysis.patterns``)."""
    guard = (
        preserved_rng() if threading.current_thread() is threading.main_thread() else contextlib.nullcontext()
    )
    with guard, eval_mode(model), frozen_parameters(model), torch.inference_mode(False), torch.enable_grad():
        yield


def model_dtype(model: nn.Module) -> torch.dtype:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def check_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """The model's device; an explicit ``device`` must match it (a copy must be moved by the caller)."""
    actual = model_device(model)
    if device is None:
        return actual
    try:
        wanted = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: expected a torch.device or a device string, got {device!r}") from None
    if wanted.type != actual.type or (
        wanted.index is not None and actual.index is not None and wanted.index != actual.index
    ):
        raise ValueError(
            f"device: the model's parameters are on {actual}, but device={wanted} was requested; "
            "move a copy of the model there first (copy.deepcopy(model).to(device))"
        )
    return actual


def infer_in_channels(model: nn.Module, in_channels: int | None) -> int:
    if in_channels is not None:
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels: expected an int >= 1, got {in_channels!r}")
        return in_channels
    convs = conv_layers(model)
    if not convs:
        raise ValueError(
            "in_channels: the model has no Conv2d to infer the input channel count from; pass in_channels"
        )
    return convs[0][1].in_channels


def check_size(size: Size) -> tuple[int, int]:
    if isinstance(size, bool):
        raise TypeError(f"size: expected an int or (height, width), got {size!r}")
    if isinstance(size, int):
        size = (size, size)
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise TypeError(f"size: expected an int or (height, width), got {size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"size: expected positive sizes, got {(height, width)}")
    return height, width


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return value


def check_normalisation(
    mean, std, channels: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, std)`` as [1, C, 1, 1] tensors, or None for identity; scalars broadcast."""
    if mean is None and std is None:
        return None
    tensors = []
    for name, value, default in (("mean", mean, 0.0), ("std", std, 1.0)):
        value = default if value is None else value
        t = torch.as_tensor(value, dtype=torch.float32).flatten()
        if t.numel() == 1:
            t = t.expand(channels)
        if t.numel() != channels:
            raise ValueError(
                f"{name}: expected a number or {channels} values (one per input channel), got {t.numel()}"
            )
        tensors.append(t.reshape(1, channels, 1, 1).to(device))
    if (tensors[1] <= 0).any():
        raise ValueError(f"std: expected positive values, got {tensors[1].flatten().tolist()}")
    return tensors[0], tensors[1]


def check_targets(name: str, targets: Sequence[int] | int | None, count: int, what: str) -> list[int]:
    """Channels/classes as a list of distinct ints in ``[0, count)``; None means all."""
    if targets is None:
        return list(range(count))
    if isinstance(targets, bool):
        raise TypeError(f"{name}: expected an int or a sequence of ints, got {targets!r}")
    if isinstance(targets, int):
        targets = [targets]
    if isinstance(targets, torch.Tensor):
        targets = targets.flatten().tolist()
    try:
        items = list(targets)
    except TypeError:
        raise TypeError(
            f"{name}: expected an int or a sequence of ints, got {type(targets).__name__}"
        ) from None
    if not items:
        raise ValueError(f"{name}: expected at least one {what}, got an empty sequence")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"{name}: expected ints, got {item!r} ({type(item).__name__})")
        if not 0 <= item < count:
            raise ValueError(
                f"{name}: {what} {item} is out of range; the layer has {count} {what}s (0..{count - 1})"
            )
    duplicates = sorted({item for item in items if items.count(item) > 1})
    if duplicates:
        raise ValueError(f"{name}: {what}s listed more than once: {duplicates}")
    return items


@dataclass
class RenderSettings:
    """Validated settings shared by ``filter_patterns`` and ``class_patterns``."""

    channels: int
    height: int
    width: int
    steps: int
    param: str
    transforms: RandomTransforms | None
    lr: float
    normalisation: tuple[torch.Tensor, torch.Tensor] | None
    seed: int
    device: torch.device
    dtype: torch.dtype
    batch_size: int | None
    memory_budget: int
    progress: bool

    @property
    def input_size(self) -> tuple[int, int]:
        if self.transforms is None:
            return self.height, self.width
        return self.transforms.output_size(self.height, self.width)

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        if self.normalisation is not None:
            mean, std = self.normalisation
            images = (images - mean) / std
        return images.to(self.dtype)

    def probe(self) -> torch.Tensor:
        """One grey image at the size the network sees during optimisation."""
        return self.model_input(torch.full((1, self.channels, *self.input_size), 0.5, device=self.device))


def render_settings(
    model: nn.Module,
    *,
    size: Size,
    steps: int,
    param: str,
    transforms: TransformsSpec,
    lr: float | None,
    mean,
    std,
    in_channels: int | None,
    seed: int,
    device,
    batch_size: int | None,
    memory_budget: int,
    progress: bool,
) -> RenderSettings:
    if param not in DEFAULT_LR:
        raise ValueError(f"param: expected 'fourier' or 'pixel', got {param!r}")
    height, width = check_size(size)
    steps = _positive_int("steps", steps)
    lr = DEFAULT_LR[param] if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {seed!r}")
    if batch_size is not None:
        _positive_int("batch_size", batch_size)
    _positive_int("memory_budget", memory_budget)
    channels = infer_in_channels(model, in_channels)
    dev = check_device(model, device)
    return RenderSettings(
        channels=channels,
        height=height,
        width=width,
        steps=steps,
        param=param,
        transforms=resolve_transforms(transforms, param, (height, width)),
        lr=float(lr),
        normalisation=check_normalisation(mean, std, channels, dev),
        seed=seed,
        device=dev,
        dtype=model_dtype(model),
        batch_size=batch_size,
        memory_budget=memory_budget,
        progress=bool(progress),
    )


def chunk_size(settings: RenderSettings, per_image_bytes: int, count: int) -> int:
    if settings.batch_size is not None:
        return min(settings.batch_size, count)
    per_image = max(1, _BACKWARD_FACTOR * per_image_bytes)
    return max(1, min(count, settings.memory_budget // per_image))
