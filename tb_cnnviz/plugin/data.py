"""What the CNN Viz backend knows about the logdir, read only through TensorBoard's data provider.

The data provider (Rust data server by default, the Python multiplexer with
``--load_fast=false``, or a remote backend) has no "read one step" call: ``read_tensors``
returns a whole series. Per-step routes would then move the whole series for every
request, so this module keeps:

* an **index** of the plugin's series (``list_tensors`` + ``list_blob_sequences``, both
  cheap), refreshed at most every ``index_ttl`` seconds per experiment;
* a **series cache**: the values of each series read once, keyed by run and tag and
  invalidated when the index shows a new ``max_step``/``max_wall_time``/length, bounded
  by a byte budget (least recently used out first).

It imports no torch (TensorBoard loads the plugin at start-up). A value or blob that is a side-file
reference is read lazily and by range through :mod:`tb_cnnviz.plugin.side_files`; events without
references read exactly as before.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Hashable
from typing import Any, Callable

import numpy as np
from tensorboard import errors as tb_errors
from tensorboard.data import provider as provider_lib

from tb_cnnviz import assets, metadata
from tb_cnnviz.kinds import BLOB, TENSOR
from tb_cnnviz.plugin.http import MAX_MESSAGE, HTTPError, Memo
from tb_cnnviz.plugin.side_files import DEFAULT_DECODED_BYTES, BlobKey, LazyValues, SideFiles, reference_of

DEFAULT_CACHE_BYTES = 256 << 20
DEFAULT_INDEX_TTL = 1.0
# Asked of the provider on every read; the real limit is the sampling at ingestion
# (``--samples_per_plugin cnnviz=N``, see ``tb_cnnviz.plugin.DEFAULT_SAMPLES``).
DEFAULT_DOWNSAMPLE = 10_000_000

logger = logging.getLogger(__name__)


def _ask(what: str, call: Callable[[], Any]) -> Any:
    """Run one data-provider call; its failures become :class:`HTTPError` (404 for a vanished run,
    503 otherwise: a run deleted while TensorBoard serves it, an unreadable event file...), never a 500."""
    try:
        return call()
    except tb_errors.PublicError:
        raise  # already a client-facing error with its own HTTP code
    except (KeyError, LookupError) as error:  # the multiplexer's "no such run/tag": removed meanwhile
        message = f"{what}: no longer available (was its run deleted?)"
        raise HTTPError(404, message[:MAX_MESSAGE]) from error
    except Exception as error:  # noqa: BLE001 - a provider failure must not become a 500
        logger.warning("tb-cnnviz: the data provider failed for %s", what, exc_info=True)
        message = f"{what}: the data provider failed ({type(error).__name__}); try again"
        raise HTTPError(503, message[:MAX_MESSAGE]) from error


@dataclasses.dataclass(frozen=True)
class SeriesInfo:
    """One logged series of the plugin: which run/tag, what it holds, and its version."""

    run: str
    tag: str
    kind: str
    layer: str | None
    data_class: str  # TENSOR or BLOB
    max_step: int
    max_wall_time: float
    max_length: int | None
    content: dict  # schema-checked (``metadata.read_content``): a field of the wrong JSON type is None
    written: dict = dataclasses.field(default_factory=dict, repr=False)  # the content as written

    @property
    def version(self) -> tuple:
        return (self.max_step, self.max_wall_time, self.max_length)

    def extras(self) -> dict:
        """The checked values of the content keys the writer wrote, without the bookkeeping keys
        (what the UI needs to draw)."""
        return {k: self.content.get(k) for k in self.written if k not in ("version", "kind", "layer")}


@dataclasses.dataclass
class Series:
    """The values of one series: ``steps`` ascending; ``values[i]`` an array (tensors) or blob keys."""

    steps: np.ndarray
    wall_times: np.ndarray
    values: list
    nbytes: int
    # Answers computed from this version of the series (e.g. a route's gzipped JSON), so a
    # repeated request costs no recomputation; a new version is a new Series, an empty memo.
    memo: Memo = dataclasses.field(default_factory=Memo, repr=False, compare=False)

    def position(self, step: int) -> int | None:
        """Index of ``step`` in ``steps``, or None if that step was not logged (or was sampled away)."""
        i = int(np.searchsorted(self.steps, step))
        return i if i < len(self.steps) and int(self.steps[i]) == step else None

    def at_or_before(self, step: int) -> int:
        """Index of the last logged step <= ``step`` (the first one if ``step`` precedes them all)."""
        i = int(np.searchsorted(self.steps, step, side="right")) - 1
        return max(i, 0)


def _as_float32(value: Any) -> np.ndarray:
    """A logged tensor as float32; one that is not numeric (a foreign or damaged summary) reads as empty."""
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        return np.zeros((0,), dtype=np.float32)


def natural_key(text: str | None) -> tuple:
    """Sort key that puts ``conv2`` before ``conv10``."""
    parts = re.split(r"(\d+)", text or "")
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


class DataIndex:
    """The plugin's series of one experiment, looked up by ``(run, kind, layer)``."""

    def __init__(self, series: list[SeriesInfo]):
        self._by_key: dict[tuple, SeriesInfo] = {}
        self._by_run: dict[str, list[SeriesInfo]] = {}
        for info in series:
            key = (info.run, info.kind, info.layer)
            if key not in self._by_key:
                self._by_key[key] = info
                self._by_run.setdefault(info.run, []).append(info)
        self.runs = sorted(self._by_run, key=natural_key)
        # answers derived from this (immutable) index alone, e.g. runs/list's data version: computed once
        self.derived: dict[str, Any] = {}

    def get(self, run: str, kind: str, layer: str | None) -> SeriesInfo | None:
        return self._by_key.get((run, kind, layer))

    def of_run(self, run: str) -> list[SeriesInfo]:
        return list(self._by_run.get(run, ()))

    def layers(self, run: str, kind: str) -> list[str]:
        return sorted(
            (i.layer for i in self._by_run.get(run, ()) if i.kind == kind and i.layer is not None),
            key=natural_key,
        )

    def __len__(self) -> int:
        return len(self._by_key)


