"""The TensorBoard plugin behind the "CNN Viz" tab (entry point ``cnnviz = tb_cnnviz.plugin:CNNVizLoader``).

TensorBoard imports this module at start-up, so it stays light: TensorBoard, numpy and
werkzeug only, never torch (an import error here would stop TensorBoard).

* :class:`CNNVizLoader` makes every logged step of the plugin's data the default: its
  ``fix_flags`` adds ``cnnviz=DEFAULT_SAMPLES`` (0: keep every step) to ``--samples_per_plugin``
  unless the user gave a value (``cnnviz=200`` caps it; ``api/runs/list`` then says which series
  were sampled). Without this TensorBoard keeps only 10 blob / 100 tensor samples of a third-party
  plugin. Keeping every step is affordable because the large payloads are in side files, not in
  the events TensorBoard holds in memory (``tb_cnnviz.assets``, docs/design.md "Storage").
* :class:`CNNVizPlugin` serves the frontend (``frontend/``: ``index.js`` and the ES modules
  it imports, from an allowlist of regular files) and the data routes ``api/<view>/<route>``
  (``tb_cnnviz.plugin.routes``, one module per view), reading only through ``context.data_provider``
  (``tb_cnnviz.plugin.data``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping
from typing import Any, Callable

from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_cnnviz import metadata
from tb_cnnviz.plugin.context import RouteContext
from tb_cnnviz.plugin.data import PluginData
from tb_cnnviz.plugin.http import error_response, method_not_allowed
from tb_cnnviz.plugin.routes import dispatch

logger = logging.getLogger(__name__)

# Samples per series kept by TensorBoard for the plugin's data unless the user says otherwise: 0 keeps
# every logged step (both loaders). The events of the large kinds hold ~150-byte references to the
# run's side file, so a kept step costs TensorBoard a few hundred bytes, not the payload (the old cap,
# 2000, left a reservoir sample of longer runs and still let a series outgrow the data server's
# 256 MiB message limit). Logdirs written before the side file keep their payloads in the events:
# for very long ones, --samples_per_plugin cnnviz=2000 bounds TensorBoard's memory as before.
DEFAULT_SAMPLES = 0
TAB_NAME = "CNN Viz"
ROUTE_PREFIX = "/data/plugin/" + metadata.PLUGIN_NAME + "/"
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
STATIC_SUBDIRS = ("views", "vendor")
STATIC_DEPTH = 3  # folders below the frontend root: views/<view>/<part>/x.js at most


def default_frontend_dir() -> str:
    """Folder of the installed frontend (package ``tb_cnnviz.frontend``, shipped as package data)."""
    from tb_cnnviz import frontend  # a docstring-only package: cheap

    return os.path.dirname(os.path.abspath(frontend.__file__))


def static_files(frontend_dir: str) -> dict[str, str]:
    """Allowlist ``relative URL path -> file`` of servable frontend files.

    Only regular files (no symlinks, no symlinked folders) with a known extension at the
    top of ``frontend_dir`` and anywhere in ``views/`` and ``vendor/`` (a view may be a
    folder of modules), at most ``STATIC_DEPTH`` folders deep: a request can name nothing
    else, so ``..``, absolute paths and links cannot walk out of the folder.
    """
    files: dict[str, str] = {}
    root = os.path.realpath(frontend_dir)
    folders = [("", root, 0)]
    while folders:
        prefix, folder, depth = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if (prefix or entry.name in STATIC_SUBDIRS) and depth < STATIC_DEPTH:
                    folders.append((relative + "/", entry.path, depth + 1))
            elif os.path.splitext(entry.name)[1] in STATIC_TYPES and entry.is_file(follow_symlinks=False):
                files[relative] = entry.path
    return files


class CNNVizPlugin(base_plugin.TBPlugin):
    """Serves the CNN Viz frontend and its data routes (see ``tb_cnnviz.plugin.routes``)."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(
        self,
        context: base_plugin.TBContext,
        *,
        frontend_dir: str | None = None,
        index_ttl: float | None = None,
    ):
        self._provider = getattr(context, "data_provider", None)
        kwargs = {} if index_ttl is None else {"index_ttl": index_ttl}
        kwargs.update(logdir=logdir_of(context), samples=samples_flag(context))
        self._data = PluginData(self._provider, **kwargs) if self._provider is not None else None
        self._frontend_dir = frontend_dir

    def get_plugin_apps(self) -> dict[str, Callable]:
        files = static_files(self._frontend_dir or default_frontend_dir())
        apps: dict[str, Callable] = {"/api/*": self._serve_api}
        for path in files:
            if "/" not in path:
                apps["/" + path] = self._static_app(files)
        for subdir in STATIC_SUBDIRS:
            apps[f"/{subdir}/*"] = self._static_app(files)
        if "/index.js" not in apps:
            logger.warning(
                "tb-cnnviz: the frontend's index.js is missing from %s",
                self._frontend_dir or default_frontend_dir(),
            )
        return apps

    def is_active(self) -> bool:
        # TensorBoard enables the tab when the data provider lists plugin "cnnviz"; never scan here.
        return False

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name=TAB_NAME)

    # ----------------------------------------------------------------- serving
    def _static_app(self, files: dict[str, str]) -> Callable:
        @wrappers.Request.application
        def serve(request: wrappers.Request) -> Any:
            refused = method_not_allowed(request)
            if refused is not None:
                return refused
            path = request.path
            relative = path[len(ROUTE_PREFIX) :] if path.startswith(ROUTE_PREFIX) else None
            filename = files.get(relative) if relative is not None else None
            if filename is None:
                return error_response(request, 404, f"no frontend file {str(relative)[:200]!r}")
            try:
                descriptor = os.open(filename, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                with os.fdopen(descriptor, "rb") as handle:
                    body = handle.read()
            except OSError:  # removed or replaced by a link since start-up
                return error_response(request, 404, f"no frontend file {relative!r}")
            return http_util.Respond(request, body, STATIC_TYPES[os.path.splitext(filename)[1]])

        return serve

    @wrappers.Request.application
    def _serve_api(self, request: wrappers.Request) -> Any:
        path = request.path
        relative = path[len(ROUTE_PREFIX) :] if path.startswith(ROUTE_PREFIX) else ""
        parts = relative[:-1].split("/") if relative.endswith("/") else relative.split("/")
        if len(parts) != 3 or parts[0] != "api" or not parts[1] or not parts[2]:
            return error_response(request, 404, "expected a path api/<view>/<route>")
        if self._data is None:
            return error_response(request, 503, "TensorBoard gave this plugin no data provider")
        env = RouteContext(
            ctx=plugin_util.context(request.environ),
            experiment_id=plugin_util.experiment_id(request.environ),
            data=self._data,
        )
        return dispatch(request, parts[1], parts[2], env)


def logdir_of(context: Any) -> str | dict | None:
    """TensorBoard's ``--logdir``, or ``--logdir_spec`` as ``{path: group name or None}`` (where the runs'
    side files are); None when neither is known."""
    logdir = getattr(context, "logdir", None)
    if logdir:
        return logdir
    spec = getattr(getattr(context, "flags", None), "logdir_spec", None)
    if not spec:
        return None
    try:
        from tensorboard.backend.event_processing import data_ingester

        return dict(data_ingester._parse_event_files_spec(spec)) or None
    except Exception:  # noqa: BLE001 - a private helper of TensorBoard's: without it, references say so
        logger.warning("tb-cnnviz: could not read --logdir_spec %r", spec, exc_info=True)
        return None


def samples_flag(context: Any) -> int | None:
    """``--samples_per_plugin cnnviz=N`` as TensorBoard got it (None when the flags do not say)."""
    samples = getattr(getattr(context, "flags", None), "samples_per_plugin", None)
    value = samples.get(metadata.PLUGIN_NAME) if isinstance(samples, Mapping) else None
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


class CNNVizLoader(base_plugin.TBLoader):
    """Loads :class:`CNNVizPlugin` and keeps every logged step of its data by default."""

    def fix_flags(self, flags: Any) -> None:
        """``--samples_per_plugin``: add ``cnnviz=DEFAULT_SAMPLES`` unless the user set ``cnnviz``.

        ``setdefault`` on the parsed dict (not ``parser.set_defaults``) so an explicit value
        wins and the user's entries for other plugins stay. Never raises: an error here would
        stop TensorBoard.
        """
        try:
            samples = getattr(flags, "samples_per_plugin", None)
            if isinstance(samples, MutableMapping):
                samples.setdefault(metadata.PLUGIN_NAME, DEFAULT_SAMPLES)
        except Exception:  # pragma: no cover - defensive: TensorBoard must start anyway
            logger.warning(
                "tb-cnnviz: could not set --samples_per_plugin %s=%d",
                metadata.PLUGIN_NAME,
                DEFAULT_SAMPLES,
                exc_info=True,
            )

    def load(self, context: base_plugin.TBContext) -> CNNVizPlugin:
        return CNNVizPlugin(context)
