"""``tb-cnnviz``: the plugin's views for a model that is already trained, written as TensorBoard runs.

    tb-cnnviz summary   MODEL                      layer table (seed 004's model.summary())
    tb-cnnviz filters   MODEL [--layer L]          kernel grids and smoothness (seed 003)
    tb-cnnviz patterns  MODEL [--layer L]          filter-pattern gallery (seed 000), or --classes
    tb-cnnviz explain   MODEL IMAGE...             Grad-CAM, saliency, guided backprop, occlusion, layer outputs (seed 004)
    tb-cnnviz dream     MODEL IMAGE [--layer L]    DeepDream (seed 001)
    tb-cnnviz embed     MODEL IMAGE_FOLDER         t-SNE of the folder's images with thumbnails (seed 002)

Each command writes one new run ``<logdir>/<command>-<time>`` at step 0 with the same
summary functions the training callback uses (``tb_cnnviz.snapshots``), so the plugin
shows it like a training run. Bad input gives one ``error:`` line and exit code 2.
See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Optional

DEFAULT_ACTIVATION_LAYERS = 3
METHODS = {
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

    parser = _Parser(
        prog="tb-cnnviz",
        description=__doc__.splitlines()[0],
        epilog="Run 'tb-cnnviz COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def command(name: str, run, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    command("summary", cmd_summary, "Layer table: name, type, output shape, parameters, trainable.")
    sub = command("filters", cmd_filters, "Kernel grids and per-filter smoothness of conv layers.")
    sub.add_argument(
        "--layer", help="conv layer(s), comma-separated, or 'all' (default: the first conv layer)"
    )
    sub.add_argument("--normalization", choices=("global", "per_filter"), default="global")
    sub = command(
        "patterns", cmd_patterns, "Filter-pattern gallery by activation maximisation (or class models)."
    )
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
    sub = command(
        "explain",
        cmd_explain,
        "Why the model predicts what it does for IMAGE(s): attribution maps and layer outputs.",
    )
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
    sub = command("dream", cmd_dream, "DeepDream: amplify what a layer sees in IMAGE.")
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
    sub = command("embed", cmd_embed, "2-D map (t-SNE) of the codes of an image folder, with thumbnails.")
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
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; returns the exit code: 0, 2 for bad input (one ``error:`` line), 1 for anything unexpected."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed
        return int(exit_.code or 0)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *_args, **_kwargs: _note(_one_line(message))
            return args.run(args) or 0
    except ValueError as error:  # bad input: every check here and in the analysis functions raises ValueError
        if args.debug:
            raise
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output was piped into a command that stopped reading (| head)
        sys.stderr.close()
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug or an environment problem: still one line unless --debug
        if args.debug:
            raise
        print(
            f"error: {type(error).__name__}: {_one_line(error)} (run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


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


def new_run_dir(logdir: str, command: str) -> str:
    """``<logdir>/<command>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... if that exists already."""
    base = os.path.join(logdir, f"{command}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, index = base, 1
    while os.path.exists(path):
        index += 1
        path = f"{base}-{index}"
    try:
        os.makedirs(path)
    except OSError as error:
        raise ValueError(f"--logdir: cannot create {path} ({error.strerror or error})") from None
    return path


# --------------------------------------------------------------------------- the commands
# Heavy modules (torch, tensorboard) are imported inside the commands so that `--help` answers at once.
def cmd_summary(args) -> int:
    from tb_cnnviz import model_loading as models

    loaded = _load(args)
    rows, output = models.layer_table(loaded, batch=loaded.fixed_batch or 1)
    parameters = list(models.layer_root(loaded).parameters())
    total, trainable = (
        sum(p.numel() for p in parameters),
        sum(p.numel() for p in parameters if p.requires_grad),
    )
    header = ("name", "type", "output shape", "params", "trainable")
    table = [header] + [(r["name"], r["type"], r["output"], f"{r['params']:,}", r["trainable"]) for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    footer = (
        f"input {loaded.in_channels}x{loaded.input_size[0]}x{loaded.input_size[1]}, output {output}; "
        f"parameters: {total:,} total, {trainable:,} trainable, {total - trainable:,} non-trainable"
    )
    if not loaded.hooks_supported:
        footer += " (TorchScript: no per-layer output shapes)"
    print(f"{loaded.description}\n" + "\n".join(lines) + f"\n{footer}")
    markdown = "\n".join(
        [f"**{loaded.description}**", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table[1:]]
        + ["", footer]
    )
    _write_run(args, "summary", [], texts={"summary/layers": markdown})
    return 0


def cmd_filters(args) -> int:
    from tb_cnnviz import model_loading as models
    from tb_cnnviz import snapshots
    from tb_cnnviz.analysis.kernels import smoothness

    loaded = _load(args)
    layers = (
        models.resolve_layers(loaded, args.layer, conv_only=True)
        if args.layer
        else models.required_convs(loaded)[:1]
    )
    summaries = snapshots.kernels(layers, args.normalization)
    for name, conv in layers:
        scores = smoothness(conv.weight.detach())
        print(f"{name}: kernels {list(conv.weight.shape)}, mean smoothness {float(scores.nanmean()):.3f}")
    _write_run(args, "filters", summaries)
    return 0


def cmd_patterns(args) -> int:
    from tb_cnnviz import metadata, snapshots, summary
    from tb_cnnviz import model_loading as models
    from tb_cnnviz.analysis.patterns import class_patterns, filter_patterns

    loaded = _load(args)
    models.require_hooks(loaded, "patterns")
    models.require_free_batch(loaded, "patterns")
    if args.steps < 1 or (args.size is not None and args.size < 1):
        raise ValueError(f"--steps/--size: expected positive numbers, got {args.steps} and {args.size}")
    size = loaded.input_size if loaded.fixed_size else (args.size or min(128, max(loaded.input_size)))
    settings = dict(
        size=size,
        steps=args.steps,
        param=args.param,
        seed=args.seed,
        in_channels=loaded.in_channels,
        progress=not args.no_progress,
        return_activations=True,
    )
    if loaded.fixed_size:  # random pad/scale would change the size the program accepts
        settings["transforms"] = "none"
        _note(
            f"the exported program only accepts {size[0]}x{size[1]} inputs: patterns at that size, without random transforms"
        )
    if args.classes:
        targets = _indices(args.classes, models.output_classes(loaded), "--classes")
        results = [("logits", class_patterns(loaded.module, targets, **settings))]
    else:
        layers = (
            models.resolve_layers(loaded, args.layer, conv_only=False)
            if args.layer
            else models.required_convs(loaded)[-1:]
        )
        results = []
        for name, module in layers:
            count = models.channel_count(module)
            channels = (
                _indices(args.channels, count, "--channels") if args.channels else list(range(min(16, count)))
            )
            results.append((name, filter_patterns(loaded.module, module, channels, **settings)))
    summaries = []
    for name, result in results:  # what snapshots.patterns writes, for any list of channels
        pngs = [summary.encode_png(snapshots.to_uint8(image)) for image in result.images]
        summaries += [
            summary.blob_summary(
                metadata.PATTERNS, name, pngs, channels=list(result.targets), size=size, steps=args.steps
            ),
            summary.tensor_summary(metadata.PATTERN_VALUES, name, result.activations.float().cpu().numpy()),
        ]
        values = ", ".join(f"{t}: {v:.2f}" for t, v in zip(result.targets, result.activations.tolist()))
        print(f"{name}: activation reached per {'class' if name == 'logits' else 'channel'}: {values}")
    _write_run(args, "patterns", summaries)
    return 0


def cmd_explain(args) -> int:
    import torch

    from tb_cnnviz import image_files, snapshots
    from tb_cnnviz import model_loading as models
    from tb_cnnviz.analysis.layers import evenly_spaced
    from tb_cnnviz.analysis.safety import safe_snapshot

    loaded = _load(args)
    models.require_free_batch(loaded, "explain")
    methods = [
        m.strip() for m in (args.methods or "gradcam,saliency,guided,occlusion").split(",") if m.strip()
    ]
    if args.methods is None and not loaded.hooks_supported:
        methods = ["saliency", "occlusion"]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(
            f"--methods: unknown method(s) {unknown or args.methods!r}; expected any of gradcam, saliency, guided, occlusion"
        )
    if {"gradcam", "guided", "guided_backprop"} & set(methods) or args.activation_layers not in (
        None,
        "none",
    ):
        models.require_hooks(loaded, "Grad-CAM, guided backprop and layer outputs")
    images = image_files.read_images(
        args.images, loaded.in_channels, loaded.input_size, loaded.resize_size, note=_note
    )
    images = images.to(models.model_device(loaded))
    with safe_snapshot(loaded.module), torch.no_grad():
        logits = loaded.module(images)
    target = None
    if args.target is not None:
        index = _class_index(args.target, loaded.class_names, logits.shape[1] if logits.dim() == 2 else None)
        target = torch.full((len(images),), index, dtype=torch.long)
    lines = _predictions(args.images, logits, loaded.class_names, args.top)
    print("\n".join(lines))
    summaries = snapshots.probe(images, target, loaded.class_names)
    convs = models.required_convs(loaded) if loaded.hooks_supported else []
    layer = (
        models.resolve_layers(loaded, args.layer, conv_only=False)[0]
        if args.layer
        else (convs[-1] if convs else None)
    )
    if "gradcam" in methods:
        summaries += snapshots.gradcam(loaded.module, [layer], images, target)
    attributions = list(dict.fromkeys(METHODS[m] for m in methods if m != "gradcam"))
    if attributions:
        summaries += snapshots.attributions(loaded.module, attributions, images, target)
    if args.activation_layers in (None, "none"):
        shown = evenly_spaced(convs, DEFAULT_ACTIVATION_LAYERS) if args.activation_layers is None else []
    else:
        shown = models.resolve_layers(loaded, args.activation_layers, conv_only=False)
    if shown:
        summaries += snapshots.activations(loaded.module, shown, images)
    _write_run(args, "explain", summaries, texts={"explain/predictions": "\n\n".join(lines)})
    return 0


def cmd_dream(args) -> int:
    from tb_cnnviz import image_files, metadata, snapshots
    from tb_cnnviz import model_loading as models

    loaded = _load(args)
    models.require_hooks(loaded, "dream")
    if loaded.fixed_batch != 1:
        models.require_free_batch(loaded, "dream")
    image = image_files.read_image(args.image, loaded.in_channels, note=_note)
    if args.input_size or loaded.fixed_size:
        image = image_files.fit(image, loaded.input_size)
    elif (
        max(image.shape[-2:]) > args.max_side > 0
    ):  # DeepDream works at the image's own size, up to --max-side
        scale = args.max_side / max(image.shape[-2:])
        image = image_files.fit(
            image, (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale)))
        )
    convs = models.required_convs(loaded)
    layers = (
        models.resolve_layers(loaded, args.layer, conv_only=False)
        if args.layer
        else [convs[(2 * len(convs)) // 3]]
    )
    summaries, dreamed, (before, after) = snapshots.dream(
        loaded.module,
        layers,
        image.to(models.model_device(loaded)),
        octaves=args.octaves,
        octave_scale=args.octave_scale,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        progress=not args.no_progress,
    )
    names = [name for name, _ in layers]
    gain = f"x{after / before:.2f}" if before > 0 else "undefined (the layers are silent on the image)"
    print(
        f"dreamed on {', '.join(names)}: mean absolute pixel change {float((dreamed.cpu() - image).abs().mean()):.3f}, "
        f"activation norm {before:.4g} -> {after:.4g} (gain {gain})"
    )
    stem = "dream_" + "+".join(names)
    _write_run(
        args,
        "dream",
        summaries,
        file_names={metadata.tag(metadata.DREAM, "+".join(names)): [f"{stem}_original.png", f"{stem}.png"]},
    )
    return 0


def cmd_embed(args) -> int:
    import torch
    from tqdm.auto import tqdm

    from tb_cnnviz import image_files, snapshots
    from tb_cnnviz import model_loading as models
    from tb_cnnviz.analysis.layers import evenly_spaced
    from tb_cnnviz.analysis.projection import knn_accuracy

    loaded = _load(args)
    models.require_hooks(loaded, "embed")
    models.require_free_batch(loaded, "embed")
    if args.max_images < 4 or args.top_k < 1 or args.batch_size < 1:
        raise ValueError(
            f"--max-images/--top-k/--batch-size: expected at least 4, 1 and 1, got "
            f"{args.max_images}, {args.top_k} and {args.batch_size}"
        )
    paths, labels, classes = image_files.image_folder(args.folder)
    labels, classes = _model_labels(labels, classes, loaded.class_names)
    if len(paths) > args.max_images:
        keep = [round(i * (len(paths) - 1) / (args.max_images - 1)) for i in range(args.max_images)]
        _note(f"{args.folder}: using {args.max_images} of its {len(paths)} images (--max-images)")
        paths, labels = [paths[i] for i in keep], None if labels is None else [labels[i] for i in keep]
    images = torch.stack(
        [
            image_files.fit(
                image_files.read_image(path, loaded.in_channels, _note, "IMAGE_FOLDER"),
                loaded.input_size,
                loaded.resize_size,
            )
            for path in tqdm(paths, desc="reading images", disable=args.no_progress)
        ]
    )
    layer = (
        models.resolve_layers(loaded, args.layer, conv_only=False)[0][0]
        if args.layer
        else models.default_feature_layer(loaded)
    )
    if args.top_layers in (None, "none"):
        top = (
            evenly_spaced(models.required_convs(loaded), DEFAULT_ACTIVATION_LAYERS)
            if args.top_layers is None and loaded.kind == "eager"
            else []
        )
    else:
        top = models.resolve_layers(loaded, args.top_layers, conv_only=True)
    state = snapshots.EmbeddingState()
    summaries = snapshots.embedding(
        loaded.module,
        images.to(models.model_device(loaded)),
        None if labels is None else torch.tensor(labels),
        state=state,
        layer=layer,
        method=args.method,
        top_layers=top,
        k=args.top_k,
        class_names=classes,
        batch_size=args.batch_size,
    )
    summaries += snapshots.sprites(images)
    layout = state.layout
    accuracy = (
        f"; 5-NN accuracy of the map by folder: {knn_accuracy(layout, labels, k=min(5, len(images) - 1)):.3f}"
    )
    print(
        f"{args.method} map of {len(images)} images"
        + (f" in {len(classes)} classes{accuracy}" if labels else "")
    )
    _write_run(
        args, "embed", summaries, images={"embedding/map": image_files.thumbnail_map(images, layout, labels)}
    )
    return 0


def _model_labels(labels, folders, class_names):
    """Folder labels as the model's class indices when every folder is named after one of its classes,
    so labels and predictions compare in the same order (folders are numbered in sorted order)."""
    if labels is None or not class_names:
        return labels, folders
    index = {name.lower(): i for i, name in enumerate(class_names)}
    if not all(folder.lower() in index for folder in folders):
        return labels, folders
    return [index[folders[label].lower()] for label in labels], list(class_names)


# --------------------------------------------------------------------------- shared steps
def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def _load(args):
    import torch

    from tb_cnnviz.model_loading import load_model, parse_kwargs

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device: expected cpu, cuda or cuda:N, got {args.device!r}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device: {args.device} was asked for, but CUDA is not available on this machine")
    names = args.class_names
    if names is not None:
        if os.path.isfile(names):
            with open(names, encoding="utf-8") as file:
                names = [line.strip() for line in file if line.strip()]
        else:
            names = [name.strip() for name in names.split(",")]
    loaded = load_model(
        args.model,
        checkpoint=args.checkpoint,
        factory_kwargs=parse_kwargs(args.factory_kwargs),
        weights=args.weights,
        input_size=args.input_size,
        mean=args.mean,
        std=args.std,
        class_names=names,
        device=device,
    )
    for message in loaded.notes:
        _note(message)
    return loaded


def _indices(spec: str, count: int, argument: str) -> list[int]:
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


def _class_index(target: str, names, classes) -> int:
    if target.lstrip("-").isdigit():
        index = int(target)
    elif names and target in names:
        index = names.index(target)
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


def _predictions(paths, logits, names, top: int) -> list[str]:
    import torch

    if logits.dim() != 2:
        return [f"{path}: model output {list(logits.shape[1:])}" for path in paths]
    probabilities = torch.softmax(logits.float(), dim=1).cpu()
    values, indices = probabilities.topk(min(max(top, 1), probabilities.shape[1]), dim=1)
    label = lambda i: f"{i} {names[i]}" if names and i < len(names) else str(i)
    return [
        f"{path}: " + ", ".join(f"{label(int(i))} ({float(v):.1%})" for v, i in zip(row_v, row_i))
        for path, row_v, row_i in zip(paths, values, indices)
    ]


def _write_run(
    args,
    command: str,
    summaries: list,
    texts: Optional[dict] = None,
    images: Optional[dict] = None,
    file_names: Optional[dict] = None,
) -> str:
    """Write everything at step 0 into a new run (only once all of it is computed); ``--out`` also gets the PNGs
    (named after the tag, or ``file_names[tag]``, one name per blob)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.util import tensor_util
    from torch.utils.tensorboard import SummaryWriter

    from tb_cnnviz import summary
    from tb_cnnviz.snapshots import to_uint8

    files: dict[str, bytes] = {}
    for item in summaries:
        for value in item.value:
            if value.metadata.data_class == summary_pb2.DATA_CLASS_BLOB_SEQUENCE:
                blobs = [bytes(blob) for blob in tensor_util.make_ndarray(value.tensor).ravel()]
                stem = value.tag.split("/", 1)[-1].replace("/", "_")
                names = (file_names or {}).get(value.tag) or [
                    f"{stem}.png" if len(blobs) == 1 else f"{stem}_{index}.png" for index in range(len(blobs))
                ]
                for name, blob in zip(names, blobs):
                    if blob.startswith(b"\x89PNG"):
                        files[name] = blob
    for tag, image in (images or {}).items():
        files[tag.replace("/", "_") + ".png"] = summary.encode_png(to_uint8(image))
    for tag, text in (texts or {}).items():
        files[tag.replace("/", "_") + ".md"] = text.encode("utf-8")
    if args.out:
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as error:
            raise ValueError(f"--out: cannot create {args.out} ({error.strerror or error})") from None
    path = new_run_dir(args.logdir, command)
    writer = SummaryWriter(path)
    try:
        summary.write(writer, summaries, 0)
        for tag, text in (texts or {}).items():
            writer.add_text(tag, text, 0)
        for tag, image in (images or {}).items():
            writer.add_image(tag, image.detach().float().clamp(0, 1).cpu(), 0)
    finally:
        writer.close()
    if args.out:
        for name, data in files.items():
            with open(os.path.join(args.out, name), "wb") as file:
                file.write(data)
    print(f"wrote {command} to {path}" + (f" and {len(files)} files to {args.out}" if args.out else ""))
    print(f"view it: tensorboard --logdir {args.logdir}")
    return path


if __name__ == "__main__":
    sys.exit(main())
