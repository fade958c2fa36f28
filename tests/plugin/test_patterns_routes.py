"""Routes of the Patterns view (api/patterns/...): galleries, one filter's detail and DeepDreams."""

from __future__ import annotations

import numpy as np
import pytest
from logdirs import (
    CALLBACK_RUN,
    DREAM_LAYER,
    DREAM_PNGS,
    DREAM_RUN,
    P,
    api_url,
    get_json,
    png_of,
)
from support import EXACT_RUN, PATTERN_CHANNELS, plugin_client, write_run

from tb_cnnviz import metadata, summary
from tb_cnnviz.plugin.routes.patterns import failed_patterns


def test_patterns_step_lists_each_filter_with_the_activation_it_reached(views_client, views_logged):
    values = views_logged["cnnviz/pattern_values/features.conv2"]
    assert values["steps"] == [2, 4, 6]
    answer = get_json(
        views_client, api_url("patterns/step", run=CALLBACK_RUN, layer="features.conv2", step=4)
    )
    assert answer["channels"] == [0, 1, 2, 3] and answer["size"] == 16 and answer["optimisation_steps"] == 4
    assert answer["values"] == [pytest.approx(float(v), abs=1e-5) for v in values["values"][1]]
    assert answer["has"] == {"kernels": True, "dead_filters": True, "top_examples": True}
    assert png_of(views_client, answer["images"][3]).shape == (16, 16, 3)
    exact = get_json(views_client, api_url("patterns/step", run=EXACT_RUN, layer="conv", step=9))
    assert exact["channels"] == PATTERN_CHANNELS and exact["values"] == [1.5, None]
    assert png_of(views_client, exact["images"][1])[0, 0].tolist() == [10, 10, 10]


def test_patterns_step_flags_failed_patterns_against_the_best_probe_image(views_client, views_logged):
    reference = views_logged["cnnviz/pattern_reference/features.conv2"]
    assert reference["steps"] == [2, 4, 6]
    answer = get_json(
        views_client, api_url("patterns/step", run=CALLBACK_RUN, layer="features.conv2", step=4)
    )
    assert answer["reference"] == [pytest.approx(float(v), abs=1e-5) for v in reference["values"][1]]
    expected = [v <= 0 or (r > 0 and v < r) for v, r in zip(answer["values"], answer["reference"])]
    assert answer["failed"] == expected
    exact = get_json(views_client, api_url("patterns/step", run=EXACT_RUN, layer="conv", step=9))
    assert exact["reference"] is None and exact["failed"] == [
        False,
        None,
    ]  # 1.5 reached, one value unreadable


def test_failed_pattern_rule():
    assert failed_patterns([2.0, 0.0, -1.0, 0.5, None], [1.0, None, None, 1.0, 1.0]) == [
        False,
        True,
        True,
        True,
        None,
    ]
    assert failed_patterns([0.5], [-2.0]) == [False]  # a non-positive yardstick is no yardstick
    assert failed_patterns([0.5], None) == [False]


def test_pattern_filter_detail_uses_the_nearest_kernel_rates_and_top_examples(views_client):
    at9 = get_json(views_client, api_url("patterns/filter", run=EXACT_RUN, layer="conv", channel=5, step=9))
    assert at9["values"] == {"steps": [9, 11], "values": [None, 3.0]}
    assert at9["kernel"]["step"] == 10 and at9["kernel"]["shape"] == [3, 3, 3]
    assert np.all(np.array(at9["kernel"]["values"]) == 15.0)  # step 10 + filter 5
    assert at9["dead"] == {
        "step": 5,
        "rate": 0.0,
        "dead": True,
        "window": 5,
        "measured_at": "bn",
    }  # |9-5| < |15-9|
    assert at9["top"]["step"] == 9 and at9["top"]["image_size"] == [16, 16]
    assert at9["top"]["examples"] == [
        {"id": 4, "activation": 18.0, "box": [0, 0, 8, 8], "label": 1, "predicted": 1},
        {"id": 1, "activation": 14.0, "box": [8, 8, 16, 16], "label": 1, "predicted": 1},
    ]
    at11 = get_json(views_client, api_url("patterns/filter", run=EXACT_RUN, layer="conv", channel=5, step=11))
    assert at11["dead"]["step"] == 15 and at11["dead"]["dead"] is False and at11["dead"]["rate"] == 0.5
    assert [e["id"] for e in at11["top"]["examples"]] == [4]  # the empty slot is skipped
    assert at11["top"]["examples"][0]["predicted"] is None  # image 4 has no finite position at step 11
    assert (
        get_json(views_client, api_url("patterns/filter", run=EXACT_RUN, layer="conv", channel=2, step=11))[
            "dead"
        ]["dead"]
        is True
    )


