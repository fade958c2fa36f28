"""The models of ``benchmarks/scale.py`` and the pool of summaries its runs write: ``--variants`` weight
states of the model, each snapshot computed by the callback's own code (``CNNVizCallback._compute``), kept
in a pickle next to the logdir for later builds with the same code."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pickle
import tempfile
import time
from pathlib import Path

SGD_STEPS = 1  # between two weight states
PRETRAIN_STEPS = 150  # the example's SmallVGG before its first state (event_growth.py's default)
# The configurations: (runs measured, logged training steps) per model at full size, and the smoke size.
MODELS = {
    "resnet50": {"size": 224, "runs": (1, 20), "steps": 100_000, "quick_runs": (1,), "quick_steps": 2_000},
    "example": {"size": 32, "runs": (500,), "steps": 2_000, "quick_runs": (20,), "quick_steps": 1_000},
}


@dataclasses.dataclass
class Pool:
    """What each run writes: per snapshot the summaries of each weight state, and the once-per-run
    summaries (probe images) written with the first snapshot that needs them."""

    variants: dict  # snapshot name -> [summaries of state 0, state 1, ...] (in the callback's order)
    once: dict  # snapshot name -> summaries written once, with its first snapshot
    every: dict  # snapshot name -> interval
    describe: str  # where the content comes from


def make_model(name: str, seed: int = 0):
    """The benchmark's model: torchvision ResNet-50 (weights=None, 10 classes) or the example's SmallVGG."""
    import torch

    torch.manual_seed(seed)
    if name == "resnet50":
        import torchvision

        return torchvision.models.resnet50(weights=None, num_classes=10)
    from tb_cnnviz.models import small_vgg

    return small_vgg(num_classes=10, width=32)  # examples/cifar10/train.py's defaults


def probe_images(size: int, count: int = 8):
    """``count`` held-out shapes images (seed 1, the example's test set) upsampled to ``size`` px, and labels."""
    import torch.nn.functional as F

    from tb_cnnviz.datasets import ShapesDataset

    images, labels = ShapesDataset(count, seed=1).tensors()
    if images.shape[-1] != size:
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    return images, labels


def new_callback(model, log_dir: str, probe, **options):
    from tb_cnnviz.callbacks import CNNVizCallback
    from tb_cnnviz.datasets import ShapesDataset

    return CNNVizCallback(
        model, log_dir=log_dir, probe=probe, class_names=ShapesDataset.classes, strict=True, **options
    )


def series_of(summaries: list, sizes: bool = False) -> list:
    """``(kind, layer)`` of every plugin summary in a list (the ordinary scalars left out); with ``sizes``
    ``((kind, layer), serialised bytes of the value)``."""
    from tb_cnnviz import metadata

    found = []
    for proto in summaries:
        for value in proto.value:
            if value.metadata.plugin_data.plugin_name != metadata.PLUGIN_NAME:
                continue
            content = json.loads(value.metadata.plugin_data.content or b"{}")
            key = (content.get("kind"), content.get("layer"))
            found.append((key, value.ByteSize()) if sizes else key)
    return found


def build_pool(model_name: str, count: int, log, pretrain_steps: int = PRETRAIN_STEPS) -> Pool:
    """The summaries of ``count`` weight states of the model, computed by the callback's own code
    (``pretrain_steps``: the example's SmallVGG before the first state)."""
    import torch
    from event_growth import pretrain, sgd_step, shapes

    from tb_cnnviz import snapshots
    from tb_cnnviz.callbacks import CNNVizCallback
    from tb_cnnviz.kinds import SNAPSHOTS, TRAINING

    started = time.perf_counter()
    size = MODELS[model_name]["size"]
    model = make_model(model_name)
    if model_name == "example" and pretrain_steps:  # as event_growth.py: a network in training, not at init
        model.load_state_dict(pretrain(32, pretrain_steps))
    probe = probe_images(size)
    images, labels = shapes(64 if model_name == "resnet50" else 2048, 0).tensors()
    if images.shape[-1] != size:
        images = torch.nn.functional.interpolate(images, size=size, mode="bilinear", align_corners=False)
    batch = 2 if model_name == "resnet50" else 16
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="cnnviz_scale_pool_") as scratch:
        # overhead_budget=0: the window counts the one forward per state (what is written is the same)
        viz = new_callback(model, scratch, probe, overhead_budget=0)
        try:
            rows = [
                row
                for row in SNAPSHOTS.values()
                if viz.enabled[row.name] and row.thread == TRAINING and row.name != "dead_filters"
            ]
            written: set[str] = set()
            variants: dict[str, list] = {row.name: [] for row in rows}
            once: dict[str, list] = {}
            if viz.enabled.get("dead_filters"):
                variants["dead_filters"] = []
            for state in range(count):
                if state:  # the next state: SGD steps on shapes images (as event_growth.py measures)
                    model.train().requires_grad_(True)
                    for _ in range(SGD_STEPS):
                        sgd_step(model, optimizer, images, labels, generator, batch)
                    model.eval()
                for row in rows:  # the callback's _compute: the snapshot, then the kinds written once
                    inputs = viz._inputs(row, viz.base)
                    variants[row.name].append(CNNVizCallback._compute(row, inputs, []))
                    if state == 0:
                        kinds_once = [kind for kind in viz._once(row) if kind not in written]
                        once[row.name] = [s for kind in kinds_once for s in getattr(snapshots, kind)(inputs)]
                        written.update(kinds_once)
                if "dead_filters" in variants:
                    # a training forward (train mode, grad enabled: what the window counts), with the
                    # parameters frozen so that no graph is kept
                    model.train().requires_grad_(False)
                    model(viz.config.inputs["probe"][0])
                    model.eval()
                    measured = viz._window.close(200, 0)
                    row = SNAPSHOTS["dead_filters"]
                    variants["dead_filters"].append(
                        CNNVizCallback._compute(row, viz._inputs(row, viz.base, measured=measured), [])
                    )
                log(
                    f"  {model_name}: weight state {state + 1}/{count}, {time.perf_counter() - started:.0f} s"
                )
        finally:
            viz.close(final=False)
    every = {name: viz.every_n_steps[name] for name in variants}
    start = (
        "torchvision ResNet-50 (random init"
        if model_name == "resnet50"
        else f"the example SmallVGG(width=32) (pretrained {pretrain_steps} SGD steps of batch 32"
    )
    describe = (
        f"{start}, 10 classes), probe: 8 shapes images at {size} px; {count} weight state(s) {SGD_STEPS} SGD "
        f"step(s) apart (batch {batch}, lr 0.05, momentum 0.9, shapes images), cycled; dead-filter rates "
        "counted by the callback's window over each state's training forwards"
    )
    return Pool(variants, once, every, describe)


def cached_pool(
    path: Path, fingerprint: str, model_name: str, variants: int, log, pretrain_steps: int = PRETRAIN_STEPS
) -> Pool:
    """``build_pool``, kept next to the logdir (not in it) for more runs later with the same code."""
    if path.exists():
        with contextlib.suppress(Exception), path.open("rb") as handle:
            saved = pickle.load(handle)
            if (saved["code"], saved["variants"], saved.get("pretrain")) == (
                fingerprint,
                variants,
                pretrain_steps,
            ):
                return Pool(**saved["pool"])
    pool = build_pool(model_name, variants, log, pretrain_steps)
    saved = {"code": fingerprint, "variants": variants, "pretrain": pretrain_steps, "pool": vars(pool)}
    with path.open("wb") as handle:  # a dict of protos and texts: readable whatever imports this module
        pickle.dump(saved, handle)
    return pool
