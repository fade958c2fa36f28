"""``tb-cnnviz embed`` also logs and prints the linear separability of a labelled folder (the callback's
``separability`` snapshot), and the embedding map reuses its pass over the images."""

from __future__ import annotations

import math
import re

import pytest
from cli_helpers import only_run, run
from PIL import Image
from support import TRAINED_WIDTH

from tb_cnnviz.analysis.separability import COLUMNS, NOT_ENOUGH_LABELS
from tb_cnnviz.datasets import SHAPE_CLASSES, ShapesDataset

LAYERS = ["features.relu2", "features.relu4", "features.relu5", "features", "classifier"]


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory) -> str:
    """120 shapes images in class subfolders, at least 5 per class (9-15)."""
    root = tmp_path_factory.mktemp("separability_folder")
    dataset = ShapesDataset(120, seed=7)
    for index, (image, label) in enumerate(zip(dataset.images, dataset.labels)):
        folder = root / f"{int(label):02d}-{SHAPE_CLASSES[label]}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    return str(root)


@pytest.mark.parametrize("which", ["labelled", "few_per_class"])
def test_embed_logs_the_separability_of_a_labelled_folder(
    which, data, labelled_folder, trained_checkpoint, tmp_path, capsys
):
    code, out, err = run(
        capsys,
        "embed",
        "tb_cnnviz.models:small_vgg",
        labelled_folder if which == "labelled" else data["folder"],  # the latter: 4 images in class 0
        "--checkpoint",
        trained_checkpoint,
        "--factory-kwargs",
        f"width={TRAINED_WIDTH}",
        "--logdir",
        tmp_path / "logs",
    )
    assert code == 0, err
    series = only_run(tmp_path / "logs")
    rows = {}
    for layer in LAYERS:
        logged = series[f"cnnviz/separability/{layer}"]
        assert logged["content"]["depth"] == LAYERS.index(layer)
        rows[layer] = dict(zip(COLUMNS, logged["values"][0].tolist()))
    line = next(text for text in out.splitlines() if text.startswith("linear separability"))
    for layer, row in rows.items():
        if row["outcome"] == 0:
            assert f"{layer} {row['accuracy']:.3f}" in line
        else:  # a folder of 60 images in 10 classes may hold fewer than 5 of a class: said, not a number
            assert math.isnan(row["accuracy"]) and "not enough labelled images" in line
    if which == "labelled":
        assert all(row["outcome"] == 0 for row in rows.values()) and re.search(r"chance 0\.\d{3}$", line)
        assert rows["classifier"]["accuracy"] > rows["features.relu2"]["accuracy"]  # rises with depth
    else:
        assert all(row["outcome"] == NOT_ENOUGH_LABELS for row in rows.values())
    assert series["cnnviz/embedding/classifier"]["steps"] == [0]
