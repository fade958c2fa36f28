"""Helpers of the callback tests: a short training loop that drives the callback, and PNG decoding."""

import io

import numpy as np
import torch
from PIL import Image
from support import fit_with_callback


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def train(model, viz, images, labels, steps, start=1, lr=0.05, batch=16, after_step=None):
    """SGD on batches of ``batch`` of the first 128 ``images``, calling ``viz.on_step_end`` after each step,
    then ``after_step(step)`` when given."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def batch_of(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.arange(batch) + batch * (step % (128 // batch))
        return images[index], labels[index]

    fit_with_callback(model, viz, optimizer, range(start, start + steps), batch_of, after_step=after_step)


def run_callback(tmp_path, model, data, steps, **options):
    """CNNVizCallback(model, log_dir=tmp_path, background=False, strict=True, **options) over ``steps`` steps of
    ``train`` on ``data`` (images, labels), closed on return; returns the callback."""
    from tb_cnnviz.callbacks import CNNVizCallback

    images, labels = data
    with CNNVizCallback(model, log_dir=str(tmp_path), background=False, strict=True, **options) as viz:
        train(model, viz, images, labels, steps)
    return viz
