"""``tb-cnnviz embed``: a 2-D map (t-SNE, PCA or UMAP) of the codes of an image folder, with thumbnails
and each filter's top-activating images, as the Embedding and Top images views show them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Optional

import torch
from tqdm.auto import tqdm

from tb_cnnviz import image_files, snapshots
from tb_cnnviz.analysis.layers import evenly_spaced, layer_before_last_linear, model_device
from tb_cnnviz.analysis.projection import knn_accuracy
from tb_cnnviz.cli import arguments, model
from tb_cnnviz.cli.output import note, write_run
from tb_cnnviz.snapshots.inputs import EmbeddingState, Inputs


def embed(args: argparse.Namespace) -> int:
    """Write the map of the folder's images, their thumbnails and top images; print the map's k-NN accuracy."""
    loaded = model.load(args)
    model.require_hooks(loaded, "embed")
    model.require_free_batch(loaded, "embed")
    if args.max_images < 4 or args.top_k < 1 or args.batch_size < 1:
        raise ValueError(
            f"--max-images/--top-k/--batch-size: expected at least 4, 1 and 1, got "
            f"{args.max_images}, {args.top_k} and {args.batch_size}"
        )
    if args.layer:
        layer = model.named_layers(loaded, args.layer, conv_only=False)[0][0]
    else:  # eager: the input of the last nn.Linear; compiled: the output of the layer before it
        layer = None if loaded.kind == "eager" else layer_before_last_linear(loaded.layer_root)
    if args.top_layers not in (None, "none"):
        top = model.named_layers(loaded, args.top_layers, conv_only=True, argument="--top-layers")
    elif args.top_layers is None and loaded.kind == "eager":
        top = evenly_spaced(model.convs(loaded), arguments.DEFAULT_ACTIVATION_LAYERS)
    else:
        top = []
    paths, labels, classes = image_files.image_folder(args.folder)
    labels, classes = model_labels(labels, classes, loaded.class_names)
    if len(paths) > args.max_images:
        keep = [round(i * (len(paths) - 1) / (args.max_images - 1)) for i in range(args.max_images)]
        note(f"{args.folder}: using {args.max_images} of its {len(paths)} images (--max-images)")
        paths, labels = [paths[i] for i in keep], None if labels is None else [labels[i] for i in keep]
    images = torch.stack(
        [
            image_files.fit(
                image_files.read_image(path, loaded.in_channels, note, "IMAGE_FOLDER"),
                loaded.input_size,
                loaded.resize_size,
            )
            for path in tqdm(paths, desc="reading images", disable=args.no_progress)
        ]
    )
    state = EmbeddingState()
    on_device = images.to(model_device(loaded.module))  # one tensor: the embedding reuses separability's pass
    summaries = separability(loaded, on_device, labels, args.batch_size)
    summaries += snapshots.embedding(
        Inputs(
            model=loaded.module,
            layers=top,
            images=on_device,
            labels=None if labels is None else torch.tensor(labels),
            class_names=classes,
            settings={"layer": layer, "method": args.method, "k": args.top_k, "batch_size": args.batch_size},
            state=state,
        )
    )
    summaries += snapshots.sprites(Inputs(images=images))
    line = f"{args.method} map of {len(images)} images"
    if labels:
        accuracy = knn_accuracy(state.layout, labels, k=min(5, len(images) - 1))
        line += f" in {len(classes)} classes; 5-NN accuracy of the map by folder: {accuracy:.3f}"
    print(line)
    thumbnails = image_files.thumbnail_map(images, state.layout, labels)
    write_run(args, "embed", summaries, images={"embedding/map": thumbnails})
    return 0


def separability(loaded, images: torch.Tensor, labels: Optional[list[int]], batch_size: int) -> list:
    """The held-out accuracy of a linear probe on each stage output's pooled codes and on the classifier's
    input (the ``separability`` snapshot, as the callback logs it), printed; a note when not measured."""
    from tensorboard.util import tensor_util

    from tb_cnnviz.analysis.paths import main_path
    from tb_cnnviz.analysis.separability import COLUMNS, OUTCOMES
    from tb_cnnviz.snapshots.separability import default_layers

    if labels is None or loaded.kind != "eager":
        note("separability: not measured (it needs class subfolders and an eager model)")
        return []
    targets = torch.tensor(labels)
    stages = [(point.name, point.module) for point in main_path(loaded.module, images[:2]).stage_outputs()]
    layers = default_layers(loaded.module, stages, (images, targets), None)
    settings = {"batch_size": batch_size}
    summaries = snapshots.separability(Inputs(loaded.module, layers, images, targets, settings=settings))
    rows = {
        value.tag.split("/", 2)[2]: dict(zip(COLUMNS, tensor_util.make_ndarray(value.tensor).tolist()))
        for proto in summaries
        for value in proto.value
        if value.tag.startswith("cnnviz/separability/")
    }
    parts = [
        f"{name} {row['accuracy']:.3f}" if row["outcome"] == 0 else f"{name}: {OUTCOMES[int(row['outcome'])]}"
        for name, row in rows.items()
    ]
    chance = next((row["chance"] for row in rows.values() if row["outcome"] == 0), None)
    print(
        "linear separability (held-out accuracy of a ridge probe): "
        + ", ".join(parts)
        + ("" if chance is None else f"; chance {chance:.3f}")
    )
    return summaries


def model_labels(
    labels: Optional[list[int]], folders: Optional[list[str]], class_names: Optional[Sequence[str]]
) -> tuple[Optional[list[int]], Optional[list[str]]]:
    """Folder labels as the model's class indices when every folder is named after one of its classes,
    so labels and predictions compare in the same order (folders are numbered in sorted order)."""
    if labels is None or not class_names:
        return labels, folders
    index = {name.lower(): i for i, name in enumerate(class_names)}
    if not all(folder.lower() in index for folder in folders):
        return labels, folders
    return [index[folders[label].lower()] for label in labels], list(class_names)
