"""The Overview tab in Chromium over the real TensorBoard: it is the first tab, draws the layers x steps map
of dead fractions with hover values and the findings of a run made to trigger them (6 of 8 filters of
conv2 killed after step 5, an infinite weight after step 9: tests/support.py log_broken_run); the dead-filter
finding's link opens the Dead filters view at its layer and step; two runs compared at 900 px in dark mode
(one panel each, within the width), the healthy one without that finding and with the hint for what it did not log."""

from __future__ import annotations

import os
import re

import pytest
from browser_helpers import idle, plugin_page, screenshot, slider_step
from support import log_broken_run, serving

pytestmark = [pytest.mark.browser]
BROKEN, HEALTHY = "broken", "healthy"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("overview_e2e")
    log_broken_run(os.path.join(root, BROKEN))
    log_broken_run(os.path.join(root, HEALTHY), kill_after=None, inf_after=None)
    with serving(str(root), {BROKEN, HEALTHY}) as base:
        yield base


def _drawn_pixels(frame, selector: str) -> int:
    """How many pixels of a canvas are not transparent."""
    return frame.eval_on_selector(
        selector,
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }",
    )


def test_the_first_tab_maps_dead_fractions_and_its_finding_opens_the_dead_filters_view(server, browser):
    with plugin_page(browser, server, BROKEN) as (_, frame):
        tabs = frame.eval_on_selector_all(".tabs button", "bs => bs.map(b => b.dataset.view)")
        assert tabs[0] == "overview" and len(tabs) > 5
        frame.wait_for_selector("button[data-view=overview][aria-selected=true]")
        frame.wait_for_selector(f".panel[data-run={BROKEN}][data-findings] canvas.overview-dead-map")
        idle(frame)
        dead_map = frame.locator("canvas.overview-dead-map")
        box = dead_map.bounding_box()
        assert box["width"] > 200 and box["height"] >= 5 * 6  # 5 conv layers
        assert _drawn_pixels(frame, "canvas.overview-dead-map") > 1000
        dead_map.hover(position={"x": box["width"] - 8, "y": 22})  # row 2 (conv2), the last step
        readout = frame.inner_text(".overview-dead-readout")
        assert re.fullmatch(
            r"features\.conv2 · step 10 · dead fraction 0\.\d{3} \([678] of 8 filters\)", readout
        ), readout
        finding = frame.locator("li.finding[data-rule=dead_filters_rising]")
        assert re.match(
            r"warning: features\.conv2: \d+% of filters dead \(\d of 8\) since step 8 ", finding.inner_text()
        )
        assert frame.locator("li.finding[data-rule=nonfinite_weights]").count() == 1
        assert frame.locator("li.finding").first.get_attribute("class") == "finding finding-error"
        for canvas in ("overview-smoothness", "overview-dead-map", "overview-spread-map"):
            assert _drawn_pixels(frame, f"canvas.{canvas}") > 500, canvas
        finding.locator("button.finding-link").click()
        frame.wait_for_selector("button[data-view=dead][aria-selected=true]")
        frame.wait_for_function(
            "() => document.querySelector('select.layer')?.value === 'features.conv2'", timeout=30_000
        )
        idle(frame)
        assert slider_step(frame) == 8


def test_two_runs_compared_at_900_px_in_dark_mode(server, browser, shots):
    with plugin_page(browser, server, BROKEN, scheme="dark") as (page, frame):
        page.page.set_viewport_size({"width": 900, "height": 900})
        frame.select_option("select.run-b", HEALTHY)
        frame.wait_for_function(
            "() => document.querySelectorAll('.panel[data-findings] canvas.overview-dead-map').length === 2"
        )
        idle(frame)
        healthy = f".panel[data-run={HEALTHY}]"
        assert frame.locator(f"{healthy} li.finding[data-rule=dead_filters_rising]").count() == 0
        assert (
            frame.locator(f".panel[data-run={BROKEN}] li.finding[data-rule=dead_filters_rising]").count() == 1
        )
        hint = frame.inner_text(f"{healthy} .overview-part[data-part=separability] .overview-hint")
        assert hint.startswith("Not logged.") and "embedding_probe=(images, labels)" in hint
        rights = frame.eval_on_selector_all(".panel", "ps => ps.map(p => p.getBoundingClientRect().right)")
        assert len(rights) == 2 and max(rights) <= 900, rights
        assert frame.evaluate("() => document.documentElement.dataset.theme") == "dark"
        screenshot(page.page, shots / "overview-compare-dark.png")
