"""``tb-cnnviz summary`` and ``tb-cnnviz filters``: the layer table and the kernels of the example's checkpoint
and of torchvision ResNet-18 with random weights, read back the way the plugin reads them.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from cli_helpers import only_run, png, run

from tb_cnnviz.snapshots.precision import half


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
            series[f"cnnviz/kernels/{name}"]["values"][0], half(state[f"{name}.weight"].numpy())
        )  # the checkpoint's weights as the kernels kind stores them (float16)
        assert series[f"cnnviz/smoothness/{name}"]["values"][0].shape == (state[f"{name}.weight"].shape[0],)
        assert f"{name}: kernels {list(state[f'{name}.weight'].shape)}" in out
    grid = png((out_dir / "kernel_grid_features.conv1.png").read_bytes())
    assert grid.shape == (3 * 4 + 1, 3 * 4 + 1, 3)  # 8 RGB 3x3 kernels in rows of 3, 1 px padding
    assert np.array_equal(grid, png(series["cnnviz/kernel_grid/features.conv1"]["values"][0][0]))
