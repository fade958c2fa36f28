"""What a ``snapshots`` function is given: one :class:`Inputs` for every kind, and the per-kind states.

Kept apart from ``snapshots`` (which computes and encodes) so the callback and the command line
can build inputs without reading the kernels of each kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

Layers = Sequence[tuple[str, nn.Module]]


@dataclasses.dataclass
class Inputs:
    """What a snapshot function is given; each kind reads the fields it needs.

    ``images``/``labels``: the images the snapshot looks at (the probe, or the embedding
    probe); ``logits`` picks the class scores from the model output for the kinds that
    explain a class (None: the output is the scores); ``settings``: the kind's own options
    (documented by each function); ``state``: what the kind hands from one snapshot to the
    next (``EmbeddingState``) or was measured for it (``FilterRates``).
    """

    model: nn.Module | None = None
    layers: Layers = ()
    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    class_names: Sequence[str] | None = None
    logits: Callable[[Any], torch.Tensor] | None = None
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    state: Any = None

    def scores_model(self) -> nn.Module:
        """The model followed by ``logits``: class scores ``[N, classes]`` for Grad-CAM and attributions."""
        return self.model if self.logits is None else Logits(self.model, self.logits)

    def target(self) -> torch.Tensor | None:
        """The labels on the images' device (the class to explain), or None."""
        return None if self.labels is None else self.labels.to(self.images.device)


@dataclasses.dataclass
class FilterRates:
    """A closed dead-filter window: per layer the activation rate of each filter (None: never reached)."""

    rates: Sequence[torch.Tensor | None]
    measured_at: Sequence[str]  # the module whose output (the nonlinearity's input) each rate was measured at
    window: int  # its length in steps
    batches: int = 0  # training batches counted (summed over ranks)
    forwards: int = 0  # training forwards seen (summed over ranks)
    count_every: int = 1  # one training forward in this many was counted at the window's end
    semantics: Sequence[str] = ()  # per layer, what a rate of 0 means (analysis/activation_points.py)
    # per layer, when layers were sampled apart (callbacks/windows.py): batches counted and one in k
    layer_batches: Sequence[int] = ()
    layer_count_every: Sequence[int] = ()


@dataclasses.dataclass
class EmbeddingState:
    """What one embedding snapshot hands to the next (and to its caller).

    ``layout``: the last 2-D map, which the next map starts from and is aligned to, so clusters
    stay put between steps; ``codes``: the features of the last snapshot (for the Projector).
    """

    layout: np.ndarray | None = None
    codes: torch.Tensor | None = None


STATES: dict[str, Callable[[], Any]] = {"embedding": EmbeddingState}  # what a snapshot hands to its next run


def new_state(snapshot: str) -> Any:
    """A fresh state for the snapshot named ``snapshot``: its ``Inputs.state`` (None when it hands nothing on)."""
    factory = STATES.get(snapshot)
    return None if factory is None else factory()


class Logits(nn.Module):
    """``model`` followed by ``select`` (e.g. the first element of a tuple output): class scores for Grad-CAM."""

    def __init__(self, model: nn.Module, select):
        super().__init__()
        self.model = model
        self.select = select

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.select(self.model(images))


def default_logits(output):
    """The class scores in a model output: the output itself, a tuple's first element, or a dict's ``logits``/``out``."""
    if isinstance(output, (tuple, list)) and output:
        return output[0]
    if isinstance(output, dict):
        for key in ("logits", "out"):
            if key in output:
                return output[key]
        raise ValueError(
            f"logits: the model returns a dict with keys {sorted(map(str, output))}; pass logits=lambda out: out[KEY]"
        )
    return output
