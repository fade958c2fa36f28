"""Shared fixtures: the embedded shapes dataset and a SmallVGG trained on it for a few hundred steps.

Training happens once per test session (about 10 s on 2 CPU cores); every test gets
its own fresh copy of the trained model, so no test can disturb another.
"""

from __future__ import annotations

import copy

import pytest
from support import TRAINED_WIDTH, train_small_vgg
from torch import nn

from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

TRAINED_STEPS = 300


@pytest.fixture(scope="session")
def shapes_train() -> ShapesDataset:
    return ShapesDataset(8000, seed=0)


@pytest.fixture(scope="session")
def shapes_test() -> ShapesDataset:
    """Held-out images (a different seed from the training split)."""
    return ShapesDataset(1000, seed=1)


@pytest.fixture(scope="session")
def _trained_state(shapes_train):
    model = train_small_vgg(shapes_train, TRAINED_STEPS)
    return copy.deepcopy(model.state_dict())


@pytest.fixture
def trained_small_vgg(_trained_state) -> nn.Module:
    """A SmallVGG(width=16) trained 300 steps on the shapes dataset (>95% test accuracy), in eval mode."""
    model = small_vgg(width=TRAINED_WIDTH)
    model.load_state_dict(_trained_state)
    return model.eval()
