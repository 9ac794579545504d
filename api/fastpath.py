"""Hot GET routes without FastAPI's per-request machinery, compiled from the route itself.

FastAPI re-derives, for every request, how each query parameter of a route and of its
dependencies is read and validated (``solve_dependencies``); on the warm
``GET /recommendations`` that was about half of the app's CPU per request (cProfile,
docs/benchmarks.md). :func:`compile_route` walks the route's ``Dependant`` tree once and keeps,
for each parameter, FastAPI's own validator (the same ``ModelField``, so the same coercions,
constraints and error messages) and whether it is a list; per request it only splits the query
string, validates each value and calls the dependencies and the endpoint.

The route stays declared with FastAPI (OpenAPI schema, docs), and requests that the compiled
form cannot take go to FastAPI unchanged: a route with anything but query parameters, the
``Request`` and ``async`` dependencies (a body, headers, ``yield``, security scopes) is not
compiled, and ``app.dependency_overrides`` sends every request through FastAPI. Errors are
answered by the app's own exception handlers (the same 422 / 503 bodies).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from copy import deepcopy
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi._compat import ModelField, field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_missing_field_error
from fastapi.exceptions import RequestValidationError
from fastapi.params import Param
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Param:
    field: ModelField
    name: str
    alias: str
    sequence: bool
    loc: tuple[str, str]
    required: bool


@dataclass(frozen=True)
class _Call:
    """A dependency or the endpoint: its query parameters and sub-dependencies."""

    func: Callable[..., Any]
    params: tuple[_Param, ...]
    deps: tuple[tuple[str, _Call], ...]
    request_name: str | None


def _param(field: ModelField) -> _Param | None:
    info = field.field_info
    if not isinstance(info, Param) or info.validation_alias is not None:
        return None
    alias = field.alias or field.name
    return _Param(
        field=field,
        name=field.name,
        alias=alias,
        sequence=field_annotation_is_sequence(info.annotation),
        loc=(info.in_.value, alias),
        required=info.is_required(),
    )


def _compile(dep: Dependant) -> _Call | None:
    unsupported = (
        dep.path_params,
        dep.header_params,
        dep.cookie_params,
        dep.body_params,
        dep.websocket_param_name,
        dep.http_connection_param_name,
        dep.response_param_name,
        dep.background_tasks_param_name,
        dep.security_scopes_param_name,
        dep.own_oauth_scopes,
    )
    call = dep.call
    if (
        any(unsupported)
        or call is None
        or not inspect.iscoroutinefunction(call)
        or not dep.use_cache
    ):
        return None  # a sync or yield dependency, or one that reads more than the query
    params = [_param(f) for f in dep.query_params]
    subs = [(d.name, _compile(d)) for d in dep.dependencies]
    if any(p is None for p in params) or any(s is None or n is None for n, s in subs):
        return None
    return _Call(
        func=call,
        params=tuple(p for p in params if p is not None),
        deps=tuple((n, s) for n, s in subs if n is not None and s is not None),
        request_name=dep.request_param_name,
    )


def _validate(p: _Param, raw: list[str] | None, values: dict[str, Any]) -> tuple[Any, list]:
    """FastAPI's reading of one query parameter (request_params_to_args), precompiled."""
    if not raw:
        if p.required:
            return None, [get_missing_field_error(loc=p.loc)]
        value = deepcopy(p.field.default)
        if not p.field.field_info.validate_default:
            return value, []
    else:
        value = raw if p.sequence else raw[-1]
    return p.field.validate(value, values, loc=p.loc)


class CompiledRoute:
    """The ASGI handler of one compiled route (see the module docstring)."""

    def __init__(self, route: APIRoute, root: _Call) -> None:
        self.route, self.root = route, root

    async def _solve(
        self,
        call: _Call,
        query: Mapping[str, list[str]],
        request: Request,
        errors: list[Any],
        cache: dict[Callable[..., Any], Any],
    ) -> tuple[bool, Any]:
        values: dict[str, Any] = {}
        ok = True
        for name, sub in call.deps:
            if sub.func in cache:
                values[name] = cache[sub.func]
                continue
            sub_ok, value = await self._solve(sub, query, request, errors, cache)
            if sub_ok:
                values[name] = cache[sub.func] = value
            ok = ok and sub_ok
        for p in call.params:
            value, errs = _validate(p, query.get(p.alias), values)
            if errs:
                errors.extend(errs)
                ok = False
            else:
                values[p.name] = value
        if not ok:
            return False, None
        if call.request_name is not None:
            values[call.request_name] = request
        return True, await call.func(**values)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(
            scope["query_string"].decode("latin-1"), keep_blank_values=True
        ):
            query.setdefault(key, []).append(value)
        request = Request(scope, receive, send)
        errors: list[Any] = []
        try:
            ok, response = await self._solve(self.root, query, request, errors, {})
            if not ok:
                raise RequestValidationError(errors)
            if not isinstance(response, Response):
                raise TypeError(f"{self.route.path}: a compiled route must return a Response")
        except Exception as exc:  # the app's own handlers answer, as behind FastAPI's router
            handler = _handler_for(scope, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler_for(scope: Scope, exc: Exception) -> Callable[..., Any] | None:
    handlers = getattr(scope.get("app"), "exception_handlers", {})
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]  # type: ignore[no-any-return]
    return None


def compile_route(route: APIRoute) -> CompiledRoute | None:
    """The compiled handler of ``route``, or None when it needs FastAPI (logged)."""
    root = _compile(route.dependant) if route.response_field is None else None
    if root is None:
        log.info("%s %s is served by FastAPI (not compilable)", route.methods, route.path)
        return None
    return CompiledRoute(route, root)


def compile_routes(app: FastAPI, wanted: set[tuple[str, str]]) -> dict[str, CompiledRoute]:
    """``{path: handler}`` for the ``(method, path)`` routes of ``app`` that compile (only
    routes declared for that one method: the path then needs no method dispatch)."""
    out: dict[str, CompiledRoute] = {}
    for path, route in _api_routes(app):
        methods = route.methods or set()
        if len(methods) == 1 and (next(iter(methods)), path) in wanted and path not in out:
            compiled = compile_route(route)
            if compiled is not None:
                out[path] = compiled
    return out


def _api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """Every APIRoute with its full path, included routers flattened (FastAPI >= 0.16x keeps
    them nested)."""
    contexts = getattr(fastapi_routing, "iter_route_contexts", None)
    if contexts is None:
        return [(r.path, r) for r in app.routes if isinstance(r, APIRoute)]
    return [(c.path, c.route) for c in contexts(app.routes) if isinstance(c.route, APIRoute)]
