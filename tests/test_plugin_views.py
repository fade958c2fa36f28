"""Routes of the Grad-CAM, Patterns and Embedding views (api/gradcam, api/patterns, api/embedding).

Same pattern as tests/test_plugin_routes.py: a real logdir (one run written by CNNVizCallback
while a small CNN trains, one written with tb_cnnviz.summary for exact values, one with a
hostile name) served through TensorBoard's own WSGI app. The logdir writers (``log_views_run``,
``write_exact_run``) live in tests/support.py, shared with the browser and fuzz tests.
"""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.parse

import numpy as np
import pytest
from PIL import Image
from support import (
    CLASSES,
    EXACT_RUN,
    LABELS,
    PATTERN_CHANNELS,
    flat_png,
    log_views_run,
    plugin_client,
    read_logdir,
    write_exact_run,
    write_run,
)

from tb_cnnviz import metadata, summary
from tb_cnnviz.datasets import ShapesDataset

P = "/data/plugin/cnnviz"
CALLBACK_RUN = "callback"
XSS_RUN = "<script>alert('x')</script> ラン"


# ----------------------------------------------------------------------------- logdirs
@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("views_logdir"))
    log_views_run(os.path.join(root, CALLBACK_RUN))
    write_exact_run(root)
    write_run(
        root,
        XSS_RUN,
        {
            3: [
                summary.blob_summary(metadata.GRADCAM, "c<b>", [flat_png(1, 8)]),
                summary.tensor_summary(
                    metadata.GRADCAM_INFO, "c<b>", np.array([[1, 1, 0.5, 0.5]], np.float32)
                ),
            ]
        },
    )
    return root


@pytest.fixture(scope="module")
def logged(logdir) -> dict:
    return read_logdir(os.path.join(logdir, CALLBACK_RUN))["."]


@pytest.fixture(scope="module")
def client(logdir):
    return plugin_client(logdir)[0]


