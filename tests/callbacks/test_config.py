"""callbacks/config.py: every default comes from the table of kinds, every argument is checked in one place."""

import dataclasses
import inspect
import pydoc

import pytest
import torch
from torch import nn

from tb_cnnviz import kinds, snapshots
from tb_cnnviz.callbacks import DEFAULT_EVERY_N_STEPS, CNNVizCallback
from tb_cnnviz.callbacks.config import OPTION_NAMES, SETTING, TURNS_ON, Options, build
from tb_cnnviz.snapshots.patterns import PatternChoice


def net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )


PROBE = torch.rand(2, 3, 12, 12)


def test_the_schedule_and_its_keys_are_the_tables():
    config = build(net(), {})
    expected = {name: row.every_n_steps for name, row in kinds.SNAPSHOTS.items()}
    assert dict(config.every_n_steps) == expected == DEFAULT_EVERY_N_STEPS == kinds.default_every_n_steps()
    assert dict(build(net(), {"every_n_steps": 7}).every_n_steps) == {name: 7 for name in kinds.SNAPSHOTS}
    partial = build(net(), {"every_n_steps": {"gradcam": 3}}).every_n_steps
    # faithfulness follows Grad-CAM's interval
    assert partial == {**expected, "gradcam": 3, "faithfulness": 3}
    both = build(net(), {"every_n_steps": {"gradcam": 3, "faithfulness": 12}}).every_n_steps
    assert (both["gradcam"], both["faithfulness"]) == (3, 12)  # unless given its own
    assert set(config.layers) == set(config.settings) == set(config.enabled) == set(kinds.SNAPSHOTS)


def test_each_snapshot_is_on_when_its_argument_asks_and_its_input_is_given():
    defaults = build(net(), {}).enabled
    assert [name for name, on in defaults.items() if on] == ["kernels", "dead_filters"]
    with_probe = build(net(), {"probe": PROBE}).enabled
    assert [name for name, on in with_probe.items() if on] == [
        "kernels",
        "activations",
        "dead_filters",
        "gradcam",
    ]
    everything = build(
        net(),
        {
            "probe": PROBE,
            "attributions": ["saliency"],
            "faithfulness": True,
            "pattern_layers": ["2"],
            "embedding_probe": (torch.rand(10, 3, 12, 12), torch.arange(10) % 2),  # labels: separability
        },
    ).enabled
    assert all(everything.values())
    for row in kinds.SNAPSHOTS.values():  # an empty layers argument turns its snapshot off
        if row.layers_argument and row.layers_argument != "top_example_layers":
            options = {"probe": PROBE, row.layers_argument: []}
            assert build(net(), options).enabled[row.name] is False, row.name
    assert build(net(), {"embedding_probe": PROBE, "top_example_layers": []}).enabled["embedding"]


def test_every_snapshot_has_one_argument_turning_it_on_and_a_snapshots_function():
    tagged = [field.metadata[TURNS_ON] for field in dataclasses.fields(Options) if TURNS_ON in field.metadata]
    assert sorted(tagged) == sorted(set(tagged))  # at most one tagged argument per snapshot
    for name, row in kinds.SNAPSHOTS.items():
        switch = row.layers_argument if name not in tagged else None
        assert name in tagged or switch in OPTION_NAMES, name
        assert callable(getattr(snapshots, name)), name
        for kind in row.writes:  # written once per run: computed by the function named after the kind
            if not kinds.SUMMARY_KINDS[kind].per_layer:
                assert callable(getattr(snapshots, kind)), kind
    for field in dataclasses.fields(Options):
        if SETTING in field.metadata:
            assert field.metadata[SETTING][0] in kinds.SNAPSHOTS, field.name


