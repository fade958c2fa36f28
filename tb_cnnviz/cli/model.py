"""The steps every command shares before it computes: load MODEL, check what the command needs of it,
and resolve the layers named on the command line (with ``tb_cnnviz.analysis.layers``)."""

from __future__ import annotations

import argparse

import torch
from torch import nn

from tb_cnnviz.analysis import layers
from tb_cnnviz.cli import arguments
from tb_cnnviz.cli.output import note
from tb_cnnviz.model_loading import LoadedModel, load_model

Layers = list[tuple[str, nn.Module]]


def load(args: argparse.Namespace) -> LoadedModel:
    """MODEL with the model options of ``args``, on ``--device``; its loading notes go to stderr."""
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device: expected cpu, cuda or cuda:N, got {args.device!r}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device: {args.device} was asked for, but CUDA is not available on this machine")
    loaded = load_model(
        args.model,
        checkpoint=args.checkpoint,
        factory_kwargs=arguments.factory_kwargs(args.factory_kwargs),
        weights=args.weights,
        input_size=args.input_size,
        mean=args.mean,
        std=args.std,
        class_names=arguments.class_names(args.class_names),
        device=device,
    )
    for message in loaded.notes:
        note(message)
    return loaded


def require_hooks(loaded: LoadedModel, what: str) -> None:
    """A one-line error when ``what`` needs forward hooks and the model is TorchScript."""
    if not loaded.hooks_supported:
        raise ValueError(
            f"MODEL: {what} needs forward hooks, which TorchScript modules do not support; "
            "give a torch.export program (.pt2) or module.path:factory with --checkpoint"
        )


def require_free_batch(loaded: LoadedModel, command: str) -> None:
    """A one-line error when the model is an exported program traced for one fixed batch size."""
    if loaded.fixed_batch is not None:
        raise ValueError(
            f"MODEL: the exported program only accepts batches of exactly {loaded.fixed_batch}, which `{command}` "
            "cannot use; export it with dynamic_shapes={'x': {0: torch.export.Dim.DYNAMIC}}"
        )


def convs(loaded: LoadedModel) -> Layers:
    """The model's conv layers, or an error when it has none."""
    found = layers.conv_layers(loaded.layer_root)
    if not found:
        raise ValueError(f"MODEL: {loaded.description} has no 2-D conv layer")
    return found


def named_layers(loaded: LoadedModel, spec: str, *, conv_only: bool, argument: str = "--layer") -> Layers:
    """The layers a comma-separated argument names (``all``: every conv layer); errors list the valid names."""
    names = arguments.layer_names(spec, argument)
    if names == ["all"]:
        return layers.conv_layers(loaded.layer_root)
    return layers.resolve_layers(loaded.layer_root, names, argument=argument, conv_only=conv_only)


def zero_batch(loaded: LoadedModel) -> torch.Tensor:
    """A batch of black images of the model's input size (one, or the exported program's fixed batch)."""
    return torch.zeros(
        loaded.fixed_batch or 1,
        loaded.in_channels,
        *loaded.input_size,
        device=layers.model_device(loaded.module),
    )
