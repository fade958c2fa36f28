"""The example CNN: a small VGG-style network with named layers, for 32x32 inputs.

It lives in the package (not only in ``examples/``) so tests, benchmarks and the CLI
(``tb_cnnviz.models:small_vgg`` plus a checkpoint) build exactly the same network.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


class SmallVGG(nn.Module):
    """conv-BN-ReLU blocks (``features.conv1`` ... ``features.conv5``), global pooling, linear head.

    ``batch_norm=False`` gives plain conv-ReLU blocks (the seeds' setting).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 32, batch_norm: bool = True):
        super().__init__()
        plan = [(width, False), (width, True), (2 * width, False), (2 * width, True), (4 * width, True)]
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for index, (out_channels, pool) in enumerate(plan, start=1):
            layers[f"conv{index}"] = nn.Conv2d(
                channels, out_channels, kernel_size=3, padding=1, bias=not batch_norm
            )
            if batch_norm:
                layers[f"bn{index}"] = nn.BatchNorm2d(out_channels)
            layers[f"relu{index}"] = nn.ReLU(inplace=True)
            if pool:
                layers[f"pool{index}"] = nn.MaxPool2d(2)
            channels = out_channels
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.flatten(self.pool(self.features(x))))


def small_vgg(
    num_classes: int = 10, in_channels: int = 3, width: int = 32, batch_norm: bool = True
) -> SmallVGG:
    """Factory used by the example, the benchmarks and ``tb-cnnviz ... tb_cnnviz.models:small_vgg``."""
    return SmallVGG(num_classes=num_classes, in_channels=in_channels, width=width, batch_norm=batch_norm)
