"""The callback's schedule, thread split and dispatch come from kinds.SNAPSHOTS: a new row and a
``snapshots`` function of its name are scheduled and written with no edit to the callback."""

import warnings

import pytest
import torch
from support import read_logdir
from torch import nn

from tb_cnnviz import kinds, snapshots, summary
from tb_cnnviz.callbacks import CNNVizCallback


def net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


def extra_row(name: str, thread: str, needs: str | None = None) -> kinds.Snapshot:
    """A snapshot the table does not have: its layers are the kernel layers', every 2 steps."""
    return kinds.Snapshot(
        name, ("kernels",), 2, thread, needs, "kernel_layers", "filters", "the first conv layer"
    )


def norm_row(monkeypatch, row: str, tag: str, thread: str) -> list:
    """Add snapshot row ``row`` on ``thread`` whose ``snapshots`` function logs each layer's weight norm
    under ``tag``; returns the list of the ``Inputs`` it is called with."""
    calls = []

    def compute(inputs: snapshots.Inputs) -> list:
        calls.append(inputs)
        return [
            summary.scalar_summary(tag, name, float(m.weight.detach().norm())) for name, m in inputs.layers
        ]

    monkeypatch.setitem(kinds.SNAPSHOTS, row, extra_row(row, thread))
    monkeypatch.setattr(snapshots, row, compute, raising=False)
    return calls


@pytest.fixture
def weight_norms(monkeypatch):
    """A new snapshot row plus its ``snapshots`` function, which records what it was given."""
    return norm_row(monkeypatch, "weight_norms", "weight_norm", kinds.TRAINING)


def test_a_new_training_thread_row_is_scheduled_and_written(tmp_path, weight_norms):
    model = net()
    with CNNVizCallback(model, log_dir=tmp_path, strict=True, dead_filter_layers=[]) as viz:
        assert viz.enabled["weight_norms"] and viz.every_n_steps["weight_norms"] == 2
        for step in range(1, 6):
            viz.on_step_end(step)
    scalars = read_logdir(str(tmp_path), plugin="scalars")["."]
    # a baseline, then every 2 steps, and the final snapshot of close() at the last step
    assert scalars["cnnviz_scalars/weight_norm/0"]["steps"] == [1, 2, 4, 5]
    inputs = weight_norms[0]
    assert inputs.model is model and inputs.layers == [("0", model[0])] and inputs.state is None
    assert inputs.images is None and dict(inputs.settings) == {}


def test_the_new_rows_interval_and_failure_policy_are_the_callbacks(tmp_path, weight_norms, monkeypatch):
    viz = CNNVizCallback(net(), log_dir=tmp_path, every_n_steps={"weight_norms": 3}, dead_filter_layers=[])
    viz.on_step_end(1)
    viz.on_step_end(3)
    assert len(weight_norms) == 2

    def broken(inputs):
        raise RuntimeError("norm boom")

    monkeypatch.setattr(snapshots, "weight_norms", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viz.on_step_end(6)
    assert any("'weight_norms' failed at step 6" in str(w.message) for w in caught)
    assert viz.enabled["weight_norms"] is False and viz.enabled["kernels"] is True
    assert viz.state_dict()["enabled"]["weight_norms"] is False
    viz.close()


def test_a_new_background_row_runs_on_a_copy_every_n_steps_and_at_epoch_end(tmp_path, monkeypatch):
    calls = norm_row(monkeypatch, "copy_norms", "copy_norm", kinds.BACKGROUND)
    model = net()
    with CNNVizCallback(
        model, log_dir=tmp_path, strict=True, dead_filter_layers=[], kernel_layers=["0"]
    ) as viz:
        for step in range(1, 4):
            viz.on_step_end(step)
        viz.on_epoch_end(3)
        viz.on_epoch_end(3)  # once per step
    scalars = read_logdir(str(tmp_path), plugin="scalars")["."]
    assert scalars["cnnviz_scalars/copy_norm/0"]["steps"] == [2, 3]  # no baseline in the background
    assert all(inputs.model is not model and not inputs.layers[0][1].weight.requires_grad for inputs in calls)


def test_a_new_row_that_needs_the_probe_is_off_without_it_and_gets_it_with_it(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setitem(kinds.SNAPSHOTS, "probe_means", extra_row("probe_means", kinds.TRAINING, "probe"))
    monkeypatch.setattr(snapshots, "probe_means", lambda inputs: seen.append(inputs) or [], raising=False)
    with CNNVizCallback(net(), log_dir=tmp_path / "off", dead_filter_layers=[]) as viz:
        assert viz.enabled["probe_means"] is False
    with pytest.raises(ValueError, match=r"probe: kernel_layers need probe images"):
        CNNVizCallback(net(), log_dir=tmp_path / "asked", kernel_layers=["0"])
    images, labels = torch.rand(2, 3, 8, 8), torch.tensor([0, 2])
    with CNNVizCallback(
        net(), log_dir=tmp_path / "on", probe=(images, labels), class_names=list("abc")
    ) as viz:
        viz.on_step_end(1)
    (inputs,) = seen
    assert torch.equal(inputs.images, images) and torch.equal(inputs.labels, labels)
    assert inputs.class_names == ["a", "b", "c"] and callable(inputs.logits)
