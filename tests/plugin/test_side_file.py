"""The side file of large payloads (tb_cnnviz/assets.py, docs/design.md "Storage"), end to end.

The same summaries are written twice, into a run with the side file and into one without (the format
of logdirs written before it), and read through TensorBoard's own data providers: every series, blob
and route answer must be identical. Then: a series larger than the Rust data server's 256 MiB message
limit served per step, a missing or damaged side file answered by a 404/503 naming it, two threads
writing at once, and the cap of ``--samples_per_plugin`` reported when it still samples.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import threading

import numpy as np
import pytest
from logdirs import api_url as wsgi_url
from support import api_url, http_get, plugin_client, serving
from torch.utils.tensorboard import SummaryWriter

from tb_cnnviz import assets, metadata, summary
from tb_cnnviz.plugin import data as data_lib

STEPS = (0, 10, 20, 30)
LAYER = "features.conv1"


def _png(seed: int, size: int = 24) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return summary.encode_png(pixels)


def _summaries(step: int) -> list:
    """One step of most kinds, large and small, with values that differ per step (NaN included)."""
    rng = np.random.default_rng(step)
    kernels = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    kernels[0, 0, 0, 0] = np.nan
    maps = rng.random((3, 7, 7)).astype(np.float32) * (step + 1)
    return [
        summary.tensor_summary(metadata.KERNELS, LAYER, kernels),
        summary.tensor_summary(metadata.SMOOTHNESS, LAYER, rng.random(6)),
        summary.tensor_summary(metadata.DEAD_FILTERS, LAYER, rng.random(6), window=10, measured_at="conv"),
        summary.blob_summary(
            metadata.KERNEL_GRID, LAYER, [_png(step)], normalization="global", nrow=3, padding=1
        ),
        summary.blob_summary(
            metadata.ACTIVATIONS,
            LAYER,
            [_png(100 + step + i, 32) for i in range(3)],
            channels=6,
            nrow=3,
            padding=1,
        ),
        summary.blob_summary(metadata.PROBE, None, [_png(200 + i) for i in range(3)], labels=[0, 1, 2]),
        summary.blob_summary(
            metadata.GRADCAM, LAYER, [_png(300 + step + i) for i in range(3)], colormap="jet"
        ),
        summary.tensor_summary(metadata.GRADCAM_MAPS, LAYER, maps),
        summary.tensor_summary(metadata.GRADCAM_INFO, LAYER, np.array([[0, 1, 0.5, 0.2]] * 3)),
        summary.tensor_summary(
            metadata.EMBEDDING, LAYER, rng.random((40, 3)), method="tsne", labels=[0] * 40, image_size=[8, 8]
        ),
        summary.tensor_summary(
            metadata.TOP_EXAMPLES, LAYER, rng.random((6, 2, 6)) * 8, k=2, image_size=[8, 8]
        ),
    ]


def _write(root: str, run: str, side_file: bool, steps=STEPS) -> None:
    writer = SummaryWriter(os.path.join(root, run))
    try:
        for step in steps:
            summary.write(writer, _summaries(step), step, side_file=side_file)
    finally:
        writer.close()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> str:
    """``side`` (payloads in the side file) and ``inline`` (all in the events) with the same summaries."""
    root = str(tmp_path_factory.mktemp("side_file"))
    _write(root, "side", True)
    _write(root, "inline", False)
    return root


def _everything(provider, root: str) -> dict:
    """Every series of both runs as the plugin reads it: ``{(run, tag): (steps, values)}``; blobs as bytes."""
    from tensorboard import context as tb_context

    plugin_data = data_lib.PluginData(provider, logdir=root, index_ttl=0)
    ctx = tb_context.RequestContext()
    index = plugin_data.index(ctx, "")
    found = {}
    for run in index.runs:
        for info in index.of_run(run):
            series = plugin_data.series(ctx, "", info)
            if info.data_class == "blob":
                values = [[plugin_data.read_blob(ctx, key) for key in keys] for keys in series.values]
            else:
                values = [np.asarray(value) for value in series.values]
            found[(run, info.tag)] = (series.steps.tolist(), values)
    return found


def _assert_same(found: dict) -> None:
    tags = {tag for run, tag in found if run == "inline"}
    assert tags == {tag for run, tag in found if run == "side"} and len(tags) == 11
    for tag in tags:
        (steps, inline), (side_steps, side) = found[("inline", tag)], found[("side", tag)]
        assert steps == side_steps == list(STEPS), tag
        for a, b in zip(inline, side):
            if isinstance(a, list):
                assert a == b, tag
            else:
                assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b, equal_nan=True), tag


def test_the_side_file_holds_the_large_payloads_and_the_events_only_references(two_runs):
    side, inline = os.path.join(two_runs, "side"), os.path.join(two_runs, "inline")
    (side_file,) = [name for name in os.listdir(side) if name.startswith(assets.PREFIX)]
    (event_file,) = [name for name in os.listdir(side) if "tfevents" in name]
    assert side_file == assets.side_file_name(event_file) and "tfevents" not in side_file
    assert not [name for name in os.listdir(inline) if name.startswith(assets.PREFIX)]
    (inline_events,) = [name for name in os.listdir(inline) if "tfevents" in name]
    side_bytes = os.path.getsize(os.path.join(side, side_file))
    events, old_events = (
        os.path.getsize(os.path.join(side, event_file)),
        os.path.getsize(os.path.join(inline, inline_events)),
    )
    # every payload moved, byte for byte: what the events lost is what the side file holds, less the references
    assert side_bytes > 0.8 * (old_events - events) and events < old_events / 3


def test_both_python_readers_give_identical_values_with_and_without_the_side_file(two_runs):
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(two_runs)
    multiplexer.Reload()
    _assert_same(_everything(data_provider.MultiplexerDataProvider(multiplexer, two_runs), two_runs))


def test_decoded_values_are_kept_within_their_byte_budget(two_runs):
    """A tensor series of references is read value by value; the decoded arrays stay within ``decoded_bytes``."""
    from tensorboard import context as tb_context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(two_runs)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, two_runs)
    one = 6 * 3 * 3 * 3 * 4  # bytes of one kernels value
    plugin_data = data_lib.PluginData(provider, logdir=two_runs, index_ttl=0, decoded_bytes=3 * one + 10)
    ctx = tb_context.RequestContext()
    series = plugin_data.series(ctx, "", plugin_data.index(ctx, "").get("side", metadata.KERNELS, LAYER))
    assert isinstance(series.values, data_lib.LazyValues) and series.nbytes < 4 * one
    values = list(series.values)  # iterating reads every value
    assert (
        len(values) == len(STEPS) and plugin_data.side_files._decoded_size == 3 * one
    )  # the last three kept
    assert series.values[-1] is values[-1] and series.values[0] is not values[0]  # a hit, then a read again
    assert np.array_equal(series.values[0], values[0], equal_nan=True)
    assert [v.shape for v in series.values[1:3]] == [(6, 3, 3, 3)] * 2


def _route_answers(get) -> None:
    """The routes of both runs answer the same (``get(route, **params) -> (status, body)``)."""
    for kind in (metadata.KERNEL_GRID, metadata.ACTIVATIONS, metadata.GRADCAM):
        for step in STEPS:
            for index in range(1 if kind == metadata.KERNEL_GRID else 3):
                args = {"kind": kind, "layer": LAYER, "step": step, "index": index}
                side, inline = get("runs/image", run="side", **args), get("runs/image", run="inline", **args)
                assert side[0] == inline[0] == 200 and side[1] == inline[1] and side[1].startswith(b"\x89PNG")
    answer = get("runs/image", run="side", kind=metadata.PROBE, step=0, index=2)
    assert answer == (200, _png(202))
    for route, params in (
        ("filters/kernels", {"layer": LAYER, "step": 10, "count": 3}),
        ("gradcam/maps", {"layer": LAYER, "step": 20}),
        ("embedding/points", {"layer": LAYER, "step": 30}),
        ("top_images/examples", {"layer": LAYER, "step": 0}),
        ("runs/steps", {"kind": metadata.KERNELS, "layer": LAYER}),
    ):
        side, inline = get(route, run="side", **params), get(route, run="inline", **params)
        assert side[0] == inline[0] == 200, (route, side, inline)
        side_json, inline_json = json.loads(side[1]), json.loads(inline[1])
        for key in ("run", "wall_times"):  # the run's name, and when each run was written
            side_json.pop(key, None), inline_json.pop(key, None)
        assert side_json == inline_json, route


def test_routes_answer_the_same_bytes_through_the_python_multiplexer(two_runs):
    client, _ = plugin_client(two_runs)

    def get(route, **params):
        response = client.get(wsgi_url(route, **params))
        return response.status_code, response.get_data()

    _route_answers(lambda route, **params: get(route, **params))


@pytest.mark.slow
def test_routes_answer_the_same_bytes_through_the_rust_data_server(two_runs):
    with serving(two_runs, ["side", "inline"]) as base:
        _route_answers(lambda route, **params: http_get(api_url(base, route, **params)))


def _without_side_file(root: str, run: str, damage) -> None:
    folder = os.path.join(root, run)
    (name,) = [n for n in os.listdir(folder) if n.startswith(assets.PREFIX)]
    damage(os.path.join(folder, name))


def test_a_missing_or_damaged_side_file_is_a_404_or_503_naming_it(tmp_path):
    root = str(tmp_path)
    for run in ("missing", "truncated", "damaged"):
        _write(root, run, True, steps=(0,))
    _without_side_file(root, "missing", os.remove)
    _without_side_file(root, "truncated", lambda path: os.truncate(path, 10))

    def flip(path):
        with open(path, "r+b") as handle:
            handle.seek(5)
            byte = handle.read(1)
            handle.seek(5)
            handle.write(bytes([byte[0] ^ 0xFF]))

    _without_side_file(root, "damaged", flip)
    client, _ = plugin_client(root)
    expected = {"missing": (404, "is missing"), "truncated": (404, "shorter"), "damaged": (503, "checksum")}
    for run, (status, words) in expected.items():
        for route, params in (
            ("runs/image", {"kind": metadata.KERNEL_GRID, "layer": LAYER, "step": 0, "index": 0}),
            ("filters/kernels", {"layer": LAYER, "step": 0}),
        ):
            response = client.get(wsgi_url(route, run=run, **params))
            if (
                run == "damaged" and route == "runs/image"
            ):  # the flipped byte is in the first payload: kernels
                assert response.status_code == 200
                continue
            message = response.get_json()["error"]
            assert response.status_code == status and words in message and assets.PREFIX in message, (
                run,
                route,
                message,
            )
    # a small series stays in the events and reads as before
    response = client.get(wsgi_url("filters/smoothness", run="missing", layer=LAYER))
    assert response.status_code == 200


def test_a_side_file_that_cannot_be_written_leaves_the_payloads_in_the_events(tmp_path):
    writer = SummaryWriter(str(tmp_path / "run"))
    (event_file,) = [name for name in os.listdir(tmp_path / "run") if "tfevents" in name]
    os.mkdir(tmp_path / "run" / assets.side_file_name(event_file))  # a folder where the file would go
    with pytest.warns(RuntimeWarning, match="cannot write the side file .* payloads stay in the event file"):
        summary.write(writer, _summaries(0), 0)
    summary.write(writer, _summaries(10), 10)  # warned once
    writer.close()
    client, _ = plugin_client(str(tmp_path))
    for step in (0, 10):
        response = client.get(
            wsgi_url("runs/image", run="run", kind=metadata.GRADCAM, layer=LAYER, step=step, index=1)
        )
        assert response.status_code == 200 and response.get_data() == _png(301 + step)


def test_without_the_logdir_a_reference_is_a_503_that_says_so(two_runs):
    client = _client({two_runs: None}, logdir="")
    response = client.get(wsgi_url("runs/image", run="side", kind=metadata.PROBE, step=0, index=0))
    assert response.status_code == 503 and "--logdir" in response.get_json()["error"]


def test_runs_of_a_logdir_spec_find_their_side_files(two_runs):
    """``--logdir_spec group:path``: the multiplexer names the runs ``group/<sub folder>``."""
    side = os.path.join(two_runs, "side")  # an unnamed group: its runs are named as in it
    flags = argparse.Namespace(logdir_spec=f"grp:{two_runs},{side}")
    client = _client({two_runs: "grp", side: None}, logdir="", flags=flags)
    for run in ("grp/side", "."):
        response = client.get(wsgi_url("runs/image", run=run, kind=metadata.PROBE, step=0, index=2))
        assert response.status_code == 200 and response.get_data() == _png(202), run


def test_a_reference_names_only_a_side_file_and_a_remote_failure_says_remote():
    good = assets.make_reference(assets.PREFIX + "1.host.2.0", 4, 8, 123, dtype="<f4", shape=[2])
    assert assets.parse_reference(good) == {
        "file": assets.PREFIX + "1.host.2.0",
        "offset": 4,
        "length": 8,
        "crc32": 123,
        "dtype": "<f4",
        "shape": [2],
    }
    for file in ("../" + assets.PREFIX + "x", "/etc/passwd", "events.out.tfevents.1", assets.PREFIX + "a/b"):
        with pytest.raises(ValueError, match="file must be a side file name"):
            assets.parse_reference(assets.make_reference(file, 0, 1, 0))
    with pytest.raises(ValueError, match="offset must be an integer"):
        assets.parse_reference(assets.MAGIC + b'{"file":"cnnviz.assets.x","offset":-1,"length":1,"crc32":0}')
    with pytest.raises(assets.AssetError, match="remote logdir") as error:
        assets.read_range("nosuchfs://bucket/run/" + assets.PREFIX + "x", 0, 4)
    assert not error.value.missing


def test_two_threads_writing_at_once_keep_every_reference_right(tmp_path):
    """The callback writes from the training thread and its background thread into one writer."""
    writer = SummaryWriter(str(tmp_path / "run"))
    per_thread = 60

    def blob(thread: int, i: int) -> bytes:
        return hashlib.sha256(f"{thread}-{i}".encode()).digest() * (40 + (i * 7 + thread) % 50)

    def work(thread: int) -> None:
        for i in range(per_thread):
            step = 2 * i + thread
            kind = metadata.ACTIVATIONS if thread == 0 else metadata.PATTERNS
            summary.write(
                writer, [summary.blob_summary(kind, LAYER, [blob(thread, i)] * 2)], step, side_file=True
            )

    threads = [threading.Thread(target=work, args=(t,)) for t in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    client, _ = plugin_client(str(tmp_path))
    for thread, kind in ((0, metadata.ACTIVATIONS), (1, metadata.PATTERNS)):
        for i in range(per_thread):
            for index in (0, 1):
                response = client.get(
                    wsgi_url(
                        "runs/image", run="run", kind=kind, layer=LAYER, step=2 * i + thread, index=index
                    )
                )
                assert response.status_code == 200 and response.get_data() == blob(thread, i), (thread, i)
    (name,) = [n for n in os.listdir(tmp_path / "run") if n.startswith(assets.PREFIX)]
    total = sum(2 * len(blob(t, i)) for t in (0, 1) for i in range(per_thread))
    assert os.path.getsize(tmp_path / "run" / name) == total  # nothing written twice, nothing lost


def _client(groups: dict, logdir: str, flags=None, cap: int = 0):
    """TensorBoard's WSGI app with the plugin over the multiplexer's ``{path: group name}``, the way
    ``tensorboard`` builds it: ``logdir`` and ``flags`` as TensorBoard's context gives them."""
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from werkzeug import test as werkzeug_test

    from tb_cnnviz import plugin

    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: cap})
    for path, group in groups.items():
        multiplexer.AddRunsFromDirectory(path, group)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    context = base_plugin.TBContext(
        logdir=logdir, flags=flags, multiplexer=multiplexer, data_provider=provider
    )
    app = application.TensorBoardWSGI([plugin.CNNVizPlugin(context, index_ttl=0)], data_provider=provider)
    return werkzeug_test.Client(app)


