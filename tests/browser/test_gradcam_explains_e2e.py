"""End to end for "every picture explains itself" in the Grad-CAM view (#16): the real ``tensorboard``
binary over a hand-written run, driven by headless Chromium.

The run: 8 logged steps of 2 probe images (64 px) with 2 x 2 raw maps of ``layer4``; image 1 (a star) is
predicted a square; at step 50 image 0's CAM peak explodes to 3.8e9. The cards name the class each map
explains and the predicted one (marked when they differ), the view says the predicted class's map is not
logged, the map's native resolution is stated, a colour bar is drawn with the scale's numbers, the
exploding step is named and marked on the strip, and in the raw colouring the other steps are not blank
(before, the shared scale was the largest peak, 3.8e9, and every other map drew as one flat colour)."""

from __future__ import annotations

import numpy as np
import pytest
from browser_helpers import idle, open_plugin, screenshot
from support import (
    CAM_CLASSES,
    CAM_INFO,
    CAM_STEPS,
    EXPLODING_STEP,
    api_url,
    exploding_cam_run,
    flat_png,
    get_json,
    tensorboard,
    write_run,
)

from tb_cnnviz import metadata, summary

RUN = "exploding"
# A run as the callback writes it since #18 and #16: raw maps and no overlay PNG (the view draws the overlays),
# and the maps of each image's predicted class: image 1 (a star) is predicted a square, its square map peaks
# in the other corner; image 0 is predicted right, its two maps are one
DRAWN = "drawn"
DRAWN_STEPS = [0, 10, 20]
PREDICTED_CLASS_RUN = "predicted"

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
    write_run(root, DRAWN, _drawn_run())
    with tensorboard(root) as base:
        yield base


def _maps(step: int) -> tuple[np.ndarray, np.ndarray]:
    """The label's maps and the predicted class's of the drawn run: 4 x 4, one hot corner each."""
    k = DRAWN_STEPS.index(step) + 1
    label = np.zeros((2, 4, 4), np.float32)
    label[0, 0, 0] = label[1, 0, 3] = k  # image 0 top left, image 1 (star) top right
    label[:, 3, :] = 0.1 * k
    predicted = label.copy()
    predicted[1] = 0.1 * k
    predicted[1, 3, 0] = 2 * k  # the square's evidence: bottom left
    return label, predicted


def _drawn_run() -> dict:
    by_step = {}
    for step in DRAWN_STEPS:
        label, predicted = _maps(step)
        by_step[step] = [
            summary.tensor_summary(metadata.GRADCAM_MAPS, "layer4", label),
            summary.tensor_summary(
                metadata.GRADCAM_INFO,
                "layer4",
                CAM_INFO,
                columns=["target", "predicted", "probability", "target_probability"],
            ),
            summary.tensor_summary("gradcam_predicted_maps", "layer4", predicted),
        ]
    by_step[0].append(
        summary.blob_summary(
            metadata.PROBE,
            None,
            [flat_png(60, 64), flat_png(200, 64)],
            labels=[0, 2],
            class_names=CAM_CLASSES,
        )
    )
    return by_step


def _grid_at(frame, **dataset: str) -> None:
    """Wait until the card grid's ``data-*`` attributes have the values of ``dataset``, then until nothing loads."""
    frame.wait_for_function(
        "d => { const g = document.querySelector('.cam-grid'); "
        "return !!g && Object.entries(d).every(([k, v]) => g.dataset[k] === v); }",
        arg=dataset,
        timeout=30_000,
    )
    idle(frame)


def _at_step(frame, step: int, colouring: str) -> None:
    _grid_at(frame, step=str(step), colouring=colouring)


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


# the colour of a card's heat-map canvas at a fraction (x, y) of its size, and whether it was drawn
PIXEL_JS = """([c, x, y]) => [...c.getContext('2d').getImageData(Math.floor(c.width * x), Math.floor(c.height * y), 1, 1).data]"""


