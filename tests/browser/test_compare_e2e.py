"""Comparing runs in Chromium over the real TensorBoard: three runs of two architectures (two SmallVGGs
logging kernels on different schedules, and a tiny CNN whose layers are named differently, written with
the callback here) side by side in the Filters view. Each panel draws its own layer (the tiny CNN's first
conv for SmallVGG's first conv: the same role), says when its step is not the slider's, lines the runs up
by fraction of training when asked, offers epochs only with a tooltip saying why not, lets a panel pick its
own layer, and a link restores the three runs, the per-run layer and the sync mode."""

from __future__ import annotations

import os
import urllib.parse

import pytest
import torch
from browser_helpers import Page, idle, plugin_page, screenshot, slider_step
from support import TwoConvNet, consecutive_batches, fit_with_callback, serving, wait_for
from torch import nn

from tb_cnnviz.models import small_vgg

pytestmark = [pytest.mark.browser]
VGG, VGG_SPARSE, TINY, ONE = "vgg", "vgg_sparse", "tiny", "one_step"
VGG_LAYERS = ["features.conv1", "features.conv2", "features.conv4"]
# support.TwoConvNet's convs: another architecture than SmallVGG's. (A run's layer list is in the natural order
# of the names, the listing does not know the model's order: block1 before block2.)
TINY_LAYERS = ["block1", "block2"]


def _train(logdir: str, model: nn.Module, layers: list[str], every: int, steps: int) -> None:
    from tb_cnnviz.callbacks import CNNVizCallback

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8 * steps, 3, 16, 16, generator=generator)
    labels = torch.randint(0, 10, (8 * steps,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with CNNVizCallback(
        model, log_dir=logdir, kernel_layers=layers, every_n_steps={"kernels": every}, background=False
    ) as viz:
        fit_with_callback(model, viz, optimizer, range(1, steps + 1), consecutive_batches(images, labels, 8))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare_e2e")
    torch.manual_seed(0)
    _train(os.path.join(root, VGG), small_vgg(width=8), VGG_LAYERS, every=2, steps=10)
    _train(os.path.join(root, VGG_SPARSE), small_vgg(width=8), VGG_LAYERS, every=3, steps=9)
    _train(os.path.join(root, TINY), TwoConvNet(), TINY_LAYERS, every=5, steps=40)
    _train(os.path.join(root, ONE), TwoConvNet(), TINY_LAYERS, every=5, steps=1)
    with serving(str(root), {VGG, VGG_SPARSE, TINY, ONE}) as base:
        yield base


def _panels(frame) -> dict:
    """Per run: the layer its panel shows, its shown step, its step line and whether its kernel grid is drawn."""
    return frame.eval_on_selector_all(
        ".panel",
        """ps => Object.fromEntries(ps.map(p => [p.dataset.run, {
            layer: p.dataset.layer,
            select: p.querySelector('select.panel-layer')?.value,
            shown: p.dataset.shownStep === '' ? null : Number(p.dataset.shownStep),
            line: p.querySelector('.panel-step').textContent,
            lineShown: !p.querySelector('.panel-step').hidden,
            drawn: (() => { const c = p.querySelector('canvas.kernel-grid');
                return Boolean(c && c.width > 1 && !c.closest('[hidden]') && c.dataset.step !== undefined); })(),
            gridStep: p.querySelector('canvas.kernel-grid')?.dataset.step,
        }]))""",
    )


def _wait_three(frame) -> dict:
    frame.wait_for_function("() => document.querySelectorAll('.panel').length === 3")
    idle(frame)
    frame.wait_for_function(
        "() => [...document.querySelectorAll('.panel canvas.kernel-grid')].filter(c => c.width > 1).length === 3"
    )
    return _panels(frame)


def _select_step(frame, step: int) -> None:
    frame.eval_on_selector(
        ".step-range",
        "(el, step) => { const v = window.cnnviz.view.steps().indexOf(step);"
        " el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true}));"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }",
        step,
    )
    frame.wait_for_function(f"() => document.querySelector('.step-slider').dataset.step === '{step}'")
    frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")  # drawn
    idle(frame)


def test_three_runs_of_two_architectures_each_with_its_layer_and_step(server, browser, shots):
    with plugin_page(browser, server, VGG) as (_, frame):
        frame.click("button[data-view=filters]")
        frame.select_option("select.run-b", VGG_SPARSE)
        frame.wait_for_selector("select.run-c", state="visible")
        frame.select_option("select.run-c", TINY)
        frame.select_option("select.layer", "features.conv1")
        panels = _wait_three(frame)
        # The tiny CNN shows its first conv for SmallVGG's first conv, block1 (the same role), not an empty panel.
        assert {run: p["layer"] for run, p in panels.items()} == {
            VGG: "features.conv1",
            VGG_SPARSE: "features.conv1",
            TINY: "block1",
        }
        assert all(p["drawn"] and p["lineShown"] for p in panels.values()), panels
        # The slider moves over the union of the runs' steps; at step 4 the sparse run (every 3) shows 3.
        _select_step(frame, 4)
        panels = _panels(frame)
        assert panels[VGG]["shown"] == 4 and panels[VGG]["line"] == "step 4"
        assert panels[VGG_SPARSE]["shown"] == 3
        assert "the slider is at step 4" in panels[VGG_SPARSE]["line"]
        # The tiny run (every 5 steps, and the callback's first step) shows step 1.
        assert panels[TINY]["shown"] == 1 and "the slider is at step 4" in panels[TINY]["line"]
        assert [panels[run]["gridStep"] for run in (VGG, VGG_SPARSE, TINY)] == ["4", "3", "1"]

        # By epoch: offered only when runs log epochs; these log steps only, and the tooltip says so.
        epoch = frame.eval_on_selector(
            "select.sync-mode", "s => [s.querySelector('option[value=epoch]').disabled, s.title]"
        )
        assert epoch[0] is True and "log" in epoch[1] and "epoch" in epoch[1]

        # By fraction of training: the slider moves over the first run's steps (10 of them: step 6 = 60%);
        # the 9-step run shows its last step at or before 5.4, the 40-step run at or before 24.
        frame.select_option("select.sync-mode", "fraction")
        wait_for(lambda: 10 in frame.evaluate("() => window.cnnviz.view.steps()"), what="fraction steps")
        _select_step(frame, 6)
        panels = _panels(frame)
        assert (panels[VGG]["shown"], panels[VGG_SPARSE]["shown"], panels[TINY]["shown"]) == (6, 3, 20)
        assert "60% of" in panels[TINY]["line"] and "of 40 (50% of its training)" in panels[TINY]["line"]
        assert panels[TINY]["gridStep"] == "20"

        # A panel's own layer: the tiny CNN's second conv, while the others keep theirs.
        frame.select_option(f".panel[data-run={TINY}] select.panel-layer", "block2")
        frame.wait_for_selector(f".panel[data-run={TINY}][data-layer=block2] canvas.kernel-grid")
        panels = _wait_three(frame)
        assert panels[TINY]["layer"] == "block2" and panels[VGG]["layer"] == "features.conv1"
        assert slider_step(frame) == 6

        # The link keeps the three runs, the picked layer and the sync mode; opened, it shows them again.
        frame.click("button.copy-link")
        link = frame.get_attribute("button.copy-link", "data-url")
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(link).fragment, keep_blank_values=True)
        assert state["run"] == [VGG] and state["compare"] == [VGG_SPARSE, TINY]
        assert state["layers"] == ["", "", "block2"] and state["sync"] == ["fraction"]

    again = Page(browser, color_scheme="dark")
    try:
        again.page.set_viewport_size({"width": 900, "height": 900})
        again.page.goto(link)
        frame = again.page.main_frame
        panels = _wait_three(frame)
        assert [frame.eval_on_selector(f"select.run-{k}", "s => s.value") for k in "abc"] == [
            VGG,
            VGG_SPARSE,
            TINY,
        ]
        assert frame.eval_on_selector("select.sync-mode", "s => s.value") == "fraction"
        assert {run: p["layer"] for run, p in panels.items()} == {
            VGG: "features.conv1",
            VGG_SPARSE: "features.conv1",
            TINY: "block2",
        }
        assert slider_step(frame) == 6 and panels[TINY]["shown"] == 20
        assert all(p["drawn"] for p in panels.values())
        # 900 px: the three panels stay within the page's width.
        width = frame.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 900, width
        screenshot(again.page, shots / "compare-three-runs-dark.png")
        assert again.problems == []
    finally:
        again.close()


