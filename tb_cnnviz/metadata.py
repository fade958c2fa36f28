"""What the plugin's summaries look like on disk: plugin name, tags, kinds and their metadata.

Shared by the writer side (``summary.py``) and the reader side (``plugin.py``), so it
imports only TensorBoard protos and the standard library: no torch, no numpy.

Every summary carries ``SummaryMetadata.plugin_data`` with ``plugin_name="cnnviz"``
and a JSON ``content``: ``{"version": 1, "kind": ..., "layer": ..., ...}``. The plugin
decides what a series is from this content, never from parsing tag strings.

The kinds, their storage and the schema of their content are rows of ``tb_cnnviz.kinds``;
this module derives its constants from that table (tag = ``cnnviz/<kind>/<layer>``, or
``cnnviz/<kind>`` for a kind that is not per layer).

Metadata content is fixed by the first summary of a series (TensorBoard keeps the first),
so anything that changes between steps lives in the tensor itself, never in the content.
(``dream`` is the exception that proves it: the command line writes it once per run, at step 0,
so its objective and gain can live in the content.)

Ordinary scalars (plugin ``scalars``, shown by TensorBoard's Scalars dashboard) go under
``cnnviz_scalars/<what>/<layer>``; the distinct prefix keeps their metadata from ever
colliding with the plugin's own tags (the first metadata seen for a tag wins).
"""

from __future__ import annotations

import json
from typing import Any

from tensorboard.compat.proto import summary_pb2

from tb_cnnviz import kinds

PLUGIN_NAME = "cnnviz"
TAG_PREFIX = "cnnviz"
SCALAR_PREFIX = "cnnviz_scalars"
PROTOCOL_VERSION = 1
# The dead-filter ``semantics`` whose rate-0 filters are reported (dead after a ReLU, inactive at a smooth
# nonlinearity); the others (residual, none, gate, head, unmeasured) have no dead filters (analysis/activation_points)
REPORTED_SEMANTICS = ("relu", "smooth")

# One constant per summary kind, for writers and readers (the names are the table's).
KERNELS = kinds.summary_kind("kernels").name
KERNEL_GRID = kinds.summary_kind("kernel_grid").name
SMOOTHNESS = kinds.summary_kind("smoothness").name
ACTIVATIONS = kinds.summary_kind("activations").name
DEAD_FILTERS = kinds.summary_kind("dead_filters").name
DEAD_FILTER_SAMPLE = kinds.summary_kind("dead_filter_sample").name
PROBE = kinds.summary_kind("probe").name
GRADCAM = kinds.summary_kind("gradcam").name
GRADCAM_MAPS = kinds.summary_kind("gradcam_maps").name
GRADCAM_INFO = kinds.summary_kind("gradcam_info").name
ATTRIBUTION = kinds.summary_kind("attribution").name
PATTERNS = kinds.summary_kind("patterns").name
PATTERN_VALUES = kinds.summary_kind("pattern_values").name
PATTERN_CHANNELS = kinds.summary_kind("pattern_channels").name
PATTERN_REFERENCE = kinds.summary_kind("pattern_reference").name
EMBEDDING = kinds.summary_kind("embedding").name
SPRITES = kinds.summary_kind("sprites").name
TOP_EXAMPLES = kinds.summary_kind("top_examples").name
DREAM = kinds.summary_kind("dream").name
DROPPED = kinds.summary_kind("dropped").name

TENSOR_KINDS = tuple(name for name, kind in kinds.SUMMARY_KINDS.items() if kind.storage == kinds.TENSOR)
BLOB_KINDS = tuple(name for name, kind in kinds.SUMMARY_KINDS.items() if kind.storage == kinds.BLOB)
KINDS = TENSOR_KINDS + BLOB_KINDS

_DATA_CLASS = {kind: summary_pb2.DATA_CLASS_TENSOR for kind in TENSOR_KINDS}
_DATA_CLASS.update({kind: summary_pb2.DATA_CLASS_BLOB_SEQUENCE for kind in BLOB_KINDS})


def tag(kind: str, layer: str | None = None) -> str:
    """The tag of a plugin series: ``cnnviz/<kind>/<layer>`` (or ``cnnviz/<kind>``)."""
    return f"{TAG_PREFIX}/{kind}" if layer is None else f"{TAG_PREFIX}/{kind}/{layer}"


def scalar_tag(what: str, layer: str) -> str:
    """The tag of an ordinary scalar, e.g. ``cnnviz_scalars/dead_fraction/features.conv1``."""
    return f"{SCALAR_PREFIX}/{what}/{layer}"


def create_summary_metadata(
    kind: str, *, layer: str | None = None, description: str = "", **extra: Any
) -> summary_pb2.SummaryMetadata:
    """Metadata for one plugin series, with ``data_class`` set (TensorBoard drops data without it)."""
    if kind not in _DATA_CLASS:
        raise ValueError(f"kind: unknown summary kind {kind!r}; expected one of {sorted(_DATA_CLASS)}")
    content = {"version": PROTOCOL_VERSION, "kind": kind, "layer": layer, **extra}
    return summary_pb2.SummaryMetadata(
        summary_description=description,
        data_class=_DATA_CLASS[kind],
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME, content=json.dumps(content, sort_keys=True).encode("utf-8")
        ),
    )


def parse_plugin_content(content: bytes) -> dict:
    """Decode a series' plugin content; unreadable or foreign content gives ``{}`` (never raises)."""
    try:
        parsed = json.loads(content.decode("utf-8")) if content else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(parsed, dict) or parsed.get("kind") not in KINDS:
        return {}
    return parsed


def read_content(content: bytes) -> dict:
    """A series' plugin content, checked against its kind's schema in ``tb_cnnviz.kinds``.

    ``{}`` for unreadable or foreign content; a schema field that is missing or of the wrong
    JSON type reads as None, so routes use the values without checking them again.
    """
    parsed = parse_plugin_content(content)
    if not parsed:
        return {}
    return kinds.check_content(kinds.SUMMARY_KINDS[parsed["kind"]], parsed)
