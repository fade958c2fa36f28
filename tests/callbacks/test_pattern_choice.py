"""``pattern_channels`` picks which filters get a pattern: the first n, listed indices, the most active on the
probe images, or the filters the last dead-filter window found dead; the gallery's content ``channels`` names
the rendered ones, and bad values fail before training with the argument, the value and what was expected."""

import json

import pytest
import torch
from support import plugin_client, read_logdir
from tensorboard.util import tensor_util
from torch import nn

from tb_cnnviz import metadata, snapshots
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.snapshots.patterns import PatternChoice, PatternState, chosen_filters, pattern_choice

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
    """The gallery content of ``layer`` among ``summaries``, with this step's ``pattern_channels`` rows as
    ``filters`` (filter indices) and ``asked`` (1: a filter asked for, 0: a stand-in)."""
    found = {}
    for item in summaries:
        value = item.value[0]
        if value.tag == metadata.tag(metadata.PATTERNS, layer):
            found.update(metadata.read_content(value.metadata.plugin_data.content))
        if value.tag == metadata.tag(metadata.PATTERN_CHANNELS, layer):
            rows = tensor_util.make_ndarray(value.tensor)
            found["filters"], found["asked"] = rows[0].astype(int).tolist(), rows[1].tolist()
    assert "channels" in found and "filters" in found, f"no gallery of {layer!r}"
    return found


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
    assert content["channels"] == content["filters"] == expected
    assert content["asked"] == [1] * len(expected) and content["choice"] in ("first", "list")


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
    assert first["filters"] == [0, 1, 2, 3] and first["asked"] == [0] * 4  # stand-ins: no window closed yet
    state.dead, state.window_step = {"0": []}, 10
    none = render(model, "dead:2", state=state)
    assert none["filters"] == [0, 1] and none["asked"] == [0, 0]
    reason = chosen_filters(pattern_choice("dead"), "0", model, model[0], None, state)[1]
    assert "no dead filters in the window ending at step 10" in reason
    state.dead = {"0": [1, 3]}
    assert render(model, "dead", state=state)["filters"] == [1, 3]


def test_the_callback_renders_the_planted_dead_filter_once_a_window_found_it(tmp_path):
    """Dead-filter windows close at steps 4 and 8, galleries at 2, 4, 6 and 8 (each before the window of
    its step): stand-ins at 2 and 4, the planted dead filter at 6 and 8, and the routes read each step's."""
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
        every_n_steps={"dead_filters": 4, "patterns": 2},
        background=False,
        strict=True,
        overhead_budget=0,
    )
    with viz:
        for step in range(1, 9):
            model(batch)
            viz.on_step_end(step)
    ((name, run),) = read_logdir(str(tmp_path)).items()
    assert run["cnnviz/patterns/0"]["steps"] == [2, 4, 6, 8]
    assert run["cnnviz/patterns/0"]["content"]["choice"] == "dead"
    assert [len(pngs) for pngs in run["cnnviz/patterns/0"]["values"]] == [4, 4, 1, 1]
    by_step = dict(zip(run["cnnviz/pattern_channels/0"]["steps"], run["cnnviz/pattern_channels/0"]["values"]))
    assert by_step[2].tolist() == [[0, 1, 2, 3], [0, 0, 0, 0]] and by_step[6].tolist() == [[DEAD], [1]]

    client, _ = plugin_client(str(tmp_path))

    def get(route: str, **params) -> dict:
        query = "&".join(f"{key}={value}" for key, value in {"run": name, "layer": "0", **params}.items())
        response = client.get(f"/data/plugin/cnnviz/api/patterns/{route}?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return json.loads(response.get_data(as_text=True))

    early, late = get("step", step=2), get("step", step=6)
    assert (early["channels"], early["stand_ins"], early["choice"]) == ([0, 1, 2, 3], 4, "dead")
    assert (late["channels"], late["stand_ins"]) == ([DEAD], 0)
    # the dead filter's value at each step comes from that step's own column (column 1 at 2 and 4, 0 later)
    values = run["cnnviz/pattern_values/0"]["values"]
    detail = get("filter", step=6, channel=DEAD)["values"]
    assert detail["steps"] == [2, 4, 6, 8]
    assert detail["values"] == pytest.approx(
        [values[0][1], values[1][1], values[2][0], values[3][0]], abs=1e-6
    )


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
