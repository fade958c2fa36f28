import math
import random
import warnings

import numpy as np
import pytest
import torch
from callback_training import decode, train
from support import read_logdir
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz.analysis.activations import activation_grids, layer_activations
from tb_cnnviz.analysis.kernels import kernel_grid, smoothness
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg


def test_logs_every_kind_with_the_values_of_the_model(tmp_path, model, data):
    images, labels = data
    probe = (images[:4], labels[:4])
    with CNNVizCallback(
        model,
        log_dir=tmp_path / "run",
        probe=probe,
        class_names=ShapesDataset.classes,
        every_n_steps={"kernels": 2, "activations": 3, "dead_filters": 4},
        strict=True,
    ) as viz:
        train(model, viz, images, labels, steps=6)
        final_weight = model.features.conv1.weight.detach().clone()
        final_activations = layer_activations(model, [m for _, m in viz.activation_layers], images[:4])
    run = read_logdir(str(tmp_path))["run"]
    kernels = run["cnnviz/kernels/features.conv1"]
    assert kernels["steps"] == [1, 2, 4, 6] and kernels["content"]["kind"] == "kernels"
    # stored as float16 (snapshots.precision): exactly the float32 weights rounded to half precision
    assert np.array_equal(kernels["values"][-1], final_weight.numpy().astype(np.float16))
    smooth = run["cnnviz/smoothness/features.conv1"]
    assert np.allclose(smooth["values"][-1], smoothness(final_weight).numpy())
    grid = run["cnnviz/kernel_grid/features.conv1"]
    expected_grid, nrow = kernel_grid(final_weight)
    assert grid["content"]["nrow"] == nrow == 3 and grid["content"]["normalization"] == "global"
    pixels = decode(grid["values"][-1][0]).astype(np.float32) / 255
    assert np.abs(pixels - expected_grid.permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6

    # activation maps: the 3 evenly spaced default layers, one PNG per probe image, at steps 1, 3, 6
    activation_tags = sorted(tag for tag in run if tag.startswith("cnnviz/activations/"))
    assert activation_tags == [
        "cnnviz/activations/features",
        "cnnviz/activations/features.relu2",
        "cnnviz/activations/features.relu5",
    ]
    last = run["cnnviz/activations/features"]  # the features block's output, after its last max-pool
    assert last["steps"] == [1, 3, 6] and len(last["values"][-1]) == 4
    assert last["content"]["channels"] == 32 and last["content"]["tile"] == [4, 4]
    expected, _ = activation_grids(final_activations[2])
    # 128 grey levels (snapshots.probe_images.ACTIVATION_LEVELS): within half a level, plus the 8-bit rounding
    assert (
        np.abs(decode(last["values"][-1][1]) / 255 - expected[1].numpy()).max()
        <= 0.5 / 127 + 0.5 / 255 + 1e-6
    )

    probe_series = run["cnnviz/probe"]
    assert probe_series["content"]["labels"] == labels[:4].tolist()
    assert probe_series["content"]["class_names"] == list(ShapesDataset.classes)
    assert (
        np.abs(decode(probe_series["values"][0][2]) / 255 - images[2].permute(1, 2, 0).numpy()).max()
        <= 0.5 / 255 + 1e-6
    )

    # dead filters: the window ends at step 4, the rest (steps 5-6) is flushed by close()
    dead = run["cnnviz/dead_filters/features.conv2"]
    assert dead["steps"] == [4, 6] and dead["content"]["measured_at"] == "features.bn2"
    assert dead["values"][0].shape == (8,) and np.all((dead["values"][0] >= 0) & (dead["values"][0] <= 1))
    scalars = read_logdir(str(tmp_path), plugin="scalars")["run"]
    assert scalars["cnnviz_scalars/dead_fraction/mean_over_layers"]["steps"] == [4, 6]  # scalars="summary"
    assert scalars["cnnviz_scalars/smoothness/features.conv1"]["values"][-1] == pytest.approx(
        float(smoothness(final_weight).mean()), abs=1e-6
    )


def test_every_summary_has_a_data_class(tmp_path, model, data):
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.proto import summary_pb2

    images, labels = data
    with CNNVizCallback(model, log_dir=tmp_path, probe=images[:2], every_n_steps=1, strict=True) as viz:
        train(model, viz, images, labels, steps=1)
    (event_file,) = tmp_path.glob("events.out.tfevents.*")
    seen = {}
    for event in event_file_loader.EventFileLoader(str(event_file)).Load():
        for value in event.summary.value:
            if value.HasField("metadata"):
                seen[value.tag] = (value.metadata.data_class, value.metadata.plugin_data.plugin_name)
    assert seen["cnnviz/kernels/features.conv1"] == (summary_pb2.DATA_CLASS_TENSOR, "cnnviz")
    assert seen["cnnviz/activations/features.relu5"] == (summary_pb2.DATA_CLASS_BLOB_SEQUENCE, "cnnviz")
    assert seen["cnnviz_scalars/smoothness/features.conv1"] == (summary_pb2.DATA_CLASS_SCALAR, "scalars")
    assert all(data_class != summary_pb2.DATA_CLASS_UNKNOWN for data_class, _ in seen.values())


def test_planted_dead_filters_reach_the_log(tmp_path, model, data):
    images, labels = data
    with torch.no_grad():
        model.features.bn3.bias[[0, 5, 9]] = -1e4
        model.features.bn3.bias.requires_grad_(False)  # keep them dead while training
    with CNNVizCallback(
        model, log_dir=tmp_path, every_n_steps={"dead_filters": 3}, strict=True, scalars="per_layer"
    ) as viz:
        train(model, viz, images, labels, steps=3)
    run = read_logdir(str(tmp_path))["."]
    rates = run["cnnviz/dead_filters/features.conv3"]["values"][0]
    assert np.nonzero(rates == 0)[0].tolist() == [0, 5, 9]
    scalars = read_logdir(str(tmp_path), plugin="scalars")["."]
    assert scalars["cnnviz_scalars/dead_fraction/features.conv3"]["values"][0] == pytest.approx(3 / 16)
    assert scalars["cnnviz_scalars/dead_fraction/features.conv1"]["values"][0] == 0.0


def test_logging_leaves_no_trace_on_training(tmp_path, model, data):
    images, labels = data
    model.features.bn2.eval()  # a user-frozen BN must stay frozen
    model.train()
    model.features.bn2.eval()
    for index, parameter in enumerate(model.parameters()):
        parameter.grad = torch.full_like(parameter, float(index))
    flags = {name: module.training for name, module in model.named_modules()}
    grads = [p.grad.clone() for p in model.parameters()]
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    viz = CNNVizCallback(model, log_dir=tmp_path, probe=images[:4], every_n_steps=1, strict=True)
    hooks_while_tracking = sum(len(m._forward_hooks) for m in model.modules())
    assert hooks_while_tracking == 5  # one per tracked conv's activation point, nothing else
    model(images[:8])  # a training forward for the dead-filter window
    viz.on_step_end(1)
    viz.on_step_end(2)
    assert {name: module.training for name, module in model.named_modules()} == flags
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]
    assert sum(len(m._forward_hooks) for m in model.modules()) == hooks_while_tracking
    assert all(
        t is None or (t.grad_fn is None and not t.requires_grad) for t, _ in viz._window.tracker.counts()
    )
    viz.close()
    assert (
        sum(
            len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
            for m in model.modules()
        )
        == 0
    )


