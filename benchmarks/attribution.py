"""How much a Grad-CAM snapshot costs compared with one plain forward pass, and occlusion throughput.

Run: ``.venv/bin/python benchmarks/attribution.py [--repeats 15] [--device cpu] [--threads N]``

For each model the methods are timed in alternation (forward, ours, captum, ...,
forward, ours, ...) so machine load hits them alike, and the median is reported.
"plain forward" is ``model(x)`` under ``torch.no_grad()`` in eval mode. Target
(docs/design.md, Performance targets): our ``grad_cam`` at most 1.3x the plain forward.
pytorch-grad-cam is timed only if installed (it is not a dependency); it calls ``backward()``
and ``zero_grad()`` on the model, so it gets its own copy.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings
from typing import Callable

import torch
import torchvision

from tb_cnnviz.analysis.attribution import occlusion
from tb_cnnviz.analysis.cam import grad_cam
from tb_cnnviz.models import small_vgg


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(function: Callable[[], object], device: torch.device) -> float:
    _synchronize(device)
    start = time.perf_counter()
    function()
    _synchronize(device)
    return time.perf_counter() - start


def _alternate(
    methods: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per method; one warm-up call each, then ``repeats`` rounds in alternation."""
    for function in methods.values():
        function()
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, function in methods.items():
            samples[name].append(_timed(function, device))
    return {name: statistics.median(values) for name, values in samples.items()}


def grad_cam_table(repeats: int, device: torch.device) -> list[tuple[str, str, float, float]]:
    generator = torch.Generator().manual_seed(0)
    cases = [
        ("resnet18 128px b16", torchvision.models.resnet18(weights=None), "layer4", 128),
        ("SmallVGG 32px b16", small_vgg(), "features.conv5", 32),
    ]
    rows = []
    for label, model, layer_name, size in cases:
        model = model.to(device).eval()
        images = torch.rand(16, 3, size, size, generator=generator).to(device)

        def plain_forward(model=model, images=images):
            with torch.no_grad():
                return model(images)

        methods: dict[str, Callable[[], object]] = {
            "plain forward": plain_forward,
            "grad_cam (ours)": lambda model=model, images=images, layer_name=layer_name: grad_cam(
                model, layer_name, images
            ),
            "grad_cam++ (ours)": lambda model=model, images=images, layer_name=layer_name: grad_cam(
                model, layer_name, images, method="gradcam++"
            ),
            "grad_cam details (ours)": lambda model=model, images=images, layer_name=layer_name: grad_cam(
                model, layer_name, images, return_details=True
            ),
        }
        try:
            from captum.attr import LayerAttribution, LayerGradCam

            from tb_cnnviz.analysis.safety import frozen_parameters

            captum_model = copy.deepcopy(model)
            captum_layer = dict(captum_model.named_modules())[layer_name]
            with torch.no_grad():
                given = captum_model(images).argmax(1)

            def captum_grad_cam(
                captum_model=captum_model, captum_layer=captum_layer, images=images, given=given
            ):
                cam = LayerGradCam(captum_model, captum_layer).attribute(
                    images, target=given, relu_attributions=True
                )
                return LayerAttribution.interpolate(cam, images.shape[-2:], "bilinear")

            def captum_frozen(captum_model=captum_model, images=images, given=given):
                with frozen_parameters(captum_model):
                    return captum_grad_cam(images=images, given=given)

            methods["captum LayerGradCam (target given)"] = captum_grad_cam
            methods["captum LayerGradCam, frozen params"] = captum_frozen
        except ImportError:
            pass
        try:
            from pytorch_grad_cam import GradCAM

            theirs = copy.deepcopy(model)
            their_layer = dict(theirs.named_modules())[layer_name]

            def pytorch_grad_cam(theirs=theirs, their_layer=their_layer, images=images):
                with GradCAM(model=theirs, target_layers=[their_layer]) as cam:
                    return cam(input_tensor=images, targets=None)

            methods["pytorch-grad-cam GradCAM"] = pytorch_grad_cam
        except ImportError:
            print(f"(pytorch-grad-cam not installed: skipped for {label})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            medians = _alternate(methods, repeats, device)
        base = medians["plain forward"]
        rows.extend((label, name, seconds, seconds / base) for name, seconds in medians.items())
        rows.append((label, f"layer: {layer_name}", float("nan"), float("nan")))
    return rows


def occlusion_table(repeats: int, device: torch.device) -> list[tuple[str, float, float]]:
    generator = torch.Generator().manual_seed(1)
    model = small_vgg().to(device).eval()
    images = torch.rand(32, 3, 32, 32, generator=generator).to(device)
    methods: dict[str, Callable[[], object]] = {}
    for batch_size in (64, 128, 256, 512):
        methods[f"occlusion (ours) batch_size={batch_size}"] = lambda batch_size=batch_size: occlusion(
            model, images, window=8, stride=4, batch_size=batch_size
        )
    try:
        from captum.attr import Occlusion

        def captum_occlusion():
            with torch.no_grad():
                predicted = model(images).argmax(1)
            probability = lambda x: torch.softmax(model(x), dim=1)  # noqa: E731
            return Occlusion(probability).attribute(
                images,
                sliding_window_shapes=(3, 8, 8),
                strides=(3, 4, 4),
                target=predicted,
                perturbations_per_eval=49,
            )

        methods["captum Occlusion (per-pixel drops; scale only)"] = captum_occlusion
    except ImportError:
        pass
    medians = _alternate(methods, repeats, device)
    return [(name, seconds, images.shape[0] / seconds) for name, seconds in medians.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch intra-op threads (0: torch's default); 1 is steadier on a shared machine",
    )
    arguments = parser.parse_args()
    if arguments.threads > 0:
        torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, medians of {arguments.repeats} alternated runs\n"
    )

    print(f"{'model':<20} {'method':<36} {'ms':>9} {'x forward':>10}")
    for label, name, seconds, ratio in grad_cam_table(arguments.repeats, device):
        if seconds != seconds:  # the layer line
            print(f"{label:<20} {name:<36}")
            continue
        print(f"{label:<20} {name:<36} {seconds * 1e3:9.2f} {ratio:10.2f}")

    print("\nocclusion, SmallVGG, 32 images of 32x32, window 8, stride 4 (7x7 = 49 positions)")
    print(f"{'method':<50} {'ms':>9} {'images/s':>10}")
    for name, seconds, rate in occlusion_table(max(3, arguments.repeats // 3), device):
        print(f"{name:<50} {seconds * 1e3:9.1f} {rate:10.1f}")


if __name__ == "__main__":
    main()
