"""The FastAPI application factory: ``create_app(settings)``.

Why a factory: nothing is built at import time, so tests build isolated apps against their own
databases, and uvicorn workers build theirs from the environment (:func:`app_from_env`). The app keeps no
state between requests beyond a pool of read-only database connections, so several workers or machines
can serve one database.

Cross-cutting behaviour lives here as one small ASGI middleware (cheaper than Starlette's
``BaseHTTPMiddleware`` on every request): security headers, a cap on the query-string size, the
"every page also answers as JSON" rule (``/study/NCT05631717.json`` is ``/study/NCT05631717`` with
``Accept: application/json``), the ``Host`` check (the header is never trusted for links: the scope's
host is replaced by the configured public base URL), ``Cache-Control: no-store`` on everything that may
carry patient input, and the "loading" page while the database is prepared in the background.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import AsyncIterator
from html import escape as html_escape
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from trialfinder import SearchError
from trialfinder.web.db import (
    BudgetExceeded,
    IndexFollower,
    Readiness,
    StorePool,
    StoreUnavailable,
    prepare_database,
)
from trialfinder.web.render import make_templates
from trialfinder.web.settings import Settings

log = logging.getLogger("trialfinder.web")

#: Longest accepted query string (bytes); single parameters are capped lower by the request parser
#: (1,000 characters each, documented as ``maxLength``: all of them at once, percent-encoded, fit).
MAX_QUERY_STRING = 49_152
#: Page suffixes that select a representation of an HTML page.
FORMAT_SUFFIXES = (".json", ".csv", ".ris", ".rss")
#: Pages that answer with a suffix (``/index.json`` is the home page).
PAGE_PATHS = frozenset({"/index", "/search", "/advanced", "/locations", "/conditions", "/api"})


def _csp(settings: Settings) -> str:
    tiles = urlsplit(settings.tile_url.replace("{s}", "a"))
    tile_origin = f"{tiles.scheme}://{tiles.netloc}" if tiles.scheme and tiles.netloc else ""
    if "{s}" in settings.tile_url and tiles.netloc:
        tile_origin += " " + f"{tiles.scheme}://*." + tiles.netloc.split(".", 1)[-1]
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data: {tile_origin}; connect-src 'self'; font-src 'self'; object-src 'none'; "
            "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


LOADING_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="3"><title>Loading – {site}</title><link rel="stylesheet" href="/static/app.css">
</head><body><main id="main" class="wrap"><h1>Getting ready…</h1>
<p role="status">{what} ({seconds} s so far). This page reloads by itself.</p></main></body></html>"""


