"""api/filters/kernels with ``encoding``: int8 codes with one float32 scale per step and filter for big
layers (``auto`` above ``QUANTISE_ABOVE`` weights per step), float32 otherwise and by default."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from logdirs import P, decode_kernels, get_json
from support import plugin_client, write_run

from tb_cnnviz import metadata, summary
from tb_cnnviz.plugin.routes import filters

RUN, BIG, SMALL = "quantised", "big", "small"
BIG_SHAPE = (64, 128, 3, 3)  # 73,728 weights: above QUANTISE_ABOVE (65,536)


def _weights(step: int) -> np.ndarray:
    """Weights of very different sizes per filter, a filter of zeros, a NaN and an infinity."""
    rng = np.random.default_rng(step)
    w = rng.normal(0, 1, BIG_SHAPE) * np.logspace(-6, 2, BIG_SHAPE[0])[:, None, None, None]
    w[3] = 0
    w[5, 0, 0, 0] = np.nan
    w[6, 1, 2, 2] = -np.inf
    return w.astype(np.float32)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("quantised_kernels"))
    small = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) / 7
    write_run(
        root,
        RUN,
        {
            step: [
                summary.tensor_summary(metadata.KERNELS, BIG, _weights(step)),
                summary.tensor_summary(metadata.KERNELS, SMALL, small + step),
            ]
            for step in (1, 2, 3)
        },
    )
    return plugin_client(root)[0]


def _dequantised(answer: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dequantised weights in float64 [steps, out, ...], codes, scales [steps, out]) as the browser computes them."""
    steps, shape = len(answer["steps"]), answer["shape"]
    codes = np.frombuffer(base64.b64decode(answer["data"]), "<i1").reshape([steps, *shape])
    scales = np.frombuffer(base64.b64decode(answer["scales"]), "<f4").reshape(steps, shape[0])
    values = codes.astype(np.float64) * scales.astype(np.float64)[:, :, None, None, None]
    return np.where(codes == filters.NON_FINITE, np.nan, values), codes, scales


@pytest.mark.parametrize("encoding", ["int8", "auto"])
def test_big_kernels_as_int8_are_within_half_a_scale_of_the_weights(client, encoding):
    answer = get_json(
        client, f"{P}/api/filters/kernels?run={RUN}&layer={BIG}&step=1&count=3&encoding={encoding}"
    )
    assert answer["dtype"] == "int8" and answer["steps"] == [1, 2, 3] and answer["shape"] == list(BIG_SHAPE)
    values, codes, scales = _dequantised(answer)
    for i, step in enumerate(answer["steps"]):
        w = _weights(step).astype(np.float64)
        finite = np.isfinite(w)
        # per filter: scale = max |finite w| / 127 (as float32), codes use the whole range
        expected = np.where(finite, np.abs(w), 0).reshape(BIG_SHAPE[0], -1).max(axis=1) / 127
        np.testing.assert_allclose(scales[i], expected, rtol=1e-6)
        assert scales[i, 3] == 0 and np.all(values[i, 3] == 0)  # a filter of zeros stays exact
        assert np.all(np.abs(codes[i][finite]) <= 127)
        # every finite weight within half its filter's scale; non-finite ones marked, not drawn as numbers
        error = np.abs(values[i] - w)[finite]
        bound = np.broadcast_to(scales[i].astype(np.float64)[:, None, None, None] / 2, BIG_SHAPE)[finite]
        assert np.all(error <= bound)
        assert np.isnan(values[i, 5, 0, 0, 0]) and np.isnan(values[i, 6, 1, 2, 2])
        assert np.count_nonzero(codes[i] == filters.NON_FINITE) == 2
        # the smallest filter (weights ~1e-6) keeps its own precision: no global scale flattens it
        assert np.abs(values[i, 0] - w[0]).max() <= np.abs(w[0]).max() / 254 + 1e-18
    # a quarter of the float32 payload
    float32 = client.get(f"{P}/api/filters/kernels?run={RUN}&layer={BIG}&step=1&count=3")
    int8 = client.get(f"{P}/api/filters/kernels?run={RUN}&layer={BIG}&step=1&count=3&encoding={encoding}")
    assert len(int8.data) < 0.27 * len(float32.data)


def test_float32_stays_the_default_and_auto_keeps_small_layers_exact(client):
    default = get_json(client, f"{P}/api/filters/kernels?run={RUN}&layer={BIG}&step=2")
    assert default["dtype"] == "float32" and "scales" not in default
    np.testing.assert_array_equal(decode_kernels(default)[0], _weights(2))
    small = get_json(client, f"{P}/api/filters/kernels?run={RUN}&layer={SMALL}&step=2&encoding=auto")
    assert small["dtype"] == "float32"
    expected = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) / 7 + 2
    np.testing.assert_array_equal(decode_kernels(small)[0], expected)


def test_an_unknown_encoding_is_a_400_naming_it(client):
    answer = get_json(
        client, f"{P}/api/filters/kernels?run={RUN}&layer={BIG}&step=1&encoding=int4", status=400
    )
    assert "encoding" in answer["error"] and "'int4'" in answer["error"] and "int8" in answer["error"]
