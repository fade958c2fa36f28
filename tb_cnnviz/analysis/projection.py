"""2-D projections of feature vectors (t-SNE, PCA, UMAP) that stay put across training snapshots.

CS231n ("Visualizing what ConvNets learn"): embed the penultimate-layer codes
of many images in 2-D with t-SNE so that images the network finds similar sit together.
Over training the codes change, and an independent t-SNE run per snapshot rotates,
reflects and reshuffles the picture, so a user scrubbing steps sees clusters jump.
:func:`project` keeps successive snapshots comparable in two ways:

1. **initialisation from the previous layout** of the same images (t-SNE and UMAP),
   which keeps the arrangement of the clusters (Kobak & Linderman 2021, "Initialization
   is critical for preserving global data structure in both t-SNE and UMAP", Nat.
   Biotechnol.). For t-SNE the optimisation *continues* from the previous layout at its
   own scale, without a new early-exaggeration phase (see :func:`project` for the
   measurements behind this choice);
2. **orthogonal Procrustes alignment** (Schönemann 1966) of the result onto the previous
   layout: the rotation/reflection ``R``, scale ``s`` and translation ``t`` minimising
   ``||s * (Y - mean Y) R + t - Y_prev||_F``, which removes whatever rigid motion is left.

Everything here works on numpy arrays on the CPU (torch tensors are accepted and copied
to the CPU), draws no number from a global random generator (each method gets its own
seed) and holds no global state, so the training callback can run it on a worker thread.
Do **not** wrap these calls in ``safety.preserved_rng`` from a worker thread: restoring
the global RNG state there would rewind the training thread's random stream.

The t-SNE itself is openTSNE (Poličar, Stražar & Zupan 2024, "openTSNE: a modular
Python library for t-SNE dimensionality reduction and embedding", JSS): repulsive forces by
FFT-accelerated interpolation (Linderman et al. 2019) from 10,000 points, Barnes-Hut below
(openTSNE's choice); the ``3 x perplexity`` nearest neighbours that define the affinities are found exactly
(``tsne_affinities``: a chunked torch matrix product in the PCA-reduced space, cheaper than
openTSNE's Annoy at 50 dimensions, deterministic, and no extra package).

This module holds the drivers (:func:`tsne`, :func:`umap`, :func:`project`) and their argument
checks. PCA and the reduction before t-SNE/UMAP (``principal_components``), the exact neighbours
and affinities (``tsne_affinities``), the Procrustes alignment and disparity
(``layout_alignment``), the neighbourhood scores (``neighbors``) and the input checks
(``point_arrays``) live in their own modules and are re-exported here.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import warnings
from typing import Any, Literal, Optional, Union

import numpy as np

from tb_cnnviz.analysis.layout_alignment import align, disparity
from tb_cnnviz.analysis.neighbors import knn_accuracy, knn_preservation, nearest_neighbors, neighbor_overlap
from tb_cnnviz.analysis.point_arrays import MIN_POINTS, ArrayLike, as_layout, as_points
from tb_cnnviz.analysis.principal_components import PCA_DIMS, pca, reduce_width
from tb_cnnviz.analysis.tsne_affinities import exact_affinities, knn_graph

__all__ = [
    "METHODS",
    "MIN_POINTS",
    "PCA_DIMS",
    "ArrayLike",
    "align",
    "default_n_jobs",
    "disparity",
    "effective_perplexity",
    "knn_accuracy",
    "knn_graph",
    "knn_preservation",
    "nearest_neighbors",
    "neighbor_overlap",
    "pca",
    "project",
    "tsne",
    "umap",
]

Method = Literal["tsne", "pca", "umap"]
METHODS = ("tsne", "pca", "umap")

_INIT_STD = 1e-4
"""Standard deviation of the first axis of a t-SNE initialisation (openTSNE's and Kobak & Berens 2019's choice)."""


# --------------------------------------------------------------------------- input checks


def default_n_jobs() -> int:
    """Threads for t-SNE when the caller does not say: one.

    The projection runs beside training (on a worker thread of the callback), and
    openTSNE's parallel loops synchronise every iteration, so on a busy 2-core machine
    two threads fighting the training process for the cores were measured 3-4x *slower*
    than one (see ``benchmarks/embedding.py``). Pass ``n_jobs=2`` (or more) when the
    machine is otherwise idle, e.g. for an offline ``tb-cnnviz`` run.
    """
    return 1


def _check_n_jobs(n_jobs: Optional[int]) -> int:
    if n_jobs is None:
        return default_n_jobs()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(
            f"n_jobs: expected a positive number of threads, -1 (all cores) or None, got {n_jobs!r}"
        )
    if n_jobs == -1:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return int(n_jobs)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed: expected an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def _require_spread(points: np.ndarray, argument: str) -> None:
    if float(np.ptp(points, axis=0).max()) == 0.0:
        raise ValueError(
            f"{argument}: all {points.shape[0]} rows are identical; there is no structure to project"
        )


# --------------------------------------------------------------------------- t-SNE


def effective_perplexity(perplexity: float, count: int) -> float:
    """The perplexity t-SNE will use for ``count`` points: ``min(perplexity, (count - 1) / 3)``.

    openTSNE looks at ``3 * perplexity`` nearest neighbours per point, so a perplexity
    above ``(N - 1) / 3`` cannot be honoured. We clamp it (and :func:`tsne` warns)
    rather than raise, so a callback with a small probe set keeps working.
    """
    if (
        isinstance(perplexity, bool)
        or not isinstance(perplexity, (int, float, np.integer, np.floating))
        or not perplexity > 0
        or not math.isfinite(perplexity)
    ):
        raise ValueError(f"perplexity: expected a positive finite number, got {perplexity!r}")
    return float(min(float(perplexity), (count - 1) / 3.0))


def _initial_layout(init: Any, reduced: np.ndarray, seed: int) -> np.ndarray:
    """A t-SNE start layout with the first axis at standard deviation 1e-4 (Kobak & Berens 2019)."""
    count = reduced.shape[0]
    if init is None or (isinstance(init, str) and init == "pca"):
        layout = pca(reduced, 2).astype(np.float64)
        # openTSNE's own PCA initialisation adds 1% jitter so that duplicate points separate.
        jitter_scale = 0.01 * max(float(layout[:, 0].std()), 1e-12)
        layout += np.random.default_rng(seed).normal(0.0, jitter_scale, layout.shape)
    elif isinstance(init, str) and init == "random":
        layout = np.random.default_rng(seed).normal(0.0, 1.0, (count, 2))
    elif isinstance(init, str):
        raise ValueError(f"init: expected 'pca', 'random', None or an array [N, 2], got {init!r}")
    else:
        layout = as_layout(init, "init", count).copy()
    spread = float(layout[:, 0].std())
    if spread == 0.0:
        spread = float(layout.std())
    if spread == 0.0:
        raise ValueError(
            "init: all points of the initial layout coincide; expected a layout with some spread"
        )
    return layout * (_INIT_STD / spread)


def tsne(
    features: ArrayLike,
    init: Union[None, str, ArrayLike] = None,
    perplexity: float = 30.0,
    seed: int = 0,
    n_jobs: Optional[int] = None,
    *,
    pca_dims: Optional[int] = PCA_DIMS,
    iterations: int = 375,
    early_exaggeration_iterations: int = 125,
    rescale_init: bool = True,
    neighbors: str = "exact",
    verbose: bool = False,
) -> np.ndarray:
    """t-SNE of ``features`` [N, D] to float32 [N, 2] (van der Maaten & Hinton 2008, via openTSNE).

    Minimises ``KL(P || Q)`` between Gaussian neighbour probabilities ``P`` in feature
    space (bandwidths set by ``perplexity``) and Student-t probabilities ``Q`` in 2-D.

    - Features wider than ``pca_dims`` (default 50) are first reduced by exact PCA
      (:func:`pca`), as in the original paper; ``pca_dims=None`` keeps all dimensions.
    - ``init``: ``None``/``"pca"`` (default: the first two principal components plus
      1% jitter, which preserves global structure), ``"random"``, or a layout [N, 2]
      such as the previous snapshot's. An initialisation is rescaled so its first axis
      has standard deviation 1e-4 (only its shape matters), unless ``rescale_init=False``:
      then an array is used at its own scale, to continue an earlier optimisation (do
      that only with ``early_exaggeration_iterations=0``, as :func:`project` does).
    - ``perplexity`` above ``(N - 1) / 3`` is clamped with a warning (see
      :func:`effective_perplexity`); fewer than 4 points is a ``ValueError``.
    - ``seed`` makes the result deterministic: it seeds the jitter, the random
      initialisation and openTSNE (Annoy neighbour search); runs with the same inputs,
      seed and ``n_jobs`` are bit-identical (checked by the tests).
    - ``n_jobs``: threads; ``None`` means :func:`default_n_jobs` (1, for running beside
      training); ``-1`` means all cores.
    - ``iterations`` after ``early_exaggeration_iterations`` at exaggeration 12: 375 after
      125, two thirds of openTSNE's 500 after 250, at the same quality with its learning rate
      N / 12 (Belkina et al. 2019), measured by ``benchmarks/embedding.py`` on 10,000 x 512 codes:
      10-NN preservation 0.219 either way (0.213 at 250 after 100). At 50,000 points, one
      thread: PCA 0.6, neighbours 13.9, affinities 1.2, then blocks of 125 iterations at 6.9,
      7.3, 8.9 and 11.2 CPU seconds (the FFT grid grows as the map spreads); 55-58 CPU seconds
      in all with scoring excluded. openTSNE's ``ints_in_interval=2`` keeps the grid small
      (49 CPU seconds) but loses neighbourhoods (0.160 against 0.174 at 50,000), so not used.
    - ``neighbors``: ``"exact"`` (default, :func:`knn_graph` on the reduced features) or a
      method of openTSNE's (``"annoy"``, ``"auto"``, ...), passed on.
    """
    points = as_points(features, "features")
    seed = _check_seed(seed)
    threads = _check_n_jobs(n_jobs)
    count = points.shape[0]
    used_perplexity = effective_perplexity(perplexity, count)
    for name, value in (
        ("iterations", iterations),
        ("early_exaggeration_iterations", early_exaggeration_iterations),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    _require_spread(points, "features")
    reduced = reduce_width(points, pca_dims)
    if not rescale_init and init is not None and not isinstance(init, str):
        start = as_layout(init, "init", count)
    else:
        start = _initial_layout(init, reduced, seed)

    if used_perplexity < perplexity:
        warnings.warn(
            f"perplexity: {perplexity:g} is too large for {count} points (t-SNE needs 3 x perplexity neighbours); "
            f"using {used_perplexity:.3g} instead",
            UserWarning,
            stacklevel=2,
        )

    import openTSNE  # imported here so that importing tb_cnnviz.analysis stays cheap

    if not isinstance(neighbors, str):
        raise ValueError(f"neighbors: expected 'exact' or a method name of openTSNE, got {neighbors!r}")
    model = openTSNE.TSNE(
        n_components=2,
        perplexity=used_perplexity,
        n_iter=int(iterations),
        early_exaggeration_iter=int(early_exaggeration_iterations),
        initialization=start,
        neighbors="auto" if neighbors == "exact" else neighbors,
        n_jobs=threads,
        random_state=seed,
        verbose=verbose,
    )
    with _quiet_scale_warning():
        if neighbors == "exact":
            affinities = exact_affinities(
                reduced, used_perplexity, n_jobs=threads, seed=seed, verbose=verbose
            )
            embedding = model.fit(affinities=affinities, initialization=start)
        else:
            embedding = model.fit(reduced)
    return np.asarray(embedding, dtype=np.float32)


class _DropScaleWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Standard deviation of embedding is greater" not in record.getMessage()


@contextlib.contextmanager
def _quiet_scale_warning():
    """Silence openTSNE's warning about a wide initialisation: continuing from a previous layout is deliberate."""
    logger, drop = logging.getLogger("openTSNE.tsne"), _DropScaleWarning()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


