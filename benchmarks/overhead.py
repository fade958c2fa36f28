"""Training overhead of CNNVizCallback at default settings, measured inside one process.

Per model, in one warmed-up process with one copy of the model:

- **per-step cost**: what the callback adds to every training step (the dead-filter hooks on the
  batches they count, the two forward pre-hooks that decide whether to count, ``on_step_end`` with
  no snapshot due), as a fraction of a training step;
- **per-call cost of each snapshot kind**: ``on_step_end`` at a step where only that kind is due
  minus at a step where nothing is, in milliseconds and in training steps (a background kind up to
  ``flush()``: on a CPU machine its thread competes with training, so its CPU time counts);
- **amortised overhead** = per-step cost + sum over the kinds on by default of
  (per-call cost in steps / interval), with its 95% interval.

How the per-step cost is resolved to a fraction of a percent on a shared 2-core machine:

1. *Single steps, alternated, paired.* The model alternates between steps with the callback (B: its
   hooks attached, ``on_step_end`` called) and without (A: the hooks detached with
   ``DeadFilterTracker.detach``, no call) in groups B A A B. Each B is paired with the A next to it,
   so whatever drifts over seconds (another process's load, clock frequency, the allocator) is
   common to both steps of a pair and cancels in their difference; the ABBA order puts B first in one
   pair and second in the other, so a step's dependence on its position cancels in the mean. (Whole
   runs in separate processes scattered by +-10%; blocks of steps on three copies of the model by
   4-5%, copies differing by their memory layout.)
2. *Per-thread CPU time.* With ``--threads 1`` (the default) torch runs the whole training step,
   backward included, on the calling thread, so ``time.thread_time()`` is the step's CPU time and
   time taken by other processes does not enter it (their cache and memory-bandwidth contention
   still does). With more threads the process CPU time is used (spinning OpenMP workers add noise).
   Wall time is always measured too; on a GPU (``--device cuda``, every step synchronised) the
   wall columns are the ones to read, the CPU ones being the host's share.
3. *Strata, forced and weighted.* The callback counts dead filters on one batch in k (per group of
   layers: those where dead filters are reported, and the others), k chosen against its budget
   during the warm-up. Its per-step cost is then sum over strata of share x cost: a B step that
   counts nothing (share 1 - 1/k - 1/k' + ...), one that counts the reported layers (1/k), one that
   counts the others (1/k'), one that counts both (1/lcm(k, k'), taken as the sum of the two extra
   costs); the shares are exact for the sample chosen. A plain median or trimmed mean of all pairs
   would drop the counted batches (skewed differences), and with a natural sample only one B step in
   k would measure the counting. So after the warm-up every other B step is forced to count nothing
   and the others to count one group each in turn (``set_count_every`` before the step: the same
   hooks and work as a counted batch of the run), and each stratum's relative differences
   (B - A) / mean(A) are summarised by a 10% trimmed mean (a load spike is trimmed).
4. *The idle stratum, timed.* A B step that counts nothing differs from an A step only by the
   ``on_step_end`` call (timed around the call, on every B step) and the tracker's two forward
   pre-hooks on the model (timed on an ``nn.Identity`` carrying the same bound hooks, with and
   without); that timed cost is the idle stratum's value in the estimate, ``per-step``. It weighs
   about 90% of the steps, so its pairs, which would set the noise floor alone (at 1% step noise,
   about 0.3% with 100 pairs), instead check it: the idle B steps' A/B mean must contain the timed
   value within its 95% interval, and the estimate from the pairs alone (``from the pairs alone``,
   every stratum's value from its pairs) is printed beside it. The counted strata's uncertainty is
   divided by k in the estimate, so the floor holds even on a loaded machine. Left out: removing the
   counting hooks after a counted batch, done between the steps here (attaching and removing
   ConvNeXt-Nano's 46 hooks takes about 130 us, once per counted batch: about 0.002% of a step).
5. *The noise floor* is the half-width of the 95% confidence interval of the per-step estimate,
   1.96 x SE: a cost outside +-floor of the printed figure is excluded 19 times in 20. Each
   stratum's trimmed mean has the Tukey-McLaughlin standard error s_w / ((1 - 2g) sqrt(n)) (s_w the
   winsorized standard deviation, g = 0.1 the trimmed share per side; a stratum of fewer than 10
   pairs uses its plain mean, and under 3 pairs the largest stratum's s_w); the strata's SEs add in
   quadrature with their shares squared (the timed idle value's SE is negligible and left out). The
   amortised figure's interval adds each kind's per-call SE / interval in quadrature. On simulated
   steps with known costs (tests/callbacks/test_overhead_budget.py) the intervals cover the true cost
   on about 95% of seeds and the estimates are unbiased within 0.01%.
   *A check with no callback at all*: the two adjacent A steps in the middle of each B A A B give
   A/A differences. "A/A mean" is their trimmed mean with its own 95% half-width: it should contain
   0 (if not, a B step slows the A after it, and the pairing under-reads the cost by about that
   much). "A/A spread" is the winsorized standard deviation of single A/A step differences: the
   step-to-step noise of the machine.
6. *A planted cost* checks the arithmetic end to end: ``--plant-ms 2`` makes every ``on_step_end``
   spend 2 ms more CPU, and both per-step figures must rise by 2 ms / (training step) within their
   floors.
7. *Bounded time.* ``--seconds`` per model: building and warming up, the per-call costs
   (``--repeats`` due/idle pairs per kind), then B A A B groups until the model's time is up (at
   least ``--min-groups``).

    python benchmarks/overhead.py                      # four models x 160 s: about 11 minutes, CPU, 1 thread
    python benchmarks/overhead.py --models resnet50 --seconds 60 --device cuda

``example`` is the run ``examples/cifar10/train.py`` makes at its defaults: SmallVGG (width 32, batch 64,
32 px) with a pattern gallery of conv3 and a 500-image embedding probe, so the background kinds
(patterns, embedding, separability: every 1000 steps and at each epoch end, 781 steps of CIFAR-10)
count too, their CPU time in the background thread included. Peak extra memory is the growth of
the process's peak RSS while the callback worked.

This file measures; the estimator (points 3-5) is ``overhead_stats.py``, the model in training and its
clocks ``overhead_training.py``, and what is printed ``overhead_report.py``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # its sibling modules, also when this file is loaded by path (from a test)
    sys.path.append(HERE)

import torch  # noqa: E402
from overhead_report import print_row, print_table, print_verdicts  # noqa: E402
from overhead_stats import (  # noqa: E402
    FORCED,
    Z95,
    counted_groups,
    design_weights,
    estimate,
    forced_sample,
    trimmed,
)
from overhead_training import (  # noqa: E402
    DEFAULT_KINDS,
    EXAMPLE_EPOCH_STEPS,
    EXAMPLE_KINDS,
    Bench,
    peak_rss_mb,
    spin,
)
from torch import nn  # noqa: E402

from tb_cnnviz.callbacks import CNNVizCallback  # noqa: E402
from tb_cnnviz.kinds import SNAPSHOTS  # noqa: E402

NEVER = 10**9
WARMUP_STEPS = 24  # B steps before the sample is frozen (k is set from the medians of the first 4 steps on)


def root_hooks_seconds(tracker, clock: Callable[[], float], calls: int = 3000) -> float:
    """What the tracker's two forward pre-hooks on the model add to a forward that counts nothing: the
    same bound hooks on an ``nn.Identity``, called with and without them, alternated (seconds per call)."""
    module, x = nn.Identity(), torch.zeros(1)
    extra = []
    for _ in range(5):
        start = clock()
        for _ in range(calls):
            module(x)
        plain = clock() - start
        handles = [module.register_forward_pre_hook(tracker._start_forward)]
        handles.append(module.register_forward_pre_hook(tracker._attach_when_counting))
        start = clock()
        for _ in range(calls):
            module(x)
        extra.append((clock() - start - plain) / calls)
        for handle in handles:
            handle.remove()
    return max(0.0, statistics.median(extra))


def per_step_cost(
    bench: Bench, logdir: str, budget: float, deadline: float, min_groups: int, planted: float = 0.0
) -> dict:
    """The relative per-step cost of the callback (B A A B single steps, see the module docstring) with
    its 95% half-width, the A/A and idle checks, and the sample the callback chose; runs until
    ``deadline``. ``planted`` seconds of CPU are added to every ``on_step_end`` (a known cost the
    estimate must find)."""
    quiet = {kind: NEVER for kind in SNAPSHOTS}
    quiet["dead_filters"] = SNAPSHOTS["dead_filters"].every_n_steps  # its sample is bounded by the window
    viz = bench.callback(logdir, quiet, overhead_budget=budget)
    window = viz._window
    tracker = window.tracker if window is not None else None
    clocks = bench.clocks
    inside = {"cpu": [], "wall": []}  # per B step, the time of the on_step_end call itself

    def step_b(stratum: tuple[int, ...] | None = None) -> tuple[dict, tuple[int, ...]]:
        bench.step_index += 1
        if window is not None and window.due(bench.step_index):
            bench.step_index += 1  # a window's end is the dead_filters kind's per-call cost, timed apart
        if tracker is not None and stratum is not None:
            tracker.set_count_every(*forced_sample(stratum))
            tracker.attach()
        before = counted_groups(tracker) if tracker is not None else ()

        def call() -> None:
            viz.on_step_end(bench.step_index)
            if planted:
                spin(planted, clocks.cpu_clock)

        def work() -> None:
            bench.train_step()
            call_times.update(clocks.timed(call))

        call_times: dict = {}
        times = clocks.timed(work)
        for axis in inside:
            inside[axis].append(call_times[axis])
        after = counted_groups(tracker) if tracker is not None else ()
        if tracker is not None and stratum is not None:
            tracker.detach()
        return times, tuple(int(b > a) for a, b in zip(before, after))

    def step_a() -> dict:
        return clocks.timed(bench.train_step)

    for _ in range(WARMUP_STEPS):  # the callback measures its cost and picks its sample
        step_b()
    if window is not None:
        window.budget = 0.0  # the sample it chose: its shares weight the strata below
    sample = window.sample() if window is not None else None
    weights = design_weights(tracker)
    # B steps: every other one counts nothing, the others count one group each in turn (forced)
    counted = [
        stratum for stratum in ((1, 0), (0, 1)) if tracker is not None and tracker.groups_present[stratum[1]]
    ]
    idle = (0, 0) if tracker is not None else ()
    pairs: list[tuple[tuple[int, ...], dict, dict]] = []  # (stratum, B, A)
    aa: list[tuple[dict, dict]] = []
    groups = 0
    inside = {"cpu": [], "wall": []}
    if tracker is not None:
        tracker.detach()
        clock_before = (list(tracker.group_seconds), list(tracker.group_batches))
    while groups < min_groups or time.perf_counter() < deadline:
        plan = (idle, counted[groups % len(counted)] if counted else idle)
        if groups % 2:
            plan = plan[::-1]  # the idle B is first in one group, second in the next
        b1, stratum1 = step_b(plan[0] if tracker is not None else None)
        a1, a2 = step_a(), step_a()
        b2, stratum2 = step_b(plan[1] if tracker is not None else None)
        pairs += [(stratum1, b1, a1), (stratum2, b2, a2)]
        aa.append((a1, a2))
        groups += 1
    result = {"sample": sample, "pairs": len(pairs), "cpu_clock": clocks.cpu_name, "counting": {}}
    hooks = {"cpu": 0.0, "wall": 0.0}
    if tracker is not None:
        # the hooks' own clock (wall) per counted batch and group, over the pairs: what the sample was chosen from
        wall_step = trimmed([a["wall"] for _, _, a in pairs])[0]
        for group, name in enumerate(("reported layers", "other layers")):
            batches = tracker.group_batches[group] - clock_before[1][group]
            layers = tracker.groups.count(group)
            if layers and batches:
                seconds = (tracker.group_seconds[group] - clock_before[0][group]) / batches
                result["counting"][name] = (layers, seconds / wall_step)
        tracker.set_count_every(FORCED, FORCED)
        tracker.attach()
        hooks = {
            "cpu": root_hooks_seconds(tracker, clocks.cpu_clock),
            "wall": root_hooks_seconds(tracker, time.perf_counter),
        }
    viz.close()
    for axis in ("cpu", "wall"):
        idle_seconds = statistics.fmean(inside[axis]) + hooks[axis]
        result[axis] = estimate(
            [(stratum, b[axis], a[axis]) for stratum, b, a in pairs],
            [(first[axis], second[axis]) for first, second in aa],
            weights,
            idle_seconds=idle_seconds if tracker is not None else None,
        )
    return result


def per_call_costs(bench: Bench, logdir: str, kinds: tuple[str, ...], repeats: int, **options) -> dict:
    """Per kind and clock (process CPU: a background thread's time included; wall), the extra seconds of an
    ``on_step_end`` where that kind is due over one where nothing is: (trimmed mean, SE) of due - idle pairs."""
    result = {}
    for kind in kinds:
        every = {other: NEVER for other in SNAPSHOTS}
        every[kind] = 2
        viz = bench.callback(logdir, every, **options)
        background = SNAPSHOTS[kind].thread == "background"
        due, idle = [], []
        for _ in range(2 * repeats):  # consecutive steps alternate: due (even) and idle (odd)
            if kind == "dead_filters":  # a window closes only on counted training batches; the other kinds
                bench.train_step()  # work on the probe alone, so no training step is spent between them
            bench.step_index += 1
            step = bench.step_index

            def work(viz: CNNVizCallback = viz, step: int = step, flush: bool = background) -> None:
                viz.on_step_end(step)
                if flush:
                    viz.flush()

            (due if step % 2 == 0 else idle).append(bench.clocks.timed(work, time.process_time))
        viz.close()
        result[kind] = {
            axis: trimmed([d[axis] - i[axis] for d, i in zip(due, idle)])[:2] for axis in ("cpu", "wall")
        }
    return result


def measure(name: str, args: argparse.Namespace) -> dict | None:
    """One model's row, within ``args.seconds``."""
    started = time.perf_counter()
    deadline = started + args.seconds
    try:
        bench = Bench(name, args.size, args.device)
    except ImportError as error:
        print(f"{name}: skipped ({error})")
        return None
    for _ in range(3):  # warm-up
        bench.train_step()
    rss = peak_rss_mb()
    kinds = DEFAULT_KINDS + (EXAMPLE_KINDS if name == "example" else ())
    with tempfile.TemporaryDirectory() as logdir:
        calls = per_call_costs(bench, logdir, kinds, args.repeats)
        step = per_step_cost(
            bench, logdir, args.overhead_budget, deadline, args.min_groups, args.plant_ms / 1000
        )
    every = {kind: float(SNAPSHOTS[kind].every_n_steps) for kind in kinds}
    for kind in set(kinds) & set(EXAMPLE_KINDS):  # every n steps and at each epoch end
        every[kind] = 1 / (1 / every[kind] + 1 / EXAMPLE_EPOCH_STEPS)
    row = {
        "model": f"{name} {bench.size}px b{bench.batch}"
        + (f" +{args.plant_ms:g} ms planted" if args.plant_ms else ""),
        "sample": step["sample"],
        "counting": step["counting"],
        "pairs": step["pairs"],
        "cpu_clock": step["cpu_clock"],
        "seconds": time.perf_counter() - started,
        "extra_rss_mb": peak_rss_mb() - rss,
    }
    for axis in ("cpu", "wall"):
        measured = step[axis]
        step_s = measured["step_s"]
        kind_steps = {k: calls[k][axis][0] / step_s for k in kinds}
        kind_var = sum((calls[k][axis][1] / step_s / every[k]) ** 2 for k in kinds)
        row[axis] = {
            **measured,
            "calls": {k: (1000 * calls[k][axis][0], kind_steps[k]) for k in kinds},
            "amortised": measured["per_step"] + sum(kind_steps[k] / every[k] for k in kinds),
            "amortised_floor": math.sqrt((measured["floor"] / Z95) ** 2 + kind_var) * Z95,
            "amortised_ab": measured["per_step_ab"] + sum(kind_steps[k] / every[k] for k in kinds),
            "amortised_floor_ab": math.sqrt((measured["floor_ab"] / Z95) ** 2 + kind_var) * Z95,
        }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="smallvgg,resnet50,efficientnet_b0,convnext_nano")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--size", type=int, default=None, help="input size (default: 32 for smallvgg, else 64)"
    )
    parser.add_argument(
        "--seconds", type=float, default=160.0, help="time per model, everything included (default 160)"
    )
    parser.add_argument(
        "--min-groups", type=int, default=20, help="B A A B groups at least, whatever the time"
    )
    parser.add_argument("--repeats", type=int, default=8, help="due/idle pairs per snapshot kind (>= 3)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch.set_num_threads (default 1: per-thread CPU time)"
    )
    parser.add_argument(
        "--overhead-budget",
        type=float,
        default=0.003,
        help="the callback's overhead_budget (0: count every batch)",
    )
    parser.add_argument(
        "--plant-ms",
        type=float,
        default=0.0,
        help="a check of the method: spend this much CPU time in every step with the callback on top of it; "
        "the per-step figure must rise by it (ms / training step) within its noise floor",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        raise SystemExit(f"--seconds: expected a positive number of seconds per model, got {args.seconds}")
    if args.repeats < 3:
        raise SystemExit(
            f"--repeats: expected at least 3 due/idle pairs (for a standard error), got {args.repeats}"
        )
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
        f"{args.seconds:.0f} s per model; noise floor = 95% half-width (1.96 SE)"
    )
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        row = measure(name, args)
        if row is None:
            continue
        rows.append(row)
        print_row(row)
        sys.stdout.flush()
    print_table(rows)
    print_verdicts(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
