"""The callback on the torchvision and timm classification zoo; writes ``docs/zoo.md`` and prints it.

Usage: ``python scripts/zoo.py [--out docs/zoo.md] [model ...]`` (models as ``tv:resnet18`` or
``timm:dla34``; default: all of ``ZOO``). Each model is built with random weights and its own
classifier, the callback is attached with default layers (probe of 8 random 64 px images, 160 px
for inception_v3; ``strict=True``; kernels, activations, Grad-CAM and dead filters every step so
three SGD steps log something), and the script records: the default kernel, activation and
Grad-CAM layers with their output shapes, how many conv layers get dead-filter statistics and what
each count means (its ``semantics``: dead, inactive, residual, none), every warning
raised, and every main plugin route that does not answer 200 for the run. A model that fails is
a row with its error; the script goes on. The test subset is ``tests/callbacks/test_zoo.py``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
import traceback
import urllib.parse
import warnings
from collections import Counter
from pathlib import Path

import torch
import torchvision
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # support.plugin_client and read_logdir

from support import fit_with_callback, plugin_client, read_logdir  # noqa: E402

from tb_cnnviz import metadata  # noqa: E402
from tb_cnnviz.analysis.layers import conv_layers  # noqa: E402
from tb_cnnviz.callbacks import CNNVizCallback  # noqa: E402

ZOO = [
    *(
        f"tv:{name}"
        for name in (
            "resnet18",
            "resnet50",
            "resnext50_32x4d",
            "wide_resnet50_2",
            "vgg16_bn",
            "densenet121",
            "mobilenet_v2",
            "mobilenet_v3_large",
            "efficientnet_b0",
            "efficientnet_v2_s",
            "convnext_tiny",
            "regnet_y_400mf",
            "shufflenet_v2_x1_0",
            "squeezenet1_1",
            "mnasnet1_0",
            "googlenet",
            "inception_v3",
            "alexnet",
        )
    ),
    *(
        f"timm:{name}"
        for name in (
            "resnet50d",
            "efficientnet_b0",
            "convnext_nano",
            "regnetz_b16",
            "mobilevitv2_050",
            "cspdarknet53",
            "dla34",
            "ghostnet_100",
            "repvgg_a0",
            "hrnet_w18_small",
        )
    ),
]
PROBE_IMAGES = 8
STEPS = 3
EVERY = {"kernels": 1, "activations": 1, "gradcam": 1, "dead_filters": 1}
API = "/data/plugin/cnnviz/api"
RUN = "zoo"


def build(spec: str) -> tuple[nn.Module, int]:
    """The model of ``tv:<name>`` or ``timm:<name>`` with random weights, and its probe size in px."""
    source, name = spec.split(":", 1)
    if source == "timm":
        import timm

        return timm.create_model(name, pretrained=False), 64
    extra = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    return getattr(torchvision.models, name)(weights=None, **extra), 160 if name == "inception_v3" else 64


def output_shapes(model: nn.Module, layers: list[tuple[str, nn.Module]], images: torch.Tensor) -> dict:
    """``{name: [C, h, w]}`` of each layer's output on ``images`` (one eval forward, no gradients)."""
    shapes: dict[str, list[int]] = {}

    def recorder(name: str):
        def hook(_module, _inputs, output) -> None:  # returns None: the output is left as it is
            shape = list(output.shape[1:]) if isinstance(output, torch.Tensor) else [type(output).__name__]
            shapes.setdefault(name, shape)

        return hook

    handles = [module.register_forward_hook(recorder(name)) for name, module in layers]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(images)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return shapes


def route_errors(root: str, kernel: str, activations: list[str], cam: list[str], step: int) -> list[str]:
    """``route (status)`` for every main route that does not answer 200 for the run."""
    client, _ = plugin_client(root)
    calls = [
        ("runs/list", {}),
        ("runs/steps", {"run": RUN, "kind": "kernels", "layer": kernel}),
        ("filters/kernels", {"run": RUN, "layer": kernel, "step": step}),
        ("filters/smoothness", {"run": RUN, "layer": kernel}),
        *(("activations/step", {"run": RUN, "layer": layer, "step": step}) for layer in activations),
        ("dead/rates", {"run": RUN, "layer": kernel}),
        ("dead/fractions", {"run": RUN}),
        *(("gradcam/step", {"run": RUN, "layer": layer, "step": step}) for layer in cam),
        *(("gradcam/maps", {"run": RUN, "layer": layer, "step": step}) for layer in cam),
    ]
    errors = []
    for route, params in calls:
        response = client.get(f"{API}/{route}?{urllib.parse.urlencode(params)}")
        if response.status_code != 200:
            errors.append(f"{route} {params.get('layer', '')} ({response.status_code})".replace("  ", " "))
    return errors


def semantics_counts(logged: dict) -> Counter:
    """How many dead-filter layers have each ``semantics`` (what their count means), from the logged series."""
    return Counter(
        series["content"].get("semantics", "relu")
        for series in logged.values()
        if series["content"].get("kind") == metadata.DEAD_FILTERS
    )


