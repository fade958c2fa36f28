"""End to end for the live tab, the link to what is shown and a deleted run: the real ``tensorboard``
binary (default Rust data server, ``--reload_interval 1``) over runs written by CNNVizCallback on a tiny
CNN in this process, driven by headless Chromium, with TensorBoard's own "Reload data" left as a fresh
profile has it (off in 2.21): only the tab's polling of ``api/runs/version`` can bring new steps.

* a run trains on while the tab is open: the new step shows within 10 s, the slider follows it when it
  was at the end and stays where the user put it otherwise, the header says "updated hh:mm:ss · n new
  steps"; the poll's cost (ms, bytes) and the delay are printed;
* a URL round trip: view, runs, layer, step and filter chosen in TensorBoard's page; its address (and the
  "copy link" URL) opened in a new page shows the same; so does the plugin page opened on its own;
  a Grad-CAM link keeps its probe image;
* a run deleted from disk while it is shown: a notice names it and the run now shown.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import time
import urllib.parse

import pytest
import torch
from browser_helpers import Page, idle, plugin_page, slider_step, wait_drawn
from support import api_url, get_json, http_get, tensorboard, wait_for
from torch import nn

from tb_cnnviz.callbacks import CNNVizCallback

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE, OTHER, DOOMED = "live", "other", "doomed"
LAYERS = ["0", "2"]  # the two convolutions of tiny_cnn()
FIRST_STEPS = 3
SHOW_WITHIN_S = 10
POLL_MS = 4000  # frontend/live.js


def tiny_cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


class Trainer:
    """A tiny CNN trained step by step with CNNVizCallback logging its kernels at every step."""

    def __init__(self, logdir: str, seed: int, **options):
        self.model = tiny_cnn(seed)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.viz = CNNVizCallback(
            self.model,
            log_dir=logdir,
            kernel_layers=LAYERS,
            every_n_steps=1,
            background=False,
            strict=True,
            **options,
        )
        self.step = 0
        self.generator = torch.Generator().manual_seed(seed)

    def train(self, steps: int) -> int:
        """``steps`` more steps, flushed to disk; the last step."""
        for _ in range(steps):
            self.step += 1
            x = torch.randn(4, 3, 12, 12, generator=self.generator)
            loss = self.model(x).square().mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.viz.on_step_end(self.step)
        self.viz.flush()
        return self.step

    def close(self) -> None:
        self.viz.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("live_e2e_logdir"))


@pytest.fixture(scope="module")
def trainers(logdir):
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = {
        name: Trainer(os.path.join(logdir, name), seed) for seed, name in enumerate((LIVE, OTHER, DOOMED))
    }
    try:
        for trainer in started.values():
            trainer.train(FIRST_STEPS)
        yield started
    finally:
        for trainer in started.values():
            trainer.close()
        torch.set_num_threads(torch_threads)


@pytest.fixture(scope="module")
def server(logdir, trainers):
    with tensorboard(logdir) as base:
        wait_for(lambda: len(get_json(api_url(base, "runs/list"))["runs"]) == 3, what="three runs listed")
        yield base


@contextlib.contextmanager
def tensorboard_tab(browser, url: str):
    """TensorBoard's page at ``url`` (a fresh profile: its "Reload data" as shipped) and the CNN Viz frame."""
    page = Page(browser)
    try:
        page.page.goto(url)
        frame = page.page.wait_for_selector("iframe", timeout=30_000).content_frame()
        frame.wait_for_selector("#cnnviz[data-host=tensorboard]")
        yield page, frame
    finally:
        page.close()


def _view(frame, view: str) -> None:
    frame.click(f"button[data-view={view}]")
    frame.wait_for_selector(f"button[data-view={view}][aria-selected=true]")


def _max_step(frame) -> int:
    return frame.evaluate("() => window.cnnviz.view.steps().at(-1)")


def _version_requests(frame) -> list[dict]:
    """Timing and size of each api/runs/version request the frame made (Resource Timing)."""
    return frame.evaluate(
        """() => performance.getEntriesByType('resource')
            .filter(e => e.name.includes('api/runs/version'))
            .map(e => ({ms: e.duration, bytes: e.transferSize, body: e.encodedBodySize}))"""
    )


def _route_costs(base: str, repeats: int = 20) -> str:
    """Median time and body size of runs/version against runs/list, asked directly."""
    costs = []
    for route in ("runs/version", "runs/list"):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            status, body = http_get(api_url(base, route))
            times.append(time.perf_counter() - start)
            assert status == 200
        costs.append(f"{route} {statistics.median(times) * 1000:.1f} ms, {len(body)} B")
    return "; ".join(costs)