def _public_origin(settings: Settings) -> tuple[str, bytes] | None:
    """(scheme, host[:port]) of the configured public base URL, or None."""
    if not settings.base_url:
        return None
    parts = urlsplit(settings.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL must be http(s)://host[:port], got {settings.base_url!r}")
    return parts.scheme, parts.netloc.encode("idna")


class EdgeMiddleware:
    """Security headers on every response, query-size cap, Host check and public origin, no-store for
    responses that may carry patient input, loading page, and format suffixes on page paths."""

    def __init__(self, app: Any, settings: Settings, readiness: Readiness | None = None) -> None:
        self.app = app
        self.settings = settings
        self.readiness = readiness
        self.origin = _public_origin(settings)
        csp = _csp(settings).encode()
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"permissions-policy", b"geolocation=(), camera=(), microphone=(), payment=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"content-security-policy", csp),
        ]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(scope.get("query_string", b"")) > MAX_QUERY_STRING:
            response = PlainTextResponse(f"query string too long (limit {MAX_QUERY_STRING} bytes)", 414)
            await self._send_with_headers(response, scope, receive, send)
            return
        host = next((v for k, v in scope.get("headers", ()) if k == b"host"), b"").decode("latin-1")
        if not self.settings.host_allowed(host):
            # never echoed: the value is the attacker's (DNS rebinding, cache poisoning)
            response = PlainTextResponse("unknown host: this server answers only for its configured names "
                                         "(TRIALFINDER_ALLOWED_HOSTS / --allowed-host)", 400)
            await self._send_with_headers(response, scope, receive, send)
            return
        scope = self._public_scope(scope)
        if self.readiness is not None and not self.readiness.ready.is_set() and not path.startswith("/static/"):
            await self._send_with_headers(self._loading(scope), scope, receive, send)
            return
        is_api = path.startswith("/api/")
        if not is_api and "." in path:
            for suffix in FORMAT_SUFFIXES:
                page = path[: -len(suffix)]
                if path.endswith(suffix) and (page in PAGE_PATHS or page.startswith("/study/")):
                    scope = dict(scope)
                    scope["path"] = "/" if page == "/index" else page
                    scope["raw_path"] = scope["path"].encode()
                    scope.setdefault("state", {})
                    scope["state"] = {**scope["state"], "format": suffix[1:]}
                    break
        static = path.startswith("/static/")
        # anything with a query string or a body may carry what a patient typed (a condition, a place,
        # an age, a note), and errors may repeat it: none of that may be kept by a cache
        private = bool(scope.get("query_string")) or scope.get("method") not in ("GET", "HEAD")
        cache = b"public, max-age=86400" if static else b"no-cache"
        cors = is_api
        head = scope.get("method") == "HEAD"
        if head:  # answered as GET without the body (monitors and link checkers use HEAD)
            scope = {**scope, "method": "GET"}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in names)
                if private or message.get("status", 200) >= 400:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                elif b"cache-control" not in names:
                    headers.append((b"cache-control", cache))
                if cors:
                    headers.append((b"access-control-allow-origin", b"*"))
                if b"vary" not in names and not path.startswith("/static/"):
                    headers.append((b"vary", b"Accept"))
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _public_scope(self, scope: dict) -> dict:
        """The scope with its host (and scheme) replaced by the public origin: every URL the app builds
        from the request (``request.base_url``: RSS links, the API page) is then the configured one, or
        the address this server accepted the connection on, and never the client's ``Host``."""
        if self.origin is not None:
            scheme, netloc = self.origin
        else:
            server = scope.get("server") or ("127.0.0.1", 80)
            host = str(server[0]) if server[0] else "127.0.0.1"
            host = f"[{host}]" if ":" in host else host
            default = 443 if scope.get("scheme") == "https" else 80
            netloc = (host if not server[1] or server[1] == default else f"{host}:{server[1]}").encode()
            scheme = scope.get("scheme", "http")
        headers = [(k, v) for k, v in scope.get("headers", ()) if k != b"host"]
        headers.append((b"host", netloc))
        return {**scope, "headers": headers, "scheme": scheme}

    def _loading(self, scope: dict) -> Response:
        readiness = self.readiness
        assert readiness is not None  # noqa: S101 - only called when set
        seconds = int(time.monotonic() - readiness.started)
        what = "Loading the bundled sample of real studies and building the search index"
        accept = next((v for k, v in scope.get("headers", ()) if k == b"accept"), b"").decode("latin-1")
        headers = {"Retry-After": "3", "Cache-Control": "no-store"}
        if scope["path"].startswith("/api/") or scope["path"] == "/healthz" or (
                "application/json" in accept and "text/html" not in accept):
            return PlainTextResponse(f"{what}; try again in a few seconds", 503, headers=headers)
        html = LOADING_HTML.format(site=html_escape(self.settings.site_name), what=what, seconds=seconds)
        return HTMLResponse(html, 503, headers=headers)

    async def _send_with_headers(self, response: Response, scope: dict, receive: Any, send: Any) -> None:
        response.headers.update({k.decode(): v.decode() for k, v in self.headers})
        if response.status_code >= 400:
            response.headers["cache-control"] = "no-store"
        await response(scope, receive, send)


def wants_api_error_text(request: Request) -> bool:
    """Errors of the ClinicalTrials.gov-compatible API are plain text, as ClinicalTrials.gov sends them."""
    return request.url.path.startswith("/api/v2/") or request.url.path == "/api/v2"


