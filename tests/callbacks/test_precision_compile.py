"""The callback under bf16 autocast, channels_last and a real ``torch.compile`` (inductor, CPU).

Each test trains a tiny seeded model a few steps with the callback attached and checks the
logged numbers against a recomputation: dead-filter rates against forward hooks of the test's
own that see the very activations training produced (bf16, channels-last or compiled), kernels
against the weights, activation maps and Grad-CAM against the analysis functions or an eager run.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from support import read_logdir
from torch import nn

from tb_cnnviz.analysis.activations import activation_grids, layer_activations
from tb_cnnviz.analysis.cam import grad_cam
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.snapshots.precision import half

STEPS = 4
WINDOW = 2  # dead-filter window: logged at steps 2 and 4
SCHEDULE = {"kernels": 1, "activations": 1, "gradcam": 1, "dead_filters": WINDOW}
DEAD_BN1 = [2]  # planted dead filters: a large negative bias keeps them below 0 (and their gradient at 0)
DEAD_CONV2 = [1, 4]


class Tiny(nn.Module):
    """conv-BN-ReLU, conv-ReLU, global mean, linear: dead filters measured at ``bn1`` and at ``conv2``."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.head(torch.relu(self.conv2(x)).mean(dim=(2, 3)))


def tiny() -> Tiny:
    torch.manual_seed(0)
    model = Tiny()
    with torch.no_grad():
        model.bn1.bias[DEAD_BN1] = -50.0
        model.conv2.bias[DEAD_CONV2] = -50.0
    return model


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(8, 3, 12, 12, generator=generator)
    labels = torch.randint(0, 3, (8,), generator=generator)
    return images, labels


class PositiveCounter:
    """The test's own reference: per training forward, each filter's count of activations > 0,
    computed in float64 from the activation the hook receives (bf16, channels-last or compiled)."""

    def __init__(self, points):
        self.steps: list[list[tuple[np.ndarray, int]]] = [[] for _ in points]
        self.dtypes, self.channels_last = set(), set()
        self.handles = [point.register_forward_hook(self._hook(index)) for index, point in enumerate(points)]

    def _hook(self, index):
        def hook(module, _inputs, output):
            if not (module.training and torch.is_grad_enabled()):
                return
            self.dtypes.add(output.dtype)
            self.channels_last.add(
                output.is_contiguous(memory_format=torch.channels_last) and not output.is_contiguous()
            )
            value = output.detach().double()
            self.steps[index].append(
                ((value > 0).sum(dim=(0, 2, 3)).numpy(), value.shape[0] * value.shape[2] * value.shape[3])
            )

        return hook

    def window_rates(self, index: int, first_step: int, last_step: int) -> np.ndarray:
        """Rates over training forwards ``first_step..last_step`` (1-based), as the tracker divides them."""
        chosen = self.steps[index][first_step - 1 : last_step]
        counts = sum(count for count, _ in chosen)
        positions = sum(positions for _, positions in chosen)
        return (torch.from_numpy(counts).double() / positions).float().numpy()

    def remove(self):
        for handle in self.handles:
            handle.remove()


def train(
    net: nn.Module, images, labels, viz=None, steps: int = STEPS, autocast: bool = False, memory_format=None
):
    """SGD on two alternating half-batches; returns the losses and the conv1 weight after each step."""
    model = getattr(net, "_orig_mod", net)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses, weights = [], []
    net.train()
    for step in range(1, steps + 1):
        index = torch.arange(4) + 4 * (step % 2)
        x = images[index] if memory_format is None else images[index].contiguous(memory_format=memory_format)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = nn.functional.cross_entropy(net(x), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        weights.append(model.conv1.weight.detach().clone())
        if viz is not None:
            viz.on_step_end(step)
    return losses, weights


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png))).astype(np.int16)


def callback(net, log_dir, images, labels, probe_size: int = 4, **kwargs) -> CNNVizCallback:
    return CNNVizCallback(
        net,
        log_dir=log_dir,
        probe=(images[:probe_size], labels[:probe_size]),
        activation_layers=["conv1", "conv2"],
        kernel_layers=["conv1", "conv2"],
        gradcam_layers=["conv2"],
        every_n_steps=SCHEDULE,
        strict=True,
        **kwargs,
    )


