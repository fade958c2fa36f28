"""The one table of kinds (``tb_cnnviz.kinds``): its rows agree, its content checks and its JSON form."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from support import ACTIVATIONS_FIELDS

from tb_cnnviz import kinds
from tb_cnnviz.view_hints import HINTS


def test_every_row_is_filed_under_its_own_name():
    for table in (kinds.SUMMARY_KINDS, kinds.SNAPSHOTS, kinds.VIEWS):
        assert table and all(key == row.name for key, row in table.items())


def test_snapshots_write_known_summary_kinds_and_are_shown_by_a_view_that_lists_them():
    for snapshot in kinds.SNAPSHOTS.values():
        assert snapshot.writes and set(snapshot.writes) <= set(kinds.SUMMARY_KINDS), snapshot.name
        assert snapshot.thread in (kinds.TRAINING, kinds.BACKGROUND)
        assert snapshot.every_n_steps > 0
        assert snapshot.name in kinds.VIEWS[snapshot.view].shows, snapshot.name


def test_every_view_shows_snapshots_that_name_it_back():
    for view in kinds.VIEWS.values():
        assert view.title and view.hint
        # only the Overview shows nothing of its own; Top images shows a summary kind of the embedding snapshot
        assert view.shows or view.shows_kinds or view.name == "overview", view.name
        for name in view.shows:
            assert kinds.SNAPSHOTS[name].view == view.name, (view.name, name)


def test_every_view_has_one_empty_state_text_and_every_text_a_view():
    assert list(HINTS) == list(kinds.VIEWS)
    assert all(kinds.VIEWS[name].hint == text for name, text in HINTS.items())


def test_every_summary_kind_has_a_storage_and_is_written_or_shown_somewhere():
    written = {kind for snapshot in kinds.SNAPSHOTS.values() for kind in snapshot.writes}
    for name, kind in kinds.SUMMARY_KINDS.items():
        assert kind.storage in (kinds.TENSOR, kinds.BLOB), name
        assert kind.value, name
        assert name in written or name in kinds.EXTRA_SHOWN or name in kinds.RUN_RECORDS, name
    assert set(kinds.EXTRA_SHOWN.values()) <= set(kinds.VIEWS)


def test_today_s_rows():
    """The names the on-disk format and the routes depend on (changing one is a format change)."""
    assert list(kinds.SNAPSHOTS) == [
        "kernels",
        "activations",
        "dead_filters",
        "gradcam",
        "attributions",
        "patterns",
        "separability",
        "embedding",
        "faithfulness",
    ]
    assert list(kinds.VIEWS) == [
        "overview",
        "filters",
        "activations",
        "dead",
        "gradcam",
        "patterns",
        "embedding",
        "top_images",
        "separability",
    ]
    assert {name for name, kind in kinds.SUMMARY_KINDS.items() if kind.storage == kinds.TENSOR} == {
        "kernels",
        "smoothness",
        "dead_filters",
        "dead_filter_sample",
        "gradcam_maps",
        "gradcam_info",
        "gradcam_predicted_maps",
        "pattern_values",
        "pattern_channels",
        "pattern_reference",
        "embedding",
        "top_examples",
        "separability",
        "faithfulness",
        "faithfulness_curves",
        "dropped",
        "epochs",
        "layer_order",
    }
    assert [name for name, kind in kinds.SUMMARY_KINDS.items() if not kind.per_layer] == [
        "probe",
        "sprites",
        "dropped",
        "epochs",
        "layer_order",
    ]
    assert kinds.default_every_n_steps() == {
        "kernels": 100,
        "activations": 200,
        "dead_filters": 200,
        "gradcam": 200,
        "attributions": 500,
        "patterns": 1000,
        "embedding": 1000,
        "separability": 1000,
        "faithfulness": 200,
    }
    assert {name for name, s in kinds.SNAPSHOTS.items() if s.thread == kinds.BACKGROUND} == {
        "patterns",
        "embedding",
        "separability",
    }


def test_view_of_a_summary_kind():
    assert kinds.view_of("kernel_grid") == "filters"
    assert kinds.view_of("attribution") == "gradcam"
    assert kinds.view_of("top_examples") == "top_images"  # a view's shows_kinds wins over its snapshot's view
    assert kinds.view_of("sprites") == "embedding"  # the embedding snapshot's other kinds stay in its view
    assert kinds.view_of("dream") == "patterns"  # written by the command line, not by a snapshot
    assert kinds.view_of("probe") is None  # shown by several views, owned by none
    assert kinds.view_of("no_such_kind") is None


def test_summary_kind_lookup_names_the_unknown_kind():
    assert kinds.summary_kind("gradcam_info").storage == kinds.TENSOR
    with pytest.raises(ValueError, match=r"kind: unknown summary kind 'gradcam_infos'; expected one of \["):
        kinds.summary_kind("gradcam_infos")


def test_a_row_with_a_wrong_storage_or_content_type_is_refused():
    with pytest.raises(ValueError, match=r"storage: expected 'tensor' or 'blob', got 'image'"):
        kinds.SummaryKind("x", "image", True, "v")
    with pytest.raises(ValueError, match=r"content: unknown type\(s\) \{'size': 'integer'\}"):
        kinds.SummaryKind("x", kinds.TENSOR, True, "v", {"size": "integer", "n": "int"})


@pytest.mark.parametrize(
    "table, key, row, message",
    [
        (
            "SNAPSHOTS",
            "broken",
            kinds.Snapshot("broken", ("kernels", "nope"), 1, kinds.TRAINING, None, None, "filters", "-"),
            r"snapshot 'broken' writes unknown summary kinds \['nope'\]",
        ),
        (
            "SNAPSHOTS",
            "broken",
            kinds.Snapshot("broken", ("kernels",), 1, kinds.TRAINING, None, None, "nowhere", "-"),
            r"snapshot 'broken' is shown in unknown view 'nowhere'",
        ),
        (
            "SNAPSHOTS",
            "broken",
            kinds.Snapshot("broken", ("kernels",), 1, "gpu", None, None, "filters", "-"),
            r"snapshot 'broken': thread 'gpu'",
        ),
        (
            "VIEWS",
            "broken",
            kinds.View("broken", "Broken", ("kernels", "ghost"), "hint"),
            r"view 'broken' shows unknown snapshots \['ghost'\]",
        ),
        (
            "VIEWS",
            "broken",
            kinds.View("broken", "Broken", (), "hint", shows_kinds=("no_such_kind",)),
            r"view 'broken': shows_kinds 'no_such_kind' must be written by another view's snapshot; written by \[\]",
        ),
        (
            "VIEWS",
            "filters",
            kinds.View("filters", "Filters", ("kernels",), "hint", shows_kinds=("smoothness",)),
            r"view 'filters': shows_kinds 'smoothness' must be written by another view's snapshot; "
            r"written by \['kernels'\]",
        ),
        (
            "VIEWS",
            "broken",
            kinds.View("broken", "Broken", (), "hint", shows_kinds=("top_examples",)),
            r"summary kind 'top_examples' is in the shows_kinds of views \['top_images', 'broken'\]",
        ),
    ],
)
def test_the_import_time_check_catches_a_row_that_disagrees(monkeypatch, table, key, row, message):
    rows = dict(getattr(kinds, table))
    rows[key] = row
    monkeypatch.setattr(kinds, table, rows)
    with pytest.raises(ValueError, match=message):
        kinds._check_table()


# ----------------------------------------------------------------------------- check_content
def test_check_content_turns_each_wrong_json_type_into_none_and_keeps_the_right_ones():
    dream = kinds.summary_kind("dream")
    content = {
        "version": 1,
        "kind": "dream",
        "layer": "a+b",
        "layers": ["a", "b"],  # texts: right
        "octaves": 4.0,  # int: a float is wrong
        "octave_scale": 1,  # number: an int is a number
        "steps": True,  # int: JSON true is not a number
        "lr": "0.01",  # number: a string is wrong
        "seed": None,  # null stays None
        "size": [64, 64.5],  # ints: one float item spoils the list
        "objective": [1.5, None],  # numbers: null items are allowed
        "gain": float("nan"),  # number: a float (NaN is for the reader to judge)
        "future_field": {"any": "thing"},  # not in the schema: kept as it is
    }
    checked = kinds.check_content(dream, content)
    assert checked["layers"] == ["a", "b"]
    assert checked["octaves"] is None
    assert checked["octave_scale"] == 1
    assert checked["steps"] is None
    assert checked["lr"] is None
    assert checked["seed"] is None
    assert checked["size"] is None
    assert checked["objective"] == [1.5, None]
    assert checked["gain"] != checked["gain"]
    assert checked["future_field"] == {"any": "thing"}
    assert (checked["version"], checked["kind"], checked["layer"]) == (1, "dream", "a+b")
    assert content["octaves"] == 4.0 and content["size"] == [64, 64.5]  # the input is not changed


def test_check_content_adds_absent_schema_fields_as_none():
    checked = kinds.check_content(kinds.summary_kind("activations"), {"channels": 8})
    assert checked == {**dict.fromkeys(ACTIVATIONS_FIELDS), "channels": 8}


@pytest.mark.parametrize(
    "type_name, good, bad",
    [
        ("int", [0, -3], [1.0, True, "1", [1]]),
        ("number", [0, 2.5, -1e30], [False, "2.5", [2.5]]),
        ("text", ["", "jet"], [1, None, ["jet"]]),
        ("ints", [[], [1, 2]], [[1, None], [1, True], [1.5], "12", (1, 2)]),
        ("numbers", [[], [1, 2.5, None]], [[1, "2"], [False], 3.0]),
        ("texts", [[], ["a"]], [["a", 1], ["a", None], "a"]),
        ("object", [{}, {"a": 1}], [[], "a", 1]),
        ("flag", [True, False], [0, 1, "true"]),
    ],
)
def test_each_json_type_accepts_and_refuses_the_right_values(type_name, good, bad):
    kind = kinds.SummaryKind("x", kinds.TENSOR, True, "v", {"field": type_name})
    for value in good:
        assert kinds.check_content(kind, {"field": value})["field"] == value, (type_name, value)
    for value in bad:
        assert kinds.check_content(kind, {"field": value})["field"] is None, (type_name, value)


# ----------------------------------------------------------------------------- table()
def test_table_is_json_and_mirrors_the_rows():
    table = json.loads(json.dumps(kinds.table()))
    assert set(table["summary_kinds"]) == set(kinds.SUMMARY_KINDS)
    assert table["summary_kinds"]["probe"] == {"storage": "blob", "per_layer": False, "view": None}
    assert table["summary_kinds"]["kernels"] == {"storage": "tensor", "per_layer": True, "view": "filters"}
    assert table["snapshots"]["gradcam"] == {
        "writes": ["gradcam_maps", "gradcam_info", "gradcam_predicted_maps", "probe"],
        "every_n_steps": 200,
        "thread": "training",
        "needs": "probe",
        "layers_argument": "gradcam_layers",
        "view": "gradcam",
        "default_layers": "the last spatial map before the global pooling",
    }
    assert [view["name"] for view in table["views"]] == list(kinds.VIEWS)
    by_name = {view["name"]: view for view in table["views"]}
    assert by_name["gradcam"]["summary_kinds"] == [
        "attribution",
        "faithfulness",
        "faithfulness_curves",
        "gradcam",
        "gradcam_info",
        "gradcam_maps",
        "gradcam_predicted_maps",
    ]
    assert by_name["patterns"]["summary_kinds"] == [
        "dream",
        "pattern_channels",
        "pattern_reference",
        "pattern_values",
        "patterns",
    ]
    # one snapshot, two tabs: the embedding snapshot's top_examples are shown by Top images only
    assert by_name["embedding"]["summary_kinds"] == ["embedding", "sprites"]
    assert (by_name["top_images"]["shows"], by_name["top_images"]["shows_kinds"]) == ([], ["top_examples"])
    assert by_name["top_images"]["summary_kinds"] == ["top_examples"]
    assert by_name["top_images"]["title"] == "Top images"
    shown = [kind for view in table["views"] for kind in view["summary_kinds"]]
    assert len(shown) == len(set(shown))  # every summary kind is shown by one view at most
    assert by_name["dead"]["title"] == "Dead filters"
    assert table["views"][0]["name"] == "overview"  # the first tab
    assert (by_name["overview"]["shows"], by_name["overview"]["summary_kinds"]) == ([], [])


def test_table_hints_contain_the_default_intervals():
    hints = {view["name"]: view["hint"] for view in kinds.table()["views"]}
    assert "every 100 steps by default" in hints["filters"]
    assert 'every_n_steps={"kernels": N}' in hints["filters"]  # literal braces survive formatting
    assert "every 200 steps" in hints["activations"]
    assert "windows of 200 steps" in hints["dead"]
    assert "every 200 steps" in hints["gradcam"]
    assert "every 1000 steps" in hints["patterns"]
    assert "every 1000 steps" in hints["embedding"]
    # the Top images tab's empty state: what to pass, and how often the embedding snapshot records them
    assert "embedding_probe=" in hints["top_images"] and "top_example_layers" in hints["top_images"]
    assert "every 1000 steps" in hints["top_images"]
    for hint in hints.values():
        assert "{every" not in hint and "}}" not in hint


def test_table_hints_follow_a_changed_default(monkeypatch):
    snapshots = dict(kinds.SNAPSHOTS)
    snapshots["kernels"] = dataclasses.replace(snapshots["kernels"], every_n_steps=7)
    monkeypatch.setattr(kinds, "SNAPSHOTS", snapshots)
    (filters,) = [view for view in kinds.table()["views"] if view["name"] == "filters"]
    assert re.search(r"\bevery 7 steps by default\b", filters["hint"])


# ----------------------------------------------------------------------------- docs/design.md
def _design_table(header: str) -> dict[str, list[str]]:
    """The rows of the markdown table in docs/design.md whose header row starts with ``header``."""
    lines = (Path(__file__).parents[2] / "docs" / "design.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def _names(cell: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", cell)


def test_the_design_page_shows_today_s_rows():
    summary_kinds = _design_table("summary kind")
    assert list(summary_kinds) == list(kinds.SUMMARY_KINDS)
    for name, (storage, tag, _, _, view) in summary_kinds.items():
        kind = kinds.SUMMARY_KINDS[name]
        assert storage == kind.storage and tag.startswith(f"`cnnviz/{name}")
        assert ("<" in tag) == kind.per_layer, name
        assert _names(view) == ([kinds.view_of(name)] if kinds.view_of(name) else []), name
    snapshots = _design_table("snapshot")
    assert list(snapshots) == list(kinds.SNAPSHOTS)
    for name, (writes, every, thread, needs, _, view) in snapshots.items():
        snapshot = kinds.SNAPSHOTS[name]
        assert _names(writes) == list(snapshot.writes), name
        assert (int(every), thread, _names(view)) == (
            snapshot.every_n_steps,
            snapshot.thread,
            [snapshot.view],
        )
        assert _names(needs) == ([snapshot.needs] if snapshot.needs else []), name
    views = _design_table("view")
    assert list(views) == list(kinds.VIEWS)
    table = {view["name"]: view for view in kinds.table()["views"]}
    for name, (title, shows, summary_kinds_shown, _) in views.items():
        assert title == table[name]["title"]
        assert _names(shows) == table[name]["shows"]
        assert _names(summary_kinds_shown) == table[name]["summary_kinds"]
