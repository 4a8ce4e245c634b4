"""Signing in and out of the dashboard.

Public entry points: :data:`router` (``GET``/``POST /login``, ``POST /logout``) and
:func:`safe_next`.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.dashboard.auth import Session
from hub.dashboard.guards import CsrfRejected, form_session
from hub.dashboard.state import dashboard_of

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site (``//host``,
    ``/\\host`` and absolute URLs are open redirects, and browsers drop tabs and newlines, so
    ``/\t/host`` is one too)."""
    if not target or any(char.isspace() or not char.isprintable() for char in target):
        return "/"
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next_path: Annotated[str, Query(alias="next")] = "/") -> Response:
    dashboard = dashboard_of(request)
    session = dashboard.cookies.read(request)
    if session is not None and session.signed_in:
        return RedirectResponse(safe_next(next_path), status_code=303)
    session = session or Session.anonymous()
    return _login_page(request, session, next_path=safe_next(next_path))


@router.post("/login")
def login(
    request: Request,
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    dashboard = dashboard_of(request)
    session = dashboard.cookies.read(request)
    # The login form carries the token of the anonymous session its page started, so another
    # site cannot sign a browser in to an account of its choosing.
    if session is None or not session.csrf_matches(csrf_token):
        raise CsrfRejected
    client = request.client.host if request.client else "unknown"
    wait = dashboard.throttle.wait_seconds(client)
    if wait > 0:
        seconds = math.ceil(wait)
        return _login_page(
            request,
            session,
            next_path=safe_next(next_path),
            error=f"Too many wrong passwords; try again in {seconds} s.",
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
    if not dashboard.credentials.password_matches(password):
        dashboard.throttle.failed(client)
        return _login_page(
            request,
            session,
            next_path=safe_next(next_path),
            error="Wrong password.",
            status_code=401,
        )
    dashboard.throttle.succeeded(client)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    dashboard.cookies.write(response, request, Session.signed_in_now())
    return response


@router.post("/logout")
def logout(request: Request, _session: Annotated[Session, Depends(form_session)]) -> Response:
    response = RedirectResponse("/login", status_code=303)
    dashboard_of(request).cookies.clear(response)
    return response


def _login_page(
    request: Request,
    session: Session,
    *,
    next_path: str,
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    dashboard = dashboard_of(request)
    response = dashboard.templates.TemplateResponse(
        request,
        "login.html",
        {"csrf_token": session.csrf_token, "next_path": next_path, "error": error},
        status_code=status_code,
        headers=headers,
    )
    dashboard.cookies.write(response, request, session)
    return response
