"""Event files grow linearly with the number of logged snapshots, and only at scheduled steps.

One kind at a time, the event file is flushed after every training step and its size
recorded. Every byte is accounted for: a step grows the file by exactly the records of
the summaries the callback wrote at that step (an ``Event`` per summary, framed by 16
bytes: length, its CRC and the data's CRC), and by nothing at a step where the kind is
not scheduled. The run's own records (the layer order at the first step) are counted apart.
Per-snapshot sizes are measured for the docs by ``benchmarks/event_growth.py``.
"""

from __future__ import annotations

import os

import pytest
import torch
from callback_training import train
from tensorboard.compat.proto import event_pb2
from torch import nn

from tb_cnnviz import kinds, metadata, summary
from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

EVERY = 2
STEPS = 13  # snapshot kinds: steps 1, 2, 4, ..., 12 (a baseline at the first step, then every 2); dead filters: 2, 4, ..., 12
PROBE = 4
ONLY = {
    "kernels": "kernel_layers",
    "activations": "activation_layers",
    "dead_filters": "dead_filter_layers",
    "gradcam": "gradcam_layers",
}
RECORD_TAGS = {metadata.tag(record) for record in kinds.RUN_RECORDS}
RECORD_FRAMING = 16  # uint64 length, uint32 CRC of the length, uint32 CRC of the data


@pytest.fixture(scope="module")
def data():
    return ShapesDataset(256, seed=3).tensors()


def event_bytes(summary_proto, step: int) -> int:
    """On-disk size of the record that ``SummaryWriter`` writes for one summary (wall time and step included)."""
    return (
        len(event_pb2.Event(wall_time=1.5, step=step, summary=summary_proto).SerializeToString())
        + RECORD_FRAMING
    )


def file_size(log_dir) -> int:
    (path,) = [os.path.join(log_dir, name) for name in os.listdir(log_dir) if "tfevents" in name]
    return os.path.getsize(path)


def scheduled(kind: str) -> list[int]:
    first = (
        [1] if kind != "dead_filters" else []
    )  # dead filters log at the end of each window, not a baseline
    return first + [step for step in range(2, STEPS + 1) if step % EVERY == 0]


def run(
    tmp_path, images, labels, kind: str, lr: float, monkeypatch, bn_momentum: float | None = None
) -> tuple[list[int], dict[int, int], int, nn.Module]:
    """Train STEPS steps logging only ``kind``; returns the file size before step 1 and after every step, the bytes
    of the records the callback wrote per step (up to the last step), and the bytes that ``close()`` added."""
    written: dict[int, int] = {}
    records = [0]  # bytes of the run's own records (kinds.RUN_RECORDS: the layer order at the first step)
    real_write = summary.write

    def recording_write(writer, summaries, step):
        for proto in summaries:
            size = event_bytes(proto, step)
            if proto.value[0].tag in RECORD_TAGS:
                records[0] += size
            else:
                written[step] = written.get(step, 0) + size
        real_write(writer, summaries, step)

    monkeypatch.setattr(summary, "write", recording_write)
    # the records as logged, payloads included: the side file (tb_cnnviz/assets.py) is tested on its own
    monkeypatch.setenv(summary.SIDE_FILE_ENV, "0")
    torch.manual_seed(0)
    model = small_vgg(width=8)
    if bn_momentum is not None:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = bn_momentum
    off = {argument: [] for other, argument in ONLY.items() if other != kind}
    viz = CNNVizCallback(
        model,
        log_dir=tmp_path,
        probe=(images[:PROBE], labels[:PROBE]),
        every_n_steps={kind: EVERY},
        strict=True,
        flush_secs=3600,
        **off,
    )
    viz.flush()
    sizes = [file_size(tmp_path) - records[0]]

    def measure(step: int) -> None:
        viz.flush()
        sizes.append(file_size(tmp_path) - records[0])

    train(model, viz, images, labels, STEPS, lr=lr, batch=8, after_step=measure)
    logged = dict(written)
    assert records[0] > 0  # the layer order was recorded (and is left out of the kind's growth)
    viz.close()
    return sizes, logged, file_size(tmp_path) - records[0] - sizes[-1], model


@pytest.mark.parametrize("kind", list(ONLY))
def test_the_file_grows_by_the_logged_records_and_only_at_scheduled_steps(tmp_path, data, kind, monkeypatch):
    images, labels = data
    sizes, logged, at_close, model = run(tmp_path, images, labels, kind, lr=0.05, monkeypatch=monkeypatch)
    growth = {step: sizes[step] - sizes[step - 1] for step in range(1, STEPS + 1)}
    assert [step for step, grown in growth.items() if grown] == scheduled(
        kind
    )  # nothing at unscheduled steps
    assert growth == {
        step: logged.get(step, 0) for step in growth
    }  # every byte is a record of what was logged then
    # close() adds the final snapshot at the last step, 13 (for dead filters the unfinished window since 12)
    assert at_close > 0
    # the snapshots carry the data: at least the raw float32 payload of each kind
    convs = [module for module in model.modules() if isinstance(module, nn.Conv2d)]
    payload = {
        "kernels": 4 * convs[0].weight.numel(),
        "activations": 0,
        "dead_filters": 4 * sum(conv.out_channels for conv in convs),
        # raw maps at the layer's resolution (features: 4 x 4 of the 32 px input)
        "gradcam": 4 * PROBE * 4 * 4,
    }[kind]
    assert min(growth[step] for step in scheduled(kind)) > payload


@pytest.mark.parametrize("kind", list(ONLY))
def test_bytes_per_snapshot_do_not_grow_with_the_number_of_snapshots(tmp_path, data, kind, monkeypatch):
    """With the weights and BatchNorm statistics held (lr=0, BN momentum 0), every snapshot shows the same
    maps and costs the same bytes, to the byte: nothing accumulates from one snapshot to the next (the probe
    images are logged once, with the first). While a model trains, the PNG kinds vary with what they show
    (activation maps by about +-15%, see docs/robustness.md); the float tensors and scalars never do."""
    images, labels = data
    sizes, _, _, _ = run(tmp_path, images, labels, kind, lr=0.0, monkeypatch=monkeypatch, bn_momentum=0.0)
    increments = [sizes[step] - sizes[step - 1] for step in scheduled(kind)]
    later = increments[1:]
    assert len(set(later)) == 1, later
    half = len(later) // 2
    first_half, second_half = sum(later[:half]), sum(later[half : 2 * half])  # S(N) - S(0), S(2N) - S(N)
    assert abs(second_half / first_half - 1) <= 0.05
    if kind in ("activations", "gradcam"):
        from tb_cnnviz import snapshots

        probe_bytes = event_bytes(
            snapshots.probe(snapshots.Inputs(images=images[:PROBE], labels=labels[:PROBE]))[0], 1
        )
        assert abs((increments[0] - later[0]) - probe_bytes) <= 0.05 * later[0]
    else:
        assert abs(increments[0] - later[0]) <= 0.05 * later[0]
