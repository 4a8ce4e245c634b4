"""Who may use the dashboard: the admin's password, the API token, sessions and CSRF tokens.

Public entry points: :func:`load_credentials`, :func:`hash_password`, :class:`Credentials`,
:class:`Session`, :class:`SessionCookies`, :class:`LoginThrottle`, :func:`same_secret`,
:func:`bearer_token`, and the environment variable names :data:`PASSWORD_ENV` and
:data:`TOKEN_ENV`.

The admin's password is checked against an Argon2 hash: the one in the config
(``dashboard.admin_password_hash``), or one made at start-up from ``CRMHUB_ADMIN_PASSWORD``,
so a guess costs the same either way and no comparison leaks timing. The session is a signed
cookie (HttpOnly, SameSite=Lax, Secure over https) holding only whether its holder signed in
and its CSRF token; the signing key lives in the process, so a restart signs everyone out.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from hub.config import Config, ConfigError

# Names of environment variables, not secrets.
PASSWORD_ENV = "CRMHUB_ADMIN_PASSWORD"  # noqa: S105
TOKEN_ENV = "CRMHUB_API_TOKEN"  # noqa: S105
SESSION_COOKIE = "crmhub_session"
SESSION_SECONDS = 12 * 3600
# Shorter tokens are guessable online; the API token is compared, not hashed.
MIN_TOKEN_LENGTH = 16
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` for ``dashboard.admin_password_hash``; ValueError
    for a password too short to keep a guesser out."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the admin password must be at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def same_secret(given: str, expected: str) -> bool:
    """Whether two secrets are equal, in time that does not depend on where they differ."""
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Credentials:
    """What the dashboard accepts: the admin password (as an Argon2 hash) and, when set, the
    API token for ``Authorization: Bearer``."""

    password_hash: str = field(repr=False)
    api_token: str | None = field(default=None, repr=False)

    def password_matches(self, candidate: str) -> bool:
        try:
            return _hasher.verify(self.password_hash, candidate)
        except (VerificationError, InvalidHashError):
            return False

    def token_matches(self, candidate: str) -> bool:
        return self.api_token is not None and same_secret(candidate, self.api_token)


def load_credentials(config: Config, environ: Mapping[str, str] = os.environ) -> Credentials:
    """The credentials ``crmhub serve`` runs with, or a :class:`ConfigError` saying what to set.

    Exactly one source of the password: a hash in the config and a password in the
    environment at once would leave a person guessing which one the dashboard takes.
    """
    configured = config.dashboard.admin_password_hash
    from_env = environ.get(PASSWORD_ENV) or None
    if configured and from_env:
        raise ConfigError(
            config.source,
            f"both dashboard.admin_password_hash and {PASSWORD_ENV} are set; keep one",
            key_path="dashboard.admin_password_hash",
        )
    if not configured and not from_env:
        raise ConfigError(
            config.source,
            f"the dashboard needs an admin password: set {PASSWORD_ENV}, or put the hash that "
            "`crmhub serve --hash-password` prints under dashboard.admin_password_hash",
            key_path="dashboard.admin_password_hash",
        )
    if from_env is not None and len(from_env) < MIN_PASSWORD_LENGTH:
        raise ConfigError(
            config.source, f"{PASSWORD_ENV} is shorter than {MIN_PASSWORD_LENGTH} characters"
        )
    token = environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            config.source,
            f"{TOKEN_ENV} is shorter than {MIN_TOKEN_LENGTH} characters; use a random one, "
            'e.g. python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
        )
    password_hash = configured or hash_password(from_env or "")
    return Credentials(password_hash=password_hash, api_token=token)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; "" for any other Authorization
    header (which must not fall back to the session); None without one."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class Session:
    """One browser's session: its CSRF token, and whether it signed in."""

    csrf_token: str = field(repr=False)
    signed_in: bool = False

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf_token=secrets.token_urlsafe(32))

    @classmethod
    def signed_in_now(cls) -> Session:
        # A new token at sign-in: one planted in the browser before cannot be reused after.
        return cls(csrf_token=secrets.token_urlsafe(32), signed_in=True)

    def csrf_matches(self, candidate: str | None) -> bool:
        return candidate is not None and same_secret(candidate, self.csrf_token)


class SessionCookies:
    """Reads and writes the signed session cookie."""

    def __init__(self, secret_key: bytes | None = None, max_age: int = SESSION_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(
            secret_key or secrets.token_bytes(32), salt="crmhub-dashboard-session"
        )
        self.max_age = max_age

    def read(self, request: Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # tampered, signed by an earlier process, or expired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        return Session(csrf_token=data["csrf"], signed_in=data.get("in") is True)

    def write(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self._serializer.dumps({"csrf": session.csrf_token, "in": session.signed_in}),
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            # Behind a TLS proxy, uvicorn's proxy headers make the scheme https.
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")


# --------------------------------------------------------------------------- throttle


class LoginThrottle:
    """At most ``failures`` wrong passwords per client within ``window`` seconds; then the
    client waits until the oldest of them leaves the window. Argon2 makes each guess slow;
    this bounds how many a client gets."""

    def __init__(self, failures: int = 5, window: float = 300.0) -> None:
        self.failures = failures
        self.window = window
        self._seen: dict[str, deque[float]] = {}

    def wait_seconds(self, client: str, now: float | None = None) -> float:
        """0 when ``client`` may try now, else how long it must wait."""
        now = time.monotonic() if now is None else now
        recent = self._recent(client, now)
        if not recent:
            del self._seen[client]  # forget clients whose failures have all aged out
            return 0.0
        if len(recent) < self.failures:
            return 0.0
        return recent[0] + self.window - now

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(client, now).append(now)

    def succeeded(self, client: str) -> None:
        self._seen.pop(client, None)

    def _recent(self, client: str, now: float) -> deque[float]:
        recent = self._seen.setdefault(client, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent
