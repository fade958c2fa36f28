"""Overhead of CNNVizCallback with default settings on the example CNN (target: at most 3%).

Trains the example SmallVGG on the shapes dataset for a fixed number of steps with and
without the callback, alternating A/B/A/B in fresh subprocesses (so memory and caches
do not carry over), and prints the median ratios of CPU time (user+sys: steadier than
wall time on a shared machine) and of wall time, and the peak extra memory (max RSS).

    python benchmarks/overhead.py [--steps 400] [--repeats 3] [--width 32]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def child(steps: int, width: int, batch_size: int, with_callback: bool, logdir: str) -> dict:
    import torch
    from torch import nn

    from tb_cnnviz.callbacks import CNNVizCallback
    from tb_cnnviz.datasets import ShapesDataset
    from tb_cnnviz.models import small_vgg

    torch.manual_seed(0)
    images, labels = ShapesDataset(4096, seed=0).tensors()
    model = small_vgg(width=width)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    viz = CNNVizCallback(model, log_dir=logdir, probe=(images[:8], labels[:8])) if with_callback else None
    generator = torch.Generator().manual_seed(0)
    model.train()

    def step(index: int) -> None:
        batch = torch.randint(0, len(images), (batch_size,), generator=generator)
        loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if viz is not None:
            viz.on_step_end(index)

    for index in range(5):  # warm-up, not timed
        step(index)
    start_wall, start_cpu = time.perf_counter(), _cpu()
    for index in range(5, 5 + steps):
        step(index)
    if viz is not None:
        viz.close()
    return {
        "wall": time.perf_counter() - start_wall,
        "cpu": _cpu() - start_cpu,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=400, help="timed training steps per run (default logs at 100/200 steps)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--child", choices=("with", "without"), help=argparse.SUPPRESS)
    parser.add_argument("--logdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.steps, args.width, args.batch_size, args.child == "with", args.logdir)))
        return

    results: dict[str, list[dict]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for variant in ("without", "with"):  # A/B alternating
                command = [
                    sys.executable,
                    __file__,
                    "--child",
                    variant,
                    "--steps",
                    str(args.steps),
                    "--width",
                    str(args.width),
                    "--batch-size",
                    str(args.batch_size),
                    "--logdir",
                    os.path.join(tmp, f"{variant}-{repeat}"),
                ]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                results[variant].append(json.loads(output.strip().splitlines()[-1]))
                run = results[variant][-1]
                print(
                    f"repeat {repeat + 1} {variant:>7} callback: cpu {run['cpu']:.2f} s  wall {run['wall']:.2f} s  max rss {run['max_rss_mb']:.0f} MB",
                    flush=True,
                )

    def ratio(key: str) -> float:
        return statistics.median(w[key] / wo[key] for w, wo in zip(results["with"], results["without"]))

    extra_memory = statistics.median(
        w["max_rss_mb"] - wo["max_rss_mb"] for w, wo in zip(results["with"], results["without"])
    )
    print(
        f"\nSmallVGG(width={args.width}), batch {args.batch_size}, {args.steps} steps, {args.repeats} A/B repeats, default settings"
    )
    print(
        f"median CPU-time ratio  with/without: {ratio('cpu'):.3f}  (overhead {100 * (ratio('cpu') - 1):+.1f}%, target <= +3%)"
    )
    print(
        f"median wall-time ratio with/without: {ratio('wall'):.3f}  (overhead {100 * (ratio('wall') - 1):+.1f}%)"
    )
    print(f"median peak extra memory (max RSS):  {extra_memory:+.0f} MB")


if __name__ == "__main__":
    main()
