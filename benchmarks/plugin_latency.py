"""Latency of the CNN Viz plugin's routes in a real TensorBoard under concurrent clients.

Builds (or reuses) a logdir of RUNS runs x STEPS logged steps — raw conv1 kernels, kernel
grid PNG, per-filter smoothness, probe activation PNGs and dead-filter rates of three
layers, written with tb_cnnviz.summary exactly as the callback writes them — starts the
``tensorboard`` binary on it, waits until every step is loaded, then runs CLIENTS threads
that request a mix of the routes the UI uses for DURATION seconds and prints p50/p95/max
latency per route and the error count (non-200 answers or failed connections).

    python benchmarks/plugin_latency.py                       # 10 runs x 300 steps, 8 clients, 30 s
    python benchmarks/plugin_latency.py --duration 10 --load-fast false

Target: p95 < 100 ms for the listing and the per-step routes. Exit status 1 if any
request failed or a target was missed (``--no-check`` to only report).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

from tb_cnnviz import metadata, summary

# Routes whose p95 must stay under the target: what the UI asks while you scrub and browse.
TARGET_MS = 100.0
TARGET_ROUTES = (
    "runs/list",
    "runs/steps",
    "filters/kernels (1 step)",
    "activations/step",
    "runs/image (png)",
)
LAYERS = ("features.conv1", "features.conv3", "features.conv5")
FILTERS = {"features.conv1": 32, "features.conv3": 64, "features.conv5": 128}


def build_logdir(root: Path, runs: int, steps: int, probe: int, seed: int = 0) -> None:
    """RUNS runs, each with STEPS logged steps of every kind the plugin shows."""
    from torch.utils.tensorboard import SummaryWriter  # the writer the callback uses

    rng = np.random.default_rng(seed)
    probe_pngs = [summary.encode_png(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(probe)]
    for r in range(runs):
        writer = SummaryWriter(str(root / f"run-{r:02d}"))
        try:
            kernels = rng.normal(0, 0.2, (32, 3, 3, 3)).astype(np.float32)
            for i in range(steps):
                step = (i + 1) * 100
                kernels += rng.normal(0, 0.01, kernels.shape).astype(np.float32)
                grid = ((kernels - kernels.min()) / np.ptp(kernels) * 255).astype(np.uint8)
                tiles = np.zeros((6 * 4, 6 * 8, 3), np.uint8)
                for f in range(32):
                    y, x = divmod(f, 8)
                    tiles[y * 6 + 1 : y * 6 + 4, x * 6 + 1 : x * 6 + 4] = grid[f].transpose(1, 2, 0)
                summaries = [
                    summary.tensor_summary(metadata.KERNELS, LAYERS[0], kernels),
                    summary.blob_summary(
                        metadata.KERNEL_GRID,
                        LAYERS[0],
                        [summary.encode_png(tiles)],
                        normalization="global",
                        nrow=8,
                        padding=1,
                    ),
                    summary.tensor_summary(
                        metadata.SMOOTHNESS, LAYERS[0], rng.uniform(-1, 1, 32).astype(np.float32)
                    ),
                ]
                # Activation grids: 32 channels of 8x8 tiles per probe image (as the callback draws conv5 maps).
                pngs = [
                    summary.encode_png(rng.integers(0, 255, (4 * 9 + 1, 8 * 9 + 1), dtype=np.uint8))
                    for _ in range(probe)
                ]
                summaries.append(
                    summary.blob_summary(
                        metadata.ACTIVATIONS, LAYERS[2], pngs, channels=32, nrow=8, padding=1, tile=[8, 8]
                    )
                )
                if i == 0:
                    summaries.append(
                        summary.blob_summary(
                            metadata.PROBE,
                            None,
                            probe_pngs,
                            labels=list(range(probe)),
                            class_names=[f"class {c}" for c in range(probe)],
                        )
                    )
                for layer in LAYERS:
                    rates = rng.uniform(0, 1, FILTERS[layer]).astype(np.float32)
                    rates[rng.random(FILTERS[layer]) < 0.05] = 0.0
                    summaries.append(
                        summary.tensor_summary(
                            metadata.DEAD_FILTERS, layer, rates, window=100, measured_at=layer
                        )
                    )
                summary.write(writer, summaries, step)
        finally:
            writer.close()


@contextlib.contextmanager
def tensorboard(logdir: Path, load_fast: str):
    """The real tensorboard binary on 127.0.0.1 with --port 0; yields (host, port); killed at the end."""
    binary = shutil.which("tensorboard", path=os.path.dirname(sys.executable)) or shutil.which("tensorboard")
    if binary is None:
        raise SystemExit("error: no tensorboard executable found")
    command = [
        binary,
        "--logdir",
        str(logdir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--load_fast",
        load_fast,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        port = None
        deadline = time.monotonic() + 90
        for line in process.stdout:
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if match:
                port = int(match.group(1))
                break
            if time.monotonic() > deadline:
                break
        if port is None:
            raise SystemExit("error: tensorboard did not report its port")
        threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
        yield "127.0.0.1", port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


class Client:
    """One keep-alive HTTP connection, like a browser tab."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.connection = http.client.HTTPConnection(host, port, timeout=30)

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.connection.request("GET", path, headers={"Accept-Encoding": "gzip"})
                response = self.connection.getresponse()
                body = response.read()
                if response.getheader("Content-Encoding") == "gzip":  # as a browser does
                    body = gzip.decompress(body)
                return response.status, body
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def api(route: str, **params) -> str:
    return f"/data/plugin/cnnviz/api/{route}?{urllib.parse.urlencode(params)}"


