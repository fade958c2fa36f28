import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from tb_cnnviz.analysis.dead_filters import DeadFilterTracker, activation_rates
from tb_cnnviz.analysis.layers import activation_point


def plant_dead(conv: nn.Conv2d, filters: list[int]) -> None:
    with torch.no_grad():
        conv.bias[filters] = -1e6


class ConvReLU(nn.Module):
    """conv1 -> in-place ReLU module -> conv2 -> F.relu in forward."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 6, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv2(self.relu(self.conv1(x)))).mean(dim=(2, 3))


def train_forward(model, tracker, batches=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(batches):
        model(torch.randn(4, 3, 16, 16, generator=generator))


def test_planted_dead_filters_are_reported_exactly():
    torch.manual_seed(0)
    model = ConvReLU()
    plant_dead(model.conv1, [1, 5])
    plant_dead(model.conv2, [0])
    with DeadFilterTracker(model, [model.conv1, model.conv2]) as tracker:
        train_forward(model, tracker)
        rates1, rates2 = tracker.rates()
    assert torch.nonzero(rates1 == 0).flatten().tolist() == [1, 5]
    assert torch.nonzero(rates2 == 0).flatten().tolist() == [0]
    # live filters of random convs fire on roughly half the positions
    assert rates1[[0, 2, 3, 4, 6, 7]].min() > 0.2
    assert tracker.batches == 3


def test_rates_equal_a_direct_computation():
    torch.manual_seed(1)
    model = ConvReLU()
    images = torch.randn(5, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    with DeadFilterTracker(model, [model.conv1]) as tracker:
        model.train()
        model(images[:2])
        model(images[2:])
        (rate,) = tracker.rates()
    with torch.no_grad():
        expected = (model.conv1(images) > 0).float().mean(dim=(0, 2, 3))
    assert torch.allclose(rate, expected, atol=1e-6)
    assert torch.allclose(activation_rates(model, [model.conv1], images)[0], expected, atol=1e-6)


def test_eval_and_no_grad_forwards_are_not_counted():
    model = ConvReLU()
    with DeadFilterTracker(model, [model.conv1]) as tracker:
        model.eval()
        model(torch.randn(2, 3, 8, 8))
        model.train()
        with torch.no_grad():
            model(torch.randn(2, 3, 8, 8))
        assert tracker.rates() == [None] and tracker.batches == 0


def test_conv_bn_relu_is_measured_after_the_norm_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True))
    assert activation_point(model, model[0]) is model[1]
    with torch.no_grad():
        model[1].bias[2] = -1e6  # the BN shift kills filter 2, whatever the conv does
    with DeadFilterTracker(model, [model[0]]) as tracker:
        model.train()
        model(torch.randn(8, 3, 10, 10))
        (rate,) = tracker.rates()
    assert torch.nonzero(rate == 0).flatten().tolist() == [2]
    # after BN in training mode every other channel is zero-mean: about half the positions are positive
    assert ((rate[[0, 1, 3]] - 0.5).abs() < 0.15).all()


def test_resnet_block_with_a_reused_inplace_relu():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    block = model.layer1[0]
    assert (
        activation_point(model, block.conv1) is block.bn1
        and activation_point(model, block.conv2) is block.bn2
    )
    with torch.no_grad():
        block.bn1.bias[[3, 7]] = -1e6
    with DeadFilterTracker(model, [block.conv1, block.conv2]) as tracker:
        model.train()
        model(torch.randn(2, 3, 64, 64))
        rate1, rate2 = tracker.rates()
    assert torch.nonzero(rate1 == 0).flatten().tolist() == [3, 7]
    assert (rate2 > 0).all()


def test_hooks_are_removed():
    model = ConvReLU()
    tracker = DeadFilterTracker(model, [model.conv1, model.conv2])
    assert len(model.conv1._forward_hooks) == 1
    tracker.remove()
    assert not model.conv1._forward_hooks and not model.conv2._forward_hooks


def test_positive_counts_match_a_plain_count_for_every_layout():
    from tb_cnnviz.analysis.dead_filters import positive_counts

    value = torch.randn(3, 5, 7, 6, generator=torch.Generator().manual_seed(0))
    value[:, 2] = -1.0
    value[0, 4, 1, 1] = 0.0  # zero is not positive
    expected = (value > 0).sum(dim=(0, 2, 3)).float()
    for layout in (value, value.to(memory_format=torch.channels_last), value.half(), value.transpose(2, 3)):
        assert torch.equal(positive_counts(layout), expected)
    assert positive_counts(value)[2] == 0
    value[1, 3, 0, 0] = float("nan")
    value[0, 0, 2, 2] = float("inf")
    counts = positive_counts(value)
    assert torch.isnan(counts[[0, 3]]).all() and torch.equal(counts[[1, 2, 4]], expected[[1, 2, 4]])
