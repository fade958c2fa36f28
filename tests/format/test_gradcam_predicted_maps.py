"""Issue #16, "explain the predicted class": with labels the Grad-CAM snapshot also logs each image's
predicted class's map (``gradcam_predicted_maps``). On a tiny hand-built model where labels and predictions
differ, that map equals a direct Grad-CAM of the predicted class in float64; where they agree it is the
label's map; and it comes from the same forward pass (one forward of the model per snapshot)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import plugin_client, write_run
from tensorboard.util import tensor_util
from torch import nn

from tb_cnnviz import snapshots
from tb_cnnviz.analysis import cam
from tb_cnnviz.snapshots import Inputs


class ThreeClasses(nn.Module):
    """conv (3 hand-set 3x3 filters) -> ReLU -> global mean -> linear head of 3 classes with hand-set weights."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.head = nn.Linear(3, 3, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.tensor(
                    [
                        [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]],  # the pixel itself
                        [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]],  # vertical edges
                        [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]],  # horizontal edges
                    ]
                )[:, None]
            )
            self.head.weight.copy_(torch.tensor([[1.0, -0.5, 0.2], [-0.3, 1.0, 0.1], [0.2, 0.3, 1.0]]))

    def forward(self, x):
        return self.head(self.relu(self.conv(x)).mean(dim=(2, 3)))


def _images() -> torch.Tensor:
    return torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(3)) * 2 - 0.5


def _read(summaries: list) -> dict:
    return {s.value[0].tag: tensor_util.make_ndarray(s.value[0].tensor) for s in summaries}


def test_predicted_class_maps_equal_a_direct_grad_cam_in_float64():
    model, images = ThreeClasses(), _images()
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    labels = (predicted + torch.tensor([0, 1, 0, 2, 0, 1])) % 3  # images 1, 3 and 5 are predicted otherwise
    differ = predicted != labels
    assert differ.tolist() == [False, True, False, True, False, True]
    forwards = []
    model.register_forward_pre_hook(lambda module, args: forwards.append(len(args[0])))
    result = _read(
        snapshots.gradcam(Inputs(model=model, layers=[("relu", model.relu)], images=images, labels=labels))
    )
    assert forwards == [6]  # one forward pass: the predicted class's gradient reuses its graph
    real = cam.grad_cam
    stored = result["cnnviz/gradcam_predicted_maps/relu"]
    label_maps = result["cnnviz/gradcam_maps/relu"]
    assert stored.shape == label_maps.shape == (6, 5, 5)
    exact = real(
        model.double(), "relu", images.double(), predicted, normalize="none", return_details=True
    ).native
    assert exact.dtype == torch.float64 and float(exact.abs().max()) > 0.01  # not a trivially zero map
    np.testing.assert_allclose(stored, exact.numpy(), rtol=1e-5, atol=1e-7)
    # where the label is predicted the two maps are one; elsewhere they differ (another class's evidence)
    np.testing.assert_array_equal(stored[~differ.numpy()], label_maps[~differ.numpy()])
    for i in np.flatnonzero(differ.numpy()):
        assert np.abs(stored[i] - label_maps[i]).max() > 1e-3, i
    info = result["cnnviz/gradcam_info/relu"]
    assert info[:, 1].tolist() == predicted.tolist()


def test_no_predicted_maps_without_labels_and_the_label_s_map_where_all_agree():
    model, images = ThreeClasses(), _images()
    result = _read(snapshots.gradcam(Inputs(model=model, layers=[("relu", model.relu)], images=images)))
    assert "cnnviz/gradcam_predicted_maps/relu" not in result  # the maps explain the prediction already
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    result = _read(
        snapshots.gradcam(Inputs(model=model, layers=[("relu", model.relu)], images=images, labels=predicted))
    )
    np.testing.assert_array_equal(
        result["cnnviz/gradcam_predicted_maps/relu"], result["cnnviz/gradcam_maps/relu"]
    )


def test_grad_cam_predicted_too_equals_grad_cam_of_the_predicted_class_in_float64():
    model, images = ThreeClasses().double(), _images().double()
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    labels = (predicted + 1) % 3
    both = cam.grad_cam(model, "relu", images, labels, return_details=True, predicted_too=True)
    alone = cam.grad_cam(model, "relu", images, predicted, return_details=True)
    assert both.predicted.tolist() == predicted.tolist() and both.predicted_native.dtype == torch.float64
    torch.testing.assert_close(both.predicted_native, alone.native, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(
        both.native, cam.grad_cam(model, "relu", images, labels, return_details=True).native
    )
    assert cam.grad_cam(model, "relu", images, labels, return_details=True).predicted_native is None


def test_maps_and_image_routes_serve_the_predicted_class_on_request(tmp_path):
    model, images = ThreeClasses(), _images()
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    labels = (predicted + torch.tensor([0, 1, 0, 2, 0, 1])) % 3
    inputs = Inputs(model=model, layers=[("relu", model.relu)], images=images, labels=labels)
    summaries = snapshots.gradcam(inputs) + snapshots.probe(inputs)
    write_run(str(tmp_path), "run", {3: summaries})
    no_predicted = [
        s for s in snapshots.gradcam(inputs) if "predicted" not in s.value[0].tag
    ] + snapshots.probe(inputs)
    write_run(str(tmp_path), "old", {3: no_predicted})
    client, _ = plugin_client(str(tmp_path))
    stored = _read(summaries)

    def get(route: str, **params):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return client.get(f"/data/plugin/cnnviz/api/gradcam/{route}?{query}")

    import base64

    step = get("step", run="run", layer="relu", step=3).get_json()
    assert step["explains"] == "label" and step["predicted_maps_logged"] is True
    for explain, tag in (("target", "gradcam_maps"), ("predicted", "gradcam_predicted_maps")):
        answer = get("maps", run="run", layer="relu", step=3, explain=explain).get_json()
        values = np.frombuffer(base64.b64decode(answer["data"]), "<f4").reshape(answer["shape"])
        np.testing.assert_array_equal(values, stored[f"cnnviz/{tag}/relu"])
        assert answer["explain"] == explain
        assert answer["scale"] == pytest.approx(
            stored[f"cnnviz/{tag}/relu"].reshape(6, -1).max(axis=1).tolist(),
            abs=5e-6,  # 5 decimals
        )
        strip = get("image", run="run", layer="relu", index=1, explain=explain).get_json()
        (entry,) = strip["strip"]
        np.testing.assert_array_equal(
            np.frombuffer(base64.b64decode(entry["map"]["data"]), "<f4").reshape(5, 5),
            stored[f"cnnviz/{tag}/relu"][1],
        )
    # a run without them (written before #16): the view is told, and asking is a 404 saying why
    assert get("step", run="old", layer="relu", step=3).get_json()["predicted_maps_logged"] is False
    missing = get("maps", run="old", layer="relu", step=3, explain="predicted")
    assert missing.status_code == 404 and "logged no predicted-class maps" in missing.get_json()["error"]
    bad = get("maps", run="run", layer="relu", step=3, explain="best")
    assert bad.status_code == 400 and "expected one of ['target', 'predicted']" in bad.get_json()["error"]
