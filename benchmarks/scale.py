"""Long runs and many runs in the real TensorBoard: bytes on disk, load time, peak RSS, route latency and
steps reachable (issue #18).

Builds logdirs without training, through the callback's own code: a ``CNNVizCallback`` with default
settings on the model decides the layers and settings; the training-thread snapshots (``kernels``,
``activations``, ``gradcam``) are computed by the callback's ``_compute`` (the ``tb_cnnviz.snapshots``
functions, probe images written once with the first of them) on ``--variants`` weight states of the
model ``SGD_STEPS`` SGD step(s) apart on shapes images (batch 2 for ResNet-50 from its random
initialisation, batch 16 for the example's SmallVGG after 150 steps: as ``event_growth.py`` measures),
and ``dead_filters`` from the activation rates its own window counted over each state's training
forwards. Each run is then written by a callback of its own (``_write``: the scalars
selection and ``summary.write``, the one write path, so a change of storage is what gets measured)
at the default schedule of ``on_step_end(1..STEPS)``: a baseline at step 1, kernels every 100 steps,
activations, Grad-CAM and dead-filter windows every 200, the layer order at step 1. The weight states
are cycled (state ``(i + run) % variants`` at a kind's i-th snapshot): every snapshot is a real output
of the snapshot functions with real-entropy content (PNG sizes depend on it), but the content repeats
with period ``--variants`` and comes from a network early in training (ResNet-50: weights=None, no
pretraining, where activations compress worst), looking at shapes images upsampled to the model's
input size. Epoch ends are not simulated (no ``on_epoch_end``).

Then for each logdir and loader (``--loaders rust python``: TensorBoard's default Rust data server,
``--load_fast=false``) it starts the real ``tensorboard`` of this venv (the plugin installed as it is)
on 127.0.0.1 and a free port, and measures:

- bytes on disk: event files and any other file (side files) under the logdir;
- load time: from the process start until ``api/runs/list`` lists every run with the last logged
  step of every series written (``max_step``), polled every 0.5 s;
- RSS of TensorBoard's process tree (TensorBoard + its data server) when loaded, and its peak over the
  whole row (the requests included), sampled every 0.5 s (psutil when installed, else /proc); past
  ``--max-rss-gb`` TensorBoard is stopped and the row says so;
- p50/p95/max latency of the main routes under ``--clients`` concurrent keep-alive clients for
  ``--duration`` s (random run, layer and logged step; no warm-up, so series read for the first
  time are in the figures): ``runs/list``, ``filters/kernels``, ``dead/fractions``,
  ``gradcam/step``, ``activations/step`` and ``runs/image`` (an activations PNG);
- steps reachable vs logged per kind, from the routes the sliders use (``runs/steps`` for kernels,
  activations and Grad-CAM (``gradcam_maps`` when no overlay PNGs are logged), ``dead/rates`` for
  dead filters) on ``--check-runs`` runs, and whether the data of the first, a middle and the last
  logged step loads.

Sizes (``MODELS``): ``resnet50``, torchvision ResNet-50 at 224 px with the callback's default layers
(kernels of conv1, activations of relu/layer2/layer4, dead filters of the 53 convs, Grad-CAM of layer4,
8 probe images), 1 and 20 runs x 100,000 steps; ``example``, the example's SmallVGG (width 32, 32 px),
500 runs x 2,000 steps (the issue gives no length for those). The smaller logdirs are hard-linked
subsets of the largest. ``--quick``: 1 ResNet-50 run x 2,000 steps and 20 example runs x 1,000 steps,
one weight state, 4 s of requests. ``--storage events`` builds with ``TB_CNNVIZ_SIDE_FILE=0`` (every
payload in the event file, the format before the side file) for before/after figures.

    .venv/bin/python benchmarks/scale.py --quick                      # smoke size: about 2 minutes on 2 busy cores
    .venv/bin/python benchmarks/scale.py --model resnet50             # 1 and 20 runs x 100,000 steps
    .venv/bin/python benchmarks/scale.py --model example              # 500 runs of the example's SmallVGG
    .venv/bin/python benchmarks/scale.py --model resnet50 --runs 1 --steps 20000 --loaders rust

``--logdir DIR`` keeps the built logdirs there and reuses them (a manifest says what was built, with
the commit); by default they are built in a temporary folder and removed. ``--out results.json``
(or ``.md``) writes the results. Exit status 1 when a request failed or a run did not load.

This file measures and has the command line; ``scale_pool.py`` computes the summaries of the weight
states, ``scale_logdirs.py`` writes the runs, ``tensorboard_process.py`` runs TensorBoard and samples its
RSS, ``scale_requests.py`` asks its routes and ``scale_report.py`` prints the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from plugin_latency import Client  # noqa: E402
from scale_logdirs import GB, MB, BuildError, build_logdir, disk_bytes, git_commit, subset  # noqa: E402
from scale_pool import MODELS  # noqa: E402
from scale_report import markdown, megabytes  # noqa: E402
from scale_requests import latency, plan_of, reachable, wait_loaded  # noqa: E402
from tensorboard_process import LOADERS, Tensorboard, tree_rss  # noqa: E402


def measure(logdir: Path, manifest: dict, runs: list[str], loader: str, args, log) -> dict:
    """Start TensorBoard on ``logdir`` with ``loader`` and measure it (see the module docstring)."""
    server = Tensorboard(logdir, loader, args.max_rss_gb * GB)
    try:
        client = Client("127.0.0.1", server.port)
        loaded = wait_loaded(server, client, manifest, runs, args.load_timeout)
        log(
            f"  {loader}: loaded in {loaded['load_s']:.1f} s"
            if loaded["load_s"] is not None
            else f"  {loader}: {loaded['why']} ({loaded['complete_runs']}/{len(runs)} runs complete)"
        )
        row = {
            "loader": loader,
            **loaded,
            "rss_loaded": tree_rss(server.process.pid),
            "routes": {},
            "steps": {},
        }
        if server.alive():
            plan = plan_of(manifest, runs)
            row["routes"] = latency(server, plan, args.clients, args.duration, args.seed)
            row["steps"] = reachable(server, plan, args.check_runs)
        row["peak_rss"] = server.peak
        if server.over_at is not None:
            row["why"] = f"RSS over {args.max_rss_gb:g} GB at {server.over_at:.0f} s: stopped"
        if row["load_s"] is None:
            row["output_tail"] = "".join(server.lines[-5:])
        return row
    finally:
        server.close()


def tensorboard_version() -> str:
    with contextlib.suppress(Exception):
        from tensorboard import version

        return version.VERSION
    return "unknown"


def measure_model(model_name: str, storage: str, root: Path, args, notes: list, log) -> list[dict]:
    """Build the model's logdirs (its largest number of runs; the smaller ones are subsets) and measure each
    with each loader."""
    defaults = MODELS[model_name]
    counts = sorted(set(args.runs or (defaults["quick_runs"] if args.quick else defaults["runs"])))
    steps = args.steps or (defaults["quick_steps"] if args.quick else defaults["steps"])
    prefix = f"{model_name}{'' if storage == 'side' else ' (events only)'}"
    log(f"{prefix}: building {max(counts)} runs x {steps:,} steps in {root}")
    try:
        manifest = build_logdir(
            root,
            model_name,
            max(counts),
            steps,
            args.variants,
            storage,
            args.min_free_gb * GB,
            log,
            copy_runs=args.copy_runs,
        )
    except BuildError as error:
        log(f"  not built: {error}")
        return [{"label": f"{prefix}, {n} runs x {steps:,} steps", "not_built": str(error)} for n in counts]
    payload = sorted(manifest["payload_bytes"].items(), key=lambda item: -item[1])
    notes.append(
        f"{prefix}: {manifest['describe']}; {len(manifest['runs'])} run(s) built in {manifest['build_s']:.0f} s "
        f"(commit {manifest['commit']}"
        + (f"; {manifest['copied']} of them file copies of run-000" if manifest.get("copied") else "")
        + "). Summaries per run, by kind, before storage: "
        + ", ".join(f"{kind} {megabytes(size)}" for kind, size in payload if size >= 0.05 * MB)
        + f"; the rest {megabytes(sum(size for _, size in payload if size < 0.05 * MB))}."
    )
    folder = root / f"{model_name}-{steps}-{storage}"
    rows = []
    for count in counts:
        names = manifest["runs"][:count]
        logdir = subset(folder, names)
        size = disk_bytes(logdir)
        label = f"{prefix}, {count} run{'s' if count > 1 else ''} x {steps:,} steps"
        log(f"{label}: {megabytes(size['event_bytes'] + size['side_bytes'])} in {size['files']} files")
        for loader in args.loaders:
            row = measure(logdir, manifest, names, loader, args, log)
            row.update(
                label=label,
                model=model_name,
                storage=storage,
                runs=count,
                steps_logged=steps,
                **size,
                mb_per_run=(size["event_bytes"] + size["side_bytes"]) / MB / count,
            )
            rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", choices=sorted(MODELS), default=["resnet50", "example"])
    parser.add_argument(
        "--runs", nargs="+", type=int, help="runs per logdir (default: the model's, see MODELS)"
    )
    parser.add_argument("--steps", type=int, help="training steps logged per run (default: the model's)")
    parser.add_argument("--loaders", nargs="+", choices=sorted(LOADERS), default=["rust", "python"])
    parser.add_argument(
        "--storage",
        nargs="+",
        choices=("side", "events"),
        default=["side"],
        help="side: the default write path; events: written with TB_CNNVIZ_SIDE_FILE=0 (the format before "
        "the side file), for comparison",
    )
    parser.add_argument(
        "--copy-runs",
        action="store_true",
        help="runs after the first are file copies of it (fast: for 20 long runs; the same content in each)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke size (about 2 minutes): few runs and steps"
    )
    parser.add_argument(
        "--variants", type=int, help="weight states whose snapshots are cycled (default 8, quick 1)"
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--duration", type=float, help="seconds of requests per logdir and loader (default 20, quick 4)"
    )
    parser.add_argument(
        "--load-timeout", type=float, help="seconds to wait for a load (default 900, quick 120)"
    )
    parser.add_argument(
        "--max-rss-gb", type=float, default=10.0, help="stop TensorBoard past this RSS (default 10)"
    )
    parser.add_argument("--check-runs", type=int, default=3, help="runs whose steps are checked (default 3)")
    parser.add_argument(
        "--min-free-gb", type=float, default=5.0, help="disk left free when building (default 5)"
    )
    parser.add_argument(
        "--logdir", help="keep and reuse the built logdirs here (default: a temporary folder)"
    )
    parser.add_argument("--out", help="write the results: .json (rows) or .md (the tables)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("clients", "check_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.runs and min(args.runs) < 1 or args.steps is not None and args.steps < 1:
        parser.error("--runs and --steps must be >= 1")
    args.variants = args.variants or (1 if args.quick else 8)
    args.duration = args.duration or (4.0 if args.quick else 20.0)
    args.load_timeout = args.load_timeout or (120.0 if args.quick else 900.0)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    temporary = None if args.logdir else tempfile.TemporaryDirectory(prefix="cnnviz_scale_")
    root = Path(args.logdir or temporary.name)
    rows: list[dict] = []
    notes = [
        f"TensorBoard {tensorboard_version()}, {args.clients} clients x {args.duration:g} s per row (no warm-up), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; commit {git_commit()}. "
        "Loads read files just written (in the page cache): from a cold disk they take longer."
    ]
    started = time.perf_counter()
    try:
        for model_name in args.model:
            for storage in args.storage:
                rows += measure_model(model_name, storage, root, args, notes, log)
    finally:
        if temporary is not None:
            temporary.cleanup()
    notes.append(f"Total {time.perf_counter() - started:.0f} s.")
    table = markdown(rows, notes)
    print("\n" + table)
    if args.out:
        out = Path(args.out)
        out.write_text(
            json.dumps({"rows": rows, "notes": notes}, indent=1) if out.suffix == ".json" else table
        )
    failed = any(
        row.get("not_built")
        or row["load_s"] is None
        or any(t["errors"] for t in row["routes"].values())
        or any(s["failed"] for s in row["steps"].values())
        for row in rows
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