# --------------------------------------------------------------------------- UMAP


def umap(
    features: ArrayLike,
    init: Union[None, str, ArrayLike] = None,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    *,
    pca_dims: Optional[int] = PCA_DIMS,
    verbose: bool = False,
) -> np.ndarray:
    """UMAP of ``features`` [N, D] to float32 [N, 2] (McInnes, Healy & Melville 2018), via umap-learn.

    An optional extra: ``pip install 'tb-cnnviz[umap]'``; without it this raises an
    ``ImportError`` that says so. ``init``: ``None``/``"pca"`` (default, the first two
    principal components, deterministic), ``"spectral"``, ``"random"`` or a layout
    [N, 2]. With a fixed ``seed`` umap-learn runs single-threaded (its rule) and is
    reproducible. ``n_neighbors`` is clamped to ``N - 1``.
    """
    points = as_points(features, "features")
    seed = _check_seed(seed)
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 2:
        raise ValueError(f"n_neighbors: expected an integer >= 2, got {n_neighbors!r}")
    _require_spread(points, "features")
    try:
        umap_module = importlib.import_module("umap")
    except ImportError as error:
        raise ImportError(
            "method='umap' needs the optional package umap-learn; install it with pip install 'tb-cnnviz[umap]' "
            "(or use method='tsne' or 'pca')"
        ) from error
    reduced = reduce_width(points, pca_dims)
    count = reduced.shape[0]
    if init is None or (isinstance(init, str) and init == "pca"):
        start: Union[str, np.ndarray] = pca(reduced, 2).astype(np.float64)
    elif isinstance(init, str):
        if init not in ("spectral", "random"):
            raise ValueError(
                f"init: expected 'pca', 'spectral', 'random', None or an array [N, 2], got {init!r}"
            )
        start = init
    else:
        start = as_layout(init, "init", count)
    reducer = umap_module.UMAP(
        n_components=2,
        n_neighbors=int(min(n_neighbors, count - 1)),
        min_dist=float(min_dist),
        init=start,
        random_state=seed,
        n_jobs=1,
        verbose=verbose,
    )
    with warnings.catch_warnings():
        # umap-learn warns that a fixed random_state disables parallelism: that is the point.
        warnings.filterwarnings("ignore", message=".*n_jobs.*overridden.*")
        layout = reducer.fit_transform(reduced)
    return np.asarray(layout, dtype=np.float32)


