"""The Overview's findings (``tb_cnnviz/plugin/findings.py``): each rule on inputs made to trigger it,
with its evidence checked word for word, and on inputs just on the other side of its threshold that
must not trigger it (thresholds and their reasons: docs/findings.md)."""

from __future__ import annotations

import math

import pytest

from tb_cnnviz.plugin import findings as rules
from tb_cnnviz.plugin.findings import Finding

NAN = math.nan


# ----------------------------------------------------------------------------- dead filters
def test_a_dead_fraction_above_the_threshold_and_rising_is_found_with_its_evidence():
    steps = [1000, 2000, 3000, 4000, 5000, 6000]
    fractions = [0.02, 0.05, 0.30, 0.20, 0.33, 0.38]  # above 0.25 since 5000 (dipped at 4000)
    (found,) = rules.dead_filters("layer3.1.conv2", "relu", steps, fractions, filters=256)
    assert found == Finding(
        "dead_filters_rising",
        rules.WARNING,
        "layer3.1.conv2: 38% of filters dead (97 of 256) since step 5,000 (was 2% at step 1,000)",
        "dead",
        "layer3.1.conv2",
        5000,
    )


def test_smooth_units_are_called_inactive_and_undefined_semantics_never_trigger():
    steps, fractions = [0, 10], [0.0, 0.5]
    (found,) = rules.dead_filters("conv", "smooth", steps, fractions)
    assert "50% of filters inactive since step 10" in found.text
    for semantics in ("residual", "none", "gate", "head", "unmeasured"):
        assert rules.dead_filters("conv", semantics, steps, fractions) == []


@pytest.mark.parametrize(
    "fractions",
    [
        [0.30, 0.30, 0.30],  # high but not rising: dead from the start (e.g. a pruned layer)
        [0.00, 0.10, 0.249],  # rising but below the threshold
        [0.16, 0.20, 0.25],  # at the threshold but risen by 0.09 only
        [0.00, 0.40, 0.10],  # was high, recovered
        [None, NAN, 0.9],  # one measured value: no trend
    ],
)
def test_dead_fractions_that_must_not_trigger(fractions):
    assert rules.dead_filters("conv", "relu", [1, 2, 3], fractions) == []


def test_a_dead_fraction_just_at_both_thresholds_triggers():
    (found,) = rules.dead_filters("conv", "relu", [1, 2], [0.15, 0.25])
    assert found.step == 2 and found.text == "conv: 25% of filters dead since step 2 (was 15% at step 1)"


# ----------------------------------------------------------------------------- smoothness
def test_flat_low_first_layer_smoothness_is_found():
    steps = [0, 2000, 4000, 6000, 8000, 10000, 12000]
    means = [0.05, 0.30, 0.12, 0.125, 0.11, 0.12, 0.12]  # flat at 0.12 from 4,000 to 12,000
    (found,) = rules.smoothness("conv1", steps, means)
    assert found.rule == "smoothness_flat" and found.view == "filters" and found.step == 12000
    assert found.text.startswith(
        "conv1: first-layer smoothness flat at 0.12 for 8,000 steps (from step 4,000;"
    )


@pytest.mark.parametrize(
    "means",
    [
        [0.05, 0.08, 0.11, 0.14, 0.17, 0.20, 0.23],  # rising: learning smooth filters
        [0.40, 0.41, 0.40, 0.41, 0.40, 0.41, 0.40],  # flat but smooth
        [0.10, 0.30, 0.50, 0.30, 0.12, 0.12, 0.12],  # flat and low for 3 logged steps only
        [0.30, 0.30, 0.30, 0.30, 0.12, 0.12, 0.12],  # ... and for a third of the run
        [0.10, 0.10, 0.10],  # too few logged steps to call it flat
    ],
)
def test_smoothness_that_must_not_trigger(means):
    steps = [1000 * i for i in range(len(means))]
    assert rules.smoothness("conv1", steps, means) == []


def test_flat_smoothness_counts_only_finite_values():
    steps = [0, 1, 2, 3, 4]
    assert rules.smoothness("c", steps, [0.1, NAN, 0.1, None, 0.1]) == []  # 3 finite values
    assert len(rules.smoothness("c", steps, [0.1, 0.1, NAN, 0.1, 0.1])) == 1


# ----------------------------------------------------------------------------- faithfulness
def test_gradcam_no_better_than_random_on_k_of_n_images():
    flags = [True, False, True, True, False, True, True, False]
    (found,) = rules.faithfulness("layer4", 7200, flags)
    assert found == Finding(
        "gradcam_not_faithful",
        rules.WARNING,
        "layer4: Grad-CAM no better than random on 5 of 8 probe images at step 7,200 (deletion test)",
        "gradcam",
        "layer4",
        7200,
    )


@pytest.mark.parametrize(
    "flags",
    [
        [False] * 8,
        [True] + [False] * 4,  # 1 of 5 is under a quarter
        [None, None],  # not measured
        [],
    ],
)
def test_faithfulness_that_must_not_trigger(flags):
    assert rules.faithfulness("layer4", 10, flags) == []


def test_unmeasured_images_are_left_out_of_the_count():
    (found,) = rules.faithfulness("l", 10, [True, None, None, None, False, False])
    assert "on 1 of 3 probe images" in found.text


