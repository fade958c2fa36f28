"""``tb_cnnviz.summary``: protos written through a real SummaryWriter and read back by TensorBoard."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from support import read_logdir
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import summary


def _write(logdir, by_step: dict[int, list]) -> None:
    writer = SummaryWriter(str(logdir / "run"))
    for step, summaries in by_step.items():
        summary.write(writer, summaries, step)
    writer.close()


def test_tensor_summary_proto():
    proto = summary.tensor_summary("smoothness", "features.conv1", np.array([1.0, 2.0]), note="x")
    (value,) = proto.value
    assert value.tag == "cnnviz/smoothness/features.conv1"
    assert value.metadata.data_class == summary_pb2.DATA_CLASS_TENSOR
    array = tensor_util.make_ndarray(value.tensor)
    assert array.dtype == np.float32  # float64 input is stored as float32
    np.testing.assert_array_equal(array, [1.0, 2.0])


def test_blob_summary_proto_is_a_rank_1_string_tensor():
    proto = summary.blob_summary("probe", None, [b"a", b"bc"], labels=[1, 2])
    (value,) = proto.value
    assert value.tag == "cnnviz/probe"
    assert value.metadata.data_class == summary_pb2.DATA_CLASS_BLOB_SEQUENCE
    assert value.tensor.dtype == tensor_util.make_tensor_proto(np.array([b""], dtype=object)).dtype
    assert [d.size for d in value.tensor.tensor_shape.dim] == [2]
    assert list(value.tensor.string_val) == [b"a", b"bc"]


def test_scalar_summary_proto_is_a_rank_0_float_for_the_scalars_plugin():
    (value,) = summary.scalar_summary("dead_fraction", "c", 0.25).value
    assert value.tag == "cnnviz_scalars/dead_fraction/c"
    assert value.metadata.data_class == summary_pb2.DATA_CLASS_SCALAR
    assert value.metadata.plugin_data.plugin_name == "scalars"
    assert tensor_util.make_ndarray(value.tensor).shape == ()
    assert float(tensor_util.make_ndarray(value.tensor)) == 0.25


def test_tensor_series_round_trip_every_step(tmp_path):
    arrays = {step: np.arange(6, dtype=np.float64).reshape(2, 3) * step - 1.5 for step in (0, 5, 7)}
    arrays[7][0, 1] = np.nan
    _write(tmp_path, {s: [summary.tensor_summary("gradcam_maps", "c", a)] for s, a in arrays.items()})
    series = read_logdir(str(tmp_path))["run"]["cnnviz/gradcam_maps/c"]
    assert series["steps"] == [0, 5, 7]
    for step, value in zip(series["steps"], series["values"]):
        assert value.dtype == np.float32 and value.shape == (2, 3)
        np.testing.assert_array_equal(value, arrays[step].astype(np.float32))
    assert series["content"] == {"version": 1, "kind": "gradcam_maps", "layer": "c"}


def test_blob_series_round_trip_with_their_content(tmp_path):
    blobs = {1: [b"\x89PNG one", b""], 2: [b"two", b"\x00three\xff"]}
    _write(
        tmp_path,
        {s: [summary.blob_summary("gradcam", "c", b, colormap="jet")] for s, b in blobs.items()},
    )
    series = read_logdir(str(tmp_path))["run"]["cnnviz/gradcam/c"]
    assert series["steps"] == [1, 2]
    assert series["values"] == [blobs[1], blobs[2]]
    assert series["content"]["colormap"] == "jet"


def test_scalars_round_trip_to_the_scalars_plugin_and_not_to_cnnviz(tmp_path):
    _write(tmp_path, {s: [summary.scalar_summary("nonfinite_weights", "c", s / 4)] for s in (0, 1, 2)})
    scalars = read_logdir(str(tmp_path), plugin="scalars")["run"]["cnnviz_scalars/nonfinite_weights/c"]
    assert scalars["steps"] == [0, 1, 2]
    assert scalars["values"] == [0.0, 0.25, 0.5]
    assert read_logdir(str(tmp_path)) == {}


def test_write_goes_through_the_writer_s_file_writer():
    class FileWriter:
        def __init__(self):
            self.added = []

        def add_summary(self, proto, step):
            self.added.append((proto, step))

    class Writer:
        file_writer = FileWriter()

        def _get_file_writer(self):
            return self.file_writer

    protos = [summary.scalar_summary("a", "c", 1.0), summary.scalar_summary("b", "c", 2.0)]
    writer = Writer()
    summary.write(writer, protos, np.int64(12))
    assert writer.file_writer.added == [(protos[0], 12), (protos[1], 12)]
    assert all(type(step) is int for _, step in writer.file_writer.added)


# ----------------------------------------------------------------------------- encode_png
@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3)])
def test_encode_png_decodes_back_to_the_same_pixels(shape):
    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    png = summary.encode_png(pixels)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = np.asarray(Image.open(io.BytesIO(png)))
    np.testing.assert_array_equal(decoded, pixels.reshape(decoded.shape))
    assert decoded.shape == (shape if len(shape) == 3 and shape[2] == 3 else shape[:2])


def test_encode_png_refuses_other_dtypes_by_name():
    with pytest.raises(TypeError, match=r"image: expected a uint8 array, got dtype float32"):
        summary.encode_png(np.zeros((2, 2), np.float32))


# ----------------------------------------------------------------------------- heatmap_overlay
def test_heatmap_overlay_known_values():
    """Grey 100 blended half and half with jet: 0 is (0, 0, 0.5), 1 is (0.5, 0, 0); NaN counts as 0."""
    grey = np.full((1, 4), 100, np.uint8)
    heat = np.array([[0.0, 1.0, np.nan, 7.0]])
    overlay = summary.heatmap_overlay(grey, heat, alpha=0.5)
    assert overlay.dtype == np.uint8 and overlay.shape == (1, 4, 3)
    # 0.5 * 100 + 0.5 * 0.5 * 255 = 113.75 -> 114
    np.testing.assert_array_equal(overlay[0], [[50, 50, 114], [114, 50, 50], [50, 50, 114], [114, 50, 50]])


def test_heatmap_overlay_alpha_ends_and_rgb_input():
    image = np.array([[[10, 20, 30], [200, 100, 0]]], np.uint8)
    heat = np.array([[0.0, 1.0]])
    np.testing.assert_array_equal(summary.heatmap_overlay(image, heat, alpha=0.0), image)
    np.testing.assert_array_equal(
        summary.heatmap_overlay(image, heat, alpha=1.0), [[[0, 0, 128], [128, 0, 0]]]
    )
    grey = summary.heatmap_overlay(np.full((1, 2, 1), 60, np.uint8), heat, alpha=0.0)
    np.testing.assert_array_equal(grey, np.full((1, 2, 3), 60))


def test_heatmap_overlay_other_colormap():
    overlay = summary.heatmap_overlay(np.zeros((1, 1), np.uint8), np.ones((1, 1)), alpha=1.0, colormap="gray")
    np.testing.assert_array_equal(overlay, [[[255, 255, 255]]])
