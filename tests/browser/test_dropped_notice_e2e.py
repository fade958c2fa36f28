"""End to end: background snapshots the callback dropped (the previous one was still running) are said in
the view that shows them, and only there: the real ``tensorboard`` binary over a logdir written by
CNNVizCallback with a slow pattern snapshot, driven by headless Chromium."""

from __future__ import annotations

import time

import pytest
import torch
from browser_helpers import idle, plugin_page
from support import every_step_patterns, tensorboard

from tb_cnnviz import kinds, snapshots
from tb_cnnviz.models import small_vgg

pytestmark = [pytest.mark.browser, pytest.mark.slow]
RUN = "slow_patterns"
PLACES = sum(row.thread == kinds.BACKGROUND for row in kinds.SNAPSHOTS.values())


def test_the_patterns_view_says_how_many_snapshots_were_skipped(tmp_path, monkeypatch, browser):
    real = snapshots.patterns

    def slow(inputs):
        time.sleep(0.5)
        return real(inputs)

    torch.manual_seed(0)
    model = small_vgg(width=4)
    last = PLACES + 5  # step 1 runs, the next PLACES wait, 4 are dropped, close() queues the last
    small = {"pattern_channels": 2, "pattern_steps": 2, "pattern_size": 16}
    with pytest.warns(RuntimeWarning, match="patterns snapshot at step"):
        with every_step_patterns(model, str(tmp_path / RUN), monkeypatch, slow, **small) as viz:
            for step in range(1, last + 1):
                viz.on_step_end(step)
    assert viz.dropped == 4
    with tensorboard(str(tmp_path)) as base, plugin_page(browser, base, RUN) as (_, frame):
        frame.click("button[data-view=patterns]")
        frame.wait_for_selector(".panel-dropped:not([hidden])", timeout=30_000)
        idle(frame)
        assert frame.inner_text(".panel-dropped") == (
            f"4 patterns snapshots skipped (last at step {last}): the previous one was still running"
        )
        frame.click("button[data-view=filters]")
        frame.wait_for_selector("canvas.kernel-grid[data-step]", timeout=30_000)
        idle(frame)
        assert frame.locator(".panel-dropped:not([hidden])").count() == 0  # not a Filters matter
