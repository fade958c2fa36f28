"""Reading runs' side files (``tb_cnnviz.assets``): where a run's directory is, the bytes a reference
names, and tensor values decoded on access and kept in a bounded LRU shared by every series.

A value or blob that is a reference is read lazily and by range, found by TensorBoard's logdir and the
run's name (docs/design.md, "Storage"). A tensor series of references is a :class:`LazyValues`. Imports
no torch (TensorBoard loads the plugin at start-up).
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from tb_cnnviz import assets
from tb_cnnviz.plugin.http import MAX_MESSAGE, HTTPError

# Decoded side-file values kept in memory (least recently used out first), over every series
DEFAULT_DECODED_BYTES = 64 << 20


class BlobKey(str):
    """A data provider's blob key that remembers its run (a reference blob is read from the run's side file)."""

    run: str | None = None

    @classmethod
    def of(cls, key: str, run: str) -> BlobKey:
        made = cls(key)
        made.run = run
        return made


class LazyValues(Sequence):
    """The values of a tensor series whose events hold side-file references: each is read (by range) and
    decoded on access; ``items`` are arrays (values kept in the event) or parsed references."""

    def __init__(self, items: list, load: Callable[[dict], np.ndarray]):
        self._items = items
        self._load = load

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._value(item) for item in self._items[index]]
        return self._value(self._items[index])

    def _value(self, item: Any) -> np.ndarray:
        return self._load(item) if isinstance(item, dict) else item


def reference_of(value: Any) -> dict | None:
    """The parsed reference a tensor value holds (a rank-0 or one-item string tensor), else None."""
    if not isinstance(value, np.ndarray) or value.dtype != np.object_ or value.size != 1:
        return None
    item = value.reshape(-1)[0]
    if not assets.is_reference(item):
        return None
    try:
        fields = assets.parse_reference(item)
    except ValueError:
        return None
    return fields if "dtype" in fields else None


class SideFiles:
    """The side files of the runs under TensorBoard's ``logdir`` (a path, a ``{path: group name}`` dict for
    ``--logdir_spec``, or None when unknown) and the LRU of their decoded tensor values."""

    def __init__(self, logdir: str | dict | None, decoded_bytes: int = DEFAULT_DECODED_BYTES):
        self.logdir = logdir or None
        self.decoded_bytes = int(decoded_bytes)
        self._lock = threading.Lock()
        self._decoded: collections.OrderedDict[tuple, np.ndarray] = collections.OrderedDict()
        self._decoded_size = 0

    def run_directory(self, run: str | None) -> str:
        """Where ``run``'s event files (and side files) are: ``<logdir>/<run>`` (``.`` is the logdir itself);
        with ``--logdir_spec name:path,...`` (``logdir`` a ``{path: name}`` dict) ``<path>/<rest>`` of
        the group whose name starts the run's name, as TensorBoard's multiplexer names them."""
        roots = self.logdir if isinstance(self.logdir, dict) else {self.logdir: None} if self.logdir else {}
        for root, group in roots.items():
            if group is None:
                rest = run
            elif run == group or (run or "").startswith(group + "/"):
                rest = run[len(group) + 1 :] or "."
            else:
                continue
            if run is None:
                break
            if "://" in root:
                return root.rstrip("/") + ("" if rest == "." else "/" + rest)
            return os.path.normpath(os.path.join(os.path.expanduser(root), rest))
        raise HTTPError(
            503,
            f"run {str(run)[:200]!r} keeps its images and tensors in a side file beside its event file, "
            "but the plugin does not know its directory (start TensorBoard with --logdir)",
        )

    def read(self, run: str | None, fields: dict) -> bytes:
        """The bytes a reference names; 404 for a missing side file, 503 for an unreadable one."""
        try:
            return assets.resolve(self.run_directory(run), fields)
        except assets.AssetError as error:
            status = 404 if error.missing else 503
            raise HTTPError(status, f"run {str(run)[:200]!r}: {error.message}"[:MAX_MESSAGE]) from None

    def value(self, run: str, fields: dict) -> np.ndarray:
        """A tensor value from the side file (read by range, decoded, kept in the LRU of decoded values)."""
        key = (run, fields["file"], fields["offset"], fields["length"])
        with self._lock:
            hit = self._decoded.get(key)
            if hit is not None:
                self._decoded.move_to_end(key)
                return hit
        payload = self.read(run, fields)
        try:
            value = np.frombuffer(payload, dtype=np.dtype(fields["dtype"])).reshape(fields["shape"])
        except (TypeError, ValueError):  # a dtype or shape that does not fit the bytes
            raise HTTPError(
                503,
                f"run {run[:200]!r}: side file {fields['file']!r} at offset {fields['offset']}: "
                f"{fields['length']} bytes are not a {fields['dtype']} {fields['shape']} array",
            ) from None
        value = value.astype(np.float32)
        with self._lock:
            if key not in self._decoded and value.nbytes <= self.decoded_bytes:
                self._decoded[key] = value
                self._decoded_size += value.nbytes
                while self._decoded_size > self.decoded_bytes:
                    _, evicted = self._decoded.popitem(last=False)
                    self._decoded_size -= evicted.nbytes
        return value
