"""Fixtures of the command-line tests: image files of the shapes dataset and checkpoints on disk."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from support import TRAINED_WIDTH

from tb_cnnviz.datasets import SHAPE_CLASSES, ShapesDataset
from tb_cnnviz.models import small_vgg


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """Shapes images as PNG files: a few single images and an ImageFolder (folders sorted in class order),
    and a randomly initialised SmallVGG(width=8) checkpoint (``random``)."""
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
def trained_checkpoint(_trained_state, tmp_path_factory) -> str:
    """The session's trained SmallVGG(width=16) as a state_dict file."""
    path = tmp_path_factory.mktemp("cli_trained") / "model.pt"
    torch.save(_trained_state, path)
    return str(path)


@pytest.fixture(scope="module")
def trained_model_args(trained_checkpoint) -> tuple[str, ...]:
    """The command-line MODEL and options that load the session's trained SmallVGG(width=16) checkpoint."""
    return (
        "tb_cnnviz.models:small_vgg",
        "--checkpoint",
        trained_checkpoint,
        "--factory-kwargs",
        f"width={TRAINED_WIDTH}",
    )
