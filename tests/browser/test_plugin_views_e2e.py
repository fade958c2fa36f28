"""End to end for the Grad-CAM, Patterns and Embedding views: the real ``tensorboard`` binary
(default Rust data server) over a logdir written by CNNVizCallback while a small CNN trains,
driven by headless Chromium.

In the browser: each new view renders; its step slider changes what is drawn; the Grad-CAM
opacity slider changes the overlay's opacity, a probe image's "over training" strip moves the
step; a pattern opens beside its kernel with its activation rate and a link to its Top images
tab; the embedding map shows a point's thumbnail on hover, zooms, hides a class from its legend and
animates between steps; the Filters view links to Top images; a hostile run name stays text;
nothing logs a console error (light and dark theme). Screenshots: gradcam.png, patterns.png,
top_images.png, embedding.png into ``$CNNVIZ_SCREENSHOTS`` (scripts/screenshots.sh: docs/screenshots).

``$CNNVIZ_VIEWS_STEPS`` trains longer for nicer screenshots (the script sets it).
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from browser_helpers import XSS_RUN, choose_kernel, idle, plugin_page, screenshot, signature, slider_step
from support import api_url, get_json, log_views_run, serving
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import metadata, summary

RUN = "shapes"
STEPS = int(os.environ.get("CNNVIZ_VIEWS_STEPS", "24"))
EVERY = max(1, STEPS // 4)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("views_e2e_logdir")
    log_views_run(
        str(root / RUN),
        steps=STEPS,
        every=EVERY,
        width=8,
        probe_images=8,
        embedding_images=240,
        embedding_method="tsne",
        pattern_channels=8,
        pattern_steps=32,
        pattern_size=32,
        attributions=("saliency", "occlusion"),
        lr=0.05,
        batch_size=32,
    )
    png = summary.encode_png(np.full((8, 8, 3), 90, np.uint8))
    writer = SummaryWriter(str(root / XSS_RUN))
    for step in (1, 2):
        summary.write(
            writer,
            [
                summary.blob_summary(metadata.GRADCAM, "<b>layer</b>", [png]),
                summary.tensor_summary(
                    metadata.GRADCAM_INFO, "<b>layer</b>", np.array([[0, 1, 0.5, 0.1]], np.float32)
                ),
            ],
            step,
        )
    writer.close()
    return str(root)


@pytest.fixture(scope="module")
def server(logdir):
    # every logged step reaches the plugin (more than TensorBoard's default sampling for blobs is not needed here)
    with serving(logdir, {RUN, XSS_RUN}, series=(RUN, "embedding", "classifier", STEPS // EVERY)) as base:
        yield base


def _set_range(frame, selector: str, value: float) -> None:
    frame.eval_on_selector(
        selector,
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); }",
        value,
    )


def _overlay_signature(frame) -> str:
    return frame.evaluate(
        "() => [...document.querySelectorAll('.cam-card canvas.cam-overlay')].map(c => c.toDataURL().slice(-64)).join('|')"
    )


def _exercise_gradcam(frame, base: str) -> None:
    frame.click("button[data-view=gradcam]")
    frame.wait_for_selector(".cam-grid[data-step]")
    idle(frame)
    last = slider_step(frame)
    assert last == STEPS
    frame.wait_for_function("s => document.querySelector('.cam-grid').dataset.step === s", arg=str(last))
    assert frame.locator(".cam-card").count() == 8
    answer = get_json(api_url(base, "gradcam/step", run=RUN, layer="features", step=last))
    wrong = [image["index"] for image in answer["images"] if image["misclassified"]]
    assert frame.locator(".cam-card.misclassified").count() == len(wrong)
    first_caption = frame.inner_text(".cam-card[data-index='0'] .cam-caption")
    names = answer["class_names"]
    assert (
        names[answer["images"][0]["label"]] in first_caption
        and names[answer["images"][0]["predicted"]] in first_caption
    )
    assert re.search(r"\d+%", first_caption)
    before = _overlay_signature(frame)
    frame.press(".step-range", "Home")
    frame.wait_for_function("() => document.querySelector('.cam-grid').dataset.step === '1'")
    idle(frame)
    assert _overlay_signature(frame) != before, "moving the step slider did not change the heat-maps"
    frame.press(".step-range", "End")
    frame.wait_for_function("s => document.querySelector('.cam-grid').dataset.step === s", arg=str(last))
    # opacity: CSS opacity of the heat-map over the probe image
    assert frame.eval_on_selector(".cam-overlay", "c => getComputedStyle(c).opacity") == "0.6"
    _set_range(frame, ".opacity-range", 0.25)
    assert frame.eval_on_selector(".cam-overlay", "c => getComputedStyle(c).opacity") == "0.25"
    assert frame.inner_text(".opacity-readout") == "25%"
    _set_range(frame, ".opacity-range", 0.7)
    # raw CAM on a shared scale is drawn in the browser from the logged maps
    at = _overlay_signature(frame)
    frame.click(".colouring button[data-value=raw]")
    frame.wait_for_selector(".cam-grid[data-colouring=raw]")
    idle(frame)
    assert _overlay_signature(frame) != at
    frame.click(".colouring button[data-value=overlay]")
    frame.wait_for_selector(".cam-grid[data-colouring=overlay]")
    # only the misclassified ones
    frame.click(".only button[data-value=wrong]")
    frame.wait_for_function(
        "n => document.querySelectorAll('.cam-card').length === n || (n === 0 && document.querySelector('.cam-grid .hint'))",
        arg=len(wrong),
    )
    frame.click(".only button[data-value=all]")
    frame.wait_for_function("() => document.querySelectorAll('.cam-card').length === 8")
    # watch one image over training: its strip has every logged step, a click moves the slider
    frame.click(".cam-card[data-index='2']")
    frame.wait_for_function("() => document.querySelector('.watch-title').textContent.startsWith('Probe #2')")
    frame.wait_for_function(
        "n => document.querySelectorAll('.watch-item').length === n", arg=STEPS // EVERY + 1
    )
    frame.click(".watch-item[data-step='1']")
    frame.wait_for_function(
        "() => document.querySelector('.cam-grid').dataset.step === '1' && document.querySelector('.watch-item.on').dataset.step === '1'"
    )
    assert slider_step(frame) == 1
    frame.wait_for_selector(
        ".attribution-figures figure:nth-child(4)"
    )  # image, Grad-CAM, saliency, occlusion
    assert "saliency" in frame.inner_text(".attribution-row") and "occlusion" in frame.inner_text(
        ".attribution-row"
    )
    frame.press(".step-range", "End")
    idle(frame)


def _exercise_patterns(frame) -> None:
    frame.click("button[data-view=patterns]")
    frame.wait_for_selector("canvas.pattern-grid[data-step]")
    idle(frame)
    last = slider_step(frame)
    before = signature(frame, "canvas.pattern-grid")
    frame.press(".step-range", "Home")
    first = slider_step(frame)
    assert first < last
    frame.wait_for_function(
        "s => document.querySelector('canvas.pattern-grid').dataset.step === s", arg=str(first)
    )
    assert signature(frame, "canvas.pattern-grid") != before, (
        "moving the step slider did not change the patterns"
    )
    frame.press(".step-range", "End")
    frame.wait_for_function(
        "s => document.querySelector('canvas.pattern-grid').dataset.step === s", arg=str(last)
    )
    frame.click("canvas.pattern-grid", position={"x": 8, "y": 8})
    frame.wait_for_selector(".pattern-detail[data-filter='0'] canvas.kernel-of-pattern")
    assert re.search(r"-?\d+\.\d{3} at step \d+", frame.inner_text(".reached-value"))
    assert re.search(r"\d\.\d{3} at step \d+ \(window \d+ steps\)", frame.inner_text(".rate-value"))
    assert frame.inner_text(".dead-status") in ("alive", "dead (never positive in the window)")
    frame.wait_for_selector(".pattern-top .top-example canvas")
    assert frame.locator(".pattern-top .top-example").count() == 4  # top_k


def _exercise_embedding(frame) -> None:
    frame.wait_for_selector("canvas.scatter[data-step]")
    idle(frame)
    frame.evaluate("() => window.scrollTo(0, 0)")
    frame.wait_for_function("() => document.querySelector('canvas.scatter').dataset.animating !== 'true'")
    last = slider_step(frame)
    total = int(frame.get_attribute("canvas.scatter", "data-visible"))
    assert total == 240
    before = signature(frame, "canvas.scatter")
    # hover a point: its thumbnail and label appear
    x, y = frame.evaluate("() => document.querySelector('canvas.scatter').pointAt(5)")
    box = frame.locator("canvas.scatter").bounding_box()
    frame.page.mouse.move(box["x"] + x, box["y"] + y)
    frame.wait_for_selector(".scatter-tip:not([hidden]) canvas.tip-thumb")
    tip = frame.inner_text(".scatter-tip")
    hovered = int(frame.get_attribute("canvas.scatter", "data-hover"))
    assert f"image #{hovered}" in tip and "label:" in tip and "predicted:" in tip
    frame.page.mouse.move(box["x"] + 2, box["y"] + 2)
    frame.wait_for_selector(".scatter-tip", state="hidden")
    # the legend hides and shows a class
    first = frame.locator(".legend-item").first
    count = int(first.locator(".legend-count").inner_text())
    first.click()
    frame.wait_for_function(
        "n => Number(document.querySelector('canvas.scatter').dataset.visible) === n", arg=total - count
    )
    assert "off" in frame.get_attribute(".legend-item >> nth=0", "class")
    frame.click(".legend-item >> nth=0")
    frame.wait_for_function(
        "n => Number(document.querySelector('canvas.scatter').dataset.visible) === n", arg=total
    )
    # wheel zooms about the cursor, double-click resets
    frame.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    frame.page.mouse.wheel(0, -400)
    frame.wait_for_function("() => Number(document.querySelector('canvas.scatter').dataset.zoom) > 1.5")
    assert signature(frame, "canvas.scatter") != before
    frame.dblclick("canvas.scatter", position={"x": 3, "y": 3})
    frame.wait_for_function("() => document.querySelector('canvas.scatter').dataset.zoom === '1.000'")
    # a drag pans
    box = frame.locator("canvas.scatter").bounding_box()
    frame.page.mouse.move(box["x"] + 100, box["y"] + 100)
    frame.page.mouse.down()
    frame.page.mouse.move(box["x"] + 160, box["y"] + 140, steps=4)
    frame.page.mouse.up()
    assert signature(frame, "canvas.scatter") != before
    frame.dblclick("canvas.scatter", position={"x": 3, "y": 3})
    assert signature(frame, "canvas.scatter") == before
    # colour by prediction
    frame.click(".colour-by button[data-value=predicted]")
    assert signature(frame, "canvas.scatter") != before
    frame.click(".colour-by button[data-value=label]")
    # the step slider animates to another map
    frame.press(".step-range", "Home")
    first_step = slider_step(frame)
    assert first_step < last
    frame.wait_for_function(
        "s => document.querySelector('canvas.scatter').dataset.step === s", arg=str(first_step)
    )
    frame.wait_for_function("() => document.querySelector('canvas.scatter').dataset.animating === 'false'")
    assert signature(frame, "canvas.scatter") != before, "moving the step slider did not move the points"
    frame.press(".step-range", "End")
    frame.wait_for_function(
        "s => document.querySelector('canvas.scatter').dataset.step === s && document.querySelector('canvas.scatter').dataset.animating === 'false'",
        arg=str(last),
    )
    assert signature(frame, "canvas.scatter") == before
    assert frame.is_visible(".controls .open-top")  # the map's top images are a tab of their own


def test_new_views_in_the_browser_and_screenshots(server, browser, shots):
    base = server
    with plugin_page(browser, base, RUN) as (page, frame):
        _exercise_gradcam(frame, base)
        frame.click(".cam-card[data-index='1']")
        idle(frame)
        frame.wait_for_function(
            "() => document.querySelector('.watch-title').textContent.startsWith('Probe #1')"
        )
        frame.wait_for_function("() => [...document.querySelectorAll('.watch-item')].length > 0")
        frame.wait_for_function(
            "() => [...document.querySelectorAll('canvas.attribution-map, canvas.watch-thumb')].every(c => c.dataset.drawn === 'true')"
        )
        screenshot(page.page, shots / "gradcam.png")

        _exercise_patterns(frame)
        screenshot(page.page, shots / "patterns.png")
        # Patterns -> Top images of the same filter, in its own tab
        frame.click(".pattern-top .open-top")
        frame.wait_for_selector(".top-panel[data-layer='features.conv2'][data-filter='0']")
        assert frame.get_attribute("button[data-view=top_images]", "aria-selected") == "true"
        frame.select_option("select.layer", "features.conv3")  # larger receptive fields for the picture
        frame.fill("input.top-filter", "2")
        frame.press("input.top-filter", "Enter")
        frame.wait_for_selector(
            ".top-panel[data-layer='features.conv3'][data-filter='2'] .top-example canvas"
        )
        idle(frame)
        screenshot(page.page, shots / "top_images.png")

        frame.click("button[data-view=embedding]")
        _exercise_embedding(frame)
        frame.evaluate("() => window.scrollTo(0, 0)")
        x, y = frame.evaluate("() => document.querySelector('canvas.scatter').pointAt(17)")
        box = frame.locator("canvas.scatter").bounding_box()
        frame.page.mouse.move(box["x"] + x, box["y"] + y)
        frame.wait_for_selector(".scatter-tip:not([hidden]) canvas.tip-thumb")
        screenshot(page.page, shots / "embedding.png")

        # Filters -> Top images
        chosen = choose_kernel(frame, "features.conv2", {"x": 20, "y": 6})
        frame.click(".filter-detail .open-top")
        frame.wait_for_selector(f".top-panel[data-layer='features.conv2'][data-filter='{chosen}']")
        assert frame.get_attribute("button[data-view=top_images]", "aria-selected") == "true"
        # the hostile run renders as text in the Grad-CAM view
        frame.click("button[data-view=gradcam]")
        frame.select_option("select.run-a", XSS_RUN)
        frame.wait_for_selector(".cam-grid[data-step='2']")
        assert frame.inner_text(".panel-title") == XSS_RUN
        assert frame.evaluate("() => document.querySelectorAll('img').length") == 0


def test_new_views_in_dark_mode_without_errors(server, browser):
    with plugin_page(browser, server, RUN, scheme="dark") as (_, frame):
        for view, ready in (
            ("gradcam", ".cam-grid[data-step]"),
            ("patterns", "canvas.pattern-grid[data-step]"),
            ("embedding", "canvas.scatter[data-step]"),
            ("top_images", ".top-panel[data-filter] .top-example canvas"),
        ):
            frame.click(f"button[data-view={view}]")
            frame.wait_for_selector(ready)
            idle(frame)
        background = frame.eval_on_selector(".panel", "p => getComputedStyle(p).backgroundColor")
        assert background == "rgb(43, 44, 47)", background  # the dark panel colour


def test_views_say_what_to_log_when_a_run_has_none_of_their_data(server, browser):
    with plugin_page(browser, server, RUN) as (_, frame):
        frame.select_option("select.run-a", XSS_RUN)
        for view, text in (
            ("patterns", "pattern_layers"),
            ("embedding", "embedding_probe"),
            ("top_images", "top_example_layers"),
        ):
            frame.click(f"button[data-view={view}]")
            frame.wait_for_selector(".message.empty")
            assert text in frame.inner_text(".message.empty")
