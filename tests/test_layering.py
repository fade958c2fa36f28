"""The layering rules of docs/design.md, checked by importing modules in a fresh interpreter.

An import error (or a heavy import) in the plugin's entry-point module would crash or
slow TensorBoard's start-up for every user, so that module is checked hardest.
"""

import json
import pkgutil
import subprocess
import sys

import pytest

import tb_cnnviz.analysis


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(json.loads(output.strip().splitlines()[-1]))


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_analysis_imports_neither_tensorboard_nor_lightning():
    names = [f"tb_cnnviz.analysis.{info.name}" for info in pkgutil.iter_modules(tb_cnnviz.analysis.__path__)]
    assert len(names) >= 5
    modules = top_level(imported_after("; ".join(f"import {name}" for name in names)))
    assert "torch" in modules  # the check itself works
    assert not modules & {"tensorboard", "lightning", "pytorch_lightning", "tensorflow"}


@pytest.mark.parametrize(
    "module", ["tb_cnnviz.plugin", "tb_cnnviz.metadata", "tb_cnnviz.summary", "tb_cnnviz"]
)
def test_plugin_side_imports_no_torch(module):
    modules = top_level(imported_after(f"import {module}"))
    assert "tb_cnnviz" in modules
    assert "torch" not in modules and "torchvision" not in modules


@pytest.mark.parametrize(
    "module", ["tb_cnnviz.kinds", "tb_cnnviz.kind_schema", "tb_cnnviz.view_hints", "tb_cnnviz.metadata"]
)
def test_the_table_of_kinds_and_the_metadata_import_neither_torch_nor_numpy(module):
    """All are read by the plugin, the callback and the command line alike: the standard library
    and TensorBoard's protos only."""
    modules = top_level(imported_after(f"import {module}"))
    assert "tb_cnnviz" in modules
    assert not modules & {"torch", "torchvision", "numpy", "captum", "openTSNE", "PIL", "matplotlib"}


def test_the_callbacks_import_no_lightning():
    modules = top_level(imported_after("import tb_cnnviz.callbacks"))
    assert "torch" in modules and not modules & {"lightning", "pytorch_lightning"}


def test_tensorboard_entry_point_loads_the_plugin_loader():
    code = (
        "from importlib.metadata import entry_points; from tensorboard.plugins import base_plugin;"
        "(ep,) = [e for e in entry_points(group='tensorboard_plugins') if e.name == 'cnnviz'];"
        "loader = ep.load(); assert issubclass(loader, base_plugin.TBLoader), loader; print(ep.value)"
    )
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert output.strip() == "tb_cnnviz.plugin:CNNVizLoader"


def test_callbacks_are_installed_inside_the_package_only():
    code = (
        "import importlib.util as u; print(u.find_spec('callbacks') is None, u.find_spec('frontend') is None)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/"
    ).stdout
    assert output.split() == ["True", "True"]
