"""``PluginData.index``: the plugin's series listed from the data provider, refreshed one request at a time
and with each distinct plugin content parsed once (500 runs share ~21 contents: benchmarks/scale.py)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from tb_cnnviz import metadata
from tb_cnnviz.plugin import data as data_lib


def _content(kind: str, layer: str) -> bytes:
    return metadata.create_summary_metadata(kind, layer=layer).plugin_data.content


class Provider:
    """A data provider listing ``runs`` runs with kernels of three layers; ``gate`` holds a listing call."""

    def __init__(self, runs: int):
        self.runs = runs
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def list_tensors(self, ctx, *, experiment_id, plugin_name):
        if self.gate is not None:
            self.entered.set()
            self.gate.wait(10)
        return {
            f"run{r}": {
                f"cnnviz/kernels/conv{c}": SimpleNamespace(
                    plugin_content=_content(metadata.KERNELS, f"conv{c}"), max_step=r, max_wall_time=1.0
                )
                for c in range(3)
            }
            for r in range(self.runs)
        }

    def list_blob_sequences(self, ctx, *, experiment_id, plugin_name):
        return {}


def test_each_distinct_content_is_parsed_once(monkeypatch):
    calls = []
    real = metadata.parse_plugin_content
    monkeypatch.setattr(metadata, "parse_plugin_content", lambda raw: calls.append(raw) or real(raw))
    plugin_data = data_lib.PluginData(Provider(runs=50), index_ttl=0)
    index = plugin_data.index(None, "")
    assert len(index) == 150 and len(index.runs) == 50
    assert index.get("run7", metadata.KERNELS, "conv2").max_step == 7
    assert index.get("run7", metadata.KERNELS, "conv2").content["layer"] == "conv2"
    # twice (as written, and inside the schema check) per distinct content: three layers', not 150 series'
    assert len(calls) == 2 * 3
    plugin_data.index(None, "")  # a refresh parses nothing again
    assert len(calls) == 2 * 3


def test_one_refresh_at_a_time_the_others_answer_from_the_previous_index():
    provider = Provider(runs=2)
    plugin_data = data_lib.PluginData(provider, index_ttl=0)
    previous = plugin_data.index(None, "")
    provider.runs, provider.gate = 3, threading.Event()
    refreshed = []
    worker = threading.Thread(target=lambda: refreshed.append(plugin_data.index(None, "")))
    worker.start()
    assert provider.entered.wait(10)  # the worker is refreshing, held in the listing
    assert plugin_data.index(None, "") is previous  # answered at once, not a second refresh
    provider.gate.set()
    worker.join(10)
    assert refreshed and refreshed[0].runs == ["run0", "run1", "run2"]
    provider.gate = None
    assert plugin_data.index(None, "").runs == ["run0", "run1", "run2"]
