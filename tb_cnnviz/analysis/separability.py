"""Linear separability of a layer's codes: the held-out accuracy of a linear probe on them.

A ConvNet "gradually transforms the images into a representation in which the classes are
separable by a linear classifier" (CS231n); this measures it per layer (Alain & Bengio, "Understanding
intermediate layers using linear classifier probes", 2016). For each layer the features of the
labelled embedding probe are its globally average-pooled activations ``[N, C]`` (a 2-D output is
taken as it is); the probe is closed-form ridge regression on one-hot targets, in float64:

    W(λ) = (XᵀX + λI)⁻¹ Xᵀ(Y − Ȳ),   predicted class = argmax(X W + Ȳ)

with X standardised by the statistics of the images it is fitted on (a constant feature becomes 0).
The split is fixed and seeded, stratified per class: 30% held out for the test, the other 70% split
again (30% of it for validation). λ is the value of :data:`RIDGE_GRID` with the best validation
accuracy (ties: the lower validation squared error, then the larger λ); the probe is then refitted
on the whole 70% and its accuracy on the held-out 30% reported, beside the chance level (the
held-out accuracy of always answering the most frequent class of the 70%).

Fewer than :data:`MIN_PER_CLASS` images in a class, or fewer than two classes, is an explicit
outcome (:data:`NOT_ENOUGH_LABELS`), never a number; so are non-finite features. Pure torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)
MIN_PER_CLASS = 5
TEST_SHARE = 0.3
VALIDATION_SHARE = 0.3  # of the images left after the test share
SPLIT_SEED = 0

# Outcome codes (the ``outcome`` column of a logged row) and what each says.
MEASURED, NOT_ENOUGH_LABELS, NONFINITE_FEATURES = 0, 1, 2
OUTCOMES = (
    "measured",
    f"not enough labelled images: need at least {MIN_PER_CLASS} per class and 2 classes",
    "non-finite features (NaN or Inf in the layer's activations)",
)
COLUMNS = ("accuracy", "chance", "ridge", "train_accuracy", "test_images", "outcome")


@dataclasses.dataclass(frozen=True)
class Split:
    """Indices of the training, validation and held-out (test) images; ``classes`` the sorted labels present."""

    train: torch.Tensor
    validation: torch.Tensor
    test: torch.Tensor
    classes: torch.Tensor


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """One layer's probe: held-out accuracy, chance level, chosen λ, accuracy on the 70%, test size, outcome."""

    accuracy: float
    chance: float
    ridge: float
    train_accuracy: float
    test_images: int
    outcome: int = MEASURED

    def row(self) -> list[float]:
        """The values of :data:`COLUMNS`, in order."""
        return [self.accuracy, self.chance, self.ridge, self.train_accuracy, self.test_images, self.outcome]


def unmeasured(outcome: int, test_images: int = 0) -> ProbeResult:
    """A result that carries only its outcome (every number NaN)."""
    nan = float("nan")
    return ProbeResult(nan, nan, nan, nan, test_images, outcome)


def labels_problem(labels: torch.Tensor) -> str | None:
    """Why ``labels`` cannot support the probe (too few per class, one class), or None when they can."""
    labels = _labels(labels)
    classes, counts = torch.unique(labels, return_counts=True)
    if len(classes) < 2:
        return f"{OUTCOMES[NOT_ENOUGH_LABELS]}; the labels hold {len(classes)} class(es)"
    if int(counts.min()) < MIN_PER_CLASS:
        fewest = int(classes[counts.argmin()])
        return f"{OUTCOMES[NOT_ENOUGH_LABELS]}; class {fewest} has {int(counts.min())}"
    return None


def stratified_split(labels: torch.Tensor, seed: int = SPLIT_SEED) -> Split:
    """The fixed split of :func:`probe_accuracy`: per class, 30% test, then 30% of the rest validation.

    Raises ``ValueError`` (naming the class) when :func:`labels_problem` finds a problem.
    """
    problem = labels_problem(labels)
    if problem is not None:
        raise ValueError(f"labels: {problem}")
    labels = _labels(labels)
    generator = torch.Generator().manual_seed(seed)
    parts: tuple[list, list, list] = ([], [], [])
    classes = torch.unique(labels)
    for label in classes:
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        tests = max(1, round(TEST_SHARE * len(members)))
        validations = max(1, round(VALIDATION_SHARE * (len(members) - tests)))
        parts[2].append(members[:tests])
        parts[1].append(members[tests : tests + validations])
        parts[0].append(members[tests + validations :])
    train, validation, test = (torch.sort(torch.cat(part)).values for part in parts)
    return Split(train, validation, test, classes)


