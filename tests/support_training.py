"""Tiny models and training loops for tests: a SmallVGG trained deterministically (``train_small_vgg``), a
two-conv net unlike it (``TwoConvNet``), the loop that drives a callback (``fit_with_callback``,
``consecutive_batches``), and runs logged by a real ``CNNVizCallback`` (``every_step_patterns``,
``log_views_run``, ``log_broken_run``). Test modules import these from ``support``."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from tb_cnnviz import kinds
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

TRAINED_WIDTH = 16


def train_small_vgg(
    dataset: ShapesDataset, steps: int, width: int = TRAINED_WIDTH, seed: int = 0, batch_size: int = 64
) -> nn.Module:
    """Train a SmallVGG on ``dataset`` with SGD and a cosine learning-rate decay; deterministic for a seed.

    Training runs on one thread with deterministic algorithms (both restored after), so its float path
    does not depend on the caller's thread count. The decay to zero lets BatchNorm's running statistics
    settle on the final weights: at a constant rate the last steps left the held-out accuracy anywhere
    from 0.72 to 1.0, depending on the seed and the thread count.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = small_vgg(width=width)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        images, labels = dataset.tensors()
        model.train()
        for _ in range(steps):
            index = torch.randint(0, len(images), (batch_size,), generator=generator)
            loss = nn.functional.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    return model.eval()


class TwoConvNet(nn.Module):
    """A CNN unlike SmallVGG: conv 3 -> 4 named ``first``, ReLU, conv 4 -> 6 named ``second``, ReLU, global mean,
    linear head 6 -> ``classes``; made and registered in that order (whatever the names' natural order), so a
    seed gives the same weights for any names."""

    def __init__(self, first: str = "block1", second: str = "block2", classes: int = 10) -> None:
        super().__init__()
        self._convs = (first, second)
        self.add_module(first, nn.Conv2d(3, 4, 3, padding=1))
        self.add_module(second, nn.Conv2d(4, 6, 3, padding=1))
        self.head = nn.Linear(6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = (self.get_submodule(name) for name in self._convs)
        return self.head(torch.relu(second(torch.relu(first(x)))).mean(dim=(2, 3)))


def fit_with_callback(
    model: nn.Module,
    viz: Any,
    optimizer: torch.optim.Optimizer,
    steps: range,
    batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    *,
    after_update: Callable[[int], None] | None = None,
    after_step: Callable[[int], None] | None = None,
) -> None:
    """The training loop that drives a callback: ``model.train()``, then for each step of ``steps`` the
    cross-entropy of ``batch(step)`` (images, labels), an ``optimizer`` step, ``after_update(step)`` when given
    (e.g. damage planted before the callback sees the step), ``viz.on_step_end(step)`` and ``after_step(step)``
    when given."""
    model.train()
    for step in steps:
        images, labels = batch(step)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if after_update is not None:
            after_update(step)
        viz.on_step_end(step)
        if after_step is not None:
            after_step(step)


def consecutive_batches(
    images: torch.Tensor, labels: torch.Tensor, size: int
) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """``fit_with_callback``'s ``batch``: step s (from 1) trains on the s-th run of ``size`` images in order."""
    return lambda step: (images[size * (step - 1) : size * step], labels[size * (step - 1) : size * step])


def every_step_patterns(model: nn.Module, log_dir, monkeypatch, job: Callable, **extra: Any) -> Any:
    """A strict CNNVizCallback (``extra``: more constructor arguments) logging a pattern gallery of
    ``features.conv2`` every step, whose ``snapshots.patterns`` is ``job`` (through ``monkeypatch``)."""
    from tb_cnnviz import snapshots
    from tb_cnnviz.callbacks import CNNVizCallback

    monkeypatch.setattr(snapshots, "patterns", job)
    return CNNVizCallback(
        model,
        log_dir=log_dir,
        pattern_layers=["features.conv2"],
        every_n_steps={"patterns": 1},
        strict=True,
        **extra,
    )


def log_views_run(
    logdir: str,
    *,
    steps: int = 6,
    every: int = 2,
    width: int = 4,
    probe_images: int = 4,
    embedding_images: int = 60,
    embedding_method: str = "pca",
    pattern_channels: int = 4,
    pattern_steps: int = 4,
    pattern_size: int = 16,
    attributions: tuple = ("saliency",),
    seed: int = 0,
    lr: float = 0.05,
    batch_size: int = 16,
) -> None:
    """Train a SmallVGG on the shapes dataset with CNNVizCallback logging every kind the views read:
    Grad-CAM (+ attributions and faithfulness), probe, kernels of conv1/conv2, patterns of conv2, an embedding
    of a held-out set with sprites, and top examples of conv2 and conv3 (slow kinds on the training thread)."""
    from tb_cnnviz.callbacks import CNNVizCallback

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is far faster on a busy 2-core machine
    try:
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = small_vgg(width=width)
        images, labels = ShapesDataset(max(256, batch_size * 8), seed=seed).tensors()
        held_images, held_labels = ShapesDataset(
            max(embedding_images, probe_images), seed=seed + 100
        ).tensors()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        schedule = dict.fromkeys(kinds.SNAPSHOTS, every)
        with CNNVizCallback(
            model,
            log_dir=logdir,
            probe=(held_images[:probe_images], held_labels[:probe_images]),
            class_names=ShapesDataset.classes,
            kernel_layers=["features.conv1", "features.conv2"],
            attributions=list(attributions),
            faithfulness=True,
            pattern_layers=["features.conv2"],
            pattern_channels=pattern_channels,
            pattern_steps=pattern_steps,
            pattern_size=pattern_size,
            embedding_probe=(held_images[:embedding_images], held_labels[:embedding_images]),
            embedding_method=embedding_method,
            top_example_layers=["features.conv2", "features.conv3"],
            top_k=4,
            every_n_steps=schedule,
            background=False,
            strict=True,
        ) as viz:

            def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
                index = torch.randint(0, len(images), (batch_size,), generator=generator)
                return images[index], labels[index]

            fit_with_callback(model, viz, optimizer, range(1, steps + 1), batch)
    finally:
        torch.set_num_threads(threads)


def log_broken_run(
    logdir: str, *, kill_after: int | None = 5, inf_after: int | None = 9, steps: int = 10
) -> None:
    """SmallVGG (width 8) trained ``steps`` steps with kernels (conv1, conv4) and dead filters every 2 steps;
    after step ``kill_after`` the BatchNorm shift of 6 of conv2's 8 filters is -1000 (their ReLU never passes
    signal again), after step ``inf_after`` one weight of conv4 is infinite (the next step's forward and
    update make the weights non-finite). None: no such damage (a healthy run on the same schedule)."""
    from tb_cnnviz.callbacks import CNNVizCallback

    torch.manual_seed(0)
    model = small_vgg(width=8)
    images, labels = ShapesDataset(16 * steps, seed=1).tensors()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with CNNVizCallback(
        model,
        log_dir=logdir,
        kernel_layers=["features.conv1", "features.conv4"],
        every_n_steps={"kernels": 2, "dead_filters": 2},
        background=False,
    ) as viz:

        def damage(step: int) -> None:
            with torch.no_grad():
                if step == kill_after:
                    model.features.bn2.bias[:6] = -1000.0
                if step == inf_after:
                    model.features.conv4.weight[0, 0, 0, 0] = float("inf")

        fit_with_callback(
            model,
            viz,
            optimizer,
            range(1, steps + 1),
            consecutive_batches(images, labels, 16),
            after_update=damage,
        )
