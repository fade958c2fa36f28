"""Stability of 2-D layouts across snapshots: Procrustes alignment onto the previous layout and the
disparity a viewer sees between two layouts (Schönemann 1966; see :mod:`tb_cnnviz.analysis.projection`)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import orthogonal_procrustes

from tb_cnnviz.analysis.point_arrays import ArrayLike, as_layout, as_points


def align(layout: ArrayLike, reference: ArrayLike, *, scale: bool = True) -> np.ndarray:
    """``layout`` moved onto ``reference`` by orthogonal Procrustes: float32 [N, d].

    Finds the orthogonal ``R`` (rotation or reflection; ``scipy.linalg.orthogonal_procrustes``),
    and with ``scale=True`` the factor ``s = trace(S) / ||A||_F^2`` (``S`` the singular
    values of ``A^T B``), minimising ``||s A R - B||_F`` for the centred layouts ``A``,
    ``B``, then translates to the reference's centroid. Row ``i`` of both must be the
    same image. ``scale=False`` keeps distances (use it where scale means something,
    as for PCA). Neither input is modified.
    """
    moving = as_points(layout, "layout", min_points=1, dtype=np.float64)
    target = as_layout(reference, "reference", moving.shape[0], moving.shape[1])
    moving_centre, target_centre = moving.mean(axis=0), target.mean(axis=0)
    a, b = moving - moving_centre, target - target_centre
    norm = float((a * a).sum())
    if norm == 0.0:
        return np.broadcast_to(target_centre, moving.shape).astype(np.float32)
    rotation, singular_sum = orthogonal_procrustes(a, b)
    factor = singular_sum / norm if scale else 1.0
    return (factor * (a @ rotation) + target_centre).astype(np.float32)


def disparity(layout: ArrayLike, reference: ArrayLike) -> float:
    """How different two layouts look: ``sum ||a_i - b_i||^2`` after centring each and scaling it to unit Frobenius norm.

    No rotation is fitted, so this measures what a viewer sees when switching from
    one layout to the other: 0 for identical pictures (up to shift and zoom), 2 on
    average for unrelated ones, 4 for a point reflection. ``disparity(align(a, b), b)``
    equals the disparity of ``scipy.spatial.procrustes(b, a)``.
    """
    a = as_points(layout, "layout", min_points=2, dtype=np.float64)
    b = as_layout(reference, "reference", a.shape[0], a.shape[1])
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if norm_a == 0.0 or norm_b == 0.0:
        raise ValueError("layout: a layout whose points all coincide has no shape to compare")
    return float(((a / norm_a - b / norm_b) ** 2).sum())
