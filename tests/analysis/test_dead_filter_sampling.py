"""Counting dead-filter statistics on a sample of the training batches (``count_every``)."""

import pytest
import torch
from torch import nn

from tb_cnnviz.analysis.dead_filters import DeadFilterTracker


def tiny_model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3), nn.ReLU())
    with torch.no_grad():
        model[0].bias[2] = -1e6  # planted dead filter
    return model.double().train()


def batches(count: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(2, 3, 8, 8, generator=generator, dtype=torch.float64) for _ in range(count)]


def test_every_kth_training_forward_is_counted_and_rates_are_those_of_the_counted_batches():
    model = tiny_model()
    inputs = batches(7)
    with DeadFilterTracker(model, [model[0], model[2]], count_every=3) as tracker:
        for x in inputs:
            model(x)
        rates = tracker.rates()
        assert (tracker.forwards, tracker.batches) == (7, 3)  # forwards 0, 3 and 6
    counted = torch.cat([inputs[0], inputs[3], inputs[6]])
    with torch.no_grad():
        first = model[0](counted)
        second = model[2](model[1](first))
    torch.testing.assert_close(rates[0], (first > 0).double().mean(dim=(0, 2, 3)).float(), rtol=0, atol=0)
    torch.testing.assert_close(rates[1], (second > 0).double().mean(dim=(0, 2, 3)).float(), rtol=0, atol=0)
    assert torch.nonzero(rates[0] == 0).flatten().tolist() == [2]  # the planted filter stays exact


def test_eval_and_no_grad_forwards_neither_count_nor_advance_the_sample():
    model = tiny_model()
    inputs = batches(4)
    with DeadFilterTracker(model, [model[0]], count_every=2) as tracker:
        model(inputs[0])  # counted
        with torch.no_grad():
            model(inputs[1])
        model.eval()
        model(inputs[1])
        model.train()
        model(inputs[2])  # not counted (second training forward)
        model(inputs[3])  # counted
        (rate,) = tracker.rates()
        assert (tracker.forwards, tracker.batches) == (3, 2)
    with torch.no_grad():
        expected = (model[0](torch.cat([inputs[0], inputs[3]])) > 0).double().mean(dim=(0, 2, 3)).float()
    torch.testing.assert_close(rate, expected, rtol=0, atol=0)


def test_the_sample_can_change_between_windows_and_reset_starts_over():
    model = tiny_model()
    with DeadFilterTracker(model, [model[0]]) as tracker:
        for x in batches(3):
            model(x)
        assert tracker.batches == 3
        tracker.reset()
        tracker.set_count_every(4)
        for x in batches(5):
            model(x)
        assert (tracker.forwards, tracker.batches) == (5, 2)  # forwards 0 and 4 of the new window


def test_hooks_are_all_removed():
    model = tiny_model()
    tracker = DeadFilterTracker(model, [model[0], model[2]], count_every=2)
    tracker.remove()
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_count_every_must_be_a_positive_int(bad):
    model = tiny_model()
    with pytest.raises(ValueError, match=r"count_every: expected an int >= 1, got"):
        DeadFilterTracker(model, [model[0]], count_every=bad)


def test_the_counting_time_is_measured_only_when_asked_and_only_on_counted_batches():
    model = tiny_model()
    inputs = batches(4)
    with DeadFilterTracker(model, [model[0], model[2]], count_every=2, timed=True) as timed:
        model(inputs[0])
        after_counted = timed.seconds
        model(inputs[1])  # not counted: no time added
        assert after_counted > 0 and timed.seconds == after_counted
    with DeadFilterTracker(model, [model[0]]) as untimed:
        model(inputs[2])
        assert untimed.batches == 1 and untimed.seconds == 0.0


def test_counting_hooks_are_attached_only_for_the_forwards_that_count():
    """An uncounted batch pays no hook dispatch on the conv layers; every hook goes with remove()."""
    model = tiny_model()
    attached = []
    model[2].register_forward_pre_hook(lambda module, _: attached.append(len(model[0]._forward_hooks)))
    inputs = batches(5)
    tracker = DeadFilterTracker(model, [model[0]], count_every=2)
    for x in inputs:
        model(x)
    assert attached == [1, 0, 1, 0, 1]
    tracker.set_count_every(1)  # back to every batch: attached for good (a compiled step traces them once)
    model(inputs[0])
    with torch.no_grad():
        model(inputs[1])
    assert attached[-2:] == [1, 1] and tracker.batches == 4
    tracker.remove()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in (model, model[0]))
