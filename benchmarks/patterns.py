"""Benchmark: all 64 filters of a VGG-style layer, 64 optimisation steps each.

Compares, on one run:
- sequential: Chollet's recipe (docs/design.md, Sources), one filter at a time (batch of 1),
  plain RMS-normalised pixel ascent through the network sliced after the layer, parameters frozen;
- batched pixel: ``filter_patterns(param="pixel")``, the same algorithm, all filters in one batch;
- batched fourier: ``filter_patterns()`` with its defaults (Fourier parametrisation, random
  transforms, Adam);
- the floor: steps x (forward + input-gradient backward of the truncated network on the same
  batch of 64 images at the same size), measured directly next to each batched method.

The machine may be shared, so the methods are run in alternating order for ``--repeats``
rounds and medians are reported.

    .venv/bin/python benchmarks/patterns.py [--size 32] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tb_cnnviz.analysis.patterns import filter_patterns
from tb_cnnviz.models import small_vgg

LAYER = "features.conv4"  # SmallVGG(width=32): conv3 and conv4 have 64 channels; conv4 is followed by bn4


def build_model(width: int) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = small_vgg(width=width)
    return model.eval()


def truncated_slice(model: torch.nn.Module, layer: str) -> torch.nn.Module:
    """The network up to and including the layer's BatchNorm, as a plain user would slice it."""
    short = layer.split(".")[-1]
    names = list(model.features._modules)
    stop = names.index(short.replace("conv", "bn")) + 1
    return torch.nn.Sequential(*[model.features._modules[n] for n in names[:stop]])


def sequential(net: torch.nn.Module, channels: int, size: int, steps: int, lr: float = 0.01) -> None:
    """Chollet's recipe: for each filter, 'x += lr * g / rms(g)' on one image, ``steps`` times."""
    generator = torch.Generator().manual_seed(0)
    for channel in range(channels):
        x = 0.5 + (20 / 255) * (torch.rand((1, 3, size, size), generator=generator) - 0.5)
        for _ in range(steps):
            x.requires_grad_(True)
            loss = net(x)[0, channel].mean()
            (grad,) = torch.autograd.grad(loss, [x])
            with torch.no_grad():
                x = (x + lr * grad / (grad.pow(2).mean().sqrt() + 1e-12)).clamp(0, 1)


def floor(net: torch.nn.Module, channels: int, side: int, steps: int) -> None:
    """``steps`` x (forward + input-gradient backward of ``net`` on a batch of ``channels`` images)."""
    x = torch.rand((channels, 3, side, side), generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    index = torch.arange(channels)
    for _ in range(steps):
        out = net(x)
        torch.autograd.grad(out[index, index].mean(dim=(1, 2)).sum(), [x])


def batched(model, param: str, size: int, steps: int) -> None:
    filter_patterns(model, LAYER, size=size, steps=steps, param=param)


def timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build_model(args.width)
    net = truncated_slice(model, LAYER)
    for p in net.parameters():
        p.requires_grad_(False)
    channels = dict(model.named_modules())[LAYER].out_channels

    runs = {
        "sequential (Chollet's recipe, batch 1)": lambda: sequential(net, channels, args.size, args.steps),
        "batched pixel": lambda: batched(model, "pixel", args.size, args.steps),
        "batched fourier (default)": lambda: batched(model, "fourier", args.size, args.steps),
        "floor (next to pixel)": lambda: floor(net, channels, args.size, args.steps),
        "floor (next to fourier)": lambda: floor(net, channels, args.size, args.steps),
    }
    names = list(runs)
    seq, pixel, fourier, floor_pixel, floor_fourier = names
    pairs = [(pixel, floor_pixel), (fourier, floor_fourier)]
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    batched(model, "fourier", args.size, 2)  # warm-up (allocator, thread pool)

    def measure(name: str, repeat: int) -> None:
        w, c = timed(runs[name])
        wall[name].append(w)
        cpu[name].append(c)
        print(f"  round {repeat + 1}: {name}: {w:.2f} s wall, {c:.2f} s cpu", flush=True)

    # Each batched method runs right next to its floor (A B, then B A in the next round), so the
    # per-round ratio sees the same machine load; sequential alternates between first and last.
    for repeat in range(args.repeats):
        flip = repeat % 2 == 1
        if not flip:
            measure(seq, repeat)
        for pair in reversed(pairs) if flip else pairs:
            for name in reversed(pair) if flip else pair:
                measure(name, repeat)
        if flip:
            measure(seq, repeat)

    print(
        f"\nfilter patterns: SmallVGG(width={args.width}) {LAYER} ({channels} filters), {args.size} px, "
        f"{args.steps} steps, {torch.get_num_threads()} threads, median of {args.repeats} alternating rounds"
    )
    floors = dict(pairs)
    for label, times in (("wall-clock", wall), ("process CPU time", cpu)):
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"[{label}]")
        print(
            f"{'method':<32}{'median (s)':>11}{'vs sequential':>16}{'x floor':>9}{'x floor/round':>15}   all rounds (s)"
        )
        for name in names:
            rounds = " ".join(f"{t:.1f}" for t in times[name])
            speedup = f"{median[seq] / median[name]:.2f}x faster" if name in floors else ""
            vs_floor = f"{median[name] / median[floors[name]]:.2f}" if name in floors else ""
            per_round = (
                f"{statistics.median(a / b for a, b in zip(times[name], times[floors[name]])):.2f}"
                if name in floors
                else ""
            )
            print(f"{name:<32}{median[name]:>11.2f}{speedup:>16}{vs_floor:>9}{per_round:>15}   {rounds}")
    print(
        "targets: batched >= 1.2x faster than sequential; batched <= 1.3x its floor (the random transforms\n"
        "output a window of the requested size, so both methods feed the network the same batch);\n"
        "'x floor/round' is the median over rounds of the ratio to the floor measured next to it."
    )


if __name__ == "__main__":
    main()
