"""The one table of kinds: what is logged, how it is stored, when it is computed and which view shows it.

Torch-free (the TensorBoard plugin imports it). Everything else derives from these rows:
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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

TENSOR = "tensor"
BLOB = "blob"
TRAINING = "training"  # computed on the training thread, right after the optimiser step
BACKGROUND = "background"  # computed on a copy of the weights in the background thread

# JSON types a content field may take (``None`` is always allowed: a field may be absent or null)
_JSON_TYPES = {
    "int": (int,),
    "number": (int, float),
    "text": (str,),
    "flag": (bool,),
    "ints": (list,),
    "numbers": (list,),
    "texts": (list,),
    "object": (dict,),
}
_ITEM_TYPES = {"ints": (int,), "numbers": (int, float), "texts": (str,)}


@dataclasses.dataclass(frozen=True)
class SummaryKind:
    """One series kind on disk.

    ``content`` maps each key of the series' plugin content (beyond ``version``, ``kind`` and
    ``layer``) to its JSON type: one of ``int number text flag ints numbers texts object``.
    """

    name: str
    storage: str  # TENSOR or BLOB
    per_layer: bool  # tag cnnviz/<name>/<layer>; False: cnnviz/<name>, one series per run
    value: str  # what is stored at each logged step
    content: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # True: each step's payload (the tensor's bytes, or each blob) goes to the run's side file and the event
    # holds a reference (tb_cnnviz/assets.py): the kinds whose bytes per step are large (docs/design.md, Storage)
    side_file: bool = False

    def __post_init__(self):
        if self.storage not in (TENSOR, BLOB):
            raise ValueError(f"storage: expected {TENSOR!r} or {BLOB!r}, got {self.storage!r}")
        unknown = {key: kind for key, kind in self.content.items() if kind not in _JSON_TYPES}
        if unknown:
            raise ValueError(f"content: unknown type(s) {unknown}; expected one of {sorted(_JSON_TYPES)}")


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What the callback computes at a step, and where."""

    name: str  # the key of every_n_steps and of the callback's ``enabled``
    writes: tuple[str, ...]  # summary kinds
    every_n_steps: int  # default interval (for dead_filters: the window length)
    thread: str  # TRAINING or BACKGROUND
    needs: str | None  # the constructor argument it cannot run without ("probe", "embedding_probe")
    layers_argument: str | None  # the constructor argument naming its layers (None: not per layer)
    view: str  # the view that shows it
    default_layers: str  # which layers when the argument is not given (prose, for docs and empty states)


@dataclasses.dataclass(frozen=True)
class View:
    """A tab of the CNN Viz UI; its backend routes are ``api/<name>/...``."""

    name: str
    title: str
    shows: tuple[str, ...]  # snapshot names (first = the one whose data makes the view non-empty; none:
    # a view that summarises the others' data, such as the Overview)
    hint: str  # what to pass to get data, with {every[<snapshot>]} placeholders
    # summary kinds written by another view's snapshot that this view shows (and that view does not)
    shows_kinds: tuple[str, ...] = ()


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
        View(
            "overview",
            "Overview",
            (),  # no snapshot of its own: it summarises the other views' data (plugin/routes/overview.py)
            "The Overview summarises what CNNVizCallback already logs for the other tabs: dead filters "
            "(every conv layer, by default), the first layer's smoothness (kernels), separability "
            "(embedding_probe=(images, labels)), Grad-CAM faithfulness (probe=... and faithfulness=True) "
            "and the probe images' accuracy (probe=(images, labels)), with findings computed from them.",
        ),
        View(
            "filters",
            "Filters",
            ("kernels",),
            "CNNVizCallback logs the kernels of the first conv layer every {every[kernels]} steps by default; "
            'choose layers with kernel_layers=[...] and the schedule with every_n_steps={{"kernels": N}}.',
        ),
        View(
            "activations",
            "Activations",
            ("activations",),
            "Pass probe=(images, labels) to CNNVizCallback: it then logs the activation maps of 3 evenly "
            "spaced stage outputs every {every[activations]} steps (activation_layers=[...] to choose).",
        ),
        View(
            "dead",
            "Dead filters",
            ("dead_filters",),
            "CNNVizCallback measures every conv layer's activation rates over windows of "
            "{every[dead_filters]} steps by default "
            '(dead_filter_layers=[...], every_n_steps={{"dead_filters": N}}).',
        ),
        View(
            "gradcam",
            "Grad-CAM",
            ("gradcam", "attributions", "faithfulness"),
            "Pass probe=(images, labels) to CNNVizCallback: it then logs the Grad-CAM of the probe images "
            "at the last spatial map before the global pooling every {every[gradcam]} steps "
            '(gradcam_layers=[...] and every_n_steps={{"gradcam": N}} to choose; '
            'attributions=["saliency", "occlusion"] adds attribution maps; faithfulness=True scores each map '
            "against a random one by deletion and insertion).",
        ),
        View(
            "patterns",
            "Patterns",
            ("patterns",),
            'Pass pattern_layers=["features.conv2", ...] to CNNVizCallback: it then optimises an image for '
            "each filter chosen by pattern_channels (the first 64 by default; indices, 'most_active' or "
            "'dead' to choose), every {every[patterns]} steps and at on_epoch_end, in the background on a "
            "copy of the model.",
        ),
        View(
            "embedding",
            "Embedding",
            ("embedding",),
            "Pass embedding_probe=(images, labels) (a few hundred to a few thousand held-out images) to "
            "CNNVizCallback: it then maps their codes in 2-D with t-SNE every {every[embedding]} steps "
            "and at on_epoch_end, stable across steps, with thumbnails (each filter's top images of "
            "top_example_layers are in the Top images tab).",
        ),
        View(
            "top_images",
            "Top images",
            (),  # no snapshot of its own: the embedding snapshot's top_examples
            "Pass embedding_probe=(images, labels) (a few hundred to a few thousand held-out images) to "
            "CNNVizCallback: with each embedding (every {every[embedding]} steps and at on_epoch_end, in "
            "the background) it records the k most activating probe images of every filter of "
            'top_example_layers (default: the activation layers; top_example_layers=["features.conv2", '
            "...] to choose), with the receptive field of each maximum.",
            shows_kinds=("top_examples",),
        ),
        View(
            "separability",
            "Separability",
            ("separability",),
            "Pass embedding_probe=(images, labels) (at least 5 labelled images per class) to CNNVizCallback: "
            "it then fits a linear probe on the pooled codes of every stage output and of the classifier's "
            "input every {every[separability]} steps and at on_epoch_end, in the background, and logs its "
            "held-out accuracy (separability_layers=[...] to choose the layers).",
        ),
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
    for view in VIEWS.values():
        if summary_name in view.shows_kinds:
            return view.name
    for snapshot in SNAPSHOTS.values():
        if summary_name in snapshot.writes and summary_name != "probe":
            return snapshot.view
    return EXTRA_SHOWN.get(summary_name)


