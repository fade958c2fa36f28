"""The tab uses the screen's width, in Chromium over the real TensorBoard (inside TensorBoard's page, light and
with TensorBoard's dark-mode class on its body): compared panels fill the row (4 to a row at 1920 px, 2 + 2 at
1280, one to a row at 900 with nothing wider than the page), one run's panel takes the whole row with the
filter's details and smoothness chart beside its kernel grid at 1280 and 1920 (below it at 900); a compared
panel says its step once. Sync by epoch: two runs with different steps per epoch line up at the same epoch;
and a run whose layer names sort against its model's order shows its first conv for the other's first conv.
The Activations, Dead filters, Grad-CAM and Patterns views keep to the same grid without cutting a figure (the
Dead filters list beside its charts)."""

from __future__ import annotations

import os
import re
import urllib.parse

import pytest
import torch
from browser_helpers import Page, idle, open_plugin, screenshot
from support import TwoConvNet, consecutive_batches, fit_with_callback, serving, wait_for
from torch import nn

from tb_cnnviz.models import small_vgg

pytestmark = [pytest.mark.browser]
A, B, STEM, SPARSE = "vgg_4_per_epoch", "vgg_6_per_epoch", "stem_first", "vgg_no_epochs"
VGG_LAYERS = ["features.conv1", "features.conv2", "features.conv4"]
PANEL_BACKGROUND = {"light": "rgb(255, 255, 255)", "dark": "rgb(43, 44, 47)"}  # style.css --panel


