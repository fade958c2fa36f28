"""Training overhead of CNNVizCallback at default settings, measured inside one process.

Separate processes scatter by about ±10% on a shared 2-core machine, too much to see 1%. Here
everything is measured in one warmed-up process, side by side:

- **per-step cost**: rounds of three blocks of training steps in rotating order, ``off`` (no
  callback), ``on`` (a callback attached: its dead-filter hooks and ``on_step_end``, with no
  snapshot due) and ``off`` again; the cost is the median over rounds of (on - off) / off, and
  the **noise floor** is the standard error of such a median, from the A/A differences
  (off' - off) / off of the same rounds;
- **per-call cost of each snapshot kind**: ``on_step_end`` at a step where only that kind is due
  minus at a step where nothing is, alternated, in milliseconds and in training steps; a
  background kind is timed up to ``flush()`` (on a CPU machine it competes with training);
- **amortised overhead** = per-step cost + sum over the kinds on by default of
  (per-call cost in steps / interval).

    python benchmarks/overhead.py                       # every model, CPU
    python benchmarks/overhead.py --models resnet50 --rounds 20 --device cuda

``example`` is the run ``examples/cifar10/train.py`` makes at its defaults: SmallVGG (width 32, batch 64,
32 px) with a pattern gallery of conv3 and a 500-image embedding probe, so the background kinds
(patterns, embedding, separability: every 1000 steps and at each epoch end, 781 steps of CIFAR-10)
count too, their CPU time in the background thread included.

CPU time (user + sys of this process) is steadier than wall time on a shared machine; both are
printed. Peak extra memory is the growth of the process's peak RSS while the callback worked.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import torch
from torch import nn

from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.kinds import SNAPSHOTS

NEVER = 10**9
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


class Bench:
    """One model in training: a step function and the clocks."""

    def __init__(self, name: str, size: int | None, device: str, seed: int = 0):
        torch.manual_seed(seed)
        self.name = name
        self.model, self.size, self.batch = build(name, size)
        self.device = torch.device(device)
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

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed(self, work: Callable[[], None]) -> tuple[float, float]:
        """(wall, cpu) seconds of ``work``, device work included."""
        self.sync()
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        self.sync()
        return time.perf_counter() - wall, time.process_time() - cpu

    def callback(self, logdir: str, every: dict[str, int], **options) -> CNNVizCallback:
        """A callback whose baseline is already taken (resumed state), so nothing is due unless scheduled."""
        options = {**self.options, **options}
        viz = CNNVizCallback(self.model, log_dir=logdir, probe=self.probe, every_n_steps=every, **options)
        viz.load_state_dict(
            {"last_step": self.step_index, "window_start": self.step_index, "logged_probe": True}
        )
        return viz


def per_step_cost(benches: dict[str, Bench], logdir: str, rounds: int, block: int, budget: float) -> dict:
    """Median relative cost of the callback's per-step work, and the A/A noise floor, in wall and CPU time.

    Three copies of the model train side by side from the same weights: ``on`` with a callback
    attached for the whole measurement (so its dead-filter sample adapts to the budget, as in a
    real run; no snapshot is due), ``off`` and ``off2`` without.

    On a shared 2-core CPU the blocks scatter by several percent, so the A/B median resolves about
    1.5%. ``instrumented`` is the same cost measured from inside, without that noise: the time spent
    in ``on_step_end`` plus the time the dead-filter hooks spent counting (the tracker's own clock),
    per training step; it leaves out only the dispatch of two forward pre-hooks per forward.
    """
    quiet = {kind: NEVER for kind in SNAPSHOTS}
    on = benches["on"]
    viz = on.callback(logdir, quiet, overhead_budget=budget)
    callbacks = {"on": viz, "off": None, "off2": None}
    inside = {"wall": 0.0, "cpu": 0.0, "steps": 0}

    def run_block(what: str) -> tuple[float, float]:
        bench, callback = benches[what], callbacks[what]

        def work() -> None:
            for _ in range(block):
                bench.train_step()
                bench.step_index += 1
                if callback is not None:
                    wall, cpu = time.perf_counter(), time.process_time()
                    callback.on_step_end(bench.step_index)
                    inside["wall"] += time.perf_counter() - wall
                    inside["cpu"] += time.process_time() - cpu
                    inside["steps"] += 1

        return bench.timed(work)

    for what in ("on", "off", "off2"):  # warm-up; the callback measures its cost and picks its sample
        for _ in range(4):
            run_block(what)
    costs, floors = {"wall": [], "cpu": []}, {"wall": [], "cpu": []}
    steps = []
    tracker = viz._window.tracker if viz._window is not None else None
    inside.update(wall=0.0, cpu=0.0, steps=0)
    counted_seconds = tracker.seconds if tracker is not None else 0.0
    for index in range(rounds):
        order = ["off", "on", "off2"]
        order = order[index % 3 :] + order[: index % 3]  # rotate: no block always runs first
        times = {what: run_block(what) for what in order}
        for axis, column in (("wall", 0), ("cpu", 1)):
            off, off2, with_callback = times["off"][column], times["off2"][column], times["on"][column]
            costs[axis].append((with_callback - (off + off2) / 2) / ((off + off2) / 2))
            floors[axis].append((off2 - off) / off)
        steps.append((times["off"][0] + times["off2"][0]) / (2 * block))
    step = statistics.median(steps)
    counted_seconds = (tracker.seconds if tracker is not None else 0.0) - counted_seconds
    count_every = tracker.count_every if tracker is not None else None
    viz.close()
    per_step_inside = (inside["wall"] + counted_seconds) / max(inside["steps"], 1)
    return {
        "step_ms": 1000 * step,
        "instrumented": per_step_inside / step,
        "count_every": count_every,
        "per_step": {axis: statistics.median(values) for axis, values in costs.items()},
        # the resolution of the per-step median: the standard error of a median of ``rounds`` A/A
        # differences (1.25 sd / sqrt(n)); each "on" is compared with the mean of two "off"s
        "floor": {
            axis: 1.25 * statistics.stdev(values) / len(values) ** 0.5 for axis, values in floors.items()
        },
    }


def per_call_costs(bench: Bench, logdir: str, kinds: tuple[str, ...], repeats: int, **options) -> dict:
    """Per kind, the median extra seconds (wall, cpu) of an ``on_step_end`` where that kind is due."""
    result = {}
    for kind in kinds:
        every = {other: NEVER for other in SNAPSHOTS}
        every[kind] = 2
        viz = bench.callback(logdir, every, **options)
        background = SNAPSHOTS[kind].thread == "background"
        due, idle = [], []
        for _ in range(2 * repeats):  # consecutive steps alternate: due (even) and idle (odd)
            bench.train_step()
            bench.step_index += 1
            step = bench.step_index

            def work(viz: CNNVizCallback = viz, step: int = step, flush: bool = background) -> None:
                viz.on_step_end(step)
                if flush:
                    viz.flush()

            (due if step % 2 == 0 else idle).append(bench.timed(work))
        viz.close()
        result[kind] = tuple(
            max(0.0, statistics.median(t[i] for t in due) - statistics.median(t[i] for t in idle))
            for i in (0, 1)
        )
    return result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="smallvgg,resnet50,efficientnet_b0,convnext_nano")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--size", type=int, default=None, help="input size (default: 32 for smallvgg, else 64)"
    )
    parser.add_argument("--rounds", type=int, default=12, help="rounds of off/on/off blocks")
    parser.add_argument("--block", type=int, default=5, help="training steps per block")
    parser.add_argument("--repeats", type=int, default=5, help="due/idle pairs per snapshot kind")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--overhead-budget",
        type=float,
        default=0.003,
        help="the callback's overhead_budget (0: count every batch)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds of {args.block}-step blocks"
    )
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        try:
            benches = {what: Bench(name, args.size, args.device) for what in ("on", "off", "off2")}
        except ImportError as error:
            print(f"{name}: skipped ({error})")
            continue
        bench = benches["on"]
        for copy in benches.values():  # warm-up
            for _ in range(3):
                copy.train_step()
        rss = peak_rss_mb()
        with tempfile.TemporaryDirectory() as logdir:
            step = per_step_cost(benches, logdir, args.rounds, args.block, args.overhead_budget)
            kinds = DEFAULT_KINDS + (EXAMPLE_KINDS if name == "example" else ())
            calls = per_call_costs(benches["off"], logdir, kinds, args.repeats)
        step_s = step["step_ms"] / 1000
        every = {kind: float(SNAPSHOTS[kind].every_n_steps) for kind in kinds}
        for kind in set(kinds) & set(EXAMPLE_KINDS):  # every n steps and at each epoch end
            every[kind] = 1 / (1 / every[kind] + 1 / EXAMPLE_EPOCH_STEPS)
        amortised = {
            axis: step["per_step"][axis] + sum(calls[k][i] / step_s / every[k] for k in kinds)
            for i, axis in enumerate(("wall", "cpu"))
        }
        row = {
            "model": f"{name} {bench.size}px b{bench.batch}",
            "step_ms": step["step_ms"],
            "per_step": step["per_step"],
            "floor": step["floor"],
            "calls": {k: (1000 * calls[k][0], calls[k][0] / step_s) for k in kinds},
            "instrumented": step["instrumented"],
            "amortised_instrumented": step["instrumented"]
            + sum(calls[k][0] / step_s / every[k] for k in kinds),
            "cpu_calls": {k: calls[k][1] / step_s for k in kinds},
            "amortised": amortised,
            "extra_rss_mb": peak_rss_mb() - rss,
            "count_every": step["count_every"],
        }
        rows.append(row)
        print_row(row)
        sys.stdout.flush()
    print_table(rows)
    background = [row for row in rows if set(EXAMPLE_KINDS) & set(row["calls"])]
    if background:
        print(
            "\nBackground kinds (ms wall / training steps of CPU time per call, background thread included):"
        )
        for row in background:
            cells = [
                f"{k} {row['calls'][k][0]:.0f} ms / {row['cpu_calls'][k]:.1f} steps" for k in EXAMPLE_KINDS
            ]
            print(f"{row['model']}: " + "; ".join(cells))
    return 0


def print_row(row: dict) -> None:
    calls = ", ".join(f"{k} {ms:.0f} ms = {steps:.2f} steps" for k, (ms, steps) in row["calls"].items())
    print(
        f"{row['model']}: step {row['step_ms']:.1f} ms; dead filters counted on 1 batch in {row['count_every']}; per-step {100 * row['per_step']['cpu']:+.2f}% cpu "
        f"{100 * row['per_step']['wall']:+.2f}% wall (noise floor {100 * row['floor']['cpu']:.2f}% / "
        f"{100 * row['floor']['wall']:.2f}%); {calls}; amortised {100 * row['amortised']['cpu']:+.2f}% cpu "
        f"{100 * row['amortised']['wall']:+.2f}% wall; instrumented per-step {100 * row['instrumented']:+.2f}%, "
        f"amortised {100 * row['amortised_instrumented']:+.2f}%; peak RSS +{row['extra_rss_mb']:.0f} MB"
    )


def print_table(rows: list[dict]) -> None:
    """The README table (markdown)."""
    kinds = DEFAULT_KINDS
    print()
    print(
        "| model | training step | dead filters counted on | per-step overhead (CPU / wall) | "
        + " | ".join(f"{k} (ms / steps)" for k in kinds)
        + " | amortised (CPU / wall) | noise floor (CPU / wall) | instrumented per-step | amortised, instrumented |"
        " peak extra RSS |"
    )
    print("|---" * (9 + len(kinds)) + "|")
    for row in rows:
        cells = [
            row["model"],
            f"{row['step_ms']:.0f} ms",
            f"1 batch in {row['count_every']}",
            f"{100 * row['per_step']['cpu']:+.2f}% / {100 * row['per_step']['wall']:+.2f}%",
            *(f"{row['calls'][k][0]:.0f} / {row['calls'][k][1]:.2f}" for k in kinds),
            f"**{100 * row['amortised']['cpu']:+.2f}%** / {100 * row['amortised']['wall']:+.2f}%",
            f"{100 * row['floor']['cpu']:.2f}% / {100 * row['floor']['wall']:.2f}%",
            f"{100 * row['instrumented']:+.2f}%",
            f"**{100 * row['amortised_instrumented']:+.2f}%**",
            f"+{row['extra_rss_mb']:.0f} MB",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
