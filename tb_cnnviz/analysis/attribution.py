"""Attribution maps of the seeds (002, 004): saliency, guided backprop, guided Grad-CAM, occlusion.

Gradients come from captum (``Saliency``, ``GuidedBackprop``); this module adds what a
training callback needs around them: eval mode with every module's flag restored,
frozen parameters (``.grad`` untouched, no graph into the weights), hooks removed also
when the model raises, the global RNG preserved, and one target convention shared
with :func:`tb_cnnviz.analysis.cam.grad_cam` (``None`` = predicted class, an int, one
class per image, or a callable on the model output). Captum is handed a forward
function that already returns one score per image, as its docs recommend, so the
predicted class is found in the same pass.

Occlusion is our own: captum's ``Occlusion`` returns, per pixel, the average drop of
the output over the windows covering it, a different quantity from the seeds'
"class probability as a function of the occluder position"; ours evaluates batches of
occluded copies (many positions and images per forward pass).

DDP / DataParallel / ``torch.compile`` wrappers are looked through (``layers.unwrap``)
and the forward pass runs on the wrapped module, as in ``grad_cam``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Callable, Optional, Union

import torch
from torch import nn

from tb_cnnviz.analysis.cam import (
    Target,
    check_images,
    check_target,
    grad_cam,
    prepare_images,
    snapshot,
    target_scores,
)
from tb_cnnviz.analysis.layers import LayerSpec, unwrap
from tb_cnnviz.analysis.safety import eval_mode, frozen_parameters, preserved_rng

__all__ = ["saliency", "guided_backprop", "guided_grad_cam", "occlusion", "occlusion_positions"]

Size2 = Union[int, Sequence[int]]


class _ScoreModel(nn.Module):
    """``images -> [N]`` scores for captum; keeps the class indices it explained (``None`` = predicted)."""

    def __init__(self, model: nn.Module, target):
        super().__init__()
        self.model = model
        self.target = target
        self.indices: Optional[torch.Tensor] = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scores, self.indices = target_scores(self.model(images), self.target)
        return scores


def _captum_gradients(
    method: Callable[[nn.Module], object], model: nn.Module, images: torch.Tensor, target: Target
) -> torch.Tensor:
    """Run a captum gradient method on the unwrapped model inside the training-safety wrapper."""
    check_images(images)
    wanted = check_target(target, images.shape[0])
    runner = unwrap(model)
    x = prepare_images(runner, images).requires_grad_(True)  # a new tensor object: the user's keeps its flag
    with snapshot(model):
        attributor = method(_ScoreModel(runner, wanted))
        with warnings.catch_warnings():
            # captum announces every ReLU hook and every input it sets requires_grad on.
            warnings.simplefilter("ignore", UserWarning)
            gradients = attributor.attribute(x, target=None)
    return gradients.detach()


def saliency(model: nn.Module, images: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Vanilla gradient saliency map ``[N, H, W]`` (Simonyan et al., 2014).

    ``M_ij = max_c |d y / d x_cij|`` where ``y`` is the target logit: how much a small
    change of each pixel moves the class score. Uses ``captum.attr.Saliency``.
    """
    from captum.attr import Saliency

    return _captum_gradients(Saliency, model, images, target).abs().amax(dim=1)


