"""What the plugin's summaries look like on disk: plugin name, tags, kinds and their metadata.

Shared by the writer side (``summary.py``) and the reader side (``plugin.py``), so it
imports only TensorBoard protos and the standard library: no torch, no numpy.

Every summary carries ``SummaryMetadata.plugin_data`` with ``plugin_name="cnnviz"``
and a JSON ``content``: ``{"version": 1, "kind": ..., "layer": ..., ...}``. The plugin
decides what a series is from this content, never from parsing tag strings.

Kinds (tag = ``cnnviz/<kind>/<layer>`` unless noted):

============== ============== ===========================================================
kind           data class     value at each logged step
============== ============== ===========================================================
kernels        TENSOR         raw weights float32 ``[out, in, kh, kw]`` (UI renormalises)
kernel_grid    BLOB_SEQUENCE  ``[png]``: the make_grid picture normalised to [0, 1]
smoothness     TENSOR         float32 ``[out]``: per-filter smoothness score
activations    BLOB_SEQUENCE  one PNG per probe image: per-channel tiles of the layer
dead_filters   TENSOR         float32 ``[out]``: fraction of positions with output > 0
probe          BLOB_SEQUENCE  tag ``cnnviz/probe``: one PNG per probe image (+ labels)
gradcam        BLOB_SEQUENCE  one overlay PNG per probe image (heat-map over the image)
gradcam_maps   TENSOR         float32 ``[N, h, w]``: raw (not normalised) CAMs, at most 64 px a side
gradcam_info   TENSOR         float32 ``[N, 4]``: target class, predicted class, its probability,
                              the target's probability (-1 where undefined)
attribution    BLOB_SEQUENCE  tag ``cnnviz/attribution/<method>``: one PNG per probe image
patterns       BLOB_SEQUENCE  one PNG per filter (activation maximisation), content: channels
pattern_values TENSOR         float32 ``[K]``: the activation each pattern reached
embedding      TENSOR         float32 ``[N, 3]``: x, y and predicted class of each embedding-probe
                              image (content: labels, class_names, method, feature layer)
sprites        BLOB_SEQUENCE  tag ``cnnviz/sprites``: thumbnail atlases of the embedding probe,
                              row-major, content: thumb [h, w], columns, counts per atlas
top_examples   TENSOR         float32 ``[C, k, 6]``: per filter its k most activating embedding-probe
                              images: image id (-1 empty), activation, receptive-field box x0 y0 x1 y1
dream          BLOB_SEQUENCE  tag ``cnnviz/dream/<layer>[+<layer>...]``: ``[original PNG, dreamed PNG]``
                              (``tb-cnnviz dream``), content: layers, octaves, octave_scale, steps, lr,
                              seed, size [h, w], objective [original, dreamed] and gain (their ratio)
============== ============== ===========================================================

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

PLUGIN_NAME = "cnnviz"
TAG_PREFIX = "cnnviz"
SCALAR_PREFIX = "cnnviz_scalars"
PROTOCOL_VERSION = 1

KERNELS = "kernels"
KERNEL_GRID = "kernel_grid"
SMOOTHNESS = "smoothness"
ACTIVATIONS = "activations"
DEAD_FILTERS = "dead_filters"
PROBE = "probe"
GRADCAM = "gradcam"
GRADCAM_MAPS = "gradcam_maps"
GRADCAM_INFO = "gradcam_info"
ATTRIBUTION = "attribution"
PATTERNS = "patterns"
PATTERN_VALUES = "pattern_values"
EMBEDDING = "embedding"
SPRITES = "sprites"
TOP_EXAMPLES = "top_examples"
DREAM = "dream"

TENSOR_KINDS = (
    KERNELS,
    SMOOTHNESS,
    DEAD_FILTERS,
    GRADCAM_MAPS,
    GRADCAM_INFO,
    PATTERN_VALUES,
    EMBEDDING,
    TOP_EXAMPLES,
)
BLOB_KINDS = (KERNEL_GRID, ACTIVATIONS, PROBE, GRADCAM, ATTRIBUTION, PATTERNS, SPRITES, DREAM)
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
