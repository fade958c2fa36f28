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
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import pickle
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from plugin_latency import Client, api  # noqa: E402

MANIFEST = "scale_manifest.json"
SGD_STEPS = 1  # between two weight states
PRETRAIN_STEPS = 150  # the example's SmallVGG before its first state (event_growth.py's default)
BUILDER = 2  # the version of what this file builds: change it with the builder (reused logdirs are rebuilt)
MB = 1e6
GB = 1e9

# The configurations: (runs measured, logged training steps) per model at full size, and the smoke size.
MODELS = {
    "resnet50": {"size": 224, "runs": (1, 20), "steps": 100_000, "quick_runs": (1,), "quick_steps": 2_000},
    "example": {"size": 32, "runs": (500,), "steps": 2_000, "quick_runs": (20,), "quick_steps": 1_000},
}
# Goals of issue #18 (checked at full size only): per model and number of runs.
GOALS = {
    ("resnet50", 1): {"mb_per_run": 300, "load_s": {"rust": 10, "python": 60}, "rss_gb": 1.0},
    ("resnet50", 20): {"load_s": {"rust": 30, "python": None}, "rss_gb": 8.0},
    ("example", 500): {"p95_ms": 200},
}
LOADERS = {"rust": "true", "python": "false"}  # --load_fast value per loader
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


# ----------------------------------------------------------------------------------------------- building
@dataclasses.dataclass
class Pool:
    """What each run writes: per snapshot the summaries of each weight state, and the once-per-run
    summaries (probe images) written with the first snapshot that needs them."""

    variants: dict  # snapshot name -> [summaries of state 0, state 1, ...] (in the callback's order)
    once: dict  # snapshot name -> summaries written once, with its first snapshot
    every: dict  # snapshot name -> interval
    describe: str  # where the content comes from


def make_model(name: str, seed: int = 0):
    """The benchmark's model: torchvision ResNet-50 (weights=None, 10 classes) or the example's SmallVGG."""
    import torch

    torch.manual_seed(seed)
    if name == "resnet50":
        import torchvision

        return torchvision.models.resnet50(weights=None, num_classes=10)
    from tb_cnnviz.models import small_vgg

    return small_vgg(num_classes=10, width=32)  # examples/cifar10/train.py's defaults


def probe_images(size: int, count: int = 8):
    """``count`` held-out shapes images (seed 1, the example's test set) upsampled to ``size`` px, and labels."""
    import torch.nn.functional as F

    from tb_cnnviz.datasets import ShapesDataset

    images, labels = ShapesDataset(count, seed=1).tensors()
    if images.shape[-1] != size:
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    return images, labels


def new_callback(model, log_dir: str, probe, **options):
    from tb_cnnviz.callbacks import CNNVizCallback
    from tb_cnnviz.datasets import ShapesDataset

    return CNNVizCallback(
        model, log_dir=log_dir, probe=probe, class_names=ShapesDataset.classes, strict=True, **options
    )


def series_of(summaries: list, sizes: bool = False) -> list:
    """``(kind, layer)`` of every plugin summary in a list (the ordinary scalars left out); with ``sizes``
    ``((kind, layer), serialised bytes of the value)``."""
    from tb_cnnviz import metadata

    found = []
    for proto in summaries:
        for value in proto.value:
            if value.metadata.plugin_data.plugin_name != metadata.PLUGIN_NAME:
                continue
            content = json.loads(value.metadata.plugin_data.content or b"{}")
            key = (content.get("kind"), content.get("layer"))
            found.append((key, value.ByteSize()) if sizes else key)
    return found


