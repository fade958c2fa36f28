"""Turn analysis results (numpy arrays, PNG bytes) into TensorBoard ``Summary`` protos and write them.

No torch here: the callback converts tensors to numpy at the moment of writing. All
plugin data goes through :func:`write`, the one place that touches the writer, so
``data_class`` and the plugin name are always set, and the payloads of the kinds marked
``side_file`` in ``tb_cnnviz.kinds`` go to the run's side file (``tb_cnnviz.assets``) with a
reference in the event (docs/design.md, "Storage").
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

from tb_cnnviz import assets, kinds, metadata

# TB_CNNVIZ_SIDE_FILE=0 keeps every payload in the event files (the format before the side file)
SIDE_FILE_ENV = "TB_CNNVIZ_SIDE_FILE"
# A payload this small stays in the event: its reference (about 100 bytes) would save nothing
MIN_SIDE_FILE_BYTES = 256
_SIDE_FILE_KINDS = frozenset(name for name, kind in kinds.SUMMARY_KINDS.items() if kind.side_file)
_FAILED: set[str] = set()  # event files whose side file could not be written: payloads stay in the events


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


def write(
    writer: Any, summaries: Sequence[summary_pb2.Summary], step: int, *, side_file: bool | None = None
) -> None:
    """Write summaries through a ``torch.utils.tensorboard.SummaryWriter``'s event file writer.

    With ``side_file`` (default: on unless the environment sets ``TB_CNNVIZ_SIDE_FILE=0``), the
    payloads of the kinds marked ``side_file`` go to the side file next to the event file first
    (written and flushed), and the event holds their references. A writer whose event file is not
    a local file (a remote logdir, a stand-in writer) keeps every payload in the event, and so does
    one whose side file cannot be written (warned once per event file; nothing is lost).
    """
    file_writer = writer._get_file_writer()
    if side_file is None:
        side_file = os.environ.get(SIDE_FILE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
    event_file = _local_event_file(file_writer) if side_file else None
    for summary in summaries:
        if event_file is not None and event_file not in _FAILED:
            try:
                summary = _with_references(summary, event_file)
            except OSError as error:  # disk full, no permission...: this event file keeps its payloads
                _FAILED.add(event_file)
                warnings.warn(
                    f"tb-cnnviz: cannot write the side file {assets.side_file_name(event_file)!r} beside "
                    f"{event_file!r} ({type(error).__name__}: {error}); payloads stay in the event file",
                    RuntimeWarning,
                    stacklevel=2,
                )
        file_writer.add_summary(summary, int(step))


def _local_event_file(file_writer: Any) -> str | None:
    """The path of the writer's event file when it is a local file (torch's ``FileWriter``), else None."""
    name = getattr(getattr(file_writer, "event_writer", None), "_file_name", None)
    if not isinstance(name, str) or "://" in name or not os.path.isdir(os.path.dirname(name) or "."):
        return None
    return name


def _side_file_kind(value: summary_pb2.Summary.Value) -> str | None:
    plugin_data = value.metadata.plugin_data
    if plugin_data.plugin_name != metadata.PLUGIN_NAME:
        return None
    kind = metadata.parse_plugin_content(plugin_data.content).get("kind")
    return kind if kind in _SIDE_FILE_KINDS else None


def _with_references(summary: summary_pb2.Summary, event_file: str) -> summary_pb2.Summary:
    """``summary`` with the payloads of its side-file kinds replaced by references (a new proto)."""
    values = []
    changed = False
    for value in summary.value:
        kind = _side_file_kind(value) if value.HasField("tensor") else None
        if kind is None:
            values.append(value)
            continue
        storage = kinds.SUMMARY_KINDS[kind].storage
        if storage == kinds.BLOB:
            blobs = list(value.tensor.string_val)
            if not any(len(blob) >= MIN_SIDE_FILE_BYTES for blob in blobs):
                values.append(value)
                continue
            stored = [
                assets.store(event_file, blob) if len(blob) >= MIN_SIDE_FILE_BYTES else blob for blob in blobs
            ]
            proto = tensor_util.make_tensor_proto(np.array(stored, dtype=object), dtype=np.object_)
        else:
            array = tensor_util.make_ndarray(value.tensor)
            if array.dtype == np.object_ or array.nbytes < MIN_SIDE_FILE_BYTES:
                values.append(value)
                continue
            array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
            reference = assets.store(event_file, array.tobytes(), dtype=array.dtype.str, shape=array.shape)
            proto = tensor_util.make_tensor_proto(np.array(reference, dtype=object), dtype=np.object_)
        replaced = summary_pb2.Summary.Value()
        replaced.CopyFrom(value)
        replaced.tensor.CopyFrom(proto)
        values.append(replaced)
        changed = True
    return summary_pb2.Summary(value=values) if changed else summary


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
