"""Serving the plugin (``tb_cnnviz.plugin``): the loader and its flags, the static frontend files, and
what every route shares (path shape, methods)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from logdirs import P, api_url, assert_error, decode_kernels, get_json
from support import EXACT_RUN, plugin_client, write_run
from tensorboard import default, program
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_ingester
from tensorboard.plugins import base_plugin
from tensorboard.plugins.core import core_plugin
from werkzeug import test as werkzeug_test

from tb_cnnviz import kinds, metadata, plugin, summary


# ------------------------------------------------------------------------------ static files
def test_frontend_files_are_served_with_javascript_type(basic_client):
    for path in (
        "index.js",
        "views/filters/index.js",
        "views/activations/data.js",
        "views/dead/index.js",
        "api.js",
    ):
        response = basic_client.get(f"{P}/{path}")
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith("text/javascript"), path
    index = basic_client.get(f"{P}/index.js").data.decode()
    assert "export async function render()" in index
    css = basic_client.get(f"{P}/style.css")
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
def test_static_route_cannot_be_walked(basic_client, path):
    response = basic_client.get(f"{P}/{path}")
    assert 400 <= response.status_code < 500
    assert b"setup(" not in response.data and b"root:" not in response.data and b"import" not in response.data


def test_symlinks_in_the_frontend_folder_are_not_served(basic_logdir, tmp_path):
    frontend = tmp_path / "frontend"
    (frontend / "views").mkdir(parents=True)
    (frontend / "index.js").write_text("export function render() {}\n")
    (frontend / "views" / "ok.js").write_text("export const ok = 1;\n")
    secret = tmp_path / "secret.js"
    secret.write_text("SECRET\n")
    os.symlink(secret, frontend / "views" / "leak.js")
    os.symlink(secret, frontend / "leak.js")
    os.symlink(tmp_path, frontend / "vendor")  # a symlinked folder
    client, _ = plugin_client(basic_logdir["root"], frontend_dir=str(frontend))
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
    assert get_json(client, f"{P}/api/runs/steps?run=long&kind=kernels&layer=c")["steps"] == list(range(150))
    assert get_json(client, f"{P}/api/runs/steps?run=long&kind=activations&layer=c")["steps"] == list(
        range(40)
    )
    answer = get_json(client, f"{P}/api/filters/kernels?run=long&layer=c&step=137")
    assert decode_kernels(answer).ravel().tolist() == [137.0]


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


# ------------------------------------------------------------------------- every route
def test_post_is_refused(basic_client):
    response = basic_client.post(f"{P}/api/runs/list")
    assert response.status_code == 405


def test_other_methods_are_refused(views_client):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = views_client.open(
            api_url("gradcam/step", run=EXACT_RUN, layer="conv", step=10), method=method
        )
        assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"
        assert "not allowed" in json.loads(response.data)["error"]
    static = views_client.post(f"{P}/views/gradcam/index.js")
    assert static.status_code == 405 and b"export" not in static.data


def test_new_view_modules_are_served(views_client):
    for path in (
        "views/gradcam/index.js",
        "views/patterns/index.js",
        "views/embedding/index.js",
        "sprites.js",
    ):
        response = views_client.get(f"{P}/{path}")
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(
            "text/javascript"
        ), path
    # the shell imports ./views/<name>/index.js for every view the table names: each must be served
    index = views_client.get(f"{P}/index.js").data.decode()
    assert "import(`./views/${row.name}/index.js`)" in index
    for name in kinds.VIEWS:
        response = views_client.get(f"{P}/views/{name}/index.js")
        assert response.status_code == 200 and b"export function create" in response.data, name


def test_a_view_folder_is_served_but_nothing_outside_the_allowlist(tmp_path):
    frontend = tmp_path / "frontend"
    (frontend / "views" / "embedding").mkdir(parents=True)
    (frontend / "index.js").write_text("export function render() {}\n")
    (frontend / "views" / "embedding" / "data.js").write_text("export const data = 1;\n")
    (frontend / "views" / "embedding" / "notes.txt").write_text("not served\n")
    (frontend / "other").mkdir()
    (frontend / "other" / "x.js").write_text("export const x = 1;\n")
    files = plugin.static_files(str(frontend))
    assert sorted(files) == ["index.js", "views/embedding/data.js"]
    client, _ = plugin_client(str(tmp_path), frontend_dir=str(frontend))
    response = client.get(f"{P}/views/embedding/data.js")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/javascript")
    for path in ("views/embedding/notes.txt", "other/x.js", "views/embedding/../../index.js"):
        assert client.get(f"{P}/{path}").status_code == 404, path


BAD_PATHS = [
    (f"{P}/api/nope/list", 404, "unknown view"),
    (f"{P}/api/filters/nope", 404, "unknown route"),
    (f"{P}/api/filters", 404, "api/<view>/<route>"),
    (f"{P}/api/filters/kernels/extra", 404, "api/<view>/<route>"),
    (f"{P}/api/x/api/runs/list", 404, "api/<view>/<route>"),  # exactly api/<view>/<route> under the plugin
    (f"{P}/api//list", 404, "api/<view>/<route>"),
]


@pytest.mark.parametrize("url,status,mentions", BAD_PATHS, ids=[f"{i:02d}" for i in range(len(BAD_PATHS))])
def test_bad_paths_get_a_404_json_error_naming_the_problem(basic_client, url, status, mentions):
    assert_error(basic_client, url, status, mentions)