def _json(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.data[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.data)


def _url(route: str, **params) -> str:
    return f"{P}/api/{route}?{urllib.parse.urlencode(params)}"


def _png_of(client, relative: str) -> np.ndarray:
    response = client.get(f"{P}/{relative}")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png", relative
    return np.asarray(Image.open(io.BytesIO(response.data)))


def _floats(answer: dict, key: str = "data") -> np.ndarray:
    return np.frombuffer(base64.b64decode(answer[key]), dtype="<f4")


# ----------------------------------------------------------------------------- listing
def test_runs_list_names_the_new_views_and_keeps_the_embedding_labels_out(client):
    answer = _json(client, f"{P}/api/runs/list")
    assert answer["views"] == ["activations", "dead", "embedding", "filters", "gradcam", "patterns", "runs"]
    runs = {run["name"]: run for run in answer["runs"]}
    layers = {layer["name"]: layer["kinds"] for layer in runs[CALLBACK_RUN]["layers"]}
    assert set(layers["features.conv5"]) >= {"gradcam", "gradcam_maps", "gradcam_info"}
    assert set(layers["features.conv2"]) >= {"patterns", "pattern_values", "kernels"}
    assert "top_examples" in layers["features.conv2"] and "top_examples" in layers["features.conv3"]
    assert (
        layers["classifier"]["embedding"]["count"] == 60 and "labels" not in layers["classifier"]["embedding"]
    )
    assert runs[CALLBACK_RUN]["kinds"]["sprites"]["counts"] == [60]
    assert XSS_RUN in runs and runs[XSS_RUN]["layers"][0]["name"] == "c<b>"


# ---------------------------------------------------------------------------- grad-cam
def test_gradcam_step_matches_the_logged_info_and_maps(client, logged):
    info = logged["cnnviz/gradcam_info/features.conv5"]
    maps = logged["cnnviz/gradcam_maps/features.conv5"]
    assert info["steps"] == [1, 2, 4, 6]
    probe_labels = logged["cnnviz/probe"]["content"]["labels"]
    scale = np.max([m.reshape(4, -1).max(axis=1) for m in maps["values"]], axis=0)
    for position, step in enumerate(info["steps"]):
        answer = _json(client, _url("gradcam/step", run=CALLBACK_RUN, layer="features.conv5", step=step))
        assert answer["step"] == step and answer["count"] == 4 and answer["colormap"] == "jet"
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
    overlay = _png_of(client, answer["images"][3]["overlay"])
    assert overlay.shape == (32, 32, 3)
    probe = _png_of(client, answer["probe"]["images"][3])
    assert probe.shape == (32, 32, 3) and not np.array_equal(probe, overlay)  # the heat-map is blended in


def test_gradcam_step_exact_values_with_undefined_entries(client):
    answer = _json(client, _url("gradcam/step", run=EXACT_RUN, layer="conv", step=10))
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
    # per image, the largest value over every logged step (here always step 20's: 21/100 * the largest of arange)
    assert [image["cam_scale"] for image in answer["images"]] == [
        pytest.approx(v) for v in (15 * 0.21, 31 * 0.21, 47 * 0.21)
    ]
    assert answer["class_names"] == CLASSES and answer["probe"]["step"] == 0
    # attribution maps come from the last logged step at or before this one
    assert [(a["method"], a["step"]) for a in answer["attributions"]] == [("saliency", 0)]
    assert (
        _json(client, _url("gradcam/step", run=EXACT_RUN, layer="conv", step=20))["attributions"][0]["step"]
        == 20
    )


def test_gradcam_maps_are_the_raw_logged_cams(client, logged):
    maps = logged["cnnviz/gradcam_maps/features.conv5"]
    answer = _json(client, _url("gradcam/maps", run=CALLBACK_RUN, layer="features.conv5", step=4))
    np.testing.assert_array_equal(_floats(answer).reshape(answer["shape"]), maps["values"][2])
    exact = _json(client, _url("gradcam/maps", run=EXACT_RUN, layer="conv", step=10))
    decoded = _floats(exact).reshape(exact["shape"])
    assert exact["shape"] == [3, 4, 4] and decoded[2, 0, 0] == 7.0 and np.isnan(decoded[2, 1, 1])
    assert exact["scale"] == [pytest.approx(15 * 0.21), pytest.approx(31 * 0.21), pytest.approx(47 * 0.21)]


def test_gradcam_image_follows_one_probe_image_over_training(client, logged):
    info = logged["cnnviz/gradcam_info/features.conv5"]
    answer = _json(client, _url("gradcam/image", run=CALLBACK_RUN, layer="features.conv5", index=2))
    assert answer["steps"] == [1, 2, 4, 6] and answer["index"] == 2
    assert answer["predicted"] == [int(v[2, 1]) for v in info["values"]]
    assert answer["probability"] == [pytest.approx(float(v[2, 2]), abs=1e-5) for v in info["values"]]
    assert answer["label"] == logged["cnnviz/probe"]["content"]["labels"][2]
    assert [s["step"] for s in answer["strip"]] == [1, 2, 4, 6]
    assert answer["probe_image"].endswith("kind=probe&step=1&index=2")
    thinned = _json(client, _url("gradcam/image", run=CALLBACK_RUN, layer="features.conv5", index=2, limit=2))
    assert [s["step"] for s in thinned["strip"]] == [1, 6]  # evenly spread, first and last kept
    assert _png_of(client, thinned["strip"][1]["overlay"]).shape == (32, 32, 3)
    exact = _json(client, _url("gradcam/image", run=EXACT_RUN, layer="conv", index=2))
    assert exact["predicted"] == [0, None, 2] and exact["target_probability"] == [0.1, None, 0.99]
    assert exact["cam_max"] == [pytest.approx(0.47), pytest.approx(7.0), pytest.approx(47 * 0.21)]


# ---------------------------------------------------------------------------- patterns
def test_patterns_step_lists_each_filter_with_the_activation_it_reached(client, logged):
    values = logged["cnnviz/pattern_values/features.conv2"]
    assert values["steps"] == [2, 4, 6]
    answer = _json(client, _url("patterns/step", run=CALLBACK_RUN, layer="features.conv2", step=4))
    assert answer["channels"] == [0, 1, 2, 3] and answer["size"] == 16 and answer["optimisation_steps"] == 4
    assert answer["values"] == [pytest.approx(float(v), abs=1e-5) for v in values["values"][1]]
    assert answer["has"] == {"kernels": True, "dead_filters": True, "top_examples": True}
    assert _png_of(client, answer["images"][3]).shape == (16, 16, 3)
    exact = _json(client, _url("patterns/step", run=EXACT_RUN, layer="conv", step=9))
    assert exact["channels"] == PATTERN_CHANNELS and exact["values"] == [1.5, None]
    assert _png_of(client, exact["images"][1])[0, 0].tolist() == [10, 10, 10]


def test_pattern_filter_detail_uses_the_nearest_kernel_rates_and_top_examples(client):
    at9 = _json(client, _url("patterns/filter", run=EXACT_RUN, layer="conv", channel=5, step=9))
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
    at11 = _json(client, _url("patterns/filter", run=EXACT_RUN, layer="conv", channel=5, step=11))
    assert at11["dead"]["step"] == 15 and at11["dead"]["dead"] is False and at11["dead"]["rate"] == 0.5
    assert [e["id"] for e in at11["top"]["examples"]] == [4]  # the empty slot is skipped
    assert at11["top"]["examples"][0]["predicted"] is None  # image 4 has no finite position at step 11
    assert (
        _json(client, _url("patterns/filter", run=EXACT_RUN, layer="conv", channel=2, step=11))["dead"][
            "dead"
        ]
        is True
    )


def test_pattern_filter_of_the_callback_run(client, logged):
    answer = _json(
        client, _url("patterns/filter", run=CALLBACK_RUN, layer="features.conv2", channel=1, step=6)
    )
    kernels = logged["cnnviz/kernels/features.conv2"]
    np.testing.assert_allclose(answer["kernel"]["values"], kernels["values"][-1][1], atol=1e-6)
    assert answer["kernel"]["step"] == 6
    table = logged["cnnviz/top_examples/features.conv2"]["values"][-1]
    assert (
        answer["top"]["step"] == 6
        and [e["id"] for e in answer["top"]["examples"]] == table[1, :, 0].astype(int).tolist()
    )
    rates = logged["cnnviz/dead_filters/features.conv2"]
    assert answer["dead"]["step"] == 6 and answer["dead"]["rate"] == pytest.approx(
        float(rates["values"][-1][1]), abs=1e-5
    )
    values = logged["cnnviz/pattern_values/features.conv2"]["values"]
    assert answer["values"]["values"] == [pytest.approx(float(v[1]), abs=1e-5) for v in values]


# ---------------------------------------------------------------------------- embedding
def test_embedding_points_are_the_logged_map(client, logged):
    series = logged["cnnviz/embedding/classifier"]
    assert series["steps"] == [2, 4, 6]
    answer = _json(client, _url("embedding/points", run=CALLBACK_RUN, layer="classifier", step=4))
    assert answer["count"] == 60 and answer["method"] == "pca"
    np.testing.assert_array_equal(_floats(answer, "xy").reshape(60, 2), series["values"][1][:, :2])
    assert answer["predicted"] == series["values"][1][:, 2].astype(int).tolist()
    assert answer["labels"] == series["content"]["labels"] and answer["class_names"] == list(
        ShapesDataset.classes
    )
    wrong = sum(t != p for t, p in zip(answer["labels"], answer["predicted"]))
    assert answer["misclassified"] == wrong and answer["accuracy"] == pytest.approx(1 - wrong / 60, abs=1e-5)
    xy = series["values"][1][:, :2]
    assert answer["bounds"] == pytest.approx(
        [xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max()], abs=1e-5
    )


def test_embedding_points_with_a_non_finite_point(client):
    answer = _json(client, _url("embedding/points", run=EXACT_RUN, layer="penultimate", step=11))
    xy = _floats(answer, "xy").reshape(5, 2)
    assert np.isnan(xy[4]).all() and xy[:4].tolist() == [[0, 0], [2, 2], [4, 0], [0, 4]]
    assert answer["bounds"] == [0, 4, 0, 4]
    assert answer["predicted"] == [0, 1, 1, 0, None] and answer["labels"] == LABELS
    assert (
        answer["misclassified"] == 1 and answer["accuracy"] == 0.75
    )  # the undefined prediction is not counted


def test_sprites_locate_every_image(client):
    answer = _json(client, _url("embedding/sprites", run=EXACT_RUN))
    assert (
        answer["thumb"] == [4, 4]
        and answer["columns"] == 2
        and answer["counts"] == [3, 2]
        and answer["step"] == 9
    )
    atlases = [_png_of(client, url) for url in answer["atlases"]]
    assert [a.shape for a in atlases] == [(8, 8, 3), (4, 8, 3)]
    for image in range(5):  # image i: atlas a, cell j (row-major, 2 a row)
        atlas, cell = (0, image) if image < 3 else (1, image - 3)
        row, column = divmod(cell, 2)
        tile = atlases[atlas][row * 4 : (row + 1) * 4, column * 4 : (column + 1) * 4]
        assert np.all(tile == 40 * image), image
    callback = _json(client, _url("embedding/sprites", run=CALLBACK_RUN))
    assert callback["counts"] == [60] and callback["thumb"] == [32, 32]
    assert _png_of(client, callback["atlases"][0]).shape == (32, 60 * 32, 3)  # one row of 60 thumbnails


def test_top_examples_of_a_filter_and_the_best_of_every_filter(client, logged):
    table = logged["cnnviz/top_examples/features.conv3"]["values"][-1]
    answer = _json(client, _url("embedding/top", run=CALLBACK_RUN, layer="features.conv3", step=6, channel=3))
    assert answer["filters"] == table.shape[0] == 8 and answer["k"] == 4 and answer["channel"] == 3
    assert [e["id"] for e in answer["examples"]] == table[3, :, 0].astype(int).tolist()
    assert [e["activation"] for e in answer["examples"]] == [
        pytest.approx(float(v), abs=1e-5) for v in table[3, :, 1]
    ]
    assert [e["box"] for e in answer["examples"]] == table[3, :, 2:].tolist()
    labels = logged["cnnviz/embedding/classifier"]["content"]["labels"]
    assert [e["label"] for e in answer["examples"]] == [labels[i] for i in table[3, :, 0].astype(int)]
    assert answer["image_size"] == [32, 32]  # from the boxes: receptive fields touch the image edges
    overview = _json(client, _url("embedding/top", run=CALLBACK_RUN, layer="features.conv3", step=6))
    assert [b["id"] for b in overview["best"]] == table[:, 0, 0].astype(int).tolist()
    exact = _json(client, _url("embedding/top", run=EXACT_RUN, layer="conv", step=11, channel=5))
    assert [e["id"] for e in exact["examples"]] == [4] and exact["image_size"] == [16, 16]


# ------------------------------------------------------------------------ hostile names
def test_hostile_names_come_back_verbatim(client):
    answer = _json(client, _url("gradcam/step", run=XSS_RUN, layer="c<b>", step=3))
    assert answer["run"] == XSS_RUN and answer["layer"] == "c<b>" and answer["images"][0]["predicted"] == 1
    assert (
        answer["probe"] is None
        and answer["images"][0]["label"] is None
        and answer["images"][0]["misclassified"] is None
    )
    assert _png_of(client, answer["images"][0]["overlay"]).shape == (8, 8, 3)


# -------------------------------------------------------------------------- bad requests
G, PAT, E = f"{P}/api/gradcam", f"{P}/api/patterns", f"{P}/api/embedding"
C5 = f"run={CALLBACK_RUN}&layer=features.conv5"
BAD_REQUESTS = [
    (f"{G}/step?layer=features.conv5&step=2", 400, "run"),
    (f"{G}/step?run=nope&layer=features.conv5&step=2", 404, "run"),
    (f"{G}/step?run={CALLBACK_RUN}&step=2", 400, "layer"),
    (f"{G}/step?run={CALLBACK_RUN}&layer=features.conv1&step=2", 404, "layer"),
    (f"{G}/step?{C5}", 400, "step"),
    (f"{G}/step?{C5}&step=3", 404, "nearest logged step is 2"),
    (f"{G}/step?{C5}&step=-2", 400, "step"),
    (f"{G}/step?{C5}&step=2.0", 400, "step"),
    (f"{G}/maps?{C5}&step=5", 404, "step"),
    (f"{G}/maps?run={CALLBACK_RUN}&layer=features.conv2&step=2", 404, "layer"),
    (f"{G}/image?{C5}", 400, "index"),
    (f"{G}/image?{C5}&index=4", 404, "index"),
    (f"{G}/image?{C5}&index=x", 400, "index"),
    (f"{G}/image?{C5}&index=0&limit=0", 400, "limit"),
    (f"{G}/image?{C5}&index=0&limit=501", 400, "limit"),
    (f"{G}/nope?{C5}", 404, "unknown route"),
    (
        f"{PAT}/step?run={CALLBACK_RUN}&layer=features.conv3&step=2",
        404,
        "layers with patterns: ['features.conv2']",
    ),
    (f"{PAT}/step?run={CALLBACK_RUN}&layer=features.conv2&step=1", 404, "step"),
    (f"{PAT}/filter?run={CALLBACK_RUN}&layer=features.conv2&step=2", 400, "channel"),
    (f"{PAT}/filter?run={CALLBACK_RUN}&layer=features.conv2&step=2&channel=4", 404, "channel"),
    (f"{PAT}/filter?run={EXACT_RUN}&layer=conv&step=9&channel=0", 404, "filters with patterns: [2, 5]"),
    (f"{PAT}/filter?run={EXACT_RUN}&layer=conv&step=9&channel=-5", 400, "channel"),
    (f"{PAT}/filter?run={EXACT_RUN}&layer=conv&step=10&channel=5", 404, "step"),
    (f"{E}/points?run={CALLBACK_RUN}&layer=features.conv2&step=2", 404, "layer"),
    (f"{E}/points?run={CALLBACK_RUN}&layer=classifier&step=1", 404, "step"),
    (f"{E}/points?run={CALLBACK_RUN}&layer=classifier", 400, "step"),
    (f"{E}/sprites", 400, "run"),
    (f"{E}/sprites?run={urllib.parse.quote(XSS_RUN)}", 404, "sprites"),
    (f"{E}/top?run={CALLBACK_RUN}&layer=features.conv3&step=6&channel=8", 404, "channel"),
    (f"{E}/top?run={CALLBACK_RUN}&layer=features.conv3&step=6&channel=1e3", 400, "channel"),
    (f"{E}/top?run={CALLBACK_RUN}&layer=features.conv3&step=5&channel=0", 404, "step"),
    (f"{E}/top?run={CALLBACK_RUN}&layer=features.conv5&step=6", 404, "layer"),
    (f"{P}/api/runs/image?run={EXACT_RUN}&kind=sprites&step=9&index=2", 404, "index"),
    (f"{P}/api/runs/image?run={EXACT_RUN}&kind=gradcam_maps&layer=conv&step=10&index=0", 400, "kind"),
    (f"{P}/api/x/api/runs/list", 404, "api/<view>/<route>"),  # exactly api/<view>/<route> under the plugin
    (f"{P}/api//list", 404, "api/<view>/<route>"),
]


@pytest.mark.parametrize(
    "url,status,mentions", BAD_REQUESTS, ids=[f"{i:02d}" for i in range(len(BAD_REQUESTS))]
)
def test_bad_requests_get_a_4xx_json_error_naming_the_problem(client, url, status, mentions):
    answer = _json(client, url, status=status)
    assert mentions in answer["error"]
    assert len(answer["error"]) < 1200


def test_other_methods_are_refused(client):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = client.open(_url("gradcam/step", run=EXACT_RUN, layer="conv", step=10), method=method)
        assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"
        assert "not allowed" in json.loads(response.data)["error"]
    static = client.post(f"{P}/views/gradcam.js")
    assert static.status_code == 405 and b"export" not in static.data


def test_new_view_modules_are_served(client):
    for path in ("views/gradcam.js", "views/patterns.js", "views/embedding.js", "sprites.js"):
        response = client.get(f"{P}/{path}")
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(
            "text/javascript"
        ), path
    index = client.get(f"{P}/index.js").data.decode()
    for module in ("gradcam", "patterns", "embedding"):
        assert f'import * as {module} from "./views/{module}.js";' in index
