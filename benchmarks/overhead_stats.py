"""The per-step estimator of ``benchmarks/overhead.py`` (its module docstring, points 3-5), pure Python.

From paired single steps with and without the callback, grouped in strata by which groups of layers counted
dead filters on the B step: each stratum's 10% trimmed mean with its Tukey-McLaughlin standard error, the
strata weighted by their long-run shares in the callback's frozen sample, and the 95% half-width (the noise
floor). ``tests/callbacks/test_overhead_budget.py`` checks it on simulated steps with known costs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

TRIM = 0.1  # trimmed share on each side of a stratum's paired differences
Z95 = 1.96  # the noise floor is the 95% interval's half-width
FORCED = 2**31 - 1  # a count_every no forward of the run reaches a multiple of: that group never counts


def trimmed(values: Sequence[float], fallback_sd: float | None = None) -> tuple[float, float, float]:
    """``(estimate, standard error, winsorized sd)`` of the mean of ``values``.

    10% trimmed mean with the Tukey-McLaughlin SE s_w / ((1 - 2g) sqrt(n)) from n >= 10 values; the
    plain mean and sd / sqrt(n) below that; ``fallback_sd`` (the largest stratum's) under 3 values.
    """
    values = sorted(values)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    if n < 10:
        sd = statistics.stdev(values) if n >= 3 else fallback_sd
        sd = math.nan if sd is None else sd
        return statistics.fmean(values), sd / math.sqrt(n), sd
    g = int(TRIM * n)
    kept = values[g : n - g]
    winsorized = [values[g]] * g + kept + [values[n - g - 1]] * g
    sd = statistics.stdev(winsorized)
    return statistics.fmean(kept), sd / ((1 - 2 * g / n) * math.sqrt(n)), sd


def counted_groups(tracker) -> tuple[int, ...]:
    """The tracker's counted batches so far, per group of layers sampled alike (one group before
    groups existed)."""
    return tuple(getattr(tracker, "group_batches", None) or (tracker.batches,))


def design_weights(tracker) -> dict[tuple[int, ...], float]:
    """The long-run share of training forwards in each stratum (which groups of layers count on it), from
    the frozen sample: exact, where the B steps' own shares are off by up to 1 / pairs."""
    if tracker is None:
        return {(): 1.0}
    every = (tracker.count_every, tracker.info_count_every)
    period = math.lcm(*every)
    shares: dict[tuple[int, ...], float] = {}
    for forward in range(period):
        key = tuple(int(present and forward % k == 0) for present, k in zip(tracker.groups_present, every))
        shares[key] = shares.get(key, 0.0) + 1 / period
    return shares


def additive(stratum: tuple[int, ...], means: dict) -> tuple[float, float] | None:
    """A stratum where several groups count, never observed (its share is 1 / lcm of their k): the cost of
    counting nothing plus each group's own extra cost, if those strata were observed."""
    none = tuple(0 for _ in stratum)
    alone = [tuple(int(i == g) for i in range(len(stratum))) for g, flag in enumerate(stratum) if flag]
    if sum(stratum) < 2 or none not in means or any(key not in means for key in alone):
        return None
    mean = means[none][0] + sum(means[key][0] - means[none][0] for key in alone)
    se = math.sqrt(means[none][1] ** 2 + sum(means[key][1] ** 2 for key in alone))
    return mean, se


def forced_sample(stratum: tuple[int, ...]) -> tuple[int, int]:
    """``(count_every, info_count_every)`` that make the next forward count exactly ``stratum``'s groups."""
    return tuple(1 if counted else FORCED for counted in stratum)


def estimate(
    pairs: Sequence[tuple[tuple[int, ...], float, float]],
    aa: Sequence[tuple[float, float]],
    weights: dict[tuple[int, ...], float],
    idle_seconds: float | None = None,
) -> dict:
    """The per-step cost from ``(stratum, B seconds, A seconds)`` pairs and ``(A, next A)`` seconds, with the
    strata's long-run ``weights`` (the module docstring, points 3-5); relative to the trimmed mean A step.

    With ``idle_seconds`` (the timed cost of a B step that counts nothing) the idle stratum takes that
    value (``per_step``) and its own pairs check it (``idle_ab``); ``per_step_ab`` is the estimate from
    the pairs alone."""
    step = trimmed([a for _, _, a in pairs])[0]
    strata: dict[tuple[int, ...], list[float]] = {}
    for stratum, b, a in pairs:
        strata.setdefault(stratum, []).append((b - a) / step)
    fallback = trimmed(max(strata.values(), key=len))[2]
    measured = {stratum: trimmed(values, fallback)[:2] for stratum, values in strata.items()}

    def combine(means: dict) -> tuple[float, float, list]:
        total, variance, unobserved = 0.0, 0.0, []
        for stratum, weight in weights.items():
            mean, se = means.get(stratum) or additive(stratum, means) or (math.nan, math.nan)
            if math.isnan(mean):
                unobserved.append(stratum)
                continue
            total += weight * mean
            variance += (weight * se) ** 2
        if unobserved:  # a group never counted during the pairs: no estimate
            return math.nan, math.nan, unobserved
        return total, Z95 * math.sqrt(variance), unobserved

    per_step_ab, floor_ab, unobserved = combine(measured)
    idle = tuple(0 for _ in next(iter(weights)))
    result = {"step_s": step, "per_step_ab": per_step_ab, "floor_ab": floor_ab, "idle_ab": None}
    if idle_seconds is None:
        per_step, floor = per_step_ab, floor_ab
    else:
        timed_idle = idle_seconds / step
        per_step, floor, unobserved = combine({**measured, idle: (timed_idle, 0.0)})
        if idle in measured:
            result["idle_ab"] = (measured[idle][0], Z95 * measured[idle][1], timed_idle)
    aa_mean, aa_se, aa_sd = trimmed([(second - first) / step for first, second in aa])
    return {
        **result,
        "per_step": per_step,
        "floor": floor,
        "aa_mean": aa_mean,
        "aa_floor": Z95 * aa_se,
        "aa_spread": aa_sd,
        "strata": {
            stratum: (len(strata.get(stratum, ())), weights.get(stratum, 0.0))
            for stratum in sorted(set(strata) | set(weights))
        },
        "unobserved": unobserved,
    }
