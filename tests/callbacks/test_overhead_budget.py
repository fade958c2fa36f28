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


@pytest.mark.parametrize("count_every", [1, 2])
def test_a_detached_tracker_neither_hooks_nor_sees_forwards_and_counts_on_once_attached(count_every):
    """benchmarks/overhead.py alternates steps with and without the tracker by detach()/attach()."""
    from tb_cnnviz.analysis.dead_filters import DeadFilterTracker

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).double().train()
    with torch.no_grad():
        model[0].bias[1] = -1e6  # planted dead filter
    inputs = torch.randn(4, 2, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with DeadFilterTracker(model, [model[0]], count_every=count_every) as tracker:
        model(inputs[0])
        tracker.detach()
        assert not model._forward_pre_hooks and not model[0]._forward_hooks
        model(inputs[1])  # not seen
        assert tracker.forwards == 1
        tracker.attach()
        tracker.attach()  # idempotent
        assert len(model._forward_pre_hooks) == (1 if count_every == 1 else 2)
        model(inputs[2])
        model(inputs[3])
        assert (tracker.forwards, tracker.batches) == (3, 3 if count_every == 1 else 2)
        rates = tracker.rates()[0]
    counted = inputs[[0, 2, 3]] if count_every == 1 else inputs[[0, 3]]
    with torch.no_grad():
        expected = (model[0](counted.flatten(0, 1)) > 0).double().mean(dim=(0, 2, 3)).float()
    torch.testing.assert_close(rates, expected, rtol=0, atol=0)
    assert torch.nonzero(rates == 0).flatten().tolist() == [1]
