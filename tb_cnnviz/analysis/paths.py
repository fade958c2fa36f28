"""Which modules the signal must pass through on its way from the input to the output, found by running the model.

Registration order says little about a network's data flow: the last ``nn.Conv2d`` registered is a
side branch of an Inception block, a conv before a residual add, a squeeze-excite gate or the
classifier itself. Instead, one forward pass of a few probe images records every module's output
node in the autograd graph; a module is on the **main path** when every path from the input to the
output passes through its output (a cut of the graph): zeroing it would silence the output, and
no side branch, branch conv of a residual block or parallel 1x1 of RepVGG qualifies. Of the modules
that produce the same tensor (``layer4``, ``layer4.2``, ``layer4.2.relu``) the outermost names it.

From the main path, :func:`gradcam_layer` takes the last spatial map ``[N, C, h, w]`` before the
global pooling (ResNet ``layer4``, VGG/DenseNet/EfficientNet/MobileNet ``features``, Inception
``Mixed_7c``), and :func:`stage_outputs` the last map at each spatial resolution (stage outputs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from tb_cnnviz.analysis.layers import unwrap
from tb_cnnviz.analysis.safety import frozen_parameters, safe_snapshot

PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout2d, nn.Flatten)


@dataclasses.dataclass(frozen=True)
class PathPoint:
    """A module on the main path: its dotted name, the module, its output shape and execution rank."""

    name: str
    module: nn.Module
    shape: tuple[int, ...]
    order: int
    types: tuple[str, ...] = ()  # class names of every module that produced this tensor
    input_size: tuple[int, ...] = ()  # (H, W) of the images the path was traced with

    @property
    def spatial(self) -> bool:
        """A map ``[N, C, h, w]`` with the input's aspect ratio (not tokens reshaped to 4-D inside a transformer)."""
        if len(self.shape) != 4:
            return False
        if len(self.input_size) != 2:
            return True
        (height, width), (h, w) = self.input_size, self.shape[2:]
        return abs(h * width - w * height) <= max(height, width)  # equal ratios, up to rounding by strides


def output_tensor(output) -> torch.Tensor | None:
    """The tensor a model's output stands for: itself, the first of a tuple, or a dict's logits/out/first tensor."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        for key in ("logits", "out"):
            if isinstance(output.get(key), torch.Tensor):
                return output[key]
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            found = output_tensor(item)
            if found is not None:
                return found
    return None


@dataclasses.dataclass(frozen=True)
class MainPath:
    """The main path's points in execution order, and the shape of the output they lead to."""

    points: list[PathPoint]
    output_shape: tuple[int, ...]

    @property
    def classes(self) -> int | None:
        """The number of class scores, for an output ``[N, classes]`` or dense ``[N, classes, H, W]``
        (segmentation: the class map is then not chosen as a Grad-CAM layer, the map before it is)."""
        return self.output_shape[1] if len(self.output_shape) in (2, 4) else None

    def gradcam_layer(self) -> PathPoint | None:
        return gradcam_layer(self.points, self.classes)

    def stage_outputs(self) -> list[PathPoint]:
        return stage_outputs(self.points, self.classes)


