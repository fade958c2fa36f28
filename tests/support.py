"""Helpers shared by test modules (fixtures live in the ``conftest.py`` files).

Test modules import from here, never from ``conftest`` or from each other, so that moving a
test module never breaks another one. Three parts: models, training and reading a logdir back
(``train_small_vgg``, ``TwoConvNet``, ``fit_with_callback``, ``every_step_patterns``, ``read_logdir``);
writing the plugin's logdirs and serving them through TensorBoard's WSGI app (``plugin_client``,
``write_run``, ``log_views_run``, ``write_exact_run``); the real ``tensorboard`` binary (``tensorboard``,
``serving``, ``http_get``, ``get_json``, ``wait_for``). Browser pages: ``tests/browser/browser_helpers.py``
(``plugin_page``).
"""

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
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import kinds, metadata, summary
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

if TYPE_CHECKING:
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from werkzeug.test import Client

TRAINED_WIDTH = 16
EXACT_RUN = "exact"
CLASSES = ["a", "b", "c"]
# The fields of the activations kind's content schema (tb_cnnviz/kinds.py), which the format tests expect a
# checked content to have (None where absent or of the wrong type)
ACTIVATIONS_FIELDS = ("channels", "nrow", "padding", "tile", "map_size", "channels_shown", "factor", "levels")


