"""End to end for the Top images tab: the real ``tensorboard`` binary over a logdir written by
CNNVizCallback (embedding probe with top examples of features.conv2 and features.conv3), driven
by headless Chromium.

Opened directly, the tab shows the chosen filter's top images (the ids the route answers, with
receptive-field boxes) beside every filter's best image; a click on the mosaic, the filter picker
and the layer select choose another filter; a click on an image opens it pinned in the Embedding
map, whose "Top images" link comes back. Opened through a Filters or Patterns link, the tab shows
that filter, its images in the viewport without scrolling, and the link keeps the filter. A run
without top images shows how to log them. Nothing logs a console error.
"""

from __future__ import annotations

import numpy as np
import pytest
from browser_helpers import choose_kernel, idle, plugin_page
from support import api_url, get_json, log_views_run, serving
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import metadata, summary

RUN = "shapes"
NO_TOP = "no_top_images"
STEPS, EVERY = 6, 2

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("top_images_e2e_logdir")
    log_views_run(str(root / RUN), steps=STEPS, every=EVERY)
    writer = SummaryWriter(str(root / NO_TOP))  # kernels only: no embedding probe, no top images
    summary.write(
        writer, [summary.tensor_summary(metadata.KERNELS, "conv", np.ones((2, 1, 3, 3), np.float32))], 1
    )
    writer.close()
    return str(root)


@pytest.fixture(scope="module")
def server(logdir):
    with serving(
        logdir, {RUN, NO_TOP}, series=(RUN, "top_examples", "features.conv3", STEPS // EVERY)
    ) as base:
        yield base


def _top(base: str, layer: str, channel: int | None = None) -> dict:
    """The route's answer at the last logged step (what the tab shows with the slider at its end)."""
    steps = get_json(api_url(base, "runs/steps", run=RUN, kind="top_examples", layer=layer))["steps"]
    params = {"run": RUN, "layer": layer, "step": steps[-1]}
    if channel is not None:
        params["channel"] = channel
    return get_json(api_url(base, "top_images/examples", **params))


def _shown(frame, layer: str, filter_: int) -> list[int]:
    """Wait until the tab shows ``filter_`` of ``layer`` with its thumbnails; the image ids it shows."""
    frame.wait_for_selector(f".top-panel[data-layer='{layer}'][data-filter='{filter_}'] .top-example canvas")
    idle(frame)
    return [int(v) for v in frame.eval_on_selector_all(".top-example", "els => els.map(e => e.dataset.id)")]


def _in_viewport(frame, selector: str) -> bool:
    box = frame.locator(selector).bounding_box()
    height = frame.evaluate("() => window.innerHeight")
    return box is not None and 0 <= box["y"] and box["y"] + 40 <= height


def test_the_tab_opened_directly(server, browser):
    with plugin_page(browser, server, RUN) as (_, frame):
        frame.click("button[data-view=top_images]")
        conv2 = _top(server, "features.conv2")
        assert _shown(frame, "features.conv2", 0) == [
            e["id"] for e in _top(server, "features.conv2", 0)["examples"]
        ]
        assert frame.locator(".top-example").count() == 4  # top_k
        assert int(frame.get_attribute("canvas.top-mosaic", "data-filters")) == conv2["filters"] > 2
        note = frame.inner_text(".panel-note")
        assert f"features.conv2, filter #0 of {conv2['filters']}" in note and "receptive field" in note
        # the best image of filter 1 in the mosaic (40 px cells below 128 filters) chooses filter 1
        frame.click("canvas.top-mosaic", position={"x": 60, "y": 20})
        assert _shown(frame, "features.conv2", 1) == [
            e["id"] for e in _top(server, "features.conv2", 1)["examples"]
        ]
        frame.click(".filter-picker button[title='next filter']")
        assert _shown(frame, "features.conv2", 2) == [
            e["id"] for e in _top(server, "features.conv2", 2)["examples"]
        ]
        frame.select_option("select.layer", "features.conv3")
        expected = [e["id"] for e in _top(server, "features.conv3", 2)["examples"]]
        assert _shown(frame, "features.conv3", 2) == expected
        # a top image opens the Embedding map with it pinned; the map's link comes back to this tab
        frame.click(f".top-example[data-id='{expected[0]}']")
        frame.wait_for_selector(f"canvas.scatter[data-pinned='{expected[0]}']")
        assert frame.get_attribute("button[data-view=embedding]", "aria-selected") == "true"
        frame.click(".controls .open-top")
        frame.wait_for_selector(".top-panel[data-filter] .top-example canvas")
        assert frame.get_attribute("button[data-view=top_images]", "aria-selected") == "true"
        # a run without top images says how to log them
        frame.select_option("select.run-a", NO_TOP)
        frame.wait_for_selector(".message.empty")
        empty = frame.inner_text(".message.empty")
        assert empty.startswith("No top images logged in") and NO_TOP in empty
        assert "embedding_probe" in empty and "top_example_layers" in empty


def test_the_tab_opened_from_a_filters_link_shows_the_filter_without_scrolling(server, browser):
    with plugin_page(browser, server, RUN) as (_, frame):
        chosen = choose_kernel(frame, "features.conv2", {"x": 20, "y": 6})
        frame.locator(".filter-detail .open-top").scroll_into_view_if_needed()
        frame.click(".filter-detail .open-top")
        expected = [e["id"] for e in _top(server, "features.conv2", chosen)["examples"]]
        assert _shown(frame, "features.conv2", chosen) == expected
        assert frame.get_attribute("button[data-view=top_images]", "aria-selected") == "true"
        assert frame.input_value("input.top-filter") == str(chosen)
        assert _in_viewport(frame, ".top-panel .top-detail"), "the filter's top images are not in view"
        frame.wait_for_function(
            "f => decodeURIComponent(location.hash).includes('view=top_images') && location.hash.includes('filter=' + f)",
            arg=str(chosen),
        )


def test_the_tab_opened_from_a_pattern(server, browser):
    with plugin_page(browser, server, RUN) as (_, frame):
        frame.click("button[data-view=patterns]")
        frame.wait_for_selector("canvas.pattern-grid[data-step]")
        idle(frame)
        frame.click("canvas.pattern-grid", position={"x": 8, "y": 8})
        frame.wait_for_selector(".pattern-top .open-top")
        frame.locator(".pattern-top .open-top").scroll_into_view_if_needed()
        frame.click(".pattern-top .open-top")
        expected = [e["id"] for e in _top(server, "features.conv2", 0)["examples"]]
        assert _shown(frame, "features.conv2", 0) == expected
        assert frame.get_attribute("button[data-view=top_images]", "aria-selected") == "true"
        assert _in_viewport(frame, ".top-panel .top-detail"), "the filter's top images are not in view"
