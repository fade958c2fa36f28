"""The bad-input matrix of docs/robustness.md: every row is a clear error at construction, or works correctly."""

import math

import numpy as np
import pytest
import torch
from support import read_logdir
from torch import nn

from tb_cnnviz.callbacks import CNNVizCallback


def net(*layers, head_in=None, classes=3):
    """conv layers -> global pooling -> linear head."""
    body = nn.Sequential(*layers)
    return nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(head_in, classes))


class TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = net(nn.Conv2d(3, 4, 3), nn.ReLU(), head_in=4)

    def forward(self, x):
        return self.net(x), x.mean()


class DictOut(TupleOut):
    def forward(self, x):
        return {"logits": self.net(x), "aux": x.mean()}


class OddDictOut(TupleOut):
    def forward(self, x):
        return {"scores": self.net(x)}


WORKS = {
    "grouped conv": (lambda: net(nn.Conv2d(4, 8, 3, groups=2), nn.ReLU(), head_in=8), 4),
    "depthwise conv": (
        lambda: net(nn.Conv2d(3, 6, 3), nn.Conv2d(6, 6, 3, groups=6), nn.ReLU(), head_in=6),
        3,
    ),
    "non-square kernel": (lambda: net(nn.Conv2d(3, 4, (1, 5)), nn.ReLU(), head_in=4), 3),
    "dilated conv": (lambda: net(nn.Conv2d(3, 4, 3, dilation=2), nn.ReLU(), head_in=4), 3),
    "1-channel input": (lambda: net(nn.Conv2d(1, 4, 3), nn.ReLU(), head_in=4), 1),
    "4-channel input": (lambda: net(nn.Conv2d(4, 4, 3), nn.ReLU(), head_in=4), 4),
    "tuple output": (TupleOut, 3),
    "dict output": (DictOut, 3),
}


@pytest.mark.parametrize("case", sorted(WORKS))
def test_model_kinds_that_work(tmp_path, case):
    factory, channels = WORKS[case]
    torch.manual_seed(0)
    model = factory()
    images = torch.rand(3, channels, 12, 12, generator=torch.Generator().manual_seed(1))
    with CNNVizCallback(
        model, log_dir=tmp_path, probe=(images, torch.tensor([0, 1, 2])), every_n_steps=1, strict=True
    ) as viz:
        model.train()
        model(images)
        viz.on_step_end(1)
    run = read_logdir(str(tmp_path))["."]
    first = viz.kernel_layers[0]
    kernels = run[f"cnnviz/kernels/{first[0]}"]["values"][0]
    # the real weights, whatever their shape (stored in half precision: snapshots.precision)
    assert np.array_equal(kernels, first[1].weight.detach().numpy().astype(np.float16))
    assert all(
        np.isfinite(run[f"cnnviz/smoothness/{first[0]}"]["values"][0]) | (first[1].kernel_size == (1, 1))
    )
    assert any(tag.startswith("cnnviz/gradcam_maps/") for tag in run)
    assert run["cnnviz/probe"]["values"][0][0][:4] == b"\x89PNG"


def conv_net() -> nn.Module:
    """One 3x3 conv on 3 channels and its head: the model the argument errors are raised for."""
    return net(nn.Conv2d(3, 4, 3), head_in=4)


