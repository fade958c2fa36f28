"""``tb-cnnviz summary`` (the layer table) and ``tb-cnnviz filters`` (kernel grids and smoothness):
what the model is made of, read from its layers and weights."""

from __future__ import annotations

import argparse

from tb_cnnviz import snapshots
from tb_cnnviz.analysis.kernels import smoothness
from tb_cnnviz.analysis.layers import layer_table
from tb_cnnviz.cli import model
from tb_cnnviz.cli.output import write_run
from tb_cnnviz.snapshots.inputs import Inputs


def summary(args: argparse.Namespace) -> int:
    """Print the layer table and write it (as markdown) to the run's Text tab."""
    loaded = model.load(args)
    rows, output = layer_table(
        loaded.module, model.zero_batch(loaded), root=loaded.layer_root, argument="--input-size"
    )
    parameters = list(loaded.layer_root.parameters())
    total = sum(p.numel() for p in parameters)
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
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
    write_run(args, "summary", [], texts={"summary/layers": markdown})
    return 0


def filters(args: argparse.Namespace) -> int:
    """Kernel grids, raw weights and smoothness of the chosen conv layers (default: the first)."""
    loaded = model.load(args)
    layers = model.named_layers(loaded, args.layer, conv_only=True) if args.layer else model.convs(loaded)[:1]
    summaries = snapshots.kernels(Inputs(layers=layers, settings={"normalization": args.normalization}))
    for name, conv in layers:
        scores = smoothness(conv.weight.detach())
        print(f"{name}: kernels {list(conv.weight.shape)}, mean smoothness {float(scores.nanmean()):.3f}")
    write_run(args, "filters", summaries)
    return 0