def is_other_api(request: Request) -> bool:
    """trialfinder's own JSON endpoints (``/api/...`` outside v2) keep FastAPI's JSON error bodies."""
    return request.url.path.startswith("/api/") and not wants_api_error_text(request)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the web application (pages, the API v2 compatible JSON API, static files) from ``settings``."""
    settings = settings or Settings()
    readiness = Readiness()
    _public_origin(settings)  # a malformed base URL fails here, not on the first request

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread
        from starlette.concurrency import run_in_threadpool

        anyio.to_thread.current_default_thread_limiter().total_tokens = max(1, settings.threads)
        owned = getattr(app.state, "pool", None) is None  # a pool may be handed in (tests, embedding)
        if owned and settings.prepare_in_background:
            # the server answers at once (a "loading" page) while the sample loads, with progress on
            # the terminal; the pool opens its connections lazily, after the first commit
            import sys

            from trialfinder.store import resolve_db

            app.state.pool = StorePool(resolve_db(settings.db), max(settings.pool_size, settings.threads),
                                       settings.request_budget_s)
            readiness.start(settings.db, settings.auto_load_sample, sys.stderr)
        elif owned:
            target = await run_in_threadpool(prepare_database, settings.db, load_sample=settings.auto_load_sample)
            app.state.pool = StorePool(target, max(settings.pool_size, settings.threads),
                                       settings.request_budget_s)
            readiness.ready.set()
        else:
            readiness.ready.set()
        if settings.warm_up and readiness.ready.is_set():
            await run_in_threadpool(_warm_up, app.state.pool)
        # another process or machine may write the database: follow it without waiting for a request
        follower = IndexFollower(app.state.pool, settings.follow_s) if settings.follow_s > 0 else None
        try:
            yield
        finally:
            if follower is not None:
                follower.stop()
            if owned:
                app.state.pool.close()
                app.state.pool = None

    app = FastAPI(
        title="trialfinder",
        version=_version(),
        description=("A self-hosted clinical-trial finder. `/api/v2` is compatible with the ClinicalTrials.gov "
                     "API v2: existing clients work by changing their base URL."),
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the API page at /api is served locally
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.readiness = readiness
    app.state.pool = None
    app.state.templates = make_templates()
    #: callables (request, store, view) -> HTML (markupsafe.Markup) shown on study pages below the
    #: eligibility criteria, e.g. the future "check my eligibility" form
    app.state.study_page_hooks = []
    #: the same, shown at the end of the study page (freshness and the history of changes)
    app.state.study_page_footer_hooks = []

    from trialfinder.web import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    _install_extensions(app)
    static_dir = str(resources.files("trialfinder.web") / "static")
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    _install_error_handlers(app)
    _install_openapi(app)
    app.add_middleware(EdgeMiddleware, settings=settings, readiness=readiness)
    return app


def _install_extensions(app: FastAPI) -> None:
    """Features that live in their own modules and mount themselves (routes plus study-page hooks)."""
    from trialfinder.web import live

    live.install(app)
    try:
        from trialfinder.web import eligibility
    except ModuleNotFoundError as exc:  # the eligibility feature is not part of this build
        if exc.name != "trialfinder.web.eligibility":
            raise
        return
    eligibility.install(app)


def _install_error_handlers(app: FastAPI) -> None:
    from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler

    from trialfinder.web.pages import error_page

    @app.exception_handler(SearchError)
    async def search_error(request: Request, exc: SearchError) -> Response:
        if wants_api_error_text(request):
            return PlainTextResponse(str(exc), 400)
        return error_page(request, 400, "Bad request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        messages = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body")]
            messages.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid value')}")
        text = "; ".join(messages) or "invalid request"
        if is_other_api(request):
            return await request_validation_exception_handler(request, exc)
        if wants_api_error_text(request):
            return PlainTextResponse(text, 400)
        return error_page(request, 400, "Bad request", text)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        headers = getattr(exc, "headers", None)
        if is_other_api(request) and exc.status_code != 405:
            return await http_exception_handler(request, exc)
        if exc.status_code == 405:
            # every method the path has (Starlette names only the first matching route's)
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
            if is_other_api(request):
                return await http_exception_handler(request, StarletteHTTPException(405, detail, headers))
            return PlainTextResponse(detail, 405, headers=headers)
        if wants_api_error_text(request):
            return PlainTextResponse(detail, exc.status_code, headers=headers)
        title = {404: "Not found"}.get(exc.status_code, "Error")
        return error_page(request, exc.status_code, title, detail)

    @app.exception_handler(BudgetExceeded)
    async def budget(request: Request, exc: BudgetExceeded) -> Response:
        text = "the request needed more work than one request may do; narrow the search and try again"
        if wants_api_error_text(request) or is_other_api(request):
            return PlainTextResponse(text, 503, headers={"Retry-After": "5"})
        return error_page(request, 503, "Too much work", text)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> Response:
        log.warning("database unavailable: %s", exc)
        text = "the database is unavailable; try again in a few seconds"
        if wants_api_error_text(request) or is_other_api(request):
            return PlainTextResponse(text, 503, headers={"Retry-After": "5"})
        response = error_page(request, 503, "Database unavailable", text)
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(queue.Empty)
    async def busy(request: Request, exc: queue.Empty) -> Response:
        return PlainTextResponse("server busy; try again", 503, headers={"Retry-After": "2"})


def _allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)  # PARTIAL: the path matches, the method does not
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _install_openapi(app: FastAPI) -> None:
    """The OpenAPI description, corrected where FastAPI's would not match the server (see web.openapi_fix)."""
    from trialfinder.web.openapi_fix import fix_openapi

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = fix_openapi(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _warm_up(pool: StorePool) -> None:
    """Load what the first requests would otherwise wait for (the gazetteer, page caches)."""
    from trialfinder import SearchRequest, search

    try:
        # outside the pool (no work budget): the first search of a process builds the study index,
        # which takes seconds on a registry-sized database
        from trialfinder.store import open_store

        with open_store(pool.db, readonly=True) as store:
            search(store, SearchRequest(near="London", page_size=1))
    except Exception as exc:  # noqa: BLE001 - a warm-up failure must not stop the server
        log.warning("warm-up search failed: %s", exc)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("trialfinder")
    except Exception:  # noqa: BLE001 - not installed: running from a checkout
        return "0"


def app_from_env() -> FastAPI:
    """The app for uvicorn worker processes: ``uvicorn --factory trialfinder.web.app:app_from_env``."""
    return create_app(Settings.from_env())
