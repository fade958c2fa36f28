"""PyTorch Lightning adapter: ``Trainer(callbacks=[LightningCNNVizCallback(probe=...)])``.

Imported lazily by ``tb_cnnviz.callbacks`` (Lightning is an optional extra,
``pip install tb-cnnviz[lightning]``). It drives the framework-neutral
:class:`CNNVizCallback` with ``trainer.global_step``, writes through the trainer's
TensorBoard logger when there is one (so everything lands in the same run directory),
logs from global rank zero only, and saves its schedule in checkpoints.
"""

from __future__ import annotations

import os
from typing import Any

try:
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import TensorBoardLogger
except ImportError:  # the older package name
    try:
        import pytorch_lightning as pl
        from pytorch_lightning.loggers import TensorBoardLogger
    except ImportError as error:
        raise ImportError(
            "LightningCNNVizCallback needs PyTorch Lightning: pip install 'tb-cnnviz[lightning]'"
        ) from error

from tb_cnnviz.callbacks.callback import CNNVizCallback


class LightningCNNVizCallback(pl.Callback):
    """Lightning callback around :class:`CNNVizCallback`; takes the same keyword arguments.

    ``log_dir`` is only used when the trainer has no TensorBoard logger (default then:
    ``<trainer.default_root_dir>/cnnviz``). The model is the ``LightningModule``, so layer
    names are as in ``pl_module.named_modules()`` (e.g. ``"model.features.conv1"``).
    """

    def __init__(self, log_dir: str | os.PathLike | None = None, **kwargs: Any):
        super().__init__()
        self.log_dir = log_dir
        self.kwargs = kwargs
        self.viz: CNNVizCallback | None = None
        self._pending_state: dict | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.viz is not None:
            return
        writer = None
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment if trainer.is_global_zero else None
                break
        if writer is not None:
            self.viz = CNNVizCallback(pl_module, writer=writer, **self.kwargs)
        else:
            log_dir = (
                self.log_dir if self.log_dir is not None else os.path.join(trainer.default_root_dir, "cnnviz")
            )
            self.viz = CNNVizCallback(pl_module, log_dir=log_dir, **self.kwargs)
        if self._pending_state is not None:
            self.viz.load_state_dict(self._pending_state)
            self._pending_state = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.viz is not None:
            self.viz.on_step_end(trainer.global_step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.viz is not None:
            self.viz.on_epoch_end(trainer.global_step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._close()  # flush what was logged before the crash

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._close()

    def state_dict(self) -> dict[str, Any]:
        if self.viz is not None:
            return self.viz.state_dict()
        return dict(self._pending_state or {})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.viz is not None:
            self.viz.load_state_dict(state_dict)
        else:
            self._pending_state = dict(state_dict)

    def _close(self) -> None:
        """Close the core; its schedule is kept so a later ``fit`` (or checkpoint) continues it."""
        if self.viz is not None:
            self._pending_state = self.viz.state_dict()
            self.viz.close()
            self.viz = None
