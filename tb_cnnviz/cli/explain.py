"""``tb-cnnviz explain``: why the model predicts what it does for some images (predictions, Grad-CAM,
saliency, guided backprop, occlusion and layer outputs), as the Grad-CAM and Activations views show it."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from typing import Optional

import torch

from tb_cnnviz import image_files, snapshots
from tb_cnnviz.analysis.layers import evenly_spaced, model_device
from tb_cnnviz.analysis.safety import safe_snapshot
from tb_cnnviz.cli import arguments, model
from tb_cnnviz.cli.output import note, write_run
from tb_cnnviz.snapshots.inputs import Inputs


def explain(args: argparse.Namespace) -> int:
    """Print each image's top predictions; write the probe, attribution maps and layer outputs."""
    loaded = model.load(args)
    model.require_free_batch(loaded, "explain")
    methods = arguments.methods(args.methods, loaded.hooks_supported)
    shows_layers = args.activation_layers not in (None, "none")
    if {"gradcam", "guided", "guided_backprop"} & set(methods) or shows_layers or args.faithfulness:
        model.require_hooks(loaded, "Grad-CAM, guided backprop and layer outputs")
    convs = model.convs(loaded) if loaded.hooks_supported else []
    cam_layers = model.named_layers(loaded, args.layer, conv_only=False)[:1] if args.layer else convs[-1:]
    if shows_layers:
        shown = model.named_layers(loaded, args.activation_layers, conv_only=False)
    else:
        shown = (
            evenly_spaced(convs, arguments.DEFAULT_ACTIVATION_LAYERS)
            if args.activation_layers is None
            else []
        )
    images = image_files.read_images(
        args.images, loaded.in_channels, loaded.input_size, loaded.resize_size, note=note
    )
    images = images.to(model_device(loaded.module))
    with safe_snapshot(loaded.module), torch.no_grad():
        logits = loaded.module(images)
    target = None
    if args.target is not None:
        classes = logits.shape[1] if logits.dim() == 2 else None
        index = arguments.class_index(args.target, loaded.class_names, classes)
        target = torch.full((len(images),), index, dtype=torch.long)
    lines = predictions(args.images, logits, loaded.class_names, args.top)
    print("\n".join(lines))
    inputs = Inputs(model=loaded.module, images=images, labels=target, class_names=loaded.class_names)
    names = [os.path.basename(str(path)) for path in args.images]  # the tab labels each image by its file
    summaries = snapshots.probe(dataclasses.replace(inputs, settings={"names": names}))
    if "gradcam" in methods:
        # with the overlay PNGs: the --out files (the callback logs only the maps, the view draws the overlays)
        summaries += snapshots.gradcam(
            dataclasses.replace(inputs, layers=cam_layers, settings={"overlays": True})
        )
    if args.faithfulness:  # deletion and insertion of the Grad-CAM maps against a random map
        summaries += snapshots.faithfulness(dataclasses.replace(inputs, layers=cam_layers))
    attributions = list(dict.fromkeys(arguments.METHODS[m] for m in methods if m != "gradcam"))
    if attributions:
        summaries += snapshots.attributions(dataclasses.replace(inputs, settings={"methods": attributions}))
    if shown:
        summaries += snapshots.activations(dataclasses.replace(inputs, layers=shown))
    write_run(args, "explain", summaries, texts={"explain/predictions": "\n\n".join(lines)})
    return 0


def predictions(
    paths: Sequence[str], logits: torch.Tensor, names: Optional[Sequence[str]], top: int
) -> list[str]:
    """One line per image: ``path: class (probability), ...`` for its ``top`` classes."""
    if logits.dim() != 2:
        return [f"{path}: model output {list(logits.shape[1:])}" for path in paths]
    probabilities = torch.softmax(logits.float(), dim=1).cpu()
    values, indices = probabilities.topk(min(max(top, 1), probabilities.shape[1]), dim=1)
    label = lambda i: f"{i} {names[i]}" if names and i < len(names) else str(i)
    return [
        f"{path}: " + ", ".join(f"{label(int(i))} ({float(v):.1%})" for v, i in zip(row_v, row_i))
        for path, row_v, row_i in zip(paths, values, indices)
    ]
