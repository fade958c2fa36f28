"""The Grad-CAM routes say what a map explains and on which scale (#16 "Every picture explains itself"):
the class each map explains (the label when the probe images have labels, else the predicted class, whose
maps are then the logged ones), and a shared colour scale that one exploding step does not blow up: the
exploding step is answered as an outlier above the scale instead.

The run is hand-written: 8 logged steps of 2 images whose CAM peaks grow 1, 2, ..., 8 (image 0) and
0.5 ... 4 (image 1), except step 50 where image 0's peak is 3.8e9 (image 1's stays ordinary)."""

from __future__ import annotations

import numpy as np
import pytest
from logdirs import api_url, get_json
from support import (
    CAM_CLASSES,
    CAM_STEPS,
    EXPLODING_STEP,
    exploding_cam_maps,
    exploding_cam_run,
    flat_png,
    plugin_client,
    write_run,
)

from tb_cnnviz.plugin.routes.gradcam import _robust_scale

LABELS = [0, 2]


def _run(labels: list | None) -> dict:
    return exploding_cam_run(lambda step: [flat_png(9, 8)] * 2, [flat_png(50, 8)] * 2, labels)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("gradcam_explains"))
    write_run(root, "labelled", _run(LABELS))
    write_run(root, "unlabelled", _run(None))
    return plugin_client(root)[0]


def test_one_exploding_step_does_not_set_the_shared_scale(client):
    maps = get_json(client, api_url("gradcam/maps", run="labelled", layer="layer4", step=10))
    # image 0: the largest ordinary peak is step 70's (8), not 3.8e9; image 1 has no outlier: its max (4)
    assert maps["scale"] == [pytest.approx(8.0), pytest.approx(4.0)]
    assert maps["outlier_steps"] == [{"step": EXPLODING_STEP, "peak": pytest.approx(3.8e9), "images": [0]}]
    assert "outlier" in maps["scale_rule"]
    step = get_json(client, api_url("gradcam/step", run="labelled", layer="layer4", step=EXPLODING_STEP))
    assert [image["cam_scale"] for image in step["images"]] == [8.0, 4.0]
    assert [image["cam_clipped"] for image in step["images"]] == [True, False]
    assert step["images"][0]["cam_max"] == pytest.approx(3.8e9)
    assert step["outlier_steps"] == maps["outlier_steps"]
    ordinary = get_json(client, api_url("gradcam/step", run="labelled", layer="layer4", step=20))
    assert [image["cam_clipped"] for image in ordinary["images"]] == [False, False]
    watch = get_json(client, api_url("gradcam/image", run="labelled", layer="layer4", index=0))
    assert watch["cam_scale"] == 8.0
    assert watch["cam_outliers"] == [{"step": EXPLODING_STEP, "peak": pytest.approx(3.8e9)}]
    other = get_json(client, api_url("gradcam/image", run="labelled", layer="layer4", index=1))
    assert other["cam_scale"] == 4.0 and other["cam_outliers"] == []


def test_the_fence_is_in_log_space_and_needs_four_steps():
    growth = np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0])  # legitimate growth over training: no outlier
    assert _robust_scale(growth)[0] == 10.0 and not _robust_scale(growth)[1].any()
    flat = np.array([1.0, 1.0, 1.0, 1.0, 1.5])  # a small bump on a flat run: under the one-decade minimum
    assert _robust_scale(flat)[0] == 1.5 and not _robust_scale(flat)[1].any()
    few = np.array([1.0, 2.0, 3.8e9])  # three steps: no quartiles to judge by, the largest is the scale
    assert _robust_scale(few)[0] == 3.8e9
    unknown = np.array([np.nan, 0.0, 0.0, 0.0, 0.0, np.nan])
    scale, outliers = _robust_scale(unknown)
    assert scale == 0.0 and not outliers.any()
    assert _robust_scale(np.array([np.nan, np.nan]))[0] is None
    # the 99th percentile of the run's peaks would still be near 3.8e9 (why the route does not use it)
    peaks = np.array([exploding_cam_maps(s)[0].max() for s in CAM_STEPS], np.float64)
    assert np.percentile(peaks, 99) > 1e9
    assert _robust_scale(peaks)[0] == 8.0


def test_the_class_each_map_explains(client):
    labelled = get_json(client, api_url("gradcam/step", run="labelled", layer="layer4", step=10))
    assert labelled["explains"] == "label" and labelled["predicted_maps_logged"] is False
    assert labelled["class_names"] == CAM_CLASSES
    first, second = labelled["images"]
    assert (first["label"], first["target"], first["predicted"], first["misclassified"]) == (0, 0, 0, False)
    assert (second["label"], second["target"], second["predicted"]) == (2, 2, 1)
    assert second["misclassified"] is True
    assert (second["probability"], second["target_probability"]) == (pytest.approx(0.6), pytest.approx(0.3))
    unlabelled = get_json(client, api_url("gradcam/step", run="unlabelled", layer="layer4", step=10))
    assert unlabelled["explains"] == "predicted" and unlabelled["predicted_maps_logged"] is True
