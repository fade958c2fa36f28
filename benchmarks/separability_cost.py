"""Benchmark: the ``separability`` snapshot against the ``embedding`` snapshot it is scheduled with.

Target (issue 17 section 1): at most 5% of the embedding snapshot's time. Both snapshots run as the
callback runs them by default on the example CNN (``SmallVGG(width=32)``, the example's default
``--embedding-images 500`` held-out shapes images, t-SNE, top examples of the default activation
layers; separability at its default layers: every stage output and the classifier's input), each
on its own copy of the weights as the background worker does. The layers come from a
``CNNVizCallback`` built at the defaults, so the figures are the callback's.

The two are timed in alternating order for ``--repeats`` rounds (after one warm-up round each: the
first t-SNE starts from scratch, later ones start from the previous map, as in training) and medians
of wall time and CPU time are printed, with the ratio. On a machine shared with other work the CPU
time (``time.process_time``) is the steadier figure.

    .venv/bin/python benchmarks/separability_cost.py [--images 500] [--width 32] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tb_cnnviz import snapshots  # noqa: E402
from tb_cnnviz.callbacks import CNNVizCallback  # noqa: E402
from tb_cnnviz.callbacks.background import detached_copy, same_layers  # noqa: E402
from tb_cnnviz.datasets import ShapesDataset  # noqa: E402
from tb_cnnviz.models import small_vgg  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--images", type=int, default=500, help="embedding probe images (the example's default)"
    )
    parser.add_argument("--width", type=int, default=32, help="SmallVGG width (the example's default)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = small_vgg(width=args.width)
    images, labels = ShapesDataset(args.images, seed=1).tensors()
    with tempfile.TemporaryDirectory() as logdir:
        viz = CNNVizCallback(model, log_dir=logdir, embedding_probe=(images, labels), background=False)
        config = viz.config
        viz.close()
    state = snapshots.new_state("embedding")

    def run(name: str) -> tuple[float, float]:
        copy = detached_copy(config.base)
        inputs = snapshots.Inputs(
            model=copy,
            layers=same_layers(copy, config.layers[name]),
            images=images,
            labels=labels,
            settings=config.settings[name],
            state=state if name == "embedding" else None,
        )
        wall, cpu = time.perf_counter(), time.process_time()
        getattr(snapshots, name)(inputs)
        return time.perf_counter() - wall, time.process_time() - cpu

    names = ("embedding", "separability")
    for name in names:
        run(name)  # warm-up: the first t-SNE starts from scratch
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_ in range(args.repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            times[name].append(run(name))
    medians = {name: [statistics.median(t[i] for t in times[name]) for i in (0, 1)] for name in names}
    print(f"SmallVGG(width={args.width}), {args.images} embedding-probe images, {args.threads} thread(s)")
    print(f"separability layers: {[name for name, _ in config.layers['separability']]}")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    for name in names:
        wall, cpu = medians[name]
        print(
            f"{name:>13}: wall {wall * 1000:8.1f} ms   cpu {cpu * 1000:8.1f} ms   (median of {args.repeats})"
        )
    wall_ratio = medians["separability"][0] / medians["embedding"][0]
    cpu_ratio = medians["separability"][1] / medians["embedding"][1]
    print(f"separability / embedding: wall {wall_ratio:.1%}, cpu {cpu_ratio:.1%} (target <= 5%)")


if __name__ == "__main__":
    main()
