"""End to end on a deep model: a torchvision ResNet-50 (random init, 53 conv layers, up to 2048
channels, 64-px inputs, 3 logged steps) written by CNNVizCallback, served by the real
``tensorboard`` binary and driven by headless Chromium.

What must hold at that size: the Dead view draws a layers × steps map with one row per conv layer
(53) that answers a hover with the layer, step and value, and sorts; the per-filter heat-map of a
2048-filter layer pages (the page stays under MAX_PAGE_HEIGHT px) and its chip list is capped; the
layer picker is grouped by stage and a search filters it; activation tiles enlarge on click and
tell their channel and values on hover, and 2×2 maps are a bar chart; a kernel slider step of the
512×512×3×3 ``layer4.0.conv2`` arrives as int8 and completes quickly. Light and dark themes, no
console error; the dark theme runs 900 px wide. Screenshots: deep_dead.png, deep_activations.png into ``$CNNVIZ_SCREENSHOTS``.
"""

from __future__ import annotations

import re

import pytest
import torch
from browser_helpers import idle, plugin_page, screenshot, signature, wait_drawn
from support import fit_with_callback, serving
from torch import nn

RUN = "resnet50"
STEPS = 3
SIDE = 64  # layer3 maps are 4×4 and layer4 maps 2×2 at this input size
BIG = "layer4.0.conv2"  # 512 × 512 × 3 × 3 kernels: 9.4 MB of float32 per step
WIDE = "layer4.2.conv3"  # 2048 filters
RELU_LAYER = "layer4.2.conv1"  # 512 filters, a ReLU follows (dead filters defined)
MAX_PAGE_HEIGHT = 2000  # px, with the 2048-filter layer in the Dead view (3,175 px before paging)
MAX_STEP_MS = 1000  # a kernel slider step of BIG, generous for a busy 2-core CI machine (about 100 ms idle)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def log_resnet50_run(logdir: str) -> list[str]:
    """Train a random-init ResNet-50 for STEPS SGD steps on 4 random images, logging every step on
    the training thread (one torch thread); returns its conv layers in execution order."""
    from torchvision.models import resnet50

    from tb_cnnviz.callbacks import CNNVizCallback

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = resnet50(weights=None, num_classes=3)
            images, labels = torch.rand(4, 3, SIDE, SIDE), torch.tensor([0, 1, 2, 0])
        convs = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        with CNNVizCallback(
            model,
            log_dir=logdir,
            probe=(images[:2], labels[:2]),
            class_names=["a", "b", "c"],
            kernel_layers=["conv1", BIG],
            activation_layers=["layer1", "layer3", "layer4"],
            dead_filter_layers=convs,
            every_n_steps=1,
            background=False,
            strict=True,
        ) as viz:
            fit_with_callback(model, viz, optimizer, range(1, STEPS + 1), lambda step: (images, labels))
    finally:
        torch.set_num_threads(threads)
    return convs


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> tuple[str, list[str]]:
    root = tmp_path_factory.mktemp("deep_model_logdir")
    return str(root), log_resnet50_run(str(root / RUN))


@pytest.fixture(scope="module")
def server(logdir):
    with serving(logdir[0], {RUN}, series=(RUN, "kernels", BIG, STEPS)) as base:
        yield base


def page_height(frame) -> int:
    return frame.evaluate("() => document.documentElement.scrollHeight")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_dead_view_on_resnet50(server, logdir, browser, shots, scheme):
    convs = logdir[1]
    with plugin_page(browser, server, RUN, scheme=scheme) as (page, frame):
        if scheme == "dark":
            page.page.set_viewport_size({"width": 900, "height": 900})  # the narrow layout, in the dark theme
        frame.click("button[data-view=dead]")
        frame.wait_for_selector("canvas.layer-map[data-rows]")
        idle(frame)
        assert frame.get_attribute("canvas.layer-map", "data-rows") == str(len(convs)) == "53"
        assert frame.is_hidden("canvas.fraction-chart"), "53 layers must not be drawn as 53 lines"
        # hover a cell: the tooltip names a layer, the step and a value (or why none is defined)
        box = frame.locator("canvas.layer-map").bounding_box()
        frame.hover("canvas.layer-map", position={"x": box["width"] - 6, "y": 4})
        tip = frame.locator(".map-tip")
        tip.wait_for(state="visible")
        assert tip.inner_text().startswith(f"{convs[0]} · step {STEPS} · dead fraction ")
        before = signature(frame, "canvas.layer-map")
        frame.click(".layer-sort button[data-value=latest]")
        frame.wait_for_selector("canvas.layer-map[data-sort=latest]")
        # residual rows (no dead fraction defined) go last: the rows move
        assert signature(frame, "canvas.layer-map") != before, "sorting by latest dead fraction moved no row"
        # the picker: grouped by stage; the search leaves the matching layers (and the one shown)
        groups = frame.eval_on_selector_all("select.layer optgroup", "gs => gs.map(g => g.label)")
        assert groups[:3] == ["layer1.0", "layer1.0.downsample", "layer1.1"], groups
        shown = frame.input_value("select.layer")
        frame.fill(".layer-search", "layer4.0 conv")
        options = frame.eval_on_selector("select.layer", "s => [...s.options].map(o => o.value)")
        assert sorted(set(options) - {shown}) == ["layer4.0.conv1", "layer4.0.conv2", "layer4.0.conv3"]
        assert frame.inner_text(".layer-matches") == "3 of 53"
        # the 2048-filter layer: its heat-map pages, the page stays short
        frame.fill(".layer-search", WIDE)
        frame.press(".layer-search", "Enter")
        frame.wait_for_function(f"() => document.querySelector('select.layer').value === {WIDE!r}")
        idle(frame)
        frame.wait_for_function(
            "() => document.querySelector('.pager .page-label')?.textContent.startsWith('filters 0–127 of 2048')"
        )
        assert frame.eval_on_selector("canvas.heatmap", "c => c.height") <= 360
        height = page_height(frame)
        print(f"page height with {WIDE} in the Dead view ({scheme}): {height} px")
        assert height < MAX_PAGE_HEIGHT
        # a ReLU layer of 512 filters at a threshold that counts about half of them (right after BatchNorm a
        # unit is active at about half the positions; 331 of 512 here): 48 chips and "+N more";
        # a chip past the first page turns the heat-map to its page
        frame.fill(".layer-search", RELU_LAYER)
        frame.press(".layer-search", "Enter")
        frame.wait_for_function(f"() => document.querySelector('select.layer').value === {RELU_LAYER!r}")
        frame.fill(".threshold", "0.5")
        frame.press(".threshold", "Enter")  # commits it (a later blur then changes nothing)
        frame.wait_for_selector(".chips-more")
        idle(frame)
        dead = int(re.match(r"(\d+) of 512 filters dead", frame.inner_text(".dead-summary")).group(1))
        assert frame.locator(".dead-filters li.chip").count() == 48 < dead
        assert frame.inner_text(".chips-more") == f"+{dead - 48} more"
        frame.click(".chips-more")  # every dead filter, in a scrolling box
        frame.wait_for_function(f"() => document.querySelectorAll('.dead-filters li.chip').length === {dead}")
        numbers = [int(t.lstrip("#")) for t in frame.locator(".dead-filters li.chip").all_inner_texts()]
        filter_index = next(f for f in numbers if f >= 128)
        frame.locator(".dead-filters li.chip").nth(numbers.index(filter_index)).click()
        start = filter_index // 128 * 128
        frame.wait_for_function(
            "t => document.querySelector('.pager .page-label').textContent.startsWith(t)",
            arg=f"filters {start}–{start + 127} of 512",
        )
        assert f"Filter #{filter_index}" in frame.inner_text(".selected-filter")
        if scheme == "light":
            screenshot(page.page, shots / "deep_dead.png")