def probe_accuracy(
    features: torch.Tensor,
    labels: torch.Tensor,
    split: Split | None = None,
    grid: Sequence[float] = RIDGE_GRID,
) -> ProbeResult:
    """The held-out accuracy of a ridge probe on ``features`` ``[N, D]`` (see the module docstring).

    ``split`` defaults to :func:`stratified_split` of ``labels``; too few labels give the
    :data:`NOT_ENOUGH_LABELS` outcome, non-finite features :data:`NONFINITE_FEATURES`.
    """
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features: expected a tensor [N, D], got {shape}")
    labels = _labels(labels)
    if len(labels) != len(features):
        raise ValueError(f"labels: {len(labels)} labels for {len(features)} feature rows")
    if not grid or any(not (value > 0) for value in grid):
        raise ValueError(f"grid: expected positive ridge strengths, got {list(grid)}")
    if split is None:
        if labels_problem(labels) is not None:
            return unmeasured(NOT_ENOUGH_LABELS)
        split = stratified_split(labels)
    x = features.detach().to("cpu", torch.float64)
    if not torch.isfinite(x).all():
        return unmeasured(NONFINITE_FEATURES, len(split.test))
    targets = torch.searchsorted(split.classes, labels)
    fit = torch.cat([split.train, split.validation])
    scores = _validation_scores(x, targets, split, len(split.classes), grid)
    best = max(range(len(grid)), key=lambda i: (scores[i][0], -scores[i][1], grid[i]))
    ridge = float(grid[best])
    predict = _fit(x[fit], targets[fit], len(split.classes), [ridge])[0]
    majority = int(torch.bincount(targets[fit], minlength=len(split.classes)).argmax())
    return ProbeResult(
        accuracy=_accuracy(predict(x[split.test]), targets[split.test]),
        chance=float((targets[split.test] == majority).double().mean()),
        ridge=ridge,
        train_accuracy=_accuracy(predict(x[fit]), targets[fit]),
        test_images=len(split.test),
    )


def pool(value: torch.Tensor) -> torch.Tensor:
    """``[N, C, ...]`` averaged over every position (dims 2...), ``[N, D]`` as it is."""
    if value.dim() < 2:
        raise ValueError(f"layer: expected a batched tensor [N, ...], got shape {tuple(value.shape)}")
    return value.mean(dim=tuple(range(2, value.dim()))) if value.dim() > 2 else value


def _labels(labels) -> torch.Tensor:
    labels = torch.as_tensor(labels).detach().cpu().reshape(-1)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    return labels.long()


def _validation_scores(x, targets, split: Split, classes: int, grid: Sequence[float]) -> list:
    """Per ridge strength, (accuracy, mean squared error against the one-hot targets) on the validation images."""
    onehot = torch.nn.functional.one_hot(targets[split.validation], classes).double()
    scores = []
    for predict in _fit(x[split.train], targets[split.train], classes, grid):
        values = predict(x[split.validation])
        scores.append((_accuracy(values, targets[split.validation]), float(((values - onehot) ** 2).mean())))
    return scores


def _fit(x: torch.Tensor, targets: torch.Tensor, classes: int, ridges: Sequence[float]) -> list:
    """One scoring function per ridge strength, from one SVD of the standardised features."""
    mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    onehot = torch.nn.functional.one_hot(targets, classes).double()
    offset = onehot.mean(dim=0)
    u, s, vh = torch.linalg.svd((x - mean) / std, full_matrices=False)
    projected = u.T @ (onehot - offset)
    functions = []
    for ridge in ridges:
        weights = vh.T @ ((s / (s * s + ridge))[:, None] * projected)
        functions.append(lambda z, w=weights: ((z - mean) / std) @ w + offset)
    return functions


def _accuracy(scores: torch.Tensor, targets: torch.Tensor) -> float:
    return float((scores.argmax(dim=1) == targets).double().mean())


__all__ = [
    "COLUMNS",
    "MEASURED",
    "MIN_PER_CLASS",
    "NONFINITE_FEATURES",
    "NOT_ENOUGH_LABELS",
    "OUTCOMES",
    "RIDGE_GRID",
    "ProbeResult",
    "Split",
    "labels_problem",
    "pool",
    "probe_accuracy",
    "stratified_split",
    "unmeasured",
]
