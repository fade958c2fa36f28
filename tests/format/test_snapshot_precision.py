"""Issue #18, bytes per snapshot: kernels and dead-filter rates stored as float16, activation tiles at 128 grey
levels. The views must get the same pictures and values within the stated precision, old runs (float32, 256
levels) must read as before, and "dead" (a rate of exactly 0) must keep its meaning."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from support import plugin_client, read_logdir, write_run
from tensorboard.util import tensor_util
from torch import nn

from tb_cnnviz import metadata, snapshots, summary
from tb_cnnviz.analysis.activations import activation_tiles, layer_activations
from tb_cnnviz.snapshots import FilterRates, Inputs
from tb_cnnviz.snapshots.precision import HALF_MAX, SMALLEST_HALF, half

HALF_RELATIVE = 2.0**-11  # float16's relative rounding error for |x| >= 2**-14
HALF_ABSOLUTE = 2.0**-25  # ... and its absolute one below (subnormals)


def _within_half(stored: np.ndarray, exact: np.ndarray) -> None:
    exact = exact.astype(np.float64)
    with np.errstate(invalid="ignore"):
        error = np.abs(stored.astype(np.float64) - exact)
    bound = np.maximum(np.abs(exact) * HALF_RELATIVE, HALF_ABSOLUTE)
    finite = np.isfinite(exact)
    assert np.all(error[finite] <= bound[finite] * (1 + 1e-9))
    np.testing.assert_array_equal(np.isnan(stored), np.isnan(exact))
    np.testing.assert_array_equal(stored[np.isinf(exact)], exact[np.isinf(exact)])


def test_half_keeps_zero_exact_nonzero_nonzero_and_finite_finite():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.uniform(0, 1, 500),
            10.0 ** rng.uniform(-12, 0, 500),  # tiny rates, most below float16's smallest subnormal
            [0.0, 1.0, -0.0, -1e-10, math.nan, math.inf, -math.inf, 65504.0],
        ]
    ).astype(np.float32)
    stored = half(values, keep_nonzero=True)
    assert stored.dtype == np.float16
    wide = stored.astype(np.float32)
    np.testing.assert_array_equal(wide == 0, values == 0)  # exactly the zeros read as 0
    np.testing.assert_array_equal(np.sign(wide[np.isfinite(values)]), np.sign(values[np.isfinite(values)]))
    big = values >= 2.0**-14
    _within_half(wide[big], values[big])
    small = np.isfinite(values) & (np.abs(values) < 2.0**-14) & (values != 0)
    assert np.all(np.abs(wide[small]) >= SMALLEST_HALF * 0.999)  # flushed ones read as the smallest subnormal
    assert np.all(np.abs(wide[small] - values[small]) <= SMALLEST_HALF)
    # without keep_nonzero float16 would flush them: the guard is what keeps "dead" meaning exactly 0
    assert (half(np.float32([1e-9])) == 0).all()
    # a finite value beyond float16's range: the step stays float32 instead of reading as infinite
    wide_range = np.array([HALF_MAX * 2, 1e-3, math.inf], np.float32)
    assert half(wide_range).dtype == np.float32 and np.array_equal(half(wide_range), wide_range)


def test_kernels_are_float16_within_half_precision_and_smoothness_from_float32():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 5)
    with torch.no_grad():
        conv.weight[0, 0, 0, 0] = 3e-7  # below float16's normal range: kept within 3e-8
    summaries = snapshots.kernels(Inputs(layers=[("c", conv)], settings={"normalization": "global"}))
    by_tag = {s.value[0].tag: s.value[0] for s in summaries}
    tensor = by_tag["cnnviz/kernels/c"].tensor
    stored = tensor_util.make_ndarray(tensor)
    assert stored.dtype == np.float16 and len(tensor.tensor_content) == 2 * conv.weight.numel()
    _within_half(stored.astype(np.float32), conv.weight.detach().numpy())
    smooth = tensor_util.make_ndarray(by_tag["cnnviz/smoothness/c"].tensor)
    from tb_cnnviz.analysis.kernels import smoothness

    np.testing.assert_array_equal(smooth, smoothness(conv.weight.detach()).numpy())  # not from float16

    with torch.no_grad():
        conv.weight[1, 0, 0, 0] = 1e6  # out of float16's range: this step is float32, exact
    summaries = snapshots.kernels(Inputs(layers=[("c", conv)], settings={"normalization": "global"}))
    stored = tensor_util.make_ndarray(summaries[0].value[0].tensor)
    assert stored.dtype == np.float32 and np.array_equal(stored, conv.weight.detach().numpy())


def _rates() -> np.ndarray:
    return np.array([0.0, 1e-9, 3e-5, 0.25, 0.3333333, 1.0, math.nan, 0.0], np.float32)


def test_dead_filter_rates_keep_dead_exact_and_the_fraction_from_float32():
    rates = FilterRates(
        rates=[torch.from_numpy(_rates())], measured_at=["a"], window=4, batches=4, forwards=4
    )
    summaries = snapshots.dead_filters(Inputs(layers=[("a", nn.Identity())], state=rates))
    by_tag = {s.value[0].tag: s.value[0] for s in summaries}
    stored = tensor_util.make_ndarray(by_tag["cnnviz/dead_filters/a"].tensor)
    assert stored.dtype == np.float16
    wide = stored.astype(np.float32)
    assert list(np.flatnonzero(wide == 0)) == [0, 7]  # 1e-9 is not dead
    _within_half(wide[2:6], _rates()[2:6])
    assert float(tensor_util.make_ndarray(by_tag["cnnviz_scalars/dead_fraction/a"].tensor)) == 2 / 8


@pytest.fixture(scope="module")
def old_and_new(tmp_path_factory):
    """Two runs of the same kernels and rates: float32 (as written before) and float16 (today)."""
    root = str(tmp_path_factory.mktemp("precision"))
    rng = np.random.default_rng(1)
    weights = {step: rng.normal(0, 0.05, (4, 3, 3, 3)).astype(np.float32) for step in (0, 10)}
    rates = {step: _rates() * (1 + step / 100) for step in (0, 10)}
    for step in rates:
        rates[step][5] = 1.0
    content = {"window": 10, "measured_at": "c", "semantics": "relu"}

    def run(as_half: bool) -> dict:
        tensor = (
            (lambda kind, array, **extra: snapshots.precision.half_summary(kind, "c", array, True, **extra))
            if as_half
            else (lambda kind, array, **extra: summary.tensor_summary(kind, "c", array, **extra))
        )
        return {
            step: [
                tensor(metadata.KERNELS, weights[step]),
                tensor(metadata.DEAD_FILTERS, rates[step], **content),
            ]
            for step in (0, 10)
        }

    write_run(root, "old", run(False))
    write_run(root, "new", run(True))
    client, _ = plugin_client(root)
    return client, weights, rates, root


def _get(client, route: str, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(f"/data/plugin/cnnviz/api/{route}?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_routes_answer_old_and_new_runs_alike_within_half_precision(old_and_new):
    import base64

    client, weights, rates, root = old_and_new
    stored = read_logdir(root)
    assert stored["new"]["cnnviz/kernels/c"]["values"][0].dtype == np.float16
    assert stored["old"]["cnnviz/kernels/c"]["values"][0].dtype == np.float32
    for step in (0, 10):
        answers = {
            run: _get(client, "filters/kernels", run=run, layer="c", step=step) for run in ("old", "new")
        }
        values = {
            run: np.frombuffer(base64.b64decode(a["data"]), "<f4").reshape(a["shape"])
            for run, a in answers.items()
        }
        np.testing.assert_array_equal(values["old"], weights[step])
        _within_half(values["new"], weights[step])
    old, new = (_get(client, "dead/rates", run=run, layer="c") for run in ("old", "new"))
    assert old["dead_fraction"] == new["dead_fraction"] == [0.25, 0.25]
    for row_old, row_new in zip(old["rates"], new["rates"]):
        a, b = (np.array([np.nan if v is None else v for v in row], np.float64) for row in (row_old, row_new))
        assert list(np.flatnonzero(b == 0)) == list(np.flatnonzero(a == 0)) == [0, 7]
        big = np.isfinite(a) & (a >= 2.0**-14)
        assert np.all(np.abs(b[big] - a[big]) <= np.abs(a[big]) * HALF_RELATIVE + 5e-6)  # + JSON rounding
    for threshold in (0.25, 0.3):  # a threshold between stored values gives the same dead filters
        assert (
            _get(client, "dead/rates", run="old", layer="c", threshold=threshold)["dead_fraction"]
            == _get(client, "dead/rates", run="new", layer="c", threshold=threshold)["dead_fraction"]
        )


def test_activation_tiles_at_128_grey_levels_within_half_a_level():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU())
    images = torch.rand(2, 3, 12, 12)
    layers = [("1", model[1]), ("3", model[3])]
    summaries = snapshots.activations(Inputs(model=model, layers=layers, images=images))
    outputs = layer_activations(model, [m for _, m in layers], images)
    for proto, output in zip(summaries, outputs):
        value = proto.value[0]
        content = metadata.parse_plugin_content(value.metadata.plugin_data.content)
        assert content["levels"] == 128
        expected = activation_tiles(output)
        peaks = []
        for blob, grid in zip(value.tensor.string_val, expected.grids):
            pixels = np.asarray(Image.open(io.BytesIO(blob)), np.float64)
            exact = grid.double().numpy()
            assert np.abs(pixels / 255 - exact).max() <= 0.5 / 127 + 0.5 / 255 + 1e-9
            # a level is k * 255 / 127 rounded: 128 distinct values at most, 0 and 255 among them exactly
            assert set(np.unique(pixels)) <= {round(k * 255 / 127) for k in range(128)}
            np.testing.assert_array_equal(pixels == 0, np.round(exact * 127) == 0)
            peaks.append(pixels.max())
        assert max(peaks) == 255  # the channels' peaks over the images are white


@pytest.mark.slow
def test_the_rust_data_server_serves_float16_kernels_and_rates_like_float32(
    old_and_new, tmp_path, monkeypatch
):
    """The real ``tensorboard`` (Rust data server, ``--load_fast=true``): float16 values in the events (rates,
    and kernels written without the side file) and in the side file (kernels) read as the Python loader reads them."""
    import base64

    from support import api_url, get_json, serving

    from tb_cnnviz import summary as summary_module

    client, weights, rates, root = old_and_new
    monkeypatch.setenv(summary_module.SIDE_FILE_ENV, "0")  # a third run: every payload in the events
    write_run(
        root,
        "in_events",
        {step: [snapshots.precision.half_summary(metadata.KERNELS, "c", weights[step])] for step in (0, 10)},
    )
    with serving(
        root, ["old", "new", "in_events"], "--load_fast=true", series=("in_events", "kernels", "c", 2)
    ) as base:
        for run in ("new", "in_events"):
            answer = get_json(api_url(base, "filters/kernels", run=run, layer="c", step=10))
            values = np.frombuffer(base64.b64decode(answer["data"]), "<f4").reshape(answer["shape"])
            np.testing.assert_array_equal(values, weights[10].astype(np.float16).astype(np.float32))
        rust = get_json(api_url(base, "dead/rates", run="new", layer="c"))
        python = _get(client, "dead/rates", run="new", layer="c")
        assert rust["rates"] == python["rates"] and rust["dead_fraction"] == python["dead_fraction"] == [
            0.25,
            0.25,
        ]
