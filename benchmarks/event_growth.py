"""Event-file growth per snapshot kind: how many bytes one snapshot of each kind adds to the log.

Trains the example SmallVGG (width 16) on the shapes dataset (32x32 px, SGD lr 0.05 momentum
0.9; 150 steps of batch 32 first, unmeasured, then batch 16) with a CNNVizCallback that logs ONE kind at a time, flushes the event file after every
step and records its size. For each kind it prints the bytes of the first snapshot
(which carries one-off data: the probe images for activations and Grad-CAM, the
thumbnail atlas for embeddings), the mean bytes of every later snapshot, and the
linearity check: with S(n) the size after n snapshots beyond the first,
``deviation = (S(2N) - S(N)) / (S(N) - S(0)) - 1`` (growth is linear when it is ~0).
It also checks that nothing is written at steps where the kind is not scheduled.

Settings (the defaults of the callback unless said): probe of 8 images; kernels of
``features.conv1`` (16 filters 3x3x3); activation maps of conv1, conv3, conv5 (16, 32, 64
channels); dead filters of all 5 convs; Grad-CAM of conv5; patterns of conv5, 64 channels,
32 px (``pattern_steps=16`` instead of 64 for time: the size does not depend on it much);
embedding: t-SNE of 1,000 held-out images with the top-9 examples of conv1, conv3, conv5.
``background=False`` so slow kinds finish before the size is read.

    .venv/bin/python benchmarks/event_growth.py                 # every kind (about 2-4 minutes on 2 busy cores)
    .venv/bin/python benchmarks/event_growth.py --kinds kernels gradcam --snapshots 20

``--model NAME --size PX`` measures a torchvision classification model instead (random init, 10
classes, no pretraining), on the shapes images upsampled (bilinear) to ``PX``; the default
layers are the callback's for that model. With it, the bytes of each kind over ``--run-steps`` (10,000) steps at
the default schedule (``kinds.SNAPSHOTS``) are printed too, e.g.

    .venv/bin/python benchmarks/event_growth.py --model resnet50 --size 224 \
        --kinds kernels activations dead_filters gradcam --snapshots 1 --every 1 --batch-size 2
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tb_cnnviz.assets import PREFIX as SIDE_FILE_PREFIX  # noqa: E402
from tb_cnnviz.callbacks import CNNVizCallback  # noqa: E402
from tb_cnnviz.datasets import ShapesDataset  # noqa: E402
from tb_cnnviz.kinds import SNAPSHOTS, TRAINING, default_every_n_steps  # noqa: E402
from tb_cnnviz.models import small_vgg  # noqa: E402

CHEAP_KINDS = ("kernels", "activations", "dead_filters", "gradcam")
# kinds logged at the first step too (a baseline); dead filters log at the end of each window
SNAPSHOT_KINDS = [
    name for name, row in SNAPSHOTS.items() if row.thread == TRAINING and name != "dead_filters"
]
SLOW_KINDS = ("patterns", "embedding")
OFF = {"kernel_layers": [], "activation_layers": [], "dead_filter_layers": [], "gradcam_layers": []}
ON = {
    "kernels": "kernel_layers",
    "activations": "activation_layers",
    "dead_filters": "dead_filter_layers",
    "gradcam": "gradcam_layers",
}
TOP_LAYERS = ["features.conv1", "features.conv3", "features.conv5"]


def event_bytes(log_dir: str) -> int:
    """Total size of the event files under ``log_dir`` and of their side files (``tb_cnnviz.assets``: the large
    payloads, next to the event file): the bytes a run takes on disk."""
    total = 0
    for root, _, files in os.walk(log_dir):
        total += sum(
            os.path.getsize(os.path.join(root, name))
            for name in files
            if "tfevents" in name or name.startswith(SIDE_FILE_PREFIX)
        )
    return total


def scheduled_steps(kind: str, every: int, steps: int) -> list[int]:
    """The steps at which ``kind`` writes: the first step (a baseline, for the cheap snapshot kinds) and every multiple of ``every``."""
    return [
        step for step in range(1, steps + 1) if step % every == 0 or (step == 1 and kind in SNAPSHOT_KINDS)
    ]


@functools.cache
def shapes(size: int, seed: int) -> ShapesDataset:
    return ShapesDataset(size, seed=seed)


def tensors(dataset: ShapesDataset, cli: argparse.Namespace, index=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` of ``dataset`` (all, or ``index``), upsampled to ``--size`` px when it is not 32."""
    images, labels = dataset.tensors() if index is None else dataset.tensors(index)
    if images.shape[-1] != cli.size:
        images = nn.functional.interpolate(images, size=cli.size, mode="bilinear", align_corners=False)
    return images, labels


