"""Benchmark: what turning the ``separability`` snapshot on adds to the ``embedding`` snapshot it runs with.

Target (issue 17 section 1): at most 5% of the embedding snapshot's time. Both snapshots run as the
callback runs them by default on the example CNN (``SmallVGG(width=32)``, the example's default
``--embedding-images 500`` held-out shapes images, t-SNE, top examples of the default activation
layers; separability at its default layers: every stage output and the classifier's input). The
layers come from a ``CNNVizCallback`` built at the defaults, so the figures are the callback's.

The callback gives the background snapshots due at a step one copy of the weights, and the
separability pass over the embedding probe hands the embedding snapshot its codes and predictions
(``snapshots/shared_pass.py``). So three things are timed, each on a fresh copy as the callback
makes one per step: the embedding alone (separability off), separability then embedding on one
copy (both on), and separability alone. The added cost is (both - embedding alone) / embedding
alone. Rounds alternate the order for ``--repeats`` rounds (after a warm-up: the first t-SNE starts
from scratch, later ones from the previous map, as in training); medians of wall time and CPU time
(``time.process_time``, the steadier figure on a shared machine) are printed.

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

    def run(names: tuple[str, ...]) -> tuple[float, float]:
        copy = detached_copy(config.base)
        wall, cpu = time.perf_counter(), time.process_time()
        for name in names:
            inputs = snapshots.Inputs(
                model=copy,
                layers=same_layers(copy, config.layers[name]),
                images=images,
                labels=labels,
                settings=config.settings[name],
                state=state if name == "embedding" else None,
            )
            getattr(snapshots, name)(inputs)
        return time.perf_counter() - wall, time.process_time() - cpu

    cases = {
        "embedding alone": ("embedding",),
        "separability + embedding": ("separability", "embedding"),
        "separability alone": ("separability",),
    }
    for names in cases.values():
        run(names)  # warm-up: the first t-SNE starts from scratch
    times: dict[str, list[tuple[float, float]]] = {case: [] for case in cases}
    order = list(cases)
    for round_ in range(args.repeats):
        for case in order if round_ % 2 == 0 else order[::-1]:
            times[case].append(run(cases[case]))
    medians = {case: [statistics.median(t[i] for t in times[case]) for i in (0, 1)] for case in cases}
    print(f"SmallVGG(width={args.width}), {args.images} embedding-probe images, {args.threads} thread(s)")
    print(f"separability layers: {[name for name, _ in config.layers['separability']]}")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    for case in cases:
        wall, cpu = medians[case]
        print(
            f"{case:>25}: wall {wall * 1000:8.1f} ms   cpu {cpu * 1000:8.1f} ms   (median of {args.repeats})"
        )
    alone, both = medians["embedding alone"], medians["separability + embedding"]
    added = [(both[i] - alone[i]) / alone[i] for i in (0, 1)]
    print(
        f"added by separability: wall {added[0]:.1%}, cpu {added[1]:.1%} of the embedding snapshot (target <= 5%)"
    )


if __name__ == "__main__":
    main()
