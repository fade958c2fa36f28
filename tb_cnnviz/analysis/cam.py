"""Grad-CAM and Grad-CAM++ class activation maps, cheap and training-safe.

Grad-CAM (Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep Networks
via Gradient-based Localization"): for a layer with activations ``A`` (``[N, K, h, w]``)
and a class score ``y`` (the logit, before the softmax),

    alpha_k = mean_ij dy/dA_k[i, j]          cam = ReLU(sum_k alpha_k A_k)

upsampled bilinearly to the input resolution. Grad-CAM++ (Chattopadhay et al., 2018)
replaces the plain mean of the gradients by a positive-gradient weighting,
``w_k = sum_ij a_kij ReLU(g_kij)`` with ``a_kij = g^2 / (2 g^2 + sum_ab A_kab g^3)``.

Why our own core instead of ``captum.attr.LayerGradCam`` (which the tests use as the
reference and agree with to 1e-5): one hooked forward pass must give the
activations *and* their gradients (Grad-CAM++ needs both; captum's public API returns
one or the other) plus the logits for the predicted class and its probability, which
the callback logs with each snapshot. Cost: the forward pass runs with every
parameter frozen and the input not requiring grad, and the hook re-roots the graph at
the layer's output, so ``torch.autograd.grad`` only walks back from the score to the
target layer (about 1.0-1.1x one plain forward pass, see ``benchmarks/attribution.py``).

Dense outputs ``[N, classes, H, W]`` (segmentation) are explained with a class index too: the
score of class ``c`` for image ``n`` is the mean of ``output[n, c]`` over the pixels where ``c``
is the arg-max class (over every pixel when ``c`` is predicted nowhere), the recipe of
pytorch-grad-cam's ``SemanticSegmentationTarget`` with a mean instead of a sum so scores compare
across image sizes; see :func:`dense_class_scores`. Without a class the one predicted on most
pixels is explained.

The shared helpers (image and target checks, the per-image score, the snapshot
context) live here too; :mod:`tb_cnnviz.analysis.attribution` uses them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Callable, Literal, Optional, Union, overload

import torch
import torch.nn.functional as F
from torch import nn

from tb_cnnviz.analysis.layers import LayerSpec, model_device, resolve_layer, unwrap
from tb_cnnviz.analysis.safety import eval_mode, frozen_parameters, hooks, preserved_rng

Target = Union[None, int, Sequence[int], torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]
"""What to explain: ``None`` (the predicted class), one class index for every image,
one class index per image (list or 1-D integer tensor), or a callable that maps the
model output to one scalar per image (``[N]``)."""

NORMALIZE_CHOICES = ("none", "per_image")
METHOD_CHOICES = ("gradcam", "gradcam++")

__all__ = ["GradCAMResult", "Target", "dense_class_scores", "grad_cam", "normalize_per_image"]


@dataclass
class GradCAMResult:
    """One Grad-CAM snapshot of a batch, everything on the model's device.

    ``cam``: ``[N, H, W]`` at input resolution; ``native``: the same maps ``[N, h, w]`` at the
    layer's resolution, before upsampling (what the callback stores). ``target``: the explained
    class per image (``None`` for a callable target). ``score``: the differentiated scalar per
    image (the target logit, or the callable's value). ``predicted`` / ``probability``: the
    arg-max class and its softmax probability (``None`` when the model output is neither
    ``[N, classes]`` nor dense; for a dense output the class predicted on most pixels and its
    softmax probability averaged over all pixels). ``target_probability``: the same for ``target``.
    ``predicted_native``: with ``predicted_too``, the maps of the predicted class at the layer's resolution.
    """

    cam: torch.Tensor
    native: torch.Tensor
    target: Optional[torch.Tensor]
    score: torch.Tensor
    predicted: Optional[torch.Tensor]
    probability: Optional[torch.Tensor]
    target_probability: Optional[torch.Tensor]
    layer: str
    method: str
    # ``predicted_too=True``: the maps ``[N, h, w]`` of each image's predicted class, from the same forward pass
    predicted_native: Optional[torch.Tensor] = None


# ----------------------------------------------------------------------------- shared helpers


def check_images(images: object, argument: str = "images") -> torch.Tensor:
    """A float ``[N, C, H, W]`` tensor with ``N >= 1``, else a ValueError/TypeError naming ``argument``."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"{argument}: expected a torch.Tensor of shape [N, C, H, W], got {type(images).__name__}"
        )
    if images.dim() != 4:
        raise ValueError(f"{argument}: expected a 4-D tensor [N, C, H, W], got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{argument}: expected a floating-point tensor, got dtype {images.dtype}")
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(
            f"{argument}: expected at least one image of non-zero size, got shape {tuple(images.shape)}"
        )
    return images