def make_model(cli: argparse.Namespace) -> nn.Module:
    """The example SmallVGG, or a torchvision model by name (random init, one output per shapes class)."""
    if cli.model == "small_vgg":
        return small_vgg(width=cli.width)
    import torchvision

    return torchvision.models.get_model(cli.model, weights=None, num_classes=len(ShapesDataset.classes))


def sgd_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    batch_size: int,
) -> None:
    """One SGD step on ``batch_size`` images drawn (with replacement) by ``generator``."""
    batch = torch.randint(0, len(images), (batch_size,), generator=generator)
    loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def pretrain(width: int, steps: int, batch_size: int = 32) -> dict:
    """Weights after ``steps`` SGD steps: activation maps of a network in training, not of its random initialisation
    (those are darker, so their PNGs are about 20% smaller and grow quickly in the first steps)."""
    images, labels = shapes(2048, 0).tensors()
    torch.manual_seed(0)
    model = small_vgg(width=width).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        sgd_step(model, optimizer, images, labels, generator, batch_size)
    return model.state_dict()


def measure(
    kind: str,
    every: int,
    steps: int,
    log_dir: str,
    cli: argparse.Namespace,
    state: dict | None = None,
) -> list[int]:
    """Train ``steps`` steps logging only ``kind`` every ``every`` steps; returns the event-file size before step 1 and after each step.
    ``cli``: the command line (width, batch size, embedding images, pattern channels and steps)."""
    held_out = shapes(max(cli.embedding_images, 8), 1)
    images, labels = tensors(shapes(64 if cli.model != "small_vgg" else 2048, 0), cli)
    probe = tensors(held_out, cli, range(8))
    options = dict(OFF)
    if kind in ON:
        options.pop(ON[kind])
    elif kind == "patterns":
        options.update(
            pattern_layers=["features.conv5"] if cli.model == "small_vgg" else [_last_conv(cli)],
            pattern_channels=cli.pattern_channels,
            pattern_steps=cli.pattern_steps,
        )
    elif kind == "embedding":
        options.update(
            embedding_probe=tensors(held_out, cli, range(cli.embedding_images)),
            top_example_layers=TOP_LAYERS if cli.model == "small_vgg" else None,
        )
    else:
        raise ValueError(f"kind: expected one of {CHEAP_KINDS + SLOW_KINDS}, got {kind!r}")
    torch.manual_seed(0)
    model = make_model(cli)
    if state is not None:
        model.load_state_dict(state)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    viz = CNNVizCallback(
        model,
        log_dir=log_dir,
        probe=probe,
        class_names=ShapesDataset.classes,
        every_n_steps={kind: every},
        background=False,
        strict=True,
        flush_secs=3600,
        **options,
    )
    viz.flush()
    sizes = [event_bytes(log_dir)]
    model.train()
    for step in range(1, steps + 1):
        sgd_step(model, optimizer, images, labels, generator, cli.batch_size)
        viz.on_step_end(step)
        viz.flush()
        sizes.append(event_bytes(log_dir))
    viz.close()
    return sizes


def _last_conv(cli: argparse.Namespace) -> str:
    return [name for name, m in make_model(cli).named_modules() if isinstance(m, nn.Conv2d)][-1]