def test_layers_default_as_documented_and_are_keyed_by_snapshot():
    model = net()
    config = build(model, {"probe": PROBE, "pattern_layers": ["4"]})
    assert [name for name, _ in config.layers["kernels"]] == ["0"]
    # stage outputs: the last main-path map at each of the 10, 8 and 6 px resolutions (each conv's ReLU)
    assert [name for name, _ in config.layers["activations"]] == ["1", "3", "5"]
    assert [name for name, _ in config.layers["dead_filters"]] == ["0", "2", "4"]
    assert [name for name, _ in config.layers["gradcam"]] == ["5"]  # the last spatial map before the pooling
    assert [name for name, _ in config.layers["patterns"]] == ["4"]
    assert config.layers["embedding"] == config.layers["activations"]  # top examples: the activation layers
    assert config.layers["attributions"] == []  # not per layer
    with CNNVizCallback(model, log_dir=None, writer=_Writer(), probe=PROBE) as viz:
        for row in kinds.SNAPSHOTS.values():  # viz.<layers argument>: the resolved layers
            if row.layers_argument:
                assert getattr(viz, row.layers_argument) == viz.config.layers[row.name]
        with pytest.raises(AttributeError, match="no attribute 'kernel_layer'"):
            _ = viz.kernel_layer


def test_resnet_layers_default_to_its_stage_outputs_and_without_a_probe_to_its_convs():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18()  # random weights
    config = build(model, {"probe": torch.rand(2, 3, 64, 64)})
    # stage outputs at 32, 16, 8, 4 and 2 px: relu, layer1 (outer to maxpool), layer2, layer3, layer4;
    # three evenly spaced of the five are the first, the middle and the last
    assert [name for name, _ in config.layers["activations"]] == ["relu", "layer2", "layer4"]
    assert [name for name, _ in config.layers["gradcam"]] == ["layer4"]  # the block output, after the add
    assert config.enabled["gradcam"] and config.enabled["activations"]
    with CNNVizCallback(model, log_dir=None, writer=_Writer()) as viz:  # no probe: nothing to trace with
        assert [name for name, _ in viz.activation_layers] == ["conv1", "layer3.0.conv1", "layer4.1.conv2"]
        assert [name for name, _ in viz.gradcam_layers] == ["layer4.1.conv2"]
        assert not viz.enabled["gradcam"] and not viz.enabled["activations"] and viz.enabled["kernels"]


def test_settings_come_from_the_tagged_arguments():
    probe = torch.rand(2, 3, 12, 12)
    config = build(
        net(),
        {
            "probe": probe,
            "kernel_normalization": "per_filter",
            "attributions": "occlusion",
            "pattern_channels": 5,
            "input_mean": [0.5, 0.5, 0.5],
            "top_k": 4,
            "embedding_method": "pca",
        },
    )
    assert dict(config.settings["kernels"]) == {"normalization": "per_filter"}
    assert dict(config.settings["attributions"]) == {"methods": ("occlusion",)}
    patterns = dict(config.settings["patterns"])
    assert torch.equal(patterns.pop("reference"), probe)  # the yardstick of a failed pattern
    assert patterns == {
        "channels": PatternChoice("first", 5),  # the first 5 filters (tests/callbacks/test_pattern_choice.py)
        "steps": 64,
        "size": 12,  # the probe's width when not given
        "mean": [0.5, 0.5, 0.5],
        "std": None,
        "in_channels": 3,
    }
    assert dict(config.settings["embedding"]) == {"layer": None, "method": "pca", "k": 4}
    assert build(net(), {}).settings["patterns"]["size"] == 64  # no probe: 64 px
    assert build(net(), {}).settings["patterns"]["reference"] is None


