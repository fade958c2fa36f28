"""``api/overview/run`` over logdirs written by the callback and by ``tb_cnnviz.summary``: each part is what
the other views' routes answer, probe accuracy has known values, the findings fire on runs made to trigger
them (a run whose BatchNorm shifts kill 6 of 8 filters, then an infinite weight; written series for the
other rules) and not on a healthy one; a part that was not logged is null with the hint to log it."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from logdirs import P, assert_error, get_json
from support import log_broken_run, log_views_run, plugin_client, write_exact_run, write_run

from tb_cnnviz import metadata, summary

HEALTHY, BROKEN, WRITTEN = "healthy", "broken", "written"
KILLED = 6  # of the 8 filters of features.conv2 (width 8): tests/support.py log_broken_run
KILL_AFTER, INF_AFTER = 5, 9  # training steps after which the filters are killed / a weight is made infinite


def _written_run(logdir: str) -> None:
    """Series written to trigger the rules the callback runs above do not: a first layer whose smoothness
    stays at 0.1 over 5 logged steps, separability that falls with depth, CAMs no better than random on 3
    of 4 images, 3 dropped embedding snapshots; no dead filters (its part is absent)."""
    rng = np.random.default_rng(0)
    by_step: dict[int, list] = {}
    for step in (0, 100, 200, 300, 400):
        by_step[step] = [
            summary.tensor_summary(
                metadata.SMOOTHNESS, "conv1", (0.1 + 0.01 * rng.standard_normal(8)).astype(np.float32)
            )
        ]
    columns = ["accuracy", "chance", "ridge", "train_accuracy", "test_images", "outcome"]
    for depth, (layer, accuracy) in enumerate((("stage1", 0.7), ("stage2", 0.6), ("head", 0.5))):
        by_step[400].append(
            summary.tensor_summary(
                "separability",
                layer,
                np.array([accuracy, 0.1, 1.0, 0.9, 50, 0], np.float32),
                columns=columns,
                outcomes=["measured"],
                measured_at="output",
                depth=depth,
            )
        )
    # per image: deletion AUC of the CAM, of the random map, insertion AUC of the CAM, of the random map
    areas = np.array(
        [[0.5, 0.5, 0.4, 0.4], [0.6, 0.5, 0.4, 0.4], [0.2, 0.5, 0.6, 0.4], [0.5, 0.505, 0.4, 0.4]]
    )
    by_step[400].append(summary.tensor_summary("faithfulness", "features", areas.astype(np.float32)))
    by_step[300].append(
        summary.tensor_summary(
            metadata.DROPPED, None, np.array([0, 3], np.float32), snapshots=["patterns", "embedding"]
        )
    )
    write_run(logdir, WRITTEN, by_step)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("overview_logdir"))
    log_views_run(os.path.join(root, HEALTHY))
    log_broken_run(os.path.join(root, BROKEN), kill_after=KILL_AFTER, inf_after=INF_AFTER)
    _written_run(root)
    write_exact_run(root)
    return plugin_client(root)[0]


def _overview(client, run: str) -> dict:
    return get_json(client, f"{P}/api/overview/run?run={run}")


def _rules(answer: dict) -> dict:
    return {finding["rule"]: finding for finding in answer["findings"]}


def test_each_part_is_what_the_other_views_routes_answer(client):
    start = time.perf_counter()
    answer = _overview(client, HEALTHY)
    print(f"\napi/overview/run on the callback run: {1000 * (time.perf_counter() - start):.1f} ms (cold)")
    fractions = get_json(client, f"{P}/api/dead/fractions?run={HEALTHY}")
    assert answer["dead"] == fractions and len(fractions["layers"]) == 5
    layers = get_json(client, f"{P}/api/separability/layers?run={HEALTHY}")
    last = layers["steps"][-1]
    assert answer["separability"]["step"] == last == 6
    assert [entry["layer"] for entry in answer["separability"]["layers"]] == [
        entry["layer"] for entry in layers["layers"]
    ]
    deepest = layers["layers"][-1]
    assert answer["separability"]["deepest"] == {
        "layer": deepest["layer"],
        "steps": deepest["steps"],
        "accuracy": deepest["accuracy"],
    }
    faithfulness = get_json(client, f"{P}/api/gradcam/faithfulness?run={HEALTHY}&layer=features&step=6")
    over = answer["faithfulness"]
    assert over["layer"] == "features"
    assert {key: over[key] for key in faithfulness["over_training"]} == faithfulness["over_training"]
    smoothness = get_json(client, f"{P}/api/filters/smoothness?run={HEALTHY}&layer=features.conv1")
    part = answer["smoothness"]
    assert part["layer"] == "features.conv1" and part["steps"] == smoothness["steps"]
    np.testing.assert_allclose(part["mean"], smoothness["mean"], atol=1e-5)
    np.testing.assert_allclose(part["spread"], np.std(smoothness["values"], axis=1), atol=1e-5)
    assert answer["hints"] == {} and answer["last_step"] == 6


def test_probe_accuracy_is_the_share_of_images_predicted_as_their_label(client):
    answer = _overview(client, HEALTHY)["probe_accuracy"]
    assert answer["layer"] == "features" and answer["images"] == [4] * len(answer["steps"])
    for step, accuracy in zip(answer["steps"], answer["accuracy"]):
        images = get_json(client, f"{P}/api/gradcam/step?run={HEALTHY}&layer=features&step={step}")["images"]
        assert accuracy == pytest.approx(np.mean([not image["misclassified"] for image in images]))
    # the exact run's gradcam_info (tests/support.py INFO): 1 of 3, 1 of 2 labelled (one has none), 3 of 3
    exact = _overview(client, "exact")["probe_accuracy"]
    assert exact["steps"] == [0, 10, 20] and exact["images"] == [3, 2, 3]
    assert exact["accuracy"] == [pytest.approx(1 / 3, abs=1e-5), 0.5, 1.0]


def test_a_healthy_run_has_no_dead_non_finite_or_separability_findings(client):
    rules = _rules(_overview(client, HEALTHY))
    assert not {
        "dead_filters_rising",
        "nonfinite_weights",
        "nonfinite_activations",
        "separability_flat",
    } & set(rules)
    # 6 steps of training: the CAMs are not yet better than random (gaps ~1e-5 untrained; docs/findings.md)
    assert rules["gradcam_not_faithful"]["view"] == "gradcam"


def test_killed_filters_and_an_infinite_weight_are_found_with_their_evidence(client):
    answer = _overview(client, BROKEN)
    rules = _rules(answer)
    dead = rules["dead_filters_rising"]
    conv2 = next(entry for entry in answer["dead"]["layers"] if entry["layer"] == "features.conv2")
    assert conv2["steps"] == [2, 4, 6, 8, 10] and conv2["filters"] == 8
    # killed after step 5: the window ending at 6 still counts step 5's forward, the one ending at 8 does not
    assert conv2["dead_fraction"][3] >= KILLED / 8 and conv2["dead_fraction"][0] < 0.25
    was = round(100 * conv2["dead_fraction"][0])
    assert dead == {
        "rule": "dead_filters_rising",
        "severity": "warning",
        "text": f"features.conv2: {round(100 * conv2['dead_fraction'][3])}% of filters dead "
        f"({round(conv2['dead_fraction'][3] * 8)} of 8) since step 8 (was {was}% at step 2)",
        "view": "dead",
        "layer": "features.conv2",
        "step": 8,
    }
    # the spread of conv2's rates over its filters, step by step, as api/dead/rates' rates give it
    rates = get_json(client, f"{P}/api/dead/rates?run={BROKEN}&layer=features.conv2")
    spread = next(e for e in answer["rate_spread"]["layers"] if e["layer"] == "features.conv2")
    assert spread["steps"] == rates["steps"]
    expected = [np.std([r for r in row if r is not None]) for row in rates["rates"]]
    np.testing.assert_allclose(spread["spread"], expected, atol=1e-5)
    assert spread["spread"][3] > spread["spread"][0]  # 6 of 8 filters at 0, the others not
    weights = rules["nonfinite_weights"]
    assert (weights["severity"], weights["view"], weights["step"]) == ("error", "filters", 10)
    # one update after the infinite weight every weight is NaN: conv1 is the first kernel layer with some
    assert weights["text"] == (
        "features.conv1: non-finite weights at step 10 (216 of 216 weights); 2 of 2 logged kernel layers have some"
    )
    # ...but the forward at step 10 had only conv4's filter 0 infinite: the activations name where it began
    activations = rules["nonfinite_activations"]
    assert (activations["view"], activations["layer"], activations["step"]) == ("dead", "features.conv4", 10)
    assert activations["text"].startswith(
        "features.conv4: non-finite activations at step 10 (1 of 16 filters;"
    )
    assert answer["findings"][0]["severity"] == "error"  # most serious first
    assert set(answer["hints"]) == {"separability", "faithfulness", "probe_accuracy"}
    assert "embedding_probe=(images, labels)" in answer["hints"]["separability"]
    assert "faithfulness=True" in answer["hints"]["faithfulness"]


def test_written_series_trigger_the_other_rules(client):
    answer = _overview(client, WRITTEN)
    rules = _rules(answer)
    assert (
        rules["smoothness_flat"]["text"].startswith("conv1: first-layer smoothness flat at 0.1")
        and "for 400 steps (from step 0;" in rules["smoothness_flat"]["text"]
    )
    assert rules["separability_flat"]["text"].startswith(
        "separability not rising with depth at step 400: stage1 0.70, head 0.50"
    )
    assert (rules["separability_flat"]["view"], rules["separability_flat"]["layer"]) == (
        "separability",
        "head",
    )
    # deletion gaps 0, -0.1, 0.3, 0.005: three below 0.01
    assert rules["gradcam_not_faithful"]["text"] == (
        "features: Grad-CAM no better than random on 3 of 4 probe images at step 400 (deletion test)"
    )
    assert rules["snapshots_skipped"]["text"].startswith("3 embedding snapshots skipped (last at step 300)")
    assert rules["snapshots_skipped"]["view"] == "embedding"
    assert answer["dead"] is None and "every conv layer" in answer["hints"]["dead"]
    assert answer["rate_spread"] is None and answer["hints"]["rate_spread"] == answer["hints"]["dead"]
    assert answer["separability"]["layers"][0] == {
        "layer": "stage1",
        "measured_at": "output",
        "accuracy": 0.7,
        "chance": 0.1,
        "test_images": 50,
    }


def test_an_unknown_run_is_a_404_naming_the_known_runs(client):
    assert_error(client, f"{P}/api/overview/run?run=nosuch", 404, "known runs")
    assert_error(client, f"{P}/api/overview/run", 400, "run: missing")
