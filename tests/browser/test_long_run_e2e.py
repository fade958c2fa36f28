"""A run with more snapshots than the plugin's old cap of 2,000 samples per series, in the real TensorBoard
(Rust data server) and Chromium: every snapshot is kept (payloads in the side file, ``--samples_per_plugin
cnnviz=0`` by default), and the step slider reaches the first, the last and an arbitrary middle one, each
drawn from its own step's image (the step is encoded in the pixels' colour).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from browser_helpers import idle, plugin_page, slider_step, wait_drawn
from support import api_url, get_json, serving
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import assets, metadata, summary

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN = "long"
LAYER = "features.relu1"
SNAPSHOTS = 2_101  # more than the old cap (DEFAULT_SAMPLES was 2000: a reservoir sample beyond it)
EVERY = 10
TILE = 32  # px: larger than the 4x4 maps the view shows as bars
MARKER = 77  # blue channel of every snapshot's picture


def colour(step: int) -> tuple[int, int, int]:
    """The colour of the picture logged at ``step``: the step in red (high byte) and green (low byte)."""
    return (step >> 8) & 255, step & 255, MARKER


def _picture(step: int) -> np.ndarray:
    """The step's colour in the top-left quarter; seeded noise elsewhere, so the PNG is large enough
    (over ``summary.MIN_SIDE_FILE_BYTES``) to go to the side file."""
    pixels = np.random.default_rng(step).integers(0, 256, (TILE, TILE, 3), dtype=np.uint8)
    pixels[: TILE // 2, : TILE // 2] = colour(step)
    return pixels


def write_long_run(root: str) -> list[int]:
    writer = SummaryWriter(os.path.join(root, RUN))
    steps = [EVERY * i for i in range(SNAPSHOTS)]
    try:
        probe = summary.encode_png(np.full((TILE, TILE, 3), 128, np.uint8))
        summary.write(writer, [summary.blob_summary(metadata.PROBE, None, [probe], labels=[0])], 0)
        for step in steps:
            picture = summary.encode_png(_picture(step))
            activations = summary.blob_summary(
                metadata.ACTIVATIONS,
                LAYER,
                [picture],
                channels=1,
                nrow=1,
                padding=0,
                tile=[TILE, TILE],
                map_size=[TILE, TILE],
                channels_shown=[0],
                factor=1,
            )
            summary.write(writer, [activations], step)
    finally:
        writer.close()
    return steps


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("long_run"))
    steps = write_long_run(root)
    assert any(name.startswith(assets.PREFIX) for name in os.listdir(os.path.join(root, RUN)))
    with serving(root, [RUN], series=(RUN, metadata.ACTIVATIONS, LAYER, SNAPSHOTS)) as base:
        yield base, steps


def _shown_colour(frame) -> tuple[int, int, int]:
    """The colour at the centre of the first activation tile drawn."""
    return tuple(
        frame.eval_on_selector(
            "canvas.activation-grid",
            "c => Array.from(c.getContext('2d').getImageData(2, 2, 1, 1).data.slice(0, 3))",
        )
    )


def _move_slider_to(frame, position: int) -> None:
    frame.eval_on_selector(
        ".step-range",
        "(input, i) => { input.value = String(i); input.dispatchEvent(new Event('input'));"
        " input.dispatchEvent(new Event('change')); }",
        position,
    )


def test_the_slider_reaches_every_snapshot_of_a_run_longer_than_the_old_cap(browser, long_run):
    base, steps = long_run
    listing = get_json(api_url(base, "runs/list"))
    (run,) = listing["runs"]
    assert run["sampled"] == []  # nothing sampled: the default keeps every step
    assert (
        get_json(api_url(base, "runs/steps", run=RUN, kind=metadata.ACTIVATIONS, layer=LAYER))["steps"]
        == steps
    )
    with plugin_page(browser, base, RUN) as (_, frame):
        frame.click("button[data-view=activations]")
        wait_drawn(frame, "canvas.activation-grid")
        idle(frame)
        assert frame.eval_on_selector(".step-range", "i => Number(i.max) + 1") == SNAPSHOTS
        middle = 1_234  # an arbitrary snapshot in between
        for where, position in (("last", SNAPSHOTS - 1), ("first", 0), ("middle", middle)):
            if where == "first":
                frame.press(".step-range", "Home")
            else:
                _move_slider_to(frame, position)
            step = steps[position]
            assert slider_step(frame) == step, where
            wait_drawn(frame, "canvas.activation-grid", step)
            idle(frame)
            assert _shown_colour(frame) == colour(step), (where, step)
        frame.press(
            ".step-range", "ArrowRight"
        )  # one step on from the middle: its neighbour, not a sampled one
        wait_drawn(frame, "canvas.activation-grid", steps[middle + 1])
        idle(frame)
        assert _shown_colour(frame) == colour(steps[middle + 1])
