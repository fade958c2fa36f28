"""The one table of kinds: what is logged, how it is stored, when it is computed and which view shows it.

Torch-free and numpy-free (the TensorBoard plugin imports it). Everything else derives from these rows:
``metadata`` (data classes, tags, content checks), the callback (schedule, enabled kinds,
training thread or background, dispatch), the plugin's route groups and ``api/runs/list``,
and the frontend's views and empty states. Adding a kind is one row here plus a
``snapshots`` function, a route module, a view module and tests (docs/design.md).

Three concepts, one name each:

- a **summary kind** is one series on disk (tag ``cnnviz/<kind>/<layer>`` or ``cnnviz/<kind>``);
- a **snapshot** is what the callback computes at a step; it writes one or more summary kinds;
- a **view** is a tab of the UI with its own route group (``api/<view>/...``); it shows snapshots.

A snapshot is shown by one view (``Snapshot.view``, whose empty state names it). A summary kind
of a snapshot may be shown by another view instead (``View.shows_kinds``): the ``embedding``
snapshot's ``top_examples`` come from its own pass over the embedding probe and are shown in
the Top images tab, so one snapshot (one schedule, one pass, one ``enabled`` key) feeds two tabs.

What a row is (the dataclasses, the content types, the checks that rows agree, the JSON form)
is ``tb_cnnviz/kind_schema.py``; each view's empty-state text is ``tb_cnnviz/view_hints.py``.
"""

from __future__ import annotations

from tb_cnnviz import kind_schema
from tb_cnnviz.kind_schema import (  # the row types, re-exported: ``kinds.TENSOR``, ``kinds.Snapshot`` ...
    BACKGROUND,
    BLOB,
    TENSOR,
    TRAINING,
    Snapshot,
    SummaryKind,
    View,
)
from tb_cnnviz.kind_schema import check_content as check_content
from tb_cnnviz.view_hints import HINTS

