"""Checked float arrays of points [N, D] and 2-D layouts, from numpy arrays or torch tensors.

Shared by the projections, their alignment and the neighbourhood scores, so every one of them
rejects the same bad input with the same message. numpy only: tensors are copied to the CPU
without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:  # tensors are accepted, but this module runs on numpy alone (off the training thread)
    import torch

ArrayLike = Union[np.ndarray, "torch.Tensor"]

MIN_POINTS = 4
"""The fewest points any projection accepts (t-SNE needs at least 3 neighbours per point)."""


def as_points(values: Any, argument: str, *, min_points: int = MIN_POINTS, dtype=np.float32) -> np.ndarray:
    """A C-contiguous finite float array [N, D] from a numpy array or a torch tensor (copied to the CPU)."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor, without importing torch
        values = values.detach().cpu().numpy()
    if not isinstance(values, np.ndarray):
        if isinstance(values, (list, tuple)):
            values = np.asarray(values)
        else:
            raise TypeError(
                f"{argument}: expected a 2-D numpy array or torch tensor [N, D], got {type(values).__name__}"
            )
    if values.dtype.kind not in "fiub":
        raise TypeError(f"{argument}: expected a numeric array, got dtype {values.dtype}")
    if values.ndim != 2:
        raise ValueError(
            f"{argument}: expected a 2-D array [N, D] (one row per image), got shape {tuple(values.shape)}"
        )
    if values.shape[0] < min_points:
        raise ValueError(f"{argument}: expected at least {min_points} rows (points), got {values.shape[0]}")
    if values.shape[1] < 1:
        raise ValueError(f"{argument}: expected at least one column, got shape {tuple(values.shape)}")
    values = np.ascontiguousarray(values, dtype=dtype)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).any(axis=1).sum())
        raise ValueError(f"{argument}: {bad} of {values.shape[0]} rows contain NaN or infinite values")
    return values


def as_layout(layout: Any, argument: str, rows: int, columns: int = 2) -> np.ndarray:
    """A finite float64 array [rows, columns] (an initialisation or a reference layout)."""
    array = as_points(layout, argument, min_points=1, dtype=np.float64)
    if array.shape != (rows, columns):
        raise ValueError(
            f"{argument}: expected shape ({rows}, {columns}) (one row per point of features, same order), got {array.shape}"
        )
    return array
