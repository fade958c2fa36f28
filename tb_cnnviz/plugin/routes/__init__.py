"""The CNN Viz backend's JSON and PNG routes, one group per view of the UI.

Every route is ``GET api/<group>/<route>?...`` under ``/data/plugin/cnnviz/``. The groups are
the views of ``tb_cnnviz.kinds.VIEWS`` plus the shared ``runs`` group (listing, logged steps,
PNG blobs); each lives in ``routes/<group>.py`` and exports ``ROUTES = {route: handler}``.
Adding a view is a row in ``kinds.VIEWS`` and a module here: a view without its module fails
at import, so the table, the route groups and the frontend's views cannot drift apart.

Every request is validated: a missing or malformed argument is a 400, an unknown
run/layer/step/index is a 404, each with a JSON ``{"error": "..."}`` that names the
argument, the value and what was expected. Nothing a client sends can produce a 500: a
data-provider failure (a run deleted while it is served, an unreadable file) is a JSON 404
or 503, and an unexpected exception is logged server-side and answered with a short JSON
500 that never carries a traceback (tests/plugin/test_fuzz.py fuzzes every route).

Per-step routes answer a logged step exactly (404 naming the nearest otherwise); what they
add from other series logged on other schedules comes from the nearest (or last earlier)
logged step of that series, which the answer names. Per-filter series are steps x filters
and small; their JSON is built and gzipped once per version of the series (``Series.memo``).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable

from tensorboard import errors as tb_errors

from tb_cnnviz import kinds
from tb_cnnviz.plugin.context import RouteContext
from tb_cnnviz.plugin.http import HTTPError, Query, error_response, json_response, method_not_allowed

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Query, RouteContext], Any]
SHARED_GROUP = "runs"


def _load_groups() -> dict[str, dict[str, Handler]]:
    """``{group: {route: handler}}`` for ``runs`` and every view of the table, from ``routes/<group>.py``."""
    groups: dict[str, dict[str, Handler]] = {}
    for group in (SHARED_GROUP, *kinds.VIEWS):
        try:
            module = importlib.import_module(f"{__name__}.{group}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{group}":
                raise
            raise ImportError(
                f"view {group!r} of tb_cnnviz.kinds.VIEWS has no route module; expected {__name__}.{group}"
            ) from None
        routes = getattr(module, "ROUTES", None)
        if not isinstance(routes, dict) or not routes:
            raise ImportError(f"{module.__name__}: expected a non-empty dict ROUTES = {{route: handler}}")
        groups[group] = dict(routes)
    return groups


ROUTE_GROUPS: dict[str, dict[str, Handler]] = _load_groups()


def dispatch(request: Any, group: str, route: str, env: RouteContext) -> Any:
    """Run ``api/<group>/<route>``; client errors become 4xx JSON, provider failures 404/503 JSON.

    An unexpected exception (a bug) is logged with its traceback on the server and answered
    with a short JSON 500: a response never carries a traceback.
    """
    routes = ROUTE_GROUPS.get(group)
    if routes is None:
        return error_response(
            request, 404, f"unknown view {group[:100]!r}; expected one of {sorted(ROUTE_GROUPS)}"
        )
    handler = routes.get(route)
    if handler is None:
        return error_response(
            request,
            404,
            f"unknown route {route[:100]!r} of view {group[:100]!r}; expected one of {sorted(routes)}",
        )
    refused = method_not_allowed(request)
    if refused is not None:
        return refused
    try:
        result = handler(request, Query(request.args), env)
    except HTTPError as error:
        return error_response(request, error.status, error.message)
    except tb_errors.PublicError as error:  # raised by the data provider (e.g. a run removed meanwhile)
        return error_response(request, error.http_code, str(error)[:500])
    except Exception:  # noqa: BLE001 - a bug: log it here, never send a traceback to the browser
        logger.exception("tb-cnnviz: route api/%s/%s failed for %s", group, route, request.full_path[:500])
        return error_response(
            request, 500, f"internal error in api/{group}/{route}; the traceback is in TensorBoard's log"
        )
    if isinstance(result, dict):
        return json_response(request, result)
    return result
