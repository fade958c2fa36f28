"""Helpers shared by test modules (fixtures live in the ``conftest.py`` files).

Test modules import from here, never from ``conftest`` or from each other, so that moving a
test module never breaks another one.
"""

from __future__ import annotations

import torch
from torch import nn

from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

TRAINED_WIDTH = 16


def train_small_vgg(
    dataset: ShapesDataset, steps: int, width: int = TRAINED_WIDTH, seed: int = 0, batch_size: int = 64
) -> nn.Module:
    """Train a SmallVGG on ``dataset`` with SGD; deterministic for a given seed."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = small_vgg(width=width)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    images, labels = dataset.tensors()
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        loss = nn.functional.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def read_logdir(logdir: str, plugin: str = "cnnviz") -> dict:
    """Everything one plugin wrote under ``logdir``, read the way the plugin reads it (data provider).

    Returns ``{run: {tag: {"steps": [...], "values": [...], "content": dict}}}``; values are numpy
    arrays for tensor series, floats for ``plugin="scalars"`` and lists of bytes for blob
    sequences. Keeps every step.
    """
    from tensorboard import context as tb_context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    from tb_cnnviz.metadata import parse_plugin_content

    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={plugin: 0, "scalars": 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    ctx = tb_context.RequestContext()
    result: dict = {}
    scalar = plugin == "scalars"
    list_series = provider.list_scalars if scalar else provider.list_tensors
    read_series = provider.read_scalars if scalar else provider.read_tensors
    tensors = list_series(ctx, experiment_id="", plugin_name=plugin)
    data = (
        read_series(ctx, experiment_id="", plugin_name=plugin, downsample=10**6, run_tag_filter=None)
        if tensors
        else {}
    )
    for run, tags in tensors.items():
        for tag, meta in tags.items():
            points = data[run][tag]
            result.setdefault(run, {})[tag] = {
                "steps": [p.step for p in points],
                "values": [p.value if scalar else p.numpy for p in points],
                "content": {} if scalar else parse_plugin_content(meta.plugin_content),
            }
    blobs = provider.list_blob_sequences(ctx, experiment_id="", plugin_name=plugin)
    if blobs:
        sequences = provider.read_blob_sequences(
            ctx, experiment_id="", plugin_name=plugin, downsample=10**6, run_tag_filter=None
        )
        for run, tags in blobs.items():
            for tag, meta in tags.items():
                points = sequences[run][tag]
                result.setdefault(run, {})[tag] = {
                    "steps": [p.step for p in points],
                    "values": [
                        [provider.read_blob(ctx, blob_key=ref.blob_key) for ref in p.values] for p in points
                    ],
                    "content": parse_plugin_content(meta.plugin_content),
                }
    return result