SUMMARY_KINDS: dict[str, SummaryKind] = {
    kind.name: kind
    for kind in (
        SummaryKind(
            "kernels",
            TENSOR,
            True,
            "raw weights float16 [out, in, kh, kw] (the UI renormalises; float32 in older runs or when a weight "
            "exceeds float16's range)",
            side_file=True,
        ),
        SummaryKind(
            "kernel_grid",
            BLOB,
            True,
            "[png]: the make_grid picture normalised to [0, 1]",
            {"normalization": "text", "nrow": "int", "padding": "int"},
            side_file=True,
        ),
        SummaryKind("smoothness", TENSOR, True, "float32 [out]: per-filter smoothness"),
        SummaryKind(
            "activations",
            BLOB,
            True,
            "one PNG per probe image: per-channel tiles of the layer (tile i: channel channels_shown[i], "
            "area-downsampled by factor from map_size; absent in older runs: every channel, full size), grey "
            "rounded to `levels` levels (absent: 256)",
            {
                "channels": "int",
                "nrow": "int",
                "padding": "int",
                "tile": "ints",
                "map_size": "ints",
                "channels_shown": "ints",
                "factor": "int",
                "levels": "int",
            },
            side_file=True,
        ),
        SummaryKind(
            "dead_filters",
            TENSOR,
            True,
            "float16 [out] (float32 in older runs): fraction of positions where the nonlinearity's input is "
            "active over the window; 0 exact, a rate above 0 never stored as 0",
            {"window": "int", "measured_at": "text", "semantics": "text"},
        ),
        SummaryKind(
            "dead_filter_sample",
            TENSOR,
            True,
            "float32 [3]: training batches counted in the window, training forwards seen, one in k counted",
        ),
        SummaryKind(
            "probe",
            BLOB,
            False,
            "one PNG per probe image",
            {"labels": "ints", "class_names": "texts", "names": "texts"},
            side_file=True,
        ),
        SummaryKind(
            "gradcam",
            BLOB,
            True,
            "one overlay PNG per probe image (heat map over the image); runs before issue #18 only: the view "
            "now draws the overlay from gradcam_maps",
            {"colormap": "text"},
            side_file=True,
        ),
        SummaryKind(
            "gradcam_maps",
            TENSOR,
            True,
            "float32 [N, h, w]: raw (not normalised) CAMs at the layer's resolution (older runs: the input's)",
            side_file=True,
        ),
        SummaryKind(
            "gradcam_info",
            TENSOR,
            True,
            "float32 [N, 4]: target, predicted class, its probability, the target's probability (-1: none)",
            {"columns": "texts"},
        ),
        SummaryKind(
            "gradcam_predicted_maps",
            TENSOR,
            True,
            "float32 [N, h, w]: raw CAMs of each image's predicted class, as gradcam_maps (the same map where the "
            "prediction is the target); written when the maps explain the labels",
            side_file=True,
        ),
        SummaryKind(
            "attribution",
            BLOB,
            True,
            "tag cnnviz/attribution/<method>: one PNG per probe image",
            {"method": "text"},
            side_file=True,
        ),
        SummaryKind(
            "patterns",
            BLOB,
            True,
            "one PNG per filter (activation maximisation)",
            # ``steps`` here are optimisation steps of the pattern, not logged training steps
            # ``choice``: how pattern_channels chose the filters (``channels``: the first step's; the filters
            # of each step are its ``pattern_channels``)
            {"channels": "ints", "size": "int", "steps": "int", "choice": "text"},
            side_file=True,
        ),
        SummaryKind("pattern_values", TENSOR, True, "float32 [K]: the activation each pattern reached"),
        SummaryKind(
            "pattern_channels",
            TENSOR,
            True,
            "float32 [2, K]: per pattern of this step's gallery, its filter index, and 1 where the filter is "
            "one pattern_channels asked for (0: a stand-in, e.g. 'dead' while no filter was found dead)",
        ),
        SummaryKind(
            "pattern_reference",
            TENSOR,
            True,
            "float32 [K]: each pattern's filter's best mean activation on the probe images (when given)",
        ),
        SummaryKind(
            "embedding",
            TENSOR,
            True,
            "float32 [N, 3]: x, y and predicted class of each embedding-probe image",
            {"method": "text", "labels": "ints", "class_names": "texts", "image_size": "ints"},
            side_file=True,
        ),
        SummaryKind(
            "sprites",
            BLOB,
            False,
            "thumbnail atlases of the embedding probe, row-major",
            {"thumb": "ints", "columns": "int", "counts": "ints", "image_size": "ints"},
            side_file=True,
        ),
        SummaryKind(
            "top_examples",
            TENSOR,
            True,
            "float32 [C, k, 6]: per filter its k most activating images: id, activation, box x0 y0 x1 y1",
            {"k": "int", "image_size": "ints"},
            side_file=True,
        ),
        SummaryKind(
            "separability",
            TENSOR,
            True,
            "float32 [6]: held-out accuracy of a linear probe on the layer's pooled codes, chance level, "
            "ridge strength, accuracy on the fitted images, held-out images, outcome (0: measured)",
            {"columns": "texts", "outcomes": "texts", "measured_at": "text", "depth": "int"},
        ),
        SummaryKind(
            "faithfulness",
            TENSOR,
            True,
            "float32 [N, 4]: per probe image the area under the deletion curve of its Grad-CAM and of a seeded "
            "random map of the same size, then the areas under their insertion curves",
            {"columns": "texts", "steps": "int", "seed": "int", "blur_sigma": "number"},
        ),
        SummaryKind(
            "faithfulness_curves",
            TENSOR,
            True,
            "float32 [N, 4, S + 1]: the deletion and insertion curves (rows as faithfulness's columns): the "
            "explained class's probability at each fraction of pixels removed or inserted",
            {"rows": "texts", "fractions": "numbers"},
        ),
        SummaryKind(
            "dropped",
            TENSOR,
            False,
            "float32 [S]: background snapshots dropped so far because the previous one was still running, "
            "one count per snapshot named in content `snapshots` (the callback writes it at each drop)",
            {"snapshots": "texts"},
        ),
        SummaryKind(
            "epochs",
            TENSOR,
            False,
            "float32 [1]: the epochs completed, logged at the step that ended each epoch (on_epoch_end): the "
            "series' steps are the run's epoch ends (the tab lines compared runs up by epoch with them)",
        ),
        SummaryKind(
            "layer_order",
            TENSOR,
            False,
            "float32 [L, 2]: per layer named in content `layers` (every layer the run logs, in the model's order: "
            "`order` 'execution', the order one forward pass of a probe image finishes them, those it does not "
            "run after them; 'registration' without a probe image) its rank in that pass (-1: not run) and in "
            "named_modules(); written once, at the first step (the tab matches the layers of two architectures by "
            "their place in this order)",
            {"layers": "texts", "order": "text"},
        ),
        SummaryKind(
            "dream",
            BLOB,
            True,
            "tag cnnviz/dream/<layer>[+<layer>...]: [original PNG, dreamed PNG] (tb-cnnviz dream)",
            {
                "layers": "texts",
                "octaves": "int",
                "octave_scale": "number",
                "steps": "int",
                "lr": "number",
                "seed": "int",
                "size": "ints",
                "objective": "numbers",
                "gain": "number",
            },
            side_file=True,
        ),
    )
}