def _pixel(frame, index: int, x: float, y: float) -> list:
    return frame.eval_on_selector(
        f".cam-card[data-index='{index}'] canvas.cam-overlay",
        "(c, a) => (" + PIXEL_JS + ")([c, ...a])",
        [x, y],
    )


def _drawn_at(frame, step: int, explains: str) -> None:
    _grid_at(frame, step=str(step), explains=explains, overlays="drawn")


def test_overlays_drawn_from_maps_and_the_predicted_class_explained(server, browser, shots):
    """No overlay PNG logged: every card's overlay is drawn from its map (red at the map's peak, blue where it is
    0); "Explain: predicted class" redraws image 1 from its square map (peak bottom left) and says so, image 0
    (predicted right) stays the same; the strip is drawn from the chosen class's maps too; a run without the
    predicted class's maps offers no switch."""
    page, frame = open_plugin(browser, server, DRAWN)
    try:
        frame.click("button[data-view=gradcam]")
        last = DRAWN_STEPS[-1]
        _drawn_at(frame, last, "target")
        assert frame.locator(".explain-field").is_visible()
        assert "Explain: predicted class" in frame.inner_text(".cam-explain")
        # drawn over the probe image: the hot corner red, the cold middle blue (jet at 0.5 over grey 60 / 200)
        for index, hot in ((0, (0.05, 0.05)), (1, (0.95, 0.05))):
            assert (
                frame.get_attribute(f".cam-card[data-index='{index}'] canvas.cam-overlay", "data-drawn")
                == "true"
            )
            red = _pixel(frame, index, *hot)
            blue = _pixel(frame, index, 0.5, 0.4)
            assert red[0] > red[2] + 30 and blue[2] > blue[0] + 30, (index, red, blue)
        first = frame.inner_text(".cam-card[data-index='1'] .cam-caption")
        assert "explains star (label)" in first
        before = [_pixel(frame, i, 0.05, 0.95) for i in (0, 1)]
        # explain the predicted class: image 1 is the square's map now, hot bottom left
        frame.click(".explain-choice button[data-value=predicted]")
        _drawn_at(frame, last, "predicted")
        caption = frame.inner_text(".cam-card[data-index='1'] .cam-caption")
        assert "explains square (predicted)" in caption and "explains star" not in caption
        assert frame.locator(".cam-card[data-index='1'] .cam-explains.differ").count() == 0
        assert "Maps explain each image's predicted class (1 image predicted otherwise" in frame.inner_text(
            ".cam-explain"
        )
        after = [_pixel(frame, i, 0.05, 0.95) for i in (0, 1)]
        assert after[0] == before[0], "image 0 is predicted right: the same map"
        assert after[1][0] > after[1][2] + 30 and before[1][2] > before[1][0] + 30, (before[1], after[1])
        # the strip of image 1 over training is drawn from its predicted class's maps
        frame.click(".cam-card[data-index='1']")
        # image 0's strip (selected before) also has 3 drawn thumbnails: wait for image 1's detail first
        frame.wait_for_function(
            "() => (document.querySelector('.cam-detail')?.innerText || '').startsWith('Probe #1')"
        )
        frame.wait_for_function(
            "n => document.querySelectorAll('.watch-thumb[data-drawn=true]').length === n", arg=3
        )
        detail = frame.inner_text(".cam-detail")
        assert "explains square (predicted)" in detail and "they differ" not in detail
        screenshot(page.page, shots / "gradcam_predicted.png")
        # back to the label's maps
        frame.click(".explain-choice button[data-value=target]")
        _drawn_at(frame, last, "target")
        assert _pixel(frame, 1, 0.05, 0.95) == before[1]
        # a run without the predicted class's maps (the exploding run, written before #16): no switch
        frame.select_option("select.run-a", RUN)
        _grid_at(frame, overlays="logged")
        assert "the predicted class's map is not logged" in frame.inner_text(".cam-explain")
        assert frame.locator(".explain-field").is_hidden()
        assert page.problems == []
    finally:
        page.close()
