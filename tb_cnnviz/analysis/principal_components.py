"""Exact principal components of feature vectors, and the PCA step before t-SNE and UMAP.

numpy only, deterministic and without global state (the projections run on a worker thread
beside training; see ``projection``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from tb_cnnviz.analysis.point_arrays import ArrayLike, as_points

PCA_DIMS = 50
"""Features wider than this are reduced by PCA before t-SNE/UMAP (van der Maaten & Hinton 2008 used 30-50)."""


def pca(features: ArrayLike, n_components: int = 2) -> np.ndarray:
    """Principal-component scores ``(X - mean X) V_k`` as float32 [N, n_components].

    Exact and deterministic: an eigendecomposition of the D x D covariance (or of the
    N x N Gram matrix when there are fewer points than dimensions), in float64. Each
    component's sign is fixed so that its largest-magnitude score is positive, so the
    same features always give the same picture. Components beyond the rank of the data
    (for example 2 components of 1-D features) are zero.
    """
    points = as_points(features, "features", min_points=2)
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
        raise ValueError(f"n_components: expected a positive integer, got {n_components!r}")
    count, width = points.shape
    centred = points.astype(np.float64) - points.mean(axis=0, dtype=np.float64)
    keep = min(n_components, width, count)
    if width <= count:
        eigenvalues, vectors = np.linalg.eigh(centred.T @ centred)
        order = np.argsort(eigenvalues)[::-1][:keep]
        scores = centred @ vectors[:, order]
    else:
        eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
        order = np.argsort(eigenvalues)[::-1][:keep]
        scores = vectors[:, order] * np.sqrt(np.clip(eigenvalues[order], 0.0, None))
    largest = np.abs(scores).argmax(axis=0)
    signs = np.sign(scores[largest, np.arange(keep)])
    scores *= np.where(signs == 0, 1.0, signs)
    if keep < n_components:
        scores = np.concatenate([scores, np.zeros((count, n_components - keep))], axis=1)
    return scores.astype(np.float32)


def reduce_width(points: np.ndarray, pca_dims: Optional[int]) -> np.ndarray:
    """``points`` [N, D] reduced to ``pca_dims`` principal components when wider (``None``: as they are)."""
    if pca_dims is None:
        return points
    if isinstance(pca_dims, bool) or not isinstance(pca_dims, (int, np.integer)) or pca_dims < 2:
        raise ValueError(f"pca_dims: expected an integer >= 2 or None, got {pca_dims!r}")
    if points.shape[1] <= pca_dims:
        return points
    return pca(points, min(int(pca_dims), points.shape[0]))
