"""A single background thread with a bounded queue, for snapshots too slow for the training thread.

Pattern galleries and t-SNE projections take seconds; training must not wait for them.
Work is submitted with the data it needs already copied (weights, features), so the
training thread can go on changing the model. When the queue is full a new job is
dropped and counted rather than piling up memory and lag, except a job that must not be
lost (a run's final snapshots): its submitter waits for a place in the queue.
"""

from __future__ import annotations

import copy
import queue
import threading
from typing import Callable

from torch import nn

from tb_cnnviz.analysis.safety import background_thread


class BackgroundWorker:
    """Runs submitted jobs one at a time on a daemon thread; ``max_pending`` jobs may wait."""

    def __init__(self, name: str, on_error: Callable[[BaseException], None], max_pending: int = 1):
        self.name = name
        self.dropped = 0
        self.completed = 0
        self._on_error = on_error
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None], wait: bool = False) -> bool:
        """Queue ``job``; returns False (and counts a drop) when the queue is full, unless ``wait``:
        then it blocks until a queued job has started and there is a place (it is never dropped)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"tb-cnnviz-{self.name}", daemon=True)
            self._thread.start()
        if wait:
            self._queue.put(job)
            return True
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def _loop(self) -> None:
        with background_thread():  # never restore the global RNG from here: it would rewind training's
            self._serve()

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
                self.completed += 1
            except BaseException as error:  # reported, never raised into the training thread
                self._on_error(error)
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until every queued job has finished."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        """Finish the queued jobs (nothing computed is lost) and stop the thread."""
        if self._thread is None:
            return
        self._queue.join()
        self._queue.put(None)
        self._thread.join()
        self._thread = None


def detached_copy(model: nn.Module) -> nn.Module:
    """A copy of the model's current weights for background work: no hooks (ours count training
    forwards), no gradients, on the same device."""
    clone = copy.deepcopy(model)
    for module in clone.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        module._backward_hooks.clear()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
        parameter.grad = None
    return clone


def same_layers(clone: nn.Module, layers) -> list[tuple[str, nn.Module]]:
    """The modules of ``clone`` with the names of ``layers``."""
    modules = dict(clone.named_modules())
    return [(name, modules[name]) for name, _ in layers]