def test_a_failing_kind_warns_once_is_disabled_and_training_goes_on(tmp_path, model, data, monkeypatch):
    images, labels = data
    import tb_cnnviz.snapshots.weights as callback_module

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(callback_module, "kernel_grid", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with CNNVizCallback(model, log_dir=tmp_path, probe=images[:2], every_n_steps=1) as viz:
            train(model, viz, images, labels, steps=3)
    messages = [str(w.message) for w in caught if "tb-cnnviz" in str(w.message)]
    assert (
        len(messages) == 1
        and "'kernels'" in messages[0]
        and "boom" in messages[0]
        and "Traceback" in messages[0]
    )
    assert viz.enabled["kernels"] is False
    run = read_logdir(str(tmp_path))["."]
    assert "cnnviz/kernels/features.conv1" not in run
    assert run["cnnviz/activations/features.relu2"]["steps"] == [1, 2, 3]

    monkeypatch.setattr(callback_module, "kernel_grid", broken)
    strict = CNNVizCallback(model, log_dir=tmp_path / "strict", strict=True)
    with pytest.raises(RuntimeError, match="boom"):
        strict.on_step_end(1)
    strict.close()


def test_nonfinite_weights_are_logged_not_fatal(tmp_path, model):
    with torch.no_grad():
        model.features.conv1.weight[0, 0, 0, 0] = math.nan
        model.features.conv1.weight[1, 0, 0, 0] = math.inf
    with CNNVizCallback(model, log_dir=tmp_path, strict=True) as viz:
        viz.on_step_end(0)
    scalars = read_logdir(str(tmp_path), plugin="scalars")["."]
    assert scalars["cnnviz_scalars/nonfinite_weights/all_layers"]["values"] == [2.0]  # one kernel layer
    smooth = read_logdir(str(tmp_path))["."]["cnnviz/smoothness/features.conv1"]["values"][0]
    assert np.isnan(smooth[:2]).all() and np.isfinite(smooth[2:]).all()


def test_wrapped_models_are_unwrapped(tmp_path, data):
    images, labels = data
    torch.manual_seed(0)
    base = small_vgg(width=8)
    for wrapped in (nn.DataParallel(base), torch.compile(base, backend="eager")):
        viz = CNNVizCallback(
            wrapped, log_dir=tmp_path / type(wrapped).__name__, probe=images[:2], every_n_steps=1, strict=True
        )
        assert viz.kernel_layers[0] == ("features.conv1", base.features.conv1)
        wrapped.train()
        wrapped(images[:4])
        viz.on_step_end(1)
        viz.close()
        rates = read_logdir(str(tmp_path / type(wrapped).__name__))["."][
            "cnnviz/dead_filters/features.conv1"
        ]["values"]
        assert len(rates) == 1 and rates[0].shape == (8,)


def test_user_writer_is_used_and_left_open(tmp_path, model):
    writer = SummaryWriter(str(tmp_path))
    with CNNVizCallback(model, writer=writer, strict=True) as viz:
        viz.on_step_end(5)
    writer.add_scalar("after", 1.0, 0)  # still open
    writer.close()
    assert read_logdir(str(tmp_path))["."]["cnnviz/kernels/features.conv1"]["steps"] == [5]


def test_repeated_or_older_steps_are_ignored(tmp_path, model):
    with CNNVizCallback(model, log_dir=tmp_path, every_n_steps=1, strict=True) as viz:
        for step in (3, 3, 2, 4):
            viz.on_step_end(step)
    assert read_logdir(str(tmp_path))["."]["cnnviz/kernels/features.conv1"]["steps"] == [3, 4]


class NoConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(model=NoConv()), ValueError, r"model: NoConv has no nn.Conv2d"),
        (dict(model="net"), TypeError, r"model: expected a torch.nn.Module"),
        (
            dict(kernel_layers=["features.conv9"]),
            ValueError,
            r"kernel_layers: no layer named 'features.conv9'.*'features.conv1'",
        ),
        (
            dict(kernel_layers=["features.bn1"]),
            ValueError,
            r"kernel_layers: 'features.bn1' is a BatchNorm2d, not a Conv2d",
        ),
        (
            dict(dead_filter_layers=["features.conv1", "features.conv1"]),
            ValueError,
            r"dead_filter_layers: layers listed more than once",
        ),
        (dict(activation_layers=[3]), TypeError, r"activation_layers: expected a layer name"),
        (
            dict(probe=torch.zeros(2, 1, 32, 32)),
            ValueError,
            r"probe: the model's first conv layer takes 3 channels, the images have 1",
        ),
        (dict(probe=torch.zeros(3, 32, 32)), ValueError, r"probe: expected a 4-D float tensor"),
        (
            dict(probe=torch.zeros(2, 3, 32, 32, dtype=torch.uint8)),
            ValueError,
            r"probe: expected a 4-D float tensor.*uint8",
        ),
        (dict(probe=np.zeros((2, 3, 32, 32))), TypeError, r"probe: expected a float tensor"),
        (dict(probe=torch.zeros(0, 3, 32, 32)), ValueError, r"probe: expected 1 to 64 images"),
        (dict(probe=torch.full((1, 3, 8, 8), math.nan)), ValueError, r"probe: .*NaN"),
        (
            dict(embedding_probe=torch.zeros(2, 1, 8, 8)),
            ValueError,
            r"embedding_probe: the model's first conv layer takes 3",
        ),
        (
            dict(embedding_method="mds"),
            ValueError,
            r"embedding_method: expected 'tsne', 'pca' or 'umap', got 'mds'",
        ),
        (dict(top_k=0), ValueError, r"top_k: expected an int >= 1, got 0"),
        (dict(probe=(torch.zeros(2, 3, 8, 8), torch.zeros(3))), ValueError, r"probe: 2 images but 3 labels"),
        (dict(every_n_steps=0), ValueError, r"every_n_steps\['kernels'\]: expected an int >= 1, got 0"),
        (dict(every_n_steps={"kernels": -5}), ValueError, r"every_n_steps\['kernels'\].*got -5"),
        (dict(every_n_steps={"kernels": 2.5}), TypeError, r"every_n_steps\['kernels'\].*2.5"),
        (dict(every_n_steps={"kernel": 2}), ValueError, r"every_n_steps: unknown kind\(s\) \['kernel'\]"),
        (dict(kernel_normalization="per_layer"), ValueError, r"kernel_normalization: expected one of"),
        (dict(log_dir=None), ValueError, r"log_dir: expected a directory"),
        (dict(log_dir="/proc/no/such/dir"), ValueError, r"log_dir: cannot create '/proc/no/such/dir'"),
        (dict(writer=object()), (TypeError, ValueError), r"(writer|log_dir):"),
    ],
)
def test_bad_configuration_is_a_clear_error_at_construction(tmp_path, model, kwargs, error, pattern):
    arguments = {"model": model, "log_dir": tmp_path / "run", **kwargs}
    with pytest.raises(error, match=pattern):
        CNNVizCallback(arguments.pop("model"), **arguments)


