"""End to end: the real ``tensorboard`` binary (default Rust data server, then ``--load_fast=false``)
over a logdir written by CNNVizCallback, driven by headless Chromium through Playwright.

Checks that TensorBoard lists the plugin as enabled, that every logged step is served
(more than TensorBoard's default 10 blob samples), and, in the browser, that the tab
renders, the step slider and the layer selects change what is drawn, a comparison shows
two runs side by side, a hostile run name renders as text, TensorBoard's reload button
reaches the plugin frame and brings new steps, and nothing logs a console error.

Screenshots of each view go to ``$CNNVIZ_SCREENSHOTS`` when set (``scripts/screenshots.sh``
sets it to ``docs/screenshots``), else to a temporary folder. ``$CNNVIZ_E2E_LOGDIR`` points
the test at an existing logdir (the script uses one made by examples/cifar10/train.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil

import numpy as np
import pytest
import torch
from browser_helpers import XSS_RUN, Page, idle, screenshot, signature, slider_step, wait_drawn
from support import api_url, get_json, http_get, tensorboard, wait_for
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import metadata, summary
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

STEPS = 12
SCRUB_RUN = "long-64-filters"
SCRUB_STEPS = 500

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# ------------------------------------------------------------------------------- logdir
def _log_run(logdir: str, seed: int, steps: int) -> None:
    """A short run logged by the real callback: training-mode forwards (what the dead-filter
    tracker counts) and noisy weight updates, kernels and activations at every step."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = small_vgg(width=4)
    images, labels = ShapesDataset(48, seed=seed + 10).tensors()
    schedule = {"kernels": 1, "activations": 1, "dead_filters": 2}
    with CNNVizCallback(
        model,
        log_dir=logdir,
        probe=(images[:4], labels[:4]),
        class_names=ShapesDataset.classes,
        kernel_layers=["features.conv1", "features.conv2"],
        every_n_steps=schedule,
        strict=True,
    ) as viz:
        model.train()
        for step in range(1, steps + 1):
            model(images[torch.randint(0, len(images), (8,), generator=generator)])
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.add_(0.08 * torch.randn(parameter.shape, generator=generator))
            viz.on_step_end(step)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is ~10x faster on a busy 2-core machine
    try:
        return _make_logdir(tmp_path_factory)
    finally:
        torch.set_num_threads(threads)


def _make_logdir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("e2e_logdir")
    external = os.environ.get("CNNVIZ_E2E_LOGDIR")
    if external:
        for run in sorted(os.listdir(external)):
            shutil.copytree(os.path.join(external, run), root / run)
    else:
        _log_run(str(root / "baseline"), seed=0, steps=STEPS + 4)
    _log_run(str(root / XSS_RUN), seed=1, steps=STEPS)
    _log_long_run(str(root / SCRUB_RUN))
    return str(root)


def _log_long_run(logdir: str) -> None:
    """64 filters x SCRUB_STEPS logged steps (a long run's kernels), written as the callback writes them."""
    rng = np.random.default_rng(0)
    kernels = rng.normal(0, 0.2, (64, 3, 3, 3)).astype(np.float32)
    writer = SummaryWriter(logdir)
    try:
        for step in range(SCRUB_STEPS):
            kernels += rng.normal(0, 0.02, kernels.shape).astype(np.float32)
            summary.write(
                writer, [summary.tensor_summary(metadata.KERNELS, "features.conv1", kernels)], step * 10
            )
    finally:
        writer.close()


# ------------------------------------------------------------------------------- servers
def _check_server(base: str, logdir: str) -> dict:
    """Plugin enabled, every logged step served (beyond TensorBoard's default sampling)."""
    listing = wait_for(
        lambda: (
            get_json(f"{base}/data/plugins_listing").get("cnnviz", {}).get("enabled")
            and get_json(f"{base}/data/plugins_listing")
        ),
        what="cnnviz enabled in /data/plugins_listing",
    )
    assert listing["cnnviz"]["tab_name"] == "CNN Viz"
    assert listing["cnnviz"]["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": "/data/plugin/cnnviz/index.js",
    }
    expected = {entry.name for entry in os.scandir(logdir) if entry.is_dir()}
    runs = wait_for(
        lambda: (
            (r := get_json(api_url(base, "runs/list"))["runs"]) and {x["name"] for x in r} == expected and r
        ),
        what=f"runs {sorted(expected)} loaded",
    )
    steps = wait_for(
        lambda: (
            (
                s := get_json(
                    api_url(base, "runs/steps", run=XSS_RUN, kind="activations", layer="features.relu2")
                )["steps"]
            )
            and len(s) == STEPS
            and s
        ),
        what=f"{STEPS} activation steps",
    )
    assert steps == list(range(1, STEPS + 1))  # 12 blob samples > TensorBoard's default of 10
    status, body = http_get(
        api_url(
            base, "runs/image", run=XSS_RUN, kind="activations", layer="features.relu2", step=STEPS, index=3
        )
    )
    assert status == 200 and body.startswith(b"\x89PNG")
    assert (
        http_get(api_url(base, "filters/kernels", run=XSS_RUN, layer="features.conv1", step="-1"))[0] == 400
    )
    assert http_get(f"{base}/data/plugin/cnnviz/views/..%2f..%2fplugin.py")[0] == 404
    return {run["name"]: run for run in runs}


