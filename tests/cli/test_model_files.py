"""MODEL given as a TorchScript file or a torch.export program: what works without hooks, Grad-CAM through the
unflattened program equal to the eager model's, and the layer table.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cli_helpers import only_run, run

from tb_cnnviz.analysis.cam import grad_cam
from tb_cnnviz.models import small_vgg


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript_and_export_files(data, tmp_path, capsys):
    torch.manual_seed(1)
    model = small_vgg(width=8).eval()
    scripted = tmp_path / "model.ts"
    torch.jit.script(model).save(str(scripted))
    code, out, err = run(
        capsys, "explain", scripted, data["images"][0], "--input-size", "32", "--logdir", tmp_path / "ts"
    )
    assert code == 0, err
    assert {tag.split("/")[1] for tag in only_run(tmp_path / "ts")} == {
        "probe",
        "attribution",
    }  # saliency, occlusion
    code, out, err = run(capsys, "filters", scripted, "--logdir", tmp_path / "ts2")
    assert code == 0 and "features.conv1: kernels [8, 3, 3, 3]" in out
    code, out, err = run(capsys, "dream", scripted, data["images"][0], "--logdir", tmp_path / "ts3")
    assert code == 2 and err.strip().startswith(
        "error: MODEL: dream needs forward hooks, which TorchScript modules do not support"
    )

    exported = tmp_path / "model.pt2"
    batch = torch.export.Dim("batch")
    torch.export.save(
        torch.export.export(model, (torch.rand(2, 3, 32, 32),), dynamic_shapes={"x": {0: batch}}),
        str(exported),
    )
    code, out, err = run(
        capsys, "explain", exported, *data["images"], "--methods", "gradcam", "--logdir", tmp_path / "ex"
    )
    assert code == 0, err
    images, _ = data["dataset"].tensors(list(range(3)))
    np.testing.assert_allclose(
        only_run(tmp_path / "ex")["cnnviz/gradcam_maps/features.conv5"]["values"][0],
        grad_cam(
            model, "features.conv5", images, return_details=True
        ).native.numpy(),  # at the layer's resolution
        rtol=1e-4,
        atol=1e-6,
    )
    code, out, err = run(capsys, "summary", exported, "--logdir", tmp_path / "ex2")
    assert code == 0 and any(line.split()[:2] == ["features.conv5", "Conv2d"] for line in out.splitlines())
