"""Fixtures of the browser tests: one headless Chromium for the session and the screenshot folder.

Every test here needs Chromium at ``browser_helpers.CHROMIUM`` and the ``tensorboard`` executable
beside the interpreter; without them it is skipped before any fixture runs (so no logdir is built).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS
from support import TENSORBOARD


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package 'chromium'): the browser test cannot run")
    if not os.path.exists(TENSORBOARD):
        pytest.skip(f"no tensorboard executable at {TENSORBOARD}")


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright, shared by every browser test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """Where screenshots go: ``$CNNVIZ_SCREENSHOTS`` (scripts/screenshots.sh) or a temporary folder."""
    folder = os.environ.get("CNNVIZ_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