def check_content(kind: SummaryKind, content: Mapping[str, Any]) -> dict:
    """``content`` with every field of the kind's schema that is absent or of the wrong JSON type as None.

    Fields outside the schema are kept as they are (older or newer writers); readers then
    never re-check a type. List fields are checked item by item (``numbers`` items may be null).
    """
    checked = dict(content)
    for key, type_name in kind.content.items():
        if not _matches(checked.get(key), type_name):
            checked[key] = None
    return checked


def _matches(value: Any, type_name: str) -> bool:
    if value is None:
        return False
    if type_name == "flag":
        return isinstance(value, bool)
    if isinstance(value, bool):  # JSON true is not a number
        return False
    if type_name in _ITEM_TYPES:
        item = _ITEM_TYPES[type_name]
        return isinstance(value, list) and all(
            (v is None and type_name == "numbers") or (isinstance(v, item) and not isinstance(v, bool))
            for v in value
        )
    return isinstance(value, _JSON_TYPES[type_name])


def table() -> dict:
    """The table as JSON for ``api/runs/list``: the frontend reads its views and empty states here."""
    every = default_every_n_steps()
    return {
        "summary_kinds": {
            name: {"storage": kind.storage, "per_layer": kind.per_layer, "view": view_of(name)}
            for name, kind in SUMMARY_KINDS.items()
        },
        "snapshots": {
            name: {
                "writes": list(snapshot.writes),
                "every_n_steps": snapshot.every_n_steps,
                "thread": snapshot.thread,
                "needs": snapshot.needs,
                "layers_argument": snapshot.layers_argument,
                "view": snapshot.view,
                "default_layers": snapshot.default_layers,
            }
            for name, snapshot in SNAPSHOTS.items()
        },
        "views": [
            {
                "name": view.name,
                "title": view.title,
                "shows": list(view.shows),
                "shows_kinds": list(view.shows_kinds),
                "summary_kinds": sorted(
                    {
                        kind
                        for name in view.shows
                        for kind in SNAPSHOTS[name].writes
                        if kind != "probe" and view_of(kind) == view.name
                    }
                    | set(view.shows_kinds)
                    | {kind for kind, shown_in in EXTRA_SHOWN.items() if shown_in == view.name}
                ),
                "hint": view.hint.format(every=every),
            }
            for view in VIEWS.values()
        ],
    }


def _check_table() -> None:
    """The rows agree with each other (run at import: a wrong row fails every test at once)."""
    for snapshot in SNAPSHOTS.values():
        missing = [kind for kind in snapshot.writes if kind not in SUMMARY_KINDS]
        if missing:
            raise ValueError(f"snapshot {snapshot.name!r} writes unknown summary kinds {missing}")
        if snapshot.view not in VIEWS:
            raise ValueError(f"snapshot {snapshot.name!r} is shown in unknown view {snapshot.view!r}")
        if snapshot.thread not in (TRAINING, BACKGROUND):
            raise ValueError(f"snapshot {snapshot.name!r}: thread {snapshot.thread!r}")
    for view in VIEWS.values():
        unknown = [name for name in view.shows if name not in SNAPSHOTS]
        if unknown:
            raise ValueError(f"view {view.name!r} shows unknown snapshots {unknown}")
        for kind in view.shows_kinds:
            writers = [s.name for s in SNAPSHOTS.values() if kind in s.writes]
            if not writers or any(SNAPSHOTS[name].view == view.name for name in writers):
                raise ValueError(
                    f"view {view.name!r}: shows_kinds {kind!r} must be written by another view's snapshot; "
                    f"written by {writers}"
                )
            others = [v.name for v in VIEWS.values() if kind in v.shows_kinds and v.name != view.name]
            if others:
                raise ValueError(
                    f"summary kind {kind!r} is in the shows_kinds of views {[view.name, *others]}"
                )


_check_table()