def project(
    features: ArrayLike,
    method: Method = "tsne",
    previous: Optional[ArrayLike] = None,
    *,
    seed: int = 0,
    n_jobs: Optional[int] = None,
    align_to_previous: bool = True,
    **options: Any,
) -> np.ndarray:
    """One interface to every projection, stable across snapshots: float32 [N, 2].

    ``previous`` is the layout this function returned for the same images (same rows,
    same order) with the same method at the previous snapshot. t-SNE and UMAP then
    start from it, and every method's result is aligned onto it with :func:`align`
    (with scaling for t-SNE and UMAP, whose scale has no meaning; rotation/reflection
    and shift only for PCA, whose scale is the features' spread). ``options`` go to
    :func:`tsne`, :func:`pca` or :func:`umap` (e.g. ``perplexity``); ``n_jobs`` is used by
    t-SNE only (PCA is one LAPACK call; UMAP with a fixed seed is single-threaded), so a
    caller can pass it whatever the method.

    t-SNE with ``previous`` *continues* the optimisation: the previous layout at its
    own scale, no early exaggeration, 500 iterations (override with ``options``).
    Measured on SmallVGG codes of 600 shapes images, snapshots 50 training steps apart
    (disparity to the previous picture / 10-NN preservation): continuing 0.02-0.07 /
    equal to a fresh run once classes have formed; restarting from the previous layout
    shrunk to 1e-4 with a new exaggeration phase 0.05-0.33 / the same; independent runs
    with PCA initialisation 1.6-2.1 (unrelated pictures). After a large change
    (untrained -> trained codes) continuing still reaches the fresh run's preservation
    (0.74); stopping after 250 iterations did not (0.58).
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    points = as_points(features, "features")
    reference = None if previous is None else as_layout(previous, "previous", points.shape[0])
    if reference is not None and "init" in options:
        raise ValueError("init: give either previous (a layout to start from and align to) or init, not both")
    if method == "pca":
        layout = pca(points, 2, **options)
        scale = False
    else:
        function = tsne if method == "tsne" else umap
        if method == "tsne":
            options["n_jobs"] = n_jobs
        if reference is not None:
            options["init"] = reference
            if method == "tsne":
                options.setdefault("early_exaggeration_iterations", 0)
                options.setdefault("iterations", 500)
                options.setdefault("rescale_init", options["early_exaggeration_iterations"] > 0)
        layout = function(points, seed=seed, **options)
        scale = True
    if reference is not None and align_to_previous:
        layout = align(layout, reference, scale=scale)
    return layout
