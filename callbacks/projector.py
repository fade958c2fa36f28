"""Export of embedding snapshots to TensorBoard's own Projector tab (``projector=True``), for its 3-D view."""

from __future__ import annotations

from typing import Any

from tb_cnnviz.snapshots import display_images
from tb_cnnviz.snapshots.inputs import Inputs


def export(writer: Any, inputs: Inputs, step: int) -> None:
    """Write the codes of the embedding snapshot just computed (``inputs.state.codes``) with labels and thumbnails."""
    labels = None if inputs.labels is None else [_class_name(inputs, int(v)) for v in inputs.labels]
    writer.add_embedding(
        inputs.state.codes,
        metadata=labels,
        label_img=display_images(inputs.images.cpu()),
        global_step=step,
        tag="cnnviz_embedding",
    )


def _class_name(inputs: Inputs, label: int) -> str:
    names = inputs.class_names
    return names[label] if names is not None and 0 <= label < len(names) else str(label)
