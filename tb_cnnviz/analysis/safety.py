"""Training-safety helpers shared by every analysis function and the callback.

A visualisation runs in the middle of someone else's training loop, so it must leave
no trace: module ``training`` flags restored, hooks removed even when the model
raises, parameter ``.grad`` untouched (``torch.autograd.grad`` only) and no global
random state consumed.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator, Sequence
from typing import Callable

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode and restore every submodule's own ``training`` flag.

    Restoring only the root flag (``model.train(was_training)``) would overwrite
    submodules the user deliberately froze, e.g. BatchNorm layers kept in eval mode.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


@contextlib.contextmanager
def hooks(handles: list | None = None) -> Iterator[list]:
    """Own a list of hook handles; every handle is removed on exit, also on error."""
    owned: list = [] if handles is None else handles
    try:
        yield owned
    finally:
        for handle in owned:
            handle.remove()
        owned.clear()


@contextlib.contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Temporarily set ``requires_grad=False`` on all parameters of ``model``.

    Gradients with respect to the *input* or an intermediate activation then do not
    build graph branches into the weights (cheaper), and nothing can accumulate into
    ``param.grad``. Each parameter's own flag is restored.
    """
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


_thread_state = threading.local()


@contextlib.contextmanager
def background_thread() -> Iterator[None]:
    """Mark the current thread as a background worker: :func:`preserved_rng` does nothing there.

    The global RNG is shared by all threads: restoring it at the end of a background
    snapshot would rewind whatever the training thread drew in the meantime (dropout,
    shuffling). Background work uses its own generators and must leave the state alone.
    """
    previous = getattr(_thread_state, "background", False)
    _thread_state.background = True
    try:
        yield
    finally:
        _thread_state.background = previous


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore torch (CPU and CUDA), numpy and python global RNG states on exit.

    Analysis code draws from its own ``torch.Generator``; this guards against a
    library call (e.g. an augmentation helper) consuming the user's random stream.
    Inside :func:`background_thread` it does nothing (see there).
    """
    if getattr(_thread_state, "background", False):
        yield
        return
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    cuda_states = (
        torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    )
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


@contextlib.contextmanager
def safe_snapshot(model: nn.Module) -> Iterator[nn.Module]:
    """Everything a visualisation snapshot needs: eval mode, RNG preserved, modes restored."""
    with preserved_rng(), eval_mode(model):
        yield model


def capture_outputs(
    modules: Sequence[nn.Module],
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[contextlib.AbstractContextManager, list[torch.Tensor | None]]:
    """Forward hooks that store each module's output (optionally transformed).

    Returns ``(context, outputs)``: inside ``with context:`` the hooks are live; the
    list ``outputs`` holds one entry per module after a forward pass. A module called
    twice keeps its last output.
    """
    outputs: list[torch.Tensor | None] = [None] * len(modules)

    def make_hook(index: int):
        def hook(_module, _inputs, output):
            value = output[0] if isinstance(output, (tuple, list)) else output
            outputs[index] = transform(value) if transform is not None else value

        return hook

    @contextlib.contextmanager
    def context():
        with hooks() as handles:
            for index, module in enumerate(modules):
                handles.append(module.register_forward_hook(make_hook(index)))
            yield outputs

    return context(), outputs
