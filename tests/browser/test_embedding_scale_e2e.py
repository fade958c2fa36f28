"""End to end at scale: the Embedding view with 50,000 points (5x the Projector's 10,000), through the real
``tensorboard`` binary and headless Chromium (``--disable-gpu``, software rendering).

The run is synthetic and written in seconds with the project's summary functions: two 50,000-point maps
(10 Gaussian clusters, then turned by 37 degrees; labels, predictions with 5% wrong) and the sprites of
50,000 8 x 8 images, whose 1,024-thumbnail atlases (``snapshots.sprites``) are 49 PNGs.

- Frame rate: a scripted drag pan and a wheel zoom are dispatched to the map's canvas once per animation
  frame for 2 s each, and ``requestAnimationFrame`` timestamps give the frames per second; every frame
  must have shown the map moved (the view's frame counter grows by one a frame) and the points must be
  stamped again once each gesture ends.
- The step slider animates the 50,000 points to the run's other map (printed: frames in its 450 ms).
- Thumbnails: opening the map requests no atlas; hovering a point loads the one atlas that holds its
  thumbnail; hovering another image of that atlas loads nothing more; one of another atlas loads one more.
"""

from __future__ import annotations

import os
import statistics

import numpy as np
import pytest
import torch
from browser_helpers import idle, open_plugin
from support import api_url, get_json, serving, write_run

from tb_cnnviz import metadata, snapshots, summary
from tb_cnnviz.snapshots.inputs import Inputs

RUN = "fifty_thousand"
POINTS = 50_000
CLASSES = 10
STEPS = (5, 10)  # two maps: the slider animates 50,000 points from one to the other

