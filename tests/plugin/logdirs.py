"""Scaffolding of the plugin's tests: the logdirs they serve and TensorBoard's WSGI app over them.

Pattern (docs/design.md): EventMultiplexer -> MultiplexerDataProvider -> TBContext ->
TensorBoardWSGI([plugin]) -> werkzeug test Client, over real logdirs:

* the **basic** logdir: a run written by CNNVizCallback while a small CNN takes random
  steps (kernels, activations, dead filters), a run written with ``tb_cnnviz.summary`` for
  exact values, a hostile run name, NaNs, and a DeepDream run;
* the **views** logdir: a run written by CNNVizCallback while a small CNN trains
  (``support.log_views_run``: every kind the Grad-CAM, Patterns and Embedding views read), a
  run with exact values of every kind (``support.write_exact_run``) and a hostile run name;
* the **damaged** logdir: good runs, hostile names, a corrupt and a truncated event file.

The fixtures building them (once per session) are in ``tests/plugin/conftest.py``; the WSGI
client is ``support.plugin_client``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.parse

import numpy as np
import torch
from PIL import Image
from support import EXACT_RUN, flat_png, log_views_run, write_exact_run, write_run

from tb_cnnviz import metadata, summary
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

P = "/data/plugin/cnnviz"
CALLBACK_RUN = "callback"
LAYER = "features.conv1"
ACTIVATION_LAYER = "features.relu2"  # the first default activation layer: the last map at full resolution
BASIC_XSS_RUN = "<img src=x onerror=alert(1)>"
VIEWS_XSS_RUN = "<script>alert('x')</script> ラン"
HOSTILE_RUNS = [
    "ラン 😀 ünïcode",
    "<img src=x onerror=alert(1)>",
    "a&b=c?d#e%20f;+",
    "nested/run",
    "dot.dot..",
    " spaced ",
]


# ------------------------------------------------------------------------------ answers
def get_json(client, url: str, status: int = 200) -> dict:
    """The JSON answer of ``url``, which must have ``status``."""
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.data[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.data)


def assert_error(client, url: str, status: int, mentions: str) -> None:
    """``url`` answers a JSON error with ``status`` whose message contains ``mentions``."""
    answer = get_json(client, url, status=status)
    assert mentions in answer["error"]
    assert len(answer["error"]) < 1200


def api_url(route: str, **params) -> str:
    return f"{P}/api/{route}?{urllib.parse.urlencode(params)}"


def png_of(client, relative: str) -> np.ndarray:
    """The PNG at ``relative`` (a URL from an answer), decoded."""
    response = client.get(f"{P}/{relative}")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png", relative
    return np.asarray(Image.open(io.BytesIO(response.data)))


def base64_floats(answer: dict, key: str = "data") -> np.ndarray:
    return np.frombuffer(base64.b64decode(answer[key]), dtype="<f4")


def decode_kernels(answer: dict) -> np.ndarray:
    """The ``[steps, out, in, kh, kw]`` block of an ``api/filters/kernels`` answer."""
    return base64_floats(answer).reshape([len(answer["steps"])] + answer["shape"])


# ------------------------------------------------------------------------------ basic logdir
DREAM_RUN = "dream-20250301-101500"
DREAM_LAYER = "features.conv3+features.conv4"
DREAM_PNGS = [
    summary.encode_png(np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)),
    summary.encode_png(np.full((6, 8, 3), 200, np.uint8)),
]
DREAM_CONTENT = dict(
    layers=["features.conv3", "features.conv4"],
    octaves=3,
    octave_scale=1.5,
    steps=4,
    lr=0.02,
    seed=7,
    size=[6, 8],
    objective=[0.5, 1.25],
    gain=2.5,
)
SMOOTH = {0: np.array([0.5, np.nan, -0.25], np.float32), 10: np.array([0.75, 0.25, np.inf], np.float32)}
RATES = {5: np.array([0.0, 0.5, 0.02, 1.0], np.float32), 15: np.array([0.0, 0.0, 0.3, np.nan], np.float32)}


def train_with_callback(logdir: str, steps: int = 12, every: int = 2) -> dict[int, np.ndarray]:
    """Forward passes in training mode (the dead-filter tracker counts those) and small weight
    updates, logged by the real callback; returns the conv1 weights at each logged step (in half precision)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is ~10x faster on a busy 2-core machine
    try:
        generator = torch.Generator().manual_seed(0)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = small_vgg(width=4)
        images, labels = ShapesDataset(64, seed=3).tensors()
        logged: dict[int, np.ndarray] = {}
        conv1 = model.features.conv1
        with CNNVizCallback(
            model,
            log_dir=logdir,
            probe=(images[:3], labels[:3]),
            class_names=ShapesDataset.classes,
            every_n_steps=every,
            strict=True,
        ) as viz:
            model.train()
            for step in range(1, steps + 1):
                index = torch.randint(0, len(images), (8,), generator=generator)
                model(images[index])
                with torch.no_grad():
                    for parameter in model.parameters():
                        parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
                if step == 1 or step % every == 0:
                    # as the kernels snapshot stores them: float16 (snapshots.precision), read back as float32
                    logged[step] = conv1.weight.detach().numpy().astype(np.float16).astype(np.float32)
                viz.on_step_end(step)
        return logged
    finally:
        torch.set_num_threads(threads)


