"""The activation-maximisation optimiser: one step by hand, determinism, odd models,
the Fourier parametrisation and the random transforms."""

import pytest
import torch

from tb_cnnviz.analysis.image_params import FourierImage, PixelImage, high_frequency_energy, spectrum_scale
from tb_cnnviz.analysis.patterns import (
    filter_patterns,
    image_seed,
)
from tb_cnnviz.analysis.transforms import RandomTransforms
from tb_cnnviz.analysis.truncation import truncated_forward
from tb_cnnviz.models import small_vgg

# ---------------------------------------------------------------- the optimiser itself


def test_pixel_step_is_seed_000_rms_normalised_ascent():
    torch.manual_seed(3)
    model = small_vgg(width=8).eval()
    lr = 0.05
    got = filter_patterns(model, "features.conv1", channels=[2], size=12, steps=1, param="pixel", lr=lr)
    # By hand: grey + noise from the channel's own generator, one step of g / rms(g).
    generator = torch.Generator().manual_seed(image_seed(0, 2))
    start = PixelImage([generator], 3, 12, 12).pixels.detach().requires_grad_(True)
    conv_out = model.features.bn1(model.features.conv1(start))
    (grad,) = torch.autograd.grad(conv_out[0, 2].mean(), [start])
    expected = (start + lr * grad / grad.pow(2).mean().sqrt()).clamp(0, 1)
    torch.testing.assert_close(got, expected.detach(), atol=1e-6, rtol=0)


def test_deterministic_for_a_seed_and_different_for_another():
    torch.manual_seed(0)
    model = small_vgg(width=8).eval()
    kwargs = dict(channels=[0, 3], size=16, steps=5)
    first = filter_patterns(model, "features.conv2", seed=7, **kwargs)
    again = filter_patterns(model, "features.conv2", seed=7, **kwargs)
    other = filter_patterns(model, "features.conv2", seed=8, **kwargs)
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 1e-2


def test_grayscale_model_gives_grayscale_patterns():
    torch.manual_seed(0)
    model = small_vgg(in_channels=1, width=8).eval()
    for param in ("fourier", "pixel"):
        result, start = (
            filter_patterns(
                model,
                "features.conv2",
                channels=[0, 1, 2],
                size=20,
                steps=steps,
                param=param,
                return_activations=True,
            )
            for steps in (10, 1)
        )
        assert result.images.shape == (3, 1, 20, 20)
        assert 0 <= result.images.min() and result.images.max() <= 1
        assert bool((result.activations > start.activations).all())


def test_non_square_sizes_and_a_linear_layer():
    torch.manual_seed(0)
    model = small_vgg(width=8).eval()
    images = filter_patterns(model, "features.conv1", channels=[0], size=(12, 20), steps=2)
    assert images.shape == (1, 3, 12, 20)
    result = filter_patterns(model, "classifier", channels=[4], size=16, steps=3, return_activations=True)
    with torch.no_grad():
        assert result.activations[0] == pytest.approx(model(result.images)[0, 4].item(), abs=1e-4)


def test_truncation_stops_torchvision_resnet_after_the_layer():
    torchvision = pytest.importorskip("torchvision")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    calls = {"layer2": 0, "fc": 0}
    handles = [
        model.layer2.register_forward_hook(lambda *a: calls.__setitem__("layer2", calls["layer2"] + 1)),
        model.fc.register_forward_hook(lambda *a: calls.__setitem__("fc", calls["fc"] + 1)),
    ]
    try:
        result = filter_patterns(
            model, "layer1.0.conv2", channels=[0, 7], size=32, steps=3, return_activations=True
        )
    finally:
        for handle in handles:
            handle.remove()
    assert calls == {"layer2": 0, "fc": 0}
    assert result.images.shape == (2, 3, 32, 32)
    # measured after layer1.0.bn2, the conv's activation point
    with torch.no_grad(), truncated_forward(model, [model.layer1[0].bn2]) as run:
        expected = run(result.images)[0].mean(dim=(2, 3))[[0, 1], [0, 7]]
    torch.testing.assert_close(result.activations, expected, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- parametrisation and transforms


def test_fourier_parametrisation_pieces():
    scale = spectrum_scale(8, 8)
    assert scale.shape == (8, 5)
    assert scale[0, 0] == pytest.approx(8.0)  # DC clamped to 1 / (1/8)
    assert scale[0, 4] == pytest.approx(2.0)  # 0.5 cycles/pixel
    generators = [torch.Generator().manual_seed(s) for s in (1, 2)]
    image = FourierImage(generators, 3, 16, 12)
    pictures = image.images()
    assert pictures.shape == (2, 3, 16, 12) and 0 < pictures.min() and pictures.max() < 1
    alone = FourierImage([torch.Generator().manual_seed(2)], 3, 16, 12).images()
    torch.testing.assert_close(alone[0], pictures[1])
    gray = FourierImage(generators, 1, 16, 12)
    assert gray.images().shape == (2, 1, 16, 12) and gray.colour is None


def test_high_frequency_energy_measures_smoothness():
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand((4, 3, 64, 64), generator=generator)
    flat = torch.full((1, 3, 64, 64), 0.3)
    columns = torch.arange(64.0)
    wave = (0.5 + 0.4 * torch.cos(2 * torch.pi * 3 * columns / 64)).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    fine = (0.5 + 0.4 * torch.cos(2 * torch.pi * 24 * columns / 64)).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    assert high_frequency_energy(noise).mean() == pytest.approx(1 - torch.pi * 0.25**2, abs=0.03)
    assert high_frequency_energy(flat).item() == 0
    assert high_frequency_energy(wave).item() < 1e-6  # 3/64 cycles per pixel
    assert high_frequency_energy(fine).item() > 1 - 1e-6  # 24/64 = 0.375 cycles per pixel


def test_random_transforms_identity_and_shift():
    transforms = RandomTransforms(pad=2, jitter=3.0, scale=(0.9, 1.1), degrees=10.0)
    images = torch.rand((2, 3, 10, 12), generator=torch.Generator().manual_seed(0))
    centre = torch.full((2, 4), 0.5)  # scale 1, angle 0, shift 0
    torch.testing.assert_close(transforms.apply(images, centre), images, atol=1e-5, rtol=0)
    # draw 1.0 on x = a shift of +3 px: output pixel (i, j) samples input (i, j + 3); beyond it, the grey pad
    shifted = transforms.apply(images, torch.tensor([[0.5, 0.5, 1.0, 0.5]] * 2))
    torch.testing.assert_close(shifted[..., :, :-3], images[..., :, 3:], atol=1e-5, rtol=0)
    assert bool((shifted[..., :, -3:] == 0.5).all())
    # a 10 degree rotation moves pixels
    rotated = transforms.apply(images, torch.tensor([[0.5, 1.0, 0.5, 0.5]] * 2))
    assert (rotated - images).abs().mean() > 0.05
    whole = RandomTransforms(pad=2, jitter=3.0, keep_size=False).apply(images, centre)
    assert whole.shape == (2, 3, 14, 16)
    torch.testing.assert_close(whole[..., 2:-2, 2:-2], images, atol=1e-5, rtol=0)
    draws = transforms.sample([torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)], steps=5)
    alone = transforms.sample([torch.Generator().manual_seed(2)], steps=5)
    assert draws.shape == (2, 5, 4) and torch.equal(draws[1], alone[0])
    standard = RandomTransforms.standard(224)
    assert (standard.pad, standard.jitter, standard.degrees) == (11, 11.0, 10.0)
    assert RandomTransforms(pad=3).is_identity and not RandomTransforms(pad=3, keep_size=False).is_identity
