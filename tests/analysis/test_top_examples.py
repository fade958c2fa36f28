"""Streaming top-k examples per filter against brute force, and receptive fields against known values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from tb_cnnviz.analysis.safety import capture_outputs
from tb_cnnviz.analysis.top_examples import ReceptiveField, TopExamples, receptive_field
from tb_cnnviz.models import small_vgg


def brute_force(activations: torch.Tensor, ids: torch.Tensor, k: int):
    """Per filter: images ranked by (max activation desc, id asc); the first maximal position in row-major order."""
    count, filters, _, width = activations.shape
    flat = activations.flatten(2)
    flat = torch.where(torch.isnan(flat), torch.full_like(flat, -math.inf), flat)
    values, ids_out, positions = [], [], []
    for c in range(filters):
        entries = []
        for n in range(count):
            row = flat[n, c].tolist()
            best = max(row)
            first = row.index(best)
            entries.append((-best, int(ids[n]), first))
        entries.sort()
        entries = entries[:k]
        pad = k - len(entries)
        values.append([-e[0] for e in entries] + [-math.inf] * pad)
        ids_out.append([e[1] for e in entries] + [-1] * pad)
        positions.append([[e[2] // width, e[2] % width] for e in entries] + [[-1, -1]] * pad)
    return torch.tensor(values), torch.tensor(ids_out), torch.tensor(positions)


def stream(activations, ids, sizes, k, images=None, field=None, order=None):
    top = TopExamples(k=k, receptive_field=field)
    bounds = torch.tensor([0] + list(sizes)).cumsum(0).tolist()
    batches = list(zip(bounds[:-1], bounds[1:]))
    for index in order or range(len(batches)):
        start, stop = batches[index]
        top.update(activations[start:stop], ids[start:stop], None if images is None else images[start:stop])
    return top


@pytest.fixture
def tied_activations():
    """Small integers, so many images tie on their maximum and many positions tie inside a map."""
    generator = torch.Generator().manual_seed(0)
    activations = torch.randint(0, 5, (50, 6, 4, 5), generator=generator).float()
    activations[3, 2] = float("nan")  # a whole NaN map scores -inf
    activations[7, 1, 0, 0] = float("nan")  # one NaN position is ignored
    ids = torch.randperm(200, generator=generator)[:50]  # neither sorted nor contiguous
    return activations, ids


def test_streaming_equals_brute_force_with_ties(tied_activations):
    activations, ids = tied_activations
    expected_values, expected_ids, expected_positions = brute_force(activations, ids, 9)
    assert (expected_values[:, 0] == 4).all() and (expected_values == 4).sum() > 30  # ties really happen
    for sizes in ([50], [7, 13, 1, 29], [1] * 50):
        top = stream(activations, ids, sizes, 9)
        assert torch.equal(top.values, expected_values)
        assert torch.equal(top.image_ids, expected_ids)
        assert torch.equal(top.positions, expected_positions)
        assert top.count == 50
    # The batch order does not matter either (ties go by image id, not by arrival).
    shuffled = stream(activations, ids, [7, 13, 1, 29], 9, order=[3, 1, 0, 2])
    assert torch.equal(shuffled.image_ids, expected_ids) and torch.equal(
        shuffled.positions, expected_positions
    )


def test_fewer_images_than_k_leaves_empty_slots(tied_activations):
    activations, ids = tied_activations
    top = stream(activations[:5], ids[:5], [2, 3], 8)
    expected_values, expected_ids, expected_positions = brute_force(activations[:5], ids[:5], 8)
    assert torch.equal(top.values, expected_values) and torch.equal(top.image_ids, expected_ids)
    assert (top.image_ids[:, 5:] == -1).all() and (top.positions[:, 5:] == -1).all()
    assert torch.isinf(top.values[:, 5:]).all()
    # A NaN map scores -inf but still beats an empty slot.
    assert int(ids[3]) in top.image_ids[2].tolist()


def test_real_conv_activations_and_crops(shapes_test):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = small_vgg(width=8).eval()
    images, _ = shapes_test.tensors(range(200))
    ids = torch.arange(1000, 1200)
    layer = model.features.conv3
    field = receptive_field(model, "features.conv3")
    assert field == ReceptiveField(size=(10, 10), stride=(2, 2), offset=(-4, -4))
    context, outputs = capture_outputs([layer], transform=lambda t: t.detach().clone())
    top = TopExamples(k=9, receptive_field=field)
    everything = []
    with context, torch.no_grad():
        for start in range(0, 200, 64):
            model(images[start : start + 64])
            everything.append(outputs[0])
            top.update(outputs[0], ids[start : start + 64], images[start : start + 64])
    activations = torch.cat(everything)
    expected_values, expected_ids, expected_positions = brute_force(activations, ids, 9)
    assert torch.equal(top.values, expected_values)
    assert torch.equal(top.image_ids, expected_ids)
    assert torch.equal(top.positions, expected_positions)
    # Crops kept while streaming equal crops cut afterwards from the probe set, and a manual slice.
    crops = top.crops()
    assert crops.shape == (16, 9, 3, 10, 10)
    probe = torch.zeros(1200, 3, 32, 32)
    probe[1000:] = images
    assert torch.equal(crops, top.crops(probe))
    boxes = top.boxes()
    for c, rank in [(0, 0), (3, 4), (15, 8)]:
        row, col = top.positions[c, rank].tolist()
        x0, y0, x1, y1 = field.window(row, col, (32, 32))
        assert boxes[c, rank].tolist() == [x0, y0, x1, y1]
        image = images[int(top.image_ids[c, rank]) - 1000]
        assert torch.equal(crops[c, rank], image[:, y0:y1, x0:x1])


def test_crop_window_slides_inside_the_image():
    field = ReceptiveField(size=(10, 10), stride=(2, 2), offset=(-4, -4))
    assert field.box(0, 0) == (-4, -4, 6, 6)
    assert field.window(0, 0, (32, 32)) == (0, 0, 10, 10)
    assert field.window(15, 15, (32, 32)) == (22, 22, 32, 32)  # box (26, 26, 36, 36) slides left/up
    assert field.window(5, 7, (32, 32)) == (10, 6, 20, 16)
    big = ReceptiveField(size=(40, 40), stride=(8, 8), offset=(-10, -10))
    assert big.window(1, 2, (32, 32)) == (0, 0, 32, 32)


def test_without_receptive_field_crops_are_whole_images(tied_activations):
    activations, ids = tied_activations
    images = torch.rand(50, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    top = stream(activations, ids, [20, 30], 3, images=images)
    position_of = {int(i): n for n, i in enumerate(ids)}
    for c in range(6):
        for rank in range(3):
            assert torch.equal(top.crops()[c, rank], images[position_of[int(top.image_ids[c, rank])]])


# --------------------------------------------------------------------------- receptive fields


def test_receptive_field_known_values():
    model = small_vgg(width=4)
    expected = {
        "features.conv1": ((3, 3), (1, 1), (-1, -1)),
        "features.conv2": ((5, 5), (1, 1), (-2, -2)),
        "features.pool2": ((6, 6), (2, 2), (-2, -2)),
        "features.conv4": ((14, 14), (2, 2), (-6, -6)),
        "features.conv5": ((24, 24), (4, 4), (-10, -10)),
        "features.bn5": ((24, 24), (4, 4), (-10, -10)),
    }
    for name, (size, stride, offset) in expected.items():
        assert receptive_field(model, name) == ReceptiveField(size, stride, offset), name
    # Published values: ResNet-18 layer4 435 px, stride 32 (shortcut convs skipped); AlexNet conv5 163 px, stride 16.
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        resnet = torchvision.models.resnet18(weights=None)
        alexnet = torchvision.models.alexnet(weights=None)
    assert receptive_field(resnet, "layer4.1.conv2", (3, 224, 224)).size == (435, 435)
    assert receptive_field(resnet, "layer4.1.conv2", (3, 224, 224)).stride == (32, 32)
    assert receptive_field(resnet, "layer2", (3, 224, 224)).size == (99, 99)
    assert receptive_field(alexnet, "features.10", (3, 224, 224)) == ReceptiveField(
        (163, 163), (16, 16), (-66, -66)
    )


def test_receptive_field_matches_gradient_support():
    """With positive weights and inputs every path is open, so the input-gradient support is exactly the field."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=2, dilation=2),
        nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(4, 4, (5, 3), stride=(2, 1), padding=(2, 0)),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding="same"),
    )
    with torch.no_grad():
        for module in model:
            if isinstance(module, nn.Conv2d):
                module.weight.abs_().add_(0.1)
                module.bias.zero_()
    field = receptive_field(model, model[6], (3, 29, 27))
    x = torch.ones(1, 3, 29, 27, requires_grad=True)
    out = model(x)
    assert out.shape[-2:] == (8, 12)
    for row, col in [(0, 0), (3, 5), (7, 11), (4, 0)]:
        (gradient,) = torch.autograd.grad(out[0, 1, row, col], x, retain_graph=True)
        support = gradient[0].abs().sum(0) > 0
        rows = support.any(1).nonzero().flatten()
        cols = support.any(0).nonzero().flatten()
        x0, y0, x1, y1 = field.box(row, col)
        assert (int(rows.min()), int(rows.max()) + 1) == (max(y0, 0), min(y1, 29)), (row, col)
        assert (int(cols.min()), int(cols.max()) + 1) == (max(x0, 0), min(x1, 27)), (row, col)
    # size: 1 + 2 + 4 (dilated) + 2 (pool) + (5 - 1) * 2 | (3 - 1) * 2 + (3 - 1) * jump; offset: -sum(padding * jump)
    assert field == ReceptiveField(
        size=(25, 17), stride=(4, 2), offset=(-1 - 2 - 1 - 2 * 2 - 1 * 4, -1 - 2 - 1 - 0 - 1 * 2)
    )


