"""Helpers of the callback tests: a short training loop that drives the callback, and PNG decoding."""

import io

import numpy as np
import torch
from PIL import Image
from torch import nn


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def train(model, viz, images, labels, steps, start=1, lr=0.05):
    """SGD on batches of 16 of ``images``, calling ``viz.on_step_end`` after each step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for step in range(start, start + steps):
        index = torch.arange(16) + 16 * (step % 8)
        loss = nn.functional.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        viz.on_step_end(step)
