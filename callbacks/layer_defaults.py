"""The layer arguments' defaults, found on the model's path from its input to its class scores, and the
one warning for a model that is not a CNN beyond its convs (what is shown of it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from torch import nn

from tb_cnnviz.analysis.layers import model_device, resolve_layers
from tb_cnnviz.analysis.paths import main_path
from tb_cnnviz.callbacks import compilation

if TYPE_CHECKING:
    from tb_cnnviz.callbacks.config import CallbackConfig

DEFAULT_ACTIVATION_LAYERS = 3


def resolve_or_default(base: nn.Module, spec, default, argument: str, conv_only: bool = True):
    """The layers of a layers argument: ``default`` when not given (None), else ``spec`` resolved in ``base``."""
    if spec is None:
        return list(default)
    return resolve_layers(base, spec, argument=argument, conv_only=conv_only)


def path_defaults(
    base: nn.Module, inputs: Mapping[str, tuple], compiled: bool, logits: Callable | None
) -> tuple[list, list]:
    """Default Grad-CAM layer and stage outputs, found by running two probe images through the model
    to the class scores that ``logits`` picks (the callback's own argument, so both agree).

    ``([], [])`` without images, or when the model cannot run on them (the probe check that
    follows then names the problem); the callers fall back to the conv layers.
    """
    images = next((images for images, _ in inputs.values() if images is not None), None)
    if images is None:
        return [], []
    try:
        with compilation.own_forwards(base, compiled):
            path = main_path(base, images[:2].to(model_device(base)), logits if callable(logits) else None)
    except Exception:  # noqa: BLE001 - reported by the probe check with the model's own error
        return [], []
    cam = path.gradcam_layer()
    return ([(cam.name, cam.module)] if cam else []), [(p.name, p.module) for p in path.stage_outputs()]


def not_a_cnn(base: nn.Module, extent, config: CallbackConfig) -> str:
    """The one warning for a model that is not a CNN beyond its convs (a vision transformer): what is shown."""
    after = extent.after
    names = ", ".join(repr(name) for name in after[:3]) + (", ..." if len(after) > 3 else "")
    cam = [name for name, _ in config.layers["gradcam"]] if config.enabled["gradcam"] else []
    return (
        f"tb-cnnviz: {type(base).__name__} is not a CNN beyond its {extent.convs} conv layer(s): after "
        f"{extent.last_conv!r} it runs {len(after)} linear or attention layers ({names}), which tb-cnnviz "
        "does not show. Shown: the kernels and activations of the conv layer(s)"
        + (f", Grad-CAM at {', '.join(map(repr, cam))}" if cam else "")
        + ", and dead filters only where a nonlinearity follows a conv (a conv that none follows, such as "
        "a patch embedding, is marked 'none': no dead filters are reported for it)."
    )