def test_new_steps_show_within_10_s_with_tensorboard_reload_off(server, trainers, browser):
    live = trainers[LIVE]
    with tensorboard_tab(browser, f"{server}/#cnnviz") as (page, frame):
        _view(frame, "filters")
        frame.select_option("select.run-a", LIVE)
        wait_drawn(frame, "canvas.kernel-grid", live.step)
        assert slider_step(frame) == live.step  # at the end: it should follow
        reloads = int(frame.evaluate("() => document.getElementById('cnnviz').dataset.reloads || '0'"))

        written = live.train(1)
        start = time.monotonic()
        frame.wait_for_function(
            f"() => document.querySelector('.step-slider').dataset.step === '{written}'",
            timeout=SHOW_WITHIN_S * 1000,
        )
        wait_drawn(frame, "canvas.kernel-grid", written)
        shown_after = time.monotonic() - start
        note = frame.inner_text(".live-note")
        assert re.fullmatch(r"updated \d\d:\d\d:\d\d · 1 new step", note), note
        # The tab's poll brought it, not TensorBoard's reload event (no DataReloaded: its toggle is off).
        assert int(frame.evaluate("() => document.getElementById('cnnviz').dataset.reloads")) > reloads

        # Away from the end, the user's step stays while new steps arrive.
        frame.press(".step-range", "Home")
        assert slider_step(frame) == 1
        polls = int(frame.evaluate("() => document.getElementById('cnnviz').dataset.polls"))
        written = live.train(2)
        frame.wait_for_function(
            f"() => window.cnnviz.view.steps().at(-1) === {written}", timeout=SHOW_WITHIN_S * 1000
        )
        idle(frame)
        assert slider_step(frame) == 1 and _max_step(frame) == written
        assert re.fullmatch(r"updated \d\d:\d\d:\d\d · 2 new steps", frame.inner_text(".live-note"))
        wait_for(
            lambda: int(frame.evaluate("() => document.getElementById('cnnviz').dataset.polls")) >= polls + 2,
            timeout=15,
            what="two more polls",
        )
        print(f"\nserver: {_route_costs(server)}")
        requests = _version_requests(frame)
        assert requests and all(r["body"] < 200 for r in requests), requests
        mean_ms = sum(r["ms"] for r in requests) / len(requests)
        print(
            f"\nlive: new step shown {shown_after:.1f} s after it was flushed; "
            f"{len(requests)} polls of api/runs/version, mean {mean_ms:.1f} ms, "
            f"body {requests[-1]['body']} B, transfer {requests[-1]['bytes']} B"
        )
        assert shown_after < SHOW_WITHIN_S

        # Another TensorBoard tab: TensorBoard hides the frame (0 px high), the tab polls every 30 s.
        page.page.evaluate("() => { location.hash = '#timeseries'; }")
        frame.wait_for_function("() => document.getElementById('cnnviz').dataset.poll === '30000'")
        page.page.evaluate("() => { location.hash = '#cnnviz'; }")
        frame.wait_for_function(f"() => document.getElementById('cnnviz').dataset.poll === '{POLL_MS}'")
        assert page.problems == []


def test_a_link_reopens_the_same_view_runs_layer_and_step(server, trainers, browser):
    with tensorboard_tab(browser, f"{server}/#cnnviz") as (page, frame):
        _view(frame, "filters")
        frame.select_option("select.run-a", OTHER)
        frame.select_option("select.run-b", LIVE)
        frame.select_option("select.layer", LAYERS[1])
        frame.wait_for_selector(f".panel[data-run={LIVE}]")
        frame.press(".step-range", "Home")
        frame.press(".step-range", "ArrowRight")
        assert slider_step(frame) == 2
        wait_drawn(frame, "canvas.kernel-grid", 2)
        frame.click("canvas.kernel-grid", position={"x": 6, "y": 6})  # filter 0 enlarged (none by default)
        frame.wait_for_selector(".filter-detail[data-filter='0']")
        expected = {
            "view": "filters",
            "run": OTHER,
            "compare": LIVE,
            "layer": LAYERS[1],
            "step": "2",
            "filter": "0",
        }

        # (Playwright's page.url misses a replaceState made from the frame: ask the page.)
        def address_with_state() -> str | None:
            url = page.page.evaluate("location.href")
            return url if _linked_state(url) == expected else None

        address = wait_for(address_with_state, what="the state in TensorBoard's address")
        frame.click("button.copy-link")
        frame.wait_for_selector(".link-note:not(:empty)")
        copied = frame.get_attribute("button.copy-link", "data-url")
        assert copied == address and address.startswith(f"{server}/#cnnviz&cnnviz=")
        assert frame.get_attribute("button.copy-link", "data-place") == "tensorboard"
        own = frame.evaluate(
            "() => location.href"
        )  # the plugin page on its own, with the state in its fragment
        assert own.startswith(f"{server}/data/plugin_entry.html?name=cnnviz#")
        assert page.problems == []

    with tensorboard_tab(browser, address) as (page, frame):
        _assert_state(frame, expected)
        assert page.problems == []
    page = Page(browser)
    try:
        page.page.goto(own)
        _assert_state(page.page.main_frame, expected)
        page.page.click("button.copy-link")
        assert page.page.get_attribute("button.copy-link", "data-place") == "standalone"
        assert page.page.get_attribute("button.copy-link", "data-url") == own
        assert page.problems == []
    finally:
        page.close()


