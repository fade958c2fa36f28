"""Run a model only as far as the layer(s) an objective needs ("truncate the network").

Activation maximisation and DeepDream need the output of one inner layer; computing
every later layer (and back-propagating through nothing) is wasted work. Slicing an
``nn.Sequential`` would only work for sequential models, so instead a forward hook
on the target module stores its output and raises a private ``_StopForward``
exception, which ``truncated_forward`` catches. This works for any model whose
forward calls the module (torchvision ResNets, models using ``F.relu`` in
``forward``, nested containers), and the hooks are removed in ``finally``.

Caveats, documented rather than hidden: a model whose ``forward`` catches every
``Exception`` around the target layer would run to the end (the stored output is
still used, so results stay correct, only slower); a module called several times
per forward is measured at its first call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Callable

import torch
from torch import nn

from tb_cnnviz.analysis.safety import hooks


class _StopForward(Exception):
    """Raised by a truncation hook once every wanted output has been captured."""


@contextlib.contextmanager
def truncated_forward(
    model: nn.Module, modules: Sequence[nn.Module], names: Sequence[str] | None = None
) -> Iterator[Callable[[torch.Tensor], list[torch.Tensor]]]:
    """Inside the ``with``, ``run(x)`` returns the outputs of ``modules`` for input ``x``,
    running the model only until the last of them has produced its output.

    Outputs captured before the last one are cloned, because the forward goes on after
    them and an in-place op (``ReLU(inplace=True)``) could overwrite them.
    """
    modules = list(modules)
    if not modules:
        raise ValueError("layers: expected at least one layer to capture, got none")
    names = list(names) if names is not None else [type(m).__name__ for m in modules]
    captured: dict[int, torch.Tensor] = {}

    def make_hook(index: int):
        def hook(_module, _inputs, output):
            if index in captured:
                return
            value = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"layers: {names[index]!r} returned {type(value).__name__}, expected a tensor"
                )
            last = len(captured) == len(modules) - 1
            captured[index] = value if last else value.clone()
            if len(captured) == len(modules):
                raise _StopForward

        return hook

    def run(x: torch.Tensor) -> list[torch.Tensor]:
        captured.clear()
        try:
            model(x)
        except _StopForward:
            pass
        missing = [names[i] for i in range(len(modules)) if i not in captured]
        if missing:
            raise ValueError(
                f"layers: {missing} never ran during the model's forward pass; "
                "choose layers that the forward actually calls"
            )
        return [captured[i] for i in range(len(modules))]

    with hooks() as handles:
        for index, module in enumerate(modules):
            handles.append(module.register_forward_hook(make_hook(index)))
        try:
            yield run
        finally:
            captured.clear()


def activation_bytes(
    model: nn.Module, run: Callable[[torch.Tensor], list[torch.Tensor]], x: torch.Tensor
) -> int:
    """Bytes of every module output produced by ``run(x)`` (a truncated forward), for memory budgeting.

    Each leaf module's output is counted once; backward roughly needs as much again for
    the saved tensors' gradients, which the caller accounts for.
    """
    total = 0

    def count(_module, _inputs, output):
        nonlocal total
        values = output if isinstance(output, (tuple, list)) else (output,)
        total += sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor))

    with hooks() as handles:
        for module in model.modules():
            if not list(module.children()):
                handles.append(module.register_forward_hook(count, prepend=True))
        with torch.no_grad():
            run(x)
    return total
