"""Routes of the Grad-CAM view (api/gradcam/...)."""

from __future__ import annotations

import numpy as np
import pytest
from logdirs import CALLBACK_RUN, VIEWS_XSS_RUN, api_url, base64_floats, get_json, png_of
from support import CLASSES, EXACT_RUN

from tb_cnnviz.datasets import ShapesDataset


def test_gradcam_step_matches_the_logged_info_and_maps(views_client, views_logged):
    info = views_logged["cnnviz/gradcam_info/features"]
    maps = views_logged["cnnviz/gradcam_maps/features"]
    assert info["steps"] == [1, 2, 4, 6]
    probe_labels = views_logged["cnnviz/probe"]["content"]["labels"]
    scale = np.max([m.reshape(4, -1).max(axis=1) for m in maps["values"]], axis=0)
    for position, step in enumerate(info["steps"]):
        answer = get_json(
            views_client, api_url("gradcam/step", run=CALLBACK_RUN, layer="features", step=step)
        )
        assert answer["step"] == step and answer["count"] == 4
        # the callback logs no overlay PNGs (#18): the view draws each from the raw map
        assert answer["overlays_logged"] is False and [i["overlay"] for i in answer["images"]] == [None] * 4
        assert answer["class_names"] == list(ShapesDataset.classes)
        assert answer["cam_shape"] == list(maps["values"][position].shape)
        for i, image in enumerate(answer["images"]):
            target, predicted, probability, target_probability = info["values"][position][i]
            assert (image["target"], image["predicted"]) == (int(target), int(predicted))
            assert image["probability"] == pytest.approx(probability, abs=1e-5)
            assert image["target_probability"] == pytest.approx(target_probability, abs=1e-5)
            assert image["label"] == probe_labels[i] == image["target"]
            assert image["misclassified"] is (probe_labels[i] != int(predicted))
            assert image["cam_max"] == pytest.approx(maps["values"][position][i].max(), abs=1e-5)
            assert image["cam_scale"] == pytest.approx(scale[i], abs=1e-5)
        assert [a["method"] for a in answer["attributions"]] == ["saliency"]
        assert answer["attributions"][0]["step"] == step and len(answer["attributions"][0]["images"]) == 4
    assert png_of(views_client, answer["probe"]["images"][3]).shape == (32, 32, 3)
    # a run written before #18 (overlay PNGs): the overlays are served as before
    old = get_json(views_client, api_url("gradcam/step", run=EXACT_RUN, layer="conv", step=10))
    assert old["overlays_logged"] is True and old["colormap"] == "jet"
    assert png_of(views_client, old["images"][0]["overlay"]).shape == (8, 8, 3)


def test_gradcam_step_exact_values_with_undefined_entries(views_client):
    answer = get_json(views_client, api_url("gradcam/step", run=EXACT_RUN, layer="conv", step=10))
    rows = [
        {
            k: image[k]
            for k in ("label", "target", "predicted", "probability", "target_probability", "misclassified")
        }
        for image in answer["images"]
    ]
    assert rows == [
        {
            "label": 0,
            "target": 0,
            "predicted": 0,
            "probability": 0.9,
            "target_probability": 0.9,
            "misclassified": False,
        },
        {
            "label": 1,
            "target": 1,
            "predicted": 2,
            "probability": 0.6,
            "target_probability": 0.3,
            "misclassified": True,
        },
        {
            "label": 2,
            "target": None,
            "predicted": None,
            "probability": None,
            "target_probability": None,
            "misclassified": None,
        },
    ]
    assert [image["cam_max"] for image in answer["images"]] == [
        pytest.approx(v) for v in (15 * 0.11, 31 * 0.11, 7.0)
    ]
    # per image, the largest value over every views_logged step (here always step 20's: 21/100 * the largest of arange)
    assert [image["cam_scale"] for image in answer["images"]] == [
        pytest.approx(v) for v in (15 * 0.21, 31 * 0.21, 47 * 0.21)
    ]
    assert answer["class_names"] == CLASSES and answer["probe"]["step"] == 0
    # attribution maps come from the last views_logged step at or before this one
    assert [(a["method"], a["step"]) for a in answer["attributions"]] == [("saliency", 0)]
    assert (
        get_json(views_client, api_url("gradcam/step", run=EXACT_RUN, layer="conv", step=20))["attributions"][
            0
        ]["step"]
        == 20
    )


