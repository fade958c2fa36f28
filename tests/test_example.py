"""The example script end to end: trains, logs every kind, prints how to open TensorBoard."""

import os
import subprocess
import sys

from support import read_logdir

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "cifar10", "train.py")


def test_example_trains_on_shapes_and_logs_everything(tmp_path):
    logdir = tmp_path / "runs" / "demo"
    checkpoint = tmp_path / "model.pt"
    result = subprocess.run(
        [
            sys.executable,
            EXAMPLE,
            "--dataset",
            "shapes",
            "--epochs",
            "2",
            "--steps",
            "20",
            "--batch-size",
            "32",
            "--width",
            "8",
            "--every",
            "10",
            "--embedding-images",
            "60",
            "--logdir",
            str(logdir),
            "--save",
            str(checkpoint),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"tensorboard --logdir {tmp_path / 'runs'}" in result.stdout
    assert "epoch 2: test accuracy" in result.stdout
    run = read_logdir(str(logdir))["."]
    assert run["cnnviz/kernels/features.conv1"]["steps"] == [1, 10, 20, 30, 40]
    assert run["cnnviz/dead_filters/features.conv5"]["steps"] == [10, 20, 30, 40]
    assert run["cnnviz/probe"]["content"]["class_names"][0] == "circle"
    assert len(run["cnnviz/activations/features.relu5"]["values"][0]) == 8
    assert run["cnnviz/patterns/features.conv3"]["steps"] == [20, 40]  # one gallery per epoch
    assert run["cnnviz/embedding/classifier"]["steps"] == [20, 40]
    assert run["cnnviz/embedding/classifier"]["values"][0].shape == (60, 3)
    import torch

    from tb_cnnviz.models import small_vgg

    small_vgg(width=8).load_state_dict(
        torch.load(checkpoint)
    )  # the checkpoint loads into the factory's model


def test_example_rejects_bad_arguments():
    result = subprocess.run(
        [sys.executable, EXAMPLE, "--steps", "0"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "--steps must be >= 1" in result.stderr
