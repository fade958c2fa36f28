"""The last step of every command: write what it computed as one new TensorBoard run (and ``--out`` files);
and the notes it prints on the way."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional


def note(message: str) -> None:
    """A remark for the user on stderr (``note: ...``), e.g. how an image was converted."""
    print(f"note: {message}", file=sys.stderr)


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


def write_run(
    args: argparse.Namespace,
    command: str,
    summaries: list,
    texts: Optional[dict] = None,
    images: Optional[dict] = None,
    file_names: Optional[dict] = None,
) -> str:
    """Write everything at step 0 into a new run (only once all of it is computed); ``--out`` also gets the PNGs
    (named after the tag, or ``file_names[tag]``, one name per blob). Returns the run's directory."""
    from torch.utils.tensorboard import SummaryWriter

    from tb_cnnviz import summary

    files = _files(summaries, texts or {}, images or {}, file_names or {})
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


def blobs(item) -> list[bytes]:
    """The blobs (e.g. PNGs) of a one-value BLOB_SEQUENCE summary."""
    from tensorboard.util import tensor_util

    return [bytes(blob) for blob in tensor_util.make_ndarray(item.value[0].tensor).ravel()]


def _files(summaries: list, texts: dict, images: dict, file_names: dict) -> dict[str, bytes]:
    """``--out`` file name -> bytes: every PNG blob of the summaries, the extra images and the texts."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.util import tensor_util

    from tb_cnnviz import summary
    from tb_cnnviz.snapshots import to_uint8

    files: dict[str, bytes] = {}
    for item in summaries:
        for value in item.value:
            if value.metadata.data_class == summary_pb2.DATA_CLASS_BLOB_SEQUENCE:
                data = [bytes(blob) for blob in tensor_util.make_ndarray(value.tensor).ravel()]
                stem = value.tag.split("/", 1)[-1].replace("/", "_")
                names = file_names.get(value.tag) or [
                    f"{stem}.png" if len(data) == 1 else f"{stem}_{index}.png" for index in range(len(data))
                ]
                for name, blob in zip(names, data):
                    if blob.startswith(b"\x89PNG"):
                        files[name] = blob
    for tag, image in images.items():
        files[tag.replace("/", "_") + ".png"] = summary.encode_png(to_uint8(image))
    for tag, text in texts.items():
        files[tag.replace("/", "_") + ".md"] = text.encode("utf-8")
    return files