# ----------------------------------------------------------------------------- non-finite values
def test_the_first_step_with_non_finite_weights_is_found():
    layers = [
        ("conv1", [7000, 7200, 7400], [0, 0, 81], [81] * 3),
        ("conv4", [7000, 7200, 7400], [0, 12, 1728], [1728] * 3),
        ("conv5", [7000, 7200, 7400], [0, 0, 0], [9] * 3),
    ]
    (found,) = rules.nonfinite_weights(layers)
    assert found == Finding(
        "nonfinite_weights",
        rules.ERROR,
        "conv4: non-finite weights at step 7,200 (12 of 1,728 weights); 2 of 3 logged kernel layers have some",
        "filters",
        "conv4",
        7200,
    )
    (alone,) = rules.nonfinite_weights(layers[1:])
    assert alone.text == "conv4: non-finite weights at step 7,200 (12 of 1,728 weights)"
    assert rules.nonfinite_weights([("conv4", [1, 2], [0, 0], [9, 9])]) == []
    assert rules.nonfinite_weights([]) == []


def test_the_first_step_with_non_finite_activations_is_found_once_for_all_layers():
    layers = [("conv1", [200, 400], [0, 0], [8, 8]), ("conv2", [200, 400], [0, 3], [16, 16])]
    layers += [("conv3", [200, 400], [0, 16], [16, 16])]
    (found,) = rules.nonfinite_activations(layers)
    assert found.rule == "nonfinite_activations" and found.view == "dead" and found.step == 400
    assert found.layer == "conv2"  # the first layer in order at the first step
    assert found.text.startswith("conv2: non-finite activations at step 400 (3 of 16 filters;")
    assert found.text.endswith("; 2 of 3 layers have some")
    assert rules.nonfinite_activations([("conv2", [200, 400], [0, 0], [16, 16])]) == []


# ----------------------------------------------------------------------------- separability
def test_separability_not_rising_with_depth_is_found():
    layers = ["relu2", "relu4", "features", "classifier"]
    (found,) = rules.separability(6000, layers, [0.60, 0.72, 0.65, 0.61], [100] * 4)
    assert found == Finding(
        "separability_flat",
        rules.WARNING,
        "separability not rising with depth at step 6,000: relu2 0.60, classifier 0.61; best relu4 0.72 "
        "(held-out linear-probe accuracy)",
        "separability",
        "classifier",
        6000,
    )


@pytest.mark.parametrize(
    "accuracies, images",
    [
        ([0.40, 0.55, 0.70, 0.90], [100] * 4),  # rising
        ([0.50, 0.45, 0.40, 0.53], [100] * 4),  # dips, but the deepest beats the shallowest by 0.03
        ([0.50, None, NAN, 0.80], [100] * 4),  # unmeasured layers are left out
        ([None, None, None, 0.3], [0] * 4),  # one measured layer: nothing to compare
    ],
)
def test_separability_that_must_not_trigger(accuracies, images):
    assert rules.separability(10, ["a", "b", "c", "d"], accuracies, images) == []


def test_the_separability_margin_is_at_least_one_held_out_image():
    # 0.05 above is 2 images of 40: enough; 0.025 above is one image of 40: within the noise
    assert rules.separability(1, ["a", "b"], [0.5, 0.55], [40, 40]) == []
    assert len(rules.separability(1, ["a", "b"], [0.5, 0.525], [40, 40])) == 1
    assert len(rules.separability(1, ["a", "b"], [0.5, 0.52], None)) == 1  # the fixed margin, 0.02


# ----------------------------------------------------------------------------- skipped snapshots
def test_skipped_snapshots_are_noted_with_their_view():
    found = rules.dropped(
        {
            "patterns": {"count": 4, "last_step": 1800, "view": "patterns"},
            "embedding": {"count": 1, "last_step": 1000, "view": "embedding"},
            "separability": {"count": 0, "last_step": 5, "view": "separability"},
        }
    )
    assert [(f.rule, f.severity, f.view, f.step) for f in found] == [
        ("snapshots_skipped", rules.INFO, "embedding", 1000),
        ("snapshots_skipped", rules.INFO, "patterns", 1800),
    ]
    assert found[1].text.startswith(
        "4 patterns snapshots skipped (last at step 1,800): the previous one was still running"
    )
    assert found[0].text.startswith("1 embedding snapshot skipped")
    assert rules.dropped({}) == []


# ----------------------------------------------------------------------------- order, text
def test_findings_are_ordered_by_severity_then_step():
    info = Finding("r", rules.INFO, "i", "v", None, 1)
    late = Finding("r", rules.WARNING, "w", "v", None, 9)
    early = Finding("r", rules.WARNING, "w", "v", None, 2)
    error = Finding("r", rules.ERROR, "e", "v", None, 50)
    assert rules.ordered([info, late, error, early]) == [error, early, late, info]


def test_percent_and_steps_read_as_people_write_them():
    assert (rules.percent(0.38), rules.percent(0.004), rules.percent(0.0)) == ("38%", "<1%", "0%")
    assert rules.steps_text(1234567) == "1,234,567"
