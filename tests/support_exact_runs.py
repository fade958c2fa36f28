"""Runs written value by value with ``tb_cnnviz.summary`` through a real SummaryWriter (``write_run``,
``flat_png``), so routes can be checked against known numbers: the run ``exact`` (``write_exact_run`` and its
constants) and a Grad-CAM run whose maps explode at one step (``exploding_cam_run``). Test modules import
these from ``support``."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import metadata, summary

EXACT_RUN = "exact"
CLASSES = ["a", "b", "c"]


def flat_png(value: int, height: int, width: int | None = None) -> bytes:
    """A PNG of one grey value (RGB)."""
    return summary.encode_png(np.full((height, width or height, 3), value, np.uint8))


def write_run(logdir: str, run: str, by_step: dict[int, list]) -> None:
    """Write ``{step: [summaries]}`` into the run ``logdir/run`` through a real SummaryWriter."""
    writer = SummaryWriter(os.path.join(logdir, run))
    try:
        for step, summaries in sorted(by_step.items()):
            summary.write(writer, summaries, step)
    finally:
        writer.close()


NAN = float("nan")
INFO = {  # target, predicted, probability, target probability
    0: np.array([[0, 1, 0.5, 0.2], [1, 1, 0.7, 0.7], [2, 0, 0.4, 0.1]], np.float32),
    10: np.array([[0, 0, 0.9, 0.9], [1, 2, 0.6, 0.3], [-1, -1, NAN, -1]], np.float32),
    20: np.array([[0, 0, 0.95, 0.95], [1, 1, 0.8, 0.8], [2, 2, 0.99, 0.99]], np.float32),
}
MAPS = {step: np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4) * (step + 1) / 100 for step in INFO}
MAPS[10][2] = NAN
MAPS[10][2, 0, 0] = 7.0  # a partly non-finite map: its maximum is the finite one
PATTERN_CHANNELS = [2, 5]
PATTERN_VALUES = {9: np.array([1.5, NAN], np.float32), 11: np.array([2.5, 3.0], np.float32)}
KERNELS = {step: np.stack([np.full((3, 3, 3), step + c, np.float32) for c in range(6)]) for step in (0, 10)}
DEAD = {
    5: np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.0], np.float32),
    15: np.array([0.1, 0.2, 0.0, 0.4, 0.5, 0.5], np.float32),
}
TOP = {
    step: np.array([[[4, 9.0, 0, 0, 8, 8], [1, 5.0, 8, 8, 16, 16]]] * 6, np.float32)
    + np.array([0, step, 0, 0, 0, 0], np.float32)
    for step in (9, 11)
}
TOP[11][5, 1, 0] = -1  # an empty slot (fewer images than k)
EMBEDDING = {9: np.array([[0, 0, 0], [1, 1, 1], [2, 0, 1], [0, 2, 0], [1, 2, 1]], np.float32)}
EMBEDDING[11] = EMBEDDING[9] * [2, 2, 1]
EMBEDDING[11][4] = [NAN, NAN, -1]
LABELS = [0, 1, 2, 0, 1]


# A Grad-CAM run of two images on layer4 whose maps explode at one step (the shared-scale tests of the plugin and
# the browser): image 0's peak grows k = 1..8 over CAM_STEPS and is 3.8e9 at EXPLODING_STEP
CAM_STEPS = [0, 10, 20, 30, 40, 50, 60, 70]
EXPLODING_STEP = 50
CAM_CLASSES = ["circle", "square", "star"]
# target, predicted, probability, target probability: image 1 (a star) is predicted a square
CAM_INFO = np.array([[0, 0, 0.9, 0.9], [2, 1, 0.6, 0.3]], np.float32)


def exploding_cam_maps(step: int) -> np.ndarray:
    k = CAM_STEPS.index(step) + 1
    maps = np.zeros((2, 2, 2), np.float32)
    maps[0] = [[k, 0.0], [0.0, k / 4]]
    maps[1] = [[0.0, k / 2], [k / 8, 0.0]]
    if step == EXPLODING_STEP:
        maps[0, 0, 0] = 3.8e9
    return maps


def exploding_cam_run(
    heat_pngs: Callable[[int], list[bytes]], probe_pngs: list[bytes], labels: list | None
) -> dict[int, list]:
    """``write_run``'s ``by_step`` of that run: at every step the heat maps ``heat_pngs(step)``, the raw maps and
    CAM_INFO; at step 0 the probe images ``probe_pngs`` labelled ``labels`` (None: unlabelled) of CAM_CLASSES."""
    by_step = {
        step: [
            summary.blob_summary(metadata.GRADCAM, "layer4", heat_pngs(step), colormap="jet"),
            summary.tensor_summary(metadata.GRADCAM_MAPS, "layer4", exploding_cam_maps(step)),
            summary.tensor_summary(
                metadata.GRADCAM_INFO,
                "layer4",
                CAM_INFO,
                columns=["target", "predicted", "probability", "target_probability"],
            ),
        ]
        for step in CAM_STEPS
    }
    by_step[0].append(
        summary.blob_summary(metadata.PROBE, None, probe_pngs, labels=labels, class_names=CAM_CLASSES)
    )
    return by_step


def write_exact_run(root: str) -> None:
    """The run ``exact``: every kind the Grad-CAM, Patterns and Embedding views read, written with
    ``tb_cnnviz.summary`` from the constants above, so routes can be checked value by value."""
    steps: dict[int, list] = {}

    def add(step, item):
        steps.setdefault(step, []).append(item)

    add(
        0,
        summary.blob_summary(
            metadata.PROBE,
            None,
            [flat_png(10 * i, 8) for i in range(3)],
            labels=[0, 1, 2],
            class_names=CLASSES,
        ),
    )
    for step, info in INFO.items():
        add(
            step,
            summary.blob_summary(
                metadata.GRADCAM, "conv", [flat_png(step + i, 8) for i in range(3)], colormap="jet"
            ),
        )
        add(step, summary.tensor_summary(metadata.GRADCAM_MAPS, "conv", MAPS[step]))
        add(
            step,
            summary.tensor_summary(
                metadata.GRADCAM_INFO,
                "conv",
                info,
                columns=["target", "predicted", "probability", "target_probability"],
            ),
        )
    for step in (0, 20):
        add(
            step,
            summary.blob_summary(
                metadata.ATTRIBUTION, "saliency", [flat_png(200, 8) for _ in range(3)], method="saliency"
            ),
        )
    for step, values in PATTERN_VALUES.items():
        add(
            step,
            summary.blob_summary(
                metadata.PATTERNS,
                "conv",
                [flat_png(step, 12), flat_png(step + 1, 12)],
                channels=PATTERN_CHANNELS,
                size=12,
                steps=3,
            ),
        )
        add(step, summary.tensor_summary(metadata.PATTERN_VALUES, "conv", values))
        add(step, summary.tensor_summary(metadata.TOP_EXAMPLES, "conv", TOP[step], k=2))
        add(
            step,
            summary.tensor_summary(
                metadata.EMBEDDING,
                "penultimate",
                EMBEDDING[step],
                method="tsne",
                labels=LABELS,
                class_names=CLASSES,
            ),
        )
    for step, kernels in KERNELS.items():
        add(step, summary.tensor_summary(metadata.KERNELS, "conv", kernels))
    for step, rates in DEAD.items():
        add(step, summary.tensor_summary(metadata.DEAD_FILTERS, "conv", rates, window=5, measured_at="bn"))
    # 5 thumbnails of 4x4 px, 2 a row, in two atlases of 3 and 2 cells; image i is filled with 40 * i
    atlas0 = np.zeros((8, 8, 3), np.uint8)
    for i, (r, c) in enumerate([(0, 0), (0, 1), (1, 0)]):
        atlas0[r * 4 : (r + 1) * 4, c * 4 : (c + 1) * 4] = 40 * i
    atlas1 = np.zeros((4, 8, 3), np.uint8)
    atlas1[:, :4], atlas1[:, 4:] = 120, 160
    add(
        9,
        summary.blob_summary(
            metadata.SPRITES,
            None,
            [summary.encode_png(atlas0), summary.encode_png(atlas1)],
            thumb=[4, 4],
            columns=2,
            counts=[3, 2],
            image_size=[16, 16],
        ),
    )
    write_run(root, EXACT_RUN, steps)
