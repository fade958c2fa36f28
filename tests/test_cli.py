"""The ``tb-cnnviz`` command line end to end: every command on the example's checkpoint (random and trained),
torchvision ResNet-18 with random weights, TorchScript and torch.export files; summaries read back the way
the plugin reads them; every bad input gives exit code 2 and one ``error:`` line.

Runs in-process through ``main([...])``; one test runs the installed console script.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image
from support import TRAINED_WIDTH, read_logdir

from tb_cnnviz import cli, image_files
from tb_cnnviz.analysis.cam import grad_cam
from tb_cnnviz.analysis.dream import deep_dream
from tb_cnnviz.datasets import SHAPE_CLASSES, ShapesDataset
from tb_cnnviz.models import small_vgg


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Shapes images as PNG files: a few single images and an ImageFolder (folders sorted in class order)."""
    root = tmp_path_factory.mktemp("cli_data")
    dataset = ShapesDataset(60, seed=11)
    singles = []
    for index in range(3):
        path = root / f"image{index}.png"
        Image.fromarray(dataset.images[index]).save(path)
        singles.append(str(path))
    for index, (image, label) in enumerate(zip(dataset.images, dataset.labels)):
        folder = root / "folder" / f"{int(label):02d}-{SHAPE_CLASSES[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    torch.manual_seed(0)
    random_checkpoint = root / "random.pt"
    torch.save(small_vgg(width=8).state_dict(), random_checkpoint)
    return {
        "root": root,
        "images": singles,
        "labels": [int(v) for v in dataset.labels[:3]],
        "dataset": dataset,
        "folder": str(root / "folder"),
        "random": str(random_checkpoint),
    }


@pytest.fixture(scope="module")
def trained_checkpoint(_trained_state, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_trained") / "model.pt"
    torch.save(_trained_state, path)
    return str(path)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv] + ["--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def only_run(logdir, plugin: str = "cnnviz") -> dict:
    runs = read_logdir(str(logdir), plugin)
    assert len(runs) == 1, runs.keys()
    return next(iter(runs.values()))


def png(blob: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(blob)))


# ----------------------------------------------------------------------------- commands
def test_summary_of_the_example_checkpoint_given_as_model(data, tmp_path, capsys):
    code, out, err = run(capsys, "summary", data["random"], "--logdir", tmp_path)
    assert code == 0, err
    assert "looks like the example's checkpoint" in err and "small_vgg(width=8)" in err
    rows = {
        line.split()[0]: line.split()
        for line in out.splitlines()[2:]
        if line.startswith(("features.", "classifier"))
    }
    assert rows["features.conv5"][1:] == ["Conv2d", "[1,", "32,", "8,", "8]", "4,608", "yes"]
    assert rows["classifier"][-2:] == ["330", "yes"] and rows["features.relu1"][-2:] == ["0", "-"]
    assert "input 3x32x32, output [1, 10]; parameters: 9,346 total, 9,346 trainable" in out
    (run_dir,) = os.listdir(tmp_path)
    assert run_dir.startswith("summary-") and f"tensorboard --logdir {tmp_path}" in out
    text = only_run(tmp_path, "text")["summary/layers/text_summary"]
    assert (
        text["steps"] == [0]
        and b"| features.conv5 | Conv2d | [1, 32, 8, 8] | 4,608 | yes |" in text["values"][0].item()
    )


def test_summary_of_torchvision_resnet18_with_random_weights(tmp_path, capsys):
    code, out, err = run(
        capsys, "summary", "torchvision:resnet18", "--input-size", "64", "--logdir", tmp_path
    )
    assert code == 0, err
    assert "random" in err
    assert any(
        line.split()[:3] == ["layer4.1.conv2", "Conv2d", "[1,"] and "512, 2, 2]" in line
        for line in out.splitlines()
    )
    assert "relu" in out and "(x2 calls)" in out  # one ReLU module reused inside each block
    assert "input 3x64x64, output [1, 1000]; parameters: 11,689,512 total" in out


