"""Routes of the CNN Viz TensorBoard backend, through TensorBoard's own WSGI app.

Pattern (DESIGN.md): EventMultiplexer -> MultiplexerDataProvider -> TBContext ->
TensorBoardWSGI([plugin]) -> werkzeug test Client, over a real logdir written by
CNNVizCallback (plus a few runs written with tb_cnnviz.summary for exact values, a
hostile run name and NaNs).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from support import plugin_client, write_run
from tensorboard import default, program
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_ingester
from tensorboard.plugins import base_plugin
from tensorboard.plugins.core import core_plugin
from torch.utils.tensorboard import SummaryWriter
from werkzeug import test as werkzeug_test

from tb_cnnviz import metadata, plugin, plugin_routes, summary
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

P = "/data/plugin/cnnviz"
XSS_RUN = "<img src=x onerror=alert(1)>"
CALLBACK_RUN = "callback"
LAYER = "features.conv1"


# ----------------------------------------------------------------------------- logdirs
def _train_with_callback(logdir: str, steps: int = 12, every: int = 2) -> dict[int, np.ndarray]:
    """Forward passes in training mode (the dead-filter tracker counts those) and small weight
    updates, logged by the real callback; returns the conv1 weights at each logged step."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is ~10x faster on a busy 2-core machine
    try:
        return _log_steps(logdir, steps, every)
    finally:
        torch.set_num_threads(threads)


