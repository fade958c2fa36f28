"""Are saliency maps telling the truth? Deletion and insertion curves with a random-map baseline.

Deletion and insertion (Petsiuk et al., 2018, "RISE: Randomized Input Sampling for Explanation
of Black-box Models", section 4.1): order the pixels of an image by decreasing saliency and

- **deletion**: remove the top fraction ``f`` of pixels for ``f = 0, 1/S, ..., 1`` and record the
  probability of the explained class; a faithful map makes it fall fast (low area under the curve);
- **insertion**: start from an image with every pixel removed and put back the top fraction ``f``
  of the original pixels; a faithful map makes the probability rise fast (high area).

A *removed* pixel takes its value in a blurred copy of the image, for deletion and insertion
alike (RISE blurs for insertion and uses zeros for deletion; one baseline keeps both curves
about the same information): a separable Gaussian blur with ``sigma = min(H, W) / 16`` (2 px on a
32 px image, 14 px on 224 px: detail smaller than about an eighth of the image is gone while
colours and layout stay, so the blurred image is less out of distribution than a black one),
kernel radius ``ceil(3 sigma)``, edges replicated (:func:`blurred`).

A map without a baseline misleads (on pytorch-grad-cam's own README example a random map
scores 0.267 against Grad-CAM's 0.272 on ROAD), so every map is scored next to a **seeded
random map** of the same native size (uniform in [0, 1), drawn on the CPU from its own
``torch.Generator``: the same map on every device and at every training step), upsampled the
same way. The maps given at the layer's resolution ``[N, h, w]`` are upsampled bilinearly to
the image size (as ``analysis.cam.grad_cam`` does); ties (a CAM's zero region) are broken in a
seeded random order, not in raster order.

The probability is the softmax of the model's class scores ``[N, classes]`` at the explained
class (for dense scores ``[N, classes, H, W]``: averaged over the pixels, as
``analysis.cam.probabilities``). The area under a curve is the trapezoid rule over the fraction
of pixels removed (or inserted), so a constant curve's area is that constant. The two endpoints
(the original image, the blurred image) are shared by every curve of an image and computed once:
each image costs ``2 + 2 M (S - 1)`` forward passes for ``M`` maps (62 for a CAM and its random
map with ``S = 16``), run batched, chunked to ``batch_size`` images per forward.

Training-safe as every analysis function: eval mode with every module's flag restored, no
gradient, hooks none, global RNG untouched; works in the images' dtype (float64 included) on
the model's device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from tb_cnnviz.analysis.cam import check_images, prepare_images
from tb_cnnviz.analysis.layers import unwrap
from tb_cnnviz.analysis.safety import safe_snapshot

DEFAULT_STEPS = 16
DEFAULT_SEED = 0
DEFAULT_BATCH_SIZE = 64
BLUR_SIGMA_FRACTION = 1 / 16  # sigma of the Gaussian blur, as a fraction of the image's shorter side
CURVES = ("deletion", "insertion")
MAPS = ("cam", "random")  # the maps :func:`faithfulness` scores, in this order

__all__ = [
    "CURVES",
    "DEFAULT_STEPS",
    "MAPS",
    "CurveResult",
    "FaithfulnessResult",
    "auc",
    "blurred",
    "curves",
    "faithfulness",
    "random_maps",
]


@dataclass
class CurveResult:
    """Deletion and insertion curves of ``M`` maps per image, on the model's device.

    ``fractions``: ``[S + 1]``, the fraction of pixels removed (deletion) or inserted (insertion)
    at each step, from 0 to 1. ``deletion`` / ``insertion``: ``[N, M, S + 1]``, the explained
    class's probability at each step. ``target``: ``[N]``, the explained class.
    """

    fractions: torch.Tensor
    deletion: torch.Tensor
    insertion: torch.Tensor
    target: torch.Tensor

    @property
    def deletion_auc(self) -> torch.Tensor:
        """``[N, M]``: area under each deletion curve (lower: the map found what the class needs)."""
        return auc(self.deletion, self.fractions)

    @property
    def insertion_auc(self) -> torch.Tensor:
        """``[N, M]``: area under each insertion curve (higher: the map found what the class needs)."""
        return auc(self.insertion, self.fractions)


@dataclass
class FaithfulnessResult:
    """A map scored against a seeded random map of the same size (:func:`faithfulness`).

    ``curves``: the :class:`CurveResult` of the maps in :data:`MAPS` order (``cam``, ``random``).
    ``deletion_auc`` / ``insertion_auc``: ``[N, 2]`` (CAM, random). ``deletion_gap``: per image,
    random minus CAM deletion AUC; ``insertion_gap``: CAM minus random insertion AUC (both
    positive when the CAM does better than chance). ``random_map``: ``[N, h, w]``, the baseline.
    """

    curves: CurveResult
    random_map: torch.Tensor
    seed: int

    @property
    def deletion_auc(self) -> torch.Tensor:
        return self.curves.deletion_auc

    @property
    def insertion_auc(self) -> torch.Tensor:
        return self.curves.insertion_auc

    @property
    def deletion_gap(self) -> torch.Tensor:
        """``[N]``: random minus CAM deletion AUC (positive: the CAM removes the evidence faster)."""
        area = self.deletion_auc
        return area[:, 1] - area[:, 0]

    @property
    def insertion_gap(self) -> torch.Tensor:
        """``[N]``: CAM minus random insertion AUC (positive: the CAM restores the evidence faster)."""
        area = self.insertion_auc
        return area[:, 0] - area[:, 1]


def auc(curve: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """Area under ``curve`` ``[..., S + 1]`` over ``fractions`` ``[S + 1]`` (0 to 1) by the trapezoid rule."""
    if curve.shape[-1] != fractions.shape[-1] or fractions.dim() != 1 or fractions.shape[0] < 2:
        raise ValueError(
            f"curve: expected [..., {fractions.shape[-1]}] values at fractions [S + 1] (S >= 1), "
            f"got curve {tuple(curve.shape)} and fractions {tuple(fractions.shape)}"
        )
    widths = (fractions[1:] - fractions[:-1]).to(curve.dtype)
    return ((curve[..., 1:] + curve[..., :-1]) * widths).sum(-1) / 2


def blurred(images: torch.Tensor, sigma: Optional[float] = None) -> torch.Tensor:
    """``images`` ``[N, C, H, W]`` blurred by a separable Gaussian (default ``sigma = min(H, W) / 16``,
    radius ``ceil(3 sigma)``, edges replicated): the value a removed pixel takes."""
    check_images(images)
    if sigma is None:
        sigma = min(images.shape[-2:]) * BLUR_SIGMA_FRACTION
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
        raise ValueError(f"sigma: expected a positive blur width in pixels, got {sigma!r}")
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(images.device, images.dtype)
    channels = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def random_maps(shape: tuple[int, ...], seed: int = DEFAULT_SEED) -> torch.Tensor:
    """A uniform [0, 1) float64 CPU tensor of ``shape`` from its own generator: the same for a seed everywhere."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.rand(tuple(shape), generator=generator, dtype=torch.float64)


