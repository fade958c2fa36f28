"""``tb-cnnviz explain``: predictions, Grad-CAM, attributions and layer outputs of the trained checkpoint and of
ResNet-18, and images of other modes (16-bit grey, RGBA) converted on the way.
"""

from __future__ import annotations

import os

import numpy as np
from cli_helpers import only_run, png, run
from PIL import Image
from support import plugin_client

from tb_cnnviz import image_files
from tb_cnnviz.analysis.cam import grad_cam
from tb_cnnviz.datasets import SHAPE_CLASSES

API = "/data/plugin/cnnviz/api"


def test_explain_the_trained_checkpoint(data, trained_model_args, trained_small_vgg, tmp_path, capsys):
    code, out, err = run(
        capsys,
        "explain",
        *trained_model_args,
        *data["images"],
        "--logdir",
        tmp_path,
    )
    assert code == 0, err
    for path, label in zip(data["images"], data["labels"]):  # the top prediction printed is the true class
        line = next(line for line in out.splitlines() if line.startswith(path))
        assert line.split(": ", 1)[1].split()[0] == str(label)
    series = only_run(tmp_path)
    info = series["cnnviz/gradcam_info/features.conv5"]["values"][0]
    assert (
        info[:, 1].tolist() == data["labels"]
        and (info[:, 0] == info[:, 1]).all()
        and (info[:, 2] > 0.5).all()
    )
    images, _ = data["dataset"].tensors(list(range(3)))
    expected = grad_cam(trained_small_vgg, "features.conv5", images, return_details=True).native
    np.testing.assert_allclose(  # stored at the layer's resolution (8 x 8 of the 32 px input)
        series["cnnviz/gradcam_maps/features.conv5"]["values"][0], expected.numpy(), rtol=1e-4, atol=1e-6
    )
    for tag in (
        "gradcam/features.conv5",
        "attribution/saliency",
        "attribution/guided_backprop",
        "attribution/occlusion",
        "activations/features.conv1",
        "activations/features.conv3",
        "activations/features.conv5",
        "probe",
    ):
        assert len(series[f"cnnviz/{tag}"]["values"][0]) == 3, tag
    probe = png(series["cnnviz/probe"]["values"][0][0])
    assert np.array_equal(probe, data["dataset"].images[0])  # shown in image space, exactly the file's pixels
    # the tab labels each probe image by its file name
    client, _ = plugin_client(str(tmp_path))
    (run_name,) = [entry["name"] for entry in client.get(f"{API}/runs/list").get_json()["runs"]]
    step = series["cnnviz/probe"]["steps"][0]
    answer = client.get(f"{API}/activations/step?run={run_name}&layer=features.conv1&step={step}").get_json()
    assert answer["probe"]["names"] == [os.path.basename(path) for path in data["images"]]


def test_explain_torchvision_resnet18_normalised_with_a_target(data, tmp_path, capsys):
    out_dir = tmp_path / "png"
    code, out, err = run(
        capsys,
        "explain",
        "torchvision:resnet18",
        data["images"][0],
        "--input-size",
        "48",
        "--mean",
        "0.5",
        "--std",
        "0.25",
        "--target",
        "7",
        "--methods",
        "gradcam,occlusion",
        "--activation-layers",
        "layer1.0.conv1",
        "--layer",
        "layer4",
        "--logdir",
        tmp_path,
        "--out",
        out_dir,
    )
    assert code == 0, err
    series = only_run(tmp_path)
    info = series["cnnviz/gradcam_info/layer4"]["values"][0]
    assert info.shape == (1, 4) and info[0, 0] == 7
    assert series["cnnviz/gradcam_maps/layer4"]["values"][0].shape == (1, 2, 2)  # layer4 of a 48 px input
    assert set(tag.split("/")[1] for tag in series) == {
        "probe",
        "gradcam",
        "gradcam_maps",
        "gradcam_info",
        "gradcam_predicted_maps",  # --target given: the predicted class's maps too (#16)
        "attribution",
        "activations",
    }
    probe = png(series["cnnviz/probe"]["values"][0][0])
    assert probe.shape == (48, 48, 3)
    resized = image_files.fit(image_files.read_image(data["images"][0]), (48, 48))  # upscaled, not normalised
    assert np.abs(probe / 255.0 - resized.permute(1, 2, 0).numpy()).max() <= 1 / 255 + 1e-6
    assert sorted(os.listdir(out_dir)) == [
        "activations_layer1.0.conv1.png",
        "attribution_occlusion.png",
        "explain_predictions.md",
        "gradcam_layer4.png",
        "probe.png",
    ]


def test_a_grey_16_bit_and_an_rgba_image_explained(data, tmp_path, capsys):
    image = data["dataset"].images[0]
    Image.fromarray(image[..., 0].astype(np.uint16) * 257).save(tmp_path / "deep.png")
    Image.fromarray(np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])).save(tmp_path / "rgba.png")
    (tmp_path / "classes.txt").write_text("\n".join(SHAPE_CLASSES))
    code, out, err = run(
        capsys,
        "explain",
        data["random"],
        tmp_path / "deep.png",
        tmp_path / "rgba.png",
        "--methods",
        "saliency",
        "--activation-layers",
        "none",
        "--class-names",
        tmp_path / "classes.txt",
        "--target",
        SHAPE_CLASSES[2],
        "--logdir",
        tmp_path / "logs",
    )
    assert code == 0, err
    assert "16-bit image scaled to [0, 1]" in err and "RGBA image composited onto white" in err
    probe = only_run(tmp_path / "logs")["cnnviz/probe"]
    pictures = [png(blob) for blob in probe["values"][0]]
    assert np.array_equal(pictures[0], np.repeat(image[..., :1], 3, axis=2)) and np.array_equal(
        pictures[1], image
    )
    assert probe["content"]["labels"] == [2, 2] and probe["content"]["class_names"] == list(SHAPE_CLASSES)
    assert probe["content"]["names"] == ["deep.png", "rgba.png"]  # the tab labels each image by its file
