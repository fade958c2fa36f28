"""Image parametrisations for feature visualisation: what the optimiser actually changes.

Two choices, both batched with one random stream per image so that an image's result
does not depend on which other images share its batch:

- ``FourierImage``: the image is the inverse real FFT of a learned spectrum whose
  coefficients are scaled by ``1 / frequency`` (so every frequency band starts with
  roughly equal energy and high frequencies, which gradients otherwise over-excite,
  change slowly), followed for 3-channel images by a fixed colour decorrelation and a
  sigmoid into [0, 1]. This is the parametrisation of Olah, Mordvintsev & Schubert,
  "Feature Visualization", Distill 2017 (lucid's ``fft_image`` + ``to_valid_rgb``);
  see also Mordvintsev et al., "Differentiable Image Parameterizations", Distill 2018.
- ``PixelImage``: raw pixels in [0, 1], initialised to grey plus a little noise, the
  plain gradient-ascent setting of Chollet, "Deep Learning with Python", 5.4.2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# Square root of the colour correlation matrix of ImageNet pixels, from its SVD
# ("colour decorrelation"), as published with lucid
# (lucid/optvis/param/color.py, ``color_correlation_svd_sqrt``; also used by lucent).
# Each column is a colour direction; the image is optimised in this decorrelated basis.
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
# Normalised by the largest column norm so no colour direction is amplified.
COLOR_CORRELATION_NORMALIZED = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()

# lucid's constant dividing the spatial image before the sigmoid ("reduces saturation").
_FOURIER_DIVISOR = 4.0


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> torch.Tensor:
    """``1 / max(|f|, 1/max(H, W)) ** decay_power`` on the ``rfft2`` frequency grid, shape [H, W//2+1].

    ``|f|`` is the radial frequency in cycles per pixel; the floor keeps the DC term finite.
    """
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / torch.clamp(freqs, min=1.0 / max(height, width)) ** decay_power


def _check_generators(generators: Sequence[torch.Generator]) -> list[torch.Generator]:
    generators = list(generators)
    if not generators:
        raise ValueError("generators: expected one torch.Generator per image, got an empty list")
    for g in generators:
        if not isinstance(g, torch.Generator):
            raise TypeError(f"generators: expected torch.Generator objects, got {type(g).__name__}")
    return generators


class FourierImage:
    """A batch of images parametrised by a 1/f-scaled spectrum in a decorrelated colour space.

    ``parameters`` is one real tensor [N, C, H, W//2+1, 2] (real and imaginary parts);
    ``images()`` maps it to [N, C, H, W] in (0, 1), differentiably. Image ``i`` is
    initialised from ``generators[i]`` alone (normal noise with std ``sd``), drawn in float32 so
    that ``dtype`` (float64 for a float64 model) changes the precision, not the starting point.
    """

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        channels: int,
        height: int,
        width: int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        sd: float = 0.01,
        decay_power: float = 1.0,
        decorrelate: bool | None = None,
    ):
        generators = _check_generators(generators)
        self.channels, self.height, self.width = channels, height, width
        shape = (channels, height, width // 2 + 1, 2)
        init = torch.stack([torch.randn(shape, generator=g) for g in generators]) * sd
        self.spectrum = init.to(device, dtype).requires_grad_(True)
        # With norm="ortho" this equals lucid's sqrt(H*W)-scaled spectrum under TF's unnormalised irfft2d.
        # lucid's divisor is folded into the scale (one op less per step).
        scale = spectrum_scale(height, width, decay_power) / _FOURIER_DIVISOR
        self.scale = scale[None, None, :, :, None].to(device, dtype)
        decorrelate = channels == 3 if decorrelate is None else decorrelate
        if decorrelate and channels != 3:
            raise ValueError(f"decorrelate: colour decorrelation needs 3 channels, got {channels}")
        self.colour = COLOR_CORRELATION_NORMALIZED.to(device, dtype) if decorrelate else None

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def images(self) -> torch.Tensor:
        spectrum = self.spectrum
        if self.colour is not None:
            # x_rgb[c] = sum_d M[c, d] x_decorrelated[d]. The inverse FFT is linear and per channel, so the
            # colour mix is applied to the spectrum: one broadcast matmul, no permute copies.
            n = spectrum.shape[0]
            spectrum = torch.matmul(self.colour, spectrum.reshape(n, self.channels, -1)).view_as(
                self.spectrum
            )
        spectrum = torch.view_as_complex(self.scale * spectrum)
        image = torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho")
        return torch.sigmoid(image)


class PixelImage:
    """A batch of raw-pixel images in [0, 1]: grey 0.5 plus uniform noise of amplitude ``noise``.

    Mirrors Chollet's recipe (``128 + 20 * U[0, 1)`` on a 0..255 scale). ``project()`` clamps the
    pixels back into [0, 1] after an update (projected gradient ascent), so the returned
    image is exactly the optimised one, not a contrast-stretched version of it. The noise is drawn
    in float32 whatever ``dtype`` the pixels are kept in.
    """

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        channels: int,
        height: int,
        width: int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        noise: float = 20.0 / 255.0,
    ):
        generators = _check_generators(generators)
        self.channels, self.height, self.width = channels, height, width
        init = torch.stack([torch.rand((channels, height, width), generator=g) for g in generators])
        self.pixels = (0.5 + noise * (init - 0.5)).to(device, dtype).requires_grad_(True)

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [self.pixels]

    def images(self) -> torch.Tensor:
        return self.pixels

    @torch.no_grad()
    def project(self) -> None:
        self.pixels.clamp_(0.0, 1.0)


def high_frequency_energy(images: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """Fraction of each image's (mean-removed) spectral energy above ``cutoff`` cycles/pixel, shape [N].

    A smoothness measure: 0 for a constant image, about 0.8 for white noise at the
    default cutoff (the part of the [-0.5, 0.5]^2 square outside the radius-0.25 disc).
    """
    if images.dim() != 4:
        raise ValueError(f"images: expected a [N, C, H, W] tensor, got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    centred = images - images.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.rfft2(centred.float()).abs().pow(2)
    # rfft2 stores half the columns; columns other than 0 (and Nyquist for even W) stand for two.
    weight = torch.full((width // 2 + 1,), 2.0, device=images.device)
    weight[0] = 1.0
    if width % 2 == 0:
        weight[-1] = 1.0
    power = power * weight
    fy = torch.fft.fftfreq(height, device=images.device)[:, None]
    fx = torch.fft.rfftfreq(width, device=images.device)[None, :]
    high = (torch.sqrt(fx * fx + fy * fy) > cutoff).to(power.dtype)
    total = power.sum(dim=(1, 2, 3))
    return (power * high).sum(dim=(1, 2, 3)) / total.clamp_min(1e-12)
