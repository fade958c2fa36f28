"""Turn analysis results (numpy arrays, PNG bytes) into TensorBoard ``Summary`` protos and write them.

No torch here: the callback converts tensors to numpy at the moment of writing. All
plugin data goes through :func:`write`, the one place that touches the writer, so
``data_class`` and the plugin name are always set.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

from tb_cnnviz import metadata


def tensor_summary(kind: str, layer: str | None, array: np.ndarray, **extra: Any) -> summary_pb2.Summary:
    """A TENSOR summary of a float32 array under ``cnnviz/<kind>/<layer>``."""
    proto = tensor_util.make_tensor_proto(np.ascontiguousarray(array, dtype=np.float32))
    meta = metadata.create_summary_metadata(kind, layer=layer, **extra)
    return summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=metadata.tag(kind, layer), metadata=meta, tensor=proto)]
    )


def blob_summary(kind: str, layer: str | None, blobs: Sequence[bytes], **extra: Any) -> summary_pb2.Summary:
    """A BLOB_SEQUENCE summary (rank-1 string tensor), e.g. one PNG per probe image."""
    proto = tensor_util.make_tensor_proto(np.array(list(blobs), dtype=object), dtype=np.object_)
    meta = metadata.create_summary_metadata(kind, layer=layer, **extra)
    return summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=metadata.tag(kind, layer), metadata=meta, tensor=proto)]
    )


def scalar_summary(what: str, layer: str, value: float) -> summary_pb2.Summary:
    """An ordinary scalar for TensorBoard's Scalars dashboard (plugin ``scalars``, rank-0 float)."""
    proto = tensor_util.make_tensor_proto(np.float32(value))
    meta = summary_pb2.SummaryMetadata(
        data_class=summary_pb2.DATA_CLASS_SCALAR,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    )
    return summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=metadata.scalar_tag(what, layer), metadata=meta, tensor=proto)]
    )


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"image: expected a uint8 array, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def write(writer: Any, summaries: Sequence[summary_pb2.Summary], step: int) -> None:
    """Write summaries through a ``torch.utils.tensorboard.SummaryWriter``'s event file writer."""
    file_writer = writer._get_file_writer()
    for summary in summaries:
        file_writer.add_summary(summary, int(step))


def heatmap_overlay(
    image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, colormap: str = "jet"
) -> np.ndarray:
    """A heat-map ``heat`` (``[H, W]`` in [0, 1]) coloured by a matplotlib colormap and blended over ``image``.

    ``image`` is uint8 ``[H, W, 3]`` or ``[H, W]`` (grey is shown as RGB); returns uint8 ``[H, W, 3]``.
    """
    import matplotlib  # late: only the writers of heat-maps pay for it

    colours = matplotlib.colormaps[colormap](np.clip(np.nan_to_num(heat), 0, 1))[..., :3]
    base = np.asarray(image, dtype=np.float32) / 255
    if base.ndim == 2:
        base = base[..., None]
    if base.shape[2] == 1:
        base = np.repeat(base, 3, axis=2)
    blended = np.clip((1 - alpha) * base + alpha * colours, 0, 1)
    return (blended * 255).round().astype(np.uint8)
