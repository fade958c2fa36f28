"""Helpers of the command-line tests: run a command in-process, read back its one run, decode a PNG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from support import read_logdir

from tb_cnnviz import cli


def run(capsys, *argv) -> tuple[int, str, str]:
    """``tb-cnnviz ARGV --no-progress`` in-process: ``(exit code, stdout, stderr)``."""
    code = cli.main([str(a) for a in argv] + ["--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def only_run(logdir, plugin: str = "cnnviz") -> dict:
    """The series of the one run under ``logdir`` (asserting there is exactly one)."""
    runs = read_logdir(str(logdir), plugin)
    assert len(runs) == 1, runs.keys()
    return next(iter(runs.values()))


def png(blob: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(blob)))
