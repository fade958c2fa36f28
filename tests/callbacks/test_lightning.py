"""LightningCNNVizCallback in a real Trainer (CPU, a few steps), including a resumed run."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch", reason="PyTorch Lightning is an optional extra")
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from support import read_logdir  # noqa: E402

from tb_cnnviz.callbacks import LightningCNNVizCallback  # noqa: E402
from tb_cnnviz.datasets import ShapesDataset  # noqa: E402
from tb_cnnviz.models import small_vgg  # noqa: E402


class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = small_vgg(width=8)

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        loss = nn.functional.cross_entropy(self(images), labels)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def trainer(tmp_path, max_steps, callback, **kwargs):
    return pl.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        logger=TensorBoardLogger(str(tmp_path), name="lit", version=0),
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=str(tmp_path),
        **kwargs,
    )


@pytest.fixture
def loader():
    images, labels = ShapesDataset(128, seed=2).tensors()
    return DataLoader(TensorDataset(images, labels), batch_size=16)


def test_logs_through_the_trainer_logger_and_resumes_its_schedule(tmp_path, loader):
    torch.manual_seed(0)
    probe = ShapesDataset(4, seed=5).tensors()
    every = {"kernels": 2, "activations": 3, "dead_filters": 2}
    callback = LightningCNNVizCallback(probe=probe, every_n_steps=every, strict=True)
    first = trainer(tmp_path, 6, callback, enable_checkpointing=True)
    module = Classifier()
    first.fit(module, loader)
    checkpoint = tmp_path / "six.ckpt"
    first.save_checkpoint(str(checkpoint))
    run = read_logdir(str(tmp_path / "lit"))["version_0"]  # the logger's own run directory
    assert run["cnnviz/kernels/model.features.conv1"]["steps"] == [1, 2, 4, 6]
    assert run["cnnviz/activations/model.features.relu5"]["steps"] == [1, 3, 6]
    assert run["cnnviz/dead_filters/model.features.conv5"]["steps"] == [2, 4, 6]
    assert (
        "loss" in read_logdir(str(tmp_path / "lit"), plugin="scalars")["version_0"]
    )  # Lightning's own logs, same run

    resumed_callback = LightningCNNVizCallback(probe=probe, every_n_steps=every, strict=True)
    second = trainer(tmp_path, 10, resumed_callback)
    second.fit(Classifier(), loader, ckpt_path=str(checkpoint))
    steps = read_logdir(str(tmp_path / "lit"))["version_0"]["cnnviz/kernels/model.features.conv1"]["steps"]
    # no second baseline at step 7: the schedule continued from the checkpoint
    assert steps == [1, 2, 4, 6, 8, 10]
    assert resumed_callback.state_dict()["last_step"] == 10


def test_without_a_tensorboard_logger_it_writes_to_its_own_directory(tmp_path, loader):
    callback = LightningCNNVizCallback(every_n_steps=2, strict=True)
    trainer_ = pl.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer_.fit(Classifier(), loader)
    assert read_logdir(str(tmp_path / "cnnviz"))["."]["cnnviz/kernels/model.features.conv1"]["steps"] == [
        1,
        2,
    ]