def curves(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    target: Optional[torch.Tensor] = None,
    *,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sigma: Optional[float] = None,
    seed: int = DEFAULT_SEED,
) -> CurveResult:
    """Deletion and insertion curves of ``images`` ``[N, C, H, W]`` for ``maps`` ``[N, M, h, w]`` (``M``
    maps per image at any resolution, upsampled bilinearly to ``H x W``; or ``[N, h, w]``, one map).

    ``target``: the class explained per image ``[N]`` (default: the class predicted on the
    original image). ``steps``: ``S``, the curve has ``S + 1`` points. ``batch_size``: images per
    forward pass. ``sigma``: the blur of :func:`blurred`. ``seed``: the order of tied pixels.
    """
    check_images(images)
    if not isinstance(maps, torch.Tensor) or maps.dim() not in (3, 4):
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ValueError(f"maps: expected a tensor [N, h, w] or [N, M, h, w], got {shape}")
    if maps.dim() == 3:
        maps = maps[:, None]
    if maps.shape[0] != images.shape[0] or maps.shape[1] == 0 or 0 in maps.shape[2:]:
        raise ValueError(
            f"maps: expected one or more maps per image ([{images.shape[0]}, M, h, w]), got {tuple(maps.shape)}"
        )
    for value, argument in ((steps, "steps"), (batch_size, "batch_size")):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{argument}: expected an int >= 1, got {value!r}")
    if target is not None and (not isinstance(target, torch.Tensor) or target.shape != (images.shape[0],)):
        raise ValueError(f"target: expected a tensor of {images.shape[0]} class indices, got {target!r}")

    runner = unwrap(model)
    with safe_snapshot(runner), torch.no_grad():
        x = prepare_images(runner, images)
        count, height, width = x.shape[0], x.shape[2], x.shape[3]
        pixels = height * width
        base = blurred(x, sigma)
        ends = _probabilities(runner, torch.cat([x, base]), batch_size)  # [2N, classes]
        if target is None:
            target = ends[:count].argmax(1)
        target = target.to(ends.device, torch.long)
        if bool(((target < 0) | (target >= ends.shape[1])).any()):
            raise ValueError(
                f"target: class indices must be in 0..{ends.shape[1] - 1}, got {target.tolist()}"
            )
        original_p = ends[:count].gather(1, target[:, None])[:, 0]
        blurred_p = ends[count:].gather(1, target[:, None])[:, 0]

        removed = torch.tensor(
            [round(k * pixels / steps) for k in range(steps + 1)], dtype=torch.long, device=x.device
        )
        fractions = removed.to(torch.float64) / pixels
        ranks = _ranks(maps.to(x.device), (height, width), seed)  # [N, M, P]: 0 = most salient
        m = maps.shape[1]
        # every (image, map, curve, inner step) as one flat list of masked images, built chunk by chunk
        inner = steps - 1
        jobs = count * m * 2 * inner
        probs = torch.empty(jobs, dtype=ends.dtype, device=ends.device)
        flat_x, flat_base = x.flatten(2), base.flatten(2)
        for start in range(0, jobs, batch_size):
            index = torch.arange(start, min(start + batch_size, jobs), device=x.device)
            image, rest = index // (m * 2 * inner), index % (m * 2 * inner)
            which, rest = rest // (2 * inner), rest % (2 * inner)
            insertion, step = rest // inner, rest % inner + 1
            top = ranks[image, which] < removed[step][:, None]  # [B, P]: the pixels removed / inserted
            take_original = top == insertion.bool()[:, None]
            batch = torch.where(take_original[:, None], flat_x[image], flat_base[image])
            scores = _probabilities(runner, batch.view(-1, *x.shape[1:]), batch_size)
            probs[start : start + len(index)] = scores.gather(1, target[image][:, None])[:, 0]
        probs = probs.view(count, m, 2, inner)
        first, last = (
            original_p[:, None, None].expand(count, m, 1),
            blurred_p[:, None, None].expand(count, m, 1),
        )
        deletion = torch.cat([first, probs[:, :, 0], last], dim=2)
        insertion = torch.cat([last, probs[:, :, 1], first], dim=2)
    return CurveResult(fractions=fractions, deletion=deletion, insertion=insertion, target=target)


