"""The CNN Viz backend under hostile requests and a damaged logdir (``logdirs.make_damaged_logdir``).

* A seeded fuzz sends thousands of random requests (paths, query strings with valid and
  hostile values, invalid percent-encodings, repeated arguments, methods) to every route
  through TensorBoard's WSGI app for a bounded time: never a 500, never a traceback in a
  response, every JSON body parses, every API error is JSON naming the problem.
* A logdir with a corrupt and a truncated event file, runs named with unicode, HTML and URL
  syntax, and a run deleted while it is being served: the plugin keeps serving the rest.
* The same logdir under the real ``tensorboard`` binary (Rust data server), a run deleted
  while it runs.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from logdirs import HOSTILE_RUNS, P
from support import TENSORBOARD, http_get, plugin_client, tensorboard, wait_for

from tb_cnnviz import metadata
from tb_cnnviz.plugin.routes import ROUTE_GROUPS

FUZZ_SECONDS = float(os.environ.get("CNNVIZ_FUZZ_SECONDS", "15"))
FUZZ_MAX_REQUESTS = 8000
HTTP_FUZZ_REQUESTS = 400
FORBIDDEN = (b"Traceback", b'File "', b"werkzeug.exceptions", b"Internal Server Error")


def _check(response, what: str, unavailable_ok: bool = False) -> dict | None:
    """Assert a response is sane (no 500, no traceback, JSON errors); returns its JSON (None if not JSON).

    ``unavailable_ok``: a 503 (the data provider failed; try again) is expected.
    """
    status = response.status_code
    body = response.data
    assert status < 500 or (unavailable_ok and status == 503), (what, status, body[:300])
    for forbidden in FORBIDDEN:
        assert forbidden not in body, (what, status, body[:300])
    kind = response.headers.get("Content-Type", "")
    if response.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    if kind.startswith("application/json") and body:
        answer = json.loads(body)  # valid JSON, always
        if status >= 400:
            assert isinstance(answer.get("error"), str) and answer["error"], (what, answer)
        return answer
    return None


# ------------------------------------------------------------------------- serving the rest
def test_damaged_logdir_serves_every_good_run(damaged):
    client, _ = plugin_client(damaged["root"])
    listing = _check(client.get(f"{P}/api/runs/list"), "runs/list")
    names = {run["name"] for run in listing["runs"]}
    assert names >= {"exact", "doomed", "truncated", "mixed", *HOSTILE_RUNS}, names
    assert "corrupt" not in names  # nothing readable there
    for name in HOSTILE_RUNS + ["truncated", "mixed"]:
        quoted = urllib.parse.quote(name, safe="")
        steps = _check(
            client.get(f"{P}/api/runs/steps?run={quoted}&kind=kernels&layer=layer%20%3C1%3E"), name
        )
        assert steps["run"] == name and steps["layer"] == "layer <1>"
        assert steps["steps"] in ([0, 5], [0]), (
            name,
            steps,
        )  # the truncated file lost at most its last record
        answer = _check(client.get(f"{P}/api/gradcam/step?run={quoted}&layer=layer%20%3C1%3E&step=0"), name)
        assert [image["misclassified"] for image in answer["images"]] == [None, None] and answer["images"][0][
            "predicted"
        ] == 1
        image = client.get(f"{P}/{answer['images'][1]['overlay']}")
        assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    assert (
        _check(client.get(f"{P}/api/patterns/filter?run=exact&layer=conv&channel=5&step=9"), "exact")["dead"][
            "dead"
        ]
        is True
    )


def test_a_run_deleted_while_serving_answers_404_and_the_rest_keeps_working(damaged, tmp_path):
    root = str(tmp_path / "logdir")
    shutil.copytree(damaged["root"], root)
    client, multiplexer = plugin_client(
        root, index_ttl=3600
    )  # a stale index: the plugin still believes in the run
    url = f"{P}/api/gradcam/step?run=doomed&layer=layer%20%3C1%3E&step=5"
    answer = _check(client.get(url), "doomed before")
    image_url = f"{P}/{answer['images'][0]['overlay']}"
    assert client.get(image_url).status_code == 200
    shutil.rmtree(os.path.join(root, "doomed"))
    multiplexer.Reload()  # TensorBoard notices the folder is gone and drops the run
    gone = client.get(image_url)  # blob key from before the deletion, read after it
    assert gone.status_code == 404, gone.data[:300]
    assert "no longer available" in _check(gone, "doomed image")["error"]
    fresh, _ = plugin_client(root)
    assert "doomed" not in {run["name"] for run in _check(fresh.get(f"{P}/api/runs/list"), "list")["runs"]}
    assert _check(fresh.get(f"{P}/api/gradcam/step?run=doomed&layer=x&step=5"), "doomed after")[
        "error"
    ].startswith("run:")
    still = _check(client.get(f"{P}/api/gradcam/step?run=exact&layer=conv&step=10"), "exact after")
    assert still["images"][1]["misclassified"] is True


class _FailingProvider:
    """Wraps a data provider; every read of one run raises what a broken backend might raise."""

    def __init__(self, inner, run: str, error: Exception):
        self._inner, self._run, self._error = inner, run, error

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _guard(self, kwargs):
        filter_ = kwargs.get("run_tag_filter")
        if filter_ is not None and filter_.runs and self._run in filter_.runs:
            raise self._error

    def read_tensors(self, ctx=None, **kwargs):
        self._guard(kwargs)
        return self._inner.read_tensors(ctx, **kwargs)

    def read_blob_sequences(self, ctx=None, **kwargs):
        self._guard(kwargs)
        return self._inner.read_blob_sequences(ctx, **kwargs)


@pytest.mark.parametrize(
    "error,status",
    [(KeyError("doomed"), 404), (OSError("disk gone"), 503), (RuntimeError("grpc: unavailable"), 503)],
)
def test_provider_failures_become_json_errors_not_500(damaged, error, status):
    client, _ = plugin_client(
        damaged["root"], wrap=lambda provider: _FailingProvider(provider, "doomed", error)
    )
    for route in (
        "filters/kernels?layer=layer%20%3C1%3E&step=0",
        "gradcam/step?layer=layer%20%3C1%3E&step=0",
        "dead/fractions?",
    ):
        response = client.get(f"{P}/api/{route}&run=doomed")
        assert response.status_code == status, (route, response.status_code, response.data[:200])
        assert "doomed" in _check(response, route, unavailable_ok=True)["error"]
    assert _check(client.get(f"{P}/api/gradcam/step?run=exact&layer=conv&step=10"), "exact")["count"] == 3


# ------------------------------------------------------------------------------------ fuzz
class Fuzzer:
    """Random but reproducible requests built from what the logdir really holds and from hostile values."""

    PARAMS = ("run", "layer", "step", "index", "kind", "channel", "count", "threshold", "limit")
    METHODS = ("GET",) * 12 + ("HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
    HOSTILE = [
        "",
        " ",
        "-1",
        "-0",
        "0",
        "00",
        "1.5",
        "1e3",
        "0x10",
        "nan",
        "inf",
        "-inf",
        "1e309",
        "NaN",
        "2" * 40,
        str(2**63),
        str(2**64),
        "9" * 5000,
        "a" * 5000,
        "٣",
        "１２",
        "\x00",
        "%00",
        "../../etc/passwd",
        "..%2f..%2f",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
        "😀" * 50,
        "null",
        "[]",
        "{}",
        "true",
        "%ff%fe",
        "%zz",
        "%",
        "+",
        "&",
        "=",
        "#",
        "\r\nX-Injected: 1",
        "\t",
    ]

    def __init__(self, seed: int, listing: dict):
        self.random = random.Random(seed)
        runs = listing["runs"]
        self.runs = [run["name"] for run in runs] or ["x"]
        self.layers = sorted({layer["name"] for run in runs for layer in run["layers"]}) or ["x"]
        self.steps = [0, 1, 2, 3, 5, 9, 10, 11, 20]
        self.routes = [(group, route) for group, routes in ROUTE_GROUPS.items() for route in routes]

    def value(self, name: str) -> str:
        r = self.random
        choice = r.random()
        if choice < 0.55:  # plausible
            if name == "run":
                return r.choice(self.runs)
            if name == "layer":
                return r.choice(self.layers)
            if name == "kind":
                return r.choice(metadata.KINDS)
            if name == "threshold":
                return r.choice(["0", "0.05", "0.5", "1"])
            return str(r.choice(self.steps) if name == "step" else r.randint(0, 12))
        if choice < 0.85:
            return r.choice(self.HOSTILE)
        return "".join(chr(r.randint(1, 0x2FFF)) for _ in range(r.randint(1, 12)))

    def encode(self, text: str) -> str:
        r = self.random.random()
        if r < 0.7:
            return urllib.parse.quote(text, safe="")
        if r < 0.85:
            return text.replace("&", "%26").replace("#", "%23").replace(" ", "+")  # raw unicode in the URL
        raw = text.encode("utf-8", "surrogatepass") + bytes(
            self.random.randint(0, 255) for _ in range(self.random.randint(0, 3))
        )
        return "".join(f"%{b:02x}" for b in raw)  # arbitrary bytes, often invalid UTF-8

    def query(self) -> str:
        r = self.random
        names = [n for n in self.PARAMS if r.random() < 0.6]
        if r.random() < 0.15:
            names.append(r.choice(["x", "", "run[]", "__proto__", "step%00", "a" * 300]))
        if r.random() < 0.2 and names:
            names.append(r.choice(names))  # a repeated argument
        parts = [f"{self.encode(n)}={self.encode(self.value(n))}" for n in names]
        if r.random() < 0.05:
            parts.append(r.choice(["&&&", "=", "==", "%", "run", "step=&step=1", ";;"]))
        return "&".join(parts)

    def path(self) -> str:
        r = self.random
        group, route = r.choice(self.routes)
        roll = r.random()
        if roll < 0.75:
            path = f"{P}/api/{group}/{route}"
        elif roll < 0.82:
            path = f"{P}/api/{group}/{route}/" + r.choice(["", "x", "..", "%2e%2e", "extra/segments"])
        elif roll < 0.88:
            path = f"{P}/api/" + r.choice(
                [
                    group,
                    f"{group}/{route.upper()}",
                    "",
                    "/",
                    f"{group}//{route}",
                    f"{self.encode(self.value('run'))}/{route}",
                ]
            )
        elif roll < 0.95:
            path = f"{P}/" + r.choice(
                [
                    "index.js",
                    "views/gradcam.js",
                    "views/%2e%2e/plugin.py",
                    "views/../../setup.py",
                    "vendor/x.js",
                    "style.css",
                    "views/",
                    "sprites.js",
                    "nope.js",
                    "views/embedding.js%00.png",
                    "api",
                ]
            )
        else:
            path = f"{P}/api/{self.encode(self.value('layer'))}/{self.encode(self.value('kind'))}"
        return path

    def request(self) -> tuple[str, str, dict]:
        r = self.random
        method = r.choice(self.METHODS)
        path = self.path()
        query = self.query() if r.random() < 0.95 else ""
        kwargs: dict = {}
        if r.random() < 0.3:
            kwargs["headers"] = {"Accept-Encoding": "gzip"}
        if method in ("POST", "PUT", "PATCH") and r.random() < 0.5:
            kwargs["data"] = r.choice([b"{}", b"run=a", bytes(r.randint(0, 255) for _ in range(64))])
        return method, f"{path}?{query}" if query else path, kwargs


def test_fuzz_every_route_no_500_no_traceback_valid_json(damaged):
    client, _ = plugin_client(damaged["root"])
    listing = _check(client.get(f"{P}/api/runs/list"), "runs/list")
    fuzzer = Fuzzer(seed=20240607, listing=listing)
    statuses: dict[int, int] = {}
    json_ok = 0
    done = 0
    failures: list[str] = []
    deadline = time.monotonic() + FUZZ_SECONDS
    while done < FUZZ_MAX_REQUESTS and time.monotonic() < deadline:
        method, url, kwargs = fuzzer.request()
        done += 1
        try:
            response = client.open(url, method=method, **kwargs)
            answer = _check(response, f"{method} {url[:200]}")
        except AssertionError as error:
            failures.append(f"{method} {url[:300]}: {str(error)[:300]}")
            if len(failures) >= 10:
                break
            continue
        except Exception as error:  # an exception escaping the WSGI app is a 500 in a real server
            failures.append(f"{method} {url[:300]}: raised {type(error).__name__}: {str(error)[:200]}")
            if len(failures) >= 10:
                break
            continue
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        json_ok += answer is not None
    print(
        f"\nfuzz: {done} requests in {FUZZ_SECONDS:.0f} s max, statuses {dict(sorted(statuses.items()))}, {json_ok} JSON bodies parsed"
    )
    assert not failures, "\n".join(failures)
    assert done >= 1000, f"only {done} requests in {FUZZ_SECONDS} s"
    assert statuses.get(200, 0) > done // 20, statuses  # the fuzz reaches real data, not only errors
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) > done // 4, statuses


def test_fuzz_is_reproducible():
    listing = {"runs": [{"name": "a", "layers": [{"name": "l"}]}]}
    one, again, other = Fuzzer(7, listing), Fuzzer(7, listing), Fuzzer(8, listing)
    requests = [one.request()[:2] for _ in range(50)]
    assert requests == [again.request()[:2] for _ in range(50)]
    assert requests != [other.request()[:2] for _ in range(50)]


# ----------------------------------------------------------------------- real tensorboard
@pytest.mark.slow
def test_real_tensorboard_keeps_serving_a_damaged_logdir_and_a_deleted_run(damaged, tmp_path):
    if not os.path.exists(TENSORBOARD):
        pytest.skip(f"no tensorboard executable at {TENSORBOARD}")
    root = str(tmp_path / "logdir")
    shutil.copytree(damaged["root"], root)

    def api(base: str, route: str) -> tuple[int, dict | None]:
        status, body = http_get(f"{base}{P}/api/{route}")
        assert status < 500 and b"Traceback" not in body, (route, status, body[:300])
        return status, json.loads(body) if body[:1] in (b"{", b"[") else None

    with tensorboard(root) as base:  # the default Rust data server
        names = wait_for(
            lambda: (
                (n := {r["name"] for r in api(base, "runs/list")[1]["runs"]})
                >= {"exact", "doomed", *HOSTILE_RUNS}
                and n
            ),
            what="the good runs listed",
        )
        assert "corrupt" not in names
        url = "gradcam/step?run=doomed&layer=layer%20%3C1%3E&step=5"
        status, answer = api(base, url)
        assert status == 200
        image = answer["images"][0]["overlay"]
        shutil.rmtree(os.path.join(root, "doomed"))
        time.sleep(3)  # --reload_interval 1: the server notices
        for route in (
            url,
            image[len("api/") :],
            "runs/list",
            "gradcam/image?run=doomed&layer=layer%20%3C1%3E&index=0",
        ):
            api(base, route)  # 200 from what is still held, or a 4xx: never a 500
        for name in HOSTILE_RUNS:
            status, steps = api(
                base, f"runs/steps?run={urllib.parse.quote(name, safe='')}&kind=kernels&layer=layer%20%3C1%3E"
            )
            assert status == 200 and steps["run"] == name and steps["steps"] == [0, 5]
        status, answer = api(base, "patterns/filter?run=exact&layer=conv&channel=5&step=9")
        assert status == 200 and answer["top"]["examples"][0]["id"] == 4
        # a short fuzz over HTTP, through TensorBoard's own server and the Rust data server
        fuzzer = Fuzzer(seed=99, listing=api(base, "runs/list")[1])
        statuses: dict[int, int] = {}
        for _ in range(HTTP_FUZZ_REQUESTS):
            method, url, kwargs = fuzzer.request()
            url = urllib.parse.quote(
                url, safe="/?&=%+;:,'()*!@$~"
            )  # HTTP needs ASCII: raw unicode and controls get %-encoded
            request = urllib.request.Request(
                base + url, method=method, data=kwargs.get("data"), headers=kwargs.get("headers", {})
            )
            try:
                with urllib.request.urlopen(request, timeout=20) as response:
                    status, body = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, body = error.code, error.read()
            statuses[status] = statuses.get(status, 0) + 1
            assert status < 500, (method, url[:300], status, body[:300])
            assert b"Traceback" not in body, (method, url[:300], body[:300])
        print(f"\nHTTP fuzz against tensorboard: {dict(sorted(statuses.items()))}")
        assert statuses.get(200, 0) > 0