SNAPSHOTS: dict[str, Snapshot] = {
    snapshot.name: snapshot
    for snapshot in (
        Snapshot(
            "kernels",
            ("kernels", "kernel_grid", "smoothness"),
            100,
            TRAINING,
            None,
            "kernel_layers",
            "filters",
            "the first conv layer",
        ),
        Snapshot(
            "activations",
            ("activations", "probe"),
            200,
            TRAINING,
            "probe",
            "activation_layers",
            "activations",
            "3 evenly spaced stage outputs, the last map at each resolution on the path to the logits",
        ),
        Snapshot(
            "dead_filters",
            ("dead_filters", "dead_filter_sample"),
            200,
            TRAINING,
            None,
            "dead_filter_layers",
            "dead",
            "every conv layer",
        ),
        Snapshot(
            "gradcam",
            ("gradcam_maps", "gradcam_info", "gradcam_predicted_maps", "probe"),
            200,
            TRAINING,
            "probe",
            "gradcam_layers",
            "gradcam",
            "the last spatial map before the global pooling",
        ),
        Snapshot(
            "attributions",
            ("attribution",),
            500,
            TRAINING,
            "probe",
            None,
            "gradcam",
            "off; attributions=[...] names the methods",
        ),
        Snapshot(
            "patterns",
            ("patterns", "pattern_values", "pattern_channels", "pattern_reference"),
            1000,
            BACKGROUND,
            None,
            "pattern_layers",
            "patterns",
            "off; pattern_layers=[...] turns it on",
        ),
        Snapshot(
            "separability",
            ("separability",),
            1000,
            BACKGROUND,
            "embedding_probe",
            "separability_layers",
            "separability",
            "the stage outputs and the last linear layer's input; on when the embedding probe has labels",
        ),
        Snapshot(
            "embedding",
            ("embedding", "sprites", "top_examples"),
            1000,
            BACKGROUND,
            "embedding_probe",
            "top_example_layers",
            "embedding",
            "the activation layers (top examples); the last linear layer's input (map)",
        ),
        Snapshot(
            "faithfulness",
            ("faithfulness", "faithfulness_curves"),
            200,
            TRAINING,
            "probe",
            "gradcam_layers",
            "gradcam",
            "the Grad-CAM layers; off by default, faithfulness=True turns it on (with every Grad-CAM snapshot)",
        ),
    )
}

VIEWS: dict[str, View] = {
    view.name: view
    for view in (
        # no snapshot of its own: it summarises the other views' data (plugin/routes/overview.py)
        View("overview", "Overview", (), HINTS["overview"]),
        View("filters", "Filters", ("kernels",), HINTS["filters"]),
        View("activations", "Activations", ("activations",), HINTS["activations"]),
        View("dead", "Dead filters", ("dead_filters",), HINTS["dead"]),
        View("gradcam", "Grad-CAM", ("gradcam", "attributions", "faithfulness"), HINTS["gradcam"]),
        View("patterns", "Patterns", ("patterns",), HINTS["patterns"]),
        View("embedding", "Embedding", ("embedding",), HINTS["embedding"]),
        # no snapshot of its own: the embedding snapshot's top_examples
        View("top_images", "Top images", (), HINTS["top_images"], shows_kinds=("top_examples",)),
        View("separability", "Separability", ("separability",), HINTS["separability"]),
    )
}

# Summary kinds shown by a view although no snapshot of the callback writes them
# (`dream`: written by `tb-cnnviz dream`; `gradcam`: the overlay PNGs of runs written before issue #18)
EXTRA_SHOWN = {"dream": "patterns", "gradcam": "gradcam"}
# Summary kinds the callback writes about the run itself, not a snapshot (``api/runs/list`` reads them;
# ``dropped``: each view of a background snapshot says how many of its snapshots were skipped; ``epochs``: the
# steps that ended an epoch; ``layer_order``: the logged layers in the model's order)
RUN_RECORDS = ("dropped", "epochs", "layer_order")


def default_every_n_steps() -> dict[str, int]:
    """``{snapshot: interval}`` at the defaults."""
    return {name: snapshot.every_n_steps for name, snapshot in SNAPSHOTS.items()}


def summary_kind(name: str) -> SummaryKind:
    """The row of a summary kind; a clear error for an unknown name."""
    try:
        return SUMMARY_KINDS[name]
    except KeyError:
        raise ValueError(
            f"kind: unknown summary kind {name!r}; expected one of {sorted(SUMMARY_KINDS)}"
        ) from None


def view_of(summary_name: str) -> str | None:
    """The view that shows a summary kind (a view's ``shows_kinds`` before its snapshot's view)."""
    return kind_schema.view_of(summary_name, SNAPSHOTS, VIEWS, EXTRA_SHOWN)


def table() -> dict:
    """The table as JSON for ``api/runs/list``: the frontend reads its views and empty states here."""
    return kind_schema.as_json(SUMMARY_KINDS, SNAPSHOTS, VIEWS, EXTRA_SHOWN)


def _check_table() -> None:
    """The rows agree with each other (run at import: a wrong row fails every test at once)."""
    kind_schema.check_rows(SUMMARY_KINDS, SNAPSHOTS, VIEWS)


_check_table()
