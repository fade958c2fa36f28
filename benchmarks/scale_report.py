"""The tables ``benchmarks/scale.py`` prints (markdown): per logdir and loader the bytes on disk, load time,
RSS, steps reachable and the goals of issue #18, then the routes' latency."""

from __future__ import annotations

from scale_logdirs import GB, MB
from scale_pool import MODELS
from scale_requests import ROUTES

# Goals of issue #18 (checked at full size only): per model and number of runs.
GOALS = {
    ("resnet50", 1): {"mb_per_run": 300, "load_s": {"rust": 10, "python": 60}, "rss_gb": 1.0},
    ("resnet50", 20): {"load_s": {"rust": 30, "python": None}, "rss_gb": 8.0},
    ("example", 500): {"p95_ms": 200},
}


def goals(row: dict) -> str:
    """The issue's goals for this logdir and loader, met or missed (only at the issue's full sizes)."""
    goal = GOALS.get((row["model"], row["runs"]))
    if goal is None or row["steps_logged"] != MODELS[row["model"]]["steps"]:
        return "-"
    missed = []
    if "mb_per_run" in goal and row["mb_per_run"] > goal["mb_per_run"]:
        missed.append(f"{row['mb_per_run']:.0f} MB/run > {goal['mb_per_run']}")
    limit = goal.get("load_s", {}).get(row["loader"])
    if limit is not None and (row["load_s"] is None or row["load_s"] > limit):
        missed.append(f"load > {limit} s")
    if "rss_gb" in goal and row["peak_rss"] / GB > goal["rss_gb"]:
        missed.append(f"RSS > {goal['rss_gb']:g} GB")
    if "p95_ms" in goal:
        slow = [route for route, t in row["routes"].items() if t["p95_ms"] >= goal["p95_ms"]]
        if slow:
            missed.append(f"p95 >= {goal['p95_ms']} ms: {', '.join(slow)}")
    if any(s["reachable"] < s["logged"] or s["failed"] for s in row["steps"].values()):
        missed.append("not every step reachable")
    return "met" if not missed else "missed: " + "; ".join(missed)


def megabytes(count: float) -> str:
    return f"{count / MB:,.{0 if count >= 100 * MB else 1}f} MB"


def seconds(value) -> str:
    return "-" if value is None else f"{value:.1f} s"


def steps_text(steps: dict) -> str:
    short = {"kernels": "kernels", "activations": "act.", "gradcam": "Grad-CAM", "dead_filters": "dead"}
    parts = []
    for kind, s in steps.items():
        text = f"{short[kind]} {s['reachable']}/{s['logged']}"
        if s["extra"]:
            text += f" (+{s['extra']} unlogged)"
        if s["failed"]:
            text += f" ({s['failed']} failed)"
        parts.append(text)
    return ", ".join(parts) or "-"


def markdown(rows: list[dict], notes: list[str]) -> str:
    lines = [
        "| logdir | loader | on disk: events + side files | per run | load | RSS loaded / peak | steps reachable / logged"
        " | goals (#18) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.get("not_built"):
            lines.append(f"| {row['label']} | - | not built: {row['not_built']} | | | | | |")
            continue
        load = seconds(row["load_s"]) if row["load_s"] is not None else f"**{row['why']}**"
        lines.append(
            f"| {row['label']} | {row['loader']} | {megabytes(row['event_bytes'])} + {megabytes(row['side_bytes'])}"
            f" | {row['mb_per_run']:,.1f} MB | {load} | {row['rss_loaded'] / GB:.2f} / {row['peak_rss'] / GB:.2f} GB"
            f" | {steps_text(row['steps'])}"
            f" | {goals(row)} |"
        )
    lines += ["", "p50 / p95 (max) in ms under the clients, per route:", ""]
    lines.append("| logdir | loader | " + " | ".join(ROUTES) + " |")
    lines.append("|---|---|" + "---|" * len(ROUTES))
    for row in rows:
        if row.get("not_built") or not row["routes"]:
            continue
        cells = []
        for route in ROUTES:
            t = row["routes"].get(route)
            cells.append(
                "-"
                if t is None
                else f"{t['p50_ms']:.0f} / {t['p95_ms']:.0f} ({t['max_ms']:.0f})"
                + (f", {t['errors']} err" if t["errors"] else "")
            )
        lines.append(f"| {row['label']} | {row['loader']} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + notes) + "\n"
