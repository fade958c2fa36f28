"""Image files read for the commands: modes converted where the meaning is clear."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tb_cnnviz import image_files


def test_image_modes_are_converted_sensibly(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200
    rgba = np.dstack([rgb, np.array([[0, 255, 255, 255]] * 4, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    notes = []
    image = image_files.read_image(str(tmp_path / "rgba.png"), note=notes.append)
    assert image[:, 0, 0].tolist() == [1.0, 1.0, 1.0]  # transparent: white
    assert image[:, 0, 1].tolist() == pytest.approx([200 / 255, 0, 0]) and "composited onto white" in notes[0]
    Image.fromarray(np.full((4, 4), 51, np.uint8)).save(tmp_path / "grey.png")
    assert image_files.read_image(str(tmp_path / "grey.png")).flatten().tolist() == pytest.approx([0.2] * 48)
    Image.fromarray(np.full((4, 4), 13107, np.uint16)).save(tmp_path / "deep.png")
    assert image_files.read_image(str(tmp_path / "deep.png"), channels=1).flatten().tolist() == pytest.approx(
        [0.2] * 16
    )
    assert image_files.read_image(str(tmp_path / "rgba.png"), channels=1)[0, 0, 1] == pytest.approx(
        0.299 * 200 / 255
    )
