"""End to end for the ``tb-cnnviz`` command line: every command (summary, filters, patterns, explain,
dream, embed) runs on the example's trained checkpoint into one logdir, then the real ``tensorboard``
binary (default Rust data server) serves it to headless Chromium, and each command's run is checked in
the view that shows it: the layer table in TensorBoard's Text tab, the kernel grid (Filters), the
pattern gallery (Patterns), the Grad-CAM cards and attribution maps (Grad-CAM), the DeepDream panel
(Patterns) and the t-SNE map (Embedding). Nothing logs a console error in the plugin's frame.

``$CNNVIZ_SCREENSHOTS=DIR`` saves one screenshot per command as ``DIR/cli-<command>.png``;
``$CNNVIZ_CLI_QUALITY=good`` uses longer optimisations and more images for those pictures
(scripts/screenshots.sh sets both); the default settings keep the test fast.
"""

from __future__ import annotations

import contextlib
import io
import os
import re

import numpy as np
import pytest
import torch
from browser_helpers import Page, idle, plugin_page, screenshot
from PIL import Image
from support import api_url, get_json, serving, train_small_vgg

from tb_cnnviz import cli
from tb_cnnviz.datasets import SHAPE_CLASSES, ShapesDataset

QUALITY = os.environ.get("CNNVIZ_CLI_QUALITY", "fast")


def _settings(layer, channels, size, steps, octaves, dream_steps, lr, dream_side, explain, embed, width):
    """The commands' settings at one quality: patterns and dream of ``layer``, and the sizes of the rest."""
    return {
        "patterns": ["--layer", layer, "--channels", channels, "--size", size, "--steps", steps],
        "dream": ["--layer", layer, "--octaves", octaves, "--steps", dream_steps, "--lr", lr],
        "dream_side": dream_side,
        "explain_images": explain,
        "embed_images": embed,
        "width": width,
        "train_steps": 400,
    }


SETTINGS = {  # fast: the test; good: the README's pictures
    "fast": _settings("features.conv3", "0-11", "32", "24", "2", "4", "0.03", 32, 4, 60, 8),
    "good": _settings("features.conv4", "0-23", "64", "256", "4", "10", "0.01", 160, 6, 400, 16),
}[QUALITY]
COMMANDS = ("summary", "filters", "patterns", "explain", "dream", "embed")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# ----------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """Every command run once into one logdir: ``{"logdir", "runs": {command: run name}, "out": {command: stdout}, ...}``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small CNN: one thread is several times faster on a busy 2-core machine
    try:
        return _run_commands(tmp_path_factory.mktemp("cli_e2e"))
    finally:
        torch.set_num_threads(threads)


def _run_commands(root) -> dict:
    """Run every command in ``root`` with relative paths, as a user would (so what they print reads naturally)."""
    here = os.getcwd()
    os.chdir(root)
    try:
        return _commands_here(root)
    finally:
        os.chdir(here)