def test_bad_step_is_a_clear_error(tmp_path, model):
    with CNNVizCallback(model, log_dir=tmp_path) as viz:
        for bad in (-1, 1.5, "3"):
            with pytest.raises(ValueError, match="step: expected a non-negative int"):
                viz.on_step_end(bad)
        viz.on_step_end(torch.tensor(7))


def test_gradcam_snapshots_match_the_analysis_function(tmp_path, trained_small_vgg, shapes_test):
    from tb_cnnviz.analysis.cam import grad_cam

    model = trained_small_vgg
    images, labels = shapes_test.tensors(range(6))
    with CNNVizCallback(
        model,
        log_dir=tmp_path,
        probe=(images, labels),
        every_n_steps=1,
        strict=True,
        attributions=["saliency", "occlusion"],
    ) as viz:
        viz.on_step_end(0)
    run = read_logdir(str(tmp_path))["."]
    expected = grad_cam(model, "features", images, labels, normalize="none", return_details=True)
    maps = run["cnnviz/gradcam_maps/features"]["values"][0]
    # stored at the layer's resolution (the small VGG's features: 4 x 4 of the 32 px input), not upsampled
    assert maps.shape == (6, 4, 4) and np.allclose(maps, expected.native.numpy(), atol=1e-5)
    info = run["cnnviz/gradcam_info/features"]["values"][0]
    with torch.no_grad():
        probabilities = torch.softmax(model(images), dim=1)
    assert info[:, 0].tolist() == labels.tolist()
    assert info[:, 1].tolist() == probabilities.argmax(1).tolist()
    assert np.allclose(info[:, 2], probabilities.amax(1).numpy(), atol=1e-5)
    assert np.allclose(info[:, 3], probabilities[torch.arange(6), labels].numpy(), atol=1e-5)
    # no overlay PNGs (#18): the view draws each from the raw map and the probe image
    assert "cnnviz/gradcam/features" not in run and len(run["cnnviz/probe"]["values"][0]) == 6
    assert sorted(tag for tag in run if tag.startswith("cnnviz/attribution/")) == [
        "cnnviz/attribution/occlusion",
        "cnnviz/attribution/saliency",
    ]
    assert len(run["cnnviz/attribution/occlusion"]["values"][0]) == 6


