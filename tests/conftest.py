"""Shared fixtures: the embedded shapes dataset and a SmallVGG trained on it for a few hundred steps.

Training happens once per test session (about 13 s on one thread, deterministic), and the
fixture checks the held-out accuracy the tests that use it assume; every test gets its own
fresh copy of the trained model, so no test can disturb another.
"""

from __future__ import annotations

import copy

import pytest
import torch
from support import TRAINED_WIDTH, train_small_vgg
from torch import nn

from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

TRAINED_STEPS = 300
# Held-out accuracy of the trained fixture on shapes_test: measured 0.996-1.000 over training seeds 0-4
# x {1, 2} threads (0.72-1.0 before training ran on one thread with a decaying learning rate).
TRAINED_ACCURACY = 0.97
NUMERIC_FOLDER = "analysis"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "numeric: numerically sensitive (tests/analysis, trained fixture); CI runs it on one thread too",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``numeric`` every test under tests/analysis or using the trained fixture (the one-thread CI lane)."""
    for item in items:
        in_analysis = item.path.parent.name == NUMERIC_FOLDER
        if in_analysis or "_trained_state" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.numeric)


@pytest.fixture(scope="session")
def shapes_train() -> ShapesDataset:
    return ShapesDataset(8000, seed=0)


@pytest.fixture(scope="session")
def shapes_test() -> ShapesDataset:
    """Held-out images (a different seed from the training split)."""
    return ShapesDataset(1000, seed=1)


@pytest.fixture(scope="session")
def _trained_state(shapes_train, shapes_test):
    """The trained SmallVGG's weights, after checking the held-out accuracy its users assume."""
    model = train_small_vgg(shapes_train, TRAINED_STEPS)
    images, labels = shapes_test.tensors()
    with torch.no_grad():
        accuracy = (model(images).argmax(1) == labels).float().mean().item()
    if accuracy < TRAINED_ACCURACY:
        pytest.fail(
            f"trained fixture: held-out accuracy {accuracy:.3f} on shapes_test, expected >= {TRAINED_ACCURACY} "
            "(the pointing game, t-SNE and pattern tests assume it); training did not reproduce here",
            pytrace=False,
        )
    return copy.deepcopy(model.state_dict())


@pytest.fixture
def trained_small_vgg(_trained_state) -> nn.Module:
    """A SmallVGG(width=16) trained 300 steps on the shapes dataset (checked >= 97% test accuracy), in eval mode."""
    model = small_vgg(width=TRAINED_WIDTH)
    model.load_state_dict(_trained_state)
    return model.eval()