def build_pool(model_name: str, count: int, log, pretrain_steps: int = PRETRAIN_STEPS) -> Pool:
    """The summaries of ``count`` weight states of the model, computed by the callback's own code
    (``pretrain_steps``: the example's SmallVGG before the first state)."""
    import torch
    from event_growth import pretrain, sgd_step, shapes

    from tb_cnnviz import snapshots
    from tb_cnnviz.callbacks import CNNVizCallback
    from tb_cnnviz.kinds import SNAPSHOTS, TRAINING

    started = time.perf_counter()
    size = MODELS[model_name]["size"]
    model = make_model(model_name)
    if model_name == "example" and pretrain_steps:  # as event_growth.py: a network in training, not at init
        model.load_state_dict(pretrain(32, pretrain_steps))
    probe = probe_images(size)
    images, labels = shapes(64 if model_name == "resnet50" else 2048, 0).tensors()
    if images.shape[-1] != size:
        images = torch.nn.functional.interpolate(images, size=size, mode="bilinear", align_corners=False)
    batch = 2 if model_name == "resnet50" else 16
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="cnnviz_scale_pool_") as scratch:
        # overhead_budget=0: the window counts the one forward per state (what is written is the same)
        viz = new_callback(model, scratch, probe, overhead_budget=0)
        try:
            rows = [
                row
                for row in SNAPSHOTS.values()
                if viz.enabled[row.name] and row.thread == TRAINING and row.name != "dead_filters"
            ]
            written: set[str] = set()
            variants: dict[str, list] = {row.name: [] for row in rows}
            once: dict[str, list] = {}
            if viz.enabled.get("dead_filters"):
                variants["dead_filters"] = []
            for state in range(count):
                if state:  # the next state: SGD steps on shapes images (as event_growth.py measures)
                    model.train().requires_grad_(True)
                    for _ in range(SGD_STEPS):
                        sgd_step(model, optimizer, images, labels, generator, batch)
                    model.eval()
                for row in rows:  # the callback's _compute: the snapshot, then the kinds written once
                    inputs = viz._inputs(row, viz.base)
                    variants[row.name].append(CNNVizCallback._compute(row, inputs, []))
                    if state == 0:
                        kinds_once = [kind for kind in viz._once(row) if kind not in written]
                        once[row.name] = [s for kind in kinds_once for s in getattr(snapshots, kind)(inputs)]
                        written.update(kinds_once)
                if "dead_filters" in variants:
                    # a training forward (train mode, grad enabled: what the window counts), with the
                    # parameters frozen so that no graph is kept
                    model.train().requires_grad_(False)
                    model(viz.config.inputs["probe"][0])
                    model.eval()
                    measured = viz._window.close(200, 0)
                    row = SNAPSHOTS["dead_filters"]
                    variants["dead_filters"].append(
                        CNNVizCallback._compute(row, viz._inputs(row, viz.base, measured=measured), [])
                    )
                log(
                    f"  {model_name}: weight state {state + 1}/{count}, {time.perf_counter() - started:.0f} s"
                )
        finally:
            viz.close(final=False)
    every = {name: viz.every_n_steps[name] for name in variants}
    start = (
        "torchvision ResNet-50 (random init"
        if model_name == "resnet50"
        else f"the example SmallVGG(width=32) (pretrained {pretrain_steps} SGD steps of batch 32"
    )
    describe = (
        f"{start}, 10 classes), probe: 8 shapes images at {size} px; {count} weight state(s) {SGD_STEPS} SGD "
        f"step(s) apart (batch {batch}, lr 0.05, momentum 0.9, shapes images), cycled; dead-filter rates "
        "counted by the callback's window over each state's training forwards"
    )
    return Pool(variants, once, every, describe)


def snapshot_steps(name: str, every: int, steps: int) -> list[int]:
    """The steps at which ``on_step_end(1..steps)`` logs a snapshot: a baseline at step 1 (not for the
    dead-filter window, which closes at the multiples of its length), then every ``every`` steps."""
    marks = set(range(every, steps + 1, every))
    if name != "dead_filters":
        marks.add(1)
    return sorted(marks)


def schedule(every: dict, steps: int) -> list[tuple[int, list[str]]]:
    """``(step, snapshots due there)`` in the callback's order (``every``'s order: the training snapshots
    in the table's order, then the dead-filter window)."""
    due: dict[int, list[str]] = {}
    for name, interval in every.items():
        for step in snapshot_steps(name, interval, steps):
            due.setdefault(step, []).append(name)
    return sorted(due.items())


def write_run(path: Path, model, probe, pool: Pool, steps: int, index: int) -> tuple[dict, dict]:
    """One run written by a callback of its own through its write path; returns ``{"kind|layer": steps}``
    and ``{kind: bytes}``, the bytes of each kind's summaries as the snapshot functions made them (before
    the write path stores them: in the event file or a side file)."""
    viz = new_callback(model, str(path), probe)
    logged: dict[str, list[int]] = {}
    payload: dict[str, int] = {}
    write = viz._write  # the callback's one write path (scalars selection, then summary.write)

    def recording(summaries: list, step: int) -> None:
        for (kind, layer), size in series_of(summaries, sizes=True):
            logged.setdefault(f"{kind}|{layer or ''}", []).append(step)
            payload[kind] = payload.get(kind, 0) + size
        write(summaries, step)

    viz._write = recording  # what the callback itself writes (the layer order) goes through it too
    try:
        if hasattr(viz, "_log_layer_order"):
            viz._log_layer_order(1)
        written = dict.fromkeys(pool.variants, 0)
        once = dict(pool.once)
        for step, names in schedule(pool.every, steps):
            for name in names:
                states = pool.variants[name]
                summaries = states[(written[name] + index) % len(states)]
                written[name] += 1
                recording(list(summaries) + once.pop(name, []), step)
    finally:
        viz.close(final=False)
    return logged, payload