def growth(sizes: list[int], snapshots: int) -> dict:
    """Per-snapshot increments and the linearity check from a size series (see the module docstring)."""
    written = [step for step in range(1, len(sizes)) if sizes[step] != sizes[step - 1]]
    increments = [sizes[step] - sizes[step - 1] for step in written]
    later = increments[1:]
    half = snapshots // 2
    s0, sn, s2n = (
        (sizes[written[0]], sizes[written[half]], sizes[written[2 * half]])
        if len(later) >= 2 * half
        else (0, 0, 0)
    )
    return {
        "written": written,
        "first": increments[0] if increments else 0,
        "per_snapshot": sum(later) / len(later) if later else float("nan"),
        "spread": (max(later) - min(later)) / (sum(later) / len(later)) if later else float("nan"),
        "first_half": sn - s0,
        "second_half": s2n - sn,
        "deviation": (s2n - sn) / (sn - s0) - 1 if sn > s0 else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kinds", nargs="+", default=list(CHEAP_KINDS + SLOW_KINDS), choices=CHEAP_KINDS + SLOW_KINDS
    )
    parser.add_argument(
        "--model", default="small_vgg", help="small_vgg (the example, default) or a torchvision model name"
    )
    int_options = (
        ("--snapshots", 10, "N for the cheap kinds: 2N snapshots after the first (default 10)"),
        ("--slow-snapshots", 2, "N for patterns and embedding (default 2)"),
        ("--every", 2, "every_n_steps (default 2; the size of a snapshot does not depend on it)"),
        ("--width", 16, None),
        ("--size", 32, "input size in px (the shapes images are 32 px; others are upsampled)"),
        ("--batch-size", 16, None),
        (
            "--pretrain",
            150,
            "SGD steps (batch 32) before measuring (default 150; 0: from the initialisation)",
        ),
        ("--embedding-images", 1000, None),
        ("--pattern-channels", 64, None),
        ("--pattern-steps", 16, None),
        ("--run-steps", 10_000, "the run length of the estimate at the default schedule (default 10,000)"),
    )
    for flag, default, help_text in int_options:
        parser.add_argument(flag, type=int, default=default, help=help_text)
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))

    rows = []
    started = time.perf_counter()
    if args.model != "small_vgg":
        args.pretrain = 0  # only the example is pretrained
    state = pretrain(args.width, args.pretrain) if args.pretrain else None
    print(
        f"pretrained {args.pretrain} steps, {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    for kind in args.kinds:
        n = args.snapshots if kind in CHEAP_KINDS else args.slow_snapshots
        every = args.every
        steps = (
            2 * n + 1
        ) * every  # the first snapshot, then 2N more (plus a baseline at step 1 for snapshot kinds)
        begin = time.perf_counter()
        with tempfile.TemporaryDirectory() as log_dir:
            sizes = measure(
                kind,
                every,
                steps,
                log_dir,
                args,
                state=state,
            )
        result = growth(sizes, 2 * n)
        expected = scheduled_steps(kind, every, steps)
        if result["written"] != expected:
            print(
                f"warning: {kind} wrote at steps {result['written']}, scheduled {expected}", file=sys.stderr
            )
        rows.append((kind, 2 * n, result, time.perf_counter() - begin))
        print(
            f"{kind}: {len(result['written'])} snapshots in {steps} steps, {rows[-1][3]:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    model_name = (
        f"SmallVGG(width={args.width})" if args.model == "small_vgg" else f"{args.model} (random init)"
    )
    print(
        f"\n{model_name}, shapes {args.size}x{args.size}, pretrained {args.pretrain} steps, then batch {args.batch_size}, every {args.every} steps, probe 8 images; one kind per run; torch {torch.__version__}; "
        f"total {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'kind':<13} {'first (B)':>10} {'per snapshot (B)':>17} {'spread':>7} {'S(N)-S(0)':>10} {'S(2N)-S(N)':>11} {'deviation':>9}  snapshots"
    )
    for kind, count, result, _ in rows:
        print(
            f"{kind:<13} {result['first']:>10,} {result['per_snapshot']:>17,.0f} {100 * result['spread']:>6.1f}% "
            f"{result['first_half']:>10,} {result['second_half']:>11,} {100 * result['deviation']:>+8.2f}%  1 + {count}"
        )
    print(
        "\nspread: (largest - smallest) later snapshot over their mean; deviation: (S(2N)-S(N)) / (S(N)-S(0)) - 1."
    )
    every = default_every_n_steps()
    total = 0.0
    print(f"\nover {args.run_steps:,} steps at the default schedule (first snapshot + later ones):")
    for kind, _, result, _ in rows:
        count = args.run_steps // every[kind]
        size = result["first"] + (count - 1) * result["per_snapshot"]
        total += size
        print(f"{kind:<13} every {every[kind]:>5} steps: {count:>4} snapshots, {size / 1e6:>9.2f} MB")
    print(f"{'total':<13} {total / 1e6:>40.2f} MB")


if __name__ == "__main__":
    main()