ERRORS = {
    "no conv": (
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 2)),
        {},
        ValueError,
        r"model: Sequential has no nn.Conv2d",
    ),
    "Conv1d only": (lambda: nn.Sequential(nn.Conv1d(3, 4, 3)), {}, ValueError, r"has no nn.Conv2d"),
    "Conv3d only": (lambda: nn.Sequential(nn.Conv3d(3, 4, 3)), {}, ValueError, r"has no nn.Conv2d"),
    "missing layer": (
        conv_net,
        {"kernel_layers": ["0.9"]},
        ValueError,
        r"kernel_layers: no layer named '0.9' in the model; valid conv layer names: '0.0'",
    ),
    "layer of wrong type": (
        conv_net,
        {"dead_filter_layers": ["3"]},
        ValueError,
        r"'3' is a Linear, not a Conv2d",
    ),
    "layer spec not a name": (
        conv_net,
        {"kernel_layers": [1.5]},
        TypeError,
        r"kernel_layers: expected a layer name",
    ),
    "duplicate layers": (
        conv_net,
        {"activation_layers": ["0.0", "0.0"]},
        ValueError,
        r"listed more than once",
    ),
    "empty probe": (
        conv_net,
        {"probe": torch.zeros(0, 3, 8, 8)},
        ValueError,
        r"probe: expected 1 to 64 images",
    ),
    "probe of wrong rank": (
        conv_net,
        {"probe": torch.zeros(3, 8, 8)},
        ValueError,
        r"probe: expected a 4-D float tensor",
    ),
    "probe with wrong channels": (
        conv_net,
        {"probe": torch.zeros(2, 1, 8, 8)},
        ValueError,
        r"takes 3 channels, the images have 1",
    ),
    "probe of int dtype": (
        conv_net,
        {"probe": torch.zeros(2, 3, 8, 8, dtype=torch.int64)},
        ValueError,
        r"dtype torch.int64",
    ),
    "probe with NaN": (conv_net, {"probe": torch.full((2, 3, 8, 8), math.nan)}, ValueError, r"NaN or Inf"),
    "probe too small for the model": (
        lambda: net(nn.Conv2d(3, 4, 5), head_in=4),
        {"probe": torch.zeros(2, 3, 3, 3)},
        ValueError,
        r"probe: the model cannot run on the probe images",
    ),
    "probe labels out of range": (
        conv_net,
        {"probe": (torch.zeros(2, 3, 8, 8), torch.tensor([0, 7]))},
        ValueError,
        r"label 7 is out of range for a model with 3 classes",
    ),
    # asked for (at the defaults Grad-CAM is turned off with a warning: tests/callbacks/test_non_classifiers.py)
    "dict output without logits": (
        OddDictOut,
        {"probe": torch.zeros(2, 3, 8, 8), "attributions": ["saliency"]},
        ValueError,
        r"logits: the model returns a dict with keys \['scores'\]",
    ),
    "schedule 0": (conv_net, {"every_n_steps": 0}, ValueError, r"expected an int >= 1, got 0"),
    "schedule negative": (
        conv_net,
        {"every_n_steps": {"gradcam": -3}},
        ValueError,
        r"every_n_steps\['gradcam'\]: expected an int >= 1, got -3",
    ),
    "schedule not an int": (
        conv_net,
        {"every_n_steps": "often"},
        TypeError,
        r"expected an int >= 1, got 'often'",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_inputs_fail_at_construction(tmp_path, case):
    factory, kwargs, error, pattern = ERRORS[case]
    with pytest.raises(error, match=pattern):
        CNNVizCallback(factory(), log_dir=tmp_path, **kwargs)


def test_dict_output_with_a_custom_logits_picker_works(tmp_path):
    model = OddDictOut()
    images = torch.rand(2, 3, 8, 8)
    with CNNVizCallback(
        model, log_dir=tmp_path, probe=images, logits=lambda out: out["scores"], every_n_steps=1, strict=True
    ) as viz:
        viz.on_step_end(1)
    assert read_logdir(str(tmp_path))["."]["cnnviz/gradcam_info/net.0"]["values"][0].shape == (2, 4)


class AuxFirstDictOut(TupleOut):
    def forward(self, x):
        return {"aux": x.mean(), "scores": self.net(x)}


def test_default_layers_are_traced_to_the_scores_the_logits_picker_chooses():
    # the first tensor of the output does not depend on any layer: only the picked scores find the path
    model = AuxFirstDictOut()
    with CNNVizCallback(
        model, writer=_Writer(), probe=torch.rand(2, 3, 8, 8), logits=lambda out: out["scores"]
    ) as viz:
        assert [name for name, _ in viz.gradcam_layers] == ["net.0"]  # the body's output, after its ReLU
        assert [name for name, _ in viz.activation_layers] == ["net.0"]


class _Writer:
    """Just enough of a SummaryWriter (the callback checks for ``_get_file_writer``)."""

    def _get_file_writer(self):
        return None

    def flush(self):
        pass


def test_a_default_activation_layer_followed_by_a_norm_layer_is_measured_as_it_is(tmp_path):
    # pre-activation style: the last map at full resolution is a ReLU, registered right before a BatchNorm
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Sequential(nn.BatchNorm2d(4), nn.Conv2d(4, 6, 3, stride=2, padding=1)),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    images = torch.rand(2, 3, 16, 16)
    with CNNVizCallback(model, log_dir=tmp_path, probe=images, every_n_steps=1, strict=True) as viz:
        assert [name for name, _ in viz.activation_layers] == ["1", "3"]
        viz.on_step_end(1)
    run = read_logdir(str(tmp_path))["."]
    assert run["cnnviz/activations/1"]["content"]["tile"] == [16, 16]
    assert run["cnnviz/activations/3"]["content"]["channels"] == 6


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a GPU to put the probe and the model on different devices"
)
def test_probe_on_another_device_is_moved_to_the_model(tmp_path):
    model = net(nn.Conv2d(3, 4, 3), nn.ReLU(), head_in=4).cuda()
    with CNNVizCallback(
        model, log_dir=tmp_path, probe=torch.rand(2, 3, 8, 8), every_n_steps=1, strict=True
    ) as viz:
        viz.on_step_end(1)
    assert "cnnviz/gradcam_maps/0.0" in read_logdir(str(tmp_path))["."]
