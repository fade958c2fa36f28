"""Images for the summaries of several snapshots: probe images shown in [0, 1], uint8 arrays for PNGs,
heat maps scaled per image."""

from __future__ import annotations

import numpy as np
import torch


def display_images(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] for display: normalised inputs (outside [0, 1]) are min-max stretched;
    inputs with other than 1 or 3 channels are shown as the grey mean of their channels."""
    images = images.detach().float()
    if images.shape[1] not in (1, 3):
        images = images.mean(dim=1, keepdim=True)
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        images = (images - low) / max(high - low, 1e-12)
    return images


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[C, H, W] or [H, W] float in [0, 1] -> uint8 HWC numpy for PNG encoding."""
    image = image.detach().float().clamp(0, 1).mul(255).add(0.5).to(torch.uint8).cpu()
    return (image.permute(1, 2, 0) if image.dim() == 3 else image).numpy()


def per_image_unit(maps: torch.Tensor) -> torch.Tensor:
    """Each map ``[N, H, W]`` scaled to [0, 1] by its own range (a constant map is all 0; NaN counts as 0)."""
    maps = torch.nan_to_num(maps.detach().float())
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))