@pytest.fixture(scope="module")
def default_server(logdir):
    """TensorBoard with its default loader (the Rust data server), shared by the tests below."""
    with tensorboard(logdir) as base:
        _check_server(base, logdir)
        yield base


# ------------------------------------------------------------------------------- browser
def _exercise_filters(frame) -> None:
    idle(frame)
    last = slider_step(frame)
    wait_drawn(frame, "canvas.kernel-grid", last)
    before = signature(frame, "canvas.kernel-grid")
    frame.press(".step-range", "Home")
    first = slider_step(frame)
    assert first < last
    wait_drawn(frame, "canvas.kernel-grid", first)
    assert signature(frame, "canvas.kernel-grid") != before, (
        "moving the step slider did not change the kernels"
    )
    frame.press(".step-range", "ArrowRight")
    wait_drawn(frame, "canvas.kernel-grid", slider_step(frame))
    # Normalisation is re-rendered in the browser: the picture changes without a new step.
    at = signature(frame, "canvas.kernel-grid")
    frame.click(".normalization button[data-value=per_filter]")
    assert signature(frame, "canvas.kernel-grid") != at, "per-filter normalisation drew the same picture"
    frame.click(".normalization button[data-value=global]")
    assert signature(frame, "canvas.kernel-grid") == at
    # Click a filter: enlarged, with its smoothness and activation rate.
    frame.click("canvas.kernel-grid", position={"x": 6, "y": 6})
    frame.wait_for_selector(".filter-detail[data-filter='0']")
    assert re.search(r"-?\d\.\d{3} \(layer mean -?\d\.\d{3}\)", frame.inner_text(".smoothness-value"))
    assert re.search(r"\d\.\d{3} at step \d+|not measured yet", frame.inner_text(".rate-value"))
    layers = frame.eval_on_selector("select.layer", "s => [...s.options].map(o => o.value)")
    if len(layers) > 1:
        before = signature(frame, "canvas.kernel-grid")
        frame.select_option("select.layer", layers[1])
        frame.wait_for_function("() => document.querySelector('.filter-detail') === null")
        wait_drawn(frame, "canvas.kernel-grid")
        idle(frame)
        assert signature(frame, "canvas.kernel-grid") != before, "switching layers did not change the kernels"
        frame.select_option("select.layer", layers[0])
        idle(frame)


def _exercise_activations(frame) -> None:
    frame.click("button[data-view=activations]")
    wait_drawn(frame, "canvas.activation-grid")
    idle(frame)
    before = signature(frame, "canvas.activation-grid")
    frame.press(".step-range", "Home")
    wait_drawn(frame, "canvas.activation-grid", slider_step(frame))
    assert signature(frame, "canvas.activation-grid") != before, (
        "moving the step slider did not change the activations"
    )
    layers = frame.eval_on_selector("select.layer", "s => [...s.options].map(o => o.value)")
    assert len(layers) >= 2, layers
    before = signature(frame, "canvas.activation-grid")
    size = frame.eval_on_selector("canvas.activation-grid", "c => [c.width, c.height]")
    frame.select_option("select.layer", layers[-1])
    wait_drawn(frame, "canvas.activation-grid")
    idle(frame)
    assert (
        signature(frame, "canvas.activation-grid"),
        frame.eval_on_selector("canvas.activation-grid", "c => [c.width, c.height]"),
    ) != (before, size)
    frame.click(".strip-item[data-index='1']")
    frame.wait_for_selector("canvas.activation-grid[data-image='1']")
    assert frame.locator(".probe-label").first.inner_text().startswith("probe #1")