def _train(logdir: str, model: nn.Module, layers: list[str], every: int, per_epoch: int, epochs: int | None):
    """Kernels every ``every`` steps (global step from 1); ``on_epoch_end`` after every ``per_epoch`` steps
    (``epochs`` None: a loop that never calls it, 3 epochs' worth of steps)."""
    from tb_cnnviz.callbacks import CNNVizCallback

    steps = per_epoch * (epochs or 3)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8 * steps, 3, 16, 16, generator=generator)
    labels = torch.randint(0, 10, (8 * steps,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    batch = consecutive_batches(images, labels, 8)
    # activations, dead filters, Grad-CAM and a small pattern gallery too (at the first step and each epoch end)
    probe = (images[:4], labels[:4])
    with CNNVizCallback(
        model,
        log_dir=logdir,
        probe=probe,
        pattern_layers=layers[-1:],
        pattern_channels=4,
        pattern_steps=2,
        pattern_size=16,
        kernel_layers=layers,
        every_n_steps={"kernels": every},
        background=False,
    ) as viz:
        for start in range(1, steps + 1, per_epoch):
            fit_with_callback(model, viz, optimizer, range(start, start + per_epoch), batch)
            if epochs is not None:
                viz.on_epoch_end(start + per_epoch - 1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout_e2e")
    torch.manual_seed(0)
    _train(os.path.join(root, A), small_vgg(width=8), VGG_LAYERS, every=2, per_epoch=4, epochs=3)
    _train(os.path.join(root, B), small_vgg(width=8), VGG_LAYERS, every=3, per_epoch=6, epochs=3)
    _train(
        os.path.join(root, STEM), TwoConvNet("stem", "body"), ["stem", "body"], every=2, per_epoch=5, epochs=2
    )
    _train(os.path.join(root, SPARSE), small_vgg(width=8), VGG_LAYERS, every=3, per_epoch=4, epochs=None)
    with serving(str(root), {A, B, STEM, SPARSE}) as base:
        yield base


DRAWN = {  # what each view draws in a panel once its step is shown
    "filters": "canvas.kernel-grid[data-step]",
    "activations": "canvas.activation-grid[data-step]",
    "dead": "canvas.heatmap",
    "gradcam": ".cam-card",
    "patterns": "canvas.pattern-grid[data-step]",
}


def _tab(
    browser, base: str, width: int, scheme: str, runs: list[str], view: str = "filters"
) -> tuple[Page, object]:
    """TensorBoard's page at ``width`` px showing ``view`` of ``runs`` (a link's state), dark through
    TensorBoard's own dark-mode class on its body; the CNN Viz frame drawn and idle."""
    state = urllib.parse.urlencode(
        [("view", view), ("run", runs[0]), *[("compare", run) for run in runs[1:]]]
    )
    page = Page(browser)
    page.page.set_viewport_size({"width": width, "height": 1000})
    page.page.goto(f"{base}/#cnnviz&cnnviz={urllib.parse.quote(state, safe='')}")
    frame = page.page.wait_for_selector("iframe", timeout=30_000).content_frame()
    frame.wait_for_selector("#cnnviz[data-host=tensorboard]")
    if scheme == "dark":
        page.page.evaluate("() => document.body.classList.add('dark-mode')")
    frame.wait_for_function(f"() => document.documentElement.dataset.theme === '{scheme}'")
    frame.wait_for_function(
        "([s, n]) => [...document.querySelectorAll('.panel')].filter(p => p.querySelector(s)).length === n",
        arg=[DRAWN[view], len(runs)],
    )
    idle(frame)
    frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return page, frame


BOXES_JS = """() => {
    const box = (el) => { if (!el) return null; const b = el.getBoundingClientRect();
        return {left: b.left, right: b.right, top: b.top, bottom: b.bottom, width: b.width}; };
    const row = document.querySelector('.panels');
    return {
        row: box(row), columns: row.dataset.columns, wide: row.dataset.wide,
        page: {scroll: document.documentElement.scrollWidth, inner: window.innerWidth},
        panels: [...row.querySelectorAll(':scope > .panel')].map(p => ({
            run: p.dataset.run, box: box(p), cut: p.scrollWidth > p.clientWidth + 1,
            background: getComputedStyle(p).backgroundColor,
            figure: box(p.querySelector('.figure')), grid: box(p.querySelector('canvas.kernel-grid')),
            detail: box(p.querySelector('.detail')), chart: box(p.querySelector('.chart-box')),
            list: box(p.querySelector('.dead-list')),
            shown: p.dataset.shownStep,
            said: (p.querySelector('.panel-step').hidden ? '' : p.querySelector('.panel-step').textContent)
                + ' | ' + p.querySelector('.panel-note').textContent,
        })),
    };
}"""


def _near(a: float, b: float, tolerance: float = 1.5) -> bool:
    return abs(a - b) <= tolerance


def _rows(panels: list[dict]) -> list[list[dict]]:
    """The panels grouped by the row they sit on, each row left to right."""
    rows: dict[float, list[dict]] = {}
    for p in panels:
        rows.setdefault(round(p["box"]["top"]), []).append(p)
    return [sorted(row, key=lambda p: p["box"]["left"]) for _, row in sorted(rows.items())]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_panels_fill_the_row_and_details_sit_beside_the_grid(server, browser, shots, scheme):
    # width -> panels to a row for four runs (the rows balanced: 2 + 2 at 1280, not 3 + 1)
    for width, per_row in ((1920, 4), (1280, 2), (900, 1)):
        page, frame = _tab(browser, server, width, scheme, [A, B, STEM, SPARSE])
        try:
            got = frame.evaluate(BOXES_JS)
            row, rows = got["row"], _rows(got["panels"])
            assert got["page"]["scroll"] <= got["page"]["inner"], (width, got["page"])  # no sideways scroll
            assert [len(r) for r in rows] == [per_row] * (4 // per_row), (width, [len(r) for r in rows])
            for r in rows:  # each row filled: from the row's left edge to its right edge, equal widths
                assert _near(r[0]["box"]["left"], row["left"]) and _near(
                    r[-1]["box"]["right"], row["right"]
                ), (
                    width,
                    row,
                    [p["box"] for p in r],
                )
                assert all(_near(p["box"]["width"], r[0]["box"]["width"]) for p in r)
            for p in got["panels"]:
                assert not p["cut"], (width, p["run"])  # the kernel grid fits its panel
                assert p["background"] == PANEL_BACKGROUND[scheme], (width, p["run"], p["background"])
                # The step is said once: "step N" in the step line, not again in the view's note.
                assert len(re.findall(rf"\bstep {p['shown']}\b", p["said"])) == 1, p["said"]
            if width == 1920:
                screenshot(page.page, shots / f"layout-four-runs-{scheme}.png", full_page=False)
            assert page.problems == []
        finally:
            page.close()

    for width, beside in ((1920, True), (1280, True), (900, False)):
        page, frame = _tab(browser, server, width, scheme, [A])
        try:
            frame.click(".panel canvas.kernel-grid", position={"x": 5, "y": 5})  # filter #0: the details
            frame.wait_for_selector(".filter-detail[data-filter='0']")
            got = frame.evaluate(BOXES_JS)
            (p,) = got["panels"]
            assert got["page"]["scroll"] <= got["page"]["inner"], (width, got["page"])
            assert _near(p["box"]["left"], got["row"]["left"]) and _near(
                p["box"]["right"], got["row"]["right"]
            )
            grid, detail, chart = p["grid"], p["detail"], p["chart"]
            if beside:  # right of the grid, starting at its top; the chart under the details, still beside
                assert detail["left"] >= grid["right"] + 12 and detail["top"] < grid["bottom"], (width, p)
                assert chart["left"] >= grid["right"] + 12 and chart["top"] >= detail["bottom"] - 1, (
                    width,
                    p,
                )
                assert got["wide"] == "true"
            else:  # below the grid, at its left edge
                assert detail["top"] >= grid["bottom"] and _near(detail["left"], p["figure"]["left"]), (
                    width,
                    p,
                )
                assert got["wide"] == "false"
            assert p["background"] == PANEL_BACKGROUND[scheme]
            if width == 1280:
                screenshot(page.page, shots / f"layout-one-run-{scheme}.png", full_page=False)
            assert page.problems == []
        finally:
            page.close()


def _select_step(frame, step: int) -> None:
    frame.eval_on_selector(
        ".step-range",
        "(el, step) => { el.value = String(window.cnnviz.view.steps().indexOf(step));"
        " el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); }",
        step,
    )
    frame.wait_for_function(f"() => document.querySelector('.step-slider').dataset.step === '{step}'")
    frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    idle(frame)


def _shown(frame) -> dict:
    return frame.eval_on_selector_all(
        ".panel",
        """ps => Object.fromEntries(ps.map(p => [p.dataset.run, {
            layer: p.dataset.layer, shown: Number(p.dataset.shownStep),
            grid: p.querySelector('canvas.kernel-grid')?.dataset.step,
            line: p.querySelector('.panel-step').textContent, note: p.querySelector('.panel-note').textContent}]))""",
    )


def test_sync_by_epoch_lines_up_runs_with_different_steps_per_epoch(server, browser, shots):
    page, frame = open_plugin(browser, server, A)
    try:
        frame.click("button[data-view=filters]")
        frame.select_option("select.run-b", B)
        frame.wait_for_function(
            "() => document.querySelectorAll('.panel canvas.kernel-grid[data-step]').length === 2"
        )
        # Both runs log their epochs (4 and 6 steps each): "epoch" is offered.
        offered = frame.eval_on_selector(
            "select.sync-mode", "s => [s.querySelector('option[value=epoch]').disabled, s.dataset.epochs]"
        )
        assert offered == [False, "true"], offered
        frame.select_option("select.sync-mode", "epoch")
        # The slider moves over the first run's steps (kernels every 2: 1, 2, 4, ..., 12).
        wait_for(
            lambda: frame.evaluate("() => window.cnnviz.view.steps()") == [1, 2, 4, 6, 8, 10, 12],
            what="A's steps",
        )
        # Step 8 of A ends its epoch 2 (epochs end at 4, 8, 12): B shows step 12, the end of its epoch 2.
        _select_step(frame, 8)
        shown = _shown(frame)
        assert (shown[A]["shown"], shown[B]["shown"]) == (8, 12), shown
        assert shown[B]["grid"] == "12" and "epoch 2.00" in shown[B]["line"], shown[B]
        # Step 6 of A is half way through its epoch 2 (1.50): B at 6 + 0.5 * 6 = 9, logged (every 3).
        _select_step(frame, 6)
        shown = _shown(frame)
        assert (shown[A]["shown"], shown[B]["shown"]) == (6, 9) and shown[B]["grid"] == "9", shown
        assert "epoch 1.50" in shown[B]["line"]
        # Step 10 (2.50): B at 12 + 0.5 * 6 = 15.
        _select_step(frame, 10)
        assert _shown(frame)[B]["shown"] == 15
        # The link keeps the sync mode.
        frame.click("button.copy-link")
        link = frame.get_attribute("button.copy-link", "data-url")
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(link).fragment)["sync"] == ["epoch"]

        # A run that logs no epochs: by epoch is off again (the tooltip says why), the runs line up by step.
        frame.select_option("select.run-b", SPARSE)
        frame.wait_for_selector(f".panel[data-run={SPARSE}] canvas.kernel-grid[data-step]")
        idle(frame)
        off = frame.eval_on_selector(
            "select.sync-mode", "s => [s.querySelector('option[value=epoch]').disabled, s.value, s.title]"
        )
        assert off[0] is True and off[1] == "step" and "log" in off[2], off
        screenshot(page.page, shots / "compare-sync-by-epoch.png", full_page=False)
        assert page.problems == []
    finally:
        page.close()


def test_a_run_whose_names_sort_against_its_order_shows_its_first_conv_for_the_first_conv(server, browser):
    """The stem-first run's convs (``support.TwoConvNet("stem", "body")``) are body and stem by name, stem then
    body in the model (its layer_order record): for SmallVGG's first conv it shows stem, for its last kernel
    layer body."""
    page, frame = open_plugin(browser, server, A)
    try:
        frame.click("button[data-view=filters]")
        frame.select_option("select.run-b", STEM)
        frame.select_option("select.layer", "features.conv1")
        frame.wait_for_selector(f".panel[data-run={STEM}][data-layer=stem] canvas.kernel-grid[data-step]")
        frame.select_option("select.layer", "features.conv4")
        frame.wait_for_selector(f".panel[data-run={STEM}][data-layer=body] canvas.kernel-grid[data-step]")
        idle(frame)
        assert page.problems == []
    finally:
        page.close()


@pytest.mark.parametrize("view", ["activations", "dead", "gradcam", "patterns"])
def test_other_views_fill_the_row_without_cutting_a_figure(server, browser, shots, view):
    """The same grid in the views with wider figures: 4 runs at 1920 px on one row, one run across the row at
    1280 px; nothing wider than its panel or the page."""
    for width, runs, per_row in ((1920, [A, B, STEM, SPARSE], 4), (1280, [A], 1)):
        page, frame = _tab(browser, server, width, "light", runs, view)
        try:
            got = frame.evaluate(BOXES_JS)
            row, rows = got["row"], _rows(got["panels"])
            assert got["page"]["scroll"] <= got["page"]["inner"], (view, width, got["page"])
            assert [len(r) for r in rows] == [per_row], (view, width, [len(r) for r in rows])
            assert _near(rows[0][0]["box"]["left"], row["left"]) and _near(
                rows[0][-1]["box"]["right"], row["right"]
            )
            assert [p["run"] for p in got["panels"] if p["cut"]] == [], (view, width)
            if (
                view == "dead" and width == 1280
            ):  # one run: its dead-filter list beside the charts, at their top
                (p,) = got["panels"]
                assert (
                    p["list"]["left"] >= p["figure"]["right"] + 12
                    and p["list"]["top"] < p["figure"]["bottom"]
                ), p
            if width == 1920:
                screenshot(page.page, shots / f"layout-four-runs-{view}.png", full_page=False)
            assert page.problems == []
        finally:
            page.close()
