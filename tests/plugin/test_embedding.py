"""Routes of the Embedding view (api/embedding/...)."""

from __future__ import annotations

import numpy as np
import pytest
from logdirs import CALLBACK_RUN, api_url, base64_floats, get_json, png_of
from support import EXACT_RUN, LABELS

from tb_cnnviz.datasets import ShapesDataset


def test_embedding_points_are_the_logged_map(views_client, views_logged):
    series = views_logged["cnnviz/embedding/classifier"]
    assert series["steps"] == [2, 4, 6]
    answer = get_json(views_client, api_url("embedding/points", run=CALLBACK_RUN, layer="classifier", step=4))
    assert answer["count"] == 60 and answer["method"] == "pca"
    np.testing.assert_array_equal(base64_floats(answer, "xy").reshape(60, 2), series["values"][1][:, :2])
    assert answer["predicted"] == series["values"][1][:, 2].astype(int).tolist()
    assert answer["labels"] == series["content"]["labels"] and answer["class_names"] == list(
        ShapesDataset.classes
    )
    wrong = sum(t != p for t, p in zip(answer["labels"], answer["predicted"]))
    assert answer["misclassified"] == wrong and answer["accuracy"] == pytest.approx(1 - wrong / 60, abs=1e-5)
    xy = series["values"][1][:, :2]
    assert answer["bounds"] == pytest.approx(
        [xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max()], abs=1e-5
    )


def test_embedding_points_with_a_non_finite_point(views_client):
    answer = get_json(views_client, api_url("embedding/points", run=EXACT_RUN, layer="penultimate", step=11))
    xy = base64_floats(answer, "xy").reshape(5, 2)
    assert np.isnan(xy[4]).all() and xy[:4].tolist() == [[0, 0], [2, 2], [4, 0], [0, 4]]
    assert answer["bounds"] == [0, 4, 0, 4]
    assert answer["predicted"] == [0, 1, 1, 0, None] and answer["labels"] == LABELS
    assert (
        answer["misclassified"] == 1 and answer["accuracy"] == 0.75
    )  # the undefined prediction is not counted


def test_sprites_locate_every_image(views_client):
    answer = get_json(views_client, api_url("embedding/sprites", run=EXACT_RUN))
    assert (
        answer["thumb"] == [4, 4]
        and answer["columns"] == 2
        and answer["counts"] == [3, 2]
        and answer["step"] == 9
    )
    atlases = [png_of(views_client, url) for url in answer["atlases"]]
    assert [a.shape for a in atlases] == [(8, 8, 3), (4, 8, 3)]
    for image in range(5):  # image i: atlas a, cell j (row-major, 2 a row)
        atlas, cell = (0, image) if image < 3 else (1, image - 3)
        row, column = divmod(cell, 2)
        tile = atlases[atlas][row * 4 : (row + 1) * 4, column * 4 : (column + 1) * 4]
        assert np.all(tile == 40 * image), image
    callback = get_json(views_client, api_url("embedding/sprites", run=CALLBACK_RUN))
    assert callback["counts"] == [60] and callback["thumb"] == [32, 32]
    assert png_of(views_client, callback["atlases"][0]).shape == (32, 60 * 32, 3)  # one row of 60 thumbnails


def test_top_examples_of_a_filter_and_the_best_of_every_filter(views_client, views_logged):
    table = views_logged["cnnviz/top_examples/features.conv3"]["values"][-1]
    answer = get_json(
        views_client,
        api_url("top_images/examples", run=CALLBACK_RUN, layer="features.conv3", step=6, channel=3),
    )
    assert answer["filters"] == table.shape[0] == 8 and answer["k"] == 4 and answer["channel"] == 3
    assert [e["id"] for e in answer["examples"]] == table[3, :, 0].astype(int).tolist()
    assert [e["activation"] for e in answer["examples"]] == [
        pytest.approx(float(v), abs=1e-5) for v in table[3, :, 1]
    ]
    assert [e["box"] for e in answer["examples"]] == table[3, :, 2:].tolist()
    labels = views_logged["cnnviz/embedding/classifier"]["content"]["labels"]
    assert [e["label"] for e in answer["examples"]] == [labels[i] for i in table[3, :, 0].astype(int)]
    assert answer["image_size"] == [32, 32]  # from the boxes: receptive fields touch the image edges
    overview = get_json(
        views_client, api_url("top_images/examples", run=CALLBACK_RUN, layer="features.conv3", step=6)
    )
    assert [b["id"] for b in overview["best"]] == table[:, 0, 0].astype(int).tolist()
    exact = get_json(
        views_client, api_url("top_images/examples", run=EXACT_RUN, layer="conv", step=11, channel=5)
    )
    assert [e["id"] for e in exact["examples"]] == [4] and exact["image_size"] == [16, 16]


def test_top_examples_left_the_embedding_route_group(views_client):
    """api/embedding/top moved to api/top_images/examples (the Top images tab); the old route is a 404 that
    names the routes of its group, not a silent answer."""
    response = views_client.get(api_url("embedding/top", run=CALLBACK_RUN, layer="features.conv3", step=6))
    assert response.status_code == 404
    assert "unknown route 'top' of view 'embedding'; expected one of ['points', 'sprites']" in (
        response.get_data(as_text=True)
    )


# -------------------------------------------------------------------------- bad requests