def train_small_vgg(
    dataset: ShapesDataset, steps: int, width: int = TRAINED_WIDTH, seed: int = 0, batch_size: int = 64
) -> nn.Module:
    """Train a SmallVGG on ``dataset`` with SGD and a cosine learning-rate decay; deterministic for a seed.

    Training runs on one thread with deterministic algorithms (both restored after), so its float path
    does not depend on the caller's thread count. The decay to zero lets BatchNorm's running statistics
    settle on the final weights: at a constant rate the last steps left the held-out accuracy anywhere
    from 0.72 to 1.0, depending on the seed and the thread count.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = small_vgg(width=width)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        images, labels = dataset.tensors()
        model.train()
        for _ in range(steps):
            index = torch.randint(0, len(images), (batch_size,), generator=generator)
            loss = nn.functional.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    return model.eval()


class TwoConvNet(nn.Module):
    """A CNN unlike SmallVGG: conv 3 -> 4 named ``first``, ReLU, conv 4 -> 6 named ``second``, ReLU, global mean,
    linear head 6 -> ``classes``; made and registered in that order (whatever the names' natural order), so a
    seed gives the same weights for any names."""

    def __init__(self, first: str = "block1", second: str = "block2", classes: int = 10) -> None:
        super().__init__()
        self._convs = (first, second)
        self.add_module(first, nn.Conv2d(3, 4, 3, padding=1))
        self.add_module(second, nn.Conv2d(4, 6, 3, padding=1))
        self.head = nn.Linear(6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = (self.get_submodule(name) for name in self._convs)
        return self.head(torch.relu(second(torch.relu(first(x)))).mean(dim=(2, 3)))


def fit_with_callback(
    model: nn.Module,
    viz: Any,
    optimizer: torch.optim.Optimizer,
    steps: range,
    batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    *,
    after_update: Callable[[int], None] | None = None,
    after_step: Callable[[int], None] | None = None,
) -> None:
    """The training loop that drives a callback: ``model.train()``, then for each step of ``steps`` the
    cross-entropy of ``batch(step)`` (images, labels), an ``optimizer`` step, ``after_update(step)`` when given
    (e.g. damage planted before the callback sees the step), ``viz.on_step_end(step)`` and ``after_step(step)``
    when given."""
    model.train()
    for step in steps:
        images, labels = batch(step)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if after_update is not None:
            after_update(step)
        viz.on_step_end(step)
        if after_step is not None:
            after_step(step)


def consecutive_batches(
    images: torch.Tensor, labels: torch.Tensor, size: int
) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """``fit_with_callback``'s ``batch``: step s (from 1) trains on the s-th run of ``size`` images in order."""
    return lambda step: (images[size * (step - 1) : size * step], labels[size * (step - 1) : size * step])


def every_step_patterns(model: nn.Module, log_dir, monkeypatch, job: Callable, **extra: Any) -> Any:
    """A strict CNNVizCallback (``extra``: more constructor arguments) logging a pattern gallery of
    ``features.conv2`` every step, whose ``snapshots.patterns`` is ``job`` (through ``monkeypatch``)."""
    from tb_cnnviz import snapshots
    from tb_cnnviz.callbacks import CNNVizCallback

    monkeypatch.setattr(snapshots, "patterns", job)
    return CNNVizCallback(
        model,
        log_dir=log_dir,
        pattern_layers=["features.conv2"],
        every_n_steps={"patterns": 1},
        strict=True,
        **extra,
    )


def read_logdir(logdir: str, plugin: str = "cnnviz") -> dict:
    """Everything one plugin wrote under ``logdir``, read the way the plugin reads it (data provider).

    Returns ``{run: {tag: {"steps": [...], "values": [...], "content": dict}}}``; values are numpy
    arrays for tensor series, floats for ``plugin="scalars"`` and lists of bytes for blob
    sequences. Keeps every step. Side-file references are resolved (``tb_cnnviz.assets``).
    """
    from tensorboard import context as tb_context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    from tb_cnnviz.metadata import parse_plugin_content

    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={plugin: 0, "scalars": 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    ctx = tb_context.RequestContext()
    result: dict = {}
    scalar = plugin == "scalars"
    list_series = provider.list_scalars if scalar else provider.list_tensors
    read_series = provider.read_scalars if scalar else provider.read_tensors
    tensors = list_series(ctx, experiment_id="", plugin_name=plugin)
    data = (
        read_series(ctx, experiment_id="", plugin_name=plugin, downsample=10**6, run_tag_filter=None)
        if tensors
        else {}
    )
    for run, tags in tensors.items():
        for tag, meta in tags.items():
            points = data[run][tag]
            result.setdefault(run, {})[tag] = {
                "steps": [p.step for p in points],
                "values": [p.value if scalar else _resolved(logdir, run, p.numpy) for p in points],
                "content": {} if scalar else parse_plugin_content(meta.plugin_content),
            }
    blobs = provider.list_blob_sequences(ctx, experiment_id="", plugin_name=plugin)
    if blobs:
        sequences = provider.read_blob_sequences(
            ctx, experiment_id="", plugin_name=plugin, downsample=10**6, run_tag_filter=None
        )
        for run, tags in blobs.items():
            for tag, meta in tags.items():
                points = sequences[run][tag]
                result.setdefault(run, {})[tag] = {
                    "steps": [p.step for p in points],
                    "values": [
                        [
                            _resolved(logdir, run, provider.read_blob(ctx, blob_key=ref.blob_key))
                            for ref in p.values
                        ]
                        for p in points
                    ],
                    "content": parse_plugin_content(meta.plugin_content),
                }
    return result


def _resolved(logdir: str, run: str, value: Any) -> Any:
    """A logged value with a side-file reference replaced by what it names (blob bytes or the array)."""
    from tb_cnnviz import assets

    directory = os.path.join(logdir, run)
    if assets.is_reference(value):
        return assets.resolve(directory, value)
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        item = value.reshape(-1)[0]
        if assets.is_reference(item):
            fields = assets.parse_reference(item)
            payload = assets.resolve(directory, fields)
            return np.frombuffer(payload, dtype=np.dtype(fields["dtype"])).reshape(fields["shape"]).copy()
    return value


# ----------------------------------------------------------------------------- plugin logdirs
def plugin_client(
    root: str, *, samples: dict | None = None, index_ttl: float = 0, wrap=None, **plugin_kwargs
) -> tuple[Client, EventMultiplexer]:
    """TensorBoard's own WSGI app with the plugin over ``root`` (Python multiplexer, every sample kept
    unless ``samples`` says otherwise); ``wrap`` may wrap the data provider (to make it fail)."""
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider as mux_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from werkzeug import test as werkzeug_test

    from tb_cnnviz import plugin

    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance=samples or {metadata.PLUGIN_NAME: 0}
    )
    multiplexer.AddRunsFromDirectory(root)
    multiplexer.Reload()
    provider = mux_provider.MultiplexerDataProvider(multiplexer, root)
    if wrap is not None:
        provider = wrap(provider)
    context = base_plugin.TBContext(logdir=root, multiplexer=multiplexer, data_provider=provider)
    app = application.TensorBoardWSGI(
        [plugin.CNNVizPlugin(context, index_ttl=index_ttl, **plugin_kwargs)], data_provider=provider
    )
    return werkzeug_test.Client(app), multiplexer


def log_views_run(
    logdir: str,
    *,
    steps: int = 6,
    every: int = 2,
    width: int = 4,
    probe_images: int = 4,
    embedding_images: int = 60,
    embedding_method: str = "pca",
    pattern_channels: int = 4,
    pattern_steps: int = 4,
    pattern_size: int = 16,
    attributions: tuple = ("saliency",),
    seed: int = 0,
    lr: float = 0.05,
    batch_size: int = 16,
) -> None:
    """Train a SmallVGG on the shapes dataset with CNNVizCallback logging every kind the views read:
    Grad-CAM (+ attributions and faithfulness), probe, kernels of conv1/conv2, patterns of conv2, an embedding
    of a held-out set with sprites, and top examples of conv2 and conv3 (slow kinds on the training thread)."""
    from tb_cnnviz.callbacks import CNNVizCallback

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is far faster on a busy 2-core machine
    try:
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = small_vgg(width=width)
        images, labels = ShapesDataset(max(256, batch_size * 8), seed=seed).tensors()
        held_images, held_labels = ShapesDataset(
            max(embedding_images, probe_images), seed=seed + 100
        ).tensors()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        schedule = dict.fromkeys(kinds.SNAPSHOTS, every)
        with CNNVizCallback(
            model,
            log_dir=logdir,
            probe=(held_images[:probe_images], held_labels[:probe_images]),
            class_names=ShapesDataset.classes,
            kernel_layers=["features.conv1", "features.conv2"],
            attributions=list(attributions),
            faithfulness=True,
            pattern_layers=["features.conv2"],
            pattern_channels=pattern_channels,
            pattern_steps=pattern_steps,
            pattern_size=pattern_size,
            embedding_probe=(held_images[:embedding_images], held_labels[:embedding_images]),
            embedding_method=embedding_method,
            top_example_layers=["features.conv2", "features.conv3"],
            top_k=4,
            every_n_steps=schedule,
            background=False,
            strict=True,
        ) as viz:

            def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
                index = torch.randint(0, len(images), (batch_size,), generator=generator)
                return images[index], labels[index]

            fit_with_callback(model, viz, optimizer, range(1, steps + 1), batch)
    finally:
        torch.set_num_threads(threads)


def log_broken_run(
    logdir: str, *, kill_after: int | None = 5, inf_after: int | None = 9, steps: int = 10
) -> None:
    """SmallVGG (width 8) trained ``steps`` steps with kernels (conv1, conv4) and dead filters every 2 steps;
    after step ``kill_after`` the BatchNorm shift of 6 of conv2's 8 filters is -1000 (their ReLU never passes
    signal again), after step ``inf_after`` one weight of conv4 is infinite (the next step's forward and
    update make the weights non-finite). None: no such damage (a healthy run on the same schedule)."""
    from tb_cnnviz.callbacks import CNNVizCallback

    torch.manual_seed(0)
    model = small_vgg(width=8)
    images, labels = ShapesDataset(16 * steps, seed=1).tensors()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with CNNVizCallback(
        model,
        log_dir=logdir,
        kernel_layers=["features.conv1", "features.conv4"],
        every_n_steps={"kernels": 2, "dead_filters": 2},
        background=False,
    ) as viz:

        def damage(step: int) -> None:
            with torch.no_grad():
                if step == kill_after:
                    model.features.bn2.bias[:6] = -1000.0
                if step == inf_after:
                    model.features.conv4.weight[0, 0, 0, 0] = float("inf")

        fit_with_callback(
            model,
            viz,
            optimizer,
            range(1, steps + 1),
            consecutive_batches(images, labels, 16),
            after_update=damage,
        )


def flat_png(value: int, height: int, width: int | None = None) -> bytes:
    """A PNG of one grey value (RGB)."""
    return summary.encode_png(np.full((height, width or height, 3), value, np.uint8))


def write_run(logdir: str, run: str, by_step: dict[int, list]) -> None:
    """Write ``{step: [summaries]}`` into the run ``logdir/run`` through a real SummaryWriter."""
    writer = SummaryWriter(os.path.join(logdir, run))
    try:
        for step, summaries in sorted(by_step.items()):
            summary.write(writer, summaries, step)
    finally:
        writer.close()


NAN = float("nan")
INFO = {  # target, predicted, probability, target probability
    0: np.array([[0, 1, 0.5, 0.2], [1, 1, 0.7, 0.7], [2, 0, 0.4, 0.1]], np.float32),
    10: np.array([[0, 0, 0.9, 0.9], [1, 2, 0.6, 0.3], [-1, -1, NAN, -1]], np.float32),
    20: np.array([[0, 0, 0.95, 0.95], [1, 1, 0.8, 0.8], [2, 2, 0.99, 0.99]], np.float32),
}
MAPS = {step: np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4) * (step + 1) / 100 for step in INFO}
MAPS[10][2] = NAN
MAPS[10][2, 0, 0] = 7.0  # a partly non-finite map: its maximum is the finite one
PATTERN_CHANNELS = [2, 5]
PATTERN_VALUES = {9: np.array([1.5, NAN], np.float32), 11: np.array([2.5, 3.0], np.float32)}
KERNELS = {step: np.stack([np.full((3, 3, 3), step + c, np.float32) for c in range(6)]) for step in (0, 10)}
DEAD = {
    5: np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.0], np.float32),
    15: np.array([0.1, 0.2, 0.0, 0.4, 0.5, 0.5], np.float32),
}
TOP = {
    step: np.array([[[4, 9.0, 0, 0, 8, 8], [1, 5.0, 8, 8, 16, 16]]] * 6, np.float32)
    + np.array([0, step, 0, 0, 0, 0], np.float32)
    for step in (9, 11)
}
TOP[11][5, 1, 0] = -1  # an empty slot (fewer images than k)
EMBEDDING = {9: np.array([[0, 0, 0], [1, 1, 1], [2, 0, 1], [0, 2, 0], [1, 2, 1]], np.float32)}
EMBEDDING[11] = EMBEDDING[9] * [2, 2, 1]
EMBEDDING[11][4] = [NAN, NAN, -1]
LABELS = [0, 1, 2, 0, 1]


