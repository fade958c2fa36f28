"""Never crash training, never lose what was flushed: kills, full disks, NaNs, long runs."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch
from support import read_logdir
from torch import nn

from tb_cnnviz.callbacks import CNNVizCallback


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean(dim=(2, 3)))


def test_everything_flushed_before_a_sigkill_is_readable(tmp_path):
    script = textwrap.dedent(f"""
        import time, torch
        from tb_cnnviz.callbacks import CNNVizCallback
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))
        viz = CNNVizCallback(model, log_dir={str(tmp_path)!r}, probe=torch.rand(2, 3, 8, 8), every_n_steps=1, flush_secs=0.2,
                             gradcam_layers=[])  # the model has no classifier head
        for step in range(1, 6):
            model(torch.rand(2, 3, 8, 8)).sum().backward()
            viz.on_step_end(step)
        print("logged", flush=True)
        time.sleep(60)  # killed here, without close()
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline().strip()
        if line != "logged":
            process.wait(timeout=30)
            pytest.fail(f"the training script did not start: {process.stderr.read()}")
        time.sleep(1.5)  # several flush intervals
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    run = read_logdir(str(tmp_path))["."]
    assert run["cnnviz/kernels/0"]["steps"] == [1, 2, 3, 4, 5]
    assert run["cnnviz/activations/2"]["steps"] == [1, 2, 3, 4, 5]


def test_a_full_disk_warns_and_training_goes_on(tmp_path, monkeypatch):
    import tb_cnnviz.summary as summary

    model = Tiny()
    viz = CNNVizCallback(model, log_dir=tmp_path, probe=torch.rand(2, 3, 8, 8), every_n_steps=1)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(summary, "write", full)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(1, 4):
            loss = model(torch.rand(2, 3, 8, 8)).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            viz.on_step_end(step)
        viz.close()
    messages = [str(w.message) for w in caught if "tb-cnnviz" in str(w.message)]
    assert messages and all("No space left on device" in m for m in messages)
    assert len(messages) == len({m.split("'")[1] for m in messages})  # one warning per kind, never repeated
    assert not any(viz.enabled.values())


def test_nonfinite_activations_do_not_crash_and_are_visible(tmp_path):
    model = Tiny()
    with torch.no_grad():
        model.conv1.bias[1] = float("nan")
    with CNNVizCallback(
        model,
        log_dir=tmp_path,
        probe=torch.rand(2, 3, 8, 8),
        every_n_steps=1,
        strict=True,
        activation_layers=["conv1", "conv2"],  # the NaN channel's own layer (the default is conv2's only)
        scalars="per_layer",
    ) as viz:
        model.train()
        model(torch.rand(2, 3, 8, 8))
        viz.on_step_end(1)
    run = read_logdir(str(tmp_path))["."]
    rates = run["cnnviz/dead_filters/conv1"]["values"][0]
    assert (
        np.isnan(rates[1]) and np.isfinite(rates[[0, 2, 3]]).all()
    )  # NaN flags the filter, the others are measured
    assert "cnnviz/activations/conv1" in run
    scalars = read_logdir(str(tmp_path), plugin="scalars")["."]
    assert scalars["cnnviz_scalars/nonfinite_filters/conv1"]["values"] == [1.0]
    assert scalars["cnnviz_scalars/dead_fraction/conv1"]["values"] == [
        0.0
    ]  # the NaN filter is not called dead


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_memory_stays_flat_over_ten_thousand_steps(tmp_path):
    torch.manual_seed(0)
    model = Tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images = torch.rand(2, 3, 8, 8)
    viz = CNNVizCallback(model, log_dir=tmp_path, probe=images, every_n_steps=200)
    readings = {}
    for step in range(1, 10_001):
        loss = model(images).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        viz.on_step_end(step)
        if step in (1000, 10_000):
            readings[step] = current_rss_mb()
    viz.close()
    growth = readings[10_000] - readings[1000]
    print(
        f"RSS after 1000 steps {readings[1000]:.1f} MB, after 10000 {readings[10_000]:.1f} MB, growth {growth:+.1f} MB"
    )
    assert growth < 10, readings
    assert read_logdir(str(tmp_path))["."]["cnnviz/kernels/conv1"]["steps"][-1] == 10_000