def _linked_state(url: str) -> dict:
    """The state in TensorBoard's fragment ("#cnnviz&cnnviz=<query string, URI-encoded>")."""
    fragment = urllib.parse.urlsplit(url).fragment
    parts = dict(part.split("=", 1) for part in fragment.split("&") if "=" in part)
    return dict(urllib.parse.parse_qsl(urllib.parse.unquote(parts.get("cnnviz", ""))))


def _assert_state(frame, expected: dict) -> None:
    frame.wait_for_selector(f"button[data-view={expected['view']}][aria-selected=true]")
    frame.wait_for_selector(f".panel[data-run={expected['compare']}]")
    wait_drawn(frame, "canvas.kernel-grid", int(expected["step"]))
    idle(frame)
    shown = {
        "view": expected["view"],
        "run": frame.eval_on_selector("select.run-a", "s => s.value"),
        "compare": frame.eval_on_selector("select.run-b", "s => s.value"),
        "layer": frame.eval_on_selector("select.layer", "s => s.value"),
        "step": frame.locator(".step-slider").get_attribute("data-step"),
        "filter": frame.get_attribute(".filter-detail", "data-filter"),
    }
    assert shown == expected


def test_a_link_keeps_the_grad_cam_probe_image(browser, tmp_path):
    generator = torch.Generator().manual_seed(5)
    probe = (torch.randn(4, 3, 12, 12, generator=generator), torch.tensor([0, 1, 2, 3]))
    trainer = Trainer(str(tmp_path / "cam"), seed=5, probe=probe, gradcam_layers=[LAYERS[1]])
    try:
        trainer.train(2)
    finally:
        trainer.close()
    with tensorboard(str(tmp_path)) as base:
        page = Page(browser)
        try:
            page.page.goto(f"{base}/data/plugin_entry.html?name=cnnviz#view=gradcam&run=cam&step=1&image=2")
            page.page.wait_for_selector(".cam-card.on[data-index='2']", timeout=30_000)
            assert slider_step(page.page.main_frame) == 1
            page.page.click(".cam-card[data-index='1']")
            page.page.wait_for_selector(".cam-card.on[data-index='1']")
            page.page.wait_for_function("() => location.hash.includes('image=1')")
            link = page.page.evaluate("() => location.href")
            page.page.goto("about:blank")
            page.page.goto(link)
            page.page.wait_for_selector(".cam-card.on[data-index='1']", timeout=30_000)
            assert slider_step(page.page.main_frame) == 1
            assert page.problems == []
        finally:
            page.close()


def test_the_empty_state_turns_into_the_first_run_by_itself(browser, tmp_path):
    """No data yet when the tab opens; a run starts: the tab shows it without any reload."""
    with tensorboard(str(tmp_path)) as base:
        page = Page(browser)
        try:
            page.page.goto(f"{base}/data/plugin_entry.html?name=cnnviz")
            page.page.wait_for_selector(".message.empty")
            trainer = Trainer(str(tmp_path / "first"), seed=3)
            try:
                written = trainer.train(2)
                start = time.monotonic()
                frame = page.page.main_frame
                frame.wait_for_selector("button[data-view=filters]", timeout=30_000)  # tabs come with the run
                frame.click("button[data-view=filters]")  # the Overview is the first tab
                wait_drawn(frame, "canvas.kernel-grid", written)
                print(f"\nempty -> first run shown {time.monotonic() - start:.1f} s after it was flushed")
            finally:
                trainer.close()
            assert page.page.locator(".message.empty").count() == 0
            assert page.problems == []
        finally:
            page.close()


def test_a_deleted_run_is_named_in_a_notice(server, trainers, logdir, browser):
    with plugin_page(browser, server, DOOMED) as (_, frame):
        _view(frame, "filters")
        wait_drawn(frame, "canvas.kernel-grid")
        shutil.rmtree(os.path.join(logdir, DOOMED))
        frame.wait_for_selector(".run-notice:not([hidden])", timeout=30_000)
        text = frame.inner_text(".run-notice")
        assert f"Run “{DOOMED}” is no longer in the logdir" in text and f"Showing “{LIVE}” instead" in text, (
            text
        )
        assert frame.eval_on_selector("select.run-a", "s => s.value") == LIVE
        assert DOOMED not in frame.eval_on_selector_all("select.run-a option", "os => os.map(o => o.value)")
    # A link naming a run this logdir does not have says so too (and which run it shows).
    page = Page(browser)
    try:
        page.page.goto(f"{server}/data/plugin_entry.html?name=cnnviz#view=filters&run=nosuch&compare={OTHER}")
        page.page.wait_for_selector(".run-notice:not([hidden])", timeout=30_000)
        text = page.page.inner_text(".run-notice")
        assert f"Run “nosuch” is not in this logdir. Showing “{LIVE}” instead." in text, text
        assert page.page.eval_on_selector("select.run-b", "s => s.value") == OTHER
        assert page.problems == []
    finally:
        page.close()
