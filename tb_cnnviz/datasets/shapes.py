"""A procedurally generated 32x32 "shapes" dataset: 10 classes of coloured shapes on textured backgrounds.

Why: the example and the tests need real images with known ground truth on a machine
with no internet. Each image is a deterministic function of ``(seed, index)``, so any
subset can be rebuilt exactly; each object's bounding box is kept so localisation
methods (Grad-CAM pointing game, occlusion) can be checked against it.

Colour and position are random and independent of the class: only the shape tells
the classes apart, so a network has to learn shape filters.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

CLASSES = ("circle", "square", "triangle", "diamond", "cross", "star", "ring", "hexagon", "bar", "arrow")
IMAGE_SIZE = 32
_SUPERSAMPLE = 4


def _polygon(kind: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Vertices of a polygonal class centred at (cx, cy) with radius r (supersampled pixels)."""
    if kind == "square":
        s = r * 0.82
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if kind == "triangle":
        return [
            (cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
        ]
    if kind == "diamond":
        return [(cx, cy - r), (cx + r * 0.8, cy), (cx, cy + r), (cx - r * 0.8, cy)]
    if kind == "hexagon":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.arange(6) * math.pi / 3]
    if kind == "star":
        points = []
        for i in range(10):
            radius = r if i % 2 == 0 else r * 0.42
            angle = -math.pi / 2 + i * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        return points
    if kind == "cross":
        a, b = r, r * 0.32
        return [
            (cx - b, cy - a),
            (cx + b, cy - a),
            (cx + b, cy - b),
            (cx + a, cy - b),
            (cx + a, cy + b),
            (cx + b, cy + b),
            (cx + b, cy + a),
            (cx - b, cy + a),
            (cx - b, cy + b),
            (cx - a, cy + b),
            (cx - a, cy - b),
            (cx - b, cy - b),
        ]
    if kind == "bar":
        return [
            (cx - r, cy - r * 0.3),
            (cx + r, cy - r * 0.3),
            (cx + r, cy + r * 0.3),
            (cx - r, cy + r * 0.3),
        ]
    if kind == "arrow":
        return [
            (cx - r, cy - r * 0.22),
            (cx + r * 0.1, cy - r * 0.22),
            (cx + r * 0.1, cy - r * 0.7),
            (cx + r, cy),
            (cx + r * 0.1, cy + r * 0.7),
            (cx + r * 0.1, cy + r * 0.22),
            (cx - r, cy + r * 0.22),
        ]
    raise ValueError(kind)


def _object_mask(kind: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] at 32x32, drawn at 4x and box-downsampled."""
    big = IMAGE_SIZE * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    s = _SUPERSAMPLE
    if kind in ("circle", "ring"):
        draw.ellipse([s * (cx - r), s * (cy - r), s * (cx + r), s * (cy + r)], fill=255)
        if kind == "ring":
            inner = r * 0.55
            draw.ellipse([s * (cx - inner), s * (cy - inner), s * (cx + inner), s * (cy + inner)], fill=0)
    else:
        draw.polygon([(s * x, s * y) for x, y in _polygon(kind, cx, cy, r)], fill=255)
    small = canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _background(rng: np.random.Generator) -> np.ndarray:
    """Smooth two-colour noise plus faint stripes, float [32, 32, 3] in [0, 1]."""
    coarse = rng.random((4, 4)).astype(np.float32)
    smooth = (
        np.asarray(
            Image.fromarray((coarse * 255).astype(np.uint8)).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR),
            np.float32,
        )
        / 255
    )
    colour_a, colour_b = rng.uniform(0.1, 0.6, size=(2, 3)).astype(np.float32)
    texture = smooth[..., None] * colour_a + (1 - smooth[..., None]) * colour_b
    angle, frequency, phase = rng.uniform(0, math.pi), rng.uniform(0.3, 1.2), rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    stripes = np.sin(frequency * (xx * math.cos(angle) + yy * math.sin(angle)) + phase)
    return np.clip(texture + 0.06 * stripes[..., None], 0, 1)


def render(seed: int, index: int) -> tuple[np.ndarray, int, tuple[int, int, int, int]]:
    """Image ``index`` of the dataset with ``seed``: (uint8 [32, 32, 3], label, box (x0, y0, x1, y1), ends exclusive)."""
    rng = np.random.default_rng([seed, index])
    label = int(rng.integers(len(CLASSES)))
    radius = rng.uniform(6.0, 10.0)
    cx, cy = rng.uniform(radius + 1, IMAGE_SIZE - radius - 1, size=2)
    coverage = _object_mask(CLASSES[label], cx, cy, radius)
    background = _background(rng)
    # A saturated colour far from the background's mean, so the object is always visible.
    hue = rng.uniform(0, 1)
    colour = np.array([abs(((hue * 6 + shift) % 6) - 3) - 1 for shift in (0, 4, 2)], np.float32).clip(0, 1)
    colour = 0.35 + 0.65 * colour if background.mean() < 0.45 else 0.65 * colour
    image = background * (1 - coverage[..., None]) + colour * coverage[..., None]
    ys, xs = np.nonzero(coverage > 0.5)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return (image * 255 + 0.5).astype(np.uint8), label, box


@functools.lru_cache(maxsize=8)
def _generate(size: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = np.empty((size, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    labels = np.empty(size, np.int64)
    boxes = np.empty((size, 4), np.int64)
    for index in range(size):
        images[index], labels[index], boxes[index] = render(seed, index)
    for array in (images, labels, boxes):
        array.setflags(write=False)
    return images, labels, boxes


class ShapesDataset(Dataset):
    """``size`` images generated from ``seed`` (use different seeds for train and test splits).

    ``dataset[i]`` is ``(float tensor [3, 32, 32] in [0, 1], label)``; ``images`` (uint8
    NHWC), ``labels`` and ``boxes`` (``[N, 4]`` as x0, y0, x1, y1 with exclusive ends)
    hold everything as numpy arrays; :meth:`tensors` gives a whole batch at once.
    """

    classes = CLASSES

    def __init__(self, size: int = 10000, seed: int = 0, transform=None):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size: expected a positive int, got {size!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
        self.size, self.seed, self.transform = size, seed, transform
        self.images, self.labels, self.boxes = _generate(size, seed)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        image = torch.from_numpy(np.array(self.images[index])).permute(2, 0, 1).float().div_(255)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    def tensors(self, indices=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images float [N, 3, 32, 32] in [0, 1], labels long [N])`` for ``indices`` (default: all)."""
        select = slice(None) if indices is None else np.asarray(indices)
        images = torch.from_numpy(np.array(self.images[select])).permute(0, 3, 1, 2).float().div_(255)
        return images, torch.from_numpy(np.array(self.labels[select]))