# A Grad-CAM run of two images on layer4 whose maps explode at one step (the shared-scale tests of the plugin and
# the browser): image 0's peak grows k = 1..8 over CAM_STEPS and is 3.8e9 at EXPLODING_STEP
CAM_STEPS = [0, 10, 20, 30, 40, 50, 60, 70]
EXPLODING_STEP = 50
CAM_CLASSES = ["circle", "square", "star"]
# target, predicted, probability, target probability: image 1 (a star) is predicted a square
CAM_INFO = np.array([[0, 0, 0.9, 0.9], [2, 1, 0.6, 0.3]], np.float32)


def exploding_cam_maps(step: int) -> np.ndarray:
    k = CAM_STEPS.index(step) + 1
    maps = np.zeros((2, 2, 2), np.float32)
    maps[0] = [[k, 0.0], [0.0, k / 4]]
    maps[1] = [[0.0, k / 2], [k / 8, 0.0]]
    if step == EXPLODING_STEP:
        maps[0, 0, 0] = 3.8e9
    return maps


def exploding_cam_run(
    heat_pngs: Callable[[int], list[bytes]], probe_pngs: list[bytes], labels: list | None
) -> dict[int, list]:
    """``write_run``'s ``by_step`` of that run: at every step the heat maps ``heat_pngs(step)``, the raw maps and
    CAM_INFO; at step 0 the probe images ``probe_pngs`` labelled ``labels`` (None: unlabelled) of CAM_CLASSES."""
    by_step = {
        step: [
            summary.blob_summary(metadata.GRADCAM, "layer4", heat_pngs(step), colormap="jet"),
            summary.tensor_summary(metadata.GRADCAM_MAPS, "layer4", exploding_cam_maps(step)),
            summary.tensor_summary(
                metadata.GRADCAM_INFO,
                "layer4",
                CAM_INFO,
                columns=["target", "predicted", "probability", "target_probability"],
            ),
        ]
        for step in CAM_STEPS
    }
    by_step[0].append(
        summary.blob_summary(metadata.PROBE, None, probe_pngs, labels=labels, class_names=CAM_CLASSES)
    )
    return by_step