def code_fingerprint() -> str:
    """A digest of the writing code (tb_cnnviz without its plugin, the callbacks, ``BUILDER``): a reused
    logdir must have been written by the code being measured."""
    import hashlib

    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"builder {BUILDER}".encode())
    root = HERE.parent
    files = sorted(
        [p for p in (root / "tb_cnnviz").rglob("*.py") if "plugin" not in p.relative_to(root).parts]
        + list((root / "callbacks").rglob("*.py"))
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return "unknown"


def disk_bytes(path: Path) -> dict:
    """Bytes of the event files and of every other file (side files) under ``path``, each inode once."""
    seen: set[tuple[int, int]] = set()
    events = other = files = 0
    for folder, _, names in os.walk(path):
        for name in names:
            if name == MANIFEST:
                continue
            stat = os.stat(os.path.join(folder, name))
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            files += 1
            if "tfevents" in name:
                events += stat.st_size
            else:
                other += stat.st_size
    return {"event_bytes": events, "side_bytes": other, "files": files}


def build_logdir(
    root: Path,
    model_name: str,
    runs: int,
    steps: int,
    variants: int,
    storage: str,
    min_free: float,
    log,
    copy_runs: bool = False,
    pretrain_steps: int = PRETRAIN_STEPS,
) -> dict:
    """``root/<model>-<steps>-<storage>/run-NNN`` for ``runs`` runs (reusing those a manifest says were
    written by this code); returns the manifest. Refuses to start a run that would leave under
    ``min_free`` bytes. ``storage``: ``side`` (the default write path) or ``events`` (written with
    ``TB_CNNVIZ_SIDE_FILE=0``: every payload in the event file, the format before the side file).
    ``copy_runs``: runs after run-000 are copies of its files (fast; the same content in every run)."""
    folder = root / f"{model_name}-{steps}-{storage}"
    manifest_path = folder / MANIFEST
    fingerprint = code_fingerprint()
    manifest = None
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("code") != fingerprint or manifest.get("variants") != variants:
            log(f"  {folder}: written by other code or settings; rebuilding")
            shutil.rmtree(folder)
            manifest = None
    if manifest is None:
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {
            "model": model_name,
            "steps": steps,
            "variants": variants,
            "storage": storage,
            "code": fingerprint,
            "commit": git_commit(),
            "runs": [],
            "series": None,
            "build_s": 0.0,
            "describe": None,
        }
    if len(manifest["runs"]) >= runs:
        return manifest
    started = time.perf_counter()
    writer = None  # (pool, model, probe), made when a run is written
    per_run = 0.0
    for index in range(len(manifest["runs"]), runs):
        name = f"run-{index:03d}"
        copy = copy_runs and index > 0
        if not copy and writer is None:
            pool = cached_pool(
                root / f"{model_name}.pool.pickle", fingerprint, model_name, variants, log, pretrain_steps
            )
            writer = (pool, make_model(model_name), probe_images(MODELS[model_name]["size"]))
            manifest["describe"] = pool.describe
            per_run = max(per_run, estimate_run_bytes(pool, steps))
            log(f"  about {per_run / MB:,.0f} MB per run (the summaries' bytes at this schedule)")
        free = shutil.disk_usage(folder).free
        if free - 1.1 * per_run < min_free:
            raise BuildError(
                f"{model_name} x {steps:,} steps: run {index + 1} of {runs} needs about {per_run / GB:.2f} GB, "
                f"{free / GB:.1f} GB free (--min-free-gb {min_free / GB:g}); {index} runs built"
            )
        begin = time.perf_counter()
        if copy:  # new files (not links): TensorBoard and the page cache see 'runs' of their own
            shutil.copytree(folder / "run-000", folder / name, copy_function=shutil.copyfile)
            manifest["copied"] = manifest.get("copied", 0) + 1
        else:
            with side_file(storage):
                logged, payload = write_run(folder / name, writer[1], writer[2], writer[0], steps, index)
            if manifest["series"] is None:
                manifest["series"], manifest["payload_bytes"] = logged, payload
            elif {k: len(v) for k, v in logged.items()} != {k: len(v) for k, v in manifest["series"].items()}:
                raise BuildError(f"{name} logged other series than run-000")
        manifest["runs"].append(name)
        size = disk_bytes(folder / name)
        per_run = max(per_run if index else 0, size["event_bytes"] + size["side_bytes"])
        manifest_path.write_text(json.dumps(manifest))
        if index < 3 or (index + 1) % 50 == 0 or index + 1 == runs:
            log(
                f"  {name}{' (copy of run-000)' if copy else ''}: {per_run / MB:.1f} MB, "
                f"{time.perf_counter() - begin:.1f} s ({time.perf_counter() - started:.0f} s)"
            )
    manifest["build_s"] += time.perf_counter() - started
    manifest_path.write_text(json.dumps(manifest))
    return manifest


def cached_pool(
    path: Path, fingerprint: str, model_name: str, variants: int, log, pretrain_steps: int = PRETRAIN_STEPS
) -> Pool:
    """``build_pool``, kept next to the logdir (not in it) for more runs later with the same code."""
    if path.exists():
        with contextlib.suppress(Exception), path.open("rb") as handle:
            saved = pickle.load(handle)
            if (saved["code"], saved["variants"], saved.get("pretrain")) == (
                fingerprint,
                variants,
                pretrain_steps,
            ):
                return Pool(**saved["pool"])
    pool = build_pool(model_name, variants, log, pretrain_steps)
    saved = {"code": fingerprint, "variants": variants, "pretrain": pretrain_steps, "pool": vars(pool)}
    with path.open("wb") as handle:  # a dict of protos and texts: readable whatever imports this module
        pickle.dump(saved, handle)
    return pool


def estimate_run_bytes(pool: Pool, steps: int) -> float:
    """Bytes of one run's summaries at the schedule (the mean over the weight states of each snapshot)."""
    total = sum(proto.ByteSize() for summaries in pool.once.values() for proto in summaries)
    for name, states in pool.variants.items():
        mean = np.mean([sum(proto.ByteSize() for proto in summaries) for summaries in states])
        total += mean * len(snapshot_steps(name, pool.every[name], steps))
    return float(total)


@contextlib.contextmanager
def side_file(storage: str):
    """``events``: written as before the side file (``TB_CNNVIZ_SIDE_FILE=0``); ``side``: the default."""
    from tb_cnnviz import summary

    name = getattr(summary, "SIDE_FILE_ENV", "TB_CNNVIZ_SIDE_FILE")
    previous = os.environ.get(name)
    if storage == "events":
        os.environ[name] = "0"
    else:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


class BuildError(RuntimeError):
    """A logdir could not be built (disk space, inconsistent runs)."""


def subset(folder: Path, names: list[str]) -> Path:
    """A logdir of exactly the runs ``names`` of ``folder``: ``folder`` itself, or hard links to their files."""
    if sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(names):
        return folder
    target = folder.parent / f"{folder.name}-{len(names)}runs"
    if target.exists():
        shutil.rmtree(target)
    for name in names:
        for path in (folder / name).rglob("*"):
            destination = target / name / path.relative_to(folder / name)
            if path.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, destination)
    return target


