"""Half-precision storage of the float tensors that dominate the cheap snapshots' bytes: the kernels' raw
weights and the dead-filter rates (issue #18: a 100,000-step ResNet-50 run at 224 px within 300 MB).

float16 keeps 11 significant bits: a value with ``|x| >= 2**-14`` (6.1e-5) is stored within a relative
``2**-11`` (0.05%), a smaller one within ``2**-25`` (3e-8) absolute; 0, NaN and +-Inf are exact. Both
uses show far coarser than that (a kernel tile is 8-bit grey after the browser's renormalisation; a rate
is shown to 3 significant digits). Two guards keep a picture from changing meaning:

- a step whose finite values do not all fit float16 (``|x| > 65504``) is stored as float32, so a finite
  weight never reads as infinite (the readers turn every stored dtype into float32);
- ``keep_nonzero``: a value that float16 would flush to 0 is stored as the smallest subnormal of its
  sign (``2**-24``), so a rate above 0 never reads as exactly 0, which is what "dead" means.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

from tb_cnnviz import summary

HALF_MAX = float(np.finfo(np.float16).max)  # 65504
SMALLEST_HALF = float(np.finfo(np.float16).smallest_subnormal)  # 2**-24


def half(array: np.ndarray, keep_nonzero: bool = False) -> np.ndarray:
    """``array`` as float16 when every finite value fits, else as float32 (see the module docstring)."""
    values = np.asarray(array, dtype=np.float32)
    finite = np.isfinite(values)
    if finite.any() and float(np.abs(values[finite]).max()) > HALF_MAX:
        return values
    stored = values.astype(np.float16)
    if keep_nonzero:
        flushed = (stored == 0) & (values != 0)
        if flushed.any():
            stored[flushed] = np.copysign(SMALLEST_HALF, values[flushed]).astype(np.float16)
    return stored


def half_summary(
    kind: str, layer: str | None, array: np.ndarray, keep_nonzero: bool = False, **extra: Any
) -> summary_pb2.Summary:
    """``summary.tensor_summary`` of ``array`` stored by :func:`half` (float16, or float32 when it must)."""
    stored = half(array, keep_nonzero)
    proto = summary.tensor_summary(kind, layer, np.zeros(0, np.float32), **extra)
    tensor = tensor_util.make_tensor_proto(stored)
    if stored.dtype == np.float16:  # raw bytes: make_tensor_proto's half_val holds each as a varint
        tensor.ClearField("half_val")
        tensor.tensor_content = np.ascontiguousarray(stored, dtype="<f2").tobytes()
    proto.value[0].tensor.CopyFrom(tensor)
    return proto