def write_exact_run(root: str) -> None:
    """The run ``exact``: every kind the Grad-CAM, Patterns and Embedding views read, written with
    ``tb_cnnviz.summary`` from the constants above, so routes can be checked value by value."""
    steps: dict[int, list] = {}

    def add(step, item):
        steps.setdefault(step, []).append(item)

    add(
        0,
        summary.blob_summary(
            metadata.PROBE,
            None,
            [flat_png(10 * i, 8) for i in range(3)],
            labels=[0, 1, 2],
            class_names=CLASSES,
        ),
    )
    for step, info in INFO.items():
        add(
            step,
            summary.blob_summary(
                metadata.GRADCAM, "conv", [flat_png(step + i, 8) for i in range(3)], colormap="jet"
            ),
        )
        add(step, summary.tensor_summary(metadata.GRADCAM_MAPS, "conv", MAPS[step]))
        add(
            step,
            summary.tensor_summary(
                metadata.GRADCAM_INFO,
                "conv",
                info,
                columns=["target", "predicted", "probability", "target_probability"],
            ),
        )
    for step in (0, 20):
        add(
            step,
            summary.blob_summary(
                metadata.ATTRIBUTION, "saliency", [flat_png(200, 8) for _ in range(3)], method="saliency"
            ),
        )
    for step, values in PATTERN_VALUES.items():
        add(
            step,
            summary.blob_summary(
                metadata.PATTERNS,
                "conv",
                [flat_png(step, 12), flat_png(step + 1, 12)],
                channels=PATTERN_CHANNELS,
                size=12,
                steps=3,
            ),
        )
        add(step, summary.tensor_summary(metadata.PATTERN_VALUES, "conv", values))
        add(step, summary.tensor_summary(metadata.TOP_EXAMPLES, "conv", TOP[step], k=2))
        add(
            step,
            summary.tensor_summary(
                metadata.EMBEDDING,
                "penultimate",
                EMBEDDING[step],
                method="tsne",
                labels=LABELS,
                class_names=CLASSES,
            ),
        )
    for step, kernels in KERNELS.items():
        add(step, summary.tensor_summary(metadata.KERNELS, "conv", kernels))
    for step, rates in DEAD.items():
        add(step, summary.tensor_summary(metadata.DEAD_FILTERS, "conv", rates, window=5, measured_at="bn"))
    # 5 thumbnails of 4x4 px, 2 a row, in two atlases of 3 and 2 cells; image i is filled with 40 * i
    atlas0 = np.zeros((8, 8, 3), np.uint8)
    for i, (r, c) in enumerate([(0, 0), (0, 1), (1, 0)]):
        atlas0[r * 4 : (r + 1) * 4, c * 4 : (c + 1) * 4] = 40 * i
    atlas1 = np.zeros((4, 8, 3), np.uint8)
    atlas1[:, :4], atlas1[:, 4:] = 120, 160
    add(
        9,
        summary.blob_summary(
            metadata.SPRITES,
            None,
            [summary.encode_png(atlas0), summary.encode_png(atlas1)],
            thumb=[4, 4],
            columns=2,
            counts=[3, 2],
            image_size=[16, 16],
        ),
    )
    write_run(root, EXACT_RUN, steps)


# ----------------------------------------------------------------------------- the real tensorboard
# The binary on a free port, asked for JSON (browser tests and the plugin's damaged-logdir test).
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
