"""Filter-pattern galleries and class-model images by activation maximisation.

``filter_patterns`` finds, for every requested channel k of a layer, an input image
x_k that maximises the channel's mean activation::

    x_k = argmax_x  mean_{i,j} a_k(T(x))[i, j]

(Erhan et al. 2009, "Visualizing Higher-Layer Features of a Deep Network";
Chollet, "Deep Learning with Python" 5.4.2), where ``T`` is a random transform drawn
each step. ``class_patterns`` maximises a class logit instead (Simonyan et al. 2014,
"Deep Inside Convolutional Networks", class model visualisation; sources in docs/design.md).

What makes it fast: all requested channels are optimised together, one image per
channel, with the objective ``sum_k mean a_k(x_k)``. Images do not interact (the model
runs in eval mode, so BatchNorm uses running statistics), hence the gradient of the
sum with respect to x_k is exactly the gradient of image k's own objective, and one
batched forward/backward replaces K sequential ones. The network is truncated after
the target layer (``truncation.truncated_forward``), parameters are frozen so the
backward computes input gradients only, and channels are split into chunks that fit
a memory budget.

What makes it look good (``param="fourier"``, the default): the decorrelated-colour
Fourier parametrisation with a 1/f spectrum, random pad/jitter/scale/rotation every
step and Adam (Olah et al., "Feature Visualization", Distill 2017).
``param="pixel"`` keeps Chollet's plain pixel gradient ascent with an RMS-normalised
gradient, ``x += lr * g / sqrt(mean(g^2))`` (per image), for comparison.

Determinism and batching invariance: every image has its own ``torch.Generator``
seeded from ``(seed, channel)``; its initialisation and all its random transforms come
from that generator alone, so channel c gives the same pattern whether it is rendered
alone, in a chunk or with all channels, and no global random state is used.

Thread use: these are pure functions of the model's weights and the arguments. To run
them in a background thread during training, pass a *copy* of the model (eval mode is
set on the model passed in, so the live model must not be used concurrently). The
global RNG guard (``safety.preserved_rng``) is applied only on the main thread:
restoring process-wide RNG state from a worker thread would rewind the training
thread's random stream; nothing here draws from it anyway.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Callable, Literal, Union

import torch
from torch import nn

from tb_cnnviz.analysis.image_params import FourierImage, PixelImage
from tb_cnnviz.analysis.layers import (
    LayerSpec,
    activation_point,
    conv_layers,
    model_device,
    resolve_layer,
    unwrap,
)
from tb_cnnviz.analysis.safety import eval_mode, frozen_parameters, preserved_rng
from tb_cnnviz.analysis.transforms import RandomTransforms, resolve_transforms
from tb_cnnviz.analysis.truncation import activation_bytes, truncated_forward

Param = Literal["fourier", "pixel"]
TransformsSpec = Union[RandomTransforms, str, None]
Size = Union[int, Sequence[int]]

DEFAULT_LR = {"fourier": 0.2, "pixel": 0.01}
# Class logits sit at the end of the network and respond to global contrast; a smaller Fourier
# step keeps the other logits from rising with the target (10/10 vs 6/10 class-model images
# classified as their class on the shapes SmallVGG at 48 steps).
CLASS_DEFAULT_LR = {"fourier": 0.1, "pixel": 0.01}
DEFAULT_MEMORY_BUDGET = 1 << 30
# Backward keeps the forward's saved tensors and creates gradients of about the same size.
_BACKWARD_FACTOR = 3


@dataclass
class PatternResult:
    """Optimised images and the activation each reached (measured on the final, untransformed image).

    ``images`` [K, C, H, W] in [0, 1]; ``activations`` [K]: mean activation of channel
    ``targets[k]`` (or the logit of class ``targets[k]``) on ``images[k]``.
    """

    images: torch.Tensor
    activations: torch.Tensor
    targets: list[int]
    layer: str
    param: str = "fourier"
    steps: int = 0


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
    and the global RNG guard when on the main thread (see the module docstring)."""
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


