"""The side file of large payloads: one per event file, next to it, and the references the events carry.

Shared by the writer (``summary.write``) and the reader (``tb_cnnviz.plugin.data``), so it imports
the standard library only (numpy is the caller's). Why (docs/design.md, "Storage"): TensorBoard keeps
every kept event in memory and the Rust data server sends a whole series in one gRPC message
(256 MiB at most), so large payloads (PNGs, kernels, maps) live here and the event holds a reference:

* a blob of a BLOB_SEQUENCE series becomes :func:`make_reference` bytes (the blob count stays);
* a TENSOR value becomes a rank-0 DT_STRING tensor holding the reference, with the dtype and shape.

A reference is ``MAGIC`` + compact JSON ``{"file", "offset", "length", "crc32"[, "dtype", "shape"]}``;
``file`` is the side file's name, relative to the directory of the event file that holds the
reference (the run's directory). A side file is the payloads appended one after the other, nothing
else; it is named after its event file (:func:`side_file_name`) without ``tfevents`` in the name, so
TensorBoard never reads it as events. :func:`append` writes and flushes a payload before the caller
adds the event, so a reader never sees a reference to bytes that are not on disk yet.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from typing import Any

MAGIC = b"cnnviz-asset/1 "
PREFIX = "cnnviz.assets."
_EVENTS_PREFIX = "events.out.tfevents."
MAX_REFERENCE = 1024  # bytes: a reference is about 100; anything longer is not one
_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


class AssetError(Exception):
    """A reference that cannot be resolved: ``missing`` (no such file, or too short) or unreadable/damaged."""

    def __init__(self, message: str, *, missing: bool):
        super().__init__(message)
        self.message = message
        self.missing = missing


def side_file_name(event_file: str) -> str:
    """The side file's name for an event file: ``events.out.tfevents.<rest>`` -> ``cnnviz.assets.<rest>``."""
    base = os.path.basename(event_file)
    rest = base[len(_EVENTS_PREFIX) :] if base.startswith(_EVENTS_PREFIX) else base
    return PREFIX + rest.replace("tfevents", "tfassets")


def make_reference(
    file: str, offset: int, length: int, crc32: int, *, dtype: str | None = None, shape: Any = None
) -> bytes:
    """The bytes an event holds instead of a payload (``dtype``/``shape`` for a tensor value)."""
    fields: dict[str, Any] = {"file": file, "offset": int(offset), "length": int(length), "crc32": int(crc32)}
    if dtype is not None:
        fields["dtype"] = str(dtype)
        fields["shape"] = [int(n) for n in shape]
    return MAGIC + json.dumps(fields, separators=(",", ":")).encode("ascii")


def is_reference(value: Any) -> bool:
    """Whether ``value`` (bytes) is a reference (cheap: a prefix test)."""
    return isinstance(value, bytes) and len(value) <= MAX_REFERENCE and value.startswith(MAGIC)


def parse_reference(value: bytes) -> dict:
    """The fields of a reference; ``ValueError`` naming what is wrong for one that is malformed.

    ``file`` must be a plain name starting with ``PREFIX`` (never a path), so a logdir cannot make
    the plugin read any other file.
    """
    if not is_reference(value):
        raise ValueError(f"reference: expected bytes starting with {MAGIC!r}, got {bytes(value[:40])!r}")
    try:
        fields = json.loads(value[len(MAGIC) :].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"reference: malformed JSON in {bytes(value[:120])!r}") from None
    if not isinstance(fields, dict):
        raise ValueError(f"reference: expected a JSON object, got {bytes(value[:120])!r}")
    file = fields.get("file")
    if (
        not isinstance(file, str)
        or not file.startswith(PREFIX)
        or os.path.basename(file) != file
        or "\0" in file
    ):
        raise ValueError(f"reference: file must be a side file name starting with {PREFIX!r}, got {file!r}")
    for key in ("offset", "length", "crc32"):
        if not isinstance(fields.get(key), int) or isinstance(fields.get(key), bool) or fields[key] < 0:
            raise ValueError(f"reference: {key} must be an integer >= 0, got {fields.get(key)!r}")
    if "dtype" in fields:
        shape = fields.get("shape")
        if (
            not isinstance(fields["dtype"], str)
            or not isinstance(shape, list)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        ):
            raise ValueError(f"reference: dtype/shape malformed in {bytes(value[:200])!r}")
    return fields


def _lock(path: str) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(path, threading.Lock())


def append(path: str, payload: bytes) -> tuple[int, int, int]:
    """Append ``payload`` to the side file ``path`` and flush it to the OS; ``(offset, length, crc32)``.

    Thread-safe within a process (one lock per path: the callback writes from the training thread and
    its background thread); each writer has its own event file, hence its own side file.
    """
    payload = bytes(payload)
    with _lock(path):
        with open(path, "ab") as handle:  # positioned at the end: tell() is the offset
            offset = handle.tell()
            handle.write(payload)
            handle.flush()
    return offset, len(payload), zlib.crc32(payload)


def store(event_file: str, payload: bytes, *, dtype: str | None = None, shape: Any = None) -> bytes:
    """Append ``payload`` to the side file of ``event_file`` and return the reference to it."""
    name = side_file_name(event_file)
    offset, length, crc32 = append(os.path.join(os.path.dirname(event_file), name), payload)
    return make_reference(name, offset, length, crc32, dtype=dtype, shape=shape)


def read_range(path: str, offset: int, length: int, crc32: int | None = None) -> bytes:
    """``length`` bytes at ``offset`` of ``path`` (local, or a remote URL TensorBoard's file systems know),
    checked against ``crc32``; :class:`AssetError` naming the file otherwise."""
    try:
        if "://" in path:
            from tensorboard.compat.tensorflow_stub.io import gfile  # remote: s3://, gs:// (fsspec) ...

            data, _ = gfile.get_filesystem(path).read(path, True, size=length, continue_from=offset)
        else:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
    except FileNotFoundError:
        raise AssetError(f"side file {path!r} is missing", missing=True) from None
    except Exception as error:  # noqa: BLE001 - any file-system failure is reported by name, never raised raw
        remote = " (remote logdir: this file system could not read it by range)" if "://" in path else ""
        raise AssetError(
            f"side file {path!r} could not be read{remote}: {type(error).__name__}: {error}", missing=False
        ) from None
    data = bytes(data or b"")
    if len(data) != length:
        raise AssetError(
            f"side file {path!r} is shorter than its events say: {len(data)} of {length} bytes at offset "
            f"{offset} (truncated, or replaced by another run's)",
            missing=True,
        )
    if crc32 is not None and zlib.crc32(data) != crc32:
        raise AssetError(
            f"side file {path!r}: the {length} bytes at offset {offset} do not match their checksum (damaged)",
            missing=False,
        )
    return data


def resolve(directory: str, reference: bytes | dict) -> bytes:
    """The payload a reference names, read from the side file in ``directory`` (the run's directory)."""
    fields = parse_reference(reference) if isinstance(reference, bytes) else reference
    sep = "/" if "://" in directory else os.sep
    path = directory.rstrip("/" + os.sep) + sep + fields["file"] if directory else fields["file"]
    return read_range(path, fields["offset"], fields["length"], fields["crc32"])