def test_the_configuration_is_frozen():
    config = build(net(), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.every_n_steps = {}
    with pytest.raises(TypeError):
        config.every_n_steps["kernels"] = 1
    with pytest.raises(TypeError):
        config.settings["kernels"]["normalization"] = "per_filter"


def test_the_signature_lists_every_keyword_with_its_default():
    parameters = inspect.signature(CNNVizCallback).parameters
    assert list(parameters) == ["model", "log_dir", *OPTION_NAMES]
    assert len(parameters) == 32
    assert parameters["log_dir"].default is None
    for field in dataclasses.fields(Options):
        assert parameters[field.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[field.name].default == field.default, field.name
    assert parameters["every_n_steps"].default is None and parameters["top_k"].default == 9
    text = pydoc.render_doc(CNNVizCallback, renderer=pydoc.plaintext)
    assert "kernel_layers" in text and "pattern_channels: 'int | Sequence[int] | str' = 64" in text


def test_unknown_or_extra_arguments_are_type_errors_naming_the_valid_ones(tmp_path):
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument\(s\) \['kernel_layer'\]; expected any of"
    ):
        CNNVizCallback(net(), log_dir=tmp_path, kernel_layer=["0"])
    with pytest.raises(TypeError, match=r"'kernel_layers'"):
        CNNVizCallback(net(), log_dir=tmp_path, kernel_layer=["0"])
    with pytest.raises(TypeError):
        CNNVizCallback(net(), tmp_path, None)  # keywords only after log_dir


@pytest.mark.parametrize(
    "options, error, pattern",
    [
        ({"kernel_normalization": "x"}, ValueError, r"kernel_normalization: expected one of"),
        ({"kernel_layers": ["nope"]}, ValueError, r"kernel_layers: no layer named 'nope'"),
        ({"pattern_channels": 0}, ValueError, r"pattern_channels: expected an int >= 1, got 0"),
        ({"pattern_steps": True}, ValueError, r"pattern_steps: expected an int >= 1, got True"),
        ({"pattern_size": -2}, ValueError, r"pattern_size: expected an int >= 1, got -2"),
        ({"top_k": 0}, ValueError, r"top_k: expected an int >= 1, got 0"),
        ({"embedding_method": "mds"}, ValueError, r"embedding_method: expected 'tsne', 'pca' or 'umap'"),
        ({"embedding_layer": "head"}, ValueError, r"embedding_layer: no layer named 'head'"),
        ({"attributions": 3}, TypeError, r"attributions: expected a list of method names, got int"),
        (
            {"attributions": ["lime"], "probe": PROBE},
            ValueError,
            r"attributions: unknown method\(s\) \['lime'\]",
        ),
        ({"activation_layers": ["0"]}, ValueError, r"probe: activation_layers need probe images"),
        ({"probe": PROBE[0]}, ValueError, r"probe: expected a 4-D float tensor"),
        ({"probe": [PROBE]}, ValueError, r"probe: expected images or \(images, labels\)"),
        ({"probe": "images"}, TypeError, r"probe: expected a float tensor"),
        ({"probe": torch.rand(2, 1, 12, 12)}, ValueError, r"probe: the model's first conv layer takes 3"),
        (
            {"probe": torch.rand(65, 3, 12, 12)},
            ValueError,
            r"probe: expected 1 to 64 images \(8-16 is typical\)",
        ),
        ({"probe": PROBE * float("nan")}, ValueError, r"probe: the images contain NaN or Inf"),
        ({"embedding_probe": torch.rand(2, 2, 8, 8)}, ValueError, r"embedding_probe: the model's first conv"),
        (
            {"embedding_probe": torch.rand(50_001, 3, 1, 1)},
            ValueError,
            r"embedding_probe: expected 1 to 50000 images \(the Embedding view's supported maximum; pass a subset\), "
            r"got 50001",
        ),
        ({"every_n_steps": {"kernel": 1}}, ValueError, r"every_n_steps: unknown kind\(s\) \['kernel'\]"),
        ({"logits": 3}, TypeError, r"logits: expected a callable on the model output, got int"),
        ({"probe": torch.rand(2, 3, 2, 2)}, ValueError, r"probe: the model cannot run on the probe images"),
        (
            {"probe": PROBE, "logits": lambda out: out[0]},
            ValueError,
            r"logits: Grad-CAM needs class scores \[N, classes\]",
        ),
    ],
)
def test_each_argument_is_checked_with_an_error_naming_it(options, error, pattern):
    with pytest.raises(error, match=pattern):
        build(net(), options)


def test_the_model_is_checked_first():
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module, got str"):
        build("net", {})
    with pytest.raises(ValueError, match="model: Linear has no nn.Conv2d layer"):
        build(nn.Linear(2, 2), {})


class _Writer:
    """Just enough of a SummaryWriter (the callback checks for ``_get_file_writer``)."""

    def _get_file_writer(self):
        return None

    def flush(self):
        pass
