"""Dead filters counted on a sample of the training batches, chosen for an overhead budget."""

import json
import statistics

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


class ReluThenLinearConv(torch.nn.Module):
    """conv_a -> ReLU (dead filters defined: reported), conv_b -> global mean -> fc (no nonlinearity: 'none')."""

    def __init__(self):
        super().__init__()
        self.conv_a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv_b = torch.nn.Conv2d(8, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6, 10)

    def forward(self, x):
        return self.fc(self.conv_b(torch.relu(self.conv_a(x))).mean(dim=(2, 3)))


def test_layers_with_no_dead_filters_are_sampled_apart_and_each_layer_logs_and_shows_its_own_sample(
    tmp_path, data, monkeypatch
):
    """The budget's split is pinned here (2 and 10: timings vary); test_sample_for_budget checks the rule."""
    from support import plugin_client

    from tb_cnnviz.callbacks import windows

    monkeypatch.setattr(windows, "sample_for_budget", lambda reported, others, budget, every: (2, 10))
    torch.manual_seed(0)
    model = ReluThenLinearConv()
    with torch.no_grad():
        model.conv_a.bias[[1, 6]] = -1e4
        model.conv_a.bias.requires_grad_(False)
    images, labels = data
    every = {"dead_filters": WINDOW, **{k: 10**6 for k in ("kernels", "activations", "gradcam")}}
    with CNNVizCallback(model, log_dir=tmp_path, every_n_steps=every, strict=True) as viz:
        assert viz._window.tracker.semantics == ["relu", "none"]
        train(model, viz, images, labels, steps=2 * WINDOW)
        assert viz._window.sample() == {"reported layers": 2, "other layers": 10}
    rates_a, samples_a = logged_sample(tmp_path, "conv_a")
    rates_b, samples_b = logged_sample(tmp_path, "conv_b")
    # the second window: conv_a on forwards 0, 2, 4, ... (40 of 80), conv_b on 0, 10, ... (8 of 80)
    assert samples_a[-1].tolist() == [WINDOW / 2, WINDOW, 2]
    assert samples_b[-1].tolist() == [WINDOW / 10, WINDOW, 10]
    assert np.nonzero(rates_a[-1] == 0)[0].tolist() == [1, 6]  # planted: exact
    assert (rates_a[-1][[0, 2, 3, 4, 5, 7]] > 0).all()  # live: never called dead
    assert np.isfinite(rates_b[-1]).all() and rates_b[-1].shape == (6,)
    client, _ = plugin_client(str(tmp_path))
    shown = {}
    for layer in ("conv_a", "conv_b"):
        response = client.get(f"/data/plugin/cnnviz/api/dead/rates?run=.&layer={layer}")
        assert response.status_code == 200
        shown[layer] = json.loads(response.get_data())
    assert [shown["conv_a"][key][-1] for key in ("batches_counted", "batches_seen", "count_every")] == [
        40,
        80,
        2,
    ]
    assert [shown["conv_b"][key][-1] for key in ("batches_counted", "batches_seen", "count_every")] == [
        8,
        80,
        10,
    ]
    assert shown["conv_b"]["semantics"] == "none" and shown["conv_b"]["dead_fraction"] == [None, None]
    assert shown["conv_a"]["dead_fraction"][-1] == 2 / 8


@pytest.mark.parametrize(
    ("reported", "others", "budget", "every", "expected"),
    [
        (0.002, 0.001, 0.003, 200, (1, 1)),  # the budget covers every layer on every batch
        (0.0265, 0.0208, 0.003, 200, (13, 25)),  # ConvNeXt-Nano's measured costs: others at 8 a window,
        # the reported layers within 0.3% - 0.0208 / 25 = 0.2168%: ceil(2.65 / 0.2168) = 13
        (0.0188, 0.0203, 0.003, 200, (9, 25)),  # ResNet-50's: ceil(1.88 / (0.3 - 2.03 / 25)) = 9
        (0.05, 0.2, 0.003, 200, (25, 25)),  # the others alone exceed the budget: both at the sparsest
        (0.05, 0.0, 0.003, 200, (17, 17)),  # no other layers: the whole budget, as before
        (0.05, 0.05, 0.003, 12, (1, 1)),  # a window too short to sample (fewer than 2 x 8 batches)
    ],
)
def test_sample_for_budget(reported, others, budget, every, expected):
    from tb_cnnviz.callbacks.windows import sample_for_budget

    assert sample_for_budget(reported, others, budget, every) == expected