class PluginData:
    """Cached access to the plugin's data through a TensorBoard ``DataProvider``."""

    def __init__(
        self,
        provider: Any,
        *,
        downsample: int = DEFAULT_DOWNSAMPLE,
        index_ttl: float = DEFAULT_INDEX_TTL,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        logdir: str | dict | None = None,
        samples: int | None = None,
        decoded_bytes: int = DEFAULT_DECODED_BYTES,
    ):
        self.provider = provider
        # where runs keep their side files (TensorBoard's --logdir), and their decoded values
        self.side_files = SideFiles(logdir, decoded_bytes)
        # --samples_per_plugin cnnviz=N as TensorBoard got it (0: every step kept; None: unknown)
        self.samples = samples
        self.downsample = int(downsample)
        self.index_ttl = float(index_ttl)
        self.cache_bytes = int(cache_bytes)
        self._lock = threading.Lock()
        self._indexes: dict[str, tuple[float, DataIndex]] = {}
        self._series: collections.OrderedDict[Hashable, tuple[tuple, Series]] = collections.OrderedDict()
        self._series_bytes = 0
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._index_locks: dict[str, threading.Lock] = {}
        # series contents parsed and checked, by their bytes: 500 runs' 10,500 series share ~21 contents,
        # and decoding each one on every refresh made the index cost 0.75 s (benchmarks/scale.py)
        self._contents: dict[bytes, tuple[dict, dict]] = {}
        # answers built from the whole index (api/runs/list), keyed by the data's version: a poll or a
        # reload while nothing was logged costs a lookup, not a rebuild (500 runs: 241 ms per request)
        self.listings = Memo(limit=8)

    # ------------------------------------------------------------------ index
    def index(self, ctx: Any, experiment_id: str) -> DataIndex:
        """All the plugin's series (refreshed at most every ``index_ttl`` seconds).

        One refresh at a time per experiment: while one request rebuilds a stale index, the others
        answer from the previous one (at most one refresh old) instead of each rebuilding it."""
        now = time.monotonic()
        with self._lock:
            cached = self._indexes.get(experiment_id)
            lock = self._index_locks.setdefault(experiment_id, threading.Lock())
        if cached is not None and now - cached[0] < self.index_ttl:
            return cached[1]
        if cached is not None:
            if not lock.acquire(blocking=False):
                return cached[1]  # another request is refreshing it
        else:
            lock.acquire()  # the first index: wait for whoever builds it
            with self._lock:
                cached = self._indexes.get(experiment_id)
            if cached is not None and time.monotonic() - cached[0] < self.index_ttl:
                lock.release()
                return cached[1]
        try:
            return self._build_index(ctx, experiment_id)
        finally:
            lock.release()

    def _content(self, raw: bytes) -> tuple[dict, dict]:
        """``(as written, schema-checked)`` of a series' plugin content, parsed once per distinct bytes."""
        hit = self._contents.get(raw)
        if hit is None:
            hit = (metadata.parse_plugin_content(raw), metadata.read_content(raw))
            if len(self._contents) >= 4096:  # a bound for logdirs whose contents all differ
                self._contents.clear()
            self._contents[raw] = hit
        return hit

    def _build_index(self, ctx: Any, experiment_id: str) -> DataIndex:
        now = time.monotonic()
        series: list[SeriesInfo] = []
        name = metadata.PLUGIN_NAME
        tensors = (
            _ask(
                "the list of tensor series",
                lambda: self.provider.list_tensors(ctx, experiment_id=experiment_id, plugin_name=name),
            )
            or {}
        )
        blobs = (
            _ask(
                "the list of image series",
                lambda: self.provider.list_blob_sequences(ctx, experiment_id=experiment_id, plugin_name=name),
            )
            or {}
        )
        for data_class, listing in ((TENSOR, tensors), (BLOB, blobs)):
            for run, tags in listing.items():
                if not isinstance(run, str):
                    continue
                for tag, ts in tags.items():
                    written, content = self._content(bytes(getattr(ts, "plugin_content", b"") or b""))
                    kind = content.get("kind")
                    expected = TENSOR if kind in metadata.TENSOR_KINDS else BLOB
                    if not content or expected != data_class:
                        continue
                    layer = content.get("layer")
                    if layer is not None and not isinstance(layer, str):
                        continue
                    series.append(
                        SeriesInfo(
                            run=run,
                            tag=tag,
                            kind=kind,
                            layer=layer,
                            data_class=data_class,
                            max_step=int(ts.max_step),
                            max_wall_time=float(ts.max_wall_time),
                            max_length=int(getattr(ts, "max_length", 0)) if data_class == BLOB else None,
                            content=content,
                            written=written,
                        )
                    )
        index = DataIndex(series)
        with self._lock:
            self._indexes[experiment_id] = (now, index)
        return index

    # ----------------------------------------------------------------- series
    def series(self, ctx: Any, experiment_id: str, info: SeriesInfo) -> Series:
        """Every kept step of one series, read once per version of it."""
        key = (experiment_id, info.run, info.tag, info.data_class)
        with self._lock:
            hit = self._series.get(key)
            if hit is not None and hit[0] == info.version:
                self._series.move_to_end(key)
                return hit[1]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one read per series at a time, however many requests wait for it
            with self._lock:
                hit = self._series.get(key)
                if hit is not None and hit[0] == info.version:
                    return hit[1]
            series = self._read(ctx, experiment_id, info)
            self._store(key, info.version, series)
            return series

    def read_blob(self, ctx: Any, blob_key: str, run: str | None = None) -> bytes:
        """One blob's bytes; a reference is read from the side file of ``run`` (default: the key's run)."""
        data = _ask("this image", lambda: self.provider.read_blob(ctx, blob_key=blob_key))
        if not assets.is_reference(data):
            return data
        run = run if run is not None else getattr(blob_key, "run", None)
        try:
            fields = assets.parse_reference(data)
        except ValueError as error:
            raise HTTPError(503, f"run {str(run)[:200]!r}: {error}"[:MAX_MESSAGE]) from None
        return self.side_files.read(run, fields)

    def _read(self, ctx: Any, experiment_id: str, info: SeriesInfo) -> Series:
        name = metadata.PLUGIN_NAME
        run_tag_filter = provider_lib.RunTagFilter(runs=[info.run], tags=[info.tag])
        tensors = info.data_class == TENSOR
        read = self.provider.read_tensors if tensors else self.provider.read_blob_sequences
        result = _ask(
            f"series {info.tag!r} of run {info.run[:200]!r}",
            lambda: read(
                ctx,
                experiment_id=experiment_id,
                plugin_name=name,
                downsample=self.downsample,
                run_tag_filter=run_tag_filter,
            ),
        )
        data = (result or {}).get(info.run, {}).get(info.tag, [])
        if tensors:
            references = [reference_of(datum.numpy) for datum in data]
            values = [
                _as_float32(datum.numpy) if ref is None else ref for datum, ref in zip(data, references)
            ]
            nbytes = sum(v.nbytes if ref is None else 256 for v, ref in zip(values, references))
        else:
            values = [tuple(BlobKey.of(ref.blob_key, info.run) for ref in datum.values) for datum in data]
            nbytes = sum(sum(len(k) for k in v) + 64 for v in values)
        data = list(data)
        order = sorted(range(len(data)), key=lambda i: data[i].step)
        steps = np.array([data[i].step for i in order], dtype=np.int64)
        wall_times = np.array([data[i].wall_time for i in order], dtype=np.float64)
        values = [values[i] for i in order]
        if len(steps) > 1:  # several events at one step (a restarted run): keep the last written
            keep = np.append(steps[1:] != steps[:-1], True)
            steps, wall_times = steps[keep], wall_times[keep]
            values = [v for v, k in zip(values, keep) if k]
        if tensors and any(isinstance(v, dict) for v in values):
            run = info.run
            values = LazyValues(values, lambda fields: self.side_files.value(run, fields))
        return Series(
            steps=steps, wall_times=wall_times, values=values, nbytes=int(nbytes) + steps.nbytes * 2
        )

    def _store(self, key: Hashable, version: tuple, series: Series) -> None:
        with self._lock:
            old = self._series.pop(key, None)
            if old is not None:
                self._series_bytes -= old[1].nbytes
            if series.nbytes > self.cache_bytes:
                return
            self._series[key] = (version, series)
            self._series_bytes += series.nbytes
            while self._series_bytes > self.cache_bytes and self._series:
                _, (_, evicted) = self._series.popitem(last=False)
                self._series_bytes -= evicted.nbytes