def _exercise_dead(frame) -> None:
    frame.click("button[data-view=dead]")
    frame.wait_for_selector("canvas.heatmap")
    idle(frame)
    assert re.search(r"(No dead filters|\d+ of \d+ filters dead) at step \d+", frame.inner_text(".dead-list"))
    before = frame.inner_text(".panel-note")
    frame.press(".step-range", "Home")
    frame.wait_for_function("b => document.querySelector('.panel-note').textContent !== b", arg=before)
    layers = frame.eval_on_selector("select.layer", "s => [...s.options].map(o => o.value)")
    before = signature(frame, "canvas.heatmap")
    frame.select_option("select.layer", layers[-1])
    idle(frame)
    frame.wait_for_selector("canvas.heatmap")
    assert layers[-1] in frame.inner_text(".heat-title")
    assert signature(frame, "canvas.heatmap") != before


def _exercise_compare(frame, other: str) -> None:
    frame.select_option("select.run-b", other)
    frame.wait_for_function("() => document.querySelectorAll('.panel').length === 2")
    idle(frame)
    titles = frame.locator(".panel-title").all_inner_texts()
    assert other in titles and len(titles) == 2
    # The hostile run name is text everywhere: no element was made from it.
    assert frame.evaluate("() => document.querySelectorAll('img').length") == 0
    assert XSS_RUN in frame.eval_on_selector_all(
        "select.run-a option, select.run-b option", "os => os.map(o => o.textContent)"
    )


def test_python_loader_views_and_screenshots(logdir, browser, shots):
    with tensorboard(logdir, "--load_fast=false") as base:
        runs = _check_server(base, logdir)
        names = [name for name in runs if name not in (XSS_RUN, SCRUB_RUN)]
        entry = f"{base}/data/plugin_entry.html?name=cnnviz"
        for scheme in ("light", "dark"):
            page = Page(browser, color_scheme=scheme)
            try:
                page.page.goto(entry)
                frame = page.page.main_frame
                frame.wait_for_selector("#cnnviz[data-host=standalone]")
                if names:
                    frame.select_option("select.run-a", names[0])
                if scheme == "light":  # the Overview is the first tab
                    frame.wait_for_selector(".panel[data-findings]")
                    idle(frame)
                    screenshot(page.page, shots / "overview.png")
                frame.click("button[data-view=filters]")
                if scheme == "dark":
                    wait_drawn(frame, "canvas.kernel-grid")
                    idle(frame)
                    frame.click("canvas.kernel-grid", position={"x": 40, "y": 40})
                    frame.wait_for_selector(".filter-detail")
                    screenshot(page.page, shots / "filters-dark.png")
                    assert page.problems == []
                    continue
                _exercise_filters(frame)
                idle(frame)
                frame.press(".step-range", "End")
                idle(frame)
                screenshot(page.page, shots / "filters.png")
                _exercise_activations(frame)
                frame.press(".step-range", "End")
                idle(frame)
                screenshot(page.page, shots / "activations.png")
                _exercise_dead(frame)
                frame.press(".step-range", "End")
                idle(frame)
                screenshot(page.page, shots / "dead.png")
                frame.click("button[data-view=filters]")
                _exercise_compare(frame, names[1] if len(names) > 1 else XSS_RUN)
                wait_drawn(frame, ".panel:nth-child(2) canvas.kernel-grid")
                screenshot(page.page, shots / "filters-compare.png")
                assert page.problems == []
            finally:
                page.close()


SCRUB_JS = """async () => {
  const input = document.querySelector('.step-range');
  const grid = () => document.querySelector('canvas.kernel-grid');
  const count = Number(input.max) + 1;
  const result = [];
  for (const stride of [1, 5]) {  // every step; then back over them from the cache
    const times = [];
    let late = 0;
    for (let i = 0; i < count; i += stride) {
      const t0 = performance.now();
      input.value = String(i);
      input.dispatchEvent(new Event('input'));
      await new Promise((r) => requestAnimationFrame(() => r()));  // after the view's own frame callback
      const wanted = document.querySelector('.step-slider').dataset.step;
      if (grid().dataset.step !== wanted) {
        late++;
        await new Promise((r) => { const t = setInterval(() => { if (grid().dataset.step === wanted) { clearInterval(t); r(); } }, 5); });
      }
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const n = times.length;
    result.push({count: n, late, p50: times[Math.floor(n / 2)], p95: times[Math.floor(n * 0.95)], max: times[n - 1]});
  }
  return result;
}"""


