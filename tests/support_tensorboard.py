"""The real ``tensorboard`` binary on a free port, asked for JSON (browser tests and the plugin's
damaged-logdir test): ``tensorboard``, ``serving``, ``http_get``, ``get_json``, ``wait_for``, ``api_url``. Test
modules import these from ``support``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

TENSORBOARD = str(Path(sys.executable).with_name("tensorboard"))


@contextlib.contextmanager
def tensorboard(logdir: str, *extra: str):
    """The real tensorboard binary on 127.0.0.1 with --port 0; yields its base URL; always killed."""
    command = [
        TENSORBOARD,
        "--logdir",
        logdir,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--reload_interval",
        "1",
        *extra,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[str] = []
    found = threading.Event()
    port: list[int] = []

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if match and not port:
                port.append(int(match.group(1)))
                found.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not found.wait(60):
            raise AssertionError(
                f"tensorboard did not report a port in 60 s; output:\n{''.join(lines)[-3000:]}"
            )
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # its own session: tensorboard and its data server
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@contextlib.contextmanager
def serving(logdir: str, runs, *extra: str, series: tuple | None = None):
    """``tensorboard(logdir, *extra)``, yielded once ``api/runs/list`` names exactly ``runs`` and, with
    ``series=(run, kind, layer, count)``, that series has ``count`` steps: TensorBoard loads a logdir in
    the background, and a test that starts earlier sees part of it."""
    with tensorboard(logdir, *extra) as base:
        wanted = set(runs)
        wait_for(
            lambda: {r["name"] for r in get_json(api_url(base, "runs/list"))["runs"]} == wanted,
            what=f"the runs {sorted(wanted)} listed",
        )
        if series is not None:
            run, kind, layer, count = series
            url = api_url(base, "runs/steps", run=run, kind=kind, layer=layer)
            wait_for(
                lambda: len(get_json(url)["steps"]) == count, what=f"{count} steps of {kind} {layer} in {run}"
            )
        yield base


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET (an HTTP error status is returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_json(url: str) -> Any:
    """The JSON answer of a GET that must succeed."""
    status, body = http_get(url)
    assert status == 200, (url, status, body[:300])
    return json.loads(body)


def wait_for(predicate: Callable[[], Any], timeout: float = 40, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def api_url(base: str, route: str, **params: Any) -> str:
    """URL of a plugin route on a running TensorBoard."""
    return f"{base}/data/plugin/cnnviz/api/{route}?{urllib.parse.urlencode(params)}"