def run_model(spec: str) -> dict:
    """Attach the callback to one model, train ``STEPS`` steps and record what the table shows."""
    row: dict = {"model": spec, "warnings": [], "errors": []}
    started = time.perf_counter()
    try:
        torch.manual_seed(0)
        model, size = build(spec)
        generator = torch.Generator().manual_seed(0)
        probe = torch.randn(PROBE_IMAGES, 3, size, size, generator=generator)
        probe_labels = torch.arange(PROBE_IMAGES)
        images = torch.randn(PROBE_IMAGES, 3, size, size, generator=generator)
        labels = torch.randint(0, 10, (PROBE_IMAGES,), generator=generator)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        with tempfile.TemporaryDirectory() as root, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            viz = CNNVizCallback(
                model, log_dir=f"{root}/{RUN}", probe=(probe, probe_labels), strict=True, every_n_steps=EVERY
            )
            layers = {
                "kernel": list(viz.kernel_layers),
                "activations": list(viz.activation_layers),
                "gradcam": list(viz.gradcam_layers),
            }
            shapes = output_shapes(model, [pair for pairs in layers.values() for pair in pairs], probe[:2])
            for key, pairs in layers.items():
                row[key] = [(name, shapes.get(name)) for name, _ in pairs]
            row["dead_layers"] = len(viz.dead_filter_layers)
            fit_with_callback(model, viz, optimizer, range(1, STEPS + 1), lambda step: (images, labels))
            viz.close()
            row["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
            logged = read_logdir(root)[RUN]
            row["measured"] = semantics_counts(logged)
            row["convs"] = len(conv_layers(model))
            kernel = row["kernel"][0][0]
            step = logged[metadata.tag(metadata.KERNELS, kernel)]["steps"][-1]
            row["errors"] = route_errors(
                root, kernel, [n for n, _ in row["activations"]], [n for n, _ in row["gradcam"]], step
            )
    except Exception as error:  # noqa: BLE001 - one failing model is a row of the table, not the end
        last = traceback.extract_tb(error.__traceback__)[-1]
        row["crash"] = f"{type(error).__name__}: {error} ({Path(last.filename).name}:{last.lineno})"
    row["seconds"] = time.perf_counter() - started
    return row


def _layers(pairs: list | None) -> str:
    if not pairs:
        return "–"
    return "<br>".join(
        f"`{name}` {'×'.join(str(d) for d in shape) if shape else '?'}" for name, shape in pairs
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


def table(rows: list[dict]) -> str:
    """The markdown document: how it was made, a headline, and one row per model."""
    import tensorboard

    try:
        import timm

        timm_version = timm.__version__
    except ImportError:
        timm_version = "not installed"
    ok = [r for r in rows if "crash" not in r and not r["warnings"] and not r["errors"]]
    lines = [
        "# The callback on the torchvision and timm zoo",
        "",
        f"Made by `python scripts/zoo.py` on {datetime.date.today().isoformat()} with torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, timm {timm_version}, tensorboard {tensorboard.__version__}.",
        f"Each model: random weights, default layers, probe of {PROBE_IMAGES} random 64 px images "
        f"(160 px for inception_v3), `strict=True`, {STEPS} SGD steps with kernels, activations, Grad-CAM "
        "and dead filters logged every step. Shapes are C×h×w at the probe size. *Routes* are the main "
        "routes of every view (runs, filters, activations, dead, gradcam) for the run, its layers and last step.",
        "",
        "*Dead filters*: of the model's conv layers, how many get dead-filter statistics by default, by what "
        "their count means (`semantics`, found by one probe forward that follows each conv's output through "
        "any norm layer to its nonlinearity; `tb_cnnviz/analysis/activation_points.py`): **relu** a ReLU-like "
        "function follows, a filter with rate 0 is *dead*; **smooth** SiLU, GELU, Hardswish...: rate 0 is "
        "*inactive* (neither signal nor slope); **residual** the branch is added to another path before its "
        "nonlinearity, so its own sign is not a dead-filter measurement; **none** nothing nonlinear follows, "
        "or the output is concatenated first: no dead filters are defined. Squeeze-excite gates and "
        "post-pooling heads (1×1 maps) are left out by default. Only relu and smooth layers get a dead "
        "fraction.",
        "",
        f"**{len(ok)} of {len(rows)} models** construct, train and are served with no warning, "
        "no exception and no route error.",
        "",
        "| Model | Kernels | Activations | Grad-CAM | Dead filters (what the count means) | Warnings | Route errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "crash" in r:
            lines.append(f"| {r['model']} | **crashed**: {_cell(r['crash'])} | | | | | |")
            continue
        measured = ", ".join(f"{count} {meaning}" for meaning, count in sorted(r.get("measured", {}).items()))
        left_out = r.get("convs", 0) - r.get("dead_layers", 0)
        warned = "<br>".join(_cell(w) for w in dict.fromkeys(r["warnings"])) or "none"
        lines.append(
            f"| {r['model']} | {_layers(r.get('kernel'))} | {_layers(r.get('activations'))} | "
            f"{_layers(r.get('gradcam'))} | {r.get('dead_layers', 0)} of {r.get('convs', 0)}: {measured or '–'}"
            f"{f'; {left_out} gates/heads left out' if left_out else ''} | {warned} | "
            f"{_cell('; '.join(r['errors'])) or 'none'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=ZOO, help="tv:<name> or timm:<name> (default: the zoo)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "zoo.md"), help="where to write the table")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small tensors: one thread is far faster on a shared machine
    rows = []
    for spec in args.models:
        rows.append(run_model(spec))
        status = rows[-1].get("crash") or f"{len(rows[-1]['warnings'])} warning(s), {rows[-1]['errors']}"
        print(f"{spec}: {rows[-1]['seconds']:.1f} s, {status}", file=sys.stderr, flush=True)
    text = table(rows)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
