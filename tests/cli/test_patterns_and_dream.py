"""``tb-cnnviz patterns`` and ``tb-cnnviz dream``: galleries of chosen channels and classes, and the dream with
its gain checked against an independent recomputation; the dream snapshot is training-safe.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from cli_helpers import only_run, png, run
from support import read_logdir

from tb_cnnviz import image_files, metadata, snapshots
from tb_cnnviz.analysis.dream import deep_dream
from tb_cnnviz.models import small_vgg
from tb_cnnviz.snapshots.inputs import Inputs


def test_patterns_of_chosen_channels_and_classes(data, tmp_path, capsys):
    common = ("--size", "16", "--steps", "3", "--param", "pixel", "--logdir", tmp_path)
    for chosen in (("--layer", "features.conv2", "--channels", "1,3"), ("--classes", "0-1")):
        code, _, err = run(capsys, "patterns", data["random"], *chosen, *common)
        assert code == 0, err
    runs = read_logdir(str(tmp_path))
    assert len(runs) == 2
    layer = next(series for series in runs.values() if "cnnviz/patterns/features.conv2" in series)
    gallery = layer["cnnviz/patterns/features.conv2"]
    assert (
        gallery["content"]["channels"] == [1, 3]
        and [png(b).shape for b in gallery["values"][0]] == [(16, 16, 3)] * 2
    )
    reached = layer["cnnviz/pattern_values/features.conv2"]["values"][0]
    assert reached.shape == (2,) and np.isfinite(reached).all()
    classes = next(series for series in runs.values() if "cnnviz/patterns/logits" in series)
    assert classes["cnnviz/patterns/logits"]["content"]["channels"] == [0, 1]


def test_dream_writes_the_image_its_dream_and_the_gain(data, tmp_path, capsys):
    out_dir = tmp_path / "png"
    code, out, err = run(
        capsys,
        "dream",
        data["random"],
        data["images"][0],
        "--layer",
        "features.conv3,features.conv4",
        "--octaves",
        "2",
        "--steps",
        "2",
        "--logdir",
        tmp_path / "logs",
        "--out",
        out_dir,
    )
    assert code == 0, err
    change = float(out.split("mean absolute pixel change ")[1].split(",")[0])
    printed_gain = float(out.split("(gain x")[1].split(")")[0])
    assert change > 0.005
    series = only_run(
        tmp_path / "logs"
    )  # read back through TensorBoard's data provider, as the plugin reads it
    assert list(series) == [
        "cnnviz/dream/features.conv3+features.conv4"
    ]  # no probe, no Images-tab copy: one series
    dream = series["cnnviz/dream/features.conv3+features.conv4"]
    content = dream["content"]
    assert dream["steps"] == [0] and content["layers"] == ["features.conv3", "features.conv4"]
    assert (
        content["octaves"],
        content["octave_scale"],
        content["steps"],
        content["lr"],
        content["seed"],
        content["size"],
    ) == (2, 1.4, 2, 0.01, 0, [32, 32])
    original, dreamed = (png(blob) for blob in dream["values"][0])
    assert np.array_equal(original, data["dataset"].images[0])  # the file's pixels, unchanged
    assert abs(np.abs(dreamed / 255.0 - original / 255.0).mean() - change) < 0.01

    # Recompute independently: the same dream (deterministic for the seed), measured with plain forward hooks.
    model = small_vgg(width=8).eval()
    model.load_state_dict(torch.load(data["random"]))
    image = image_files.read_image(data["images"][0])
    again = deep_dream(model, image, ["features.conv3", "features.conv4"], octaves=2, steps=2, seed=0)
    assert np.array_equal(dreamed, (again.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))

    def objective(picture: torch.Tensor) -> float:
        outputs = []
        handles = [
            getattr(model.features, name).register_forward_hook(
                lambda _m, _i, output: outputs.append(output.clone())
            )
            for name in ("conv3", "conv4")
        ]
        try:
            with torch.no_grad():
                model(picture[None])
        finally:
            for handle in handles:
                handle.remove()
        return sum(float(output.norm()) / output.numel() ** 0.5 for output in outputs)

    before, after = objective(image), objective(again)
    assert content["objective"] == pytest.approx([before, after], rel=1e-5)
    assert content["gain"] == pytest.approx(after / before, rel=1e-5) and content["gain"] > 1.2
    assert printed_gain == pytest.approx(content["gain"], abs=0.005)
    from_pngs = objective(torch.tensor(dreamed).permute(2, 0, 1) / 255.0) / objective(
        torch.tensor(original).permute(2, 0, 1) / 255.0
    )
    assert from_pngs == pytest.approx(content["gain"], rel=0.02)  # what the panel shows has that gain too
    assert sorted(os.listdir(out_dir)) == [
        "dream_features.conv3+features.conv4.png",
        "dream_features.conv3+features.conv4_original.png",
    ]
    assert np.array_equal(png((out_dir / "dream_features.conv3+features.conv4.png").read_bytes()), dreamed)


def test_the_dream_snapshot_is_training_safe():
    torch.manual_seed(3)
    model = small_vgg(width=4).train()
    layers = [("features.conv2", model.features.conv2)]
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    state = torch.random.get_rng_state()
    inputs = Inputs(model=model, layers=layers, images=image[None], settings={"octaves": 1, "steps": 2})
    summaries = snapshots.dream(inputs)
    assert isinstance(summaries, list) and len(summaries) == 1
    before, after = metadata.read_content(summaries[0].value[0].metadata.plugin_data.content)["objective"]
    # The dream itself, recomputed (deterministic for the seed): the objective recorded is the dream's.
    dreamed = deep_dream(model, image, [model.features.conv2], octaves=1, steps=2, seed=0)
    assert model.training and all(module.training for module in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert torch.equal(torch.random.get_rng_state(), state)
    assert after > before > 0 and summaries[0].value[0].tag == "cnnviz/dream/features.conv2"
    assert torch.allclose(
        snapshots.dream_objective(model, [model.features.conv2], torch.stack([image, dreamed])),
        torch.tensor([before, after]),
    )
