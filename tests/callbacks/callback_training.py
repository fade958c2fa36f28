"""Helpers of the callback tests: a short training loop that drives the callback, and PNG decoding."""

import io

import numpy as np
import torch
from PIL import Image
from torch import nn


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def train(model, viz, images, labels, steps, start=1, lr=0.05, batch=16, after_step=None):
    """SGD on batches of ``batch`` of the first 128 ``images``, calling ``viz.on_step_end`` after each step,
    then ``after_step(step)`` when given."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for step in range(start, start + steps):
        index = torch.arange(batch) + batch * (step % (128 // batch))
        loss = nn.functional.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        viz.on_step_end(step)
        if after_step is not None:
            after_step(step)
