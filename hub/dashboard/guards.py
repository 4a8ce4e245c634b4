"""The FastAPI dependencies that let a request in, or turn it away.

Public entry points: :func:`page_session`, :func:`form_session`, :func:`api_caller`,
:func:`api_writer`, :class:`Caller`, :class:`SignInRequired`, :class:`CsrfRejected`.

Pages want a signed-in session and send a browser without one to the login page; every form
they post carries the session's CSRF token. The JSON API takes the same session or
``Authorization: Bearer`` with ``CRMHUB_API_TOKEN``; a browser session that changes something
through the API sends its CSRF token in ``X-CSRF-Token`` (pages carry it in a meta tag).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException
from starlette.requests import Request

from hub.dashboard.auth import TOKEN_ENV, Session, bearer_token
from hub.dashboard.state import dashboard_of


class SignInRequired(Exception):
    """A page asked for without a signed-in session; ``next_path`` is where to go after."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A form posted without the session's CSRF token."""


def page_session(request: Request) -> Session:
    """The signed-in session of a page request."""
    session = dashboard_of(request).cookies.read(request)
    if session is None or not session.signed_in:
        # A form posted after the session ended cannot be replayed after signing in.
        target = request.url.path if request.method == "GET" else "/"
        if request.method == "GET" and request.url.query:
            target += f"?{request.url.query}"
        raise SignInRequired(target)
    return session


async def form_session(
    request: Request, session: Annotated[Session, Depends(page_session)]
) -> Session:
    """The signed-in session of a posted form, whose ``csrf_token`` field must be its own."""
    form = await request.form()
    token = form.get("csrf_token")
    if not isinstance(token, str) or not session.csrf_matches(token):
        raise CsrfRejected
    return session


@dataclass(frozen=True)
class Caller:
    """Who called the API: a holder of the API token, or a signed-in browser."""

    kind: Literal["token", "session"]
    session: Session | None = None


def api_caller(request: Request) -> Caller:
    dashboard = dashboard_of(request)
    token = bearer_token(request)
    if token is not None:
        # A wrong token is refused, never retried as a session: the caller meant the token.
        if token and dashboard.credentials.token_matches(token):
            return Caller("token")
        raise HTTPException(
            401,
            "the bearer token is not the dashboard's API token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    session = dashboard.cookies.read(request)
    if session is not None and session.signed_in:
        return Caller("session", session)
    raise HTTPException(
        401,
        f"sign in to the dashboard, or send Authorization: Bearer with the token in {TOKEN_ENV}",
        headers={"WWW-Authenticate": "Bearer"},
    )


def api_writer(request: Request, caller: Annotated[Caller, Depends(api_caller)]) -> Caller:
    """An API caller allowed to change something."""
    if caller.session is not None and not caller.session.csrf_matches(
        request.headers.get("x-csrf-token")
    ):
        raise HTTPException(403, "a signed-in browser changes data only with its X-CSRF-Token")
    return caller
