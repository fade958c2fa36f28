"""Feature extraction: the default layer, batching, devices and the training-safety invariants."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tb_cnnviz.analysis.features import default_feature_layer, extract_features
from tb_cnnviz.models import small_vgg


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.fixture
def probe(shapes_test):
    images, labels = shapes_test.tensors(range(300))
    return images, labels


@pytest.fixture
def vgg16() -> nn.Module:
    """A seeded SmallVGG(width=16) in eval mode with non-trivial BatchNorm statistics (no training needed here)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = small_vgg(width=16)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_default_layer_is_the_input_of_the_last_linear(vgg16, probe):
    images, _ = probe
    model = vgg16
    assert default_feature_layer(model) == ("classifier", model.classifier)
    features = extract_features(model, images)
    assert features.shape == (300, 4 * 16) and features.dtype == torch.float32
    with torch.no_grad():
        expected = model.flatten(model.pool(model.features(images)))
    assert torch.equal(features, expected)
    # The codes are the classifier's input: applying it gives the model's logits.
    features, logits = extract_features(model, images, return_outputs=True)
    with torch.no_grad():
        assert torch.allclose(model.classifier(features), logits, atol=1e-5)
        assert torch.equal(logits, model(images))
    assert (features >= 0).all() and (
        features > 0
    ).float().mean() > 0.2  # after ReLU and pooling, not all zero


def test_batched_equals_unbatched(vgg16, probe):
    images, labels = probe
    whole = extract_features(vgg16, images, batch_size=300)
    assert torch.allclose(
        extract_features(vgg16, images[:12], batch_size=1), whole[:12], atol=1e-5, rtol=1e-5
    )
    assert torch.allclose(
        extract_features(vgg16, images[:100], batch_size=7), whole[:100], atol=1e-5, rtol=1e-5
    )
    assert torch.allclose(extract_features(vgg16, images, batch_size=64), whole, atol=1e-5, rtol=1e-5)
    loader = DataLoader(TensorDataset(images, labels), batch_size=50, shuffle=False)
    assert torch.allclose(extract_features(vgg16, loader), whole, atol=1e-5, rtol=1e-5)
    dicts = [{"image": images[i : i + 100], "label": labels[i : i + 100]} for i in range(0, 300, 100)]
    assert torch.allclose(extract_features(vgg16, dicts), whole, atol=1e-5, rtol=1e-5)


def test_training_safety(vgg16, probe):
    images, _ = probe
    model = vgg16.train()
    model.features.bn2.eval()  # a layer the user froze on purpose stays frozen
    flags = {name: m.training for name, m in model.named_modules()}
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.25)
    weights = [p.detach().clone() for p in model.parameters()]
    buffers = [b.detach().clone() for b in model.buffers()]
    rng = torch.random.get_rng_state()
    features = extract_features(model, images[:40], batch_size=16)
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert _no_hooks(model)
    assert all(torch.equal(p.grad, torch.full_like(p, 0.25)) for p in model.parameters())
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights))
    # Eval mode inside: BatchNorm running statistics were used, not updated.
    assert all(torch.equal(b, c) for b, c in zip(model.buffers(), buffers))
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert not features.requires_grad
    model.eval()
    assert torch.equal(features, extract_features(model, images[:40]))


class _Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = small_vgg(width=4)

    def forward(self, x):
        self.body(x)
        raise RuntimeError("boom after the classifier")


def test_hooks_removed_and_modes_restored_when_the_model_raises(probe):
    images, _ = probe
    model = _Exploding().train()
    with pytest.raises(RuntimeError, match="boom"):
        extract_features(model, images[:4])
    assert model.training and all(m.training for m in model.modules())
    assert _no_hooks(model)


def test_chosen_layers_and_pooling(probe):
    images, _ = probe
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = small_vgg(width=4, batch_norm=False).eval()  # conv -> in-place ReLU
    images = images[:20]
    conv = extract_features(model, images, "features.conv3")
    with torch.no_grad():
        expected = model.features[:6](images)  # conv1 relu1 conv2 relu2 pool2 conv3
    assert model.features[5] is model.features.conv3
    assert conv.shape == (20, 8 * 16 * 16)
    assert torch.equal(conv, expected.flatten(1))
    assert (conv < 0).any()  # the copy was taken before the in-place ReLU overwrote the map
    avg = extract_features(model, images, model.features.conv3, pool="avg")
    assert torch.allclose(avg, expected.mean(dim=(2, 3)), atol=1e-6)
    peak = extract_features(model, images, "features.conv3", pool="max")
    assert torch.equal(peak, expected.amax(dim=(2, 3)))
    pooled_input = extract_features(model, images, "flatten", point="input", pool="avg")
    assert pooled_input.shape == (20, 16)


def test_to_cpu_returns_float32(probe):
    images, _ = probe
    model = small_vgg(width=4).double().eval()
    on_device = extract_features(model, images[:8].double())
    assert on_device.dtype == torch.float64
    on_cpu = extract_features(model, images[:8].double(), to_cpu=True)
    assert on_cpu.dtype == torch.float32 and on_cpu.device.type == "cpu"
    assert torch.allclose(on_cpu.double(), on_device, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_results_stay_on_the_model_device(probe):
    images, _ = probe
    model = small_vgg(width=4).cuda().eval()
    features = extract_features(model, images[:16])
    assert features.is_cuda
    assert extract_features(model, images[:16], to_cpu=True).device.type == "cpu"


def test_errors_name_the_argument(probe):
    images, _ = probe
    model = small_vgg(width=4)
    no_linear = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
    with pytest.raises(ValueError, match="layer: the model has no nn.Linear"):
        extract_features(no_linear, images[:2])
    with pytest.raises(ValueError, match="layer: no layer named 'nope'"):
        extract_features(model, images[:2], "nope")
    with pytest.raises(ValueError, match="point: expected 'input' or 'output'"):
        extract_features(model, images[:2], point="middle")
    with pytest.raises(ValueError, match="batch_size: expected a positive integer"):
        extract_features(model, images[:2], batch_size=0)
    with pytest.raises(ValueError, match="pool: expected"):
        extract_features(model, images[:2], "features.conv1", pool="median")
    with pytest.raises(TypeError, match="inputs: expected a tensor"):
        extract_features(model, 3)
    with pytest.raises(ValueError, match="inputs: no batch was given"):
        extract_features(model, [])
    with pytest.raises(ValueError, match="layer: the module Conv2d is not part of the model"):
        extract_features(no_linear, images[:2], model.features.conv1)
    unused = nn.ModuleDict({"used": nn.Linear(4, 2), "spare": nn.Linear(4, 2)})
    unused.forward = lambda x: unused["used"](x)
    with pytest.raises(RuntimeError, match="'spare' was not called"):
        extract_features(unused, torch.zeros(3, 4), "spare")
    assert _no_hooks(model) and _no_hooks(no_linear)
