"""Layer handling for any model (``tb_cnnviz.analysis.layers``): eager modules, TorchScript and unflattened
``torch.export`` programs give the same conv layers, class names, channel counts and layer table, on tiny
hand-built models with known answers; bad layer names give errors that list the valid ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tb_cnnviz.analysis.layers import (
    conv_layers,
    is_compiled,
    is_conv,
    layer_before_last_linear,
    layer_table,
    layer_types,
    leaf_layers,
    output_channels,
    resolve_layer,
    resolve_layers,
)


class Block(nn.Module):
    """A container that owns a parameter itself (a learnt scale) besides its children."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.bn(self.conv(x)) * self.scale


class Net(nn.Module):
    """block (conv 3->4, bn, scale) -> relu -> conv 4->6 -> relu (the same module again) -> pool -> flatten -> fc."""

    def __init__(self):
        super().__init__()
        self.block = Block()
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        x = self.relu(self.conv2(self.relu(self.block(x))))
        return self.fc(self.flatten(self.pool(x)))


EAGER_TYPES = {
    "block": "Block",
    "block.conv": "Conv2d",
    "block.bn": "BatchNorm2d",
    "relu": "ReLU",
    "conv2": "Conv2d",
    "pool": "AdaptiveAvgPool2d",
    "flatten": "Flatten",
    "fc": "Linear",
}


def net() -> nn.Module:
    torch.manual_seed(0)
    return Net().eval()


def scripted() -> nn.Module:
    with pytest.warns(FutureWarning):  # torch.jit.script is deprecated; the loader still reads such files
        return torch.jit.script(net())


def exported() -> nn.Module:
    program = torch.export.export(net(), (torch.rand(2, 3, 8, 8),))
    return torch.export.unflatten(program)


def test_eager_conv_layers_are_conv2d_modules_only():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 4, 3), nn.Conv2d(4, 2, 1))
    assert [name for name, _ in conv_layers(model)] == ["0", "2"]  # a transposed conv is no Conv2d
    assert not is_compiled(model[0]) and is_conv(model[0]) and not is_conv(model[1])


@pytest.mark.parametrize("build", [scripted, exported], ids=["torchscript", "export"])
def test_compiled_models_have_the_eager_models_conv_layers_and_class_names(build):
    model = build()
    assert is_compiled(dict(model.named_modules())["block.conv"])
    convs = conv_layers(model)
    assert [name for name, _ in convs] == ["block.conv", "conv2"]
    assert [tuple(module.weight.shape) for _, module in convs] == [(4, 3, 3, 3), (6, 4, 3, 3)]
    types = layer_types(model)
    assert {name: types[name] for name in EAGER_TYPES} == EAGER_TYPES
    assert layer_types(net()) == {"": "Net", **EAGER_TYPES}


@pytest.mark.parametrize("build", [net, scripted, exported], ids=["eager", "torchscript", "export"])
def test_output_channels_of_every_kind_of_layer(build):
    modules = dict(build().named_modules())
    counts = {name: output_channels(modules[name]) for name in ("block.conv", "block.bn", "conv2", "fc")}
    assert counts == {"block.conv": 4, "block.bn": 4, "conv2": 6, "fc": 2}
    with pytest.raises(ValueError, match=r"^--layer: cannot tell how many channels a \w+ has; choose a conv"):
        output_channels(modules["relu"], "--layer")


@pytest.mark.parametrize("build", [net, scripted, exported], ids=["eager", "torchscript", "export"])
def test_resolving_names_of_any_model(build):
    model = build()
    name, module = resolve_layer(model, "conv2", argument="--layer")
    assert name == "conv2" and module is dict(model.named_modules())["conv2"]
    with pytest.raises(ValueError) as error:
        resolve_layer(model, "block.bn", argument="--layer")
    assert str(error.value) == (
        "--layer: 'block.bn' is a BatchNorm2d, not a Conv2d; valid conv layer names: 'block.conv', 'conv2'"
    )
    with pytest.raises(
        ValueError, match=r"^--layer: no layer named 'head' in the model; valid layer names: 'block'"
    ):
        resolve_layer(model, "head", argument="--layer", conv_only=False)
    with pytest.raises(ValueError, match=r"^--layer: layers listed more than once: \['conv2'\]$"):
        resolve_layers(model, ["conv2", "block.conv", "conv2"], argument="--layer")


def test_leaf_layers_include_containers_owning_parameters():
    assert [name for name, _ in leaf_layers(net())] == [
        "block",
        "block.conv",
        "block.bn",
        "relu",
        "conv2",
        "pool",
        "flatten",
        "fc",
    ]


@pytest.mark.parametrize("build", [net, exported], ids=["eager", "export"])
def test_the_layer_before_the_last_linear_one(build):
    assert layer_before_last_linear(build()) == "flatten"
    with pytest.raises(ValueError, match="^layer: cannot find the model's last linear layer"):
        layer_before_last_linear(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))


def test_layer_table_of_an_eager_model():
    model = net().train()
    model.block.bn.weight.requires_grad_(False)
    model.fc.requires_grad_(False)
    rows, output = layer_table(model, torch.zeros(1, 3, 8, 8))
    table = {row["name"]: (row["type"], row["output"], row["params"], row["trainable"]) for row in rows}
    assert table == {
        "block": ("Block", "[1, 4, 8, 8]", 1, "yes"),  # its own scale only
        "block.conv": ("Conv2d", "[1, 4, 8, 8]", 4 * 3 * 9 + 4, "yes"),
        "block.bn": ("BatchNorm2d", "[1, 4, 8, 8]", 8, "partly"),
        "relu": ("ReLU", "[1, 4, 8, 8] (x2 calls)", 0, "-"),
        "conv2": ("Conv2d", "[1, 6, 8, 8]", 6 * 4 * 9, "yes"),
        "pool": ("AdaptiveAvgPool2d", "[1, 6, 1, 1]", 0, "-"),
        "flatten": ("Flatten", "[1, 6]", 0, "-"),
        "fc": ("Linear", "[1, 2]", 14, "no"),
    }
    assert output == "[1, 2]"
    assert model.training and all(module.training for module in model.modules())  # modes restored
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed


def test_layer_table_of_compiled_models():
    rows, output = layer_table(exported(), torch.zeros(2, 3, 8, 8))
    table = {row["name"]: (row["type"], row["output"]) for row in rows}
    assert table["conv2"] == ("Conv2d", "[2, 6, 8, 8]") and output == "[2, 2]"
    script = scripted()
    wrapper = nn.Sequential(script)  # e.g. an input normalisation around TorchScript: names from the root
    rows, output = layer_table(wrapper, torch.zeros(1, 3, 8, 8), root=script)
    assert [row["name"] for row in rows][:2] == ["block", "block.conv"] and output == "[1, 2]"
    assert {row["output"] for row in rows} == {"-"}  # TorchScript has no hooks: no per-layer shapes
    assert rows[1]["type"] == "Conv2d" and rows[1]["params"] == 4 * 3 * 9 + 4


def test_layer_table_names_the_argument_when_the_model_cannot_run():
    with pytest.raises(
        ValueError, match=r"^--input-size: the model cannot run on a 8x8 input \(RuntimeError: "
    ):
        layer_table(net(), torch.zeros(1, 2, 8, 8), argument="--input-size")
