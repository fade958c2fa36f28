"""Random image transforms applied before every optimisation step ("transformation robustness").

Optimising an image so that a unit fires *under small random padding, jitter, scaling
and rotation* suppresses the high-frequency adversarial patterns plain gradient ascent
produces (Olah et al., "Feature Visualization", Distill 2017, section "Transformation
robustness"; lucid's ``standard_transforms``: pad 12, jitter 8, scale 0.9-1.1,
rotate +-10 degrees, jitter 4 at 224 px).

Everything is batched: padding, then one affine resampling per image combining scale,
rotation and translation (``affine_grid`` + ``grid_sample``), so the cost is one
bilinear resampling however many transforms are enabled. By default the output is a
window of the input's size into the padded, transformed canvas (lucid's jitter is a
random crop), so the network sees images of the requested size and costs no more than
it would without transforms. The random parameters come from one ``torch.Generator``
per image and are drawn up front for all steps, so an image sees the same transforms
whether it is optimised alone or in a batch, and no global random state is touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Number of uniform random numbers one image needs per step: scale, angle, shift x, shift y.
DRAWS_PER_STEP = 4


@dataclass(frozen=True)
class RandomTransforms:
    """Pad by ``pad`` pixels with ``pad_value``, then per image: scale by a factor drawn from
    ``scale`` (min, max), rotate by up to ``±degrees`` and shift by up to ``±jitter`` pixels.

    ``keep_size=True`` (default): the output is the centred window of the input's size
    (so with no shift, scale or rotation it is the input itself); ``False``: the whole
    padded canvas ``(H + 2 pad, W + 2 pad)``. Regions the resampling uncovers repeat the
    border (the padding value when ``pad > 0``).
    """

    pad: int = 0
    pad_value: float = 0.5
    jitter: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    degrees: float = 0.0
    keep_size: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.pad, int) or self.pad < 0:
            raise ValueError(f"pad: expected an int >= 0, got {self.pad!r}")
        if self.jitter < 0:
            raise ValueError(f"jitter: expected a number of pixels >= 0, got {self.jitter!r}")
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale: expected (min, max) with 0 < min <= max, got {self.scale!r}")
        if self.degrees < 0:
            raise ValueError(f"degrees: expected a maximum rotation >= 0, got {self.degrees!r}")

    @classmethod
    def standard(cls, size: int | Sequence[int]) -> RandomTransforms:
        """lucid's standard set, with pixel amounts scaled to the image size (5% pad, 5% jitter)."""
        side = max(size) if isinstance(size, (tuple, list)) else int(size)
        amount = max(1, round(0.05 * side))
        return cls(pad=amount, jitter=float(amount), scale=(0.9, 1.1), degrees=10.0)

    @property
    def is_identity(self) -> bool:
        return not self._affine and (self.pad == 0 or self.keep_size)

    @property
    def _affine(self) -> bool:
        return not (self.jitter == 0 and self.scale == (1.0, 1.0) and self.degrees == 0)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return (height, width) if self.keep_size else (height + 2 * self.pad, width + 2 * self.pad)

    def sample(self, generators: Sequence[torch.Generator], steps: int) -> torch.Tensor:
        """Uniform draws [N, steps, 4] for all steps, one generator per image (CPU tensors)."""
        return torch.stack([torch.rand((steps, DRAWS_PER_STEP), generator=g) for g in generators])

    def apply(self, images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """Transform ``images`` [N, C, H, W] with this step's ``draws`` [N, 4] (uniform in [0, 1))."""
        n, channels, height, width = images.shape
        out_h, out_w = self.output_size(height, width)
        if not self._affine:
            return (
                images
                if self.is_identity
                else F.pad(images, (self.pad,) * 4, mode="constant", value=self.pad_value)
            )
        if self.pad:
            images = F.pad(images, (self.pad,) * 4, mode="constant", value=self.pad_value)
        in_h, in_w = images.shape[-2:]
        draws = draws.to(device=images.device, dtype=images.dtype)
        low, high = self.scale
        scale = low + (high - low) * draws[:, 0]
        angle = math.radians(self.degrees) * (2 * draws[:, 1] - 1)
        shift_x = self.jitter * (2 * draws[:, 2] - 1)
        shift_y = self.jitter * (2 * draws[:, 3] - 1)
        # theta maps output coords to input coords in normalised [-1, 1] units. It is built in the
        # output window's units (rotation in pixel units, so non-square images are not sheared;
        # zooming in by s samples at p / s) and then rescaled to the padded input's units.
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        aspect = out_w / out_h
        theta = torch.zeros((n, 2, 3), device=images.device, dtype=images.dtype)
        theta[:, 0, 0] = cos
        theta[:, 0, 1] = -sin / aspect
        theta[:, 0, 2] = 2 * shift_x / out_w
        theta[:, 1, 0] = sin * aspect
        theta[:, 1, 1] = cos
        theta[:, 1, 2] = 2 * shift_y / out_h
        theta[:, 0] *= out_w / in_w
        theta[:, 1] *= out_h / in_h
        grid = F.affine_grid(theta, [n, channels, out_h, out_w], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def resolve_transforms(
    transforms: RandomTransforms | str | None, param: str, size: tuple[int, int]
) -> RandomTransforms | None:
    """``"auto"``: the standard set for the Fourier parametrisation, none for plain pixel ascent (Chollet)."""
    if transforms is None:
        return None
    if isinstance(transforms, str):
        if transforms == "auto":
            return RandomTransforms.standard(size) if param == "fourier" else None
        if transforms == "standard":
            return RandomTransforms.standard(size)
        if transforms == "none":
            return None
        raise ValueError(
            f"transforms: expected 'auto', 'standard', 'none', None or a RandomTransforms, got {transforms!r}"
        )
    if not isinstance(transforms, RandomTransforms):
        raise TypeError(
            f"transforms: expected 'auto', 'standard', 'none', None or a RandomTransforms, got {type(transforms).__name__}"
        )
    return None if transforms.is_identity else transforms
