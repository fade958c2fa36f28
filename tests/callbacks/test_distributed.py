"""Two real processes under torch.distributed (gloo, CPU): only rank 0 writes, dead-filter counts are summed."""

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from support import read_logdir
from torch import nn

from tb_cnnviz.callbacks import CNNVizCallback


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv.weight.fill_(0.1)
            self.conv.bias.copy_(
                torch.tensor([1.0, 1.0, -5.0, -1e6])
            )  # filter 2 fires only on bright input, 3 never

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def worker(rank: int, world_size: int, init_file: str, logdir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        model = nn.parallel.DistributedDataParallel(Tiny())
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # weights stay as planted
        brightness = 0.0 if rank == 0 else 100.0  # only rank 1's data wakes filter 2 up
        with CNNVizCallback(
            model, log_dir=os.path.join(logdir, f"rank{rank}"), every_n_steps={"dead_filters": 2}, strict=True
        ) as viz:
            for step in (1, 2):
                loss = model(torch.full((2, 1, 8, 8), brightness)).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                viz.on_step_end(step)
            assert (viz.writer is None) == (rank != 0)
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(180)
def test_dead_filters_are_reduced_across_ranks_and_only_rank_zero_writes(tmp_path):
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path / "logs")), nprocs=2, join=True)
    assert not (tmp_path / "logs" / "rank1").exists()
    run = read_logdir(str(tmp_path / "logs"))["rank0"]
    rates = run["cnnviz/dead_filters/conv"]["values"]
    assert run["cnnviz/dead_filters/conv"]["steps"] == [2]
    # rank 0 alone would call filter 2 dead; rank 1 keeps it alive. Filter 3 is dead everywhere.
    assert np.nonzero(rates[0] == 0)[0].tolist() == [3]
    assert rates[0][2] == pytest.approx(0.5)  # positive on every position of rank 1, none of rank 0
    assert rates[0][0] == pytest.approx(1.0)
