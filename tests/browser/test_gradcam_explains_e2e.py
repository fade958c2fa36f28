"""End to end for "every picture explains itself" in the Grad-CAM view (#16): the real ``tensorboard``
binary over a hand-written run, driven by headless Chromium.

The run: 8 logged steps of 2 probe images (64 px) with 2 x 2 raw maps of ``layer4``; image 1 (a star) is
predicted a square; at step 50 image 0's CAM peak explodes to 3.8e9. The cards name the class each map
explains and the predicted one (marked when they differ), the view says the predicted class's map is not
logged, the map's native resolution is stated, a colour bar is drawn with the scale's numbers, the
exploding step is named and marked on the strip, and in the raw colouring the other steps are not blank
(before, the shared scale was the largest peak, 3.8e9, and every other map drew as one flat colour)."""

from __future__ import annotations

import pytest
from browser_helpers import idle, open_plugin, screenshot
from support import (
    CAM_STEPS,
    EXPLODING_STEP,
    api_url,
    exploding_cam_run,
    flat_png,
    get_json,
    tensorboard,
    write_run,
)

RUN = "exploding"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# distinct RGBA values on a card's heat-map canvas (a flat colour is 1)
DISTINCT_JS = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = new Set(); for (let i = 0; i < d.length; i += 4) seen.add(d.slice(i, i + 4).join(','));
  return seen.size; }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("gradcam_explains_logdir"))
    by_step = exploding_cam_run(
        lambda step: [flat_png(40 + step, 64), flat_png(90 + step, 64)],
        [flat_png(120, 64), flat_png(200, 64)],
        [0, 2],
    )
    write_run(root, RUN, by_step)
    with tensorboard(root) as base:
        yield base


def _at_step(frame, step: int, colouring: str) -> None:
    frame.wait_for_function(
        "([s, c]) => { const g = document.querySelector('.cam-grid'); "
        "return g && g.dataset.step === s && g.dataset.colouring === c; }",
        arg=[str(step), colouring],
        timeout=30_000,
    )
    idle(frame)


def test_cards_colour_bar_resolution_and_outlier_step(server, browser, shots):
    page, frame = open_plugin(browser, server, RUN)
    try:
        frame.click("button[data-view=gradcam]")
        _at_step(frame, CAM_STEPS[-1], "overlay")
        # the class each map explains against the predicted one
        first = frame.inner_text(".cam-card[data-index='0'] .cam-caption")
        assert "explains circle (label)" in first and "predicted circle (90%)" in first
        second = frame.inner_text(".cam-card[data-index='1'] .cam-caption")
        assert "explains star (label)" in second and "predicted square (60%)" in second
        assert frame.locator(".cam-card[data-index='1'] .cam-explains.differ").count() == 1
        assert frame.locator(".cam-card[data-index='0'] .cam-explains.differ").count() == 0
        explain = frame.inner_text(".cam-explain")
        assert "Maps explain the label; the predicted class's map is not logged (1 image" in explain
        # native resolution and the outlier step, as the route answers them
        assert "layer4: 2×2 map, upsampled to 64×64 for display" in explain
        answer = get_json(api_url(server, "gradcam/maps", run=RUN, layer="layer4", step=CAM_STEPS[-1]))
        assert [o["step"] for o in answer["outlier_steps"]] == [EXPLODING_STEP]
        assert f"step {EXPLODING_STEP}: peak 3.8e9, above the shared scale" in explain
        # the colour bar of the logged overlay: this map's own range
        assert frame.get_attribute(".cam-colourbar", "data-ticks") == "min,peak 8"
        # the selected image's detail, then the strip marks the exploding step
        frame.click(".cam-card[data-index='1']")
        frame.wait_for_function(
            "() => document.querySelector('.cam-detail').textContent.startsWith('Probe #1 (star)')"
        )
        detail = frame.inner_text(".cam-detail")
        assert "explains star (label) · predicted square (60%) — they differ" in detail
        frame.click(".cam-card[data-index='0']")
        frame.wait_for_function(
            "n => document.querySelectorAll('.watch-item').length === n", arg=len(CAM_STEPS)
        )
        frame.wait_for_selector(f".watch-item.outlier[data-step='{EXPLODING_STEP}']")
        assert frame.locator(".watch-item.outlier").count() == 1
        # raw colouring on the robust shared scale: 0..8 for image 0, numbers on the bar, jet from blue to red
        frame.click(".colouring button[data-value=raw]")
        _at_step(frame, CAM_STEPS[-1], "raw")
        assert answer["scale"] == [8.0, 4.0]
        assert frame.get_attribute(".cam-colourbar", "data-ticks") == "0,2,4,6,8"
        assert "0 – 8" in frame.inner_text(".cam-bar-title")
        left, right = frame.eval_on_selector(
            ".cam-colourbar",
            "c => { const x = c.getContext('2d'); const y = Math.round(c.height * 0.15);"
            "return [[...x.getImageData(Math.round(c.width * 0.06), y, 1, 1).data],"
            " [...x.getImageData(Math.round(c.width * 0.94), y, 1, 1).data]]; }",
        )
        assert left[2] > 100 and left[0] < 60, f"the low end is not blue: {left}"
        assert right[0] > 100 and right[2] < 60, f"the high end is not red: {right}"
        # every ordinary step's raw maps are drawn (not one flat colour); the exploding one is clipped
        for step in (0, 10, 70):
            frame.click(f".watch-item[data-step='{step}']")
            _at_step(frame, step, "raw")
            for index in (0, 1):
                distinct = frame.eval_on_selector(
                    f".cam-card[data-index='{index}'] canvas.cam-overlay", DISTINCT_JS
                )
                assert distinct > 10, f"step {step}, image {index}: a flat heat-map ({distinct} colours)"
        frame.click(f".watch-item[data-step='{EXPLODING_STEP}']")
        _at_step(frame, EXPLODING_STEP, "raw")
        clipped = frame.inner_text(".cam-card[data-index='0'] .cam-clipped")
        assert clipped == "peak 3.8e9 > scale 8"
        assert frame.locator(".cam-card[data-index='1'] .cam-clipped").count() == 0
        screenshot(page.page, shots / "gradcam_explains.png")
        assert page.problems == []
    finally:
        page.close()
