"""What ``benchmarks/scale.py`` asks a running TensorBoard: ``runs/list`` until every run is loaded, the main
routes under concurrent keep-alive clients (latency), and the steps each view's slider reaches."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import random
import threading
import time

import numpy as np
from plugin_latency import Client, api
from tensorboard_process import Tensorboard

ROUTES = (
    "runs/list",
    "filters/kernels",
    "dead/fractions",
    "gradcam/step",
    "activations/step",
    "runs/image",
)
# the summary kinds whose steps a view's slider moves over (the first one logged): runs written before and
# after the callback stopped writing Grad-CAM overlays (the view draws them from gradcam_maps)
SLIDERS = {
    "kernels": ("kernels",),
    "activations": ("activations",),
    "gradcam": ("gradcam", "gradcam_maps"),
    "dead_filters": ("dead_filters",),
}


def expected_series(manifest: dict, known_kinds: set[str]) -> dict[tuple[str, str | None], int]:
    """``(kind, layer) -> last logged step`` of the series the plugin indexes (kinds it knows)."""
    found = {}
    for key, steps in manifest["series"].items():
        kind, layer = key.split("|", 1)
        if kind in known_kinds:
            found[(kind, layer or None)] = max(steps)
    return found


def listed_last_steps(run: dict) -> dict[tuple[str, str | None], int]:
    found = {(kind, None): entry.get("max_step") for kind, entry in (run.get("kinds") or {}).items()}
    for layer in run.get("layers") or []:
        for kind, entry in layer["kinds"].items():
            found[(kind, layer["name"])] = entry.get("max_step")
    return found


def wait_loaded(server: Tensorboard, client: Client, manifest: dict, runs: list[str], timeout: float) -> dict:
    """Poll ``runs/list`` until every run lists the last step of every series it logged."""
    complete = 0
    expected = None
    while True:
        elapsed = time.monotonic() - server.started
        if not server.alive():
            return {"load_s": None, "complete_runs": complete, "why": "stopped"}
        if elapsed > timeout:
            return {"load_s": None, "complete_runs": complete, "why": f"not loaded in {timeout:.0f} s"}
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            status, body = client.get(api("runs/list"))
            if status == 200:
                listing = json.loads(body)
                if expected is None:
                    expected = expected_series(manifest, set(listing.get("kinds") or []))
                listed = {run["name"]: listed_last_steps(run) for run in listing.get("runs", [])}
                complete = sum(
                    all((listed.get(name) or {}).get(key) == last for key, last in expected.items())
                    for name in runs
                )
                if complete == len(runs):
                    return {
                        "load_s": time.monotonic() - server.started,
                        "complete_runs": complete,
                        "why": None,
                    }
        time.sleep(0.5)


@dataclasses.dataclass
class Plan:
    """What the clients ask about: per slider (``SLIDERS``) its kind, its layers and the steps logged there."""

    runs: list[str]
    kinds: dict  # slider -> the summary kind whose steps it lists
    layers: dict  # slider -> [layer, ...] (empty: not logged)
    steps: dict  # (slider, layer) -> logged steps


def plan_of(manifest: dict, runs: list[str]) -> Plan:
    logged: dict[str, dict[str, list[int]]] = {}
    for key, steps in manifest["series"].items():
        kind, layer = key.split("|", 1)
        if layer:
            logged.setdefault(kind, {})[layer] = steps
    kinds, layers, steps = {}, {}, {}
    for slider, candidates in SLIDERS.items():
        kind = next((kind for kind in candidates if kind in logged), candidates[0])
        kinds[slider], layers[slider] = kind, list(logged.get(kind, {}))
        for layer in layers[slider]:
            steps[(slider, layer)] = logged[kind][layer]
    return Plan(runs, kinds, layers, steps)


def request_for(route: str, plan: Plan, rng: random.Random) -> str | None:
    """A random request of ``route`` as the UI makes it (None: the logdir has no such data)."""
    run = rng.choice(plan.runs)
    if route == "runs/list":
        return api("runs/list")
    if route == "dead/fractions":
        return api("dead/fractions", run=run) if plan.layers["dead_filters"] else None
    slider = {"filters/kernels": "kernels", "gradcam/step": "gradcam"}.get(route, "activations")
    if not plan.layers[slider]:
        return None
    layer = rng.choice(plan.layers[slider])
    step = rng.choice(plan.steps[(slider, layer)])
    if route == "runs/image":
        kind = plan.kinds[slider]
        return api("runs/image", run=run, kind=kind, layer=layer, step=step, index=rng.randrange(8))
    if route == "filters/kernels":
        return api(route, run=run, layer=layer, step=step, count=1, encoding="auto")
    return api(route, run=run, layer=layer, step=step)


def latency(server: Tensorboard, plan: Plan, clients: int, duration: float, seed: int) -> dict:
    """``--clients`` threads, each a keep-alive connection asking random routes of ``ROUTES`` for ``duration`` s."""
    timings: dict[str, list[float]] = {route: [] for route in ROUTES}
    errors: dict[str, int] = dict.fromkeys(ROUTES, 0)
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        client = Client("127.0.0.1", server.port)
        while time.monotonic() < stop_at and server.alive():
            route = rng.choice(ROUTES)
            path = request_for(route, plan, rng)
            if path is None:
                continue
            begin = time.perf_counter()
            try:
                status, _ = client.get(path)
            except (OSError, http.client.HTTPException):
                status = None
            elapsed = 1000 * (time.perf_counter() - begin)
            with lock:
                timings[route].append(elapsed)
                errors[route] += status != 200

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = {}
    for route in ROUTES:
        values = np.array(timings[route])
        if values.size:
            p50, p95 = np.percentile(values, [50, 95])
            result[route] = {
                "n": int(values.size),
                "p50_ms": float(p50),
                "p95_ms": float(p95),
                "max_ms": float(values.max()),
                "errors": errors[route],
            }
    return result


def reachable(server: Tensorboard, plan: Plan, check_runs: int) -> dict:
    """Per slider kind: logged steps, the fewest of them a slider lists over the checked series, steps
    listed that were not logged, and whether the first, a middle and the last logged step answer."""
    client = Client("127.0.0.1", server.port)
    picks = sorted(
        {plan.runs[round(i * (len(plan.runs) - 1) / max(check_runs - 1, 1))] for i in range(check_runs)}
    )
    result = {}
    for slider, kind in plan.kinds.items():
        layers = plan.layers[slider]
        if not layers:
            continue
        logged = len(plan.steps[(slider, layers[0])])
        fewest, extra, failures, series = logged, 0, [], 0
        for run in picks:
            for layer in layers:
                steps = plan.steps[(slider, layer)]
                if kind == "dead_filters":
                    path = api("dead/rates", run=run, layer=layer)
                else:
                    path = api("runs/steps", run=run, kind=kind, layer=layer)
                try:
                    status, body = client.get(path)
                    listed = json.loads(body).get("steps", []) if status == 200 else []
                except (OSError, ValueError, http.client.HTTPException):
                    status, listed = None, []
                series += 1
                if status != 200:
                    failures.append(f"{run} {layer}: steps HTTP {status}")
                fewest = min(fewest, len(set(listed) & set(steps)))
                extra += len(set(listed) - set(steps))
            layer = layers[0]
            steps = plan.steps[(slider, layer)]
            for step in (steps[0], steps[len(steps) // 2], steps[-1]):
                if kind == "kernels":
                    path = api("filters/kernels", run=run, layer=layer, step=step, count=1, encoding="auto")
                elif kind == "gradcam_maps":
                    path = api("gradcam/maps", run=run, layer=layer, step=step)
                elif kind in ("gradcam", "activations"):
                    path = api("runs/image", run=run, kind=kind, layer=layer, step=step, index=0)
                else:
                    continue
                try:
                    status, _ = client.get(path)
                except (OSError, http.client.HTTPException):
                    status = None
                if status != 200:
                    failures.append(f"{run} {layer} step {step}: HTTP {status}")
        result[slider] = {
            "kind": kind,
            "logged": logged,
            "reachable": fewest,
            "extra": extra,
            "series_checked": series,
            "runs_checked": len(picks),
            "failures": failures[:5],
            "failed": len(failures),
        }
    return result