def overhead_benchmark():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "overhead_stats.py"  # overhead.py's estimator
    spec = importlib.util.spec_from_file_location("overhead_stats", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_estimate_is_unbiased_and_its_noise_floor_covers_the_true_cost():
    """benchmarks/overhead.py's estimator on simulated B A A B steps with known costs: ConvNeXt-Nano's
    counting costs per counted batch (reported layers 2.65% of a step, one batch in 13; the others 2.08%,
    one in 25), 0.02% on every B step (timed exactly here), step noise 1% sd plus a +15% spike on 5% of
    the steps, 60 groups with the benchmark's plan (every other B counts nothing, the others one group
    in turn).

    Measured over seeds 0-199 / 200-399 / 400-599 (true cost 0.307%): the 95% half-width covered it on
    96% / 94.5% / 95.5% of the seeds (median half-width 0.054% / 0.051% / 0.054%, mean error -0.002%),
    from the pairs alone on 96% / 94.5% / 90% (half-width 0.397% / 0.394% / 0.401%, mean error within
    0.008%); the idle B steps' interval held the timed value on 95.5% / 95% / 90.5%, the A/A one held
    0 on 94.5% / 97% / 96%.
    """
    import random
    import types

    bench = overhead_benchmark()
    cost = {(0, 0): 0.0002, (1, 0): 0.0267, (0, 1): 0.0210, (1, 1): 0.0475}
    tracker = types.SimpleNamespace(count_every=13, info_count_every=25, groups_present=[True, True])
    weights = bench.design_weights(tracker)
    assert weights[(1, 1)] == pytest.approx(1 / 325) and weights[(1, 0)] == pytest.approx(1 / 13 - 1 / 325)
    assert sum(weights.values()) == pytest.approx(1)
    truth = sum(share * cost[stratum] for stratum, share in weights.items())

    def simulated(seed):
        rng = random.Random(seed)

        def step():
            return 1.0 + rng.gauss(0, 0.01) + (0.15 if rng.random() < 0.05 else 0.0)

        pairs, aa = [], []
        for group in range(60):
            plan = [(0, 0), ((1, 0), (0, 1))[group % 2]]
            plan = plan[::-1] if group % 2 else plan
            first_b = step() + cost[plan[0]]
            first, second = step(), step()
            second_b = step() + cost[plan[1]]
            pairs += [(plan[0], first_b, first), (plan[1], second_b, second)]
            aa.append((first, second))
        return bench.estimate(pairs, aa, weights, idle_seconds=cost[(0, 0)])

    results = [simulated(seed) for seed in range(200)]

    def share(condition):
        return sum(map(condition, results)) / len(results)

    assert 0.91 <= share(lambda r: abs(r["per_step"] - truth) <= r["floor"]) <= 0.98
    assert 0.86 <= share(lambda r: abs(r["per_step_ab"] - truth) <= r["floor_ab"]) <= 0.98
    assert 0.86 <= share(lambda r: abs(r["idle_ab"][0] - r["idle_ab"][2]) <= r["idle_ab"][1]) <= 0.98
    assert 0.90 <= share(lambda r: abs(r["aa_mean"]) <= r["aa_floor"]) <= 0.99
    assert abs(statistics.fmean(r["per_step"] for r in results) - truth) < 0.0002
    assert abs(statistics.fmean(r["per_step_ab"] for r in results) - truth) < 0.0005
    assert statistics.median(r["floor"] for r in results) < 0.001  # the counted strata's SEs divided by k
    assert statistics.median(r["floor_ab"] for r in results) < 0.005


def test_the_benchmark_trimmed_mean_and_additive_strata():
    bench = overhead_benchmark()
    values = [float(v) for v in range(1, 20)] + [1000.0]  # n = 20: two trimmed on each side (10%)
    mean, se, sd = bench.trimmed(values)
    winsorized = [3.0, 3.0] + [float(v) for v in range(3, 19)] + [18.0, 18.0]
    assert mean == pytest.approx(10.5)  # the mean of 3..18: the outlier has no say
    assert sd == pytest.approx(statistics.stdev(winsorized))
    assert se == pytest.approx(sd / (0.8 * 20**0.5))  # Tukey-McLaughlin: s_w / ((1 - 2g) sqrt(n))
    assert bench.trimmed([1.0, 3.0])[:2] == (2.0, pytest.approx(float("nan"), nan_ok=True))
    means = {(0, 0): (0.001, 0.003), (1, 0): (0.03, 0.004), (0, 1): (0.02, 0.0)}
    assert bench.additive((1, 1), means) == pytest.approx((0.049, 0.005))
    assert bench.additive((1, 1), {(0, 0): (0.0, 0.0), (1, 0): (0.0, 0.0)}) is None
    assert bench.additive((1, 0), means) is None
