"""benchmarks/scale.py builds its logdirs through the callback's own code: every run has the series that
CNNVizCallback writes when driven by ``on_step_end(1..N)``, at the same steps (scalars included), and
``api/runs/list`` gives each series' last step, which is what the benchmark waits for when it times a load."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from logdirs import P, get_json
from support import plugin_client, read_logdir

from tb_cnnviz import metadata

SCALE = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"
STEPS = 200


def load_scale():
    spec = importlib.util.spec_from_file_location("scale_benchmark", SCALE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def steps_by_tag(logdir: str, plugin: str = "cnnviz") -> dict:
    return {
        run: {tag: series["steps"] for tag, series in tags.items()}
        for run, tags in read_logdir(logdir, plugin).items()
    }


def test_built_runs_have_the_callbacks_series_at_its_steps(tmp_path):
    scale = load_scale()  # it puts benchmarks/ on sys.path, where its modules are
    import scale_pool
    import scale_requests

    # one weight state, not pretrained: the series and steps do not depend on the weights
    manifest = scale.build_logdir(
        tmp_path / "built", "example", 2, STEPS, 1, "side", 0, lambda text: None, pretrain_steps=0
    )
    built = str(tmp_path / "built" / f"example-{STEPS}-side")

    # the callback itself on the same model and probe: a training forward (counted by the dead-filter
    # window; parameters frozen, no update) before each on_step_end
    model = scale_pool.make_model("example")
    images, labels = scale_pool.probe_images(32)
    viz = scale_pool.new_callback(model, str(tmp_path / "callback" / "run"), (images, labels))
    model.train().requires_grad_(False)
    for step in range(1, STEPS + 1):
        model(images[:2])
        viz.on_step_end(step)
    viz.close()

    expected = steps_by_tag(str(tmp_path / "callback"))["run"]
    assert expected["cnnviz/kernels/features.conv1"] == [1, 100, 200]  # a baseline, then every 100
    assert expected["cnnviz/activations/features"] == [1, 200]
    assert expected["cnnviz/dead_filters/features.conv5"] == [200]  # windows close at 200, no baseline
    assert expected["cnnviz/probe"] == [1]
    assert steps_by_tag(built) == {"run-000": expected, "run-001": expected}
    scalars = steps_by_tag(str(tmp_path / "callback"), "scalars")["run"]
    assert scalars and steps_by_tag(built, "scalars") == {"run-000": scalars, "run-001": scalars}
    # the manifest says the same (the benchmark's logged steps)
    logged = {}
    for key, steps in manifest["series"].items():
        kind, layer = key.split("|")
        logged[metadata.tag(kind, layer or None)] = steps
    assert logged == expected

    client, _ = plugin_client(built)
    listing = get_json(client, f"{P}/api/runs/list")
    wanted = scale_requests.expected_series(manifest, set(listing["kinds"]))
    assert len(wanted) == len(expected)  # every series written is one the plugin knows
    for run in listing["runs"]:
        listed = scale_requests.listed_last_steps(run)
        assert {key: listed.get(key) for key in wanted} == wanted
    assert sorted(run["name"] for run in listing["runs"]) == ["run-000", "run-001"]