def test_activation_tiles_on_resnet50(server, browser, shots):
    with plugin_page(browser, server, RUN) as (page, frame):
        frame.click("button[data-view=activations]")
        frame.select_option("select.layer", "layer1")
        wait_drawn(frame, "canvas.activation-grid[data-mode=tiles]")
        idle(frame)
        # scaled to the width available: a 256-tile grid of 16×16 maps is drawn larger than its pixels
        natural, shown = frame.eval_on_selector(
            "canvas.activation-grid", "c => [c.width, c.getBoundingClientRect().width]"
        )
        assert shown > 2 * natural, (natural, shown)
        frame.hover("canvas.activation-grid", position={"x": 20, "y": 20})
        assert frame.inner_text(".hover-readout").startswith("channel 0 of 256 · map 16×16 · mean ")
        frame.click("canvas.activation-grid", position={"x": 20, "y": 20})
        frame.wait_for_selector("canvas.tile-big")
        assert frame.get_attribute(".tile-text", "data-channel") == "0"
        assert frame.locator("canvas.tile-big").bounding_box()["width"] >= 150  # 16 px enlarged to 160
        before = signature(frame, "canvas.activation-grid")
        frame.click(".tile-sort button[data-value=mean]")
        frame.wait_for_selector("canvas.activation-grid[data-sort=mean]")
        assert signature(frame, "canvas.activation-grid") != before, "sorting by mean drew the same tiles"
        # 2048 channels of 2×2: a bar chart of per-channel means, not speckle
        frame.select_option("select.layer", "layer4")
        wait_drawn(frame, "canvas.activation-grid[data-mode=bars]")
        idle(frame)
        frame.hover("canvas.activation-grid", position={"x": 3, "y": 130})
        assert re.match(r"channel \d+ of 2048 .*map 2×2 · mean ", frame.inner_text(".hover-readout"))
        screenshot(page.page, shots / "deep_activations.png")


STEP_JS = """async (index) => {
    const input = document.querySelector('.step-range');
    const canvas = document.querySelector('canvas.kernel-grid');
    const t0 = performance.now();
    input.value = String(index);
    input.dispatchEvent(new Event('input'));
    input.dispatchEvent(new Event('change'));
    const want = document.querySelector('.step-slider').dataset.step;
    while (canvas.dataset.step !== want) await new Promise(requestAnimationFrame);
    return performance.now() - t0;
}"""


def test_big_kernels_scrub_quickly(server, browser):
    sizes: list[int] = []
    with plugin_page(browser, server, RUN) as (page, frame):
        page.page.on(
            "response",
            lambda r: (
                sizes.append(len(r.body())) if "api/filters/kernels" in r.url and BIG in r.url else None
            ),
        )
        frame.click("button[data-view=filters]")
        frame.select_option("select.layer", BIG)
        wait_drawn(frame, "canvas.kernel-grid", STEPS)
        idle(frame)
        assert "int8" in frame.inner_text(".detail .hint")
        # each slider step fetches a step not seen yet (one request, no block of steps at this size)
        times = [frame.evaluate(STEP_JS, index) for index in (0, 1)]
        print(f"kernel slider steps of {BIG}: {[round(t) for t in times]} ms; responses {sizes} bytes")
        assert max(times) < MAX_STEP_MS, times
        assert sizes and max(sizes) < 3.3e6, sizes  # int8: 2.36 M weights as base64 (12.6 MB as float32)
        frame.click("canvas.kernel-grid", position={"x": 6, "y": 6})
        assert "within" in frame.inner_text(".quantised")
