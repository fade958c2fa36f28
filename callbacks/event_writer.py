"""The event writer the callback writes through: the one given (``writer=``), or one it opens on ``log_dir``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tb_cnnviz.callbacks.config import CallbackConfig

WRITER_QUEUE = 1000  # events our own SummaryWriter queues before the training thread waits for the disk


def writer_for(config: CallbackConfig, log_dir: str | os.PathLike | None, rank: int) -> tuple[Any, bool]:
    """``(writer, ours)``: the given writer, or one we open on ``log_dir`` (checked); None off rank 0."""
    if rank != 0:
        return None, False
    options = config.options
    return _open_writer(log_dir, options.writer, options.flush_secs), options.writer is None


def _open_writer(log_dir, writer, flush_secs: float):
    if writer is not None:
        if log_dir is not None:
            raise ValueError("log_dir: give either log_dir or writer, not both")
        if not hasattr(writer, "_get_file_writer"):
            raise TypeError(
                f"writer: expected a torch.utils.tensorboard.SummaryWriter, got {type(writer).__name__}"
            )
        return writer
    if log_dir is None:
        raise ValueError(
            "log_dir: expected a directory for the event files (or pass writer=SummaryWriter(...))"
        )
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"log_dir: cannot create {str(log_dir)!r}: {error.strerror or error}") from None
    if not os.access(log_dir, os.W_OK):
        raise ValueError(f"log_dir: {str(log_dir)!r} is not writable")
    from torch.utils.tensorboard import SummaryWriter  # imported late: pulls in tensorboard

    # The event writer's queue (10 events by default) blocks the caller when full: a dead-filter window of a
    # ResNet-50 writes over 100 summaries at once (68 ms on the training thread with 10, 0.6 ms with 1000)
    return SummaryWriter(log_dir=str(log_dir), flush_secs=flush_secs, max_queue=WRITER_QUEUE)
