"""``torch.distributed`` for the callback: which rank writes, and dead-filter counts summed over ranks.

Under ``torch.distributed`` only global rank 0 writes; every rank tracks dead filters, whose
counts are summed across ranks at the end of each window.
"""

from __future__ import annotations

import torch

from tb_cnnviz.analysis.dead_filters import DeadFilterTracker


def is_distributed() -> bool:
    """More than one process in an initialised default process group."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def rank() -> int:
    """The global rank (0 without ``torch.distributed``)."""
    return (
        torch.distributed.get_rank()
        if torch.distributed.is_available() and torch.distributed.is_initialized()
        else 0
    )


def reduced_rates(
    tracker: DeadFilterTracker, layers, device: torch.device
) -> tuple[list[torch.Tensor | None], int, int, list[int]]:
    """Activation rates summed over all ranks in one collective: a filter is dead only if dead on every rank.

    Returns ``(rates, batches, forwards, group_batches)``, the counted batches (all, and per group of
    layers sampled alike) and training forwards summed over the ranks too. Every rank calls this at the same steps (the schedule depends on the
    step only); a rank that saw no batch contributes zeros.
    """
    parts = [
        torch.tensor(
            [float(tracker.batches), float(tracker.forwards), *map(float, tracker.group_batches)],
            dtype=torch.float64,
            device=device,
        )
    ]
    for (positive, positions), (_, conv) in zip(tracker.counts(), layers):
        counts = (
            positive
            if positive is not None
            else torch.zeros(conv.out_channels, dtype=torch.float64, device=device)
        )
        parts += [
            counts.to(device=device, dtype=torch.float64),
            torch.tensor([float(positions)], dtype=torch.float64, device=device),
        ]
    flat = torch.cat(parts)
    torch.distributed.all_reduce(flat)
    groups = len(tracker.group_batches)
    rates, offset = [], 2 + groups
    for _, conv in layers:
        counts, positions = flat[offset : offset + conv.out_channels], flat[offset + conv.out_channels]
        rates.append(counts / positions if positions > 0 else None)
        offset += conv.out_channels + 1
    return rates, int(flat[0]), int(flat[1]), [int(value) for value in flat[2 : 2 + groups]]
