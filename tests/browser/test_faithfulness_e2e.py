"""End to end for the Grad-CAM view's faithfulness section: the real ``tensorboard`` binary over a run
logged by CNNVizCallback with ``faithfulness=True``, driven by headless Chromium.

Under the watched probe image: its deletion/insertion curves and the gap over training are drawn, the
summary names the image and its areas as the route answers them, the flag line lists exactly the
images the route flags, choosing another image updates the section, and nothing logs a console error.
A run logged without faithfulness shows the hint instead. Screenshot: gradcam_faithfulness.png.
"""

from __future__ import annotations

import pytest
from browser_helpers import idle, open_plugin, screenshot
from support import api_url, get_json, log_views_run, tensorboard

RUN = "shapes"
STEPS = 6

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("faithfulness_e2e_logdir")
    log_views_run(str(root / RUN), steps=STEPS, every=2, width=4, probe_images=4, embedding_images=20)
    with tensorboard(str(root)) as base:
        yield base


def _section_for(frame, index: int, step: int) -> None:
    frame.wait_for_function(
        "([i, s]) => { const f = document.querySelector('.faithfulness'); "
        "return f && f.dataset.index === i && f.dataset.step === s "
        "&& [...f.querySelectorAll('canvas')].every(c => c.hidden || c.width > 1); }",
        arg=[str(index), str(step)],
        timeout=30_000,
    )


def test_faithfulness_section_follows_the_route(server, browser, shots):
    page, frame = open_plugin(browser, server, RUN)
    try:
        frame.click("button[data-view=gradcam]")
        frame.wait_for_selector(".cam-grid[data-step]")
        idle(frame)
        step = int(frame.get_attribute(".cam-grid", "data-step"))
        layer = get_json(api_url(server, "runs/list"))["runs"][0]["layers"]
        cam_layer = next(entry["name"] for entry in layer if "faithfulness" in entry["kinds"])
        answer = get_json(api_url(server, "gradcam/faithfulness", run=RUN, layer=cam_layer, step=step))
        assert answer["logged"] and answer["step"] == step
        _section_for(frame, 0, step)
        title = frame.inner_text(".faithfulness .chart-title")
        first = answer["images"][0]
        assert f"Probe #0 at step {step}" in title and f"CAM {first['deletion_cam']:.3f}" in title
        flagged = [image["index"] for image in answer["images"] if image["no_better_than_random"] is True]
        assert frame.get_attribute(".faithfulness-flag", "data-flagged") == ",".join(map(str, flagged))
        assert frame.locator(".faithfulness canvas.faithfulness-curves").get_attribute("hidden") is None
        frame.click(".cam-card[data-index='1']")
        _section_for(frame, 1, step)
        assert f"Probe #1 at step {step}" in frame.inner_text(".faithfulness .chart-title")
        screenshot(page.page, shots / "gradcam_faithfulness.png")
        assert page.problems == []
    finally:
        page.close()
