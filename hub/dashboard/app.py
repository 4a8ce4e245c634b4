"""The dashboard application: routes, templates, static files, security headers, errors.

Public entry points: :func:`create_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from hub import admin
from hub.config import Config
from hub.dashboard import api, login, pages
from hub.dashboard.auth import Credentials, LoginThrottle, SessionCookies
from hub.dashboard.diff import shown
from hub.dashboard.guards import Caller, CsrfRejected, SignInRequired, api_caller
from hub.dashboard.metrics import metrics_registry
from hub.dashboard.state import Dashboard, dashboard_of
from hub.tables import utcnow

HERE = Path(__file__).parent

# No script runs on these pages; nothing may frame them; forms post only here.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'none'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_app(
    config: Config,
    db: Engine,
    credentials: Credentials,
    *,
    clock: Callable[[], datetime] = utcnow,
    session_key: bytes | None = None,
) -> FastAPI:
    """The dashboard over ``db`` for the syncs of ``config``, letting in ``credentials``.

    ``session_key`` signs session cookies (default: random per process, so a restart signs
    everyone out)."""
    # No OpenAPI pages: they would be the one thing served without signing in.
    app = FastAPI(title="crmhub dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["when"] = _when
    templates.env.filters["shown"] = shown
    templates.env.filters["seconds"] = _seconds
    app.state.dashboard = Dashboard(
        config=config,
        db=db,
        credentials=credentials,
        cookies=SessionCookies(session_key),
        throttle=LoginThrottle(),
        templates=templates,
        clock=clock,
    )
    registry = metrics_registry(db, config.syncs, clock)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(api.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics(_caller: Annotated[Caller, Depends(api_caller)]) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        """Liveness for a service manager or load balancer; tells nothing of the syncs."""
        return PlainTextResponse("ok")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            # Pages show customer data: no shared cache and no back-button copy after sign-out.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    _add_error_handlers(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        message = (
            "This form was not sent by this dashboard's own page (its CSRF token is missing or "
            "stale). Reload the page and try again."
        )
        return _error(request, 403, message)

    @app.exception_handler(admin.NotFoundError)
    async def not_found(request: Request, exc: admin.NotFoundError) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(admin.AdminError)
    async def refused(request: Request, exc: admin.AdminError) -> Response:
        return _error(request, 409, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            errors = [
                {"loc": list(error.get("loc", ())), "msg": error.get("msg", "")}
                for error in exc.errors()
            ]
            return JSONResponse({"detail": errors}, status_code=422)
        return _error(request, 422, "Some of what was sent is not valid; go back and check it.")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/metrics"


def _error(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    return dashboard_of(request).templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "message": message},
        status_code=status,
        headers=headers,
    )


def _when(value: str | datetime | None) -> str:
    """An ISO time as ``2026-01-31 12:00:05`` (UTC, as stored); '' for none."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text[:19].replace("T", " ")


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
