"""Benchmark: which pattern settings give the example a gallery of structured patterns, measured.

Trains the example's CNN (``small_vgg(width=32)`` on the built-in shapes dataset, seeded, one thread)
with the example's recipe (``examples/cifar10/train.py``: SGD lr 0.05 constant, momentum 0.9, weight
decay 5e-4, batch 64, 2 epochs of 157 steps; ``--recipe tests``: ``tests/support.train_small_vgg``'s
cosine decay) and renders the gallery the callback renders (``snapshots.patterns`` ->
``analysis.patterns.filter_patterns``: the first ``pattern_channels`` filters, seed 0, ``size`` = the
probe's 32 px) under a small grid of settings, side by side in one process, in alternating order.
Per setting and layer it reports:

- ``saturated``: fraction of pixel values <= 1/255 or >= 254/255 (a sigmoid driven to its ends);
- ``flat``: fraction of tiles whose pixel standard deviation is below ``FLAT_STD`` (grey or one colour);
- ``failed``: fraction of filters whose pattern reached an activation <= 0 or below the best of 64
  natural shapes images (``analysis.patterns.unit_activations``; the gallery crosses these out);
- ``relative``: median over filters of (activation reached) / (best natural image's);
- ``high_freq``: mean fraction of each tile's spectral energy above 0.25 cycles/pixel
  (``image_params.high_frequency_energy``: about 0.8 for white noise, lower for structure);
- ``seconds``: wall time of the render (median of ``--repeats``), and its ratio to the first setting's.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pattern_defaults.py [--recipe example] [--repeats 1]

The figures and the choice made from them are in docs/patterns.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tb_cnnviz.analysis.image_params import high_frequency_energy  # noqa: E402
from tb_cnnviz.analysis.patterns import filter_patterns, unit_activations  # noqa: E402
from tb_cnnviz.datasets import ShapesDataset  # noqa: E402
from tb_cnnviz.models import small_vgg  # noqa: E402
from tests.support import train_small_vgg  # noqa: E402

FLAT_STD = 0.02  # about 5/255: a tile this flat reads as a uniform square
LAYERS = ("features.conv3", "features.conv5")  # the example's pattern layer, and the deepest conv
CHANNELS = 64  # the callback's default pattern_channels
BASE = {"size": 32, "steps": 64, "param": "fourier", "transforms": "auto", "lr": 0.2}
GRID = {
    "before: lr 0.2, 64 steps": {},
    "example's: lr 0.2, 48 steps": {"steps": 48},
    "lr 0.15": {"lr": 0.15},
    "lr 0.1": {"lr": 0.1},
    "lr 0.1, 80 steps": {"lr": 0.1, "steps": 80},
    "lr 0.05": {"lr": 0.05},
    "lr 0.1, 96 steps": {"lr": 0.1, "steps": 96},
    "lr 0.05, 96 steps": {"lr": 0.05, "steps": 96},
    "lr 0.05, no transforms": {"lr": 0.05, "transforms": "none"},
    "lr 0.2, no transforms": {"transforms": "none"},
    "size 48, lr 0.1": {"size": 48, "lr": 0.1},
    "pixel (lr 0.01, no transforms)": {"param": "pixel", "lr": 0.01},
}


def measure(model, layer: str, settings: dict, best: torch.Tensor) -> dict:
    start = time.perf_counter()
    result = filter_patterns(model, layer, list(range(CHANNELS)), seed=0, return_activations=True, **settings)
    seconds = time.perf_counter() - start
    images, reached = result.images, result.activations
    return {
        "saturated": ((images <= 1 / 255) | (images >= 254 / 255)).float().mean().item(),
        "flat": (images.flatten(1).std(dim=1) < FLAT_STD).float().mean().item(),
        "failed": ((reached <= 0) | (reached < best)).float().mean().item(),
        "relative": (reached / best.clamp_min(1e-6)).median().item(),
        "high_freq": high_frequency_energy(images).mean().item(),
        "seconds": seconds,
    }


def train_like_example(dataset: ShapesDataset, steps: int, seed: int) -> torch.nn.Module:
    """``examples/cifar10/train.py``'s training on one thread: SGD lr 0.05 (constant), momentum 0.9,
    weight decay 5e-4, batches of 64 drawn from a seeded generator."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = small_vgg(num_classes=len(dataset.classes), width=32)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        images, labels = dataset.tensors()
        model.train()
        for _ in range(steps):
            index = torch.randint(0, len(images), (64,), generator=generator)
            loss = torch.nn.functional.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=("example", "tests"), default="example")
    parser.add_argument("--steps-trained", type=int, default=314)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="settings to run (names of GRID; default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    train = ShapesDataset(10000, seed=0)
    if args.recipe == "example":
        model = train_like_example(train, args.steps_trained, args.seed)
    else:
        model = train_small_vgg(train, args.steps_trained, width=32, seed=args.seed)
    probe, probe_labels = ShapesDataset(1000, seed=1).tensors()
    with torch.no_grad():
        accuracy = (model(probe).argmax(1) == probe_labels).float().mean().item()
    print(
        f"trained small_vgg(width=32), {args.recipe} recipe, {args.steps_trained} steps in "
        f"{time.perf_counter() - start:.0f} s: held-out accuracy {accuracy:.3f}",
        flush=True,
    )
    probe = probe[:64]
    grid = {name: GRID[name] for name in (args.only or GRID)}
    rows: dict[tuple[str, str], list[dict]] = {}
    for repeat in range(args.repeats):
        order = list(grid) if repeat % 2 == 0 else list(reversed(grid))
        for name in order:
            for layer in LAYERS:
                best = unit_activations(model, layer, probe)[:, :CHANNELS].amax(dim=0)
                rows.setdefault((name, layer), []).append(measure(model, layer, {**BASE, **grid[name]}, best))
    first = next(iter(grid))
    base_time = {layer: statistics.median(r["seconds"] for r in rows[(first, layer)]) for layer in LAYERS}
    print(
        f"{'setting':34s} {'layer':15s} {'saturated':>9s} {'flat':>6s} {'failed':>7s} {'relative':>8s} "
        f"{'high_freq':>9s} {'time':>12s}"
    )
    for (name, layer), runs in rows.items():
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(
            f"{name:34s} {layer:15s} {med['saturated']:9.3f} {med['flat']:6.3f} {med['failed']:7.3f} "
            f"{med['relative']:8.2f} {med['high_freq']:9.3f} {med['seconds']:6.1f} s "
            f"x{med['seconds'] / base_time[layer]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
