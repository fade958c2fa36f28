"""Routes of the Separability view (api/separability/...): every layer of a run in depth order with its
accuracy per logged step, unmeasured steps as null with their outcome, read over a hand-written run with
known values and over the callback run of the views logdir."""

from __future__ import annotations

import math

import numpy as np
import pytest
from logdirs import CALLBACK_RUN, api_url, assert_error, get_json
from support import plugin_client, write_run

from tb_cnnviz import summary
from tb_cnnviz.analysis.separability import COLUMNS, NOT_ENOUGH_LABELS, OUTCOMES

NAN = float("nan")
# layer -> (depth, measured_at, {step: row of COLUMNS}); written out of depth order on purpose
ROWS = {
    "head": (2, "input", {10: [0.9, 0.25, 10.0, 1.0, 40, 0], 20: [0.95, 0.25, 1.0, 1.0, 40, 0]}),
    "block1": (0, "output", {10: [0.4, 0.25, 100.0, 0.5, 40, 0], 20: [NAN, NAN, NAN, NAN, 40, 2]}),
    "block2": (1, "output", {10: [0.6, 0.25, 10.0, 0.8, 40, 0], 20: [0.7, 0.25, 10.0, 0.9, 40, 0]}),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("separability_logdir"))
    by_step: dict[int, list] = {}
    for layer, (depth, measured_at, rows) in ROWS.items():
        for step, row in rows.items():
            by_step.setdefault(step, []).append(
                summary.tensor_summary(
                    "separability",
                    layer,
                    np.asarray(row, np.float32),
                    columns=list(COLUMNS),
                    outcomes=list(OUTCOMES),
                    measured_at=measured_at,
                    depth=depth,
                )
            )
    write_run(root, "probe", by_step)
    return plugin_client(root)[0]


def test_layers_in_depth_order_with_their_values_per_step(client):
    answer = get_json(client, api_url("separability/layers", run="probe"))
    assert answer["run"] == "probe" and answer["steps"] == [10, 20] and answer["outcomes"] == list(OUTCOMES)
    assert [layer["layer"] for layer in answer["layers"]] == ["block1", "block2", "head"]
    by_name = {layer["layer"]: layer for layer in answer["layers"]}
    head = by_name["head"]
    assert head["depth"] == 2 and head["measured_at"] == "input" and head["steps"] == [10, 20]
    assert head["accuracy"] == pytest.approx([0.9, 0.95]) and head["chance"] == pytest.approx([0.25, 0.25])
    assert head["ridge"] == pytest.approx([10.0, 1.0]) and head["train_accuracy"] == pytest.approx([1.0, 1.0])
    assert head["test_images"] == [40, 40] and head["outcome"] == [0, 0]
    block1 = by_name["block1"]
    # the unmeasured step is null with its outcome, never a number
    assert block1["accuracy"] == [pytest.approx(0.4), None] and block1["outcome"] == [0, 2]
    assert block1["chance"][1] is None and block1["ridge"][1] is None


def test_an_unknown_run_is_a_404_naming_the_known_runs(client):
    assert_error(client, api_url("separability/layers", run="nope"), 404, "known runs")
    assert_error(client, api_url("separability/layers"), 400, "run")


def test_the_callback_run_answers_what_it_logged(views_client, views_logged):
    tags = [tag for tag in views_logged if tag.startswith("cnnviz/separability/")]
    assert tags, "the views logdir's callback run logs separability (a labelled embedding probe)"
    answer = get_json(views_client, api_url("separability/layers", run=CALLBACK_RUN))
    assert sorted(layer["layer"] for layer in answer["layers"]) == sorted(t.split("/", 2)[2] for t in tags)
    assert [layer["depth"] for layer in answer["layers"]] == sorted(
        layer["depth"] for layer in answer["layers"]
    )
    assert answer["layers"][-1]["measured_at"] == "input"  # the classifier's input is the deepest
    for layer in answer["layers"]:
        series = views_logged[f"cnnviz/separability/{layer['layer']}"]
        assert layer["steps"] == series["steps"]
        for i, row in enumerate(series["values"]):
            logged = dict(zip(COLUMNS, row.tolist()))
            assert layer["outcome"][i] == int(logged["outcome"])
            if math.isnan(logged["accuracy"]):
                assert layer["accuracy"][i] is None and logged["outcome"] != 0
            else:
                assert layer["accuracy"][i] == pytest.approx(logged["accuracy"], abs=1e-5)
    assert answer["outcomes"][NOT_ENOUGH_LABELS].startswith("not enough labelled images")