def guided_backprop(model: nn.Module, images: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Guided backpropagation ``[N, C, H, W]`` (Springenberg et al., 2015).

    The gradient of the target logit with respect to the input, where every
    ``nn.ReLU`` passes back only positive gradients at positive inputs:
    ``R_in = (x > 0) * ReLU(R_out)``. Uses ``captum.attr.GuidedBackprop``, which clones
    each ReLU's input so ``ReLU(inplace=True)`` works. Only ``nn.ReLU`` modules are
    guided: ``F.relu`` calls and other activations (Hardswish, SiLU) pass plain gradients.
    """
    from captum.attr import GuidedBackprop

    return _captum_gradients(GuidedBackprop, model, images, target)


def guided_grad_cam(
    model: nn.Module, layer: LayerSpec, images: torch.Tensor, target: Target = None
) -> torch.Tensor:
    """Guided Grad-CAM ``[N, C, H, W]`` = guided backprop x upsampled Grad-CAM (Selvaraju et al., 2017).

    High-resolution detail from guided backprop, class-discriminative through the
    Grad-CAM mask. The Grad-CAM factor is our bilinear, raw (``normalize="none"``)
    map, so the result is the same map :func:`grad_cam` logs; captum's ``GuidedGradCam``
    would upsample with nearest neighbours. The predicted class is fixed by the Grad-CAM
    pass and reused for guided backprop.
    """
    result = grad_cam(model, layer, images, target, normalize="none", return_details=True)
    guided = guided_backprop(model, images, result.target if result.target is not None else target)
    return guided * result.cam[:, None]


def occlusion_positions(image_size: Size2, window: Size2, stride: Size2) -> tuple[list[int], list[int]]:
    """Top-left corners ``(tops, lefts)`` of the occluder; map cell ``[i, j]`` covers rows ``tops[i]:tops[i]+window_h``."""
    height, width = _pair(image_size, "image_size")
    window_h, window_w = _pair(window, "window")
    stride_h, stride_w = _pair(stride, "stride")
    if window_h > height or window_w > width:
        raise ValueError(
            f"window: {window!r} is larger than the images ({height}x{width}); expected at most the image size"
        )
    return list(range(0, height - window_h + 1, stride_h)), list(range(0, width - window_w + 1, stride_w))


def occlusion(
    model: nn.Module,
    images: torch.Tensor,
    target: Target = None,
    window: Size2 = 8,
    stride: Size2 = 4,
    *,
    fill: Union[str, float] = "mean",
    batch_size: int = 128,
) -> torch.Tensor:
    """Target-class probability as a function of the occluder position, ``[N, rows, cols]`` (seeds 002/004; Zeiler & Fergus, 2014).

    A ``window`` square (int or ``(h, w)``) slides over each image by ``stride``;
    ``map[n, i, j]`` is the softmax probability of the target class for image ``n`` with
    the square at top-left ``(i * stride_h, j * stride_w)`` (see
    :func:`occlusion_positions`). Low values mark the regions the class depends on.
    ``target=None`` explains the class predicted for the unoccluded image; a callable
    target gives its own score instead of a probability.

    ``fill="mean"`` (default) paints the square with each image's per-channel mean: a
    neutral colour already present in the image's statistics, unlike the seeds' zero or
    grey patch, which is out of distribution when the input is normalised. A float
    paints that constant. ``batch_size`` occluded copies (of any images and positions)
    go through the model per forward pass (128 was fastest on CPU for 32 px inputs; a
    GPU likes more). A callable target sees the outputs of such mixed batches, so it
    must score each row on its own.
    """
    check_images(images)
    wanted = check_target(target, images.shape[0])
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"fill: expected 'mean' or a number, got {fill!r}")
    elif isinstance(fill, bool) or not isinstance(fill, (int, float)):
        raise TypeError(f"fill: expected 'mean' or a number, got {type(fill).__name__}")
    count, _, height, width = images.shape
    tops, lefts = occlusion_positions((height, width), window, stride)
    window_h, window_w = _pair(window, "window")

    runner = unwrap(model)
    x = prepare_images(runner, images)
    # [P, 1, H, W] occluder masks, P = rows * cols, in row-major order of the map.
    masks = torch.zeros(len(tops), len(lefts), 1, height, width, dtype=torch.bool, device=x.device)
    for i, top in enumerate(tops):
        for j, left in enumerate(lefts):
            masks[i, j, :, top : top + window_h, left : left + window_w] = True
    masks = masks.flatten(0, 1)
    positions = masks.shape[0]
    paint = (
        x.mean(dim=(2, 3), keepdim=True) if fill == "mean" else torch.full_like(x[:, :, :1, :1], float(fill))
    )

    with preserved_rng(), eval_mode(model), frozen_parameters(model), torch.no_grad():
        reference = runner(x)
        _, indices = target_scores(reference, wanted)  # validates the target and fixes the predicted class
        values = torch.empty(
            count * positions, device=x.device, dtype=torch.promote_types(x.dtype, torch.float32)
        )
        for start in range(0, count * positions, batch_size):
            flat = torch.arange(start, min(start + batch_size, count * positions), device=x.device)
            image_index, position_index = flat // positions, flat % positions
            copies = torch.where(masks[position_index], paint[image_index], x[image_index])
            output = runner(copies)
            if callable(wanted):
                scores, _ = target_scores(output, wanted)
            else:
                scores = torch.softmax(output.float(), dim=1).gather(1, indices[image_index][:, None])[:, 0]
            values[start : start + flat.numel()] = scores
    return values.reshape(count, len(tops), len(lefts))


def _pair(value: Size2, argument: str) -> tuple[int, int]:
    """``int`` or ``(int, int)`` of positive ints, else an error naming ``argument``."""
    items = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        pair = tuple(items)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{argument}: expected a positive int or a pair (height, width) of them, got {value!r}"
        ) from None
    if len(pair) != 2 or any(isinstance(item, bool) or not isinstance(item, int) for item in pair):
        raise TypeError(
            f"{argument}: expected a positive int or a pair (height, width) of them, got {value!r}"
        )
    if pair[0] < 1 or pair[1] < 1:
        raise ValueError(f"{argument}: expected positive sizes, got {value!r}")
    return pair[0], pair[1]