def check_choice(value: object, choices: Sequence[str], argument: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{argument}: expected one of {list(choices)}, got {value!r}")
    return value


def check_target(target: Target, count: int) -> Union[None, torch.Tensor, Callable]:
    """Normalise ``target`` to ``None``, a CPU long tensor ``[count]`` or a callable (range checked later)."""
    if target is None or callable(target):
        return target
    if isinstance(target, bool):
        raise TypeError(
            f"target: expected None, an int class index, a list/tensor of class indices or a callable, got bool {target!r}"
        )
    if isinstance(target, int):
        return torch.full((count,), target, dtype=torch.long)
    if isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(f"target: expected an integer tensor of class indices, got dtype {target.dtype}")
        if target.dim() == 0:
            return torch.full((count,), int(target), dtype=torch.long)
        if target.dim() != 1 or target.shape[0] != count:
            raise ValueError(
                f"target: expected a 1-D tensor with one class index per image ({count}), got shape {tuple(target.shape)}"
            )
        return target.detach().to("cpu", torch.long)
    if isinstance(target, (list, tuple)):
        if len(target) != count:
            raise ValueError(f"target: expected one class index per image ({count}), got {len(target)}")
        for item in target:
            if isinstance(item, bool) or not isinstance(item, int):
                raise TypeError(
                    f"target: expected a list of int class indices, got an element {item!r} ({type(item).__name__})"
                )
        return torch.tensor(list(target), dtype=torch.long)
    raise TypeError(
        f"target: expected None, an int class index, a list/tensor of class indices or a callable, got {type(target).__name__}"
    )


def target_scores(
    output: object, target: Union[None, torch.Tensor, Callable]
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The per-image scalar to explain, ``[N]``, and the class indices (``None`` for a callable)."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"model: expected the model to return a tensor, got {type(output).__name__}; pass a callable target to pick the score"
        )
    count = output.shape[0] if output.dim() > 0 else 0
    if callable(target):
        scores = target(output)
        if not isinstance(scores, torch.Tensor):
            raise TypeError(
                f"target: the callable must return a tensor with one score per image, got {type(scores).__name__}"
            )
        if scores.dim() == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.dim() != 1 or scores.shape[0] != count:
            raise ValueError(
                f"target: the callable must return one score per image, shape [{count}], got shape {tuple(scores.shape)}"
            )
        return scores, None
    if output.dim() not in (2, 4):
        raise ValueError(
            "target: class indices need a model output of shape [N, classes] or dense class scores "
            f"[N, classes, H, W], got {tuple(output.shape)}; pass a callable target instead"
        )
    classes = output.shape[1]
    if target is not None:
        indices = target.to(output.device)
    elif output.dim() == 2:
        indices = output.detach().argmax(1)
    else:
        indices = dominant_classes(output)
    bad = indices[(indices < 0) | (indices >= classes)]
    if bad.numel():
        raise ValueError(
            f"target: class index {int(bad[0])} is out of range for a model with {classes} classes (expected 0..{classes - 1})"
        )
    if output.dim() == 4:
        return dense_class_scores(output, indices), indices
    return output.gather(1, indices[:, None])[:, 0], indices


def dominant_classes(output: torch.Tensor) -> torch.Tensor:
    """``[N]``: per image of a dense output ``[N, classes, H, W]``, the class that is the arg-max on most
    pixels (ties: the lower class)."""
    winners = output.detach().argmax(1).flatten(1)  # [N, H*W]
    counts = torch.zeros(output.shape[0], output.shape[1], dtype=torch.long, device=output.device)
    counts.scatter_add_(1, winners, torch.ones_like(winners))
    return counts.argmax(1)


def dense_class_scores(output: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """``[N]``: the mean of ``output[n, classes[n]]`` over the pixels where ``classes[n]`` is the arg-max
    (the segmentation target of Grad-CAM); over every pixel of the image when it is the arg-max nowhere.

    The mask is fixed (no gradient flows through the arg-max), as in pytorch-grad-cam's
    ``SemanticSegmentationTarget``, which sums where this averages.
    """
    if output.dim() != 4:
        raise ValueError(f"output: expected dense class scores [N, classes, H, W], got {tuple(output.shape)}")
    index = classes.to(output.device).view(-1, 1, 1, 1).expand(-1, 1, *output.shape[2:])
    scores = output.gather(1, index)[:, 0]  # [N, H, W]
    mask = output.detach().argmax(1) == index[:, 0]
    mask = mask | ~mask.flatten(1).any(1).view(-1, 1, 1)  # predicted nowhere: every pixel
    weights = mask.to(scores.dtype)
    return (scores * weights).flatten(1).sum(1) / weights.flatten(1).sum(1)


def prepare_images(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """A copy-free, graph-free view of ``images`` on the model's device (the user's tensor is never modified)."""
    x = images.detach().to(model_device(model, default=images.device))
    if x.is_inference():  # made under torch.inference_mode: autograd cannot record it, a normal copy can
        with torch.inference_mode(False):
            x = x.clone()
    return x


@contextlib.contextmanager
def snapshot(model: nn.Module) -> Iterator[list]:
    """Eval mode (every flag restored), parameters frozen, global RNG preserved, gradients on; yields a hook list removed on exit."""
    with (
        preserved_rng(),
        eval_mode(model),
        frozen_parameters(model),
        torch.inference_mode(False),
        torch.enable_grad(),
        hooks() as handles,
    ):
        yield handles


def probabilities(output: torch.Tensor, indices: Optional[torch.Tensor]):
    """``(predicted, probability, target_probability)`` from ``[N, classes]`` logits, or from dense scores
    ``[N, classes, H, W]`` (the class predicted on most pixels; softmax probabilities averaged over
    the pixels); ``None`` for other outputs."""
    if not isinstance(output, torch.Tensor) or output.dim() not in (2, 4):
        return None, None, None
    probs = torch.softmax(output.detach().float(), dim=1)
    if output.dim() == 4:
        predicted = dominant_classes(output)
        probs = probs.flatten(2).mean(2)
        probability = probs.gather(1, predicted[:, None])[:, 0]
    else:
        probability, predicted = probs.max(dim=1)
    target_probability = probs.gather(1, indices[:, None])[:, 0] if indices is not None else None
    return predicted, probability, target_probability


def normalize_per_image(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scale each map of ``[N, ...]`` to [0, 1] (a constant map becomes 0), for display."""
    flat = maps.reshape(maps.shape[0], -1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(
        span > 0, (flat - low) / span.clamp_min(torch.finfo(flat.dtype).tiny), torch.zeros_like(flat)
    )
    return scaled.reshape(maps.shape)


# ----------------------------------------------------------------------------- Grad-CAM


@overload
def grad_cam(
    model: nn.Module,
    layer: LayerSpec,
    images: torch.Tensor,
    target: Target = None,
    *,
    normalize: str = "none",
    method: str = "gradcam",
    return_details: Literal[False] = False,
    predicted_too: bool = False,
) -> torch.Tensor: ...


@overload
def grad_cam(
    model: nn.Module,
    layer: LayerSpec,
    images: torch.Tensor,
    target: Target = None,
    *,
    normalize: str = "none",
    method: str = "gradcam",
    return_details: Literal[True],
    predicted_too: bool = False,
) -> GradCAMResult: ...


def grad_cam(
    model: nn.Module,
    layer: LayerSpec,
    images: torch.Tensor,
    target: Target = None,
    *,
    normalize: str = "none",
    method: str = "gradcam",
    return_details: bool = False,
    predicted_too: bool = False,
) -> Union[torch.Tensor, GradCAMResult]:
    """Grad-CAM (or Grad-CAM++) maps ``[N, H, W]`` of ``images`` at input resolution.

    ``layer``: a dotted name or module whose output is ``[N, K, h, w]`` (usually the last
    conv, its BN/ReLU, or a block such as ResNet's ``layer4``); DDP / DataParallel /
    ``torch.compile`` wrappers are looked through and the forward pass runs on the
    wrapped module (after a training step a DDP forward broadcasts buffers from rank 0,
    a collective that hangs when only rank 0 takes the snapshot; a compiled graph
    ignores hooks added after compilation and would recompile for eval mode and
    frozen parameters). ``normalize="none"`` keeps the raw ReLU'd map so magnitudes compare across
    training steps; ``"per_image"`` min-max scales each map to [0, 1] for display.
    ``return_details=True`` gives a :class:`GradCAMResult` with the target, predicted
    class and probability from the same forward pass; with ``predicted_too=True`` also the maps of
    each image's predicted class (``predicted_native``), from that forward pass too: a second gradient
    from the scores back to the layer only, so explaining the prediction beside a label costs no
    second forward pass.

    Training-safe: eval mode inside and every module's flag restored, parameter
    ``.grad`` untouched (``torch.autograd.grad`` with frozen parameters), hooks removed
    also when the model raises, global RNG untouched.
    """
    check_images(images)
    check_choice(normalize, NORMALIZE_CHOICES, "normalize")
    check_choice(method, METHOD_CHOICES, "method")
    wanted = check_target(target, images.shape[0])
    name, module = resolve_layer(model, layer, conv_only=False)
    runner = unwrap(model)
    x = prepare_images(runner, images)

    captured: dict[str, torch.Tensor] = {}

    def capture(_module: nn.Module, _inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(
                f"layer: {name!r} outputs {shape}; Grad-CAM needs a 4-D [N, channels, height, width] tensor"
            )
        if "activation" in captured:
            raise ValueError(
                f"layer: {name!r} runs more than once in one forward pass (a shared module); choose a layer used once"
            )
        # A fresh leaf: the backward pass stops here, whatever came before it. The clone goes on
        # through the network, so an in-place op after the layer (ReLU(inplace=True)) leaves the leaf intact.
        leaf = output.detach().requires_grad_(True)
        captured["activation"] = leaf
        return leaf.clone()

    with snapshot(model) as handles:
        handles.append(module.register_forward_hook(capture))
        output = runner(x)
        if "activation" not in captured:
            raise ValueError(f"layer: {name!r} did not run during the model's forward pass")
        scores, indices = target_scores(output, wanted)
        if not scores.requires_grad:
            raise ValueError(f"target: the score does not depend on layer {name!r} (it carries no gradient)")
        activation = captured["activation"]
        (gradient,) = torch.autograd.grad(
            scores.sum(), activation, allow_unused=True, retain_graph=predicted_too and return_details
        )
        predicted_gradient = (
            _predicted_gradient(output, activation) if predicted_too and return_details else None
        )
    if gradient is None:  # the score does not depend on this layer
        gradient = torch.zeros_like(activation)

    with torch.no_grad():
        native = _cam_from(activation.detach(), gradient, method)
        cam = F.interpolate(native[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        if normalize == "per_image":
            cam, native = normalize_per_image(cam), normalize_per_image(native)
        if not return_details:
            return cam
        predicted, probability, target_probability = probabilities(output, indices)
        predicted_native = None
        if predicted_gradient is not None:
            predicted_native = _cam_from(activation.detach(), predicted_gradient, method)
            if normalize == "per_image":
                predicted_native = normalize_per_image(predicted_native)
    return GradCAMResult(
        cam=cam,
        native=native,
        target=indices,
        score=scores.detach(),
        predicted=predicted,
        probability=probability,
        target_probability=target_probability,
        layer=name,
        method=method,
        predicted_native=predicted_native,
    )


def _predicted_gradient(output: torch.Tensor, activation: torch.Tensor) -> Optional[torch.Tensor]:
    """The gradient of each image's predicted class's score at the layer (None when the output has no predicted
    class); the graph of the forward pass is reused, so only the part after the layer is differentiated again."""
    predicted = probabilities(output, None)[0]
    if predicted is None:
        return None
    scores, _ = target_scores(output, predicted)
    (gradient,) = torch.autograd.grad(scores.sum(), activation, allow_unused=True)
    return torch.zeros_like(activation) if gradient is None else gradient


def _cam_from(activation: torch.Tensor, gradient: torch.Tensor, method: str) -> torch.Tensor:
    """``ReLU(sum_k w_k A_k)`` at the layer's resolution, ``[N, h, w]``."""
    if method == "gradcam":
        weights = gradient.mean(dim=(2, 3), keepdim=True)
    else:  # gradcam++
        squared = gradient.pow(2)
        denominator = 2 * squared + activation.sum(dim=(2, 3), keepdim=True) * gradient.pow(3)
        alpha = torch.where(
            denominator != 0,
            squared / torch.where(denominator != 0, denominator, torch.ones_like(denominator)),
            torch.zeros_like(denominator),
        )
        weights = (alpha * F.relu(gradient)).sum(dim=(2, 3), keepdim=True)
    return F.relu((weights * activation).sum(dim=1))
