"""Routes of the Activations view (api/activations/...)."""

from __future__ import annotations

import io

from logdirs import ACTIVATION_LAYER, CALLBACK_RUN, P, get_json
from PIL import Image

from tb_cnnviz.datasets import ShapesDataset


def test_activations_step_lists_pngs_and_the_probe(basic_client):
    answer = get_json(
        basic_client, f"{P}/api/activations/step?run={CALLBACK_RUN}&layer={ACTIVATION_LAYER}&step=6"
    )
    assert answer["step"] == 6 and answer["channels"] == 4 and answer["tile"] == [32, 32]
    assert len(answer["images"]) == 3
    assert answer["probe"]["step"] == 1 and len(answer["probe"]["images"]) == 3
    assert answer["probe"]["class_names"] == list(ShapesDataset.classes)
    response = basic_client.get(f"{P}/{answer['images'][2]}")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    grid = Image.open(io.BytesIO(response.data))
    nrow, pad, (h, w) = answer["nrow"], answer["padding"], answer["tile"]
    rows = -(-answer["channels"] // nrow)
    assert grid.size == (nrow * (w + pad) + pad, rows * (h + pad) + pad)
    probe = Image.open(io.BytesIO(basic_client.get(f"{P}/{answer['probe']['images'][0]}").data))
    assert probe.size == (32, 32) and probe.mode == "RGB"
