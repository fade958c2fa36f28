"""``torch.compile`` and autocast around the callback's own work.

The training step may be compiled or run under ``torch.autocast``; a snapshot must not
depend on either: it runs eagerly and in float32, and the dead-filter hooks must be seen
by the compiled training step.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from tb_cnnviz.analysis.layers import model_device


def is_compiled(model: nn.Module) -> bool:
    """Whether ``torch.compile`` is in play: a compiled wrapper (``torch.compile(model)``, possibly inside or
    around DDP) or a module compiled in place (``module.compile()``)."""
    return any(
        isinstance(getattr(module, "_orig_mod", None), nn.Module)
        or getattr(module, "_compiled_call_impl", None) is not None
        for module in model.modules()
    )


def own_forwards(base: nn.Module, compiled: bool) -> contextlib.ExitStack:
    """Where our own forwards run: in float32 even when the caller is inside a ``torch.autocast``
    region (a snapshot must not depend on where ``on_step_end`` is called), and eagerly when the
    model was compiled in place (``module.compile()``): its compiled code, traced without the
    snapshot's temporary hooks, would skip them, or recompile at every snapshot."""
    stack = contextlib.ExitStack()
    device = model_device(base).type
    if torch.amp.is_autocast_available(device):
        stack.enter_context(torch.autocast(device_type=device, enabled=False))
    if compiled:
        stack.enter_context(torch.compiler.set_stance("force_eager"))
    return stack


def retrace_with_hooks() -> None:
    """Drop compiled code so the next training forward re-traces with hooks added since.

    torch.compile does not guard on empty hook dicts (``torch._dynamo.config.skip_nnmodule_hook_guards``):
    code traced before our counting hooks existed (an earlier call of this model, or another
    instance of its class) would run without them and no dead-filter window would ever be logged.
    """
    torch.compiler.reset()
