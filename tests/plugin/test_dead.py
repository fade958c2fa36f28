"""Routes of the Dead filters view (api/dead/...)."""

from __future__ import annotations

import gzip
import json

from logdirs import CALLBACK_RUN, P, get_json


def test_dead_rates_matrix_and_fraction(basic_client):
    answer = get_json(basic_client, f"{P}/api/dead/rates?run=exact&layer=conv")
    assert answer["steps"] == [5, 15]
    assert answer["rates"] == [[0.0, 0.5, 0.02, 1.0], [0.0, 0.0, 0.3, None]]
    assert answer["dead_fraction"] == [0.25, 0.5]
    assert answer["window"] == 5 and answer["measured_at"] == "bn"
    wider = get_json(basic_client, f"{P}/api/dead/rates?run=exact&layer=conv&threshold=0.05")
    assert wider["dead_fraction"] == [0.5, 0.5]


def test_dead_rates_say_what_each_window_was_counted_on(basic_client):
    exact = get_json(basic_client, f"{P}/api/dead/rates?run=exact&layer=conv")
    assert exact["batches_counted"] == [None, None]  # written without the sample (older runs): unknown
    answer = get_json(basic_client, f"{P}/api/dead/rates?run={CALLBACK_RUN}&layer=features.conv1")
    assert answer["steps"] == [2, 4, 6, 8, 10, 12]
    # windows of 2 steps: too short to sample (at least 8 batches a window), every batch counted
    assert answer["batches_counted"] == answer["batches_seen"] == [2] * 6
    assert answer["count_every"] == [1] * 6


def test_dead_fractions_of_every_layer(basic_client):
    answer = get_json(basic_client, f"{P}/api/dead/fractions?run=exact")
    assert [(x["layer"], x["dead_fraction"], x["filters"]) for x in answer["layers"]] == [
        ("conv", [0.25, 0.5], 4),
        ("other", [0.5, 1.0], 2),
    ]
    callback = get_json(basic_client, f"{P}/api/dead/fractions?run={CALLBACK_RUN}")
    assert [x["layer"] for x in callback["layers"]] == [f"features.conv{i}" for i in range(1, 6)]
    assert callback["layers"][0]["steps"] == [2, 4, 6, 8, 10, 12]
    assert all(0 <= f <= 1 for x in callback["layers"] for f in x["dead_fraction"])


def test_series_json_is_gzipped_for_clients_that_accept_it(basic_client):
    url = f"{P}/api/dead/rates?run=exact&layer=conv"
    zipped = basic_client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(zipped.data)) == get_json(basic_client, url)
