"""Benchmark: the cost of the ``faithfulness`` snapshot in training steps, and amortised over its interval.

Target (issue 17 section 2): on by default with Grad-CAM only if its cost is at most 1% of
training time amortised over the Grad-CAM interval (200 steps by default). Measured on the two
models of the performance targets (``benchmarks/overhead.py``): the example CNN
(``SmallVGG(width=32)``, 32 px, batch 64) and torchvision ResNet-50 at 64 px (batch 16), each with
8 probe images, at the callback's default layers and settings (16 steps per curve: 62 forwards
per probe image, batched by 64).

Training steps (SGD, forward + backward + step, train mode) and snapshots (the ``gradcam`` and the
``faithfulness`` functions, as the callback calls them) are timed in alternation for ``--rounds``
rounds after a warm-up; medians of CPU time (``time.process_time``: steadier on a shared
machine) and wall time are printed, with the cost in training steps and the amortised share.

    .venv/bin/python benchmarks/faithfulness_cost.py [--models smallvgg resnet50] [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tb_cnnviz import snapshots  # noqa: E402
from tb_cnnviz.callbacks import CNNVizCallback  # noqa: E402
from tb_cnnviz.kinds import SNAPSHOTS  # noqa: E402

PROBE_IMAGES = 8
BUDGET = 0.01  # the threshold for on-by-default


def build(name: str, device: torch.device):
    """``(model, image size, batch size, classes)`` as in benchmarks/overhead.py."""
    torch.manual_seed(0)
    if name == "smallvgg":
        from tb_cnnviz.models import small_vgg

        return small_vgg(width=32).to(device), 32, 64, 10
    if name == "resnet50":
        import torchvision

        return torchvision.models.resnet50(weights=None).to(device), 64, 16, 1000
    raise SystemExit(f"--models: unknown model {name!r}; expected smallvgg or resnet50")


def clocks(function, device: torch.device) -> tuple[float, float]:
    """``(cpu seconds, wall seconds)`` of one call."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    cpu, wall = time.process_time(), time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(name: str, rounds: int, steps_per_round: int, device: torch.device) -> dict:
    model, size, batch, classes = build(name, device)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, size, size, generator=generator).to(device)
    labels = torch.randint(0, classes, (batch,), generator=generator).to(device)
    probe = (images[:PROBE_IMAGES].clone().cpu(), labels[:PROBE_IMAGES].clone().cpu())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    with tempfile.TemporaryDirectory() as logdir:
        viz = CNNVizCallback(model, log_dir=logdir, probe=probe, faithfulness=True, background=False)
        config = viz.config
        viz.close()

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()

    def snapshot(kind: str):
        inputs = snapshots.Inputs(
            model=config.base,
            layers=config.layers[kind],
            images=probe[0].to(device),
            labels=probe[1],
            logits=config.logits,
            settings=config.settings[kind],
        )
        return lambda: getattr(snapshots, kind)(inputs)

    times: dict[str, list[tuple[float, float]]] = {"step": [], "gradcam": [], "faithfulness": []}
    for _ in range(2):  # warm-up
        train_step()
    snapshot("gradcam")()
    snapshot("faithfulness")()
    for _ in range(rounds):
        per_step = [clocks(train_step, device) for _ in range(steps_per_round)]
        times["step"].append(tuple(statistics.median(t[i] for t in per_step) for i in (0, 1)))
        for kind in ("gradcam", "faithfulness"):
            times[kind].append(clocks(snapshot(kind), device))
    medians = {
        kind: tuple(statistics.median(t[i] for t in values) for i in (0, 1)) for kind, values in times.items()
    }
    return {"layers": [n for n, _ in config.layers["faithfulness"]], "size": size, "batch": batch, **medians}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["smallvgg", "resnet50"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps-per-round", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    interval = SNAPSHOTS["gradcam"].every_n_steps
    print(
        f"device {device}, {args.threads} thread(s), {PROBE_IMAGES} probe images, medians of {args.rounds} rounds; "
        f"amortised over the Grad-CAM interval ({interval} steps); budget {BUDGET:.0%}"
    )
    for name in args.models:
        result = measure(name, args.rounds, args.steps_per_round, device)
        print(f"{name} ({result['size']} px, batch {result['batch']}, layers {result['layers']}):")
        for clock, index in (("cpu", 0), ("wall", 1)):
            step = result["step"][index]
            cam, faith = result["gradcam"][index], result["faithfulness"][index]
            share = faith / step / interval
            print(
                f"  {clock:4s}: training step {step * 1e3:8.1f} ms | gradcam {cam * 1e3:8.1f} ms "
                f"({cam / step:5.2f} steps) | faithfulness {faith * 1e3:8.1f} ms ({faith / step:5.2f} steps, "
                f"{share:.2%} amortised: {'within' if share <= BUDGET else 'over'} budget)"
            )


if __name__ == "__main__":
    main()
