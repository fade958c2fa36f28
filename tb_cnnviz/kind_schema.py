"""What a row of the table of kinds is, and what follows from any set of rows.

The rows themselves are ``tb_cnnviz/kinds.py`` (read it first); this module holds the row types
(``SummaryKind``, ``Snapshot``, ``View`` and their constants), the typed check of a summary's
content against its kind's schema, the check that rows agree with each other, and the rows'
JSON form for ``api/runs/list``. The functions take the rows as arguments (``kinds`` passes its
own, read at each call), so a test can check a changed table without touching the real one.

Torch-free and numpy-free, like ``kinds`` (the TensorBoard plugin imports both).
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
    hint: str  # the empty state: what to pass to get data, {every[<snapshot>]} placeholders (view_hints.py)
    # summary kinds written by another view's snapshot that this view shows (and that view does not)
    shows_kinds: tuple[str, ...] = ()


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


def view_of(
    summary_name: str,
    snapshots: Mapping[str, Snapshot],
    views: Mapping[str, View],
    extra_shown: Mapping[str, str],
) -> str | None:
    """The view that shows a summary kind (a view's ``shows_kinds`` before its snapshot's view)."""
    for view in views.values():
        if summary_name in view.shows_kinds:
            return view.name
    for snapshot in snapshots.values():
        if summary_name in snapshot.writes and summary_name != "probe":
            return snapshot.view
    return extra_shown.get(summary_name)


def as_json(
    summary_kinds: Mapping[str, SummaryKind],
    snapshots: Mapping[str, Snapshot],
    views: Mapping[str, View],
    extra_shown: Mapping[str, str],
) -> dict:
    """The rows as JSON for ``api/runs/list``: the frontend reads its views and empty states here
    (each view's hint with ``{every[<snapshot>]}`` filled in from the snapshots' intervals)."""
    every = {name: snapshot.every_n_steps for name, snapshot in snapshots.items()}

    def shown_by(summary_name: str) -> str | None:
        return view_of(summary_name, snapshots, views, extra_shown)

    return {
        "summary_kinds": {
            name: {"storage": kind.storage, "per_layer": kind.per_layer, "view": shown_by(name)}
            for name, kind in summary_kinds.items()
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
            for name, snapshot in snapshots.items()
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
                        for kind in snapshots[name].writes
                        if kind != "probe" and shown_by(kind) == view.name
                    }
                    | set(view.shows_kinds)
                    | {kind for kind, shown_in in extra_shown.items() if shown_in == view.name}
                ),
                "hint": view.hint.format(every=every),
            }
            for view in views.values()
        ],
    }


def check_rows(
    summary_kinds: Mapping[str, SummaryKind], snapshots: Mapping[str, Snapshot], views: Mapping[str, View]
) -> None:
    """The rows agree with each other: a clear ``ValueError`` naming the first row that does not."""
    for snapshot in snapshots.values():
        missing = [kind for kind in snapshot.writes if kind not in summary_kinds]
        if missing:
            raise ValueError(f"snapshot {snapshot.name!r} writes unknown summary kinds {missing}")
        if snapshot.view not in views:
            raise ValueError(f"snapshot {snapshot.name!r} is shown in unknown view {snapshot.view!r}")
        if snapshot.thread not in (TRAINING, BACKGROUND):
            raise ValueError(f"snapshot {snapshot.name!r}: thread {snapshot.thread!r}")
    for view in views.values():
        unknown = [name for name in view.shows if name not in snapshots]
        if unknown:
            raise ValueError(f"view {view.name!r} shows unknown snapshots {unknown}")
        for kind in view.shows_kinds:
            writers = [s.name for s in snapshots.values() if kind in s.writes]
            if not writers or any(snapshots[name].view == view.name for name in writers):
                raise ValueError(
                    f"view {view.name!r}: shows_kinds {kind!r} must be written by another view's snapshot; "
                    f"written by {writers}"
                )
            others = [v.name for v in views.values() if kind in v.shows_kinds and v.name != view.name]
            if others:
                raise ValueError(
                    f"summary kind {kind!r} is in the shows_kinds of views {[view.name, *others]}"
                )
