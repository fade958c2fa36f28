"""Helpers of the snapshot format tests: read ``Summary`` protos back without TensorBoard's reader
(``read_summaries``) and build a Conv2d of given weights (``fixed_conv``)."""

from __future__ import annotations

import io
import json

import numpy as np
import torch
from PIL import Image
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util
from torch import nn


def read_summaries(summaries: list) -> dict:
    """``{tag: (content, value)}``: content is the plugin content (``{}`` for a scalar); value a numpy
    array (tensor), a list of decoded PNGs (blob sequence) or a float (scalar)."""
    assert isinstance(summaries, list)
    result = {}
    for proto in summaries:
        (value,) = proto.value
        meta = value.metadata
        if meta.data_class == summary_pb2.DATA_CLASS_SCALAR:
            result[value.tag] = ({}, float(tensor_util.make_ndarray(value.tensor)))
            continue
        content = json.loads(meta.plugin_data.content)
        if meta.data_class == summary_pb2.DATA_CLASS_BLOB_SEQUENCE:
            decoded = [np.asarray(Image.open(io.BytesIO(blob))) for blob in value.tensor.string_val]
            result[value.tag] = (content, decoded)
        else:
            assert meta.data_class == summary_pb2.DATA_CLASS_TENSOR
            result[value.tag] = (content, tensor_util.make_ndarray(value.tensor))
        assert content["kind"] == value.tag.split("/")[1]
    return result


def fixed_conv(weights, bias: bool = False) -> nn.Conv2d:
    """A Conv2d with the given weights ``[out, in, kh, kw]``."""
    weights = torch.tensor(weights, dtype=torch.float32)
    conv = nn.Conv2d(weights.shape[1], weights.shape[0], tuple(weights.shape[2:]), bias=bias)
    with torch.no_grad():
        conv.weight.copy_(weights)
        if bias:
            conv.bias.zero_()
    return conv
