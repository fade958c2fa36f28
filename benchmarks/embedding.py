"""Benchmark: our ``tsne`` (openTSNE, PCA to 50 dims, PCA initialisation) against scikit-learn's ``TSNE``.

Prints, in one run, the wall time and the quality of both on the same 10,000 x 512
features. Targets (docs/design.md, Performance targets): at least 1.5x faster than
scikit-learn at equal or better kNN preservation, and 10,000 points in under 60 s, on 2 cores.

The data: clustered features shaped like CNN codes, a Gaussian mixture of 10 classes,
each class 3 sub-clusters (modes) in a 32-D latent space (centre spread 0.6, mode spread
0.35, unit noise, so classes overlap a little), mapped to 512-D by a fixed random
matrix, passed through a ReLU (codes after a ReLU are non-negative and sparse) and given
isotropic noise of 0.05. Seeded, so every run sees the same data.

Quality: ``knn_preservation`` (the fraction of each point's 10 nearest neighbours in
512-D that stay among its 10 nearest in 2-D; exact neighbours) and 5-NN accuracy of the
class labels in 2-D (against the same in 512-D).

    .venv/bin/python benchmarks/embedding.py                   # 10,000 points, both libraries
    .venv/bin/python benchmarks/embedding.py --points 2000 --skip-sklearn
    .venv/bin/python benchmarks/embedding.py --n-jobs 1 2      # our tsne with 1 and with 2 threads

Wall times on a machine shared with other work vary; the script prints the load average
and each method's CPU time (all threads; ``time.process_time``), which contention
inflates much less, so a reader can judge. scikit-learn is an optional import (``pip install scikit-learn``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tb_cnnviz.analysis.projection import knn_accuracy, nearest_neighbors, neighbor_overlap, tsne  # noqa: E402


def clustered_features(
    points: int = 10_000, width: int = 512, classes: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """CNN-code-like features [points, width] float32 and their class labels (see the module docstring)."""
    rng = np.random.default_rng(seed)
    latent, modes = 32, 3
    # Centres close enough that classes overlap a little (5-NN accuracy about 0.9 in 512-D, not 1.0),
    # so the quality scores can tell the methods apart.
    class_centres = rng.normal(0.0, 0.6, (classes, latent))
    mode_offsets = rng.normal(0.0, 0.35, (classes, modes, latent))
    labels = rng.integers(0, classes, points)
    mode = rng.integers(0, modes, points)
    codes = class_centres[labels] + mode_offsets[labels, mode] + rng.normal(0.0, 1.0, (points, latent))
    mixing = rng.normal(0.0, 1.0 / np.sqrt(latent), (latent, width))
    features = np.maximum(codes @ mixing, 0.0) + rng.normal(0.0, 0.05, (points, width))
    return features.astype(np.float32), labels


def scores(layout: np.ndarray, high_neighbors: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    low_neighbors = nearest_neighbors(layout, high_neighbors.shape[1])
    return neighbor_overlap(high_neighbors, low_neighbors), knn_accuracy(layout, labels, k=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument(
        "--n-jobs", type=int, nargs="+", default=[2], help="thread counts to time our tsne with"
    )
    parser.add_argument("--sklearn-jobs", type=int, default=2)
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    features, labels = clustered_features(args.points, args.width, seed=args.seed)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"data: {features.shape[0]} x {features.shape[1]} Gaussian-mixture CNN-like codes, 10 classes; "
        f"{cores} cores visible, load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    started = time.perf_counter()
    high_neighbors = nearest_neighbors(features, 10)
    print(
        f"exact 10-NN in {args.width}-D (for scoring): {time.perf_counter() - started:.1f} s; "
        f"5-NN accuracy in {args.width}-D: {knn_accuracy(features, labels, k=5):.3f}",
        flush=True,
    )

    rows = []
    for jobs in args.n_jobs:
        started, cpu = time.perf_counter(), time.process_time()
        layout = tsne(features, seed=args.seed, n_jobs=jobs)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        preservation, accuracy = scores(layout, high_neighbors, labels)
        rows.append((f"tb_cnnviz tsne (openTSNE, n_jobs={jobs})", seconds, cpu, preservation, accuracy))
        print(
            f"{rows[-1][0]}: {seconds:.1f} s ({cpu:.1f} CPU s), 10-NN preservation {preservation:.3f}, "
            f"5-NN accuracy {accuracy:.3f}",
            flush=True,
        )

    reference = None
    if not args.skip_sklearn:
        try:
            import sklearn
            from sklearn.manifold import TSNE
        except ImportError:
            print("scikit-learn is not installed: skipping the comparison (pip install scikit-learn)")
        else:
            started, cpu = time.perf_counter(), time.process_time()
            model = TSNE(
                n_components=2,
                perplexity=30.0,
                init="pca",
                learning_rate="auto",
                random_state=args.seed,
                n_jobs=args.sklearn_jobs,
            )
            layout = model.fit_transform(features)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            preservation, accuracy = scores(layout.astype(np.float32), high_neighbors, labels)
            reference = (
                f"scikit-learn {sklearn.__version__} TSNE (Barnes-Hut, n_jobs={args.sklearn_jobs})",
                seconds,
                cpu,
                preservation,
                accuracy,
            )
            rows.append(reference)
            print(
                f"{reference[0]}: {seconds:.1f} s ({cpu:.1f} CPU s), 10-NN preservation {preservation:.3f}, "
                f"5-NN accuracy {accuracy:.3f}",
                flush=True,
            )

    print()
    print(f"{'method':58s} {'wall s':>8s} {'CPU s':>8s} {'10-NN pres.':>12s} {'5-NN acc.':>10s}")
    for name, seconds, cpu, preservation, accuracy in rows:
        print(f"{name:58s} {seconds:8.1f} {cpu:8.1f} {preservation:12.3f} {accuracy:10.3f}")
    ours = [row for row in rows if row[0].startswith("tb_cnnviz")]
    best = min(ours, key=lambda row: row[1])
    print(
        f"\ntarget: {args.points} points in under 60 s: {best[1]:.1f} s -> {'met' if best[1] < 60 else 'NOT met'}"
    )
    if reference is not None:
        speedup = reference[1] / best[1]
        quality = best[3] >= reference[3] - 1e-9
        print(
            f"target: >= 1.5x faster than scikit-learn at equal or better 10-NN preservation: {speedup:.1f}x "
            f"(CPU time {reference[2] / best[2]:.1f}x), preservation {best[3]:.3f} vs {reference[3]:.3f} "
            f"-> {'met' if speedup >= 1.5 and quality else 'NOT met'}"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
