"""The optimisation loop of activation maximisation: one image per target, optimised together in chunks.

Fourier images ascend with Adam, pixel images with Chollet's RMS-normalised gradient; each image
draws its initialisation and random transforms from its own generator, so batching changes nothing
(see :mod:`tb_cnnviz.analysis.patterns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import torch

from tb_cnnviz.analysis.image_params import FourierImage, PixelImage
from tb_cnnviz.analysis.pattern_settings import RenderSettings, image_seed


def unit_objective(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per image b: mean over positions of ``output[b, targets[b]]`` ([B, C, ...] -> [B])."""
    values = output[torch.arange(output.shape[0], device=output.device), targets]
    return values.flatten(1).mean(dim=1) if values.dim() > 1 else values


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