def test_gradcam_maps_are_the_raw_logged_cams(views_client, views_logged):
    maps = views_logged["cnnviz/gradcam_maps/features"]
    answer = get_json(views_client, api_url("gradcam/maps", run=CALLBACK_RUN, layer="features", step=4))
    np.testing.assert_array_equal(base64_floats(answer).reshape(answer["shape"]), maps["values"][2])
    exact = get_json(views_client, api_url("gradcam/maps", run=EXACT_RUN, layer="conv", step=10))
    decoded = base64_floats(exact).reshape(exact["shape"])
    assert exact["shape"] == [3, 4, 4] and decoded[2, 0, 0] == 7.0 and np.isnan(decoded[2, 1, 1])
    assert exact["scale"] == [pytest.approx(15 * 0.21), pytest.approx(31 * 0.21), pytest.approx(47 * 0.21)]


def test_gradcam_image_follows_one_probe_image_over_training(views_client, views_logged):
    info = views_logged["cnnviz/gradcam_info/features"]
    answer = get_json(views_client, api_url("gradcam/image", run=CALLBACK_RUN, layer="features", index=2))
    assert answer["steps"] == [1, 2, 4, 6] and answer["index"] == 2
    assert answer["predicted"] == [int(v[2, 1]) for v in info["values"]]
    assert answer["probability"] == [pytest.approx(float(v[2, 2]), abs=1e-5) for v in info["values"]]
    assert answer["label"] == views_logged["cnnviz/probe"]["content"]["labels"][2]
    assert [s["step"] for s in answer["strip"]] == [1, 2, 4, 6]
    assert answer["probe_image"].endswith("kind=probe&step=1&index=2")
    thinned = get_json(
        views_client, api_url("gradcam/image", run=CALLBACK_RUN, layer="features", index=2, limit=2)
    )
    assert [s["step"] for s in thinned["strip"]] == [1, 6]  # evenly spread, first and last kept
    # no overlay PNGs logged: each thumbnail carries the image's raw map at its step
    maps = views_logged["cnnviz/gradcam_maps/features"]
    last = thinned["strip"][1]
    assert last["overlay"] is None and last["map"]["shape"] == list(maps["values"][3].shape[1:])
    np.testing.assert_array_equal(
        base64_floats(last["map"]).reshape(last["map"]["shape"]), maps["values"][3][2]
    )
    old = get_json(views_client, api_url("gradcam/image", run=EXACT_RUN, layer="conv", index=0, limit=2))
    assert (
        png_of(views_client, old["strip"][1]["overlay"]).shape == (8, 8, 3) and "map" not in old["strip"][1]
    )
    exact = get_json(views_client, api_url("gradcam/image", run=EXACT_RUN, layer="conv", index=2))
    assert exact["predicted"] == [0, None, 2] and exact["target_probability"] == [0.1, None, 0.99]
    assert exact["cam_max"] == [pytest.approx(0.47), pytest.approx(7.0), pytest.approx(47 * 0.21)]


def test_hostile_names_come_back_verbatim(views_client):
    answer = get_json(views_client, api_url("gradcam/step", run=VIEWS_XSS_RUN, layer="c<b>", step=3))
    assert (
        answer["run"] == VIEWS_XSS_RUN and answer["layer"] == "c<b>" and answer["images"][0]["predicted"] == 1
    )
    assert (
        answer["probe"] is None
        and answer["images"][0]["label"] is None
        and answer["images"][0]["misclassified"] is None
    )
    assert png_of(views_client, answer["images"][0]["overlay"]).shape == (8, 8, 3)


# -------------------------------------------------------------------------- bad requests
