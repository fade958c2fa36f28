"""The main path (modules every input-to-output path passes through) and the default layers chosen from it."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from tb_cnnviz.analysis.paths import gradcam_layer, main_path, stage_outputs


class Inception(nn.Module):
    """Two parallel branches concatenated; the last registered conv is a side branch."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.branch_a = nn.Conv2d(4, 4, 1)
        self.branch_b = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = torch.cat([self.branch_a(x), self.branch_b(x)], dim=1)
        return self.fc(self.pool(x).flatten(1))


class Residual(nn.Module):
    """conv -> (conv1 -> conv2) + identity -> relu, then a squeeze-excite gate, then a 1x1 conv head after pooling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.conv1 = nn.Conv2d(6, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.gate = nn.Conv2d(6, 6, 1)
        self.block_out = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Conv2d(6, 3, 1)  # the classifier, as a 1x1 conv after global pooling (DLA)

    def forward(self, x):
        x = self.stem(x)
        x = self.block_out(self.conv2(F.relu(self.conv1(x))) + x)
        x = x * torch.sigmoid(self.gate(x.mean(dim=(2, 3), keepdim=True)))  # squeeze-excite
        return self.head(self.pool(x)).flatten(1)


def names(points):
    return [point.name for point in points]


def test_side_branches_are_not_on_the_main_path():
    model = Inception()
    points = main_path(model, torch.rand(2, 3, 8, 8)).points
    assert "branch_a" not in names(points) and "branch_b" not in names(points)
    assert names(points)[0] == "stem"
    assert gradcam_layer(points) is None or gradcam_layer(points).name == "stem"


def test_convs_inside_a_residual_block_and_gates_and_heads_are_never_chosen():
    model = Residual()
    path = main_path(model, torch.rand(2, 3, 16, 16))
    points = path.points
    assert path.output_shape == (2, 3) and path.classes == 3
    assert names(points)[:2] == ["stem", "block_out"]
    assert not {"conv1", "conv2", "gate"} & set(names(points))  # before the add; a side input
    assert gradcam_layer(points, classes=3).name == "block_out"  # not the 1x1 classifier after the pooling
    assert [(p.name, p.shape[2:]) for p in stage_outputs(points, classes=3)] == [("block_out", (8, 8))]


def test_tracing_leaves_no_trace_on_the_model():
    model = Residual().train()
    model.conv1.eval()  # a submodule the user froze stays as it is
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter)
    flags = [m.training for m in model.modules()]
    images = torch.rand(2, 3, 16, 16)
    rng = torch.get_rng_state()
    main_path(model, images)
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(p.grad, torch.ones_like(p)) and p.requires_grad for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)


def test_hooks_are_removed_when_the_forward_fails():
    model = Residual()
    with pytest.raises(RuntimeError):
        main_path(model, torch.rand(2, 5, 16, 16))  # wrong channel count
    assert not any(m._forward_hooks for m in model.modules())


def _chosen_output_is_a_cut(model, layer, size, carries_signal=True):
    """With the layer's output held fixed, the logits no longer depend on the input; the output itself does.

    (Whether the logits of a randomly initialised net depend on the input visibly is up to its
    initialisation: RepVGG's hardly do, so the dependence is checked on the layer's output.)
    """
    generator = torch.Generator().manual_seed(0)
    a, b = (
        torch.rand(2, 3, size, size, generator=generator),
        3 * torch.randn(2, 3, size, size, generator=generator),
    )
    model.eval()
    stored = []
    handle = layer.register_forward_hook(lambda m, i, o: stored.append(o.clone()))
    with torch.no_grad():
        model(a)
        model(b)
    handle.remove()
    handle = layer.register_forward_hook(lambda m, i, o: stored[0].clone())  # clone: later in-place ops
    with torch.no_grad():
        fixed, free = model(b), model(a)
    handle.remove()
    scale = free.abs().max()
    # random-init logits can be tiny (1e-14 for EfficientNet): compare relative to their scale
    changed = (stored[0] - stored[1]).abs().max() > 1e-3 * stored[0].abs().max()
    return bool((fixed - free).abs().max() <= 1e-5 * scale) and (bool(changed) or not carries_signal)


TORCHVISION = [  # model, input size, Grad-CAM layer, first and last stage output
    ("resnet18", 64, "layer4", "relu", "layer4"),
    ("vgg11_bn", 64, "features", "features.2", "features"),
    ("densenet121", 64, "features", "features.relu0", "features"),
    ("mobilenet_v3_small", 64, "features", "features.0", "features"),
    ("efficientnet_b0", 64, "features", "features.1", "features"),
    ("googlenet", 64, "inception5b", "conv1", "inception5b"),
    ("regnet_y_400mf", 64, "trunk_output", "stem", "trunk_output"),
    ("squeezenet1_1", 64, "features", "features.1", "features"),
    ("shufflenet_v2_x0_5", 64, "conv5", "conv1", "conv5"),
]


@pytest.mark.parametrize("name, size, cam, first, last", TORCHVISION, ids=[row[0] for row in TORCHVISION])
def test_torchvision_defaults_are_the_documented_layers_and_cuts(name, size, cam, first, last):
    torch.manual_seed(0)
    extra = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    model = getattr(torchvision.models, name)(weights=None, **extra)
    path = main_path(model, torch.rand(2, 3, size, size))
    chosen, stages = path.gradcam_layer(), path.stage_outputs()
    assert chosen.name == cam
    assert (stages[0].name, stages[-1].name) == (first, last)
    assert [p.shape[2] for p in stages] == sorted(
        {p.shape[2] for p in stages}, reverse=True
    )  # one per resolution
    assert _chosen_output_is_a_cut(model, chosen.module, size)


TIMM = [
    ("resnet18d", "layer4"),
    ("convnext_nano", "stages"),
    ("dla34", "level5"),  # its classifier is a 1x1 conv after the pooling
    ("ghostnet_100", "blocks"),  # conv_head after the pooling
    ("repvgg_a0", "stages"),  # parallel 1x1 branches; at random init its last stage is constant
    ("efficientnet_b0", "bn2"),  # BatchNormAct2d after conv_head
]


@pytest.mark.parametrize("name, cam", TIMM, ids=[row[0] for row in TIMM])
def test_timm_defaults_are_the_documented_layers_and_cuts(name, cam):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False)
    chosen = main_path(model, torch.rand(2, 3, 64, 64)).gradcam_layer()
    assert chosen.name == cam
    assert _chosen_output_is_a_cut(model, chosen.module, 64, carries_signal=name != "repvgg_a0")
