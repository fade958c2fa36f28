"""Grad-CAM maps at the layer's resolution (since #14 §4) and at the input's (older runs) in one run: the
routes serve each step's own shape and colour every step on one scale (the view upsamples when drawing)."""

from __future__ import annotations

import numpy as np
import pytest
from logdirs import api_url, base64_floats, get_json
from support import flat_png, plugin_client, write_run

from tb_cnnviz import metadata, summary

OLD = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8) / 100  # step 0: upsampled to the 8 px input
NATIVE = np.array([[[1.0, 0.0], [0.0, 0.5]], [[0.0, 1.0], [0.25, 0.0]]], np.float32)  # step 10: 2 x 2


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("native_cams"))
    write_run(
        root,
        "mixed",
        {
            step: [
                summary.blob_summary(metadata.GRADCAM, "layer4", [flat_png(9, 8)] * 2, colormap="jet"),
                summary.tensor_summary(metadata.GRADCAM_MAPS, "layer4", maps),
            ]
            for step, maps in ((0, OLD), (10, NATIVE))
        },
    )
    return plugin_client(root)[0]


def test_each_step_is_served_at_its_own_shape_on_one_scale(client):
    for step, maps in ((0, OLD), (10, NATIVE)):
        answer = get_json(client, api_url("gradcam/maps", run="mixed", layer="layer4", step=step))
        assert answer["shape"] == list(maps.shape)
        np.testing.assert_array_equal(base64_floats(answer).reshape(answer["shape"]), maps)
        # per image the largest value over both steps: image 0's from the native map (1.0 > 0.63), image 1's
        # from the old one (1.27 > 1.0)
        assert answer["scale"] == [pytest.approx(1.0), pytest.approx(1.27)]
    step = get_json(client, api_url("gradcam/step", run="mixed", layer="layer4", step=10))
    assert step["cam_shape"] == [2, 2, 2]
    assert [image["cam_max"] for image in step["images"]] == [1.0, 1.0]
