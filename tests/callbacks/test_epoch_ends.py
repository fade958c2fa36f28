"""The run's own records the tab lines runs up with: ``epochs`` (the step that ended each epoch, from
``on_epoch_end`` and Lightning's epoch hook) and ``layer_order`` (the logged layers in the model's order);
``api/runs/list`` serves each run's ``epoch_ends``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support import TwoConvNet, consecutive_batches, fit_with_callback, plugin_client, read_logdir
from torch import nn

from tb_cnnviz.callbacks import CNNVizCallback

P = "/data/plugin/cnnviz"


def stem_first() -> nn.Module:
    """Two convs whose names sort against the model's order: ``stem`` runs (and is registered) before
    ``body``, while the natural order of the names puts ``body`` first."""
    return TwoConvNet("stem", "body", classes=3)


def _epochs_loop(log_dir: str, steps_per_epoch: int, epochs: int) -> list[int]:
    """A plain loop of ``epochs`` epochs (global step from 1) calling on_epoch_end after each; returns the
    steps at which the loop ended its epochs."""
    torch.manual_seed(0)
    model = stem_first()
    generator = torch.Generator().manual_seed(0)
    total = steps_per_epoch * epochs
    images = torch.randn(4 * total, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 3, (4 * total,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    ends = []
    with CNNVizCallback(
        model, log_dir=log_dir, kernel_layers=["body", "stem"], every_n_steps=5, strict=True
    ) as viz:
        for epoch in range(epochs):
            first = epoch * steps_per_epoch + 1
            steps = range(first, first + steps_per_epoch)
            fit_with_callback(model, viz, optimizer, steps, consecutive_batches(images, labels, 4))
            viz.on_epoch_end(steps[-1])
            viz.on_epoch_end(steps[-1])  # called twice for one epoch end (two hooks): logged once
            ends.append(steps[-1])
    return ends


def test_epoch_ends_are_logged_at_the_steps_the_loop_ended_its_epochs_and_listed(tmp_path):
    ends = _epochs_loop(str(tmp_path / "run"), steps_per_epoch=7, epochs=3)
    assert ends == [7, 14, 21]
    series = read_logdir(str(tmp_path))["run"]["cnnviz/epochs"]
    assert series["steps"] == ends
    assert [v.tolist() for v in series["values"]] == [[1.0], [2.0], [3.0]]  # epochs completed

    client, _ = plugin_client(str(tmp_path))
    runs = json.loads(client.get(f"{P}/api/runs/list").get_data())["runs"]
    assert [(run["name"], run["epoch_ends"]) for run in runs] == [("run", [7, 14, 21])]


def test_a_run_without_epochs_lists_none(tmp_path):
    torch.manual_seed(0)
    model = stem_first()
    images = torch.randn(12, 3, 8, 8)
    labels = torch.randint(0, 3, (12,))
    with CNNVizCallback(model, log_dir=str(tmp_path / "steps_only"), every_n_steps=2) as viz:
        fit_with_callback(
            model,
            viz,
            torch.optim.SGD(model.parameters(), lr=0.01),
            range(1, 4),
            consecutive_batches(images, labels, 4),
        )
    assert "cnnviz/epochs" not in read_logdir(str(tmp_path))["steps_only"]
    client, _ = plugin_client(str(tmp_path))
    runs = json.loads(client.get(f"{P}/api/runs/list").get_data())["runs"]
    assert runs[0]["epoch_ends"] == []


def test_a_resumed_run_goes_on_counting_its_epochs(tmp_path):
    torch.manual_seed(0)
    model = stem_first()
    images, labels = torch.randn(40, 3, 8, 8), torch.randint(0, 3, (40,))
    batch = consecutive_batches(images, labels, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with CNNVizCallback(model, log_dir=str(tmp_path / "r"), every_n_steps=5) as viz:
        fit_with_callback(model, viz, optimizer, range(1, 6), batch)
        viz.on_epoch_end(5)
        state = viz.state_dict()
    with CNNVizCallback(model, log_dir=str(tmp_path / "r"), every_n_steps=5) as viz:
        viz.load_state_dict(state)
        viz.on_epoch_end(5)  # the epoch end the checkpoint already holds: not logged again
        fit_with_callback(model, viz, optimizer, range(6, 11), batch)
        viz.on_epoch_end(10)
    series = read_logdir(str(tmp_path))["r"]["cnnviz/epochs"]
    assert series["steps"] == [5, 10]
    assert [v.tolist() for v in series["values"]] == [[1.0], [2.0]]


def test_layer_order_lists_the_logged_layers_in_the_model_s_order(tmp_path):
    _epochs_loop(str(tmp_path / "run"), steps_per_epoch=2, epochs=1)
    series = read_logdir(str(tmp_path))["run"]["cnnviz/layer_order"]
    assert series["steps"] == [1]  # once, at the first step
    # kernel_layers were given as ["body", "stem"]; every conv has dead-filter statistics. No probe image to
    # run: the order of named_modules() (stem registered first), not run (-1).
    assert series["content"]["layers"] == ["stem", "body"] and series["content"]["order"] == "registration"
    registered = list(dict(stem_first().named_modules()))
    expected = [[-1, registered.index("stem")], [-1, registered.index("body")]]
    np.testing.assert_array_equal(series["values"][0], np.array(expected, dtype=np.float32))
    client, _ = plugin_client(str(tmp_path))
    run = json.loads(client.get(f"{P}/api/runs/list").get_data())["runs"][0]
    assert run["kinds"]["layer_order"]["layers"] == ["stem", "body"]


class RegisteredBackwards(nn.Module):
    """``late`` is registered before ``early`` but runs after it; ``unused`` is never run; a stage (``block``)
    finishes after the conv inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Conv2d(3, 3, 1)  # registered first (the callback reads the input channels here)
        self.late = nn.Conv2d(4, 6, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.late(self.block(x))).mean(dim=(2, 3)))


