"""Deletion and insertion curves (RISE) with the seeded random-map baseline: properties by construction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from attribution_support import leaves_untouched, seeded_images, seeded_small_vgg
from torch import nn

from tb_cnnviz.analysis.cam import grad_cam
from tb_cnnviz.analysis.faithfulness import auc, blurred, curves, faithfulness, random_maps
from tb_cnnviz.models import small_vgg

PARITY_ATOL = 1e-12  # float64: batched and one-image forwards differ only by summation order
SIZE = 16
REGION = (slice(4, 8), slice(8, 12))  # rows, columns of the region the hand-built class score reads


class RegionScore(nn.Module):
    """Class 0's score is ``gain`` x the mean of the image over ``REGION`` (every channel); class 1's is 0.

    Its probability depends on the region's pixels only and grows with each of them, so a map
    that ranks the region first removes the evidence fastest, by construction.
    """

    def __init__(self, gain: float = 8.0):
        super().__init__()
        self.gain = gain
        self.conv = nn.Conv2d(1, 1, 1)  # a conv layer for Grad-CAM; identity weights
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.conv.bias.zero_()

    def forward(self, x):
        region = self.conv(x.mean(1, keepdim=True))[:, 0, REGION[0], REGION[1]]
        score = self.gain * region.mean(dim=(1, 2))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def region_images(count: int = 3) -> torch.Tensor:
    """Dark images (values in [0, 0.1)) with the region bright (1): blurring or removing it lowers class 0."""
    images = seeded_images(count, channels=3, size=SIZE, seed=4).double() * 0.1
    images[:, :, REGION[0], REGION[1]] = 1.0
    return images


def region_map(count: int, native: int = 4) -> torch.Tensor:
    """A map at ``native`` x ``native`` (a quarter of the image side) that is high on the region only."""
    full = torch.zeros(count, SIZE, SIZE, dtype=torch.float64)
    full[:, REGION[0], REGION[1]] = 1.0
    return F.adaptive_avg_pool2d(full[:, None], native)[:, 0]


def test_auc_of_a_constant_curve_is_the_constant():
    fractions = torch.tensor([0.0, 0.1, 0.35, 0.5, 1.0], dtype=torch.float64)  # uneven steps too
    curve = torch.full((2, 3, 5), 0.37, dtype=torch.float64)
    assert torch.allclose(auc(curve, fractions), torch.full((2, 3), 0.37, dtype=torch.float64), atol=1e-15)
    # and a linear one is exact under the trapezoid rule: the area under 1 - f is 1/2
    assert auc(1 - fractions, fractions).item() == pytest.approx(0.5, abs=1e-15)


def test_seeded_random_map_is_deterministic_and_seed_dependent():
    with leaves_untouched():  # the global generators: drawn from its own generator
        first, again, other = (
            random_maps((3, 4, 5), seed=7),
            random_maps((3, 4, 5), seed=7),
            random_maps((3, 4, 5), 8),
        )
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.dtype == torch.float64 and first.min() >= 0 and first.max() < 1


def test_blur_keeps_constants_and_smooths_edges():
    constant = torch.full((1, 3, 8, 8), 0.25, dtype=torch.float64)
    assert torch.allclose(blurred(constant), constant, atol=1e-15)  # weights sum to 1, edges replicated
    images = region_images(1)
    smooth = blurred(images)
    assert smooth[:, :, REGION[0], REGION[1]].mean() < 0.9  # the bright square bled into the dark
    assert smooth.mean().item() == pytest.approx(images.mean().item(), abs=0.02)
    with pytest.raises(ValueError, match="sigma"):
        blurred(images, sigma=0)


def test_region_map_beats_random_and_inverted_map_is_worse_than_random():
    images = region_images(3)
    model = RegionScore().double()
    cam = region_map(3)
    inverted = cam.amax(dim=(1, 2), keepdim=True) - cam
    random = random_maps(cam.shape, seed=0)
    result = curves(
        model, images, torch.stack([cam, random, inverted], dim=1), target=torch.zeros(3, dtype=torch.long)
    )
    deletion, insertion = result.deletion_auc, result.insertion_auc  # [N, 3]: cam, random, inverted
    assert (deletion[:, 0] < deletion[:, 1]).all() and (deletion[:, 1] < deletion[:, 2]).all()
    assert (insertion[:, 0] > insertion[:, 1]).all() and (insertion[:, 1] > insertion[:, 2]).all()
    # endpoints: the original image, then the blurred one, shared by every curve
    assert torch.equal(result.deletion[:, :, 0], result.insertion[:, :, -1])
    assert torch.equal(result.deletion[:, :, -1], result.insertion[:, :, 0])
    # the region is the top 1/16 of the pixels, exactly the first step: gone after one step
    assert result.fractions[1].item() == pytest.approx(1 / 16)
    assert torch.allclose(result.deletion[:, 0, 1:], result.deletion[:, 0, -1:].expand(-1, 16), atol=1e-12)
    # faithfulness() scores the same CAM against the same seeded random map
    scored = faithfulness(model, images, cam, torch.zeros(3, dtype=torch.long), seed=0)
    assert torch.allclose(scored.deletion_auc, deletion[:, :2], atol=PARITY_ATOL)
    assert (scored.deletion_gap > 0).all() and (scored.insertion_gap > 0).all()


class DenseRegionScore(RegionScore):
    """Dense class scores ``[N, 2, H, W]``: class 0 scores ``gain`` x the image inside ``REGION``, 0 elsewhere."""

    def forward(self, x):
        inside = torch.zeros(x.shape[-2:], dtype=x.dtype, device=x.device)
        inside[REGION] = 1.0
        score = self.gain * self.conv(x.mean(1, keepdim=True))[:, 0] * inside
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def test_dense_scores_use_the_probability_averaged_over_pixels():
    images = region_images(2)
    cam = region_map(2)
    maps = torch.stack([cam, random_maps(cam.shape, seed=0), cam.amax(dim=(1, 2), keepdim=True) - cam], 1)
    result = curves(DenseRegionScore().double(), images, maps, target=torch.zeros(2, dtype=torch.long))
    deletion = result.deletion_auc
    assert (deletion[:, 0] < deletion[:, 1]).all() and (deletion[:, 1] < deletion[:, 2]).all()
    # at the start: the mean over pixels of the per-pixel softmax, 1/2 outside the region
    inside = torch.sigmoid(8.0 * images[:, :, REGION[0], REGION[1]].mean(1)).mean(dim=(1, 2))
    share = 16 / SIZE**2
    expected = share * inside + (1 - share) * 0.5
    assert torch.allclose(result.deletion[:, 0, 0], expected, atol=1e-12)


def test_batched_equals_per_image_float64():
    model = seeded_small_vgg().double()
    images = seeded_images(3, size=32, seed=3).double()
    maps = torch.stack([random_maps((3, 8, 8), seed=11), random_maps((3, 8, 8), seed=12)], dim=1)
    batched = curves(model, images, maps, steps=8, batch_size=40)
    for i in range(3):
        alone = curves(model, images[i : i + 1], maps[i : i + 1], steps=8, batch_size=1)
        assert torch.equal(alone.target, batched.target[i : i + 1])
        assert torch.allclose(alone.deletion, batched.deletion[i : i + 1], atol=PARITY_ATOL, rtol=0)
        assert torch.allclose(alone.insertion, batched.insertion[i : i + 1], atol=PARITY_ATOL, rtol=0)
    # and against a direct computation of one point: image 1, map 0, deletion after 3 of 8 steps
    upsampled = F.interpolate(maps[1:2, :1], size=(32, 32), mode="bilinear", align_corners=False).flatten()
    top = torch.zeros(32 * 32, dtype=torch.bool)
    top[upsampled.argsort(descending=True)[: round(3 * 1024 / 8)]] = True  # random maps: no ties
    masked = torch.where(top.view(1, 1, 32, 32), blurred(images[1:2]), images[1:2])
    with torch.no_grad():
        expected = torch.softmax(model(masked), 1)[0, batched.target[1]]
    assert batched.deletion[1, 0, 3].item() == pytest.approx(expected.item(), abs=PARITY_ATOL)


def test_training_state_and_global_rng_untouched():
    model = seeded_small_vgg().train()
    images = seeded_images(2, size=32)
    cam = grad_cam(model, "features.relu5", images)
    with leaves_untouched(model):
        faithfulness(model, images, F.adaptive_avg_pool2d(cam[:, None], 8)[:, 0], steps=4)


def test_clear_errors():
    model, images = RegionScore(), region_images(2).float()
    with pytest.raises(ValueError, match=r"maps: expected one or more maps per image \(\[2, M, h, w\]\)"):
        curves(model, images, torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="steps: expected an int >= 1, got 0"):
        curves(model, images, torch.zeros(2, 4, 4), steps=0)
    with pytest.raises(ValueError, match=r"target: class indices must be in 0\.\.1"):
        curves(model, images, torch.zeros(2, 4, 4), target=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"cam: expected maps \[N, h, w\]"):
        faithfulness(model, images, torch.zeros(2, 1, 4, 4))


def test_trained_example_cam_beats_random_its_inverse_loses_and_the_gap_grew(trained_small_vgg, shapes_test):
    """The trained example CNN (tests/conftest.py) on 64 held-out images, at its default Grad-CAM layer."""
    images, labels = shapes_test.tensors(range(64))

    def scores(model):
        native = grad_cam(model, "features", images, labels, return_details=True).native.double()
        inverted = native.amax(dim=(1, 2), keepdim=True) - native
        maps = torch.stack([native, random_maps(native.shape, seed=0), inverted], dim=1)
        return curves(model, images, maps, labels)

    trained = scores(trained_small_vgg)
    deletion, insertion = trained.deletion_auc, trained.insertion_auc  # [64, 3]: CAM, random, inverted
    # CAM deletion area below the random map's: measured on 0.875-0.953 of the images over training seeds
    # 0-4 x {1, 2} threads (mean areas CAM 0.34-0.52, random 0.65-0.74)
    assert (deletion[:, 0] < deletion[:, 1]).double().mean() >= 0.75
    # the deliberately wrong map (the inverted CAM) scores worse than random: measured on 0.953-0.984
    assert (deletion[:, 2] > deletion[:, 1]).double().mean() >= 0.75
    # and the CAM's insertion area above the random map's: measured on 0.953-1.0 (areas 0.92 vs 0.68-0.74)
    assert (insertion[:, 0] > insertion[:, 1]).double().mean() >= 0.75
    # the mean deletion gap grew over training from ~0 (untrained, same architecture and seed)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = small_vgg(width=trained_small_vgg.features.conv1.out_channels).eval()
    before = scores(untrained).deletion_auc
    gap_before = (before[:, 1] - before[:, 0]).mean().item()
    gap_after = (deletion[:, 1] - deletion[:, 0]).mean().item()
    # measured: untrained |gap| < 5e-5 (every probability ~0.1 whatever is removed), trained 0.20-0.32
    assert abs(gap_before) < 0.01 and gap_after > 0.1
