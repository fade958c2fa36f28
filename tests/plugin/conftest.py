"""Fixtures of the plugin's route tests: each logdir is written once per session and served by one client.

The logdirs are described in ``tests/plugin/logdirs.py``; the tests only read them.
"""

from __future__ import annotations

import os

import pytest
from logdirs import CALLBACK_RUN, make_basic_logdir, make_damaged_logdir, make_views_logdir
from support import plugin_client, read_logdir


@pytest.fixture(scope="session")
def basic_logdir(tmp_path_factory) -> dict:
    """``{"root": ..., "logged": {step: conv1 weights}}`` of the basic logdir."""
    return make_basic_logdir(str(tmp_path_factory.mktemp("cnnviz_logdir")))


@pytest.fixture(scope="session")
def basic_client(basic_logdir):
    return plugin_client(basic_logdir["root"])[0]


@pytest.fixture(scope="session")
def views_logdir(tmp_path_factory) -> str:
    return make_views_logdir(str(tmp_path_factory.mktemp("views_logdir")))


@pytest.fixture(scope="session")
def views_client(views_logdir):
    return plugin_client(views_logdir)[0]


@pytest.fixture(scope="session")
def views_logged(views_logdir) -> dict:
    """What the callback run of the views logdir holds, read without the plugin."""
    return read_logdir(os.path.join(views_logdir, CALLBACK_RUN))["."]


@pytest.fixture(scope="session")
def damaged(tmp_path_factory) -> dict:
    return make_damaged_logdir(str(tmp_path_factory.mktemp("damaged_logdir")))