def _log_steps(logdir: str, steps: int, every: int) -> dict[int, np.ndarray]:
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = small_vgg(width=4)
    data = ShapesDataset(64, seed=3)
    images, labels = data.tensors()
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
                logged[step] = conv1.weight.detach().numpy().copy()
            viz.on_step_end(step)
    return logged


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


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> dict:
    root = str(tmp_path_factory.mktemp("cnnviz_logdir"))
    logged = _train_with_callback(os.path.join(root, CALLBACK_RUN))
    kernels = {s: np.full((2, 1, 3, 3), s, np.float32) for s in (0, 10)}
    write_run(
        root,
        XSS_RUN,
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
    write_run(root, "exact", exact)
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


@pytest.fixture(scope="module")
def client(logdir) -> werkzeug_test.Client:
    return plugin_client(logdir["root"])[0]


def _json(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.data[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.data)


# ---------------------------------------------------------------------------- listing
def test_plugin_is_listed_enabled_with_an_iframe_module(client):
    listing = _json(client, "/data/plugins_listing")["cnnviz"]
    assert listing["enabled"] is True
    assert listing["tab_name"] == "CNN Viz"
    assert listing["loading_mechanism"] == {"type": "IFRAME", "module_path": P + "/index.js"}


def test_runs_list_describes_layers_kinds_and_probe(client, logdir):
    answer = _json(client, f"{P}/api/runs/list")
    runs = {run["name"]: run for run in answer["runs"]}
    assert set(runs) == {CALLBACK_RUN, XSS_RUN, "exact", DREAM_RUN}
    layers = {layer["name"]: layer["kinds"] for layer in runs[CALLBACK_RUN]["layers"]}
    assert [layer["name"] for layer in runs[CALLBACK_RUN]["layers"]] == [
        f"features.conv{i}" for i in range(1, 6)
    ]
    assert set(layers[LAYER]) >= {"kernels", "kernel_grid", "smoothness", "activations", "dead_filters"}
    assert layers[LAYER]["kernels"]["max_step"] == 12
    assert layers[LAYER]["activations"]["channels"] == 4 and layers[LAYER]["activations"]["count"] == 3
    probe = runs[CALLBACK_RUN]["probe"]
    assert (
        probe["count"] == 3
        and probe["class_names"] == list(ShapesDataset.classes)
        and len(probe["labels"]) == 3
    )
    assert runs[CALLBACK_RUN]["kinds"]["probe"] == probe
    assert runs[XSS_RUN]["layers"][0]["name"] == "c<b>1</b>"
    assert {"activations", "dead", "filters", "runs"} <= set(
        answer["views"]
    )  # the other views: tests/test_plugin_views.py


def test_empty_logdir_lists_no_runs(tmp_path):
    client, _ = plugin_client(str(tmp_path))
    assert _json(client, f"{P}/api/runs/list")["runs"] == []
    assert _json(client, "/data/plugins_listing")["cnnviz"]["enabled"] is False


def test_every_logged_step_is_listed(client, logdir):
    steps = _json(client, f"{P}/api/runs/steps?run={CALLBACK_RUN}&kind=kernels&layer={LAYER}")["steps"]
    assert steps == sorted(logdir["logged"]) == [1, 2, 4, 6, 8, 10, 12]
    probe = _json(client, f"{P}/api/runs/steps?run={CALLBACK_RUN}&kind=probe")
    assert probe["steps"] == [1] and probe["layer"] is None


# ------------------------------------------------------------------------------ filters
def _decode(answer: dict) -> np.ndarray:
    flat = np.frombuffer(base64.b64decode(answer["data"]), dtype="<f4")
    return flat.reshape([len(answer["steps"])] + answer["shape"])


def test_kernels_of_one_step_are_the_logged_raw_weights(client, logdir):
    for step in (1, 6, 12):
        answer = _json(client, f"{P}/api/filters/kernels?run={CALLBACK_RUN}&layer={LAYER}&step={step}")
        assert answer["steps"] == [step] and answer["shape"] == [4, 3, 3, 3]
        np.testing.assert_array_equal(_decode(answer)[0], logdir["logged"][step])


def test_kernels_block_of_steps_and_size_cap(client, logdir, monkeypatch):
    answer = _json(client, f"{P}/api/filters/kernels?run={CALLBACK_RUN}&layer={LAYER}&step=4&count=3")
    assert answer["steps"] == [4, 6, 8]
    block = _decode(answer)
    for i, step in enumerate(answer["steps"]):
        np.testing.assert_array_equal(block[i], logdir["logged"][step])
    # A block never runs past the last step...
    assert _json(client, f"{P}/api/filters/kernels?run={CALLBACK_RUN}&layer={LAYER}&step=10&count=50")[
        "steps"
    ] == [10, 12]
    # ...nor past the response budget: 108 floats per step, budget 250 floats -> 2 steps.
    monkeypatch.setattr(plugin_routes, "MAX_VALUES_PER_RESPONSE", 250)
    assert _json(client, f"{P}/api/filters/kernels?run={CALLBACK_RUN}&layer={LAYER}&step=1&count=7")[
        "steps"
    ] == [1, 2]


def test_smoothness_series_with_nan_as_null_and_layer_mean(client):
    answer = _json(client, f"{P}/api/filters/smoothness?run=exact&layer=conv")
    assert answer["steps"] == [0, 10]
    assert answer["values"] == [[0.5, None, -0.25], [0.75, 0.25, None]]
    assert answer["mean"] == [pytest.approx(0.125), pytest.approx(0.5)]


def test_smoothness_from_the_callback_is_in_range(client, logdir):
    answer = _json(client, f"{P}/api/filters/smoothness?run={CALLBACK_RUN}&layer={LAYER}")
    values = np.array(answer["values"], dtype=float)
    assert values.shape == (7, 4) and np.all(np.abs(values) <= 1)


# --------------------------------------------------------------------------- activations
def test_activations_step_lists_pngs_and_the_probe(client):
    answer = _json(client, f"{P}/api/activations/step?run={CALLBACK_RUN}&layer={LAYER}&step=6")
    assert answer["step"] == 6 and answer["channels"] == 4 and answer["tile"] == [32, 32]
    assert len(answer["images"]) == 3
    assert answer["probe"]["step"] == 1 and len(answer["probe"]["images"]) == 3
    assert answer["probe"]["class_names"] == list(ShapesDataset.classes)
    response = client.get(f"{P}/{answer['images'][2]}")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    grid = Image.open(io.BytesIO(response.data))
    nrow, pad, (h, w) = answer["nrow"], answer["padding"], answer["tile"]
    rows = -(-answer["channels"] // nrow)
    assert grid.size == (nrow * (w + pad) + pad, rows * (h + pad) + pad)
    probe = Image.open(io.BytesIO(client.get(f"{P}/{answer['probe']['images'][0]}").data))
    assert probe.size == (32, 32) and probe.mode == "RGB"


def test_kernel_grid_png(client):
    response = client.get(
        f"{P}/api/runs/image?run={CALLBACK_RUN}&kind=kernel_grid&layer={LAYER}&step=12&index=0"
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.data.startswith(b"\x89PNG\r\n\x1a\n")


# ----------------------------------------------------------------------------- dead view
def test_dead_rates_matrix_and_fraction(client):
    answer = _json(client, f"{P}/api/dead/rates?run=exact&layer=conv")
    assert answer["steps"] == [5, 15]
    assert answer["rates"] == [[0.0, 0.5, 0.02, 1.0], [0.0, 0.0, 0.3, None]]
    assert answer["dead_fraction"] == [0.25, 0.5]
    assert answer["window"] == 5 and answer["measured_at"] == "bn"
    wider = _json(client, f"{P}/api/dead/rates?run=exact&layer=conv&threshold=0.05")
    assert wider["dead_fraction"] == [0.5, 0.5]


def test_dead_fractions_of_every_layer(client, logdir):
    answer = _json(client, f"{P}/api/dead/fractions?run=exact")
    assert [(x["layer"], x["dead_fraction"], x["filters"]) for x in answer["layers"]] == [
        ("conv", [0.25, 0.5], 4),
        ("other", [0.5, 1.0], 2),
    ]
    callback = _json(client, f"{P}/api/dead/fractions?run={CALLBACK_RUN}")
    assert [x["layer"] for x in callback["layers"]] == [f"features.conv{i}" for i in range(1, 6)]
    assert callback["layers"][0]["steps"] == [2, 4, 6, 8, 10, 12]
    assert all(0 <= f <= 1 for x in callback["layers"] for f in x["dead_fraction"])


# ------------------------------------------------------------------------------ DeepDream
def test_dream_answers_both_images_the_layers_settings_and_gain(client):
    listed = {run["name"]: run for run in _json(client, f"{P}/api/runs/list")["runs"]}[DREAM_RUN]
    kinds = {layer["name"]: layer["kinds"] for layer in listed["layers"]}
    assert kinds[DREAM_LAYER]["dream"]["gain"] == 2.5 and kinds[DREAM_LAYER]["dream"]["count"] == 2
    for url in (
        f"{P}/api/patterns/dream?run={DREAM_RUN}&layer={DREAM_LAYER.replace('+', '%2B')}",  # default: the last step
        f"{P}/api/patterns/dream?run={DREAM_RUN}&layer={DREAM_LAYER.replace('+', '%2B')}&step=0",
    ):
        answer = _json(client, url)
        assert (
            answer["run"] == DREAM_RUN
            and answer["layer"] == DREAM_LAYER
            and answer["step"] == 0
            and answer["steps"] == [0]
        )
        assert answer["layers"] == ["features.conv3", "features.conv4"]
        assert (answer["gain"], answer["objective"], answer["size"]) == (2.5, [0.5, 1.25], [6, 8])
        assert (
            answer["octaves"],
            answer["octave_scale"],
            answer["optimisation_steps"],
            answer["lr"],
            answer["seed"],
        ) == (3, 1.5, 4, 0.02, 7)
        for key, expected in (("original", DREAM_PNGS[0]), ("dream", DREAM_PNGS[1])):
            response = client.get(f"{P}/{answer[key]}")
            assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
            assert response.data == expected
    # Content that is not what the writer writes is dropped, never sent on (the UI inserts text only).
    broken = _json(client, f"{P}/api/runs/list")
    assert {x["name"] for r in broken["runs"] if r["name"] == DREAM_RUN for x in r["layers"]} == {
        DREAM_LAYER,
        "broken",
    }
    answer = _json(client, f"{P}/api/patterns/dream?run={DREAM_RUN}&layer=broken", status=404)
    assert (
        answer["error"]
        == "step: the dream of 'broken' at step 0 has 1 image(s); expected 2 (original, dream)"
    )


def test_dream_content_is_sanitised(tmp_path):
    png = DREAM_PNGS[0]
    write_run(
        str(tmp_path),
        "odd",
        {
            2: [
                summary.blob_summary(
                    metadata.DREAM,
                    "conv",
                    [png, png],
                    gain=float("nan"),
                    objective=[1, "a"],
                    octaves=True,
                    octave_scale="1.4",
                    size=[0, 8],
                    layers="conv",
                )
            ]
        },
    )
    client, _ = plugin_client(str(tmp_path))
    answer = _json(client, f"{P}/api/patterns/dream?run=odd&layer=conv")
    assert answer["step"] == 2 and answer["layers"] == ["conv"]
    assert (
        answer["gain"],
        answer["objective"],
        answer["octaves"],
        answer["octave_scale"],
        answer["size"],
    ) == (None, [1.0, None], None, None, None)


# -------------------------------------------------------------------------- bad requests
K = f"{P}/api/filters/kernels"
BAD_REQUESTS = [
    (f"{K}?layer={LAYER}&step=1", 400, "run"),
    (f"{K}?run=nope&layer={LAYER}&step=1", 404, "run"),
    (f"{K}?run={CALLBACK_RUN}&step=1", 400, "layer"),
    (f"{K}?run={CALLBACK_RUN}&layer=features.conv9&step=1", 404, "layer"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}", 400, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=abc", 400, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=1.5", 400, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=1e3", 400, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=-1", 400, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=%201", 400, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=0x10", 400, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step={2**63}", 400, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step={'9' * 5000}", 400, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=3", 404, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=999999", 404, "step"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=1&count=0", 400, "count"),
    (f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=1&count=99999999999", 400, "count"),
    (f"{K}?run={'r' * 5000}&layer={LAYER}&step=1", 400, "run"),
    (f"{P}/api/runs/steps?run={CALLBACK_RUN}&kind=weights&layer={LAYER}", 400, "kind"),
    (f"{P}/api/runs/steps?run={CALLBACK_RUN}&layer={LAYER}", 400, "kind"),
    (f"{P}/api/runs/image?run={CALLBACK_RUN}&kind=kernels&layer={LAYER}&step=1&index=0", 400, "kind"),
    (f"{P}/api/runs/image?run={CALLBACK_RUN}&kind=activations&layer={LAYER}&step=3&index=0", 404, "step"),
    (f"{P}/api/runs/image?run={CALLBACK_RUN}&kind=activations&layer={LAYER}&step=1&index=3", 404, "index"),
    (f"{P}/api/runs/image?run={CALLBACK_RUN}&kind=activations&layer={LAYER}&step=1&index=-1", 400, "index"),
    (f"{P}/api/runs/image?run={CALLBACK_RUN}&kind=activations&layer={LAYER}&step=1", 400, "index"),
    (f"{P}/api/runs/image?run=exact&kind=probe&step=1&index=0", 404, "probe"),
    (f"{P}/api/activations/step?run={CALLBACK_RUN}&layer=features.conv2&step=1", 404, "layer"),
    (f"{P}/api/dead/rates?run=exact&layer=conv&threshold=nan", 400, "threshold"),
    (f"{P}/api/dead/rates?run=exact&layer=conv&threshold=2", 400, "threshold"),
    (f"{P}/api/dead/rates?run=exact&layer=conv&threshold=abc", 400, "threshold"),
    (f"{P}/api/dead/fractions?run={XSS_RUN}&threshold=-0.5", 400, "threshold"),
    (f"{P}/api/filters/smoothness?run={XSS_RUN}&layer=c<b>1</b>", 404, "layer"),
    (f"{P}/api/patterns/dream?layer={DREAM_LAYER}", 400, "run"),
    (f"{P}/api/patterns/dream?run={DREAM_RUN}", 400, "layer"),
    (
        f"{P}/api/patterns/dream?run={DREAM_RUN}&layer=features.conv3",
        404,
        "layers with dream: ['broken', 'features.conv3+features.conv4']",
    ),
    (f"{P}/api/patterns/dream?run={DREAM_RUN}&layer=features.conv3%2Bfeatures.conv4&step=abc", 400, "step"),
    (
        f"{P}/api/patterns/dream?run={DREAM_RUN}&layer=features.conv3%2Bfeatures.conv4&step=5",
        404,
        "nearest logged step is 0",
    ),
    (f"{P}/api/patterns/dream?run=exact&layer=conv", 404, "run 'exact' has no 'dream' data for layer 'conv'"),
    (
        f"{P}/api/runs/image?run={DREAM_RUN}&kind=dream&layer=features.conv3%2Bfeatures.conv4&step=0&index=2",
        404,
        "index",
    ),
    (f"{P}/api/nope/list", 404, "unknown view"),
    (f"{P}/api/filters/nope", 404, "unknown route"),
    (f"{P}/api/filters", 404, "api/<view>/<route>"),
    (f"{P}/api/filters/kernels/extra", 404, "api/<view>/<route>"),
]


@pytest.mark.parametrize(
    "url,status,mentions", BAD_REQUESTS, ids=[f"{i:02d}" for i in range(len(BAD_REQUESTS))]
)
def test_bad_requests_get_a_4xx_json_error_naming_the_problem(client, url, status, mentions):
    answer = _json(client, url, status=status)
    assert mentions in answer["error"]
    assert len(answer["error"]) < 1200


def test_post_is_refused(client):
    response = client.post(f"{P}/api/runs/list")
    assert response.status_code == 405


def test_run_names_come_back_verbatim_in_json(client):
    answer = _json(
        client,
        f"{P}/api/runs/steps?run=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&kind=kernels&layer=c%3Cb%3E1%3C%2Fb%3E",
    )
    assert answer["run"] == XSS_RUN and answer["layer"] == "c<b>1</b>" and answer["steps"] == [0, 10]
    kernels = _json(
        client,
        f"{P}/api/filters/kernels?run=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&layer=c%3Cb%3E1%3C%2Fb%3E&step=10",
    )
    assert np.all(_decode(kernels) == 10)


# ------------------------------------------------------------------------------ static files
def test_frontend_files_are_served_with_javascript_type(client):
    for path in ("index.js", "views/filters.js", "views/activations.js", "views/dead.js", "api.js"):
        response = client.get(f"{P}/{path}")
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith("text/javascript"), path
    index = client.get(f"{P}/index.js").data.decode()
    assert "export async function render()" in index
    css = client.get(f"{P}/style.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "views/..%2f..%2fsetup.py",
        "views/..%2F..%2Ftb_cnnviz%2Fplugin.py",
        "views/../../setup.py",
        "views/%2e%2e/%2e%2e/setup.py",
        "views//etc/passwd",
        "views/%2fetc%2fpasswd",
        "vendor/..%2f__init__.py",
        "views/__init__.py",
        "views/",
        "..%2fsetup.py",
        "%2fetc%2fpasswd",
    ],
)
def test_static_route_cannot_be_walked(client, path):
    response = client.get(f"{P}/{path}")
    assert 400 <= response.status_code < 500
    assert b"setup(" not in response.data and b"root:" not in response.data and b"import" not in response.data


def test_symlinks_in_the_frontend_folder_are_not_served(logdir, tmp_path):
    frontend = tmp_path / "frontend"
    (frontend / "views").mkdir(parents=True)
    (frontend / "index.js").write_text("export function render() {}\n")
    (frontend / "views" / "ok.js").write_text("export const ok = 1;\n")
    secret = tmp_path / "secret.js"
    secret.write_text("SECRET\n")
    os.symlink(secret, frontend / "views" / "leak.js")
    os.symlink(secret, frontend / "leak.js")
    os.symlink(tmp_path, frontend / "vendor")  # a symlinked folder
    client, _ = plugin_client(logdir["root"], frontend_dir=str(frontend))
    assert client.get(f"{P}/views/ok.js").status_code == 200
    for path in ("views/leak.js", "leak.js", "vendor/secret.js"):
        response = client.get(f"{P}/{path}")
        assert response.status_code == 404, path
        assert b"SECRET" not in response.data


# ------------------------------------------------------------------- sampling and freshness
def test_fix_flags_keeps_user_values_and_adds_cnnviz_default():
    loader = plugin.CNNVizLoader()

    class Flags:
        pass

    flags = Flags()
    flags.samples_per_plugin = {}
    loader.fix_flags(flags)
    assert flags.samples_per_plugin == {"cnnviz": plugin.DEFAULT_SAMPLES}
    flags.samples_per_plugin = {"cnnviz": 0, "images": 3}
    loader.fix_flags(flags)
    assert flags.samples_per_plugin == {"cnnviz": 0, "images": 3}
    for odd in (None, "cnnviz=5", 17):
        flags.samples_per_plugin = odd
        loader.fix_flags(flags)  # never raises: an error would stop TensorBoard
        assert flags.samples_per_plugin == odd
    loader.fix_flags(Flags())


def _configured_flags(argv: list[str]):
    tb = program.TensorBoard(plugins=[core_plugin.CorePluginLoader(), plugin.CNNVizLoader()])
    tb.configure(argv=["tensorboard", *argv])
    return tb.flags


def test_entry_point_registers_the_loader():
    assert plugin.CNNVizLoader in default.get_dynamic_plugins()  # what the tensorboard binary loads


def test_fix_flags_through_tensorboard_argument_parsing(tmp_path):
    flags = _configured_flags(["--logdir", str(tmp_path)])
    assert flags.samples_per_plugin == {"cnnviz": plugin.DEFAULT_SAMPLES}
    flags = _configured_flags(["--logdir", str(tmp_path), "--samples_per_plugin", "images=5,cnnviz=7"])
    assert flags.samples_per_plugin == {"images": 5, "cnnviz": 7}


def test_all_logged_steps_are_reachable_with_tensorboards_python_loader(tmp_path):
    """150 tensor and 40 blob steps: more than TensorBoard keeps for a third-party plugin by default (10)."""
    png = summary.encode_png(np.zeros((4, 4), np.uint8))
    write_run(
        str(tmp_path),
        "long",
        {
            step: [summary.tensor_summary(metadata.KERNELS, "c", np.full((1, 1, 1, 1), step, np.float32))]
            + (
                [
                    summary.blob_summary(
                        metadata.ACTIVATIONS, "c", [png], channels=1, nrow=1, padding=1, tile=[4, 4]
                    )
                ]
                if step < 40
                else []
            )
            for step in range(150)
        },
    )
    flags = _configured_flags(["--logdir", str(tmp_path), "--load_fast", "false"])
    ingester = data_ingester.LocalDataIngester(flags)
    ingester._multiplexer.AddRunsFromDirectory(str(tmp_path))
    ingester._multiplexer.Reload()
    context = base_plugin.TBContext(
        logdir=str(tmp_path), data_provider=ingester.data_provider, sampling_hints=flags.samples_per_plugin
    )
    client = werkzeug_test.Client(
        application.TensorBoardWSGI([plugin.CNNVizPlugin(context)], data_provider=ingester.data_provider)
    )
    assert _json(client, f"{P}/api/runs/steps?run=long&kind=kernels&layer=c")["steps"] == list(range(150))
    assert _json(client, f"{P}/api/runs/steps?run=long&kind=activations&layer=c")["steps"] == list(range(40))
    answer = _json(client, f"{P}/api/filters/kernels?run=long&layer=c&step=137")
    assert _decode(answer).ravel().tolist() == [137.0]


def test_new_steps_show_up_after_a_reload(tmp_path):
    def logged(step: int) -> list:
        return [
            summary.tensor_summary(metadata.KERNELS, "c", np.full((1, 1, 1, 1), step, np.float32)),
            summary.tensor_summary(metadata.SMOOTHNESS, "c", np.array([step / 10], np.float32)),
        ]

    writer = SummaryWriter(str(tmp_path / "live"))
    summary.write(writer, logged(0), 0)
    writer.flush()
    client, multiplexer = plugin_client(str(tmp_path))
    url = f"{P}/api/runs/steps?run=live&kind=kernels&layer=c"
    assert _json(client, url)["steps"] == [0]
    assert _decode(_json(client, f"{P}/api/filters/kernels?run=live&layer=c&step=0")).item() == 0
    assert _json(client, f"{P}/api/filters/smoothness?run=live&layer=c")["values"] == [[0.0]]
    summary.write(writer, logged(5), 5)
    writer.close()
    multiplexer.Reload()
    assert _json(client, url)["steps"] == [0, 5]
    assert _decode(_json(client, f"{P}/api/filters/kernels?run=live&layer=c&step=5")).item() == 5
    assert _json(client, f"{P}/api/filters/smoothness?run=live&layer=c")["values"] == [[0.0], [0.5]]


def test_series_json_is_gzipped_for_clients_that_accept_it(client):
    url = f"{P}/api/dead/rates?run=exact&layer=conv"
    zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(zipped.data)) == _json(client, url)


def test_plugin_import_is_light_and_torch_free():
    code = (
        "import sys, time; t = time.time(); import tb_cnnviz.plugin; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


def test_frontend_metadata():
    meta = plugin.CNNVizPlugin(base_plugin.TBContext()).frontend_metadata()
    assert meta.es_module_path == "/index.js" and meta.tab_name == "CNN Viz"
    assert plugin.CNNVizPlugin(base_plugin.TBContext()).is_active() is False