# Frames per second measured on this 2-core machine shared with 4-5 other sessions, headless Chromium with
# --disable-gpu, 680 x 480 map, 3 runs at load average 4.9-9.3: pan 60.0 and zoom 60.0 fps every time (the
# display's rate: p95 frame interval 16.8 ms, longest 16.8 ms, no frame dropped), and a full stamping of
# the 50,000 points (once a gesture ends) 29-40 ms. Drawn as before (a canvas path of 50,000 arcs per
# event), one frame took 300-450 ms in the same Chromium: 2-3 fps. The goal is 30 fps.
MIN_FPS = 30

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def fifty_thousand_points(seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """[POINTS, 3] float32 (x, y, predicted class) in 10 clusters, and the labels (5% of them not predicted)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, POINTS)
    angle = 2 * np.pi * labels / CLASSES
    xy = np.stack([30 * np.cos(angle), 30 * np.sin(angle)], axis=1) + rng.normal(0, 6, (POINTS, 2))
    predicted = np.where(rng.random(POINTS) < 0.05, (labels + 1) % CLASSES, labels)
    points = np.concatenate([xy, predicted[:, None]], axis=1).astype(np.float32)
    return points, [int(v) for v in labels]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("embedding_scale_e2e")
    points, labels = fifty_thousand_points()
    # 8 x 8 images whose colour encodes the image id, so that a thumbnail shows which image it is
    ids = torch.arange(POINTS, dtype=torch.float32)
    images = torch.stack([(ids % 256) / 255, (ids // 256 % 256) / 255, torch.zeros(POINTS)], dim=1)
    images = images[:, :, None, None].expand(POINTS, 3, 8, 8)
    later = points.copy()
    later[:, :2] = points[:, :2] @ np.array([[0.8, -0.6], [0.6, 0.8]], np.float32)  # turned by 37 degrees
    maps = {
        step: summary.tensor_summary(
            metadata.EMBEDDING,
            "classifier",
            values,
            method="tsne",
            labels=labels,
            class_names=[f"class {c}" for c in range(CLASSES)],
        )
        for step, values in zip(STEPS, (points, later))
    }
    write_run(
        str(root),
        RUN,
        {STEPS[0]: [maps[STEPS[0]], *snapshots.sprites(Inputs(images=images))], STEPS[1]: [maps[STEPS[1]]]},
    )
    return str(root)


@pytest.fixture(scope="module")
def server(logdir):
    with serving(logdir, {RUN}, series=(RUN, "embedding", "classifier", len(STEPS))) as base:
        yield base


# One gesture, dispatched from requestAnimationFrame for `ms`: every frame moves the map by one event
# (a drag's pointermove or a wheel notch), and the frame's timestamp is kept.
GESTURE_JS = """
async ({ kind, ms }) => {
  const canvas = document.querySelector("canvas.scatter");
  const box = canvas.getBoundingClientRect();
  const cx = box.left + box.width / 2;
  const cy = box.top + box.height / 2;
  const before = canvas.drawCounts();
  const times = [];
  await new Promise((done) => {
    const frame = (now) => {
      times.push(now);
      const i = times.length;
      if (kind === "pan") {
        const x = cx + 120 * Math.sin(i / 15);
        const y = cy + 80 * Math.sin(i / 23);
        canvas.dispatchEvent(new PointerEvent("pointermove", { clientX: x, clientY: y, pointerId: 1,
          pointerType: "mouse", buttons: 1, bubbles: true }));
      } else {
        const deltaY = Math.floor(i / 20) % 2 ? 60 : -60; // 20 notches in, 20 out, ...
        canvas.dispatchEvent(new WheelEvent("wheel", { clientX: cx + 40, clientY: cy - 30, deltaY,
          bubbles: true, cancelable: true }));
      }
      if (now - times[0] < ms) requestAnimationFrame(frame);
      else done();
    };
    requestAnimationFrame(frame);
  });
  const after = canvas.drawCounts();
  return { times, frames: after.frames - before.frames, renders: after.renders - before.renders };
}
"""


def _gesture(frame, kind: str, ms: int = 2000) -> dict:
    result = frame.evaluate(GESTURE_JS, {"kind": kind, "ms": ms})
    times = result["times"]
    gaps = np.diff(times)
    result["fps"] = 1000 * (len(times) - 1) / (times[-1] - times[0])
    result["p95_ms"] = float(np.percentile(gaps, 95))
    result["longest_ms"] = float(gaps.max())
    result["count"] = len(times)
    return result


def _hover(frame, index: int) -> list[int]:
    """Move the mouse onto point ``index``, wait for its thumbnail (its atlas loaded); the thumbnail's
    centre pixel (the image's colour: red = id % 256, green = id // 256)."""
    at = frame.evaluate(f"() => document.querySelector('canvas.scatter').pointAt({index})")
    assert at is not None, f"point {index} is not in view"
    box = frame.locator("canvas.scatter").bounding_box()
    frame.page.mouse.move(box["x"] + at[0], box["y"] + at[1])
    frame.wait_for_selector(".scatter-tip:not([hidden]) canvas.tip-thumb:not([data-loading])")
    assert int(frame.get_attribute("canvas.scatter", "data-hover")) == index
    return frame.evaluate(
        """() => { const c = document.querySelector('.scatter-tip canvas.tip-thumb');
                   return [...c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data]; }"""
    )[:3]


def test_fifty_thousand_points_pan_and_zoom_at_30_fps_and_load_thumbnails_lazily(server, browser):
    page, frame = open_plugin(browser, server, RUN)
    atlases: list[str] = []
    page.page.on("request", lambda request: "kind=sprites" in request.url and atlases.append(request.url))
    try:
        frame.click("button[data-view=embedding]")
        frame.wait_for_selector("canvas.scatter[data-step]")
        idle(frame)
        frame.evaluate("() => window.scrollTo(0, 0)")
        canvas = "canvas.scatter"
        assert int(frame.get_attribute(canvas, "data-visible")) == POINTS
        marked = int(frame.get_attribute(canvas, "data-marked"))
        assert 0.04 * POINTS < marked < 0.06 * POINTS  # the 5% misclassified are ringed
        assert "50000 images" in frame.inner_text(".panel-note")
        assert atlases == [], "opening the map loaded thumbnails"

        box = frame.locator(canvas).bounding_box()
        frame.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        frame.page.mouse.down()
        pan = _gesture(frame, "pan")
        frame.page.mouse.up()
        frame.wait_for_function("() => document.querySelector('canvas.scatter').drawCounts().renders > 0")
        after_pan = frame.evaluate("() => document.querySelector('canvas.scatter').drawCounts()")
        zoom = _gesture(frame, "zoom")
        frame.wait_for_timeout(400)  # the wheel gesture settles: the points are stamped at the new zoom
        after_zoom = frame.evaluate("() => document.querySelector('canvas.scatter').drawCounts()")
        render_ms = frame.evaluate(
            """() => { const c = document.querySelector('canvas.scatter');
                       const t = performance.now(); c.dispatchEvent(new MouseEvent('dblclick'));
                       c.getContext('2d').getImageData(0, 0, 1, 1); return performance.now() - t; }"""
        )
        print(
            f"\n50,000 points, load average {os.getloadavg()[0]:.1f}: "
            f"pan {pan['fps']:.1f} fps over {pan['count']} frames (p95 {pan['p95_ms']:.1f} ms, longest "
            f"{pan['longest_ms']:.1f} ms); zoom {zoom['fps']:.1f} fps over {zoom['count']} frames (p95 "
            f"{zoom['p95_ms']:.1f} ms, longest {zoom['longest_ms']:.1f} ms); one full render of the points "
            f"{render_ms:.1f} ms"
        )
        for gesture in (pan, zoom):
            # every frame showed the moved map (one event a frame; the first event's frame is the next one)
            assert gesture["frames"] >= gesture["count"] - 2, gesture["frames"]
            # and no frame stamped the 50,000 points again: the gesture moves the points layer
            assert gesture["renders"] <= 1, gesture["renders"]
            assert gesture["fps"] >= MIN_FPS, (gesture["fps"], statistics.median(np.diff(gesture["times"])))
        assert (
            after_pan["renders"] >= 1 and after_zoom["renders"] > after_pan["renders"]
        )  # stamped once settled
        frame.wait_for_function("() => document.querySelector('canvas.scatter').dataset.zoom === '1.000'")

        # thumbnails: one atlas for the hovered point, none more for a neighbour in the same atlas
        visible = frame.evaluate(
            """() => { const c = document.querySelector('canvas.scatter'); const out = [];
                       for (const i of [10, 11, 40000]) if (c.pointAt(i)) out.push(i); return out; }"""
        )
        assert visible == [10, 11, 40000]
        assert _hover(frame, 10) == [10, 0, 0]
        assert len(atlases) == 1 and "index=0" in atlases[0], atlases
        tip = frame.inner_text(".scatter-tip")
        assert "image #10" in tip and "label: class" in tip
        assert _hover(frame, 11) == [11, 0, 0]
        assert "image #11" in frame.inner_text(".scatter-tip") and len(atlases) == 1
        assert _hover(frame, 40000) == [40000 % 256, 40000 // 256, 0]  # atlas 39: images 39,936-40,959
        assert len(atlases) == 2 and "index=39" in atlases[1], atlases
        # a click that jitters by a pixel (a drag under the 3 px threshold) still pins the point under it
        hovered = frame.get_attribute(canvas, "data-hover")
        at = frame.evaluate(f"() => document.querySelector('canvas.scatter').pointAt({hovered})")
        box = frame.locator(canvas).bounding_box()
        frame.page.mouse.down()
        frame.page.mouse.move(box["x"] + at[0] + 1, box["y"] + at[1])
        frame.page.mouse.move(box["x"] + at[0], box["y"] + at[1])
        frame.page.mouse.up()
        frame.wait_for_function(
            f"() => document.querySelector('canvas.scatter').dataset.pinned === '{hovered}'"
        )
        # the step slider animates the 50,000 points to the other map (each frame stamps them)
        before = frame.evaluate("() => document.querySelector('canvas.scatter').drawCounts().renders")
        frame.press(".step-range", "Home")
        frame.wait_for_function(
            f"() => {{ const c = document.querySelector('canvas.scatter'); "
            f"return c.dataset.step === '{STEPS[0]}' && c.dataset.animating === 'false'; }}"
        )
        animated = (
            frame.evaluate("() => document.querySelector('canvas.scatter').drawCounts().renders") - before
        )
        print(f"step animation: {animated} frames in 450 ms ({animated / 0.45:.0f} fps)")
        assert animated >= 2 and int(frame.get_attribute(canvas, "data-visible")) == POINTS
        sprites = get_json(api_url(server, "embedding/sprites", run=RUN))
        assert len(sprites["atlases"]) == 49 and sum(sprites["counts"]) == POINTS
        assert page.problems == []
    finally:
        page.close()