def test_gradcam_and_attributions_need_a_probe_and_known_methods(tmp_path, model):
    with pytest.raises(ValueError, match=r"probe: gradcam_layers, attributions need probe images"):
        CNNVizCallback(model, log_dir=tmp_path, gradcam_layers=["features.conv5"], attributions=["saliency"])
    with pytest.raises(ValueError, match=r"attributions: unknown method\(s\) \['lime'\]"):
        CNNVizCallback(model, log_dir=tmp_path, probe=torch.zeros(2, 3, 32, 32), attributions=["lime"])
    with pytest.raises(ValueError, match=r"gradcam_layers: no layer named 'head'"):
        CNNVizCallback(model, log_dir=tmp_path, probe=torch.zeros(2, 3, 32, 32), gradcam_layers=["head"])
    viz = CNNVizCallback(
        model, log_dir=tmp_path, probe=torch.zeros(2, 3, 32, 32), gradcam_layers=["features"]
    )  # a block is fine
    assert viz.gradcam_layers[0][0] == "features"
    viz.close()


def test_gradcam_alone_still_logs_the_probe_images(tmp_path, model):
    images = torch.rand(2, 3, 32, 32)
    with CNNVizCallback(
        model, log_dir=tmp_path, probe=(images, torch.tensor([1, 2])), activation_layers=[], strict=True
    ) as viz:
        viz.on_step_end(1)
    run = read_logdir(str(tmp_path))["."]
    assert run["cnnviz/probe"]["content"]["labels"] == [1, 2] and "cnnviz/gradcam_maps/features" in run


