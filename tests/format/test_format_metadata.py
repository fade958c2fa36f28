"""``tb_cnnviz.metadata``: tags, data classes, plugin content written and read back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import ACTIVATIONS_FIELDS, read_logdir
from tensorboard.compat.proto import summary_pb2
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import kinds, metadata, summary


def test_tags():
    assert metadata.tag("kernels", "features.conv1") == "cnnviz/kernels/features.conv1"
    assert metadata.tag("probe") == "cnnviz/probe"
    assert (
        metadata.tag("dream", "features.conv3+features.conv4") == "cnnviz/dream/features.conv3+features.conv4"
    )
    assert (
        metadata.scalar_tag("dead_fraction", "features.conv1")
        == "cnnviz_scalars/dead_fraction/features.conv1"
    )


def test_scalar_tags_never_share_the_plugin_prefix():
    """The first metadata seen for a tag wins, so ordinary scalars need a prefix of their own."""
    assert metadata.SCALAR_PREFIX != metadata.TAG_PREFIX
    for kind in metadata.KINDS:
        assert not metadata.scalar_tag(kind, "x").startswith(metadata.TAG_PREFIX + "/")
        assert metadata.tag(kind, "x") != metadata.scalar_tag(kind, "x")


def test_constants_are_the_table_s_names_split_by_storage():
    assert metadata.PLUGIN_NAME == "cnnviz" and metadata.PROTOCOL_VERSION == 1
    assert (metadata.KERNELS, metadata.DEAD_FILTERS, metadata.ATTRIBUTION, metadata.DREAM) == (
        "kernels",
        "dead_filters",
        "attribution",
        "dream",
    )
    assert sorted(metadata.KINDS) == sorted(kinds.SUMMARY_KINDS)
    assert len(set(metadata.KINDS)) == len(metadata.KINDS)
    assert all(kinds.SUMMARY_KINDS[k].storage == kinds.TENSOR for k in metadata.TENSOR_KINDS)
    assert all(kinds.SUMMARY_KINDS[k].storage == kinds.BLOB for k in metadata.BLOB_KINDS)


@pytest.mark.parametrize("kind", sorted(kinds.SUMMARY_KINDS))
def test_every_kind_gets_its_data_class_and_plugin_content(kind):
    """TensorBoard silently drops plugin data whose metadata has no ``data_class``."""
    meta = metadata.create_summary_metadata(kind, layer="features.conv1", description="d", extra=[1, 2])
    expected = {
        kinds.TENSOR: summary_pb2.DATA_CLASS_TENSOR,
        kinds.BLOB: summary_pb2.DATA_CLASS_BLOB_SEQUENCE,
    }[kinds.SUMMARY_KINDS[kind].storage]
    assert meta.data_class == expected != summary_pb2.DATA_CLASS_UNKNOWN
    assert meta.plugin_data.plugin_name == "cnnviz"
    assert meta.summary_description == "d"
    content = json.loads(meta.plugin_data.content)
    assert content == {"version": 1, "kind": kind, "layer": "features.conv1", "extra": [1, 2]}


def test_unknown_kind_is_refused_with_the_name():
    with pytest.raises(ValueError, match=r"kind: unknown summary kind 'filters'; expected one of \["):
        metadata.create_summary_metadata("filters", layer="x")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[1, 2]",
        b'"kernels"',
        b"{}",
        b'{"version": 1, "kind": "scalars"}',
        b'{"version": 1, "kind": null}',
        b'{"version": 1, "kind": ["kernels"]}',
    ],
)
def test_foreign_or_broken_content_reads_as_empty(content):
    assert metadata.parse_plugin_content(content) == {}
    assert metadata.read_content(content) == {}


def test_valid_content_reads_back_as_written():
    meta = metadata.create_summary_metadata(
        "kernel_grid", layer="features.conv1", normalization="filter", nrow=4, padding=1
    )
    expected = {
        "version": 1,
        "kind": "kernel_grid",
        "layer": "features.conv1",
        "normalization": "filter",
        "nrow": 4,
        "padding": 1,
    }
    assert metadata.parse_plugin_content(meta.plugin_data.content) == expected
    assert metadata.read_content(meta.plugin_data.content) == expected


def test_read_content_checks_the_schema_and_parse_does_not():
    raw = json.dumps(
        {"version": 1, "kind": "activations", "layer": "c", "channels": "8", "tile": [4, "4"], "new": 1}
    ).encode()
    assert metadata.parse_plugin_content(raw)["channels"] == "8"  # parse only decodes
    # channels "8" and tile [4, "4"] fail the schema: None, like the absent fields; an unknown field is kept
    assert metadata.read_content(raw) == {
        "version": 1,
        "kind": "activations",
        "layer": "c",
        **dict.fromkeys(ACTIVATIONS_FIELDS),
        "new": 1,
    }


def test_the_first_metadata_of_a_tag_wins_on_disk(tmp_path):
    """Why anything that changes between steps lives in the tensor, not in the content."""
    writer = SummaryWriter(str(tmp_path / "run"))
    for step, window in ((0, 5), (1, 50)):
        summary.write(
            writer,
            [summary.tensor_summary("dead_filters", "c", np.array([0.5], np.float32), window=window)],
            step,
        )
    writer.close()
    (series,) = read_logdir(str(tmp_path))["run"].values()
    assert series["steps"] == [0, 1]
    assert series["content"]["window"] == 5


def test_a_plugin_series_and_a_scalar_of_the_same_name_both_survive(tmp_path):
    writer = SummaryWriter(str(tmp_path / "run"))
    summary.write(
        writer,
        [
            summary.tensor_summary("smoothness", "c", np.array([0.25, 0.75], np.float32)),
            summary.scalar_summary("smoothness", "c", 0.5),
        ],
        3,
    )
    writer.close()
    plugin = read_logdir(str(tmp_path))["run"]
    scalars = read_logdir(str(tmp_path), plugin="scalars")["run"]
    assert list(plugin) == ["cnnviz/smoothness/c"]
    np.testing.assert_array_equal(plugin["cnnviz/smoothness/c"]["values"][0], [0.25, 0.75])
    assert scalars == {"cnnviz_scalars/smoothness/c": {"steps": [3], "values": [0.5], "content": {}}}