def test_filters_log_the_checkpoint_weights(data, tmp_path, capsys):
    out_dir = tmp_path / "png"
    code, out, err = run(
        capsys,
        "filters",
        "tb_cnnviz.models:small_vgg",
        "--checkpoint",
        data["random"],
        "--factory-kwargs",
        "width=8",
        "--layer",
        "all",
        "--logdir",
        tmp_path / "logs",
        "--out",
        out_dir,
    )
    assert code == 0, err
    state = torch.load(data["random"])
    series = only_run(tmp_path / "logs")
    for index in range(1, 6):
        name = f"features.conv{index}"
        np.testing.assert_array_equal(
            series[f"cnnviz/kernels/{name}"]["values"][0], state[f"{name}.weight"].numpy()
        )
        assert series[f"cnnviz/smoothness/{name}"]["values"][0].shape == (state[f"{name}.weight"].shape[0],)
        assert f"{name}: kernels {list(state[f'{name}.weight'].shape)}" in out
    grid = png((out_dir / "kernel_grid_features.conv1.png").read_bytes())
    assert grid.shape == (3 * 4 + 1, 3 * 4 + 1, 3)  # 8 RGB 3x3 kernels in rows of 3, 1 px padding
    assert np.array_equal(grid, png(series["cnnviz/kernel_grid/features.conv1"]["values"][0][0]))


