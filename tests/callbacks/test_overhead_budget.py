"""Dead filters counted on a sample of the training batches, chosen for an overhead budget."""

import numpy as np
import pytest
import torch
from callback_training import train
from support import read_logdir

from tb_cnnviz.callbacks import CNNVizCallback

WINDOW = 80


def plant(model):
    with torch.no_grad():
        model.features.bn3.bias[[0, 5, 9]] = -1e4
        model.features.bn3.bias.requires_grad_(False)  # keep them dead while training


def logged_sample(log_dir, layer="features.conv3"):
    run = read_logdir(str(log_dir))["."]
    return run[f"cnnviz/dead_filters/{layer}"]["values"], run[f"cnnviz/dead_filter_sample/{layer}"]["values"]


def test_a_budget_too_small_for_every_batch_samples_them_and_planted_filters_stay_exact(
    tmp_path, model, data
):
    images, labels = data
    plant(model)
    # a budget far below what counting costs: the sample is as sparse as allowed (8 batches a window)
    every = {"dead_filters": WINDOW, **{k: 10**6 for k in ("kernels", "activations", "gradcam")}}
    with CNNVizCallback(
        model, log_dir=tmp_path, every_n_steps=every, overhead_budget=1e-9, strict=True
    ) as viz:
        train(model, viz, images, labels, steps=2 * WINDOW)
        assert viz._window.tracker.count_every == WINDOW // 8
    rates, samples = logged_sample(tmp_path)
    counted, seen, count_every = samples[-1]
    assert (seen, count_every) == (WINDOW, WINDOW // 8)
    assert counted == WINDOW / (WINDOW // 8)  # forwards 0, 10, 20, ... of the window
    assert np.nonzero(rates[-1] == 0)[0].tolist() == [0, 5, 9]  # planted: exact
    assert (rates[-1][[i for i in range(16) if i not in (0, 5, 9)]] > 0).all()  # live: never called dead


@pytest.mark.parametrize(
    ("every", "budget", "expected"),
    [
        (20, 0, [[20, 20, 1], [20, 20, 1]]),  # budget zero: every batch is counted
        (40, 0.99, [[40, 40, 1]]),  # counting costs far less than 99% of a step
    ],
    ids=["budget zero", "generous budget"],
)
def test_budget_counts_every_batch(tmp_path, model, data, every, budget, expected):
    images, labels = data
    with CNNVizCallback(
        model, log_dir=tmp_path, every_n_steps={"dead_filters": every}, overhead_budget=budget
    ) as viz:
        train(model, viz, images, labels, steps=40)
        if budget == 0:
            assert viz._window.tracker.count_every == 1
    _, samples = logged_sample(tmp_path)
    assert [s.tolist() for s in samples][-len(expected) :] == expected
    if budget == 0:
        assert len(samples) == len(expected)


@pytest.mark.parametrize("bad", [-0.1, 1, 1.5, "0.01", True, None])
def test_overhead_budget_must_be_a_fraction(tmp_path, model, bad):
    with pytest.raises(
        ValueError, match=r"overhead_budget: expected a fraction of the training time in \[0, 1\)"
    ):
        CNNVizCallback(model, log_dir=tmp_path, overhead_budget=bad)
