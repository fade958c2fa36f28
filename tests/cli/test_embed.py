"""``tb-cnnviz embed``: the map of an image folder with the trained checkpoint, and folder labels in the model's
class order.
"""

from __future__ import annotations

import numpy as np
from cli_helpers import only_run, png, run
from support import TRAINED_WIDTH

from tb_cnnviz.cli.embed import model_labels
from tb_cnnviz.datasets import SHAPE_CLASSES


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


def test_embed_folder_labels_follow_the_models_class_order():
    # Folders sort as ['car', 'plane', 'ship']; the model's classes are plane, car, ship.
    labels, classes = model_labels([0, 1, 2, 1], ["car", "plane", "ship"], ["plane", "Car", "ship"])
    assert labels == [1, 0, 2, 0] and classes == ["plane", "Car", "ship"]
    # A folder that is not a class name: folder order is kept, as documented.
    assert model_labels([0, 1], ["00-car", "01-plane"], ["plane", "car"]) == (
        [0, 1],
        ["00-car", "01-plane"],
    )
    assert model_labels(None, [], ["plane"]) == (None, [])