def assert_dead_rates_match(run: dict, counter: PositiveCounter):
    for index, (name, dead) in enumerate((("conv1", DEAD_BN1), ("conv2", DEAD_CONV2))):
        series = run[f"cnnviz/dead_filters/{name}"]
        assert series["steps"] == [2, 4]
        for logged, (first, last) in zip(series["values"], ((1, 2), (3, 4))):
            # measured in float32, stored as float16 (snapshots/precision.py: a rate above 0 never stored as 0)
            expected = half(counter.window_rates(index, first, last), keep_nonzero=True)
            assert np.array_equal(logged, expected), (name, logged, expected)
            assert np.nonzero(logged == 0)[0].tolist() == dead  # the planted ones, and only those


# ------------------------------------------------------------------ (a) bf16 autocast
def test_bf16_autocast_training_is_measured_and_logged_in_float32(tmp_path, batch):
    images, labels = batch
    model = tiny()
    counter = PositiveCounter(
        [model.bn1, model.conv2]
    )  # registered first: sees the same output as the tracker's hook
    with callback(model, tmp_path, images, labels) as viz:
        _, weights = train(model, images, labels, viz, autocast=True)
    counter.remove()
    assert counter.dtypes == {torch.bfloat16}  # the hooks really saw bf16 activations
    run = read_logdir(str(tmp_path))["."]
    assert_dead_rates_match(run, counter)
    # a bf16 rate would be visibly different: the counts are not multiples of a power of two
    rates = run["cnnviz/dead_filters/conv1"]["values"][0]
    assert not np.array_equal(rates, torch.from_numpy(rates).bfloat16().float().numpy())

    kernels = run["cnnviz/kernels/conv1"]
    assert kernels["steps"] == [1, 2, 3, 4]
    for logged, weight in zip(kernels["values"], weights):
        assert weight.dtype == torch.float32 and np.array_equal(
            logged, half(weight.numpy())
        )  # stored as float16
    # the probe snapshots ran in float32 (outside autocast): activations and Grad-CAM equal an fp32 recomputation
    final = layer_activations(model, [model.conv1, model.conv2], images[:4])
    assert final[0].dtype == torch.float32
    for layer, activation in zip(("conv1", "conv2"), final):
        expected, _ = activation_grids(activation)
        pngs = run[f"cnnviz/activations/{layer}"]["values"][-1]
        for png, grid in zip(pngs, expected):
            assert np.abs(decode(png) - np.round(grid.numpy() * 255)).max() <= 1
    cam = grad_cam(model, "conv2", images[:4], labels[:4], normalize="none")
    assert np.allclose(run["cnnviz/gradcam_maps/conv2"]["values"][-1], cam.numpy(), atol=1e-6)


def test_snapshots_taken_inside_an_autocast_region_equal_the_float32_ones(tmp_path, batch):
    """``on_step_end`` called inside ``torch.autocast`` (the whole step wrapped) must log the same maps."""
    images, labels = batch
    model = tiny()
    with callback(model, tmp_path / "fp32", images, labels) as viz:
        viz.on_step_end(1)
    with (
        callback(model, tmp_path / "autocast", images, labels) as viz,
        torch.autocast("cpu", dtype=torch.bfloat16),
    ):
        viz.on_step_end(1)
    fp32, autocast = read_logdir(str(tmp_path / "fp32"))["."], read_logdir(str(tmp_path / "autocast"))["."]
    # computed in bf16 the maps differ by about 1% (activation PNGs by up to 6 of 255, Grad-CAM by 0.7% of its peak)
    for tag in ("cnnviz/gradcam_maps/conv2", "cnnviz/gradcam_info/conv2"):
        assert np.array_equal(autocast[tag]["values"][0], fp32[tag]["values"][0]), tag
    for layer in ("conv1", "conv2"):
        assert (
            autocast[f"cnnviz/activations/{layer}"]["values"][0]
            == fp32[f"cnnviz/activations/{layer}"]["values"][0]
        )  # same PNG bytes