def test_layer_order_follows_a_forward_pass_of_the_probe_when_there_is_one(tmp_path):
    torch.manual_seed(0)
    model = RegisteredBackwards()
    images, labels = torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))
    training = [m.training for m in model.modules()]
    with CNNVizCallback(
        model,
        log_dir=str(tmp_path / "run"),
        probe=(images[:2], labels[:2]),
        activation_layers=["block", "late"],
        gradcam_layers=["late"],
        every_n_steps=5,
        strict=True,
    ) as viz:
        state = torch.get_rng_state()
        viz.on_step_end(1)
        assert torch.equal(torch.get_rng_state(), state)  # the pass consumed no global randomness
        assert [m.training for m in model.modules()] == training  # and left every mode as it was
    series = read_logdir(str(tmp_path))["run"]["cnnviz/layer_order"]
    content = series["content"]
    assert content["order"] == "execution"
    # Run order: block.0 (the conv), block (the stage it ends), late; unused is not run: last.
    assert content["layers"] == ["block.0", "block", "late", "unused"]
    registered = list(dict(model.named_modules()))
    ranks = series["values"][0]
    assert ranks[:, 0].tolist() == [0, 1, 2, -1]
    assert ranks[:, 1].tolist() == [registered.index(name) for name in content["layers"]]


def test_lightning_logs_each_epoch_end_at_its_global_step(tmp_path):
    pl = pytest.importorskip("lightning.pytorch", reason="PyTorch Lightning is an optional extra")
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.data import DataLoader, TensorDataset

    from tb_cnnviz.callbacks import LightningCNNVizCallback

    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = stem_first()

        def forward(self, x):
            return self.model(x)

        def training_step(self, batch, batch_idx):
            images, labels = batch
            return nn.functional.cross_entropy(self(images), labels)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    torch.manual_seed(0)
    images, labels = torch.randn(20, 3, 8, 8), torch.randint(0, 3, (20,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)  # 5 steps an epoch
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        logger=TensorBoardLogger(str(tmp_path), name="lit", version=0),
        callbacks=[LightningCNNVizCallback(every_n_steps=5, strict=True)],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(Classifier(), loader)
    runs = read_logdir(str(tmp_path / "lit"))
    (run,) = runs.values()
    assert trainer.global_step == 15
    assert run["cnnviz/epochs"]["steps"] == [5, 10, 15]