def test_four_runs_and_smoothness_charts_fit_their_data(server, browser, shots):
    """Four runs side by side (the most); each smoothness chart's y axis fits its data (not -1..1), its band
    of the 10th-90th percentile spans the filters, its x ticks are round steps, and a one-step run shows
    one tick (and a point), not "-1 0 0 1 1"."""
    with plugin_page(browser, server, VGG) as (page, frame):
        frame.click("button[data-view=filters]")
        for select, run in (("b", VGG_SPARSE), ("c", TINY), ("d", ONE)):
            frame.wait_for_selector(f"select.run-{select}", state="visible")
            frame.select_option(f"select.run-{select}", run)
        frame.wait_for_function(
            "() => document.querySelectorAll('.panel canvas.smoothness-chart[data-y-ticks]').length === 4"
        )
        idle(frame)
        charts = frame.eval_on_selector_all(
            ".panel",
            """ps => Object.fromEntries(ps.map(p => { const c = p.querySelector('canvas.smoothness-chart');
                return [p.dataset.run, {x: c.dataset.xTicks, y: c.dataset.yTicks, range: c.dataset.yRange.split(' ').map(Number),
                    title: p.querySelector('.chart-title').textContent}]; }))""",
        )
        assert charts[VGG]["x"] == "2 4 6 8 10" and charts[TINY]["x"] == "10 20 30 40", charts
        assert charts[ONE]["x"] == "1" and "one step logged (1)" in charts[ONE]["title"], charts[ONE]
        for run, chart in charts.items():
            lo, hi = chart["range"]
            assert -1 <= lo < hi <= 1 and hi - lo < 1.5, (run, chart)  # fitted, not the whole -1..1
            assert "-1.00" not in chart["y"].split(), (run, chart)
        # SmallVGG's conv1 has 8 filters: the title names the band over them.
        assert "band 10th–90th percentile of 8 filters" in charts[VGG]["title"]
        assert frame.evaluate("() => document.documentElement.scrollWidth") <= 1280
        screenshot(page.page, shots / "compare-four-runs.png")
