"""Helpers of the browser tests: a recorded Chromium page, the plugin opened on its own, waits and
canvas fingerprints. The ``tensorboard`` server and its URLs are in ``tests/support.py``; the
fixtures (``browser``, ``shots``) in ``conftest.py`` beside this file. Test modules import from
these two modules, never from ``conftest`` or from each other.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS_RUN = "<img src=x onerror=alert(1)>"
IDLE_JS = (
    "() => document.getElementById('cnnviz')?.dataset.loading === 'false'"
    " && !document.querySelector('.panel-loading')"
)


# ------------------------------------------------------------------------------- pages
class Page:
    """A page with console errors, page errors and dialogs recorded (any of them fails the test)."""

    def __init__(self, browser, color_scheme: str = "light"):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=color_scheme)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on(
            "dialog", lambda dialog: (self.problems.append(f"dialog: {dialog.message}"), dialog.dismiss())
        )

    def _console(self, message) -> None:
        if message.type != "error":
            return
        if (message.location or {}).get("url", "").endswith("/favicon.ico"):
            return  # TensorBoard's plugin_entry.html has no favicon when opened on its own
        self.problems.append(f"console error: {message.text} at {message.location}")

    def close(self) -> None:
        self.context.close()


def open_plugin(browser, base: str, run: str | None = None, scheme: str = "light") -> tuple[Page, Any]:
    """The plugin's page opened on its own (TensorBoard's plugin_entry.html), ``run`` chosen."""
    page = Page(browser, color_scheme=scheme)
    page.page.goto(f"{base}/data/plugin_entry.html?name=cnnviz")
    frame = page.page.main_frame
    frame.wait_for_selector("#cnnviz[data-host=standalone]")
    if run is not None:
        frame.select_option("select.run-a", run)
    return page, frame


@contextlib.contextmanager
def plugin_page(
    browser, base: str, run: str | None = None, scheme: str = "light"
) -> Iterator[tuple[Page, Any]]:
    """``open_plugin``'s page and frame for the block, closed after it; a block that ends without an error
    must have recorded no console error, page error or dialog (``Page.problems``)."""
    page, frame = open_plugin(browser, base, run, scheme)
    try:
        yield page, frame
        assert page.problems == [], page.problems
    finally:
        page.close()


def choose_kernel(frame, layer: str, position: dict) -> int:
    """In the Filters tab, the filter of ``layer`` clicked at ``position`` in the kernel grid once it is drawn;
    waits until its detail (with the Top images link) shows; returns that filter's index."""
    frame.click("button[data-view=filters]")
    frame.wait_for_selector("canvas.kernel-grid")
    frame.select_option("select.layer", layer)
    frame.wait_for_function("() => document.querySelector('canvas.kernel-grid').dataset.step !== undefined")
    idle(frame)
    frame.click("canvas.kernel-grid", position=position)
    frame.wait_for_selector(".filter-detail .open-top")
    return int(frame.get_attribute(".filter-detail", "data-filter"))


def signature(frame, selector: str) -> str:
    """A fingerprint of what a canvas shows."""
    data = frame.eval_on_selector(selector, "c => c.toDataURL()")
    return hashlib.sha1(data.encode()).hexdigest()


def screenshot(page, path: Path, full_page: bool = True) -> None:
    """Save a screenshot, with no focus ring on whatever was clicked last."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(path), full_page=full_page)


def wait_drawn(frame, selector: str, step: int | None = None) -> None:
    """Wait until a canvas is drawn (at ``step`` when given)."""
    at_step = f"&& c.dataset.step === {str(step)!r}" if step is not None else ""
    condition = (
        f"s => {{ const c = document.querySelector(s); "
        f"return c && c.width > 1 && c.dataset.step !== undefined {at_step}; }}"
    )
    frame.wait_for_function(condition, arg=selector, timeout=30_000)


def idle(frame) -> None:
    """Wait until the plugin has nothing loading (header and every panel)."""
    frame.wait_for_function(IDLE_JS, timeout=30_000)


def slider_step(frame) -> int:
    """The step the step slider shows."""
    return int(frame.locator(".step-slider").get_attribute("data-step"))
