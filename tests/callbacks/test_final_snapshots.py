"""A run ends with the pictures of its final weights: ``close()`` and ``on_epoch_end`` log every enabled kind
at their step (background ones queued, never dropped); a background snapshot dropped during training is
counted on disk, listed by ``api/runs/list`` and warned once per kind."""

import json
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from callback_training import train
from support import plugin_client, read_logdir

from tb_cnnviz import kinds, metadata, snapshots, summary
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.datasets import ShapesDataset

P = "/data/plugin/cnnviz"
BACKGROUND = [name for name, row in kinds.SNAPSHOTS.items() if row.thread == kinds.BACKGROUND]
PLACES = len(BACKGROUND)  # jobs that may wait in the queue while one runs (one per background kind)


# every snapshot kind of the table but faithfulness (off by default, the costliest per call)
ON = tuple(name for name in kinds.SNAPSHOTS if name != "faithfulness")


def every_kind(model, log_dir, every, **extra) -> CNNVizCallback:
    """A callback with (at least) the snapshot kinds ``ON`` on, each every ``every`` steps (small and fast)."""
    held, held_labels = ShapesDataset(40, seed=9).tensors()
    options = dict(
        log_dir=log_dir,
        probe=(held[:2], held_labels[:2]),
        class_names=ShapesDataset.classes,
        attributions=["saliency"],
        pattern_layers=["features.conv2"],
        pattern_channels=2,
        pattern_steps=2,
        pattern_size=16,
        embedding_probe=(held, held_labels),
        embedding_method="pca",
        top_example_layers=["features.conv2"],
        top_k=2,
        every_n_steps=every,
        strict=True,
    )
    options.update(extra)
    viz = CNNVizCallback(model, **options)
    assert all(viz.enabled[name] for name in ON), viz.enabled
    return viz


def on(viz: CNNVizCallback) -> dict[str, kinds.Snapshot]:
    """The rows of the table that ``viz`` logs (a row added later and off by default is left out)."""
    return {name: row for name, row in kinds.SNAPSHOTS.items() if viz.enabled[name]}


def steps_of_each_snapshot(run: dict, viz: CNNVizCallback) -> dict[str, list[int]]:
    """Per snapshot that ``viz`` logs, the steps of its per-layer series (every layer's must agree)."""
    found = {}
    for name, row in on(viz).items():
        per_layer = [kind for kind in row.writes if kinds.SUMMARY_KINDS[kind].per_layer]
        series = [run[tag]["steps"] for tag in run for kind in per_layer if tag.startswith(f"cnnviz/{kind}/")]
        assert series and all(steps == series[0] for steps in series), (name, series)
        found[name] = series[0]
    return found


def test_close_logs_every_kind_at_the_last_step_background_ones_included(tmp_path, model, data):
    images, labels = data
    with every_kind(model, tmp_path, every=5) as viz:
        train(model, viz, images, labels, steps=7)
    found = steps_of_each_snapshot(read_logdir(str(tmp_path))["."], viz)
    expected = {
        name: ([5, 7] if row.thread == kinds.BACKGROUND or name == "dead_filters" else [1, 5, 7])
        for name, row in on(viz).items()
    }
    assert found == expected
    assert viz.dropped == 0


def test_no_second_snapshot_when_the_last_step_already_has_one(tmp_path, model, data):
    images, labels = data
    with every_kind(model, tmp_path, every=5) as viz:
        train(model, viz, images, labels, steps=5)
        viz.on_epoch_end(5)  # logged at 5 already: nothing again, nor at close()
    found = steps_of_each_snapshot(read_logdir(str(tmp_path))["."], viz)
    assert found == {
        name: [5] if row.thread == kinds.BACKGROUND or name == "dead_filters" else [1, 5]
        for name, row in on(viz).items()
    }


def test_on_epoch_end_logs_every_kind_not_yet_logged_at_its_step(tmp_path, model, data):
    images, labels = data
    with every_kind(model, tmp_path, every=5) as viz:
        train(model, viz, images, labels, steps=3)
        viz.on_epoch_end(3)
        train(model, viz, images, labels, steps=2, start=4)  # 4, 5; close() adds nothing at 5
    found = steps_of_each_snapshot(read_logdir(str(tmp_path))["."], viz)
    assert found == {
        name: [5] if name == "dead_filters" else [3, 5] if row.thread == kinds.BACKGROUND else [1, 3, 5]
        for name, row in on(viz).items()
    }


def slow_patterns(monkeypatch, seconds: float) -> threading.Event:
    """``snapshots.patterns`` takes ``seconds`` and writes one pattern_values series (its steps are what ran);
    returns an event set when the first one starts."""
    started = threading.Event()

    def slow(inputs):
        started.set()
        time.sleep(seconds)
        return [
            summary.tensor_summary(metadata.PATTERN_VALUES, name, np.zeros(1, np.float32))
            for name, _ in inputs.layers
        ]

    monkeypatch.setattr(snapshots, "patterns", slow)
    return started