def make_basic_logdir(root: str) -> dict:
    """The basic logdir; returns ``{"root": root, "logged": {step: conv1 weights of the callback run}}``."""
    logged = train_with_callback(os.path.join(root, CALLBACK_RUN))
    kernels = {s: np.full((2, 1, 3, 3), s, np.float32) for s in (0, 10)}
    write_run(
        root,
        BASIC_XSS_RUN,
        {s: [summary.tensor_summary(metadata.KERNELS, "c<b>1</b>", kernels[s])] for s in kernels},
    )
    exact: dict[int, list] = {}
    for step, value in SMOOTH.items():
        exact.setdefault(step, []).append(summary.tensor_summary(metadata.SMOOTHNESS, "conv", value))
    for step, value in RATES.items():
        exact.setdefault(step, []).append(
            summary.tensor_summary(metadata.DEAD_FILTERS, "conv", value, window=5, measured_at="bn")
        )
        exact[step].append(summary.tensor_summary(metadata.DEAD_FILTERS, "other", value[:2]))
    write_run(root, EXACT_RUN, exact)
    write_run(
        root,
        DREAM_RUN,
        {
            0: [
                summary.blob_summary(
                    metadata.DREAM, DREAM_LAYER, [DREAM_PNGS[0], DREAM_PNGS[1]], **DREAM_CONTENT
                ),
                summary.blob_summary(metadata.DREAM, "broken", [DREAM_PNGS[0]], gain="x", size=[0, 8]),
            ]
        },
    )
    return {"root": root, "logged": logged}


# ------------------------------------------------------------------------------ views logdir
def make_views_logdir(root: str) -> str:
    """The views logdir (see the module docstring)."""
    log_views_run(os.path.join(root, CALLBACK_RUN))
    write_exact_run(root)
    write_run(
        root,
        VIEWS_XSS_RUN,
        {
            3: [
                summary.blob_summary(metadata.GRADCAM, "c<b>", [flat_png(1, 8)]),
                summary.tensor_summary(
                    metadata.GRADCAM_INFO, "c<b>", np.array([[1, 1, 0.5, 0.5]], np.float32)
                ),
            ]
        },
    )
    return root


# ---------------------------------------------------------------------------- damaged logdir
def _small_run(root: str, run: str, value: float) -> None:
    image = summary.encode_png(np.full((4, 4, 3), int(value) % 256, np.uint8))
    write_run(
        root,
        run,
        {
            step: [
                summary.tensor_summary(
                    metadata.KERNELS, "layer <1>", np.full((2, 1, 3, 3), value + step, np.float32)
                ),
                summary.tensor_summary(metadata.DEAD_FILTERS, "layer <1>", np.array([0.0, 0.5], np.float32)),
                summary.blob_summary(metadata.GRADCAM, "layer <1>", [image, image]),
                summary.tensor_summary(
                    metadata.GRADCAM_INFO,
                    "layer <1>",
                    np.array([[0, 1, 0.5, 0.2], [1, 1, 0.9, 0.9]], np.float32),
                ),
            ]
            for step in (0, 5)
        },
    )


def _event_file(root: str, run: str) -> str:
    folder = os.path.join(root, run)
    return os.path.join(folder, next(name for name in os.listdir(folder) if "tfevents" in name))


def make_damaged_logdir(root: str) -> dict:
    """A logdir with good runs, hostile names, a corrupt and a truncated event file and a run to delete."""
    write_exact_run(root)  # every kind, exact values (run "exact")
    for i, name in enumerate(HOSTILE_RUNS):
        _small_run(root, name, 10 * i)
    _small_run(root, "doomed", 99)
    # random bytes where an event file should be, beside nothing else
    os.makedirs(os.path.join(root, "corrupt"))
    with open(os.path.join(root, "corrupt", "events.out.tfevents.0.corrupt"), "wb") as handle:
        handle.write(np.random.default_rng(0).bytes(4096))
    # a good run whose event file ends mid-record (a writer killed while writing)
    _small_run(root, "truncated", 7)
    path = _event_file(root, "truncated")
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size - 37)
    # a run with a corrupt file next to a good one
    _small_run(root, "mixed", 3)
    with open(os.path.join(root, "mixed", "events.out.tfevents.9.garbage"), "wb") as handle:
        handle.write(b"\x00" * 16 + np.random.default_rng(1).bytes(300))
    return {"root": root}
