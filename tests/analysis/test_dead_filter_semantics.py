import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from tb_cnnviz.analysis.activation_points import smooth_threshold
from tb_cnnviz.analysis.dead_filters import DeadFilterTracker


def norm_model(norm: nn.Module, act: nn.Module) -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), norm, act).double()
    with torch.no_grad():
        model[0].weight[0] = 0
        model[0].bias[0] = 0
        model[1].bias[0] = -10.0
    return model


@pytest.mark.parametrize(
    "norm", [nn.BatchNorm2d(4), nn.SyncBatchNorm(4), FrozenBatchNorm2d(4)], ids=["bn", "syncbn", "frozen"]
)
def test_dead_relu_behind_any_norm_is_exact(norm):
    model = norm_model(norm, nn.ReLU(inplace=True))
    with DeadFilterTracker(model, [model[0]]) as tracker:
        model.train()
        model(torch.randn(4, 3, 12, 12, dtype=torch.float64))
    rate = tracker.rates()[0]
    assert tracker.semantics == ["relu"] and rate[0] == 0 and (rate[1:] > 0).all()


@pytest.mark.parametrize("act", [nn.SiLU(), nn.GELU()], ids=["silu", "gelu"])
def test_smooth_is_inactive_and_matches_a_direct_computation(act):
    model = norm_model(nn.BatchNorm2d(4), act)
    seen = []
    model[1].register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with DeadFilterTracker(model, [model[0]]) as tracker:
        model.train()
        model(torch.randn(4, 3, 12, 12, dtype=torch.float64))
    threshold = smooth_threshold(type(act)().forward)
    expected = (seen[-1] > threshold).double().mean(dim=(0, 2, 3))
    assert tracker.semantics == ["smooth"]
    assert torch.allclose(tracker.rates()[0].double(), expected, atol=1e-6) and expected[0] == 0


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc1 = nn.Conv2d(4, 2, 1)
        self.fc2 = nn.Conv2d(2, 4, 1)

    def forward(self, x):
        y = self.bn(self.conv(x))
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return F.relu(y + x) * gate


def test_residual_gate_and_head_are_not_filters():
    model = Block().double()
    tracker = DeadFilterTracker(model, [model.conv, model.fc1, model.fc2])
    assert tracker.semantics == ["residual", "head", "gate"]
    tracker.remove()


def test_convnext_like_block_without_relu_is_none():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(1, 8), nn.Conv2d(8, 8, 1)).double()
    with DeadFilterTracker(model, [model[0], model[2]]) as tracker:
        assert tracker.semantics == ["none", "none"]


def test_left_out_semantics_get_no_hooks():
    model = Block().double()
    with DeadFilterTracker(model, [model.conv, model.fc1, model.fc2], leave_out=("gate", "head")) as tracker:
        assert tracker.kept == [0] and tracker.semantics == ["residual"]
        assert len(tracker.points) == 1 and not model.fc1._forward_hooks and not model.fc2._forward_hooks
        model.train()
        model(torch.randn(2, 4, 6, 6, dtype=torch.float64))
        assert len(tracker.rates()) == 1 and tracker.rates()[0].shape == (4,)
