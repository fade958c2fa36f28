"""The callback at default settings on one randomly initialised model per torchvision / timm family.

Each model (64 px probe of 4 random images, 3 SGD steps, kernels/activations/Grad-CAM/dead
filters every step, ``strict=True``) must: construct and train without a warning; choose the
default Grad-CAM and activation layers by execution (block or stage outputs on the main path,
never a side branch, a squeeze-excite gate or a post-pooling head: see ``docs/design.md``);
answer 200 on every main route of the plugin for the run; and report exactly the planted dead
filters of the first conv (the bias of the norm layer after it, or of the conv itself when none
follows, set to -1e4 and frozen for a few channels) where the count means dead or inactive (its
``semantics``: see ``SEMANTICS``); no squeeze-excite gate or post-pooling head among the default
dead-filter layers. Images are zero-mean noise, so no filter of the first conv is dead by chance.

About 20 s for the twelve models on one thread (densenet121 is the slowest, 2.5 s); one thread
because two threads on a busy 2-core machine made every step 30 times slower. The full zoo (28
models) is ``python scripts/zoo.py``, its table ``docs/zoo.md``.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from support import fit_with_callback, plugin_client, read_logdir
from torch import nn

from tb_cnnviz import metadata
from tb_cnnviz.callbacks import CNNVizCallback

P = "/data/plugin/cnnviz/api"
RUN = "zoo"
SIZE = 64
CLASSES = 10
PLANTED = [1, 4, 5]
STEPS = 3


# id, first conv, the module whose bias is planted, Grad-CAM layer, activation layers (split at spaces)
TORCHVISION = [
    ("resnet18", "conv1", "bn1", "layer4", "relu layer2 layer4"),
    ("mobilenet_v3_small", "features.0.0", "features.0.1", "features", "features.0 features.3 features"),
    ("efficientnet_b0", "features.0.0", "features.0.1", "features", "features.1 features.3 features"),
    (
        "densenet121",
        "features.conv0",
        "features.norm0",
        "features",
        "features.relu0 features.denseblock2 features",
    ),
    ("googlenet", "conv1.conv", "conv1.bn", "inception5b", "conv1 inception3b inception5b"),
    ("regnet_y_400mf", "stem.0", "stem.1", "trunk_output", "stem trunk_output.block2 trunk_output"),
    ("shufflenet_v2_x0_5", "conv1.0", "conv1.1", "conv5", "conv1 stage2 conv5"),
    ("squeezenet1_1", "features.0", "features.0", "features", "features.1 features.7 features"),
]
TIMM = [
    ("convnext_nano", "stem.0", None, "stages", "stem stages.2 stages"),
    ("repvgg_a0", "stem.conv_kxk.conv", "stem.conv_kxk.bn", "stages", "stem stages.1 stages"),
    ("dla34", "base_layer.0", "base_layer.1", "level5", "level0 level2 level5"),
    ("ghostnet_100", "conv_stem", "bn1", "blocks", "act1 blocks.4 blocks"),
]
# What the first conv's dead-filter count means (relu: dead; smooth: inactive; metadata.REPORTED_SEMANTICS), where
# it is not a ReLU or a smooth nonlinearity right after the conv's norm layer: RepVGG's stem adds its 3x3 and 1x1
# branches before the ReLU; ConvNeXt's stem has a LayerNorm2d and no nonlinearity.
SEMANTICS = {"repvgg_a0": "residual", "convnext_nano": "none"}
SMOOTH = {"mobilenet_v3_small", "efficientnet_b0"}  # Hardswish, SiLU
ZOO = [
    (name, source, conv, planted, cam, activations.split(), *marks)
    for source, rows in (("tv", TORCHVISION), ("timm", TIMM))
    for name, conv, planted, cam, activations, *marks in rows
]


def _model(name: str, source: str) -> nn.Module:
    torch.manual_seed(0)
    if source == "timm":
        timm = pytest.importorskip("timm")
        return timm.create_model(name, pretrained=False, num_classes=CLASSES)
    extra = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    return getattr(torchvision.models, name)(weights=None, num_classes=CLASSES, **extra)


def _plant(model: nn.Module, module_name: str) -> None:
    """Channels ``PLANTED`` of the module's bias at -1e4, frozen: whatever follows never sees them positive."""
    bias = model.get_submodule(module_name).bias
    with torch.no_grad():
        bias[PLANTED] = -1e4
    bias.requires_grad_(False)