# ------------------------------------------------------------------ (b) channels_last
def test_channels_last_model_logs_what_the_contiguous_model_logs(tmp_path, batch):
    images, labels = batch
    runs, counters = {}, {}
    for name, memory_format in (("contiguous", None), ("channels_last", torch.channels_last)):
        model = tiny()
        if memory_format is not None:
            model = model.to(memory_format=memory_format)
            assert (
                model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
                and not model.conv1.weight.is_contiguous()
            )
        counters[name] = PositiveCounter([model.bn1, model.conv2])
        probe = images if memory_format is None else images.contiguous(memory_format=memory_format)
        with callback(model, tmp_path / name, probe, labels) as viz:
            _, weights = train(model, images, labels, viz, memory_format=memory_format)
        counters[name].remove()
        runs[name] = read_logdir(str(tmp_path / name))["."]
        # logged in logical [out, in, kh, kw] order whatever the memory layout
        assert all(
            np.array_equal(logged, half(weight.contiguous().numpy()))
            for logged, weight in zip(runs[name]["cnnviz/kernels/conv1"]["values"], weights)
        )
        assert_dead_rates_match(runs[name], counters[name])
    assert counters["channels_last"].channels_last == {True} and counters["contiguous"].channels_last == {
        False
    }
    plain, last = runs["contiguous"], runs["channels_last"]
    assert {tag: series["steps"] for tag, series in plain.items()} == {
        tag: series["steps"] for tag, series in last.items()
    }
    for layer in ("conv1", "conv2"):
        for a, b in zip(
            plain[f"cnnviz/kernels/{layer}"]["values"], last[f"cnnviz/kernels/{layer}"]["values"]
        ):
            assert np.allclose(a, b, atol=1e-6)
        a, b = plain[f"cnnviz/dead_filters/{layer}"]["values"], last[f"cnnviz/dead_filters/{layer}"]["values"]
        assert np.array_equal(np.stack(a), np.stack(b))  # same sign of every activation
        for step_a, step_b in zip(
            plain[f"cnnviz/activations/{layer}"]["values"], last[f"cnnviz/activations/{layer}"]["values"]
        ):
            assert all(np.abs(decode(x) - decode(y)).max() <= 1 for x, y in zip(step_a, step_b))
    for a, b in zip(
        plain["cnnviz/gradcam_maps/conv2"]["values"], last["cnnviz/gradcam_maps/conv2"]["values"]
    ):
        assert np.allclose(a, b, atol=1e-5)