def faithfulness(
    model: nn.Module,
    images: torch.Tensor,
    cam: torch.Tensor,
    target: Optional[torch.Tensor] = None,
    *,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sigma: Optional[float] = None,
    seed: int = DEFAULT_SEED,
) -> FaithfulnessResult:
    """Deletion and insertion of ``cam`` ``[N, h, w]`` (e.g. Grad-CAM at the layer's resolution) next to a
    random map of the same shape drawn with ``seed`` (:func:`random_maps`), in one batched run.

    The other arguments are :func:`curves`'s; ``seed`` also breaks ties in the pixel order.
    """
    if not isinstance(cam, torch.Tensor) or cam.dim() != 3:
        shape = tuple(cam.shape) if isinstance(cam, torch.Tensor) else type(cam).__name__
        raise ValueError(f"cam: expected maps [N, h, w], got {shape}")
    random = random_maps(tuple(cam.shape), seed).to(cam.device)
    maps = torch.stack([cam.to(torch.float64), random], dim=1)
    result = curves(model, images, maps, target, steps=steps, batch_size=batch_size, sigma=sigma, seed=seed)
    return FaithfulnessResult(curves=result, random_map=random, seed=int(seed))


def _ranks(maps: torch.Tensor, size: tuple[int, int], seed: int) -> torch.Tensor:
    """``[N, M, H*W]``: each pixel's rank in decreasing order of the upsampled map (ties in a seeded order)."""
    count, m = maps.shape[:2]
    upsampled = maps.to(torch.float64)
    if tuple(maps.shape[2:]) != tuple(size):
        upsampled = F.interpolate(
            upsampled.reshape(count * m, 1, *maps.shape[2:]), size=size, mode="bilinear", align_corners=False
        )
    values = upsampled.reshape(count, m, -1)
    pixels = values.shape[-1]
    generator = torch.Generator().manual_seed(int(seed) + 1)
    shuffle = torch.randperm(pixels, generator=generator).to(values.device)
    order = shuffle[torch.sort(values[..., shuffle], dim=-1, descending=True, stable=True).indices]
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(pixels, device=values.device).expand_as(order))
    return ranks


def _probabilities(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Softmax class probabilities ``[N, classes]`` of ``images`` in chunks of ``batch_size`` (dense scores
    ``[N, classes, H, W]``: averaged over the pixels)."""
    parts = []
    for start in range(0, images.shape[0], batch_size):
        output = model(images[start : start + batch_size])
        if not isinstance(output, torch.Tensor) or output.dim() not in (2, 4):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(
                f"model: deletion and insertion need class scores [N, classes] or [N, classes, H, W], got {shape}"
            )
        probs = torch.softmax(output, dim=1)
        parts.append(probs.flatten(2).mean(2) if probs.dim() == 4 else probs)
    return torch.cat(parts)