def _commands_here(root) -> dict:
    # The example's checkpoint (what examples/cifar10/train.py --save writes: a SmallVGG state_dict),
    # trained like conftest's fixture but smaller (seconds, ~99% test accuracy on shapes).
    network = train_small_vgg(
        ShapesDataset(2000, seed=0), SETTINGS["train_steps"], width=SETTINGS["width"], batch_size=32
    )
    torch.save(network.state_dict(), "model.pt")
    dataset = ShapesDataset(max(SETTINGS["embed_images"], SETTINGS["explain_images"]), seed=21)
    images = []
    for index in range(SETTINGS["explain_images"]):
        images.append(f"{SHAPE_CLASSES[dataset.labels[index]]}-{index}.png")
        Image.fromarray(dataset.images[index]).save(images[-1])
    side = SETTINGS["dream_side"]
    Image.fromarray(dataset.images[1]).resize((side, side), Image.LANCZOS).save("photo.png")
    for index, (image, label) in enumerate(zip(dataset.images[: SETTINGS["embed_images"]], dataset.labels)):
        folder = os.path.join(
            "shapes", f"{int(label):02d}-{SHAPE_CLASSES[label]}"
        )  # sorted folders = the model's class order
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{index:04d}.png"))
    arguments = {
        "summary": ["model.pt"],
        "filters": ["model.pt", "--layer", "all"],
        "patterns": ["model.pt", *SETTINGS["patterns"]],
        "explain": ["model.pt", *images, "--class-names", ",".join(SHAPE_CLASSES)],
        "dream": ["model.pt", "photo.png", *SETTINGS["dream"]],
        "embed": ["model.pt", "shapes", "--top-k", "4"],
    }
    runs, outputs, argvs = {}, {}, {}
    for command in COMMANDS:
        before = set(os.listdir("runs")) if os.path.isdir("runs") else set()
        argv = [command, *arguments[command], "--logdir", "runs", "--no-progress"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
        assert code == 0, (command, err.getvalue())
        (run,) = set(os.listdir("runs")) - before
        assert run.startswith(f"{command}-")
        runs[command], outputs[command], argvs[command] = run, out.getvalue(), (argv, err.getvalue())
    return {
        "logdir": str(root / "runs"),
        "runs": runs,
        "out": outputs,
        "argv": argvs,
        "images": images,
        "labels": [int(v) for v in dataset.labels[: len(images)]],
        "embed_classes": len(set(int(v) for v in dataset.labels[: SETTINGS["embed_images"]])),
    }


@pytest.fixture(scope="module")
def server(made):
    shown = {
        made["runs"][command] for command in COMMANDS if command != "summary"
    }  # summary writes text only
    with serving(made["logdir"], shown) as base:
        yield base


def _view(frame, view: str) -> None:
    frame.click(f"button[data-view={view}]")
    frame.wait_for_selector(f"button[data-view={view}][aria-selected=true]")


@contextlib.contextmanager
def _plugin_view(browser, server: str, run: str, view: str):
    """``plugin_page`` open on ``run`` with the ``view`` tab selected."""
    with plugin_page(browser, server, run) as (page, frame):
        _view(frame, view)
        yield page, frame


def _pixels(frame, selector: str) -> dict:
    """Statistics of a canvas's RGBA pixels as the browser drew them (computed in the page: no megabytes over the wire)."""
    return frame.eval_on_selector(
        selector,
        """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let alphaMin = 255, alphaMax = 0, sum = 0, squares = 0, n = 0;
        for (let i = 0; i < d.length; i += 4) {
            alphaMin = Math.min(alphaMin, d[i + 3]); alphaMax = Math.max(alphaMax, d[i + 3]);
            for (let k = 0; k < 3; k++) { sum += d[i + k]; squares += d[i + k] * d[i + k]; n++; }
        }
        const mean = sum / n;
        return {width: c.width, height: c.height, alphaMin, alphaMax, mean, std: Math.sqrt(Math.max(squares / n - mean * mean, 0))};
    }""",
    )


def _difference(frame, first: str, second: str) -> float:
    """Mean absolute RGB difference of two canvases of the same size (0..255)."""
    return frame.evaluate(
        """([a, b]) => {
        const pixels = (s) => { const c = document.querySelector(s); return c.getContext('2d').getImageData(0, 0, c.width, c.height).data; };
        const x = pixels(a), y = pixels(b);
        if (x.length !== y.length) return -1;
        let total = 0;
        for (let i = 0; i < x.length; i += 4) for (let k = 0; k < 3; k++) total += Math.abs(x[i + k] - y[i + k]);
        return total / (x.length / 4 * 3);
    }""",
        [first, second],
    )


# ----------------------------------------------------------------------------- one test per command
def test_summary_prints_the_layer_table_and_logs_it_to_the_text_tab(made, server, browser, shots):
    out = made["out"]["summary"]
    conv5 = next(line.split() for line in out.splitlines() if line.startswith("features.conv5 "))
    assert conv5[:2] == ["features.conv5", "Conv2d"] and "parameters: " in out
    page = Page(browser)
    try:
        page.page.goto(f"{server}/#text")
        page.page.get_by_label(re.compile("filter runs")).fill(f"^{made['runs']['summary']}$")
        cell = page.page.wait_for_selector("td:text-is('features.conv5')", state="attached", timeout=30_000)
        row = cell.evaluate("td => [...td.parentElement.children].map(c => c.textContent.trim())")
        assert row[:2] == ["features.conv5", "Conv2d"] and row[3] == conv5[-2] and row[4] == "yes"
        names = [
            line.split()[0]
            for line in out.splitlines()
            if line.startswith(("features.", "pool", "flatten", "classifier"))
        ]
        shown = [
            text.split()[0] for text in page.page.locator("td:first-child").all_inner_texts() if text.strip()
        ]
        assert [
            name for name in shown if name in names
        ] == names  # every layer of the printed table, in order
    finally:
        page.close()
    # The picture: the command as typed and what it printed (the Text tab's card scrolls after a dozen rows).
    argv, err = made["argv"]["summary"]
    page = Page(browser)
    try:
        page.page.set_viewport_size({"width": 900, "height": 300})
        page.page.set_content(
            "<html><body style='margin:0;background:#1e1e1e'><pre id=terminal style='margin:0;padding:14px 18px;"
            'color:#ddd;font:13px/1.45 "DejaVu Sans Mono",monospace;white-space:pre\'></pre></body></html>'
        )
        page.page.eval_on_selector(
            "#terminal",
            "(el, text) => { el.textContent = text; }",
            f"$ tb-cnnviz {' '.join(argv)}\n{err}{out}",
        )
        screenshot(page.page, shots / "cli-summary.png")
    finally:
        page.close()


def test_filters_run_in_the_filters_view(made, server, browser, shots):
    with _plugin_view(browser, server, made["runs"]["filters"], "filters") as (page, frame):
        frame.wait_for_function("() => document.querySelector('canvas.kernel-grid')?.dataset.step === '0'")
        idle(frame)
        layers = frame.eval_on_selector("select.layer", "s => [...s.options].map(o => o.value)")
        assert layers == [f"features.conv{i}" for i in range(1, 6)]
        grid = _pixels(frame, "canvas.kernel-grid")
        assert grid["alphaMax"] == 255 and grid["std"] > 20, grid  # kernels drawn, not a blank canvas
        screenshot(page.page, shots / "cli-filters.png")


def test_patterns_run_in_the_patterns_view(made, server, browser, shots):
    layer, channels = SETTINGS["patterns"][1], SETTINGS["patterns"][3]
    first, last = (int(v) for v in channels.split("-"))
    with _plugin_view(browser, server, made["runs"]["patterns"], "patterns") as (page, frame):
        frame.wait_for_selector("canvas.pattern-grid[data-step='0']")
        idle(frame)
        assert frame.input_value("select.layer") == layer
        assert f"{last - first + 1} filters" in frame.inner_text(".panel-note")
        answer = get_json(api_url(server, "patterns/step", run=made["runs"]["patterns"], layer=layer, step=0))
        assert answer["channels"] == list(range(first, last + 1)) and all(
            v is not None for v in answer["values"]
        ), answer["values"]
        assert np.mean(answer["values"]) > 0, answer["values"]  # optimised to excite: mostly positive
        assert frame.locator(".dream-section").is_hidden()  # no dream in this run: no DeepDream panel
        width = frame.eval_on_selector("canvas.pattern-grid", "c => c.width")
        frame.click(".tile-size button[data-value=large]")
        frame.wait_for_function(
            "w => document.querySelector('canvas.pattern-grid').width !== w", arg=width
        )  # re-laid out
        screenshot(page.page, shots / "cli-patterns.png")
        frame.click("canvas.pattern-grid", position={"x": 8, "y": 8})
        frame.wait_for_selector(
            ".pattern-detail[data-filter='0']"
        )  # the run has no kernels: the pattern alone
        assert re.fullmatch(r"-?\d+\.\d{3} at step 0", frame.inner_text(".reached-value"))


def test_explain_run_in_the_gradcam_view(made, server, browser, shots):
    count = len(made["images"])
    with _plugin_view(browser, server, made["runs"]["explain"], "gradcam") as (page, frame):
        frame.wait_for_selector(".cam-grid[data-step='0']")
        idle(frame)
        assert frame.locator(".cam-card").count() == count
        answer = get_json(
            api_url(server, "gradcam/step", run=made["runs"]["explain"], layer="features.conv5", step=0)
        )
        assert [image["predicted"] for image in answer["images"]] == made[
            "labels"
        ]  # the trained model is right
        assert frame.locator(".cam-card.misclassified").count() == 0
        frame.click(".cam-card[data-index='0']")
        frame.wait_for_selector(
            ".attribution-figures figure:nth-child(5)"
        )  # image, Grad-CAM, saliency, guided, occlusion
        frame.wait_for_function(
            "() => [...document.querySelectorAll('canvas.attribution-map')].every(c => c.dataset.drawn === 'true')"
        )
        row = frame.inner_text(".attribution-row")
        assert all(method in row for method in ("saliency", "guided", "occlusion"))
        screenshot(page.page, shots / "cli-explain.png")


def test_dream_run_shows_the_deepdream_panel(made, server, browser, shots):
    run = made["runs"]["dream"]
    layers = SETTINGS["dream"][1].split(",")
    printed = float(made["out"]["dream"].split("(gain x")[1].split(")")[0])
    with _plugin_view(browser, server, run, "patterns") as (page, frame):
        frame.wait_for_selector(".dream-card canvas.dream-image[data-drawn=true] >> nth=1")
        idle(frame)
        assert (
            frame.locator(".message.empty").count() == 0 and frame.locator("canvas.pattern-grid").count() == 0
        )
        assert frame.locator(".dream-card").count() == 1
        assert frame.get_attribute(".dream-card", "data-layer") == "+".join(layers)
        assert frame.inner_text(".dream-layers") == ", ".join(layers)
        side = SETTINGS["dream_side"]
        assert [frame.get_attribute(f"canvas.dream-image >> nth={i}", "data-natural") for i in (0, 1)] == [
            f"{side}x{side}"
        ] * 2
        gain = float(frame.inner_text(".dream-gain").lstrip("×"))
        assert gain == pytest.approx(printed, abs=0.006) and gain > 1
        original = _pixels(frame, ".dream-card figure:nth-child(1) canvas")
        assert original["alphaMin"] == 255 and original["std"] > 10, original  # the picture fills its canvas
        assert original["width"] == original["height"] >= 160  # shown enlarged
        change = _difference(
            frame, ".dream-card figure:nth-child(1) canvas", ".dream-card figure:nth-child(2) canvas"
        )
        assert change > 3, change  # the dream differs visibly from the original
        screenshot(page.page, shots / "cli-dream.png")
        # Beside the patterns run: its gallery, and the DeepDream panel of the dream run only.
        frame.select_option("select.run-b", made["runs"]["patterns"])
        frame.wait_for_selector(
            f".panel[data-run='{made['runs']['patterns']}'] canvas.pattern-grid[data-step='0']"
        )
        idle(frame)
        assert (
            frame.locator(".dream-panel").count() == 1
            and frame.get_attribute(".dream-panel", "data-run") == run
        )
        assert frame.locator(".dream-card canvas.dream-image[data-drawn=true]").count() == 2


def test_embed_run_in_the_embedding_view(made, server, browser, shots):
    with _plugin_view(browser, server, made["runs"]["embed"], "embedding") as (page, frame):
        frame.wait_for_selector("canvas.scatter[data-step='0']")
        idle(frame)
        frame.wait_for_function("() => document.querySelector('canvas.scatter').dataset.animating !== 'true'")
        assert int(frame.get_attribute("canvas.scatter", "data-visible")) == SETTINGS["embed_images"]
        assert frame.locator(".legend-item").count() == made["embed_classes"]  # one per folder
        accuracy = float(re.search(r"accuracy ([\d.]+)%", frame.inner_text(".panel-note")).group(1))
        # The trained model's predictions agree with the folders. train_small_vgg is deterministic (one
        # thread, cosine decay); measured 96.7-100% on these 60 images (95.0-99.8% on 400) over training
        # seeds 0-5 x {1, 2} threads; at a constant rate it was 78.3-100%.
        assert accuracy > 90
        x, y = frame.evaluate("() => document.querySelector('canvas.scatter').pointAt(3)")
        box = frame.locator("canvas.scatter").bounding_box()
        frame.page.mouse.move(box["x"] + x, box["y"] + y)
        frame.wait_for_selector(".scatter-tip:not([hidden]) canvas.tip-thumb")
        screenshot(page.page, shots / "cli-embed.png")
        frame.click(".controls .open-top")  # each filter's top images: their own tab
        frame.wait_for_selector(".top-panel[data-filter='0'] .top-example canvas")
        assert frame.locator(".top-panel .top-example").count() == 4  # --top-k 4
