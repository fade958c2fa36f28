"""Routes shared by every view (api/runs/...): the listing, logged steps and PNGs of blob series."""

from __future__ import annotations

import numpy as np
from logdirs import (
    ACTIVATION_LAYER,
    BASIC_XSS_RUN,
    CALLBACK_RUN,
    DREAM_RUN,
    LAYER,
    VIEWS_XSS_RUN,
    P,
    get_json,
)
from support import plugin_client, write_run

from tb_cnnviz import kinds, metadata, summary
from tb_cnnviz.datasets import ShapesDataset


def test_plugin_is_listed_enabled_with_an_iframe_module(basic_client):
    listing = get_json(basic_client, "/data/plugins_listing")["cnnviz"]
    assert listing["enabled"] is True
    assert listing["tab_name"] == "CNN Viz"
    assert listing["loading_mechanism"] == {"type": "IFRAME", "module_path": P + "/index.js"}


def test_runs_list_describes_layers_kinds_and_probe(basic_client, basic_logdir):
    answer = get_json(basic_client, f"{P}/api/runs/list")
    runs = {run["name"]: run for run in answer["runs"]}
    assert set(runs) == {CALLBACK_RUN, BASIC_XSS_RUN, "exact", DREAM_RUN}
    layers = {layer["name"]: layer["kinds"] for layer in runs[CALLBACK_RUN]["layers"]}
    assert [layer["name"] for layer in runs[CALLBACK_RUN]["layers"]] == [
        "features",  # Grad-CAM and activations: the features block's output
        *(f"features.conv{i}" for i in range(1, 6)),
        "features.relu2",  # activations: the stage outputs at 32 and 8 px
        "features.relu5",
    ]
    assert set(layers[LAYER]) >= {"kernels", "kernel_grid", "smoothness", "dead_filters"}
    assert layers[LAYER]["kernels"]["max_step"] == 12
    activations = layers[ACTIVATION_LAYER]["activations"]
    assert activations["channels"] == 4 and activations["count"] == 3
    probe = runs[CALLBACK_RUN]["probe"]
    assert (
        probe["count"] == 3
        and probe["class_names"] == list(ShapesDataset.classes)
        and len(probe["labels"]) == 3
    )
    assert runs[CALLBACK_RUN]["kinds"]["probe"] == probe
    assert runs[BASIC_XSS_RUN]["layers"][0]["name"] == "c<b>1</b>"
    assert {"activations", "dead", "filters", "runs"} <= set(answer["views"])


def test_runs_list_names_the_new_views_and_keeps_the_embedding_labels_out(views_client):
    answer = get_json(views_client, f"{P}/api/runs/list")
    assert answer["views"] == [
        "activations",
        "dead",
        "embedding",
        "filters",
        "gradcam",
        "overview",
        "patterns",
        "runs",
        "separability",
        "top_images",
    ]
    runs = {run["name"]: run for run in answer["runs"]}
    layers = {layer["name"]: layer["kinds"] for layer in runs[CALLBACK_RUN]["layers"]}
    assert set(layers["features"]) >= {"gradcam_maps", "gradcam_info"}  # no overlay PNGs since #18
    assert set(layers["features.conv2"]) >= {"patterns", "pattern_values", "kernels"}
    assert "top_examples" in layers["features.conv2"] and "top_examples" in layers["features.conv3"]
    assert (
        layers["classifier"]["embedding"]["count"] == 60 and "labels" not in layers["classifier"]["embedding"]
    )
    assert runs[CALLBACK_RUN]["kinds"]["sprites"]["counts"] == [60]
    assert VIEWS_XSS_RUN in runs and runs[VIEWS_XSS_RUN]["layers"][0]["name"] == "c<b>"


def test_runs_list_serves_the_table_of_kinds(basic_client):
    answer = get_json(basic_client, f"{P}/api/runs/list")
    assert answer["table"] == kinds.table()
    assert answer["kinds"] == list(metadata.KINDS)
    assert [view["name"] for view in answer["table"]["views"]] == list(kinds.VIEWS)
    assert sorted(["runs"] + [view["name"] for view in answer["table"]["views"]]) == answer["views"]


def test_empty_logdir_lists_no_runs(tmp_path):
    client, _ = plugin_client(str(tmp_path))
    assert get_json(client, f"{P}/api/runs/list")["runs"] == []
    assert get_json(client, "/data/plugins_listing")["cnnviz"]["enabled"] is False


def test_every_logged_step_is_listed(basic_client, basic_logdir):
    steps = get_json(basic_client, f"{P}/api/runs/steps?run={CALLBACK_RUN}&kind=kernels&layer={LAYER}")[
        "steps"
    ]
    assert steps == sorted(basic_logdir["logged"]) == [1, 2, 4, 6, 8, 10, 12]
    probe = get_json(basic_client, f"{P}/api/runs/steps?run={CALLBACK_RUN}&kind=probe")
    assert probe["steps"] == [1] and probe["layer"] is None


def test_kernel_grid_png(basic_client):
    response = basic_client.get(
        f"{P}/api/runs/image?run={CALLBACK_RUN}&kind=kernel_grid&layer={LAYER}&step=12&index=0"
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.data.startswith(b"\x89PNG\r\n\x1a\n")


def test_run_names_come_back_verbatim_in_json(basic_client):
    answer = get_json(
        basic_client,
        f"{P}/api/runs/steps?run=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&kind=kernels&layer=c%3Cb%3E1%3C%2Fb%3E",
    )
    assert answer["run"] == BASIC_XSS_RUN and answer["layer"] == "c<b>1</b>" and answer["steps"] == [0, 10]


def test_a_listing_entry_holds_the_checked_content_of_the_keys_written(tmp_path):
    """Content of the wrong JSON type reads as None (``metadata.read_content``); absent keys stay absent."""
    image = summary.encode_png(np.zeros((4, 4, 3), np.uint8))
    write_run(
        str(tmp_path),
        "odd",
        {1: [summary.blob_summary(metadata.ACTIVATIONS, "c", [image], channels="8", nrow=2)]},
    )
    client, _ = plugin_client(str(tmp_path))
    (run,) = get_json(client, f"{P}/api/runs/list")["runs"]
    assert run["layers"][0]["kinds"]["activations"] == {
        "max_step": 1,
        "channels": None,
        "nrow": 2,
        "count": 1,
    }