def _sampled_client(root: str, cap: int):
    flags = argparse.Namespace(samples_per_plugin={metadata.PLUGIN_NAME: cap})
    return _client({root: None}, logdir=root, flags=flags, cap=cap)


def test_a_user_cap_that_still_samples_is_reported_per_series(tmp_path):
    root = str(tmp_path)
    writer = SummaryWriter(os.path.join(root, "long"))
    for step in range(0, 400, 10):  # 40 logged kernels; smoothness only at 10 of them
        summaries = [summary.tensor_summary(metadata.KERNELS, LAYER, np.full((8, 3, 3, 3), step, np.float32))]
        if step % 40 == 0:
            summaries.append(summary.tensor_summary(metadata.SMOOTHNESS, LAYER, np.ones(2)))
        summary.write(writer, summaries, step)
    writer.close()
    client = _sampled_client(root, 12)
    (run,) = client.get(wsgi_url("runs/list")).get_json()["runs"]
    entry = run["layers"][0]["kinds"]
    assert entry[metadata.KERNELS]["sampled"]["kept"] == 12
    # the reservoir always keeps the last step; the first may be dropped, so the count is a lower bound
    assert 12 < entry[metadata.KERNELS]["sampled"]["logged"] <= 40
    assert "sampled" not in entry[metadata.SMOOTHNESS]  # 10 logged, all kept
    assert [(s["kind"], s["view"]) for s in run["sampled"]] == [(metadata.KERNELS, "filters")]
    steps = client.get(wsgi_url("runs/steps", run="long", kind=metadata.KERNELS, layer=LAYER))
    assert steps.get_json()["sampled"] == entry[metadata.KERNELS]["sampled"]
    # every kept step reads its own value
    for step in steps.get_json()["steps"]:
        answer = client.get(wsgi_url("filters/kernels", run="long", layer=LAYER, step=step))
        data = np.frombuffer(base64.b64decode(answer.get_json()["data"]), "<f4")
        assert np.all(data == step)
    # keeping every step (the plugin's default, 0): nothing is sampled, nothing reported
    (run,) = _sampled_client(root, 0).get(wsgi_url("runs/list")).get_json()["runs"]
    assert run["sampled"] == [] and "sampled" not in run["layers"][0]["kinds"][metadata.KERNELS]


