"""``tb-cnnviz patterns`` (filter patterns or class models) and ``tb-cnnviz dream`` (DeepDream):
images made by gradient ascent on what the chosen layers respond to."""

from __future__ import annotations

import argparse
import io

import numpy as np
import torch
from PIL import Image

from tb_cnnviz import image_files, metadata, snapshots
from tb_cnnviz.analysis.layers import model_device, output_channels
from tb_cnnviz.analysis.patterns import class_patterns, filter_patterns
from tb_cnnviz.analysis.safety import safe_snapshot
from tb_cnnviz.cli import arguments, model
from tb_cnnviz.cli.output import blobs, note, write_run
from tb_cnnviz.model_loading import LoadedModel
from tb_cnnviz.snapshots.inputs import Inputs


def patterns(args: argparse.Namespace) -> int:
    """The activation-maximising images of chosen channels of chosen layers (or of chosen classes)."""
    loaded = model.load(args)
    model.require_hooks(loaded, "patterns")
    model.require_free_batch(loaded, "patterns")
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
        note(
            f"the exported program only accepts {size[0]}x{size[1]} inputs: "
            "patterns at that size, without random transforms"
        )
    if args.classes:
        targets = arguments.indices(args.classes, _output_classes(loaded), "--classes")
        results = [("logits", class_patterns(loaded.module, targets, **settings))]
    else:
        layers = (
            model.named_layers(loaded, args.layer, conv_only=False)
            if args.layer
            else model.convs(loaded)[-1:]
        )
        results = []
        for name, module in layers:
            count = output_channels(module, "--layer")
            channels = (
                arguments.indices(args.channels, count, "--channels")
                if args.channels
                else list(range(min(16, count)))
            )
            results.append((name, filter_patterns(loaded.module, module, channels, **settings)))
    summaries = []
    # how the filters were chosen, as the callback's pattern_channels says it (class models: none)
    choice = None if args.classes else ("list" if args.channels else "first")
    for name, result in results:
        summaries += snapshots.pattern_summaries(name, result, size, args.steps, choice=choice)
        values = ", ".join(f"{t}: {v:.2f}" for t, v in zip(result.targets, result.activations.tolist()))
        print(f"{name}: activation reached per {'class' if name == 'logits' else 'channel'}: {values}")
    write_run(args, "patterns", summaries)
    return 0


def dream(args: argparse.Namespace) -> int:
    """DeepDream of IMAGE on the chosen layers (default: the conv layer at two thirds of the depth)."""
    loaded = model.load(args)
    model.require_hooks(loaded, "dream")
    if loaded.fixed_batch != 1:
        model.require_free_batch(loaded, "dream")
    image = image_files.read_image(args.image, loaded.in_channels, note=note)
    if args.input_size or loaded.fixed_size:
        image = image_files.fit(image, loaded.input_size)
    elif (
        max(image.shape[-2:]) > args.max_side > 0
    ):  # DeepDream works at the image's own size, up to --max-side
        scale = args.max_side / max(image.shape[-2:])
        image = image_files.fit(
            image, (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale)))
        )
    convs = model.convs(loaded)
    layers = (
        model.named_layers(loaded, args.layer, conv_only=False)
        if args.layer
        else [convs[(2 * len(convs)) // 3]]
    )
    settings = dict(
        octaves=args.octaves,
        octave_scale=args.octave_scale,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        progress=not args.no_progress,
    )
    images = image[None].to(model_device(loaded.module))
    summaries = snapshots.dream(Inputs(model=loaded.module, layers=layers, images=images, settings=settings))
    names = [name for name, _ in layers]
    print(f"dreamed on {', '.join(names)}: {_dream_outcome(summaries[0])}")
    stem = "dream_" + "+".join(names)
    write_run(
        args,
        "dream",
        summaries,
        file_names={metadata.tag(metadata.DREAM, "+".join(names)): [f"{stem}_original.png", f"{stem}.png"]},
    )
    return 0


def _dream_outcome(item) -> str:
    """What the dream summary records, in words: the mean pixel change between its two pictures, the
    DeepDream objective before and after, and their ratio (the gain)."""
    original, dreamed = (
        np.asarray(Image.open(io.BytesIO(blob)), dtype=np.float32) / 255.0 for blob in blobs(item)
    )
    content = metadata.read_content(item.value[0].metadata.plugin_data.content)
    before, after = (float("nan") if value is None else value for value in content["objective"])
    gain = content["gain"]
    shown = f"x{gain:.2f}" if gain is not None else "undefined (the layers are silent on the image)"
    return (
        f"mean absolute pixel change {float(np.abs(dreamed - original).mean()):.3f}, "
        f"activation norm {before:.4g} -> {after:.4g} (gain {shown})"
    )


def _output_classes(loaded: LoadedModel) -> int:
    """The number of classes, from one forward pass of a zero batch."""
    with safe_snapshot(loaded.module), torch.no_grad():
        output = loaded.module(model.zero_batch(loaded))
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"MODEL: expected class scores [N, classes] from the model, got {shape}")
    return int(output.shape[1])