# ------------------------------------------------------------------ (c) torch.compile (inductor)
@pytest.fixture
def fresh_dynamo():
    """Each compile test starts from empty caches (and never runs into the recompile limit of ``Tiny.forward``)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    yield counters
    torch._dynamo.reset()


def eager_reference(tmp_path, images, labels, probe_size: int = 4):
    model = tiny()
    counter = PositiveCounter([model.bn1, model.conv2])
    with callback(model, tmp_path / "eager", images, labels, probe_size) as viz:
        losses, weights = train(model, images, labels, viz)
    counter.remove()
    return read_logdir(str(tmp_path / "eager"))["."], losses, counter


def assert_close_to_eager(run: dict, eager: dict):
    """Compiled (inductor) numerics differ from eager in the last bits only."""
    for layer in ("conv1", "conv2"):
        assert (
            run[f"cnnviz/kernels/{layer}"]["steps"]
            == eager[f"cnnviz/kernels/{layer}"]["steps"]
            == [1, 2, 3, 4]
        )
        for a, b in zip(run[f"cnnviz/kernels/{layer}"]["values"], eager[f"cnnviz/kernels/{layer}"]["values"]):
            assert np.allclose(a, b, rtol=2**-10, atol=1e-5)  # the last bits may round to neighbouring halves
        assert run[f"cnnviz/activations/{layer}"]["steps"] == [1, 2, 3, 4]
        for step_a, step_b in zip(
            run[f"cnnviz/activations/{layer}"]["values"], eager[f"cnnviz/activations/{layer}"]["values"]
        ):
            assert all(np.abs(decode(x) - decode(y)).max() <= 1 for x, y in zip(step_a, step_b))
        rates, expected = (
            np.stack(run[f"cnnviz/dead_filters/{layer}"]["values"]),
            np.stack(eager[f"cnnviz/dead_filters/{layer}"]["values"]),
        )
        assert np.abs(rates - expected).max() <= 2 / (
            2 * 4 * 12 * 12
        )  # at most 2 activations of a window flip sign
    assert run["cnnviz/gradcam_maps/conv2"]["steps"] == [1, 2, 3, 4]
    for a, b in zip(run["cnnviz/gradcam_maps/conv2"]["values"], eager["cnnviz/gradcam_maps/conv2"]["values"]):
        assert np.allclose(a, b, rtol=1e-3, atol=1e-6)


def test_compiled_model_is_measured_like_the_eager_one(tmp_path, batch, fresh_dynamo):
    images, labels = batch
    eager, eager_losses, _ = eager_reference(tmp_path, images, labels)

    model = tiny()
    counter = PositiveCounter(
        [model.bn1, model.conv2]
    )  # registered before compiling: inlined into the graph like ours
    compiled = torch.compile(model)
    with callback(compiled, tmp_path / "compiled", images, labels) as viz:
        assert viz.kernel_layers[0][1] is model.conv1
        losses, _ = train(compiled, images, labels, viz)
    counter.remove()
    plain_losses, _ = train(
        torch.compile(tiny()), images, labels
    )  # the same, compiled without callback or hooks
    counters = fresh_dynamo
    assert counters["stats"]["unique_graphs"] >= 2, dict(
        counters["stats"]
    )  # really compiled, with and without hooks
    assert not counters["graph_break"], dict(
        counters["graph_break"]
    )  # the counting hooks trace without a graph break

    assert losses == plain_losses  # the hooks change nothing in training
    assert np.allclose(losses, eager_losses, rtol=1e-5)
    run = read_logdir(str(tmp_path / "compiled"))["."]
    assert counter.steps[0] and len(counter.steps[0]) == STEPS
    assert_dead_rates_match(run, counter)  # exact: the very activations the compiled graph produced
    assert_close_to_eager(run, eager)


def compile_first(scenario: str, model: Tiny, images) -> nn.Module:
    """``warm``: the compiled model already ran (a sanity forward, a resumed run) before the callback is attached;
    ``sibling``: another instance of the same class was compiled and trained first in this process
    (a sweep, a notebook re-run): its code, traced without hooks, is reused for ``model``."""
    if scenario == "warm":
        compiled = torch.compile(model)
        compiled.train()
        compiled(images[:4])
        with torch.no_grad():
            (
                model.bn1.running_mean.zero_(),
                model.bn1.running_var.fill_(1),
                model.bn1.num_batches_tracked.zero_(),
            )
        return compiled
    train(torch.compile(tiny()), images, labels=torch.zeros(len(images), dtype=torch.long), steps=1)
    return torch.compile(model)


@pytest.mark.parametrize("scenario", ["warm", "sibling"])
def test_code_compiled_before_the_callback_still_runs_its_hooks(tmp_path, batch, fresh_dynamo, scenario):
    """torch.compile does not guard on empty hook dicts (``torch._dynamo.config.skip_nnmodule_hook_guards``):
    code traced before the callback's hooks existed runs without them, and no dead-filter window is ever logged."""
    images, labels = batch
    eager, eager_losses, _ = eager_reference(tmp_path, images, labels)
    model = tiny()
    compiled = compile_first(scenario, model, images)
    with callback(compiled, tmp_path / "compiled", images, labels) as viz:
        losses, _ = train(compiled, images, labels, viz)
    assert np.allclose(losses, eager_losses, rtol=1e-5)
    run = read_logdir(str(tmp_path / "compiled"))["."]
    assert "cnnviz/dead_filters/conv1" in run, "the dead-filter hooks never ran in the compiled code"
    for layer, dead in (("conv1", DEAD_BN1), ("conv2", DEAD_CONV2)):
        assert all(
            np.nonzero(rates == 0)[0].tolist() == dead
            for rates in run[f"cnnviz/dead_filters/{layer}"]["values"]
        )
    assert_close_to_eager(run, eager)


def test_model_compiled_in_place_is_measured_like_the_eager_one(tmp_path, batch, fresh_dynamo):
    """``model.compile()`` compiles ``model.__call__`` itself, so the callback's own probe forwards go through
    compiled code too: code traced at the construction-time probe check (2 images, eval mode, no hooks) is
    reused by the activation snapshot of a 2-image probe, without the snapshot's hooks; other probe sizes
    recompile at every snapshot (new hooks each time). Our forwards must run eagerly."""
    images, labels = batch
    eager, eager_losses, _ = eager_reference(tmp_path, images, labels, probe_size=2)
    model = tiny()
    model.compile()
    with callback(model, tmp_path / "compiled", images, labels, probe_size=2) as viz:
        losses, _ = train(model, images, labels, viz)
    assert np.allclose(losses, eager_losses, rtol=1e-5)
    # the training graph, traced once more when the dead-filter window goes from empty to counting; none for snapshots
    assert fresh_dynamo["stats"]["unique_graphs"] <= 2, dict(fresh_dynamo["stats"])
    assert_close_to_eager(read_logdir(str(tmp_path / "compiled"))["."], eager)