# -------------------------------------------------------------------------------------------- measuring
def tree_rss(root: int) -> int:
    """Resident bytes of process ``root`` and all its descendants (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            process = psutil.Process(root)
            total = 0
            for member in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += member.memory_info().rss
            return total
        except psutil.Error:
            return 0
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry.name}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * page
    return total


class Tensorboard:
    """The real ``tensorboard`` of this venv on 127.0.0.1 and a free port, in a session of its own; samples
    the RSS of its process tree every 0.5 s and stops it past ``max_rss`` bytes."""

    def __init__(self, logdir: Path, loader: str, max_rss: float):
        binary = shutil.which("tensorboard", path=os.path.dirname(sys.executable)) or shutil.which(
            "tensorboard"
        )
        if binary is None:
            raise SystemExit("error: no tensorboard executable next to this Python or on PATH")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.max_rss = max_rss
        self.peak = 0
        self.over_at: float | None = None  # seconds after the start when the RSS limit stopped it
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [binary, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--load_fast", LOADERS[loader]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._stop = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.lines = (self.lines + [line])[-40:]

    def _sample(self) -> None:
        while not self._stop.is_set() and self.process.poll() is None:
            rss = tree_rss(self.process.pid)
            self.peak = max(self.peak, rss)
            if rss > self.max_rss and self.over_at is None:
                self.over_at = time.monotonic() - self.started
                self.kill()
            self._stop.wait(0.5)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(10)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        self._stop.set()
        self._sampler.join(5)
        self.kill()


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


# ----------------------------------------------------------------------------------------------- report
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