def main_path(
    model: nn.Module, images: torch.Tensor, logits: Callable[[Any], torch.Tensor] | None = None
) -> MainPath:
    """The modules every path from ``images`` to the model's output passes through, in execution order.

    The output is what ``logits`` picks from the model's output (the callback's ``logits``
    argument), by default :func:`output_tensor`.

    Runs one forward pass in eval mode with the parameters frozen (modes, RNG and ``.grad``
    untouched, every hook removed). Modules called more than once per forward (a ReLU reused
    inside a block) and pass-through modules (Identity, Dropout, Flatten) are not named.
    """
    base = unwrap(model)
    names = {module: name for name, module in base.named_modules() if name}
    calls: dict[nn.Module, list[tuple[object, tuple[int, ...], int]]] = {}
    counter = [0]

    def hook(module, _inputs, output):
        value = output_tensor(output)
        node = value.grad_fn if isinstance(value, torch.Tensor) else None
        calls.setdefault(module, []).append(
            (node, tuple(value.shape) if node is not None else (), counter[0])
        )
        counter[0] += 1

    handles = []
    try:
        handles = [module.register_forward_hook(hook) for module in names]
        with safe_snapshot(base), frozen_parameters(base), torch.enable_grad():
            x = images.detach().clone().requires_grad_(True)
            output = (logits or output_tensor)(base(x))
    finally:
        for handle in handles:
            handle.remove()
    output_shape = tuple(output.shape) if output is not None else ()
    if output is None or output.grad_fn is None:
        return MainPath([], output_shape)
    graph = _graph(output.grad_fn)
    source = next((n for n in graph if getattr(n, "variable", None) is x), None)
    if source is None:
        return MainPath([], output_shape)
    cuts: dict[object, list[tuple[str, nn.Module, tuple[int, ...], int]]] = {}
    for module, records in calls.items():
        if len(records) != 1 or records[0][0] is None or isinstance(module, PASS_THROUGH):
            continue
        node, shape, order = records[0]
        if node in graph and (node in cuts or _is_cut(graph, output.grad_fn, source, node)):
            cuts.setdefault(node, []).append((names[module], module, shape, order))
    points = []
    for members in cuts.values():
        name, module, shape, _ = min(members, key=lambda m: (m[0].count("."), m[3]))
        types = tuple(type(m[1]).__name__ for m in members)
        points.append(
            PathPoint(name, module, shape, max(m[3] for m in members), types, tuple(images.shape[2:]))
        )
    return MainPath(sorted(points, key=lambda point: point.order), output_shape)


def gradcam_layer(points: list[PathPoint], classes: int | None = None) -> PathPoint | None:
    """The last spatial map of the main path before the global pooling (None if there is none).

    A point from the first global pooling on (an adaptive pooling, a pooling to 1x1, or a
    non-4-D output) belongs to the head: DLA's or GhostNet's 1x1 convs there, or a
    SqueezeNet-style classifier conv with one channel per class, are never chosen.
    """
    body = _body(points)
    candidates = [p for p in body if p.spatial]
    if classes is not None:
        candidates = [p for p in candidates if p.shape[1] != classes] or candidates
    return candidates[-1] if candidates else None


def stage_outputs(points: list[PathPoint], classes: int | None = None) -> list[PathPoint]:
    """The stage outputs up to the Grad-CAM layer: per run of one spatial resolution, its outermost last map.

    Outermost (fewest dots in the name) first, so a block output is preferred to the expansion
    conv that opens the next, downsampling block at the same resolution (MobileNet, EfficientNet).
    """
    last = gradcam_layer(points, classes)
    if last is None:
        return []
    body = [p for p in _body(points) if p.spatial and p.order <= last.order]
    runs: list[list[PathPoint]] = []
    for point in body:
        if runs and runs[-1][-1].shape[2:] == point.shape[2:]:
            runs[-1].append(point)
        else:
            runs.append([point])
    return [max(run, key=lambda p: (-p.name.count("."), p.order)) for run in runs]


def _body(points: list[PathPoint]) -> list[PathPoint]:
    """The points before the head: up to the first adaptive pooling, pooling to 1x1 or non-4-D output."""
    for index, point in enumerate(points):
        adaptive = any("adaptive" in name.lower() for name in point.types)  # AdaptiveAvgPool2d, timm's too
        if len(point.shape) != 4 or adaptive or (_is_pool(point) and point.shape[2:] == (1, 1)):
            return points[:index]
    return points


def _is_pool(point: PathPoint) -> bool:
    return any("pool" in name.lower() for name in point.types)


def _graph(root) -> set:
    """Every autograd node reachable from ``root``."""
    seen, stack = {root}, [root]
    while stack:
        for child, _ in stack.pop().next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def _is_cut(graph: set, root, source, node) -> bool:
    """Whether every path from ``root`` down to ``source`` passes through ``node``."""
    if node is root:
        return True
    seen, stack = {root, node}, [root]
    while stack:
        for child, _ in stack.pop().next_functions:
            if child is source:
                return False
            if child is not None and child not in seen:
                seen.add(child)
                stack.append(child)
    return True
