"""The ``tb-cnnviz`` command line's arguments: the parser, and the parsing of argument values.

Torch-free, so that ``--help`` and usage errors answer at once. Every bad value raises
``ValueError`` (or argparse's usage error) with one line naming the argument.
"""

from __future__ import annotations

import argparse
import ast
import os
from collections.abc import Sequence
from typing import Optional

DESCRIPTION = (
    "``tb-cnnviz``: the plugin's views for a model that is already trained, written as TensorBoard runs."
)
DEFAULT_ACTIVATION_LAYERS = 3
METHODS = {  # --methods value -> attribution method (gradcam is its own summary kind)
    "gradcam": "gradcam",
    "saliency": "saliency",
    "guided": "guided_backprop",
    "guided_backprop": "guided_backprop",
    "occlusion": "occlusion",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; ``args.command`` names the one chosen."""
    common = _common_arguments()
    parser = _Parser(
        prog="tb-cnnviz",
        description=DESCRIPTION,
        epilog="Run 'tb-cnnviz COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help, description=help)

    command("summary", "Layer table: name, type, output shape, parameters, trainable.")
    sub = command("filters", "Kernel grids and per-filter smoothness of conv layers.")
    sub.add_argument(
        "--layer", help="conv layer(s), comma-separated, or 'all' (default: the first conv layer)"
    )
    sub.add_argument("--normalization", choices=("global", "per_filter"), default="global")
    _patterns_arguments(
        command("patterns", "Filter-pattern gallery by activation maximisation (or class models).")
    )
    _explain_arguments(
        command(
            "explain", "Why the model predicts what it does for IMAGE(s): attribution maps and layer outputs."
        )
    )
    _dream_arguments(command("dream", "DeepDream: amplify what a layer sees in IMAGE."))
    _embed_arguments(command("embed", "2-D map (t-SNE) of the codes of an image folder, with thumbnails."))
    return parser


def _common_arguments() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "model",
        metavar="MODEL",
        help="torchvision:NAME, module.path:factory, a TorchScript file, "
        "a torch.export program (.pt2) or the example's checkpoint",
    )
    group = common.add_argument_group("model options")
    group.add_argument(
        "--checkpoint", metavar="PATH", help="state_dict to load into a factory or torchvision model"
    )
    group.add_argument(
        "--factory-kwargs",
        action="append",
        default=[],
        metavar="K=V[,K=V]",
        help="arguments of the factory, e.g. width=8,num_classes=10 (Python literals)",
    )
    group.add_argument(
        "--weights", help="torchvision weights to download, e.g. DEFAULT (default: random weights)"
    )
    group.add_argument(
        "--input-size",
        metavar="N|HxW",
        type=_size,
        help="input size (default: from the weights or the exported program; 32 for SmallVGG; else 224)",
    )
    group.add_argument(
        "--mean", type=_floats, help="input normalisation mean, e.g. 0.485,0.456,0.406 (default: none)"
    )
    group.add_argument("--std", type=_floats, help="input normalisation std (default: none)")
    group.add_argument(
        "--class-names", metavar="A,B,...|FILE", help="class names, comma-separated or one per line in a file"
    )
    group = common.add_argument_group("output")
    group.add_argument(
        "--logdir", default="runs", help="TensorBoard log directory; a new run is made in it (default: runs)"
    )
    group.add_argument("--out", metavar="DIR", help="also save the pictures as PNG files here")
    group.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    group.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return common


def _patterns_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--layer", help="layer(s), comma-separated (default: the last conv layer)")
    sub.add_argument(
        "--channels", help="channels to render, e.g. 0-63 or 1,5,9 or all (default: the first 16)"
    )
    sub.add_argument(
        "--classes", help="render class models (maximise these class logits, e.g. 0-9) instead of filters"
    )
    sub.add_argument("--size", type=int, help="pattern size in pixels (default: the input size, at most 128)")
    sub.add_argument("--steps", type=int, default=128, help="optimisation steps (default: 128)")
    sub.add_argument(
        "--param",
        choices=("fourier", "pixel"),
        default="fourier",
        help="image parametrisation (default: fourier)",
    )
    sub.add_argument("--seed", type=int, default=0)


def _explain_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("images", nargs="+", metavar="IMAGE")
    sub.add_argument(
        "--target", help="class to explain, index or name (default: each image's predicted class)"
    )
    sub.add_argument(
        "--methods",
        help="comma-separated: gradcam, saliency, guided, occlusion (default: all; "
        "saliency,occlusion for TorchScript)",
    )
    sub.add_argument("--layer", help="Grad-CAM layer (default: the last conv layer)")
    sub.add_argument(
        "--activation-layers",
        help="layers whose outputs are shown, comma-separated, 'all' or 'none' "
        f"(default: {DEFAULT_ACTIVATION_LAYERS} evenly spaced conv layers)",
    )
    sub.add_argument("--top", type=int, default=3, help="predictions printed per image (default: 3)")
    sub.add_argument(
        "--faithfulness",
        action="store_true",
        help="also score each Grad-CAM map against a random map by deletion and insertion curves",
    )


def _dream_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("image", metavar="IMAGE")
    sub.add_argument(
        "--layer", help="layer(s), comma-separated (default: the conv layer at two thirds of the depth)"
    )
    sub.add_argument("--octaves", type=int, default=4)
    sub.add_argument("--octave-scale", type=float, default=1.4)
    sub.add_argument("--steps", type=int, default=10, help="steps per octave (default: 10)")
    sub.add_argument("--lr", type=float, default=0.01)
    sub.add_argument(
        "--max-side", type=int, default=512, help="downscale larger images to this side (default: 512)"
    )
    sub.add_argument("--seed", type=int, default=0)


def _embed_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "folder", metavar="IMAGE_FOLDER", help="root/<class>/<image> (ImageFolder layout) or a flat folder"
    )
    sub.add_argument("--layer", help="feature layer (default: the input of the last linear layer)")
    sub.add_argument("--method", choices=("tsne", "pca", "umap"), default="tsne")
    sub.add_argument(
        "--max-images", type=int, default=2000, help="use at most this many images, spread over the folder"
    )
    sub.add_argument(
        "--top-layers",
        help="layers whose top-activating images are logged, comma-separated or 'none' "
        f"(default: {DEFAULT_ACTIVATION_LAYERS} evenly spaced conv layers)",
    )
    sub.add_argument("--top-k", type=int, default=9)
    sub.add_argument("--batch-size", type=int, default=64)


# --------------------------------------------------------------------------- argument values
def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or HxW (pixels), got {text!r}") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected N or HxW with positive sizes, got {text!r}")
    return (values[0], values[-1])


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def factory_kwargs(items: Sequence[str]) -> dict:
    """``["width=8", "num_classes=10,batch_norm=False"]`` -> ``{"width": 8, ...}`` (Python literals, else strings)."""
    result = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip().isidentifier():
                raise ValueError(f"--factory-kwargs: expected NAME=VALUE pairs, got {part!r}")
            try:
                result[key.strip()] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                result[key.strip()] = value.strip()
    return result


def class_names(text: Optional[str]) -> Optional[list[str]]:
    """``--class-names``: a file with one name per line, or comma-separated names."""
    if text is None:
        return None
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as file:
            return [line.strip() for line in file if line.strip()]
    return [name.strip() for name in text.split(",")]


def layer_names(spec: str, argument: str = "--layer") -> list[str]:
    """Comma-separated layer names (``["all"]`` stands for every conv layer)."""
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise ValueError(f"{argument}: expected one or more layer names, got {spec!r}")
    return names


def indices(spec: str, count: int, argument: str) -> list[int]:
    """``all``, ``0-15``, ``1,5,9`` or a mix, checked against ``count``."""
    if spec.strip() == "all":
        return list(range(count))
    chosen: list[int] = []
    try:
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            first, _, last = part.partition("-")
            chosen += list(range(int(first), int(last) + 1)) if last else [int(first)]
    except ValueError:
        raise ValueError(f"{argument}: expected indices like 0-15, 1,5,9 or all, got {spec!r}") from None
    bad = [i for i in chosen if not 0 <= i < count]
    if not chosen or bad:
        raise ValueError(
            f"{argument}: {bad[0] if bad else spec!r} is out of range; expected indices 0..{count - 1}"
        )
    return list(dict.fromkeys(chosen))


def class_index(target: str, names: Optional[Sequence[str]], classes: Optional[int]) -> int:
    """``--target`` as a class index: an index, or one of ``names``; checked against ``classes`` when known."""
    if target.lstrip("-").isdigit():
        index = int(target)
    elif names and target in names:
        index = list(names).index(target)
    else:
        known = (
            f"; known classes: {', '.join(names[:20])}{', ...' if len(names) > 20 else ''}"
            if names
            else " (no class names known: pass an index, or --class-names)"
        )
        raise ValueError(f"--target: {target!r} is not a class index or name{known}")
    if classes is not None and not 0 <= index < classes:
        raise ValueError(
            f"--target: class {index} is out of range for a model with {classes} classes (expected 0..{classes - 1})"
        )
    return index


def methods(spec: Optional[str], hooks_supported: bool) -> list[str]:
    """``--methods`` as a list of :data:`METHODS` keys (default: all; those without hooks for TorchScript)."""
    if spec is None:
        return (
            ["gradcam", "saliency", "guided", "occlusion"] if hooks_supported else ["saliency", "occlusion"]
        )
    chosen = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise ValueError(
            f"--methods: unknown method(s) {unknown or spec!r}; expected any of gradcam, saliency, guided, occlusion"
        )
    return chosen
