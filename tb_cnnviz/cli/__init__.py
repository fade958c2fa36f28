"""``tb-cnnviz``: the plugin's views for a model that is already trained, written as TensorBoard runs.

    tb-cnnviz summary   MODEL                      layer table (like Keras' model.summary())
    tb-cnnviz filters   MODEL [--layer L]          kernel grids and smoothness
    tb-cnnviz patterns  MODEL [--layer L]          filter-pattern gallery, or --classes
    tb-cnnviz explain   MODEL IMAGE...             Grad-CAM, saliency, guided backprop, occlusion, layer outputs
    tb-cnnviz dream     MODEL IMAGE [--layer L]    DeepDream
    tb-cnnviz embed     MODEL IMAGE_FOLDER         t-SNE of the folder's images with thumbnails

Each command writes one new run ``<logdir>/<command>-<time>`` at step 0 with the same
summary functions the training callback uses (``tb_cnnviz.snapshots``), so the plugin
shows it like a training run. Bad input gives one ``error:`` line and exit code 2.
See ``docs/cli.md``.

A command goes one way: parse its arguments (``arguments``), load the model and resolve its
layers (``model``, with ``tb_cnnviz.analysis.layers``), compute (``tb_cnnviz.snapshots`` and
``tb_cnnviz.analysis``), write the run (``output``). The commands live in ``structure``
(summary, filters), ``patterns`` (patterns, dream), ``explain`` and ``embed``.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Optional

from tb_cnnviz.cli.arguments import build_parser
from tb_cnnviz.cli.output import note

# command -> (module, function); modules are imported once the arguments parse, so --help answers at once
COMMANDS = {
    "summary": ("structure", "summary"),
    "filters": ("structure", "filters"),
    "patterns": ("patterns", "patterns"),
    "explain": ("explain", "explain"),
    "dream": ("patterns", "dream"),
    "embed": ("embed", "embed"),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; returns the exit code: 0, 2 for bad input (one ``error:`` line), 1 for anything unexpected."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed
        return int(exit_.code or 0)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *_args, **_kwargs: note(_one_line(message))
            module, function = COMMANDS[args.command]
            run = getattr(importlib.import_module(f"tb_cnnviz.cli.{module}"), function)
            return run(args) or 0
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
