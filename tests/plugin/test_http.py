"""``tb_cnnviz.plugin.http``: query parsing, the one error type, the memo and its eviction, JSON answers."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from werkzeug import test as werkzeug_test
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request

from tb_cnnviz.plugin import http
from tb_cnnviz.plugin.http import HTTPError, Memo, Query


def _error(call) -> HTTPError:
    with pytest.raises(HTTPError) as raised:
        call()
    return raised.value


# -------------------------------------------------------------------------------- Query
def test_a_missing_argument_is_named_with_what_was_expected():
    error = _error(lambda: Query(MultiDict()).text("run"))
    assert (error.status, error.message) == (400, "run: missing; expected a non-empty string")
    error = _error(lambda: Query(MultiDict({"step": ""})).integer("step", minimum=1, maximum=9))
    assert error.message == "step: missing; expected an integer in [1, 9]"


@pytest.mark.parametrize(
    "value, message",
    [
        ("abc", "step: 'abc' is not a non-negative integer; expected an integer in [0, 10]"),
        ("-1", "step: '-1' is not a non-negative integer; expected an integer in [0, 10]"),
        ("1.5", "step: '1.5' is not a non-negative integer; expected an integer in [0, 10]"),
        ("11", "step: 11 is out of range; expected an integer in [0, 10]"),
        ("9" * 50, f"step: {'9' * 40}... is not a non-negative integer; expected an integer in [0, 10]"),
    ],
)
def test_a_malformed_integer_names_the_argument_the_value_and_the_range(value, message):
    error = _error(lambda: Query(MultiDict({"step": value})).integer("step", maximum=10))
    assert (error.status, error.message) == (400, message.replace(f"{'9' * 40}...", repr("9" * 40 + "...")))


def test_integer_default_and_first_value_of_a_repeated_argument():
    assert Query(MultiDict()).integer("count", default=3) == 3
    assert Query(MultiDict([("step", "4"), ("step", "x")])).integer("step") == 4


@pytest.mark.parametrize(
    "value, message",
    [
        ("abc", "threshold: 'abc' is not a number; expected a number in [0.0, 1.0]"),
        ("nan", "threshold: nan is out of range; expected a number in [0.0, 1.0]"),
        ("2", "threshold: 2 is out of range; expected a number in [0.0, 1.0]"),
    ],
)
def test_a_malformed_number_names_the_argument_the_value_and_the_range(value, message):
    query = Query(MultiDict({"threshold": value}))
    error = _error(lambda: query.number("threshold", default=0.0, minimum=0.0, maximum=1.0))
    assert (error.status, error.message) == (400, message)


def test_number_default_and_value():
    assert Query(MultiDict()).number("t", default=0.5, minimum=0, maximum=1) == 0.5
    assert Query(MultiDict({"t": "0.25"})).number("t", default=0.5, minimum=0, maximum=1) == 0.25


def test_text_length_and_choice():
    error = _error(lambda: Query(MultiDict({"run": "r" * 5000})).text("run"))
    assert error.message == f"run: 5000 characters is too long; expected at most {http.MAX_TEXT}"
    assert Query(MultiDict()).text("layer", required=False) is None
    assert Query(MultiDict({"kind": "a"})).choice("kind", ("a", "b")) == "a"
    error = _error(lambda: Query(MultiDict({"kind": "c"})).choice("kind", ("a", "b")))
    assert (error.status, error.message) == (400, "kind: 'c' is not valid; expected one of ['a', 'b']")


# --------------------------------------------------------------------------------- Memo
def test_memo_builds_once_per_key():
    memo, calls = Memo(limit=4), []

    def build(value):
        calls.append(value)
        return value * 10

    assert memo.get("a", lambda: build(1)) == 10
    assert memo.get("a", lambda: build(2)) == 10
    assert calls == [1] and len(memo) == 1 and "a" in memo


def test_memo_evicts_the_least_recently_used_answer():
    memo = Memo(limit=3)
    for key in "abc":
        memo.get(key, lambda key=key: key)
    memo.get("a", lambda: "rebuilt")  # a is now the most recently used
    memo.get("d", lambda: "d")  # full: b, the least recently used, goes
    assert len(memo) == 3 and "b" not in memo and {"a", "c", "d"} <= {k for k in "abcd" if k in memo}
    assert memo.get("a", lambda: "rebuilt") == "a"  # kept, not rebuilt
    assert memo.get("b", lambda: "rebuilt") == "rebuilt"


def test_series_memo_has_the_default_limit():
    from tb_cnnviz.plugin.data import Series

    series = Series(steps=np.zeros(0, np.int64), wall_times=np.zeros(0), values=[], nbytes=0)
    assert isinstance(series.memo, Memo) and series.memo.limit == http.MEMO_ENTRIES
    for i in range(http.MEMO_ENTRIES + 5):
        series.memo.get(i, lambda i=i: i)
    assert len(series.memo) == http.MEMO_ENTRIES


# ------------------------------------------------------------------------------ answers
def _request(**headers) -> Request:
    return Request(werkzeug_test.EnvironBuilder(headers=headers).get_environ())


def _body(response) -> bytes:
    return b"".join(response.response)  # TensorBoard answers in direct-passthrough mode


def test_json_values_have_no_nan():
    assert http.floats([[1.234567, np.nan], [np.inf, 2]]) == [[1.23457, None], [None, 2.0]]
    assert (
        http.finite(float("nan")) is None and http.finite(None) is None and http.finite(1.0000001, 6) == 1.0
    )


def test_memo_json_is_gzipped_once_and_plain_for_a_client_without_gzip():
    memo, built = Memo(), []

    def build() -> dict:
        built.append(1)
        return {"x": [1, 2]}

    zipped = http.memo_json(_request(**{"Accept-Encoding": "gzip"}), memo, ("k",), build)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(_body(zipped))) == {"x": [1, 2]}
    plain = http.memo_json(_request(), memo, ("k",), build)
    assert json.loads(_body(plain)) == {"x": [1, 2]} and built == [1]


def test_error_response_and_method_refusal():
    response = http.error_response(_request(), 404, "run: nope")
    assert response.status_code == 404 and json.loads(_body(response)) == {"error": "run: nope"}
    assert http.method_not_allowed(_request()) is None
    post = Request(werkzeug_test.EnvironBuilder(method="POST").get_environ())
    refused = http.method_not_allowed(post)
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD"
    assert json.loads(_body(refused)) == {"error": "method 'POST' not allowed; expected GET"}


def test_a_provider_failure_is_the_same_error_type_with_a_bounded_message():
    from tb_cnnviz.plugin import data

    def vanished():
        raise KeyError("run")

    error = _error(lambda: data._ask("series 'x' of run 'r'", vanished))
    assert (error.status, error.message) == (
        404,
        "series 'x' of run 'r': no longer available (was its run deleted?)",
    )

    def broken():
        raise OSError("disk")

    error = _error(lambda: data._ask("x" * 2000, broken))
    assert error.status == 503 and len(error.message) == http.MAX_MESSAGE