def test_warns_once_when_no_forward_reaches_the_dead_filter_hooks(tmp_path, model, data):
    images, labels = data
    copy_model = small_vgg(
        width=8
    )  # trained instead of the watched model: its forwards never reach our hooks
    viz = CNNVizCallback(model, log_dir=tmp_path / "none", every_n_steps=2)
    with pytest.warns(
        RuntimeWarning,
        match="no forward pass of the model reached the dead-filter hooks between steps 1 and 2",
    ):
        train(copy_model, viz, images, labels, steps=6)
    assert (
        sum(
            "dead-filter hooks" in str(w.message)
            for w in viz_warnings(lambda: train(copy_model, viz, images, labels, 4, start=7))
        )
        == 0
    )
    viz.close()
    assert not any(tag.startswith("cnnviz/dead_filters/") for tag in read_logdir(str(tmp_path / "none"))["."])
    # Training the watched model: no warning, and the windows are logged.
    watched = CNNVizCallback(model, log_dir=tmp_path / "ok", every_n_steps=2)
    assert not [
        w
        for w in viz_warnings(lambda: train(model, watched, images, labels, steps=6))
        if "dead-filter hooks" in str(w.message)
    ]
    watched.close()
    assert read_logdir(str(tmp_path / "ok"))["."]["cnnviz/dead_filters/features.conv1"]["steps"] == [2, 4, 6]


def viz_warnings(run):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return caught


class SqueezeExciteNet(nn.Module):
    """A conv, a squeeze-excite gate on it (head ``se1``, gate ``se2``) and a linear classifier."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.se1, self.se2 = nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = x * torch.sigmoid(self.se2(torch.relu(self.se1(x.mean((2, 3), keepdim=True)))))
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize("given", [None, ["conv", "se1", "se2"]], ids=["default", "given"])
def test_gates_and_heads_are_dead_filter_layers_only_when_asked(tmp_path, given):
    torch.manual_seed(0)
    model = SqueezeExciteNet()
    with CNNVizCallback(
        model, log_dir=str(tmp_path), dead_filter_layers=given, every_n_steps={"dead_filters": 2}
    ) as viz:
        images, labels = torch.randn(128, 3, 8, 8), torch.arange(128) % 4
        train(model, viz, images, labels, steps=2, batch=4)
        hooked = [name for name in ("conv", "se1", "se2") if model.get_submodule(name)._forward_hooks]
    logged = read_logdir(str(tmp_path))["."]
    semantics = {
        tag.rsplit("/", 1)[1]: series["content"]["semantics"]
        for tag, series in logged.items()
        if tag.startswith("cnnviz/dead_filters/")
    }
    if given is None:
        assert semantics == {"conv": "relu"} and hooked == ["conv"]
    else:
        assert semantics == {"conv": "relu", "se1": "head", "se2": "gate"}


def test_own_writer_queues_a_whole_window_without_blocking_training(tmp_path, model):
    """A dead-filter window writes one summary or more per conv layer at once; the event writer's default
    queue of 10 made the training thread wait for the disk (68 ms for a ResNet-50 window, 0.6 ms queued)."""
    with CNNVizCallback(model, log_dir=str(tmp_path)) as viz:
        assert viz.writer.max_queue >= 1000
