"""Filter and class patterns leave the model, gradients, hooks and random state as they were,
and reject bad arguments clearly."""

import copy
import threading

import pytest
import torch
from torch import nn

from tb_cnnviz.analysis.patterns import (
    class_patterns,
    filter_patterns,
)
from tb_cnnviz.models import small_vgg

# ---------------------------------------------------------------- training safety


def _state(model: nn.Module):
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        sum(
            len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
            for m in model.modules()
        ),
    )


def _assert_same_state(before, after):
    assert before[0] == after[0] and before[1] == after[1] and before[3] == after[3]
    for a, b in zip(before[2], after[2]):
        assert (a is None and b is None) or torch.equal(a, b)


def _mixed_model() -> nn.Module:
    torch.manual_seed(0)
    model = small_vgg(width=8)
    model.train()
    model.features.bn2.eval()  # a user-frozen BN must stay frozen
    model.features.conv1.weight.requires_grad_(False)
    model.features.conv2.weight.grad = torch.full_like(model.features.conv2.weight, 0.25)
    return model


@pytest.mark.parametrize(
    "run",
    [
        lambda m: filter_patterns(m, "features.conv2", channels=[0, 1], size=16, steps=3),
        lambda m: filter_patterns(m, "features.conv2", channels=[0, 1], size=16, steps=3, param="pixel"),
        lambda m: class_patterns(m, [1, 2], size=16, steps=3),
    ],
)
def test_modes_grads_hooks_and_rng_untouched(run):
    model = _mixed_model()
    before = _state(model)
    rng = torch.get_rng_state()
    run(model)
    _assert_same_state(before, _state(model))
    assert torch.equal(torch.get_rng_state(), rng)


def test_background_thread_on_a_copy_consumes_no_global_randomness():
    """In a worker thread the RNG guard is off (restoring would rewind the training thread), so this checks
    that nothing draws from the global generator at all."""
    model = _mixed_model()
    copy_for_thread = copy.deepcopy(model)
    results = {}
    rng = torch.get_rng_state()

    def work():
        results["images"] = filter_patterns(
            copy_for_thread, "features.conv2", channels=[0, 1], size=16, steps=3
        )

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert torch.equal(torch.get_rng_state(), rng)
    same = filter_patterns(model, "features.conv2", channels=[0, 1], size=16, steps=3)
    torch.testing.assert_close(results["images"], same)
    assert model.training and not model.features.bn2.training


def test_cleanup_when_the_model_raises():
    model = _mixed_model()

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model.features.pool2 = Boom()  # runs before conv3
    before = _state(model)
    with pytest.raises(RuntimeError, match="boom"):
        filter_patterns(model, "features.conv3", channels=[0], size=16, steps=2)
    _assert_same_state(before, _state(model))


def test_grad_mode_of_the_caller_does_not_matter():
    torch.manual_seed(0)
    model = small_vgg(width=8).eval()
    reference = filter_patterns(model, "features.conv2", channels=[1], size=16, steps=3)
    with torch.no_grad():
        under_no_grad = filter_patterns(model, "features.conv2", channels=[1], size=16, steps=3)
    with torch.inference_mode():
        under_inference = filter_patterns(model, "features.conv2", channels=[1], size=16, steps=3)
    torch.testing.assert_close(under_no_grad, reference)
    torch.testing.assert_close(under_inference, reference)
    with torch.inference_mode():
        normalised = filter_patterns(
            model, "features.conv2", channels=[1], size=16, steps=3, mean=0.5, std=0.25
        )
    assert normalised.shape == (1, 3, 16, 16) and not normalised.is_inference()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(param="fft"), ValueError, "param: expected 'fourier' or 'pixel'"),
        (dict(channels=[0, 99]), ValueError, "channels: channel 99 is out of range"),
        (dict(channels=[1, 1]), ValueError, "channels: channels listed more than once"),
        (dict(channels=["a"]), TypeError, "channels: expected ints"),
        (dict(channels=[]), ValueError, "channels: expected at least one"),
        (dict(size=0), ValueError, "size: expected positive"),
        (dict(size="big"), TypeError, "size: expected an int"),
        (dict(steps=0), ValueError, "steps: expected an int >= 1"),
        (dict(lr=-1.0), ValueError, "lr: expected a positive number"),
        (dict(mean=[0.5, 0.5]), ValueError, "mean: expected a number or 3 values"),
        (dict(std=0.0), ValueError, "std: expected positive"),
        (dict(transforms="wobbly"), ValueError, "transforms: expected"),
        (dict(device="cuda"), ValueError, "device: the model's parameters are on cpu"),
        (dict(batch_size=0), ValueError, "batch_size: expected an int >= 1"),
        (dict(in_channels=0), ValueError, "in_channels: expected an int >= 1"),
    ],
)
def test_clear_errors_for_bad_arguments(kwargs, error, match):
    model = small_vgg(width=8)
    arguments = dict(size=8, steps=1)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        filter_patterns(model, "features.conv1", **arguments)


def test_clear_errors_for_bad_layers_and_classes():
    model = small_vgg(width=8)
    with pytest.raises(ValueError, match="layer: no layer named 'features.conv9'.*'features.conv1'"):
        filter_patterns(model, "features.conv9", size=8, steps=1)
    with pytest.raises(ValueError, match="layer: the module Conv2d is not part of the model"):
        filter_patterns(model, nn.Conv2d(3, 3, 1), size=8, steps=1)
    model.unused = nn.Conv2d(3, 3, 1)
    with pytest.raises(ValueError, match=r"layers: \['unused'\] never ran"):
        filter_patterns(model, "unused", size=8, steps=1)
    with pytest.raises(ValueError, match="classes: class 10 is out of range"):
        class_patterns(model, [10], size=8, steps=1)
    with pytest.raises(ValueError, match="in_channels: the model has no Conv2d"):
        filter_patterns(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), "1", size=2, steps=1)