def unit_objective(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per image b: mean over positions of ``output[b, targets[b]]`` ([B, C, ...] -> [B])."""
    values = output[torch.arange(output.shape[0], device=output.device), targets]
    return values.flatten(1).mean(dim=1) if values.dim() > 1 else values


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


def optimise_images(
    objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    targets: Sequence[int],
    settings: RenderSettings,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise ``objective(model_input, targets) -> [B]`` with one image per target, in chunks.

    Returns ``(images [K, C, H, W] in [0, 1], final objective values [K])``.
    """
    bar = None
    if settings.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.steps * len(targets), desc=f"{settings.param} patterns", unit="image-step")
    images, values = [], []
    try:
        for start in range(0, len(targets), chunk):
            part = list(targets[start : start + chunk])
            result = _optimise_chunk(objective, part, settings, bar)
            images.append(result[0])
            values.append(result[1])
    finally:
        if bar is not None:
            bar.close()
    return torch.cat(images), torch.cat(values)


def _adam(parameter: torch.Tensor, lr: float) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015) ascending on our own image parameter; the fused kernel where the
    device has one (one op per step instead of ~10, which matters on a busy CPU)."""
    try:
        return torch.optim.Adam([parameter], lr=lr, maximize=True, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam([parameter], lr=lr, maximize=True)


def _optimise_chunk(
    objective, targets: list[int], settings: RenderSettings, bar
) -> tuple[torch.Tensor, torch.Tensor]:
    generators = [torch.Generator().manual_seed(image_seed(settings.seed, key)) for key in targets]
    shape = (settings.channels, settings.height, settings.width)
    # The image is optimised in float32, or float64 for a float64 model (never in half precision).
    dtype = torch.promote_types(settings.dtype, torch.float32)
    if settings.param == "fourier":
        image = FourierImage(generators, *shape, device=settings.device, dtype=dtype)
    else:
        image = PixelImage(generators, *shape, device=settings.device, dtype=dtype)
    transforms = settings.transforms
    draws = (
        transforms.sample(generators, settings.steps).to(settings.device) if transforms is not None else None
    )
    index = torch.tensor(targets, device=settings.device)
    (parameter,) = image.parameters
    lr = settings.lr
    optimiser = _adam(parameter, lr) if settings.param == "fourier" else None
    for step in range(settings.steps):
        x = image.images()
        if transforms is not None:
            x = transforms.apply(x, draws[:, step])
        value = objective(settings.model_input(x), index)
        (grad,) = torch.autograd.grad(value.sum(), [parameter])
        with torch.no_grad():
            if optimiser is not None:
                # .grad of our own image parameter, never of the model's
                parameter.grad = grad
                optimiser.step()
                parameter.grad = None
            else:
                # Chollet's recipe: g / (sqrt(mean(g^2)) + eps), per image so batching changes nothing.
                rms = grad.pow(2).flatten(1).mean(dim=1).sqrt().view(-1, 1, 1, 1)
                parameter.add_(lr * grad / (rms + 1e-12))
                image.project()
        if bar is not None:
            bar.update(len(targets))
    with torch.no_grad():
        final = image.images().detach()
        reached = objective(settings.model_input(final), index).float()
    return final, reached


def filter_patterns(
    model: nn.Module,
    layer: LayerSpec,
    channels: Sequence[int] | int | None = None,
    *,
    size: Size = 64,
    steps: int = 128,
    param: Param = "fourier",
    transforms: TransformsSpec = "auto",
    lr: float | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    in_channels: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    return_activations: bool = False,
) -> torch.Tensor | PatternResult:
    """One image per channel of ``layer`` that maximises that channel's mean activation, [K, C, H, W] in [0, 1].

    - ``layer``: a dotted name or module. A Conv2d directly followed by a BatchNorm is
      measured after the BatchNorm (``layers.activation_point``), i.e. what the next
      ReLU sees; otherwise the module's own output ([B, C, H, W] or [B, F]).
    - ``channels``: indices to render (default: all), each image seeded from ``(seed, channel)``.
    - ``param``: ``"fourier"`` (decorrelated colour, 1/f spectrum, Adam, ``lr`` 0.2) or
      ``"pixel"`` (Chollet: RMS-normalised gradient ascent on pixels, ``lr`` 0.01 per step).
    - ``transforms``: ``"auto"`` = ``RandomTransforms.standard(size)`` for Fourier and none
      for pixel; ``"standard"``, ``None``/``"none"`` or a ``RandomTransforms``.
    - ``mean``/``std``: the model's input normalisation (images are optimised in [0, 1]
      and fed as ``(x - mean) / std``); default identity.
    - ``in_channels``: input channel count, inferred from the first Conv2d (1 gives grayscale patterns).
    - ``batch_size``: images per chunk; default: as many as fit ``memory_budget`` bytes.
    - ``return_activations=True`` returns a ``PatternResult`` with the activation each pattern reached.

    Results stay on the model's device; an explicit ``device`` must match it.
    """
    base = unwrap(model)
    name, module = resolve_layer(base, layer, conv_only=False)
    measured = activation_point(base, module) if isinstance(module, nn.Conv2d) else module
    with analysis_context(base), truncated_forward(base, [measured], [name]) as run:
        # Built inside the context: under a caller's inference_mode they must still be normal tensors.
        settings = render_settings(
            model,
            size=size,
            steps=steps,
            param=param,
            transforms=transforms,
            lr=lr,
            mean=mean,
            std=std,
            in_channels=in_channels,
            seed=seed,
            device=device,
            batch_size=batch_size,
            memory_budget=memory_budget,
            progress=progress,
        )
        probe = settings.probe()
        with torch.no_grad():
            output = run(probe)[0]
        if output.dim() < 2:
            raise ValueError(
                f"layer: {name!r} produces outputs of shape {tuple(output.shape)}; expected [B, C, ...]"
            )
        targets = check_targets("channels", channels, output.shape[1], "channel")
        chunk = chunk_size(settings, activation_bytes(base, run, probe), len(targets))
        images, values = optimise_images(
            lambda x, index: unit_objective(run(x)[0], index), targets, settings, chunk
        )
    if not return_activations:
        return images
    return PatternResult(
        images=images,
        activations=values,
        targets=targets,
        layer=name,
        param=settings.param,
        steps=settings.steps,
    )


def class_patterns(
    model: nn.Module,
    classes: Sequence[int] | int | None = None,
    *,
    size: Size = 64,
    steps: int = 128,
    param: Param = "fourier",
    transforms: TransformsSpec = "auto",
    lr: float | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    in_channels: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    return_activations: bool = False,
) -> torch.Tensor | PatternResult:
    """One image per class that maximises the class logit (not the softmax, which can grow by
    suppressing the other classes): Simonyan et al. 2014 class model visualisation.

    The model's output must be [B, num_classes] (a tuple's first element is used). The default
    Fourier ``lr`` is 0.1 (``CLASS_DEFAULT_LR``), half the filter-pattern default.
    Same arguments and guarantees as ``filter_patterns``; image k is seeded from
    ``(seed, classes[k])`` and ``PatternResult.activations`` holds the logits reached.
    """
    base = unwrap(model)

    def run(x: torch.Tensor) -> list[torch.Tensor]:
        output = base(x)
        output = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"model: expected the forward to return logits as a tensor, got {type(output).__name__}"
            )
        return [output]

    if lr is None and isinstance(param, str):
        lr = CLASS_DEFAULT_LR.get(param)
    with analysis_context(base):
        settings = render_settings(
            model,
            size=size,
            steps=steps,
            param=param,
            transforms=transforms,
            lr=lr,
            mean=mean,
            std=std,
            in_channels=in_channels,
            seed=seed,
            device=device,
            batch_size=batch_size,
            memory_budget=memory_budget,
            progress=progress,
        )
        probe = settings.probe()
        with torch.no_grad():
            logits = run(probe)[0]
        if logits.dim() != 2:
            raise ValueError(f"model: expected logits of shape [B, num_classes], got {tuple(logits.shape)}")
        targets = check_targets("classes", classes, logits.shape[1], "class")
        chunk = chunk_size(settings, activation_bytes(base, run, probe), len(targets))
        images, values = optimise_images(
            lambda x, index: unit_objective(run(x)[0], index), targets, settings, chunk
        )
    if not return_activations:
        return images
    return PatternResult(
        images=images,
        activations=values,
        targets=targets,
        layer="logits",
        param=settings.param,
        steps=settings.steps,
    )
