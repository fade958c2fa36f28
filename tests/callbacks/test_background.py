"""The background snapshots (pattern galleries, embedding maps): on a copy of the model, bounded, never
disturbing the training thread, errors reported."""

import numpy as np
import pytest
import torch
from callback_training import decode, train
from support import every_step_patterns, read_logdir

from tb_cnnviz import kinds
from tb_cnnviz.analysis.projection import disparity, knn_accuracy
from tb_cnnviz.callbacks import CNNVizCallback


def test_pattern_galleries_run_in_the_background_on_a_copy(tmp_path, model, data):
    images, labels = data
    with CNNVizCallback(
        model,
        log_dir=tmp_path,
        probe=images[:2],
        pattern_layers=["features.conv2"],
        pattern_channels=4,
        pattern_steps=4,
        pattern_size=16,
        every_n_steps={"patterns": 2},
        strict=True,
    ) as viz:
        train(model, viz, images, labels, steps=2)
        viz.flush()
        viz.on_epoch_end(2)  # already logged at this step: not again
        viz.on_epoch_end(3)
        assert (
            sum(len(m._forward_hooks) for m in model.modules()) == 5
        )  # the copy's hooks never touch the model
    run = read_logdir(str(tmp_path))["."]
    gallery = run["cnnviz/patterns/features.conv2"]
    assert gallery["steps"] == [2, 3] and gallery["content"]["channels"] == [0, 1, 2, 3]
    assert [decode(png).shape for png in gallery["values"][0]] == [(16, 16, 3)] * 4
    values = run["cnnviz/pattern_values/features.conv2"]["values"][0]
    assert values.shape == (4,) and np.all(np.isfinite(values))


def test_slow_snapshots_are_dropped_not_queued_without_bound(tmp_path, model, monkeypatch):
    import threading

    started, release = threading.Event(), threading.Event()

    def slow(*args, **kwargs):
        started.set()
        release.wait(10)
        return []

    viz = every_step_patterns(model, tmp_path, monkeypatch, slow)
    places = sum(row.thread == kinds.BACKGROUND for row in kinds.SNAPSHOTS.values())  # one per slow kind
    viz.on_step_end(1)
    assert started.wait(10)  # 1 runs; the next `places` steps wait; the 2 after them are dropped
    for step in range(2, places + 4):
        viz.on_step_end(step)
    assert viz.dropped == 2
    release.set()
    viz.close()
    assert viz._worker.completed == places + 2  # 1, the queued ones and the final snapshot of close()


def test_background_errors_warn_and_disable_or_raise_when_strict(tmp_path, model, monkeypatch):
    import tb_cnnviz.snapshots as snapshots

    def broken(*args, **kwargs):
        raise RuntimeError("pattern boom")

    monkeypatch.setattr(snapshots, "patterns", broken)
    with pytest.warns(RuntimeWarning, match="'patterns' failed at step 1.*pattern boom"):
        viz = CNNVizCallback(
            model,
            log_dir=tmp_path / "lenient",
            pattern_layers=["features.conv2"],
            every_n_steps={"patterns": 1},
        )
        viz.on_step_end(1)
        viz.close()
    assert viz.enabled["patterns"] is False
    strict = CNNVizCallback(
        model,
        log_dir=tmp_path / "strict",
        pattern_layers=["features.conv2"],
        every_n_steps={"patterns": 1},
        strict=True,
    )
    strict.on_step_end(1)
    with pytest.raises(RuntimeError, match="pattern boom"):
        strict.close()


def test_embedding_snapshots_are_stable_and_carry_top_examples(tmp_path, trained_small_vgg, shapes_test):
    model = trained_small_vgg
    images, labels = shapes_test.tensors(range(300))
    with CNNVizCallback(
        model,
        log_dir=tmp_path,
        probe=images[:4],
        embedding_probe=(images, labels),
        class_names=shapes_test.classes,
        top_example_layers=["features.conv5"],
        top_k=3,
        every_n_steps={"embedding": 1},
        strict=True,
        projector=True,
    ) as viz:
        viz.on_step_end(1)
        viz.flush()
        viz.on_step_end(2)  # same weights: the second map must land where the first one is
    run = read_logdir(str(tmp_path))["."]
    series = run["cnnviz/embedding/classifier"]
    assert series["steps"] == [1, 2] and series["content"]["labels"] == labels.tolist()
    first, second = series["values"]
    assert first.shape == (300, 3)
    with torch.no_grad():
        predicted = model(images).argmax(1)
    assert first[:, 2].tolist() == predicted.tolist()
    assert knn_accuracy(first[:, :2], labels.numpy(), k=5) > 0.9  # classes separate in the map
    assert disparity(second[:, :2], first[:, :2]) < 0.05
    sprites = run["cnnviz/sprites"]
    assert (
        sprites["steps"] == [1]
        and sprites["content"]["counts"] == [300]
        and sprites["content"]["thumb"] == [32, 32]
    )
    atlas = decode(sprites["values"][0][0])
    columns = sprites["content"]["columns"]
    assert atlas.shape == (32 * -(-300 // columns), 32 * min(columns, 300), 3)
    assert (
        np.abs(atlas[32:64, 0:32] / 255 - images[columns].permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6
    )
    # top examples equal a brute-force ranking of the filters' maxima over all 300 images
    table = run["cnnviz/top_examples/features.conv5"]["values"][0]
    with torch.no_grad():
        captured = {}
        handle = model.features.bn5.register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
        model(images)
        handle.remove()
    maxima = captured["out"].amax(dim=(2, 3))  # [N, C]
    best = maxima.topk(3, dim=0)
    assert table.shape == (64, 3, 6)
    assert np.array_equal(table[:, :, 0].astype(int), best.indices.T.numpy())
    assert np.allclose(table[:, :, 1], best.values.T.numpy(), atol=1e-5)
    # the same codes exported for TensorBoard's Projector tab
    config = (tmp_path / "projector_config.pbtxt").read_text()
    assert config.count("tensor_name:") == 2 and "sprite" in config  # one entry per snapshot
    (metadata_file,) = tmp_path.glob("00001/cnnviz_embedding/metadata.tsv")
    assert metadata_file.read_text().split()[:3] == [shapes_test.classes[int(v)] for v in labels[:3]]
    vectors = np.loadtxt(next(tmp_path.glob("00001/cnnviz_embedding/tensors.tsv")), delimiter="\t")
    assert vectors.shape == (300, 64)


def test_background_snapshots_never_rewind_the_training_threads_rng(tmp_path, model, monkeypatch):
    import threading

    from tb_cnnviz.analysis.safety import preserved_rng

    started, proceed = threading.Event(), threading.Event()

    def job_using_the_guard(*args, **kwargs):
        with preserved_rng():  # what every analysis function does inside
            started.set()
            proceed.wait(10)
        return []

    viz = every_step_patterns(model, tmp_path, monkeypatch, job_using_the_guard)
    torch.manual_seed(7)
    viz.on_step_end(1)
    started.wait(10)
    drawn_meanwhile = torch.rand(3)  # the training thread draws while the snapshot runs
    proceed.set()
    viz.close()
    after = torch.rand(3)
    torch.manual_seed(7)
    expected = torch.rand(6)
    assert torch.equal(
        torch.cat([drawn_meanwhile, after]), expected
    )  # the stream went on, it was not rewound
