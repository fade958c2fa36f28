"""One model in training for ``benchmarks/overhead.py``: the model with random weights, random batches, an
SGD step, the clocks it is timed with, and a callback that starts with nothing due."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import torch
from torch import nn

from tb_cnnviz.callbacks import CNNVizCallback

DEFAULT_KINDS = ("kernels", "activations", "dead_filters", "gradcam")  # on by default (with a probe)
EXAMPLE_KINDS = ("patterns", "embedding", "separability")  # what the example turns on beside them
EXAMPLE_EPOCH_STEPS = 781  # CIFAR-10 at batch 64: the example's background kinds also run at each epoch end
EXAMPLE_EMBEDDING_IMAGES = 500


def build(name: str, size: int | None) -> tuple[nn.Module, int, int]:
    """A model with random weights, its input size and batch size (docs/design.md, Performance targets)."""
    if name in ("smallvgg", "example"):
        from tb_cnnviz.models import small_vgg

        return small_vgg(width=32), size or 32, 64
    if name in ("resnet50", "efficientnet_b0"):
        import torchvision

        return getattr(torchvision.models, name)(weights=None), size or 64, 16
    if name == "convnext_nano":
        import timm

        return timm.create_model("convnext_nano", pretrained=False), size or 64, 16
    raise SystemExit(
        f"--models: unknown model {name!r}; expected smallvgg, example, resnet50, efficientnet_b0, convnext_nano"
    )


class Clocks:
    """The clocks of a measurement: ``cpu`` (this thread's CPU time with one torch thread, else the
    process's) and ``wall``; device work is waited for on a GPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu_clock = time.thread_time if torch.get_num_threads() == 1 else time.process_time
        self.cpu_name = "thread CPU" if torch.get_num_threads() == 1 else "process CPU"

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed(self, work: Callable[[], None], cpu_clock: Callable[[], float] | None = None) -> dict:
        """``{"cpu": s, "wall": s}`` of ``work``, device work included."""
        cpu_clock = cpu_clock or self.cpu_clock
        self.sync()
        wall, cpu = time.perf_counter(), cpu_clock()
        work()
        self.sync()
        return {"wall": time.perf_counter() - wall, "cpu": cpu_clock() - cpu}


class Bench:
    """One model in training: a step function and the clocks."""

    def __init__(self, name: str, size: int | None, device: str, seed: int = 0):
        torch.manual_seed(seed)
        self.name = name
        self.model, self.size, self.batch = build(name, size)
        self.device = torch.device(device)
        self.clocks = Clocks(self.device)
        self.model.to(self.device).train()
        generator = torch.Generator().manual_seed(seed)
        classes = 10 if name in ("smallvgg", "example") else 1000
        self.images = torch.rand(8 * self.batch, 3, self.size, self.size, generator=generator).to(self.device)
        self.labels = torch.randint(0, classes, (8 * self.batch,), generator=generator).to(self.device)
        self.probe = (self.images[:8].clone(), self.labels[:8].clone())
        self.options: dict = {}
        if name == "example":  # examples/cifar10/train.py's callback
            held_out = torch.rand(EXAMPLE_EMBEDDING_IMAGES, 3, self.size, self.size, generator=generator)
            self.options = {
                "pattern_layers": ["features.conv3"],
                "pattern_channels": 16,
                "pattern_steps": 48,
                "embedding_probe": (held_out, torch.arange(EXAMPLE_EMBEDDING_IMAGES) % classes),
            }
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.step_index = 0
        self.cursor = 0

    def train_step(self) -> None:
        start = self.cursor * self.batch % len(self.images)
        self.cursor += 1
        x, y = self.images[start : start + self.batch], self.labels[start : start + self.batch]
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def callback(self, logdir: str, every: dict[str, int], **options) -> CNNVizCallback:
        """A callback whose baseline is already taken (resumed state), so nothing is due unless scheduled."""
        options = {**self.options, **options}
        viz = CNNVizCallback(self.model, log_dir=logdir, probe=self.probe, every_n_steps=every, **options)
        viz.load_state_dict(
            {"last_step": self.step_index, "window_start": self.step_index, "logged_probe": True}
        )
        return viz


def spin(seconds: float, clock: Callable[[], float]) -> None:
    """Busy for ``seconds`` of ``clock``."""
    end = clock() + seconds
    while clock() < end:
        pass


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
