"""Quality scores of a projection by exact nearest neighbours: how many neighbourhoods a layout keeps
and how well classes stay together, in feature space or in 2-D."""

from __future__ import annotations

import numpy as np

from tb_cnnviz.analysis.point_arrays import ArrayLike, as_points


def nearest_neighbors(points: ArrayLike, k: int) -> np.ndarray:
    """Indices [N, k] of each point's ``k`` nearest other points (Euclidean, exact), nearest first.

    Brute force in row chunks (memory O(chunk x N)); float64 for up to 16 dimensions
    (2-D layouts), float32 above. A point is never its own neighbour; duplicates of it
    are. Equal distances are ordered by index (the lower index is nearer).
    """
    array = as_points(points, "points", min_points=2, dtype=np.float64)
    count = array.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < count:
        raise ValueError(
            f"k: expected an integer in [1, {count - 1}] (fewer than the {count} points), got {k!r}"
        )
    if array.shape[1] > 16:
        array = array.astype(np.float32)
    squared = (array * array).sum(axis=1)
    chunk = max(1, min(count, 4_000_000 // count))
    result = np.empty((count, k), dtype=np.int64)
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        distances = squared[start:stop, None] + squared[None, :] - 2.0 * (array[start:stop] @ array.T)
        rows = np.arange(stop - start)
        distances[rows, rows + start] = np.inf
        candidates = np.argpartition(distances, k - 1, axis=1)[:, :k]
        kth = distances[rows, candidates[:, k - 1]]
        # argpartition picks arbitrarily among points tied at the k-th distance; those rows sort fully (rare).
        for row in np.nonzero((distances <= kth[:, None]).sum(axis=1) > k)[0]:
            candidates[row] = np.argsort(distances[row], kind="stable")[:k]
        chosen = np.take_along_axis(distances, candidates, axis=1)
        order = np.lexsort((candidates, chosen), axis=1)
        result[start:stop] = np.take_along_axis(candidates, order, axis=1)
    return result


def knn_preservation(high: ArrayLike, low: ArrayLike, k: int = 10) -> float:
    """Mean fraction of each point's ``k`` nearest neighbours in ``high`` that are also among its ``k`` nearest in ``low``.

    1.0 when the embedding keeps every neighbourhood; about ``k / N`` for a random
    layout. The usual local-structure score for t-SNE (e.g. Kobak & Berens 2019).
    """
    high_points = as_points(high, "high", min_points=2)
    low_points = as_points(low, "low", min_points=2)
    if low_points.shape[0] != high_points.shape[0]:
        raise ValueError(f"low: expected {high_points.shape[0]} rows like high, got {low_points.shape[0]}")
    high_neighbors = nearest_neighbors(high_points, k)
    low_neighbors = nearest_neighbors(low_points, k)
    return neighbor_overlap(high_neighbors, low_neighbors)


def neighbor_overlap(first: np.ndarray, second: np.ndarray) -> float:
    """Mean fraction of shared entries between two neighbour lists [N, k] (see :func:`knn_preservation`)."""
    if first.shape != second.shape or first.ndim != 2:
        raise ValueError(
            f"second: expected neighbour lists of the same shape [N, k], got {first.shape} and {second.shape}"
        )
    count, k = first.shape
    offsets = np.arange(count, dtype=np.int64)[:, None] * (int(max(first.max(), second.max())) + 1)
    shared = np.intersect1d((first + offsets).ravel(), (second + offsets).ravel(), assume_unique=False).size
    return float(shared) / float(count * k)


def knn_accuracy(points: ArrayLike, labels: ArrayLike, k: int = 5) -> float:
    """Leave-one-out accuracy of a ``k``-nearest-neighbour majority vote, in [0, 1].

    Each point is classified by the most common label among its ``k`` nearest other
    points; a tie goes to the tied label whose member is nearest. Measures how well
    classes stay together (in feature space or in a 2-D layout).
    """
    array = as_points(points, "points", min_points=2)
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):
        labels = labels.detach().cpu().numpy()
    label_array = np.asarray(labels)
    if label_array.shape != (array.shape[0],):
        raise ValueError(
            f"labels: expected shape ({array.shape[0]},) (one label per point), got {label_array.shape}"
        )
    _, codes = np.unique(label_array, return_inverse=True)
    neighbors = nearest_neighbors(array, k)
    votes = codes[neighbors]  # [N, k], nearest first
    classes = int(codes.max()) + 1
    counts = np.zeros((array.shape[0], classes), dtype=np.int64)
    np.add.at(counts, (np.arange(array.shape[0])[:, None], votes), 1)
    best = counts.max(axis=1, keepdims=True)
    tied = counts[np.arange(array.shape[0])[:, None], votes] == best  # [N, k]: neighbour's label is a winner
    predicted = votes[np.arange(array.shape[0]), tied.argmax(axis=1)]
    return float((predicted == codes).mean())
