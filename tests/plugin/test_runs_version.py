"""``api/runs/version``: the cheap check the tab polls while it is open (a new step, a new run and a
deleted run each change the version; nothing else does) and the ``version``/``last_step`` of ``runs/list``."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
from logdirs import P, get_json
from support import plugin_client, write_run

from tb_cnnviz import metadata, summary


def _kernels(step: int) -> list:
    weights = np.full((2, 1, 3, 3), float(step), np.float32)
    return [summary.tensor_summary(metadata.KERNELS, "conv1", weights)]


def test_version_changes_with_a_new_step_a_new_run_and_a_deleted_run_only(tmp_path):
    root = str(tmp_path)
    write_run(root, "a", {1: _kernels(1), 5: _kernels(5)})
    write_run(root, "b", {3: _kernels(3)})
    client, multiplexer = plugin_client(root)
    listing = get_json(client, f"{P}/api/runs/list")
    first = get_json(client, f"{P}/api/runs/version")
    assert first == {"version": listing["version"], "runs": {"a": 5, "b": 3}}
    assert [(run["name"], run["last_step"]) for run in listing["runs"]] == [("a", 5), ("b", 3)]
    multiplexer.Reload()  # nothing new on disk: the same version
    assert get_json(client, f"{P}/api/runs/version") == first

    write_run(root, "a", {9: _kernels(9)})  # the run goes on training (a second event file)
    multiplexer.Reload()
    grown = get_json(client, f"{P}/api/runs/version")
    assert grown["runs"] == {"a": 9, "b": 3} and grown["version"] != first["version"]
    assert get_json(client, f"{P}/api/runs/list")["version"] == grown["version"]

    write_run(root, "c", {2: _kernels(2)})
    multiplexer.AddRunsFromDirectory(root)
    multiplexer.Reload()
    added = get_json(client, f"{P}/api/runs/version")
    assert added["runs"] == {"a": 9, "b": 3, "c": 2} and added["version"] not in (
        first["version"],
        grown["version"],
    )

    shutil.rmtree(os.path.join(root, "b"))
    multiplexer.Reload()  # TensorBoard notices the folder is gone and drops the run
    deleted = get_json(client, f"{P}/api/runs/version")
    assert deleted["runs"] == {"a": 9, "c": 2}
    assert deleted["version"] not in (first["version"], grown["version"], added["version"])


def test_version_answer_stays_small(tmp_path):
    """What the tab fetches every few seconds: a few bytes per run, however many layers and kinds."""
    root = str(tmp_path)
    for i in range(10):
        many = [
            summary.tensor_summary(metadata.KERNELS, f"layer{j}", np.zeros((2, 1, 3, 3), np.float32))
            for j in range(50)
        ]
        write_run(root, f"run{i}", {100: many})
    client, _ = plugin_client(root)
    body = client.get(f"{P}/api/runs/version").data
    listing = client.get(f"{P}/api/runs/list").data
    answer = json.loads(body)
    assert len(answer["runs"]) == 10
    assert len(body) < 400 < len(listing) / 10, (len(body), len(listing))


def test_runs_list_is_built_once_per_version(tmp_path, monkeypatch):
    """A poll or a reload while nothing was logged answers the stored listing; a new step rebuilds it."""
    from tb_cnnviz.plugin.routes import runs

    root = str(tmp_path)
    write_run(root, "a", {1: _kernels(1)})
    client, multiplexer = plugin_client(root)
    built = []
    entry = runs._run_entry
    monkeypatch.setattr(runs, "_run_entry", lambda env, run: built.append(run) or entry(env, run))
    first = get_json(client, f"{P}/api/runs/list")
    assert get_json(client, f"{P}/api/runs/list") == first and built == ["a"]
    write_run(root, "a", {4: _kernels(4)})
    multiplexer.Reload()
    grown = get_json(client, f"{P}/api/runs/list")
    assert built == ["a", "a"] and grown["runs"][0]["last_step"] == 4 and grown["version"] != first["version"]