def test_a_dropped_snapshot_is_counted_on_disk_listed_and_warned_once(tmp_path, monkeypatch):
    """Patterns every step, each taking 0.3 s while training steps take microseconds: step 1 runs, the next
    PLACES steps wait in the queue, the 4 after them are dropped; close() queues a final one at the last."""
    started = slow_patterns(monkeypatch, 0.3)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    viz = CNNVizCallback(
        model,
        log_dir=tmp_path / "run",
        pattern_layers=["0"],
        dead_filter_layers=[],
        every_n_steps={"patterns": 1},
        strict=True,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        last = PLACES + 5
        for step in range(1, last + 1):
            viz.on_step_end(step)
            if step == 1:
                assert started.wait(10)  # the worker took job 1 out of the queue
        viz.close()
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(skipped) == 1 and skipped[0].startswith(
        f"tb-cnnviz: patterns snapshot at step {PLACES + 2} skipped: the previous one was still running"
    )
    assert viz.dropped == 4
    run = read_logdir(str(tmp_path))["run"]
    ran = run["cnnviz/pattern_values/0"]["steps"]
    assert ran == [*range(1, PLACES + 2), last]  # the final one was queued, not dropped
    counts = run["cnnviz/dropped"]
    assert (
        counts["steps"] == list(range(PLACES + 2, last + 1)) and counts["content"]["snapshots"] == BACKGROUND
    )
    patterns = BACKGROUND.index("patterns")
    assert [value.tolist() for value in counts["values"]] == [
        [n if i == patterns else 0 for i in range(PLACES)] for n in (1, 2, 3, 4)
    ]

    client, _ = plugin_client(str(tmp_path))
    answer = client.get(f"{P}/api/runs/list")
    assert answer.status_code == 200
    (listed,) = json.loads(answer.get_data())["runs"]
    assert listed["dropped"] == {"patterns": {"count": 4, "last_step": last, "view": "patterns"}}


def test_a_run_without_drops_lists_none(tmp_path, model, data):
    images, labels = data
    with CNNVizCallback(model, log_dir=tmp_path / "run", every_n_steps=2, strict=True) as viz:
        train(model, viz, images, labels, steps=2)
    client, _ = plugin_client(str(tmp_path))
    (listed,) = json.loads(client.get(f"{P}/api/runs/list").get_data())["runs"]
    assert listed["dropped"] == {}


def test_the_final_background_job_waits_for_a_place_in_a_full_queue(tmp_path, monkeypatch):
    """With the queue full when close() comes, the final job waits (the training thread blocks until a
    place frees) instead of being dropped; every queued job runs."""
    started, release = threading.Event(), threading.Event()
    ran = []

    def blocked(inputs):
        started.set()
        release.wait(10)
        ran.append(len(ran))
        return []

    monkeypatch.setattr(snapshots, "patterns", blocked)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    viz = CNNVizCallback(
        model, log_dir=tmp_path, pattern_layers=["0"], dead_filter_layers=[], every_n_steps={"patterns": 1}
    )
    with pytest.warns(RuntimeWarning, match=f"patterns snapshot at step {PLACES + 2} skipped"):
        for step in range(1, PLACES + 3):
            viz.on_step_end(step)
            if step == 1:
                assert started.wait(10)
    closing = threading.Thread(target=viz.close)
    closing.start()
    closing.join(0.3)
    assert closing.is_alive()  # waiting for a place: step 1 runs, the next PLACES steps fill the queue
    release.set()
    closing.join(10)
    assert not closing.is_alive() and len(ran) == PLACES + 2 and viz.dropped == 1


def test_leaving_the_with_block_on_an_exception_adds_no_final_snapshot(tmp_path, model, data):
    images, labels = data
    with pytest.raises(KeyboardInterrupt):
        with CNNVizCallback(model, log_dir=tmp_path, every_n_steps=5, strict=True) as viz:
            train(model, viz, images, labels, steps=7)
            raise KeyboardInterrupt
    run = read_logdir(str(tmp_path))["."]
    assert run["cnnviz/kernels/features.conv1"]["steps"] == [1, 5]  # flushed, nothing computed at 7
    assert run["cnnviz/dead_filters/features.conv1"]["steps"] == [5, 7]  # the counted window is kept


def test_an_epoch_end_before_the_step_end_of_the_same_step_logs_once(tmp_path, model, data):
    images, labels = data
    with CNNVizCallback(model, log_dir=tmp_path, every_n_steps=5, strict=True) as viz:
        train(model, viz, images, labels, steps=4)
        viz.on_epoch_end(5)
        train(model, viz, images, labels, steps=1, start=5)  # 5 is due, but logged already
    assert read_logdir(str(tmp_path))["."]["cnnviz/kernels/features.conv1"]["steps"] == [1, 5]
