"""The ``separability`` snapshot through CNNVizCallback: on by default with a labelled embedding probe,
one series per tracked layer (the stage outputs and the classifier's input) plus the deepest layer's
scalar; off without labels; too few labels logged as that outcome, not as a number."""

from __future__ import annotations

import math

import pytest
import torch
from callback_training import run_callback
from support import read_logdir

from tb_cnnviz.analysis.separability import COLUMNS, MIN_PER_CLASS, NOT_ENOUGH_LABELS, OUTCOMES
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.datasets import ShapesDataset

EVERY = {"separability": 2, "embedding": 1000, "kernels": 1000, "dead_filters": 1000}


def _run(tmp_path, model, data, embedding_probe, steps=4, every=EVERY, **options):
    return run_callback(
        tmp_path, model, data, steps, embedding_probe=embedding_probe, every_n_steps=every, **options
    )


def test_every_tracked_layer_gets_a_series_in_0_1_and_the_deepest_a_scalar(tmp_path, model, data):
    held_images, held_labels = ShapesDataset(120, seed=7).tensors()
    viz = _run(tmp_path, model, data, (held_images, held_labels))
    layers = [name for name, _ in viz.separability_layers]
    # stage outputs by execution (as the default activation layers pick them) and the classifier's input
    assert layers[-1] == "classifier" and len(layers) >= 3
    assert {name for name, _ in viz.config.layers["activations"]} <= set(layers[:-1])
    logged = read_logdir(str(tmp_path))["."]
    held_out = sum(max(1, round(0.3 * int(count))) for count in torch.bincount(held_labels) if count)
    depths = {}
    for layer in layers:
        series = logged[f"cnnviz/separability/{layer}"]
        assert series["steps"] == [2, 4]
        content = series["content"]
        assert content["columns"] == list(COLUMNS) and content["outcomes"] == list(OUTCOMES)
        assert content["measured_at"] == ("input" if layer == "classifier" else "output")
        depths[layer] = content["depth"]
        for row in series["values"]:
            values = dict(zip(COLUMNS, row.tolist()))
            assert values["outcome"] == 0
            assert 0.0 <= values["accuracy"] <= 1.0 and 0.0 < values["chance"] < 1.0
            assert values["test_images"] == held_out  # 30% of each class, rounded
    assert sorted(depths, key=depths.get) == layers  # depth = execution order
    scalars = read_logdir(str(tmp_path), plugin="scalars")["."]
    deepest = scalars["cnnviz_scalars/separability/classifier"]
    assert deepest["steps"] == [2, 4]
    last = logged["cnnviz/separability/classifier"]["values"][-1][0]
    assert deepest["values"][-1] == pytest.approx(float(last))


def test_off_without_labels_and_an_error_when_asked_for_without_them(tmp_path, model, data):
    held_images, _ = ShapesDataset(60, seed=7).tensors()
    viz = CNNVizCallback(model, log_dir=str(tmp_path), embedding_probe=held_images)
    assert not viz.enabled["separability"] and viz.separability_layers == []
    viz.close()
    with pytest.raises(ValueError, match="separability_layers: the linear probe needs labelled images"):
        CNNVizCallback(
            model, log_dir=str(tmp_path), embedding_probe=held_images, separability_layers=["features.conv2"]
        )
    viz = CNNVizCallback(model, log_dir=str(tmp_path))
    assert not viz.enabled["separability"]
    viz.close()


def test_too_few_labels_per_class_are_logged_as_that_outcome_not_a_number(tmp_path, model, data):
    held_images, held_labels = ShapesDataset(60, seed=7).tensors()
    labels = held_labels.clone()
    labels[0] = 10  # an eleventh class with one image
    with pytest.warns(RuntimeWarning, match=f"need at least {MIN_PER_CLASS} per class"):
        _run(tmp_path, model, data, (held_images, labels), steps=2, separability_layers=["features.conv2"])
    series = read_logdir(str(tmp_path))["."]["cnnviz/separability/features.conv2"]
    row = dict(zip(COLUMNS, series["values"][-1].tolist()))
    assert row["outcome"] == NOT_ENOUGH_LABELS and math.isnan(row["accuracy"])
    scalars = read_logdir(str(tmp_path), plugin="scalars").get(".", {})
    assert not any(tag.startswith("cnnviz_scalars/separability/") for tag in scalars)


def test_the_snapshot_leaves_the_model_as_it_was(model):
    from tb_cnnviz import snapshots

    held_images, held_labels = ShapesDataset(120, seed=7).tensors()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = snapshots.Inputs(
        model=model, layers=[("features.conv1", model.features.conv1)], images=held_images, labels=held_labels
    )
    assert len(snapshots.separability(inputs)) == 2  # the layer's row and, as it is the deepest, its scalar
    assert model.training and all(v.training for v in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_embedding_takes_its_codes_from_the_separability_pass(tmp_path, model, data, monkeypatch):
    from tb_cnnviz import snapshots
    from tb_cnnviz.analysis import features
    from tb_cnnviz.snapshots import shared_pass

    images, labels = ShapesDataset(120, seed=7).tensors()
    inputs = snapshots.Inputs(
        model=model, layers=[("classifier", model.classifier)], images=images, labels=labels
    )
    snapshots.separability(inputs)
    shared = shared_pass.take(model, images)
    codes, outputs = features.extract_features(model, images, None, to_cpu=True, return_outputs=True)
    assert torch.equal(shared.codes, codes) and torch.equal(shared.outputs, outputs)  # the same pass, exactly
    assert shared_pass.take(model, images.clone()) is None  # only for the very images it ran on
    passes = []
    real = features.extract_features
    monkeypatch.setattr(features, "extract_features", lambda *a, **k: passes.append(1) or real(*a, **k))
    both = {**EVERY, "embedding": 2}
    _run(tmp_path / "both", model, data, (images, labels), steps=2, every=both)
    assert passes == []  # one copy of the weights at step 2; the embedding reused separability's pass
    _run(tmp_path / "alone", model, data, (images, labels), steps=2, every=both, separability_layers=[])
    assert passes == [1]
    logged = read_logdir(str(tmp_path / "both"))["."]
    assert logged["cnnviz/embedding/classifier"]["steps"] == [2]
