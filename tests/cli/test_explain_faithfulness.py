"""``tb-cnnviz explain --faithfulness``: the deletion and insertion areas and curves of the trained checkpoint's
Grad-CAM maps, exactly what ``analysis.faithfulness`` computes on the same images and classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cli_helpers import only_run, run

from tb_cnnviz.analysis.cam import grad_cam
from tb_cnnviz.analysis.faithfulness import DEFAULT_STEPS, faithfulness
from tb_cnnviz.snapshots.faithfulness import COLUMNS


def test_explain_logs_faithfulness_of_its_gradcam(
    data, trained_model_args, trained_small_vgg, tmp_path, capsys
):
    code, _, err = run(
        capsys,
        "explain",
        *trained_model_args,
        *data["images"],
        "--methods",
        "gradcam",
        "--activation-layers",
        "none",
        "--faithfulness",
        "--logdir",
        tmp_path,
    )
    assert code == 0, err
    series = only_run(tmp_path)
    areas = series["cnnviz/faithfulness/features.conv5"]
    curves = series["cnnviz/faithfulness_curves/features.conv5"]
    assert areas["content"]["columns"] == list(COLUMNS) and areas["values"][0].shape == (3, 4)
    assert curves["values"][0].shape == (3, 4, DEFAULT_STEPS + 1)
    images, _ = data["dataset"].tensors(list(range(3)))  # the files' pixels exactly
    cam = grad_cam(trained_small_vgg, "features.conv5", images, return_details=True)
    expected = faithfulness(trained_small_vgg, images, cam.native, cam.target)
    direct = torch.cat([expected.deletion_auc, expected.insertion_auc], dim=1).float().numpy()
    np.testing.assert_allclose(areas["values"][0], direct, atol=1e-5)
    scalars = only_run(tmp_path, plugin="scalars")
    gap = scalars["cnnviz_scalars/gradcam_deletion_gap/features.conv5"]["values"][0]
    assert gap == pytest.approx(expected.deletion_gap.mean().item(), abs=1e-6)
