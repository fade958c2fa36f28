"""The Separability view in Chromium over the real TensorBoard: a callback run with a labelled embedding
probe draws accuracy against depth and the layers x steps heat map, hover names a cell's value, a click
on a column picks its step; a run without the kind shows the empty state that says how to enable it."""

from __future__ import annotations

import os

import pytest
import torch
from browser_helpers import idle, plugin_page, signature
from support import consecutive_batches, fit_with_callback, serving

from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

pytestmark = [pytest.mark.browser]
RUN, EMPTY_RUN = "probed", "unprobed"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("separability_e2e")
    images, labels = ShapesDataset(256, seed=3).tensors()
    held = ShapesDataset(120, seed=7).tensors()
    for run, probe in ((RUN, held), (EMPTY_RUN, None)):
        torch.manual_seed(0)
        model = small_vgg(width=8)
        every = {"separability": 2, "embedding": 1000, "kernels": 2, "dead_filters": 1000}
        with CNNVizCallback(
            model,
            log_dir=os.path.join(root, run),
            embedding_probe=probe,
            every_n_steps=every,
            background=False,
        ) as viz:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
            # step s trains on images 16 s .. 16 s + 15 (the first 16 are never used)
            batches = consecutive_batches(images[16:], labels[16:], 16)
            fit_with_callback(model, viz, optimizer, range(1, 7), batches)
    with serving(str(root), {RUN, EMPTY_RUN}) as base:
        yield base


def test_the_view_draws_depth_curves_and_the_heat_map_with_hover_values(server, browser):
    with plugin_page(browser, server, RUN) as (_, frame):
        frame.click("button[data-view=separability]")
        frame.wait_for_selector(".panel[data-step='6'] canvas.separability-chart")
        idle(frame)
        chart = signature(frame, "canvas.separability-chart")
        heat = frame.locator("canvas.separability-heat")
        box = heat.bounding_box()
        assert box["width"] > 150 and box["height"] >= 18 * 5  # 5 layers: 4 stage outputs and the classifier
        heat.hover(position={"x": box["width"] - 5, "y": box["height"] - 5})
        readout = frame.inner_text(".separability-readout")
        assert "classifier (input) · step 6: held-out accuracy" in readout and "chance" in readout
        heat.click(position={"x": 152, "y": 5})  # the first column: step 2
        frame.wait_for_selector(".panel[data-step='2']")
        idle(frame)
        assert signature(frame, "canvas.separability-chart") != chart


def test_a_run_without_it_says_how_to_enable_it(server, browser):
    with plugin_page(browser, server, EMPTY_RUN) as (_, frame):
        frame.click("button[data-view=separability]")
        frame.wait_for_selector(".message.empty")
        text = frame.inner_text(".message.empty")
        assert "embedding_probe=(images, labels)" in text and "linear probe" in text
