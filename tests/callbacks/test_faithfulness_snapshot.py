"""The ``faithfulness`` snapshot through CNNVizCallback: off by default; with ``faithfulness=True`` one AUC
series and one curves series per Grad-CAM layer at every Grad-CAM step, and the mean deletion gap as a
scalar, all consistent with each other."""

from __future__ import annotations

import numpy as np
import pytest
from callback_training import run_callback
from support import read_logdir

from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.snapshots.faithfulness import COLUMNS

EVERY = {"gradcam": 2, "kernels": 1000, "dead_filters": 1000, "activations": 1000}
PROBE_IMAGES = 6
STEPS = 16


def _run(tmp_path, model, data, steps=4, **options):
    images, labels = data
    probe = (images[-PROBE_IMAGES:], labels[-PROBE_IMAGES:])
    return run_callback(tmp_path, model, data, steps, probe=probe, every_n_steps=EVERY, **options)


def test_areas_curves_and_gap_per_gradcam_layer_at_every_gradcam_step(tmp_path, model, data):
    viz = _run(tmp_path, model, data, faithfulness=True, gradcam_layers=["features.relu3", "features"])
    assert viz.every_n_steps["faithfulness"] == 2  # follows Grad-CAM's interval
    logged = read_logdir(str(tmp_path))["."]
    scalars = read_logdir(str(tmp_path), plugin="scalars")["."]
    for layer in ("features.relu3", "features"):
        areas, curves = logged[f"cnnviz/faithfulness/{layer}"], logged[f"cnnviz/faithfulness_curves/{layer}"]
        assert (
            areas["steps"] == curves["steps"] == logged[f"cnnviz/gradcam_maps/{layer}"]["steps"] == [1, 2, 4]
        )
        assert areas["content"]["columns"] == list(COLUMNS) == curves["content"]["rows"]
        assert areas["content"]["steps"] == STEPS and areas["content"]["seed"] == 0
        assert areas["content"]["blur_sigma"] == pytest.approx(32 / 16)
        fractions = np.array(curves["content"]["fractions"])
        assert fractions.shape == (STEPS + 1,) and fractions[0] == 0 and fractions[-1] == 1
        assert (np.diff(fractions) > 0).all()
        gaps = []
        for area, curve in zip(areas["values"], curves["values"]):
            assert area.shape == (PROBE_IMAGES, 4) and curve.shape == (PROBE_IMAGES, 4, STEPS + 1)
            assert ((curve >= 0) & (curve <= 1)).all() and ((area >= 0) & (area <= 1)).all()
            # the areas are the trapezoid rule over the curves that are logged with them
            trapezoid = ((curve[..., 1:] + curve[..., :-1]) * np.diff(fractions)).sum(-1) / 2
            assert np.allclose(area, trapezoid, atol=1e-6)
            # every curve of an image starts or ends at the original image and at the blurred one
            assert np.array_equal(curve[:, 0, 0], curve[:, 1, 0])  # deletion: original, CAM and random
            assert np.array_equal(curve[:, 0, 0], curve[:, 2, -1])  # insertion ends at the original
            assert np.array_equal(curve[:, 0, -1], curve[:, 3, 0])  # deletion ends where insertion starts
            gaps.append(float(np.mean(area[:, 1].astype(np.float64) - area[:, 0])))
        scalar = scalars[f"cnnviz_scalars/gradcam_deletion_gap/{layer}"] if layer == "features" else None
        if scalar is not None:  # scalars="summary": the deepest (last) layer's card only
            assert scalar["steps"] == [1, 2, 4]
            assert np.allclose(scalar["values"], gaps, atol=1e-6)
    assert "cnnviz_scalars/gradcam_deletion_gap/features.relu3" not in scalars


def test_off_by_default_and_off_without_gradcam_layers(tmp_path, model, data):
    viz = _run(tmp_path / "default", model, data, steps=2)
    assert viz.enabled["faithfulness"] is False
    assert not [tag for tag in read_logdir(str(tmp_path / "default"))["."] if "faithfulness" in tag]
    viz = _run(tmp_path / "no_cam", model, data, steps=2, faithfulness=True, gradcam_layers=[])
    assert viz.enabled["faithfulness"] is False and viz.enabled["gradcam"] is False


def test_clear_errors(model, data):
    with pytest.raises(TypeError, match=r"faithfulness: expected True or False, got 'yes'"):
        CNNVizCallback(model, log_dir=None, writer=object(), probe=data[0][:2], faithfulness="yes")
    with pytest.raises(ValueError, match=r"probe: .*faithfulness.* need probe images"):
        CNNVizCallback(model, log_dir=None, writer=object(), faithfulness=True)