class _FunctionalPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(F.max_pool2d(self.conv1(x), 2))


def test_receptive_field_refuses_what_it_cannot_see_and_is_training_safe():
    model = _FunctionalPool().train()
    with pytest.raises(ValueError, match="functional pooling"):
        receptive_field(model, "conv2")
    assert model.training and model.conv1.training
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="no layer named 'conv9'"):
        receptive_field(model, "conv9")
    with pytest.raises(ValueError, match="input_shape"):
        receptive_field(model, "conv1", (32, 32))


def test_update_validates_its_arguments(tied_activations):
    activations, ids = tied_activations
    with pytest.raises(ValueError, match="k: expected a positive integer"):
        TopExamples(k=0)
    top = TopExamples(k=3)
    with pytest.raises(RuntimeError, match="no update yet"):
        _ = top.values
    with pytest.raises(ValueError, match="image_ids: an id appears more than once"):
        top.update(activations[:3], [1, 2, 1])
    with pytest.raises(ValueError, match="image_ids: expected 3 ids"):
        top.update(activations[:3], [1, 2])
    with pytest.raises(ValueError, match="activations: expected"):
        top.update(activations[0], [1])
    top.update(activations[:3], [1, 2, 3])
    with pytest.raises(ValueError, match=r"activations: expected \[N, 6, 4, 5\]"):
        top.update(activations[3:5, :4], [4, 5])
    with pytest.raises(ValueError, match="images: pass images on every update"):
        top.update(activations[3:5], [4, 5], torch.zeros(2, 3, 8, 8))
    with pytest.raises(RuntimeError, match="no images were passed"):
        top.crops()
    top.reset()
    with pytest.raises(RuntimeError):
        _ = top.values


def test_linear_activations_and_no_grad():
    scores = torch.tensor([[1.0, 5.0], [3.0, 5.0], [2.0, 0.0]], requires_grad=True)
    top = TopExamples(k=2)
    top.update(scores * 1, [10, 11, 12])
    assert top.image_ids.tolist() == [[11, 12], [10, 11]]
    assert top.values.tolist() == [[3.0, 2.0], [5.0, 5.0]]
    assert not top.values.requires_grad and scores.grad is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_state_stays_on_the_device(tied_activations):
    activations, ids = tied_activations
    top = stream(activations.cuda(), ids.cuda(), [20, 30], 4, images=torch.rand(50, 3, 8, 8).cuda())
    assert top.values.is_cuda and top.image_ids.is_cuda and top.crops().is_cuda
    expected_values, expected_ids, _ = brute_force(activations, ids, 4)
    assert torch.equal(top.values.cpu(), expected_values) and torch.equal(top.image_ids.cpu(), expected_ids)
