"""The ``scalars=`` option: a few run-level cards by default, one per layer on request, or none; the
per-layer detail stays in the plugin's own series either way."""

import numpy as np
import pytest
import torch
from callback_training import train
from support import read_logdir

from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.models import small_vgg

SUMMARY_TAGS = {
    "cnnviz_scalars/dead_fraction/mean_over_layers",
    "cnnviz_scalars/dead_fraction/max_over_layers",
    "cnnviz_scalars/smoothness/features.conv1",  # the first kernel layer's
    "cnnviz_scalars/nonfinite_weights/all_layers",
    "cnnviz_scalars/nonfinite_filters/all_layers",
}


def logged(tmp_path, data, scalars: str) -> tuple[dict, dict]:
    """3 steps of the same SmallVGG (two kernel layers, dead filters over windows of 2, every batch
    counted) with ``scalars``; returns its ordinary scalars and its plugin series."""
    images, labels = data
    torch.manual_seed(0)
    model = small_vgg(width=8)
    with torch.no_grad():  # two dead filters in conv3, so the fractions differ between layers
        model.features.bn3.bias[[0, 5]] = -1e4
    log_dir = tmp_path / scalars
    with CNNVizCallback(
        model,
        log_dir=log_dir,
        kernel_layers=["features.conv1", "features.conv2"],
        every_n_steps={"kernels": 1, "dead_filters": 2},
        overhead_budget=0,
        strict=True,
        scalars=scalars,
    ) as viz:
        train(model, viz, images, labels, steps=3)
    return (
        read_logdir(str(log_dir), plugin="scalars").get(".", {}),
        read_logdir(str(log_dir))["."],
    )


def test_summary_writes_a_few_cards_reduced_from_the_per_layer_values(tmp_path, data):
    per_layer, series = logged(tmp_path, data, "per_layer")
    summary, summary_series = logged(tmp_path, data, "summary")
    assert set(summary) == SUMMARY_TAGS
    dead = {tag: v for tag, v in per_layer.items() if tag.startswith("cnnviz_scalars/dead_fraction/")}
    assert len(dead) >= 4  # one per conv layer where a rate of 0 means dead
    fractions = np.array([v["values"] for v in dead.values()])  # [layers, windows]
    assert fractions.max() > fractions.min()  # the planted filters make mean and max differ
    mean, largest = (summary[f"cnnviz_scalars/dead_fraction/{r}_over_layers"] for r in ("mean", "max"))
    assert mean["steps"] == largest["steps"] == [2, 3]  # each window end, and close()'s
    assert mean["values"] == pytest.approx(fractions.mean(axis=0).tolist(), abs=1e-6)
    assert largest["values"] == pytest.approx(fractions.max(axis=0).tolist(), abs=1e-6)
    first = summary["cnnviz_scalars/smoothness/features.conv1"]
    assert first == per_layer["cnnviz_scalars/smoothness/features.conv1"]
    nonfinite = summary["cnnviz_scalars/nonfinite_filters/all_layers"]["values"]
    assert nonfinite == [0.0, 0.0]
    # the per-layer detail is in the plugin's series whatever the option
    assert set(summary_series) == set(series)
    assert "cnnviz/smoothness/features.conv2" in summary_series


def test_per_layer_writes_one_card_per_layer_and_quantity(tmp_path, data):
    per_layer, series = logged(tmp_path, data, "per_layer")
    dead_layers = {tag.split("/", 2)[2] for tag in series if tag.startswith("cnnviz/dead_filters/")}
    assert {tag for tag in per_layer if tag.startswith("cnnviz_scalars/nonfinite_filters/")} == {
        f"cnnviz_scalars/nonfinite_filters/{layer}" for layer in dead_layers
    }
    assert {tag for tag in per_layer if tag.startswith("cnnviz_scalars/smoothness/")} == {
        "cnnviz_scalars/smoothness/features.conv1",
        "cnnviz_scalars/smoothness/features.conv2",
    }


def test_off_writes_no_ordinary_scalar(tmp_path, data):
    off, series = logged(tmp_path, data, "off")
    assert off == {} and "cnnviz/dead_filters/features.conv3" in series


@pytest.mark.parametrize("value", ["per-layer", "all", None, 1])
def test_a_bad_value_names_the_argument_the_value_and_the_choices(value):
    torch.manual_seed(0)
    with pytest.raises(ValueError) as error:
        CNNVizCallback(small_vgg(width=4), log_dir="unused", scalars=value)
    message = str(error.value)
    assert message.startswith("scalars: expected 'summary'") and repr(value) in message
    assert "'per_layer'" in message and "'off'" in message
