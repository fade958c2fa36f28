"""The table of kinds, the route groups and the frontend's views agree: a view is one row of
``tb_cnnviz.kinds.VIEWS``, one route module ``tb_cnnviz/plugin/routes/<view>.py`` and one frontend
module ``frontend/views/<view>.js`` (or folder ``frontend/views/<view>/``)."""

from __future__ import annotations

import importlib
import os

import pytest

from tb_cnnviz import kinds
from tb_cnnviz.plugin import default_frontend_dir, routes


def test_route_groups_are_the_views_of_the_table_and_runs():
    assert list(routes.ROUTE_GROUPS) == ["runs", *kinds.VIEWS]
    assert [view["name"] for view in kinds.table()["views"]] == list(kinds.VIEWS)
    for group, table in routes.ROUTE_GROUPS.items():
        module = importlib.import_module(f"tb_cnnviz.plugin.routes.{group}")
        assert table == module.ROUTES and table and all(callable(handler) for handler in table.values())


def test_every_route_module_is_a_group():
    folder = os.path.dirname(routes.__file__)
    modules = {name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py"}
    assert modules == set(routes.ROUTE_GROUPS)


def test_every_view_of_the_table_has_a_frontend_module():
    views = os.path.join(default_frontend_dir(), "views")
    missing = [
        name
        for name in kinds.VIEWS
        if not os.path.isfile(os.path.join(views, f"{name}.js"))
        and not os.path.isdir(os.path.join(views, name))
    ]
    assert not missing, f"views without frontend/views/<name>.js or frontend/views/<name>/: {missing}"


def test_a_view_without_a_route_module_fails_at_import(monkeypatch):
    rows = dict(kinds.VIEWS)
    rows["nowhere"] = kinds.View("nowhere", "Nowhere", ("kernels",), "")
    monkeypatch.setattr(kinds, "VIEWS", rows)
    with pytest.raises(ImportError, match="view 'nowhere' of tb_cnnviz.kinds.VIEWS has no route module"):
        routes._load_groups()