def test_explain_the_trained_checkpoint(data, trained_checkpoint, trained_small_vgg, tmp_path, capsys):
    code, out, err = run(
        capsys,
        "explain",
        "tb_cnnviz.models:small_vgg",
        "--checkpoint",
        trained_checkpoint,
        "--factory-kwargs",
        f"width={TRAINED_WIDTH}",
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
    expected = grad_cam(trained_small_vgg, "features.conv5", images)
    np.testing.assert_allclose(
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
    assert series["cnnviz/gradcam_maps/layer4"]["values"][0].shape == (1, 48, 48)
    assert set(tag.split("/")[1] for tag in series) == {
        "probe",
        "gradcam",
        "gradcam_maps",
        "gradcam_info",
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


def test_patterns_of_chosen_channels_and_classes(data, tmp_path, capsys):
    code, out, err = run(
        capsys,
        "patterns",
        data["random"],
        "--layer",
        "features.conv2",
        "--channels",
        "1,3",
        "--size",
        "16",
        "--steps",
        "3",
        "--param",
        "pixel",
        "--logdir",
        tmp_path,
    )
    assert code == 0, err
    code, out, err = run(
        capsys,
        "patterns",
        data["random"],
        "--classes",
        "0-1",
        "--size",
        "16",
        "--steps",
        "3",
        "--param",
        "pixel",
        "--logdir",
        tmp_path,
    )
    assert code == 0, err
    runs = read_logdir(str(tmp_path))
    assert len(runs) == 2
    layer = next(series for series in runs.values() if "cnnviz/patterns/features.conv2" in series)
    gallery = layer["cnnviz/patterns/features.conv2"]
    assert (
        gallery["content"]["channels"] == [1, 3]
        and [png(b).shape for b in gallery["values"][0]] == [(16, 16, 3)] * 2
    )
    reached = layer["cnnviz/pattern_values/features.conv2"]["values"][0]
    assert reached.shape == (2,) and np.isfinite(reached).all()
    classes = next(series for series in runs.values() if "cnnviz/patterns/logits" in series)
    assert classes["cnnviz/patterns/logits"]["content"]["channels"] == [0, 1]


def test_dream_writes_the_image_its_dream_and_the_gain(data, tmp_path, capsys):
    out_dir = tmp_path / "png"
    code, out, err = run(
        capsys,
        "dream",
        data["random"],
        data["images"][0],
        "--layer",
        "features.conv3,features.conv4",
        "--octaves",
        "2",
        "--steps",
        "2",
        "--logdir",
        tmp_path / "logs",
        "--out",
        out_dir,
    )
    assert code == 0, err
    change = float(out.split("mean absolute pixel change ")[1].split(",")[0])
    printed_gain = float(out.split("(gain x")[1].split(")")[0])
    assert change > 0.005
    series = only_run(
        tmp_path / "logs"
    )  # read back through TensorBoard's data provider, as the plugin reads it
    assert list(series) == [
        "cnnviz/dream/features.conv3+features.conv4"
    ]  # no probe, no Images-tab copy: one series
    dream = series["cnnviz/dream/features.conv3+features.conv4"]
    content = dream["content"]
    assert dream["steps"] == [0] and content["layers"] == ["features.conv3", "features.conv4"]
    assert (
        content["octaves"],
        content["octave_scale"],
        content["steps"],
        content["lr"],
        content["seed"],
        content["size"],
    ) == (2, 1.4, 2, 0.01, 0, [32, 32])
    original, dreamed = (png(blob) for blob in dream["values"][0])
    assert np.array_equal(original, data["dataset"].images[0])  # the file's pixels, unchanged
    assert abs(np.abs(dreamed / 255.0 - original / 255.0).mean() - change) < 0.01

    # Recompute independently: the same dream (deterministic for the seed), measured with plain forward hooks.
    model = small_vgg(width=8).eval()
    model.load_state_dict(torch.load(data["random"]))
    image = image_files.read_image(data["images"][0])
    again = deep_dream(model, image, ["features.conv3", "features.conv4"], octaves=2, steps=2, seed=0)
    assert np.array_equal(dreamed, (again.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))

    def objective(picture: torch.Tensor) -> float:
        outputs = []
        handles = [
            getattr(model.features, name).register_forward_hook(
                lambda _m, _i, output: outputs.append(output.clone())
            )
            for name in ("conv3", "conv4")
        ]
        try:
            with torch.no_grad():
                model(picture[None])
        finally:
            for handle in handles:
                handle.remove()
        return sum(float(output.norm()) / output.numel() ** 0.5 for output in outputs)

    before, after = objective(image), objective(again)
    assert content["objective"] == pytest.approx([before, after], rel=1e-5)
    assert content["gain"] == pytest.approx(after / before, rel=1e-5) and content["gain"] > 1.2
    assert printed_gain == pytest.approx(content["gain"], abs=0.005)
    from_pngs = objective(torch.tensor(dreamed).permute(2, 0, 1) / 255.0) / objective(
        torch.tensor(original).permute(2, 0, 1) / 255.0
    )
    assert from_pngs == pytest.approx(content["gain"], rel=0.02)  # what the panel shows has that gain too
    assert sorted(os.listdir(out_dir)) == [
        "dream_features.conv3+features.conv4.png",
        "dream_features.conv3+features.conv4_original.png",
    ]
    assert np.array_equal(png((out_dir / "dream_features.conv3+features.conv4.png").read_bytes()), dreamed)


def test_the_dream_snapshot_is_training_safe():
    from tb_cnnviz import snapshots

    torch.manual_seed(3)
    model = small_vgg(width=4).train()
    layers = [("features.conv2", model.features.conv2)]
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    state = torch.random.get_rng_state()
    summaries, dreamed, (before, after) = snapshots.dream(model, layers, image, octaves=1, steps=2)
    assert model.training and all(module.training for module in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert torch.equal(torch.random.get_rng_state(), state)
    assert after > before > 0 and summaries[0].value[0].tag == "cnnviz/dream/features.conv2"
    assert torch.allclose(
        snapshots.dream_objective(model, [model.features.conv2], torch.stack([image, dreamed])),
        torch.tensor([before, after]),
    )


def test_embed_an_image_folder_with_the_trained_checkpoint(data, trained_checkpoint, tmp_path, capsys):
    out_dir = tmp_path / "png"
    code, out, err = run(
        capsys,
        "embed",
        "tb_cnnviz.models:small_vgg",
        data["folder"],
        "--checkpoint",
        trained_checkpoint,
        "--factory-kwargs",
        f"width={TRAINED_WIDTH}",
        "--top-k",
        "4",
        "--logdir",
        tmp_path / "logs",
        "--out",
        out_dir,
    )
    assert code == 0, err
    series = only_run(tmp_path / "logs")
    embedding = series["cnnviz/embedding/classifier"]
    points, labels = embedding["values"][0], np.array(embedding["content"]["labels"])
    assert points.shape == (60, 3) and np.isfinite(points).all()
    assert (points[:, 2] == labels).mean() > 0.9  # the trained model's predictions match the folders
    accuracy = float(out.split("5-NN accuracy of the map by folder: ")[1].split()[0])
    assert accuracy > 0.7
    assert (
        embedding["content"]["class_names"][0] == f"{labels.min():02d}-{SHAPE_CLASSES[labels.min()]}"
        or labels.min() > 0
    )
    top = series["cnnviz/top_examples/features.conv5"]["values"][0]
    assert top.shape == (4 * TRAINED_WIDTH, 4, 6) and ((top[..., 0] >= 0) & (top[..., 0] < 60)).all()
    atlas = png(series["cnnviz/sprites"]["values"][0][0])
    assert atlas.shape[0] == 32 and atlas.shape[1] == 60 * 32
    assert png((out_dir / "embedding_map.png").read_bytes()).shape == (1200, 1200, 3)


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
        grad_cam(model, "features.conv5", images).numpy(),
        rtol=1e-4,
        atol=1e-6,
    )
    code, out, err = run(capsys, "summary", exported, "--logdir", tmp_path / "ex2")
    assert code == 0 and any(line.split()[:2] == ["features.conv5", "Conv2d"] for line in out.splitlines())


# ----------------------------------------------------------------------------- images
def test_image_modes_are_converted_sensibly(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200
    rgba = np.dstack([rgb, np.array([[0, 255, 255, 255]] * 4, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    notes = []
    image = image_files.read_image(str(tmp_path / "rgba.png"), note=notes.append)
    assert image[:, 0, 0].tolist() == [1.0, 1.0, 1.0]  # transparent: white
    assert image[:, 0, 1].tolist() == pytest.approx([200 / 255, 0, 0]) and "composited onto white" in notes[0]
    Image.fromarray(np.full((4, 4), 51, np.uint8)).save(tmp_path / "grey.png")
    assert image_files.read_image(str(tmp_path / "grey.png")).flatten().tolist() == pytest.approx([0.2] * 48)
    Image.fromarray(np.full((4, 4), 13107, np.uint16)).save(tmp_path / "deep.png")
    assert image_files.read_image(str(tmp_path / "deep.png"), channels=1).flatten().tolist() == pytest.approx(
        [0.2] * 16
    )
    assert image_files.read_image(str(tmp_path / "rgba.png"), channels=1)[0, 0, 1] == pytest.approx(
        0.299 * 200 / 255
    )


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


# ----------------------------------------------------------------------------- bad input
BAD = [
    (["explain", "{random}", "{root}/missing.png"], "IMAGE: {root}/missing.png: no such file"),
    (
        ["explain", "{random}", "{root}/notes.txt"],
        "IMAGE: {root}/notes.txt is not an image file Pillow can read",
    ),
    (["explain", "{random}", "{root}/truncated.png"], "IMAGE: cannot read {root}/truncated.png (OSError"),
    (["explain", "{random}", "{root}/folder"], "IMAGE: {root}/folder is a directory"),
    (["explain", "{random}", "{root}/i32.tif"], "is a 32-bit integer image with values outside 0..65535"),
    (["summary", "torchvision:resnet"], "MODEL: torchvision has no model named 'resnet'; did you mean"),
    (["summary", "no_such_module:factory"], "MODEL: cannot import 'no_such_module'"),
    (
        ["summary", "tb_cnnviz.models:no_factory"],
        "MODEL: 'tb_cnnviz.models' has no callable named 'no_factory'",
    ),
    (
        ["summary", "tb_cnnviz.models:small_vgg", "--factory-kwargs", "depth=3"],
        "--factory-kwargs: tb_cnnviz.models:small_vgg",
    ),
    (["summary", "{root}/missing.pt"], "MODEL: {root}/missing.pt: no such file"),
    (["summary", "{root}/image0.png"], "MODEL: {root}/image0.png is not a file saved with torch.save"),
    (
        ["summary", "tb_cnnviz.models:small_vgg", "--checkpoint", "{random}"],
        "--checkpoint: {random} does not match tb_cnnviz.models:small_vgg(): shape mismatch (checkpoint vs model): "
        "features.conv1.weight [8, 3, 3, 3] vs [32, 3, 3, 3]",
    ),
    (
        ["summary", "torchvision:resnet18", "--checkpoint", "{random}"],
        "missing: conv1.weight, bn1.weight, bn1.bias (+",
    ),
    (
        ["summary", "tb_cnnviz.models:small_vgg", "--checkpoint", "{root}/missing.pt"],
        "--checkpoint: {root}/missing.pt: no such file",
    ),
    (
        ["filters", "{random}", "--layer", "features.conv9"],
        "--layer: no layer named 'features.conv9' in the model; valid conv layer names: 'features.conv1', 'features.conv2'",
    ),
    (
        ["filters", "{random}", "--layer", "features.bn1"],
        "--layer: 'features.bn1' is a BatchNorm2d, not a Conv2d; valid conv",
    ),
    (
        ["explain", "{random}", "{root}/image0.png", "--layer", "head"],
        "--layer: no layer named 'head' in the model; valid",
    ),
    (
        ["explain", "{random}", "{root}/image0.png", "--target", "10"],
        "--target: class 10 is out of range for a model with 10 classes",
    ),
    (
        ["explain", "{random}", "{root}/image0.png", "--target", "cat"],
        "--target: 'cat' is not a class index or name (no class names",
    ),
    (
        ["explain", "{random}", "{root}/image0.png", "--methods", "lime"],
        "--methods: unknown method(s) ['lime']",
    ),
    (
        ["patterns", "{random}", "--channels", "0-40"],
        "--channels: 32 is out of range; expected indices 0..31",
    ),
    (["embed", "{random}", "{root}/image0.png"], "IMAGE_FOLDER: {root}/image0.png is not a folder"),
    (["embed", "{random}", "{root}/empty"], "IMAGE_FOLDER: {root}/empty holds no images"),
    (
        ["summary", "{random}", "--input-size", "0"],
        "tb-cnnviz summary: argument --input-size: expected N or HxW",
    ),
    (["explain", "{random}"], "tb-cnnviz explain: the following arguments are required: IMAGE"),
    (["summary", "{random}", "--weights", "DEFAULT"], "--weights: only applies to torchvision:NAME models"),
    (
        ["summary", "torchvision:resnet18", "--weights", "BEST"],
        "--weights: resnet18 has no weights 'BEST'; expected one of",
    ),
    (
        ["summary", "torchvision:resnet18", "--weights", "DEFAULT"],
        "--weights DEFAULT: could not download the weights of torchvision:resnet18 (URLError",
    ),
]


@pytest.mark.parametrize(
    "argv, message", BAD, ids=[f"{index}-{argv[0]}" for index, (argv, _) in enumerate(BAD)]
)
def test_bad_input_gives_one_error_line_and_exit_code_2(data, tmp_path, capsys, monkeypatch, argv, message):
    root = data["root"]
    (root / "notes.txt").write_text("not an image")
    (root / "truncated.png").write_bytes((root / "image0.png").read_bytes()[:100])
    (root / "empty").mkdir(exist_ok=True)
    Image.fromarray(np.full((4, 4), 70000, np.int32), mode="I").save(root / "i32.tif")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    fill = {"root": str(root), "random": data["random"]}
    code, out, err = run(capsys, *[part.format(**fill) for part in argv], "--logdir", tmp_path)
    errors = [line for line in err.splitlines() if not line.startswith("note: ")]
    assert code == 2
    assert len(errors) == 1 and errors[0].startswith("error: ") and message.format(**fill) in errors[0], err
    assert "Traceback" not in err and not (tmp_path.exists() and os.listdir(tmp_path))  # no half-written run


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_cuda(data, tmp_path, capsys):
    code, out, err = run(capsys, "summary", data["random"], "--device", "cuda", "--logdir", tmp_path)
    assert (
        code == 2
        and err.strip().splitlines()[-1]
        == "error: --device: cuda was asked for, but CUDA is not available on this machine"
    )


def test_debug_shows_the_traceback(data, tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        cli.main(
            ["explain", data["random"], str(tmp_path / "missing.png"), "--debug", "--logdir", str(tmp_path)]
        )


@pytest.mark.parametrize("command", ["summary", "filters", "patterns", "explain", "dream", "embed"])
def test_every_command_has_help(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith(f"usage: tb-cnnviz {command} ")
        and "--logdir" in out
        and "--out" in out
        and "--device" in out
    )


def test_runs_get_distinct_directories(tmp_path):
    first, second = cli.new_run_dir(str(tmp_path), "explain"), cli.new_run_dir(str(tmp_path), "explain")
    assert first != second and os.path.basename(second).startswith(os.path.basename(first))


def test_the_console_script(data, tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "tb-cnnviz")
    assert subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60).stdout.startswith(
        "usage: tb-cnnviz"
    )
    result = subprocess.run(
        [script, "filters", data["random"], "--layer", "features.conv0", "--logdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]
    assert errors == [errors[0]] and errors[0].startswith("error: --layer: no layer named 'features.conv0'")


def test_embed_folder_labels_follow_the_models_class_order():
    # Folders sort as ['car', 'plane', 'ship']; the model's classes are plane, car, ship.
    labels, classes = cli._model_labels([0, 1, 2, 1], ["car", "plane", "ship"], ["plane", "Car", "ship"])
    assert labels == [1, 0, 2, 0] and classes == ["plane", "Car", "ship"]
    # A folder that is not a class name: folder order is kept, as documented.
    assert cli._model_labels([0, 1], ["00-car", "01-plane"], ["plane", "car"]) == (
        [0, 1],
        ["00-car", "01-plane"],
    )
    assert cli._model_labels(None, [], ["plane"]) == (None, [])
