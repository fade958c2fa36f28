"""Routes of the Filters view (api/filters/...): raw kernels and per-filter smoothness."""

from __future__ import annotations

import numpy as np
import pytest
from logdirs import CALLBACK_RUN, LAYER, P, decode_kernels, get_json
from support import plugin_client
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import metadata, summary
from tb_cnnviz.plugin.routes import filters


def test_kernels_of_one_step_are_the_logged_raw_weights(basic_client, basic_logdir):
    for step in (1, 6, 12):
        answer = get_json(
            basic_client, f"{P}/api/filters/kernels?run={CALLBACK_RUN}&layer={LAYER}&step={step}"
        )
        assert answer["steps"] == [step] and answer["shape"] == [4, 3, 3, 3]
        np.testing.assert_array_equal(decode_kernels(answer)[0], basic_logdir["logged"][step])


def test_kernels_block_of_steps_and_size_cap(basic_client, basic_logdir, monkeypatch):
    url = f"{P}/api/filters/kernels?run={CALLBACK_RUN}&layer={LAYER}"
    answer = get_json(basic_client, f"{url}&step=4&count=3")
    assert answer["steps"] == [4, 6, 8]
    block = decode_kernels(answer)
    for i, step in enumerate(answer["steps"]):
        np.testing.assert_array_equal(block[i], basic_logdir["logged"][step])
    # A block never runs past the last step...
    assert get_json(basic_client, f"{url}&step=10&count=50")["steps"] == [10, 12]
    # ...nor past the response budget: 108 floats per step, budget 250 floats -> 2 steps.
    monkeypatch.setattr(filters, "MAX_VALUES_PER_RESPONSE", 250)
    assert get_json(basic_client, f"{url}&step=1&count=7")["steps"] == [1, 2]


def test_smoothness_series_with_nan_as_null_and_layer_mean(basic_client):
    answer = get_json(basic_client, f"{P}/api/filters/smoothness?run=exact&layer=conv")
    assert answer["steps"] == [0, 10]
    assert answer["values"] == [[0.5, None, -0.25], [0.75, 0.25, None]]
    assert answer["mean"] == [pytest.approx(0.125), pytest.approx(0.5)]


def test_smoothness_from_the_callback_is_in_range(basic_client):
    answer = get_json(basic_client, f"{P}/api/filters/smoothness?run={CALLBACK_RUN}&layer={LAYER}")
    values = np.array(answer["values"], dtype=float)
    assert values.shape == (7, 4) and np.all(np.abs(values) <= 1)


def test_kernels_of_a_hostile_run_name(basic_client):
    kernels = get_json(
        basic_client,
        f"{P}/api/filters/kernels?run=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&layer=c%3Cb%3E1%3C%2Fb%3E&step=10",
    )
    assert np.all(decode_kernels(kernels) == 10)


def test_new_steps_show_up_after_a_reload(tmp_path):
    def logged(step: int) -> list:
        return [
            summary.tensor_summary(metadata.KERNELS, "c", np.full((1, 1, 1, 1), step, np.float32)),
            summary.tensor_summary(metadata.SMOOTHNESS, "c", np.array([step / 10], np.float32)),
        ]

    writer = SummaryWriter(str(tmp_path / "live"))
    summary.write(writer, logged(0), 0)
    writer.flush()
    client, multiplexer = plugin_client(str(tmp_path))
    url = f"{P}/api/runs/steps?run=live&kind=kernels&layer=c"
    assert get_json(client, url)["steps"] == [0]
    assert decode_kernels(get_json(client, f"{P}/api/filters/kernels?run=live&layer=c&step=0")).item() == 0
    assert get_json(client, f"{P}/api/filters/smoothness?run=live&layer=c")["values"] == [[0.0]]
    summary.write(writer, logged(5), 5)
    writer.close()
    multiplexer.Reload()
    assert get_json(client, url)["steps"] == [0, 5]
    assert decode_kernels(get_json(client, f"{P}/api/filters/kernels?run=live&layer=c&step=5")).item() == 5
    assert get_json(client, f"{P}/api/filters/smoothness?run=live&layer=c")["values"] == [[0.0], [0.5]]
