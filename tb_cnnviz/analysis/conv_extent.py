"""How far a model is a CNN: the layers it runs after its last 2-D conv layer.

tb-cnnviz visualises conv layers. A vision transformer has one conv (its patch embedding) and then
dozens of linear and attention layers; a CNN has at most a small classifier head after its last
conv (VGG: 3 linear layers, ConvNeXt's last block and head: 3, ResNet: 1). Past
:data:`MAX_HEAD_LAYERS` linear or attention layers after the last conv, the network is not a CNN
beyond that point and the views show only its conv part (the callback says so once).

The order is that of ``named_modules()`` (registration), which is the execution order of the
models of torchvision and timm; no forward is needed, so this works without probe images.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

MAX_HEAD_LAYERS = 4  # linear/attention layers after the last conv still read as a classifier head


@dataclass
class ConvExtent:
    """``last_conv``: the dotted name of the last ``nn.Conv2d``; ``after``: the linear and attention
    layers registered after it; ``convs``: how many conv layers the model has."""

    last_conv: str | None
    after: list[str]
    convs: int

    @property
    def cnn(self) -> bool:
        """Whether the model is a CNN up to a classifier head (at most ``MAX_HEAD_LAYERS`` layers after its convs)."""
        return len(self.after) <= MAX_HEAD_LAYERS


def conv_extent(model: nn.Module) -> ConvExtent:
    """Where the model's conv layers end and what follows them (see the module docstring)."""
    last, after, convs = None, [], 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            last, after, convs = name, [], convs + 1
        elif last is not None and (
            isinstance(module, (nn.Linear, nn.MultiheadAttention))
            or (type(module).__name__.endswith("Attention") and not _has_conv(module))
        ):
            if not any(
                name.startswith(f"{outer}.") for outer in after
            ):  # an attention's own linears count once
                after.append(name)
    return ConvExtent(last, after, convs)


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())
