"""Reading a logdir back the way the plugin reads it (``read_logdir``, side-file references resolved) and
serving it through TensorBoard's own WSGI app in process (``plugin_client``). Test modules import these from
``support``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from tb_cnnviz import metadata

if TYPE_CHECKING:
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from werkzeug.test import Client

# The fields of the activations kind's content schema (tb_cnnviz/kinds.py), which the format tests expect a
# checked content to have (None where absent or of the wrong type)
ACTIVATIONS_FIELDS = ("channels", "nrow", "padding", "tile", "map_size", "channels_shown", "factor", "levels")


def read_logdir(logdir: str, plugin: str = "cnnviz") -> dict:
    """Everything one plugin wrote under ``logdir``, read the way the plugin reads it (data provider).

    Returns ``{run: {tag: {"steps": [...], "values": [...], "content": dict}}}``; values are numpy
    arrays for tensor series, floats for ``plugin="scalars"`` and lists of bytes for blob
    sequences. Keeps every step. Side-file references are resolved (``tb_cnnviz.assets``).
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
                "values": [p.value if scalar else _resolved(logdir, run, p.numpy) for p in points],
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
                        [
                            _resolved(logdir, run, provider.read_blob(ctx, blob_key=ref.blob_key))
                            for ref in p.values
                        ]
                        for p in points
                    ],
                    "content": parse_plugin_content(meta.plugin_content),
                }
    return result


def _resolved(logdir: str, run: str, value: Any) -> Any:
    """A logged value with a side-file reference replaced by what it names (blob bytes or the array)."""
    from tb_cnnviz import assets

    directory = os.path.join(logdir, run)
    if assets.is_reference(value):
        return assets.resolve(directory, value)
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        item = value.reshape(-1)[0]
        if assets.is_reference(item):
            fields = assets.parse_reference(item)
            payload = assets.resolve(directory, fields)
            return np.frombuffer(payload, dtype=np.dtype(fields["dtype"])).reshape(fields["shape"]).copy()
    return value


def plugin_client(
    root: str, *, samples: dict | None = None, index_ttl: float = 0, wrap=None, **plugin_kwargs
) -> tuple[Client, EventMultiplexer]:
    """TensorBoard's own WSGI app with the plugin over ``root`` (Python multiplexer, every sample kept
    unless ``samples`` says otherwise); ``wrap`` may wrap the data provider (to make it fail)."""
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider as mux_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from werkzeug import test as werkzeug_test

    from tb_cnnviz import plugin

    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance=samples or {metadata.PLUGIN_NAME: 0}
    )
    multiplexer.AddRunsFromDirectory(root)
    multiplexer.Reload()
    provider = mux_provider.MultiplexerDataProvider(multiplexer, root)
    if wrap is not None:
        provider = wrap(provider)
    context = base_plugin.TBContext(logdir=root, multiplexer=multiplexer, data_provider=provider)
    app = application.TensorBoardWSGI(
        [plugin.CNNVizPlugin(context, index_ttl=index_ttl, **plugin_kwargs)], data_provider=provider
    )
    return werkzeug_test.Client(app), multiplexer
