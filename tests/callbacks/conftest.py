"""Fixtures of the callback tests: a small untrained SmallVGG and shapes images to train it on."""

import pytest
import torch

from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg


@pytest.fixture
def data():
    return ShapesDataset(256, seed=3).tensors()


@pytest.fixture
def model():
    torch.manual_seed(0)
    return small_vgg(width=8)