def test_pattern_filter_of_the_callback_run(views_client, views_logged):
    answer = get_json(
        views_client, api_url("patterns/filter", run=CALLBACK_RUN, layer="features.conv2", channel=1, step=6)
    )
    kernels = views_logged["cnnviz/kernels/features.conv2"]
    np.testing.assert_allclose(answer["kernel"]["values"], kernels["values"][-1][1], atol=1e-6)
    assert answer["kernel"]["step"] == 6
    table = views_logged["cnnviz/top_examples/features.conv2"]["values"][-1]
    assert (
        answer["top"]["step"] == 6
        and [e["id"] for e in answer["top"]["examples"]] == table[1, :, 0].astype(int).tolist()
    )
    rates = views_logged["cnnviz/dead_filters/features.conv2"]
    assert answer["dead"]["step"] == 6 and answer["dead"]["rate"] == pytest.approx(
        float(rates["values"][-1][1]), abs=1e-5
    )
    values = views_logged["cnnviz/pattern_values/features.conv2"]["values"]
    assert answer["values"]["values"] == [pytest.approx(float(v[1]), abs=1e-5) for v in values]


# -------------------------------------------------------------------------- bad requests


# ------------------------------------------------------------------------------ DeepDream
def test_dream_answers_both_images_the_layers_settings_and_gain(basic_client):
    listed = {run["name"]: run for run in get_json(basic_client, f"{P}/api/runs/list")["runs"]}[DREAM_RUN]
    kinds = {layer["name"]: layer["kinds"] for layer in listed["layers"]}
    assert kinds[DREAM_LAYER]["dream"]["gain"] == 2.5 and kinds[DREAM_LAYER]["dream"]["count"] == 2
    for url in (
        f"{P}/api/patterns/dream?run={DREAM_RUN}&layer={DREAM_LAYER.replace('+', '%2B')}",  # default: the last step
        f"{P}/api/patterns/dream?run={DREAM_RUN}&layer={DREAM_LAYER.replace('+', '%2B')}&step=0",
    ):
        answer = get_json(basic_client, url)
        assert (
            answer["run"] == DREAM_RUN
            and answer["layer"] == DREAM_LAYER
            and answer["step"] == 0
            and answer["steps"] == [0]
        )
        assert answer["layers"] == ["features.conv3", "features.conv4"]
        assert (answer["gain"], answer["objective"], answer["size"]) == (2.5, [0.5, 1.25], [6, 8])
        assert (
            answer["octaves"],
            answer["octave_scale"],
            answer["optimisation_steps"],
            answer["lr"],
            answer["seed"],
        ) == (3, 1.5, 4, 0.02, 7)
        for key, expected in (("original", DREAM_PNGS[0]), ("dream", DREAM_PNGS[1])):
            response = basic_client.get(f"{P}/{answer[key]}")
            assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
            assert response.data == expected
    # Content that is not what the writer writes is dropped, never sent on (the UI inserts text only).
    broken = get_json(basic_client, f"{P}/api/runs/list")
    assert {x["name"] for r in broken["runs"] if r["name"] == DREAM_RUN for x in r["layers"]} == {
        DREAM_LAYER,
        "broken",
    }
    answer = get_json(basic_client, f"{P}/api/patterns/dream?run={DREAM_RUN}&layer=broken", status=404)
    assert (
        answer["error"]
        == "step: the dream of 'broken' at step 0 has 1 image(s); expected 2 (original, dream)"
    )


def test_dream_content_is_sanitised(tmp_path):
    png = DREAM_PNGS[0]
    write_run(
        str(tmp_path),
        "odd",
        {
            2: [
                summary.blob_summary(
                    metadata.DREAM,
                    "conv",
                    [png, png],
                    gain=float("nan"),
                    objective=[1, "a"],
                    octaves=True,
                    octave_scale="1.4",
                    size=[0, 8],
                    layers="conv",
                )
            ]
        },
    )
    basic_client, _ = plugin_client(str(tmp_path))
    answer = get_json(basic_client, f"{P}/api/patterns/dream?run=odd&layer=conv")
    assert answer["step"] == 2 and answer["layers"] == ["conv"]
    assert (
        answer["gain"],
        answer["objective"],
        answer["octaves"],
        answer["octave_scale"],
        answer["size"],
    ) == (None, [1.0, None], None, None, None)