BIG_STEPS = 34  # x 8 MiB: 272 MiB of blobs and as much of tensors, each series over the 256 MiB gRPC limit
BIG_BYTES = 8 << 20


def _big_blob(step: int) -> bytes:
    return np.random.default_rng(step).bytes(BIG_BYTES)


def _big_kernels(step: int) -> np.ndarray:
    return np.random.default_rng(1000 + step).standard_normal((512, 256, 4, 4), dtype=np.float32)  # 8 MiB


@pytest.mark.slow
def test_a_series_over_the_data_servers_message_limit_is_served_step_by_step(tmp_path):
    """With payloads in the events, a 272 MiB series cannot cross the Rust data server's 256 MiB gRPC
    message (the view answered 503 on every request); with the side file its events are a few KB."""
    root = str(tmp_path)
    writer = SummaryWriter(os.path.join(root, "big"))
    for step in range(BIG_STEPS):
        summary.write(
            writer,
            [
                summary.blob_summary(metadata.ACTIVATIONS, LAYER, [_big_blob(step)]),
                summary.tensor_summary(metadata.KERNELS, LAYER, _big_kernels(step)),
            ],
            step,
        )
    writer.close()
    folder = os.path.join(root, "big")
    (side_name,) = [n for n in os.listdir(folder) if n.startswith(assets.PREFIX)]
    (events,) = [n for n in os.listdir(folder) if "tfevents" in n]
    assert os.path.getsize(os.path.join(folder, side_name)) > 2 * (256 << 20)
    assert os.path.getsize(os.path.join(folder, events)) < 100_000
    with serving(root, ["big"], series=("big", metadata.ACTIVATIONS, LAYER, BIG_STEPS)) as base:
        for step in (0, 17, BIG_STEPS - 1):
            status, body = http_get(
                api_url(
                    base, "runs/image", run="big", kind=metadata.ACTIVATIONS, layer=LAYER, step=step, index=0
                )
            )
            assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(_big_blob(step)).digest()
            status, body = http_get(api_url(base, "filters/kernels", run="big", layer=LAYER, step=step))
            assert status == 200, body[:300]
            answer = json.loads(body)
            assert answer["steps"] == [step] and answer["shape"] == [512, 256, 4, 4]
            values = np.frombuffer(base64.b64decode(answer["data"]), "<f4").reshape(answer["shape"])
            assert np.array_equal(values, _big_kernels(step))
