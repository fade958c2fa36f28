"""``pattern_channels`` picks which filters get a pattern: the first n, listed indices, the most active on the
probe images, or the filters the last dead-filter window found dead; the gallery's content ``channels`` names
the rendered ones, and bad values fail before training with the argument, the value and what was expected."""

import pytest
import torch
from support import read_logdir
from torch import nn

from tb_cnnviz import metadata, snapshots
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.snapshots.patterns import PatternChoice, PatternState, pattern_choice

MOST_ACTIVE = 2  # planted: the largest bias of conv 0
DEAD = 1  # planted: zero weights and a negative bias before a ReLU, so it never fires


def tiny_cnn() -> nn.Module:
    """conv(3->4) -> ReLU -> conv(4->3) -> ReLU -> pool -> linear: filter MOST_ACTIVE of conv 0 has the
    largest mean output on any image in [0, 1], filter DEAD outputs -1 everywhere (dead after the ReLU)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 3, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(3, 3),
    )
    with torch.no_grad():
        conv = model[0]
        conv.weight.mul_(0.1)  # |w . x| <= 27 * 0.1 / sqrt(27)-ish: well below the planted bias gap
        conv.bias.copy_(torch.tensor([0.0, -1.0, 3.0, 0.5]))
        conv.weight[DEAD].zero_()
    return model


def images(count: int = 8) -> torch.Tensor:
    return torch.rand((count, 3, 8, 8), generator=torch.Generator().manual_seed(1))


def rendered(summaries: list, layer: str = "0") -> dict:
    """The gallery content (channels, choice, note) of ``layer`` among ``summaries``."""
    for item in summaries:
        value = item.value[0]
        if value.tag == metadata.tag(metadata.PATTERNS, layer):
            return metadata.read_content(value.metadata.plugin_data.content)
    raise AssertionError(f"no gallery of {layer!r}")


def render(model, channels, state=None, reference=None) -> dict:
    settings = {
        "channels": channels,
        "size": 8,
        "steps": 2,
        "in_channels": 3,
        "mean": None,
        "std": None,
        "reference": reference,
    }
    inputs = snapshots.Inputs(model=model, layers=[("0", model[0])], settings=settings, state=state)
    return rendered(snapshots.patterns(inputs))


@pytest.mark.parametrize(
    "value, expected",
    [(3, [0, 1, 2]), (10, [0, 1, 2, 3]), ([3, 1], [3, 1]), (range(1, 3), [1, 2]), ((0,), [0])],
)
def test_rendered_channels_are_the_asked_ones(value, expected):
    content = render(tiny_cnn(), pattern_choice(value))
    assert content["channels"] == expected
    assert "note" not in content


def test_most_active_ranks_filters_by_mean_activation_on_the_probe():
    model = tiny_cnn()
    probe = images()
    content = render(model, "most_active:2", reference=probe)
    assert content["channels"][0] == MOST_ACTIVE and content["choice"] == "most_active"
    # the second is the next largest mean output, measured independently
    with torch.no_grad():
        means = model[0](probe).mean(dim=(0, 2, 3))
    assert content["channels"] == torch.argsort(means, descending=True)[:2].tolist()
    assert (
        render(model, "most_active", reference=probe)["channels"][-1] == DEAD
    )  # all four, least active last


def test_dead_renders_the_dead_filters_of_the_last_window_and_says_when_it_cannot():
    model = tiny_cnn()
    state = PatternState()
    first = render(model, "dead", state=state)
    assert first["channels"] == [0, 1, 2, 3] and "no dead-filter window has closed yet" in first["note"]
    state.dead, state.window_step = {"0": []}, 10
    none = render(model, "dead:2", state=state)
    assert none["channels"] == [0, 1] and "no dead filters in the window ending at step 10" in none["note"]


def test_the_callback_renders_the_planted_dead_filter_after_a_window(tmp_path):
    model = tiny_cnn()
    batch = images(16)
    viz = CNNVizCallback(
        model,
        log_dir=tmp_path,
        probe=(batch[:4], torch.zeros(4, dtype=torch.long)),
        dead_filter_layers=["0", "2"],
        pattern_layers=["0"],
        pattern_channels="dead",
        pattern_steps=2,
        pattern_size=8,
        every_n_steps={"dead_filters": 2, "patterns": 4},
        background=False,
        strict=True,
        overhead_budget=0,
    )
    with viz:
        for step in range(1, 5):
            model(batch)
            viz.on_step_end(step)
    (run,) = read_logdir(str(tmp_path)).values()
    gallery = run["cnnviz/patterns/0"]
    assert gallery["steps"][0] == 4
    assert gallery["content"]["channels"] == [DEAD] and gallery["content"]["choice"] == "dead"
    assert len(gallery["values"][0]) == 1


@pytest.mark.parametrize(
    "value, error, pattern",
    [
        (0, ValueError, r"pattern_channels: expected an int >= 1, got 0"),
        ("busiest", ValueError, r"pattern_channels: expected .*'most_active'.* got 'busiest'"),
        ("dead:0", ValueError, r"pattern_channels: expected .* got 'dead:0'"),
        ([1, -2], ValueError, r"pattern_channels: expected .* \(offending item: -2\)"),
        ([1, 1], ValueError, r"pattern_channels: filters listed more than once: \[1\]"),
        ([], ValueError, r"pattern_channels: expected .* got \[\]"),
        (2.5, TypeError, r"pattern_channels: expected .* got float 2.5"),
        (
            [0, 9],
            ValueError,
            r"pattern_channels: filter 9 is out of range for layer '0', which has 4 filters",
        ),
    ],
)
def test_bad_values_fail_before_training(tmp_path, value, error, pattern):
    with pytest.raises(error, match=pattern):
        CNNVizCallback(tiny_cnn(), log_dir=tmp_path, pattern_layers=["0"], pattern_channels=value)


def test_named_choices_need_what_they_rank_by(tmp_path):
    with pytest.raises(ValueError, match=r"pattern_channels: 'most_active' .* pass probe=\(images, labels\)"):
        CNNVizCallback(tiny_cnn(), log_dir=tmp_path, pattern_layers=["0"], pattern_channels="most_active")
    with pytest.raises(
        ValueError, match=r"pattern_channels: 'dead' .* \['0'\] are not among dead_filter_layers"
    ):
        CNNVizCallback(
            tiny_cnn(),
            log_dir=tmp_path,
            pattern_layers=["0"],
            dead_filter_layers=["2"],
            pattern_channels="dead",
        )


def test_choice_is_parsed_once():
    assert pattern_choice("most_active:5") == PatternChoice("most_active", 5)
    assert pattern_choice(pattern_choice(7)) == PatternChoice("first", 7)