def request_mix(runs: list[str], steps: list[int], probe: int):
    """The requests the UI makes, weighted like a user browsing and scrubbing."""

    def pick():
        run, step = random.choice(runs), random.choice(steps)
        return random.choices(
            [
                ("runs/list", api("runs/list")),
                ("runs/steps", api("runs/steps", run=run, kind="kernels", layer=LAYERS[0])),
                ("filters/kernels (1 step)", api("filters/kernels", run=run, layer=LAYERS[0], step=step)),
                (
                    "filters/kernels (block of 64)",
                    api("filters/kernels", run=run, layer=LAYERS[0], step=step, count=64),
                ),
                ("filters/smoothness", api("filters/smoothness", run=run, layer=LAYERS[0])),
                ("activations/step", api("activations/step", run=run, layer=LAYERS[2], step=step)),
                (
                    "runs/image (png)",
                    api(
                        "runs/image",
                        run=run,
                        kind="activations",
                        layer=LAYERS[2],
                        step=step,
                        index=random.randrange(probe),
                    ),
                ),
                ("dead/rates", api("dead/rates", run=run, layer=random.choice(LAYERS))),
                ("dead/fractions", api("dead/fractions", run=run)),
            ],
            weights=[1, 1, 4, 1, 1, 3, 4, 1, 1],
        )[0]

    return pick


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--probe", type=int, default=4, help="probe images (activation PNGs per step)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument(
        "--load-fast",
        choices=("auto", "true", "false"),
        default="auto",
        help="TensorBoard's --load_fast (default: its Rust data server)",
    )
    parser.add_argument("--logdir", default=None, help="reuse/keep the logdir here (built if missing)")
    parser.add_argument(
        "--no-check", action="store_true", help="report only; exit 0 even if a target is missed"
    )
    args = parser.parse_args(argv)
    for name in ("runs", "steps", "probe", "clients"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.duration <= 0:
        parser.error("--duration must be > 0")

    temporary = None
    if args.logdir:
        logdir = Path(args.logdir)
    else:
        temporary = tempfile.TemporaryDirectory(prefix="cnnviz_bench_")
        logdir = Path(temporary.name)
    try:
        if not any(logdir.glob("run-*")):
            logdir.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            build_logdir(logdir, args.runs, args.steps, args.probe)
            print(
                f"built {args.runs} runs x {args.steps} steps in {time.monotonic() - started:.1f} s: {logdir}",
                flush=True,
            )
        return run(args, logdir)
    finally:
        if temporary is not None:
            temporary.cleanup()


def run(args, logdir: Path) -> int:
    runs = [f"run-{r:02d}" for r in range(args.runs)]
    steps = [(i + 1) * 100 for i in range(args.steps)]
    with tensorboard(logdir, args.load_fast) as (host, port):
        client = Client(host, port)
        started = time.monotonic()
        while True:  # every run and every step loaded
            try:
                listing = json.loads(client.get(api("runs/list"))[1])
                loaded = len(listing.get("runs", []))
                if loaded == args.runs:
                    counts = [
                        len(
                            json.loads(
                                client.get(api("runs/steps", run=r, kind="activations", layer=LAYERS[2]))[1]
                            ).get("steps", [])
                        )
                        for r in runs
                    ]
                    if min(counts) == args.steps:
                        break
            except (OSError, ValueError, http.client.HTTPException):
                pass
            if time.monotonic() - started > 300:
                print("error: TensorBoard did not load every step in 300 s", file=sys.stderr)
                return 1
            time.sleep(0.5)
        print(
            f"tensorboard (--load_fast {args.load_fast}) loaded everything in {time.monotonic() - started:.1f} s; "
            f"{args.clients} clients for {args.duration:.0f} s",
            flush=True,
        )
        pick = request_mix(runs, steps, args.probe)
        warm = time.monotonic()
        for run in runs:  # a first look at each run: the series are read once, then cached
            client.get(api("filters/kernels", run=run, layer=LAYERS[0], step=steps[0]))
            client.get(api("activations/step", run=run, layer=LAYERS[2], step=steps[0]))
            client.get(api("filters/smoothness", run=run, layer=LAYERS[0]))
            client.get(api("dead/fractions", run=run))
        print(
            f"first look at every run (reads each series once): {time.monotonic() - warm:.1f} s", flush=True
        )
        timings: dict[str, list[float]] = {}
        errors: dict[str, int] = {}
        lock = threading.Lock()
        stop_at = time.monotonic() + args.duration

        def worker(seed: int) -> None:
            random.seed(seed)
            local = Client(host, port)
            while time.monotonic() < stop_at:
                name, path = pick()
                t0 = time.perf_counter()
                try:
                    status, _ = local.get(path)
                    ok = status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    timings.setdefault(name, []).append(elapsed)
                    if not ok:
                        errors[name] = errors.get(name, 0) + 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    total = sum(len(v) for v in timings.values())
    print(
        f"\n{total} requests in {args.duration:.0f} s ({total / args.duration:.0f}/s), errors: {sum(errors.values())}\n"
    )
    print(f"{'route':32s} {'n':>6s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'errors':>6s}")
    failed = bool(errors)
    for name in sorted(timings):
        values = np.array(timings[name])
        p50, p95 = np.percentile(values, [50, 95])
        mark = ""
        if name in TARGET_ROUTES:
            mark = "  ok" if p95 < TARGET_MS else f"  over the {TARGET_MS:.0f} ms target"
            failed |= p95 >= TARGET_MS
        print(
            f"{name:32s} {len(values):6d} {p50:8.1f} {p95:8.1f} {values.max():8.1f} {errors.get(name, 0):6d}{mark}"
        )
    return 0 if args.no_check or not failed else 1


if __name__ == "__main__":
    sys.exit(main())
