"""DeepDream: amplify whatever a layer already sees in an image (sources in docs/design.md).

Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks", Google
Research blog 2015 (and their ``deepdream.ipynb``). Gradient *ascent* on the image
for the objective

    L(x) = sum_l ||a_l(x)||_2 / sqrt(numel(a_l))      (per image; the L2 norm of each layer's activations,
                                                      divided by sqrt(size) so layers of different sizes count alike)

with the step ``x += lr * g / mean(|g|)`` (per image) and a random jitter (a circular
shift) each step. It runs on a pyramid of ``octaves`` scales, smallest first: after
each octave, the *details* the ascent added (result minus that octave's base image)
are upsampled and added to the next larger base, so large structures form at coarse
scales and fine texture at the full size. The output has the input's size, in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tb_cnnviz.analysis.layers import LayerSpec, resolve_layers, unwrap
from tb_cnnviz.analysis.patterns import analysis_context, check_device, check_normalisation, model_dtype
from tb_cnnviz.analysis.truncation import truncated_forward

MIN_OCTAVE_SIDE = 8


def octave_sizes(
    height: int, width: int, octaves: int, octave_scale: float, min_side: int = MIN_OCTAVE_SIDE
) -> list[tuple[int, int]]:
    """Image sizes from largest (the input's) to smallest; shrinking stops before a side drops below ``min_side``."""
    sizes = [(height, width)]
    for index in range(1, octaves):
        h, w = round(height / octave_scale**index), round(width / octave_scale**index)
        if min(h, w) < min_side:
            break
        sizes.append((h, w))
    return sizes


def _resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrinking = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def deep_dream(
    model: nn.Module,
    image: torch.Tensor,
    layers: LayerSpec | Sequence[LayerSpec],
    *,
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps: int = 10,
    lr: float = 0.01,
    jitter: int | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """DeepDream ``image`` ([C, H, W] or [N, C, H, W] in [0, 1]) on ``layers``; same shape, in [0, 1].

    - ``layers``: one or several layer names/modules; each is measured at its own output
      and the network stops after the last of them.
    - ``octaves``/``octave_scale``: pyramid depth and ratio (the PyTorch VGG19 write-up used 2;
      1.4 as Google's notebook).
    - ``steps`` per octave, ``lr``: mean absolute pixel change per step (pixels live in [0, 1]
      and are clamped there after every step).
    - ``jitter``: maximum random shift in pixels per step (default: 1/16 of the octave's smaller side).
    - ``mean``/``std``: the model's input normalisation (default identity).
    Deterministic for a given ``seed`` (own generator); training-safe like ``filter_patterns``.
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(
            f"image: expected a float tensor [C, H, W] or [N, C, H, W], got {type(image).__name__}"
        )
    if image.dim() not in (3, 4) or not image.is_floating_point():
        raise ValueError(
            f"image: expected a float tensor [C, H, W] or [N, C, H, W], got {image.dtype} of shape {tuple(image.shape)}"
        )
    if image.numel() and (image.min() < -1e-6 or image.max() > 1 + 1e-6):
        raise ValueError(
            f"image: expected values in [0, 1], got min {image.min().item():.3g}, max {image.max().item():.3g}"
        )
    for name, value in (("octaves", octaves), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    if isinstance(octave_scale, bool) or not isinstance(octave_scale, (int, float)) or not octave_scale > 1:
        raise ValueError(
            f"octave_scale: expected a number > 1 (the size ratio between octaves), got {octave_scale!r}"
        )
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    if jitter is not None and (isinstance(jitter, bool) or not isinstance(jitter, int) or jitter < 0):
        raise ValueError(f"jitter: expected an int >= 0 (pixels) or None, got {jitter!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {seed!r}")

    base_model = unwrap(model)
    dev = check_device(base_model, device)
    if image.device != dev:
        raise ValueError(
            f"image: is on {image.device} but the model is on {dev}; move the image to the model's device"
        )
    resolved = resolve_layers(base_model, layers, argument="layers", conv_only=False)
    single = image.dim() == 3
    generator = torch.Generator().manual_seed(seed)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="deep dream", unit="step")
    try:
        with (
            analysis_context(base_model),
            truncated_forward(base_model, [m for _, m in resolved], [n for n, _ in resolved]) as run,
        ):
            # Built inside the context: under a caller's inference_mode they must still be normal tensors.
            images = (image[None] if single else image).detach().float().clone()
            normalisation = check_normalisation(mean, std, images.shape[1], dev)
            dtype = model_dtype(base_model)

            def model_input(x: torch.Tensor) -> torch.Tensor:
                if normalisation is not None:
                    x = (x - normalisation[0]) / normalisation[1]
                return x.to(dtype)

            sizes = octave_sizes(images.shape[-2], images.shape[-1], octaves, float(octave_scale))
            pyramid = [images] + [_resize(images, size) for size in sizes[1:]]
            if bar is not None:
                bar.total = steps * len(pyramid)
            detail = torch.zeros_like(pyramid[-1])
            for octave_base in reversed(pyramid):
                detail = _resize(detail, tuple(octave_base.shape[-2:]))
                x = (octave_base + detail).clamp(0, 1)
                side = min(octave_base.shape[-2:])
                limit = max(1, side // 16) if jitter is None else jitter
                for _ in range(steps):
                    shift = (
                        [int(s) for s in torch.randint(-limit, limit + 1, (2,), generator=generator)]
                        if limit
                        else [0, 0]
                    )
                    shifted = torch.roll(x, shifts=shift, dims=(-2, -1)).requires_grad_(True)
                    objective = sum(_norm_objective(a) for a in run(model_input(shifted)))
                    (grad,) = torch.autograd.grad(objective.sum(), [shifted])
                    with torch.no_grad():
                        grad = torch.roll(grad, shifts=[-s for s in shift], dims=(-2, -1))
                        scale = grad.abs().flatten(1).mean(dim=1).view(-1, 1, 1, 1)
                        x = (x + lr * grad / (scale + 1e-12)).clamp(0, 1)
                    if bar is not None:
                        bar.update(1)
                detail = x - octave_base
    finally:
        if bar is not None:
            bar.close()
    result = x.to(image.dtype)
    return result[0] if single else result


def _norm_objective(activations: torch.Tensor) -> torch.Tensor:
    """Per image: ``||a||_2 / sqrt(numel)`` over all of a layer's outputs for that image, shape [B]."""
    flat = activations.flatten(1).float()
    return flat.norm(dim=1) / flat.shape[1] ** 0.5
