"""The Grad-CAM view's faithfulness route (api/gradcam/faithfulness): areas, gaps, flags and curves of a
hand-written run with known values, null (never a number) where an area is not finite, the nearest logged
step, "not logged" with a hint for a layer without data, and the callback run of the views logdir."""

from __future__ import annotations

import numpy as np
import pytest
from logdirs import CALLBACK_RUN, api_url, assert_error, get_json
from support import plugin_client, write_run

from tb_cnnviz import summary
from tb_cnnviz.snapshots.faithfulness import COLUMNS

NAN = float("nan")
FRACTIONS = [0.0, 0.5, 1.0]
# step -> per image [deletion_cam, deletion_random, insertion_cam, insertion_random]
AREAS = {
    10: [[0.2, 0.5, 0.8, 0.5], [0.495, 0.5, 0.4, 0.45]],  # gaps: image 0 +0.3 / +0.3, image 1 +0.005 / -0.05
    20: [[0.1, 0.6, 0.9, 0.5], [NAN, 0.5, 0.7, 0.5]],  # image 1's CAM area not finite
}
CURVES = {  # step 10 only: [N, 4, 3]
    10: [
        [[0.9, 0.1, 0.05], [0.9, 0.5, 0.05], [0.05, 0.8, 0.9], [0.05, 0.5, 0.9]],
        [[0.7, 0.6, 0.3], [0.7, 0.5, 0.3], [0.3, 0.4, 0.7], [0.3, 0.45, 0.7]],
    ]
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("faithfulness_logdir"))
    by_step: dict[int, list] = {}
    for step, areas in AREAS.items():
        by_step.setdefault(step, []).append(
            summary.tensor_summary(
                "faithfulness", "head", np.asarray(areas, np.float32), columns=list(COLUMNS), steps=2, seed=0
            )
        )
        # another Grad-CAM layer of the run, without faithfulness data
        by_step[step].append(summary.tensor_summary("gradcam_maps", "other", np.zeros((2, 2, 2), np.float32)))
    for step, curves in CURVES.items():
        by_step[step].append(
            summary.tensor_summary(
                "faithfulness_curves",
                "head",
                np.asarray(curves, np.float32),
                rows=list(COLUMNS),
                fractions=FRACTIONS,
            )
        )
    write_run(root, "run", by_step)
    return plugin_client(root)[0]


def test_areas_gaps_flags_and_curves_at_a_logged_step(client):
    answer = get_json(client, api_url("gradcam/faithfulness", run="run", layer="head", step=10))
    assert answer["logged"] is True and answer["step"] == 10 and answer["requested_step"] == 10
    assert answer["columns"] == list(COLUMNS) and answer["fractions"] == FRACTIONS
    assert answer["steps"] == 2 and answer["seed"] == 0  # the content of the series
    first, second = answer["images"]
    assert [first[c] for c in COLUMNS] == pytest.approx(AREAS[10][0])
    assert first["deletion_gap"] == pytest.approx(0.3) and first["insertion_gap"] == pytest.approx(0.3)
    assert first["no_better_than_random"] is False
    assert second["deletion_gap"] == pytest.approx(0.005) and second["insertion_gap"] == pytest.approx(-0.05)
    # a positive gap below min_gap is no better than random too
    assert answer["min_gap"] == 0.01
    assert second["no_better_than_random"] is True and answer["no_better_than_random"] == 1
    assert first["original_probability"] == pytest.approx(0.9)
    assert first["curves"]["deletion_cam"] == pytest.approx(CURVES[10][0][0])
    assert second["curves"]["insertion_random"] == pytest.approx(CURVES[10][1][3])


def test_a_non_finite_area_is_null_and_unflagged_and_curves_may_be_missing(client):
    # step 19 is not logged: the nearest logged step (20) answers, and says so
    answer = get_json(client, api_url("gradcam/faithfulness", run="run", layer="head", step=19))
    assert answer["step"] == 20 and answer["requested_step"] == 19
    second = answer["images"][1]
    assert second["deletion_cam"] is None and second["deletion_gap"] is None
    assert second["no_better_than_random"] is None and answer["no_better_than_random"] == 0
    assert second["insertion_gap"] == pytest.approx(0.2)
    assert answer["fractions"] is None and second["curves"] is None and second["original_probability"] is None


def test_the_gap_over_training_averages_the_finite_images(client):
    over = get_json(client, api_url("gradcam/faithfulness", run="run", layer="head", step=10))[
        "over_training"
    ]
    assert over["steps"] == [10, 20] and over["images"] == [2, 2]
    assert over["deletion_gap"] == pytest.approx([0.1525, 0.5])  # (0.3 + 0.005) / 2; step 20: image 0 only
    assert over["insertion_gap"] == pytest.approx([0.125, 0.3])
    assert over["no_better_than_random"] == [1, 0]


def test_a_layer_without_data_says_how_to_get_it_and_bad_requests_are_named(client):
    answer = get_json(client, api_url("gradcam/faithfulness", run="run", layer="other", step=10))
    assert answer["logged"] is False and "faithfulness=True" in answer["hint"]
    assert_error(
        client, api_url("gradcam/faithfulness", run="nope", layer="head", step=10), 404, "known runs"
    )
    assert_error(client, api_url("gradcam/faithfulness", run="run", layer="head"), 400, "step")
    assert_error(client, api_url("gradcam/faithfulness", run="run", step=10), 400, "layer")


def test_the_callback_run_answers_what_it_logged(views_client, views_logged):
    tags = [tag for tag in views_logged if tag.startswith("cnnviz/faithfulness/")]
    assert tags, "the views logdir's callback run logs faithfulness (faithfulness=True)"
    for tag in tags:
        layer = tag.split("/", 2)[2]
        series, curves = views_logged[tag], views_logged[f"cnnviz/faithfulness_curves/{layer}"]
        step = series["steps"][-1]
        answer = get_json(
            views_client, api_url("gradcam/faithfulness", run=CALLBACK_RUN, layer=layer, step=step)
        )
        assert answer["step"] == step and answer["over_training"]["steps"] == series["steps"]
        areas = series["values"][-1]
        assert len(answer["images"]) == len(areas) and answer["fractions"] == pytest.approx(
            curves["content"]["fractions"]
        )
        for image, row, curve in zip(answer["images"], areas, curves["values"][-1]):
            assert [image[c] for c in COLUMNS] == pytest.approx(row.tolist(), abs=1e-5)
            assert image["deletion_gap"] == pytest.approx(float(row[1]) - float(row[0]), abs=2e-5)
            assert image["no_better_than_random"] == bool(float(row[1]) - float(row[0]) < answer["min_gap"])
            assert image["curves"]["deletion_cam"] == pytest.approx(curve[0].tolist(), abs=1e-5)
            assert all(0 <= value <= 1 for value in image["curves"]["insertion_random"])
