"""The probe arguments checked at construction: ``probe`` and ``embedding_probe`` as batches, and one
forward of the probe, so a probe the model cannot take or an output Grad-CAM cannot explain fails
before training starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from tb_cnnviz.analysis.layers import model_device
from tb_cnnviz.callbacks import compilation

if TYPE_CHECKING:
    from tb_cnnviz.callbacks.config import CallbackConfig

MAX_PROBE_IMAGES = 64
MAX_EMBEDDING_IMAGES = 50_000
"""The Embedding view's supported maximum (5x TensorBoard Projector's 10,000): its t-SNE, map and lazily
loaded thumbnails are measured at this size (benchmarks/embedding.py, tests/browser/test_embedding_scale_e2e.py)."""
# explain a class: need class scores from the output
CLASS_SCORE_SNAPSHOTS = ("gradcam", "attributions", "faithfulness")


def probe_batch(
    probe, in_channels: int, argument: str, max_images: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Validate a probe batch (images or ``(images, labels)``); a CPU copy is kept, moved to the model when used."""
    if probe is None:
        return None, None
    labels = None
    if isinstance(probe, (tuple, list)):
        if len(probe) != 2:
            raise ValueError(
                f"{argument}: expected images or (images, labels), got a {type(probe).__name__} of length {len(probe)}"
            )
        probe, labels = probe
    if not isinstance(probe, torch.Tensor):
        raise TypeError(f"{argument}: expected a float tensor [N, C, H, W], got {type(probe).__name__}")
    if probe.dim() != 4 or not probe.is_floating_point():
        raise ValueError(
            f"{argument}: expected a 4-D float tensor [N, C, H, W], got shape {tuple(probe.shape)} and dtype {probe.dtype}"
        )
    if probe.shape[1] != in_channels:
        raise ValueError(
            f"{argument}: the model's first conv layer takes {in_channels} channels, the images have {probe.shape[1]} (shape {tuple(probe.shape)})"
        )
    if not 1 <= probe.shape[0] <= max_images:
        typical = (
            " (8-16 is typical)"
            if argument == "probe"
            else " (the Embedding view's supported maximum; pass a subset)"
            if max_images == MAX_EMBEDDING_IMAGES
            else ""
        )
        raise ValueError(f"{argument}: expected 1 to {max_images} images{typical}, got {probe.shape[0]}")
    if not torch.isfinite(probe).all():
        raise ValueError(f"{argument}: the images contain NaN or Inf values")
    if labels is not None:
        labels = torch.as_tensor(labels).detach().cpu().reshape(-1)
        if labels.numel() != probe.shape[0]:
            raise ValueError(f"{argument}: {probe.shape[0]} images but {labels.numel()} labels")
    return probe.detach().cpu().clone(), labels


def check_probe_forward(config: CallbackConfig, asked: bool) -> str | None:
    """One eval forward of two probe images at construction, so a probe the model cannot
    take, or an output Grad-CAM cannot explain, fails before training starts.

    Grad-CAM explains class scores ``[N, classes]`` or dense ones ``[N, classes, H, W]`` (a
    segmentation model, explained per class over the pixels where it is predicted:
    ``analysis.cam.dense_class_scores``). Another output (a detector's list of dicts) is an error
    when the user ``asked`` for Grad-CAM or attributions or gave ``logits``; at the defaults it
    returns the warning that turns them off (kernels, activations and dead filters go on)."""
    from tb_cnnviz.analysis.safety import safe_snapshot

    probe_images, probe_labels = config.inputs["probe"]
    images = probe_images[:2].to(model_device(config.base))
    try:
        with (
            safe_snapshot(config.base),
            torch.no_grad(),
            compilation.own_forwards(config.base, config.compiled),
        ):
            output = config.base(images)
    except Exception as error:
        raise ValueError(
            f"probe: the model cannot run on the probe images of shape {tuple(probe_images.shape)}: "
            f"{type(error).__name__}: {error}"
        ) from error
    if not (config.enabled["gradcam"] or config.enabled["attributions"]):
        return None
    options = config.options
    try:
        scores = config.logits(output)
    except Exception:
        if asked:
            raise
        scores = None
    if not isinstance(scores, torch.Tensor) or scores.dim() not in (2, 4):
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else describe(output)
        if asked:
            raise ValueError(
                f"logits: Grad-CAM needs class scores [N, classes] (or dense [N, classes, H, W]) from the "
                f"model output, got {shape}; pass logits=a function picking them, or gradcam_layers=[] "
                "to turn Grad-CAM off"
            )
        return (
            f"tb-cnnviz: Grad-CAM is off for {type(config.base).__name__}: its output ({shape}) holds no "
            "class scores [N, classes] or dense class scores [N, classes, H, W] (a dict's 'logits' or 'out'). "
            "To turn it on, pass logits=lambda output: <the class scores in output> to CNNVizCallback "
            "(or gradcam_layers=[] to silence this warning). Kernels, activations and dead filters are "
            "logged as usual."
        )
    if scores.dim() == 4 and "occlusion" in options.attributions:
        raise ValueError(
            f"attributions: 'occlusion' needs class scores [N, classes]; the model's output is dense "
            f"{tuple(scores.shape)} (use 'saliency' or 'guided_backprop', which explain dense outputs)"
        )
    if probe_labels is not None and len(probe_labels) and int(probe_labels.max()) >= scores.shape[1]:
        raise ValueError(
            f"probe: label {int(probe_labels.max())} is out of range for a model with {scores.shape[1]} classes"
        )
    return None


def describe(output: Any) -> str:
    """A model output in a few words: ``list of 2 dict``, ``dict with keys ['a', 'b']``, a shape."""
    if isinstance(output, torch.Tensor):
        return f"shape {tuple(output.shape)}"
    if isinstance(output, dict):
        return f"dict with keys {sorted(map(str, output))}"
    if isinstance(output, (list, tuple)):
        kinds = sorted({type(item).__name__ for item in output})
        return f"{type(output).__name__} of {len(output)} {'/'.join(kinds) or 'items'}"
    return type(output).__name__