def test_scrubbing_64_filters_over_500_steps_from_memory(default_server, browser):
    """A long run scrubs without waiting: kernels arrive in a few blocks of steps, then every
    step is drawn in the same animation frame as the slider move, from the browser's cache."""
    base = default_server
    page = Page(browser)
    kernel_requests: list[str] = []
    page.page.on(
        "request",
        lambda request: "api/filters/kernels" in request.url and kernel_requests.append(request.url),
    )
    try:
        page.page.goto(f"{base}/data/plugin_entry.html?name=cnnviz")
        page.page.wait_for_selector("#cnnviz[data-host=standalone]")
        page.page.click("button[data-view=filters]")  # the Overview is the first tab
        page.page.select_option("select.run-a", SCRUB_RUN)
        page.page.wait_for_function(
            f"() => document.querySelector('.step-range').max === '{SCRUB_STEPS - 1}'"
        )
        wait_drawn(page.page.main_frame, "canvas.kernel-grid", (SCRUB_STEPS - 1) * 10)
        first, second = page.page.evaluate(SCRUB_JS)
        print(
            f"\nscrub {SCRUB_STEPS} steps x 64 filters: first pass {first}, second pass {second}, kernel requests {len(kernel_requests)}"
        )
        assert first["count"] == SCRUB_STEPS and second["count"] == SCRUB_STEPS // 5
        # 64x3x3x3 floats per step, 2**18 floats per block: 151 steps per request.
        assert len(kernel_requests) <= 6, kernel_requests
        assert first["late"] <= 4  # only where a new block had to arrive
        assert second["late"] == 0  # everything drawn in the slider's own frame
        assert page.problems == []
    finally:
        page.close()


def test_default_loader_tab_inside_tensorboard(default_server, logdir, browser, shots):
    base = default_server
    runs = {run["name"]: run for run in get_json(api_url(base, "runs/list"))["runs"]}
    page = Page(browser)
    try:
        page.page.goto(f"{base}/#cnnviz")
        frame_element = page.page.wait_for_selector("iframe", timeout=30_000)
        frame = frame_element.content_frame()
        frame.wait_for_selector("#cnnviz[data-host=tensorboard]")
        frame.click("button[data-view=filters]")  # the Overview is the first tab
        names = [name for name in runs if name not in (XSS_RUN, SCRUB_RUN)]
        if names:
            frame.select_option("select.run-a", names[0])
        _exercise_filters(frame)
        screenshot(page.page, shots / "tensorboard-tab.png", full_page=False)
        # TensorBoard's reload reaches the frame, and new steps appear (the slider follows them).
        first_run = frame.eval_on_selector("select.run-a", "s => s.value")
        frame.press(".step-range", "End")
        last = json.loads(
            http_get(
                api_url(
                    base,
                    "filters/kernels",
                    run=first_run,
                    layer="features.conv1",
                    step=frame.locator(".step-slider").get_attribute("data-step"),
                )
            )[1]
        )
        flipped = -np.frombuffer(base64.b64decode(last["data"]), "<f4").reshape(last["shape"])
        writer = SummaryWriter(os.path.join(logdir, first_run))  # the run goes on training: a new step
        summary.write(writer, [summary.tensor_summary(metadata.KERNELS, "features.conv1", flipped)], 100_000)
        writer.close()
        wait_for(
            lambda: (
                100_000
                in get_json(
                    api_url(base, "runs/steps", run=first_run, kind="kernels", layer="features.conv1")
                )["steps"]
            ),
            what="new step served",
        )
        page.page.click("button.reload-button")
        frame.wait_for_function("() => Number(document.getElementById('cnnviz').dataset.reloads) >= 1")
        frame.wait_for_function(
            "() => document.querySelector('.step-slider').dataset.step === '100000'", timeout=30_000
        )
        wait_drawn(frame, "canvas.kernel-grid", 100_000)
        assert page.problems == []
    finally:
        page.close()


def test_empty_state_says_what_to_do(browser, shots, tmp_path):
    with tensorboard(str(tmp_path)) as base:
        listing = get_json(f"{base}/data/plugins_listing")
        assert listing["cnnviz"]["enabled"] is False  # no data: TensorBoard lists the tab as inactive
        page = Page(browser)
        try:
            page.page.goto(f"{base}/data/plugin_entry.html?name=cnnviz")
            page.page.wait_for_selector(".message.empty")
            assert "add CNNVizCallback to your loop" in page.page.inner_text(".message.empty")
            assert "viz.on_step_end(step)" in page.page.inner_text(".snippet")
            screenshot(page.page, shots / "empty.png", full_page=False)
            assert page.problems == []
        finally:
            page.close()
