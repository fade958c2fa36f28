"""What one snapshot's forward pass over the embedding probe hands to another on the same copy of the weights.

The callback gives every background snapshot due at a step the same copy of the weights. The
``separability`` snapshot runs first (table order) and its pass over the embedding probe also
records the codes of the last ``nn.Linear``'s input and the model's outputs; the ``embedding``
snapshot then takes them from here instead of running its own feature pass. So measuring
separability costs its ridge fits and pooling, not a second pass over the probe
(``benchmarks/separability_cost.py``). Keyed weakly by the copy, so an entry goes with its copy;
the images must be the very tensor the pass ran on.
"""

from __future__ import annotations

import dataclasses
import weakref

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class ProbePass:
    """The default codes (the last linear layer's input, float32 CPU) and the outputs of ``images``."""

    images: torch.Tensor
    codes: torch.Tensor
    outputs: torch.Tensor


_PASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def keep(model: nn.Module, images: torch.Tensor, codes: torch.Tensor, outputs: torch.Tensor) -> None:
    """Record a pass of ``model`` over ``images`` for a later snapshot on the same copy."""
    _PASSES[model] = ProbePass(images, codes, outputs)


def take(model: nn.Module, images: torch.Tensor) -> ProbePass | None:
    """The pass recorded for ``model`` over exactly ``images`` (the same tensor), or None."""
    found = _PASSES.get(model)
    return found if found is not None and found.images is images else None