def _get(client, route: str, **params) -> None:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    response = client.get(f"{P}/{route}?{query}")
    assert response.status_code == 200, (route, params, response.status_code, response.get_data()[:300])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, source, conv, planted, cam, activations",
    [pytest.param(*row[:6], marks=row[6:7] and row[6], id=row[0]) for row in ZOO],
)
def test_zoo_model_at_default_settings(tmp_path, name, source, conv, planted, cam, activations):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is far faster on a busy 2-core machine
    try:
        model = _model(name, source)
        if planted is not None:
            _plant(model, planted)
        generator = torch.Generator().manual_seed(0)
        probe = (torch.randn(4, 3, SIZE, SIZE, generator=generator), torch.tensor([0, 1, 2, 3]))
        images = torch.randn(4, 3, SIZE, SIZE, generator=generator)
        labels = torch.randint(0, CLASSES, (4,), generator=generator)
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
        every = {"kernels": 1, "activations": 1, "gradcam": 1, "dead_filters": 1}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            viz = CNNVizCallback(
                model, log_dir=str(tmp_path / RUN), probe=probe, strict=True, every_n_steps=every
            )
            assert [n for n, _ in viz.gradcam_layers] == [cam]
            assert [n for n, _ in viz.activation_layers] == activations
            assert [n for n, _ in viz.kernel_layers] == [conv]
            fit_with_callback(model, viz, optimizer, range(1, STEPS + 1), lambda step: (images, labels))
            viz.close()
        # third-party deprecations (inside site-packages) are not ours; anything else is
        ours = [f"{w.category.__name__}: {w.message}" for w in caught if "site-packages" not in w.filename]
        assert not ours, name
    finally:
        torch.set_num_threads(threads)

    logged = read_logdir(str(tmp_path))[RUN]
    dead = logged.get(metadata.tag(metadata.DEAD_FILTERS, conv))
    assert dead is not None, sorted(logged)
    measured = {
        series["content"]["semantics"]
        for tag, series in logged.items()
        if tag.startswith(f"cnnviz/{metadata.DEAD_FILTERS}/")
    }
    assert not measured & {"gate", "head"}, measured
    expected = SEMANTICS.get(name, "smooth" if name in SMOOTH else "relu")
    assert dead["content"]["semantics"] == expected, dead["content"]
    if expected in metadata.REPORTED_SEMANTICS:
        for rate in dead["values"]:
            dead_channels = torch.nonzero(torch.as_tensor(rate) == 0).flatten().tolist()
            assert dead_channels == PLANTED, (dead["content"].get("measured_at"), rate[:8])

    client, _ = plugin_client(str(tmp_path))
    step = logged[metadata.tag(metadata.KERNELS, conv)]["steps"][-1]
    _get(client, "runs/list")
    _get(client, "runs/steps", run=RUN, kind="kernels", layer=conv)
    _get(client, "filters/kernels", run=RUN, layer=conv, step=step)
    _get(client, "filters/smoothness", run=RUN, layer=conv)
    for layer in activations:
        _get(client, "activations/step", run=RUN, layer=layer, step=step)
    _get(client, "dead/rates", run=RUN, layer=conv)
    _get(client, "dead/fractions", run=RUN)
    _get(client, "gradcam/step", run=RUN, layer=cam, step=step)
    _get(client, "gradcam/maps", run=RUN, layer=cam, step=step)
