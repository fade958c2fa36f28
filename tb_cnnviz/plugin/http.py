"""HTTP plumbing of the CNN Viz backend: the one error type, query parsing, JSON answers and the memo.

* :class:`HTTPError` is the only error a route or the data layer raises on purpose: a client
  error (400/404) or a data-provider failure (404/503). ``routes.dispatch`` answers it as
  JSON ``{"error": message}`` with its status; its message names the argument, the value
  and what was expected.
* :class:`Query` reads a request's arguments and raises :class:`HTTPError` 400 for a
  missing or malformed one.
* :class:`Memo` keeps the answers computed from one version of a series (bounded; the least
  recently used goes first), so a repeated request costs no recomputation.
"""

from __future__ import annotations

import collections
import gzip
import json
import math
import re
import threading
from collections.abc import Hashable
from typing import Any, Callable

import numpy as np
from tensorboard.backend import http_util
from werkzeug import wrappers

MAX_INT = 2**63 - 1
MAX_TEXT = 4096
MAX_COUNT = 100_000
MAX_MESSAGE = 500  # characters of a data-provider failure sent to the browser
MEMO_ENTRIES = 16  # answers kept per version of a series
_INTEGER = re.compile(r"[0-9]{1,30}")


class HTTPError(Exception):
    """An error answered as JSON ``{"error": message}`` with HTTP ``status`` (never a 500)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "..."


class Query:
    """Validated access to a request's query arguments (first value of each name)."""

    def __init__(self, args: Any):
        self._args = args

    def text(self, name: str, *, required: bool = True, default: str | None = None) -> str | None:
        """A non-empty string of at most ``MAX_TEXT`` characters (``default`` when absent and not required)."""
        value = self._args.get(name)
        if value is None or value == "":
            if required:
                raise HTTPError(400, f"{name}: missing; expected a non-empty string")
            return default
        if len(value) > MAX_TEXT:
            raise HTTPError(400, f"{name}: {len(value)} characters is too long; expected at most {MAX_TEXT}")
        return value

    def integer(
        self, name: str, *, default: int | None = None, minimum: int = 0, maximum: int = MAX_INT
    ) -> int:
        """A decimal integer in ``[minimum, maximum]`` (digits only: no sign, space, exponent or hex)."""
        value = self._args.get(name)
        expected = f"expected an integer in [{minimum}, {maximum}]"
        if value is None or value == "":
            if default is None:
                raise HTTPError(400, f"{name}: missing; {expected}")
            return default
        if not _INTEGER.fullmatch(value):
            raise HTTPError(400, f"{name}: {_shown(value)!r} is not a non-negative integer; {expected}")
        number = int(value)
        if not minimum <= number <= maximum:
            raise HTTPError(400, f"{name}: {_shown(value)} is out of range; {expected}")
        return number

    def number(self, name: str, *, default: float, minimum: float, maximum: float) -> float:
        """A finite number in ``[minimum, maximum]`` (``default`` when absent)."""
        value = self._args.get(name)
        if value is None or value == "":
            return default
        expected = f"expected a number in [{minimum}, {maximum}]"
        try:
            number = float(value)
        except ValueError:
            raise HTTPError(400, f"{name}: {_shown(value)!r} is not a number; {expected}") from None
        if not minimum <= number <= maximum:  # also rejects NaN
            raise HTTPError(400, f"{name}: {_shown(value)} is out of range; {expected}")
        return number

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``."""
        value = self.text(name)
        if value not in choices:
            raise HTTPError(400, f"{name}: {value[:40]!r} is not valid; expected one of {list(choices)}")
        return value


class Memo:
    """Answers computed from one version of a series, at most ``limit`` of them.

    One eviction rule: when full, the least recently used answer goes. A new version of a
    series is a new ``Series`` with an empty memo, so nothing here is ever stale.
    """

    def __init__(self, limit: int = MEMO_ENTRIES):
        self.limit = int(limit)
        self._entries: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The answer stored under ``key``, built (outside the lock) and stored on a miss."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = build()
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.limit:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries


# ------------------------------------------------------------------------------- JSON values
def floats(array: Any, digits: int = 5) -> list:
    """Nested lists of rounded floats with ``None`` for NaN/Inf (JSON has no NaN)."""
    rounded = np.round(np.asarray(array, dtype=np.float64), digits)
    finite = np.isfinite(rounded)
    if finite.all():
        return rounded.tolist()
    with_none = rounded.astype(object)
    with_none[~finite] = None
    return with_none.tolist()


def finite(value: Any, digits: int = 5) -> float | None:
    """A rounded float; None for NaN/Inf or None (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


# ---------------------------------------------------------------------------------- answers
def _dumps(payload: Any) -> str:
    return json.dumps(payload, allow_nan=False, separators=(",", ":"))


def json_response(request: Any, payload: Any, status: int = 200) -> Any:
    """JSON with NaN-free numbers (``allow_nan=False``), gzip when the client accepts it."""
    return http_util.Respond(request, _dumps(payload), "application/json", code=status)


def error_response(request: Any, status: int, message: str) -> Any:
    """``{"error": message}`` with ``status``."""
    return json_response(request, {"error": message}, status=status)


def method_not_allowed(request: Any) -> Any | None:
    """A 405 answer for anything but GET and HEAD; None for those."""
    if request.method in ("GET", "HEAD"):
        return None
    response = error_response(request, 405, f"method {request.method[:20]!r} not allowed; expected GET")
    response.headers["Allow"] = "GET, HEAD"
    return response


def memo_json(request: Any, memo: Memo, key: Hashable, build: Callable[[], Any]) -> Any:
    """JSON of ``build()``, serialised and gzipped once per ``memo`` (one version of a series) and ``key``."""
    body = memo.get(key, lambda: gzip.compress(_dumps(build()).encode("utf-8"), compresslevel=3, mtime=0))
    # Respond un-gzips for a client that does not accept gzip.
    return http_util.Respond(request, body, "application/json", content_encoding="gzip")


def incompressible_json(payload: dict) -> Any:
    """JSON sent without gzip: base64 of float32 values barely compresses, and gzip would cost more than it saves."""
    return wrappers.Response(
        _dumps(payload),
        status=200,
        content_type="application/json",
        headers=[
            ("X-Content-Type-Options", "nosniff"),
            ("Expires", "0"),
            ("Cache-Control", "no-cache, must-revalidate"),
        ],
    )
