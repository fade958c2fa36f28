"""Every bad input gives exit code 2 and one ``error:`` line (no traceback, no half-written run); ``--debug``
shows the traceback; every command has ``--help``; the installed console script runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch
from cli_helpers import run
from PIL import Image

from tb_cnnviz import cli
from tb_cnnviz.cli.output import new_run_dir

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
    first, second = new_run_dir(str(tmp_path), "explain"), new_run_dir(str(tmp_path), "explain")
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
