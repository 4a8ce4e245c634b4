"""The HTTP toolkit every vendor connector shares: session, auth, retries, error mapping.

Public entry points: :class:`HttpClient` (``request``, ``get``, ``post``, ``put``, ``patch``,
``delete``, ``stats``, ``last_headroom``), :class:`HttpResponse`, :class:`ClientStats`,
:func:`make_session`, :class:`Timeouts`, the :class:`Authenticator` protocol with
:class:`NoAuth`, :class:`BearerToken`, :class:`HeaderToken`, :class:`BasicAuth` and
:class:`OAuthRefresher`, the :data:`ResponseClassifier` hook with :func:`default_classifier`
and :func:`body_excerpt`, the :data:`HeadroomParser` hook with :func:`headroom_from_headers`
and :class:`HeaderBudget`, :func:`window_text`, and :func:`parse_retry_after`,
:func:`retry_transient`.

How a request goes (see DESIGN.md, "Bounded by vendor limits"):

1. The rate limiter, when there is one, is asked for room *before* each attempt: throttling is
   separate from retrying after a failure.
2. The authenticator adds credentials; the session sends once (the adapter never retries).
3. The connector's classifier turns the vendor's answer into the taxonomy of
   :mod:`connectors.errors`; the default one knows plain HTTP.
4. tenacity retries what is safe: a 429 (or a vendor's own throttling error) always, since the
   vendor did not process it; a connection that was never made always; a timeout, a reset, a
   5xx or a malformed body only when the request is idempotent. A create that may have happened
   is not sent twice: it surfaces as :class:`TransientError` for the hub to record.
5. A 401 refreshes the credentials once and repeats the whole request; a second 401 is an
   :class:`AuthError` telling the user to check the system's credentials. A static credential
   cannot be refreshed: its refusal is an :class:`AuthError` with the message the connector gave
   it, and a refused OAuth refresh is whatever the connector's token endpoint classifier made of
   it; both should name the settings to change (:func:`connectors.errors.setting_path`).

Secrets never reach a log line or an exception message: logs show the method, the path below
the base URL and the *names* of query parameters; messages quote the vendor's answer with every
credential the request carried scrubbed out; requests' own exception text (which holds the full
URL and query string) is never quoted.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol, TypedDict, TypeVar, Unpack, runtime_checkable
from urllib.parse import parse_qsl, urlsplit

import orjson
import requests
from pydantic import BaseModel, ConfigDict, Field
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from urllib3.exceptions import NameResolutionError, NewConnectionError
from urllib3.util.retry import Retry

from connectors.base import Headroom
from connectors.errors import (
    AuthError,
    AuthExpired,
    ConnectorConfigError,
    ConnectorError,
    RateLimited,
    RecordRejected,
    TransientError,
    Unreachable,
    VendorError,
)
from connectors.ratelimit import RateLimiter

__all__ = [
    "IDEMPOTENT_METHODS",
    "Authenticator",
    "BasicAuth",
    "BearerToken",
    "ClientStats",
    "HeaderBudget",
    "HeaderToken",
    "Headroom",
    "HeadroomParser",
    "HttpClient",
    "HttpResponse",
    "HttpSettings",
    "NoAuth",
    "OAuthRefresher",
    "RequestOptions",
    "ResponseClassifier",
    "Timeouts",
    "body_excerpt",
    "default_classifier",
    "headroom_from_headers",
    "make_session",
    "parse_retry_after",
    "retry_transient",
    "window_text",
]

log = logging.getLogger("crmhub.http")

_T = TypeVar("_T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

_EXCERPT_CHARS = 300
_TRANSIENT_STATUSES = frozenset({408, 500, 502, 503, 504, 520, 521, 522, 523, 524})
_NO_BODY_STATUSES = frozenset({204, 205, 304})
# Header and query-parameter names whose values are credentials, for scrubbing messages.
_SECRET_NAME = re.compile(r"auth|token|key|secret|passw|cookie|session|signature", re.IGNORECASE)
# Shorter values are too likely to occur in ordinary text to be worth scrubbing.
_MIN_SECRET_LEN = 6


def _default_user_agent() -> str:
    try:
        return f"crmhub/{version('crmhub')}"
    except PackageNotFoundError:
        return "crmhub"


# --------------------------------------------------------------------------------------------
# Session and timeouts


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait for a connection, and for each read of the answer."""

    connect: float = 10.0
    read: float = 60.0

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect, self.read)


DEFAULT_TIMEOUTS = Timeouts()


class HttpSettings(BaseModel):
    """Settings every HTTP connector takes, whatever its vendor.

    ``timeout_seconds`` is how long to wait for each read of an answer before the request counts
    as failed (and is retried when it is safe to): a vendor that hangs must not stall a sync.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(default=DEFAULT_TIMEOUTS.read, gt=0, le=600)

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(read=self.timeout_seconds)


def make_session(
    *, user_agent: str, ca_bundle: str | None = None, pool_size: int = 10
) -> requests.Session:
    """A ``requests.Session`` whose adapter never retries and always verifies TLS.

    Retrying belongs to :class:`HttpClient` alone, so nothing is retried twice. ``ca_bundle``
    names a PEM file for vendors behind a private CA (self-hosted SuiteCRM); there is no way to
    turn verification off.
    """
    if ca_bundle is not None and not os.path.exists(ca_bundle):
        raise ConnectorConfigError(f"CA bundle not found: {ca_bundle}")
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=pool_size,
        pool_maxsize=pool_size,
        max_retries=Retry(total=0, read=False, redirect=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = ca_bundle if ca_bundle is not None else True
    session.headers["User-Agent"] = user_agent
    return session


# --------------------------------------------------------------------------------------------
# Authentication


@runtime_checkable
class Authenticator(Protocol):
    """Adds credentials to a request and, when the vendor says they expired, renews them."""

    def apply(self, headers: MutableMapping[str, str]) -> None:
        """Add the credentials to the headers of the request about to be sent."""

    def refresh(self) -> None:
        """Get a new access token; raise AuthError when the refresh itself is refused."""


def _require_secret(value: str, what: str) -> str:
    if not value:
        # Usually an unset ${VAR} in the config file.
        raise ConnectorConfigError(f"no {what} configured")
    return value


class NoAuth:
    """No credentials (sandboxes, public endpoints, auth carried elsewhere)."""

    def apply(self, headers: MutableMapping[str, str]) -> None:
        return None

    def refresh(self) -> None:
        raise AuthError("the vendor asked for credentials but none are configured")

    def __repr__(self) -> str:
        return "NoAuth()"


class BearerToken:
    """A static ``Authorization: Bearer`` token (HubSpot private app, a personal token).

    A static credential cannot be renewed: when the vendor refuses it, the run stops for this
    system with ``refused`` as the message, which should say what the user must change.
    """

    def __init__(self, token: str, *, refused: str = "the token was refused; create a new one"):
        self._token = _require_secret(token, "token")
        self._refused = refused

    def apply(self, headers: MutableMapping[str, str]) -> None:
        headers["Authorization"] = f"Bearer {self._token}"

    def refresh(self) -> None:
        raise AuthError(self._refused)

    def __repr__(self) -> str:
        return "BearerToken(<hidden>)"


class HeaderToken:
    """A static token in any header with any prefix, e.g. ``Authorization: Zoho-oauthtoken``.

    ``prefix=""`` sends the token alone (``X-API-Key: <token>``). ``refused`` as for
    :class:`BearerToken`.
    """

    def __init__(
        self,
        header: str,
        prefix: str,
        token: str,
        *,
        refused: str = "the token was refused; create a new one",
    ) -> None:
        self.header = header
        self.prefix = prefix
        self._token = _require_secret(token, "token")
        self._refused = refused

    def apply(self, headers: MutableMapping[str, str]) -> None:
        headers[self.header] = f"{self.prefix} {self._token}" if self.prefix else self._token

    def refresh(self) -> None:
        raise AuthError(self._refused)

    def __repr__(self) -> str:
        return f"HeaderToken({self.header!r}, {self.prefix!r}, <hidden>)"


class BasicAuth:
    """HTTP Basic credentials; Insightly sends its API key as the user name, no password.
    ``refused`` as for :class:`BearerToken`."""

    def __init__(
        self,
        username: str,
        password: str = "",
        *,
        refused: str = "the credentials were refused; check the user name and key",
    ) -> None:
        raw = f"{_require_secret(username, 'user name or API key')}:{password}"
        self._value = "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")
        self._refused = refused

    def apply(self, headers: MutableMapping[str, str]) -> None:
        headers["Authorization"] = self._value

    def refresh(self) -> None:
        raise AuthError(self._refused)

    def __repr__(self) -> str:
        return "BasicAuth(<hidden>)"


TokenFetcher = Callable[[], tuple[str, float]]


class OAuthRefresher:
    """An OAuth access token, cached until shortly before it expires.

    ``fetch_token()`` is the connector's call to the vendor's token endpoint: it returns
    ``(access_token, expires_in_seconds)`` and raises :class:`AuthError` when the vendor refuses
    the refresh token; it should raise only :mod:`connectors.errors` types, so it is best
    written with its own :class:`HttpClient` (``NoAuth``) on the token endpoint. The token is
    renewed ``skew`` seconds before it expires (capped at half its lifetime) or when
    :meth:`refresh` is called after a 401.

    ``refresh_limiter`` guards vendors that punish eager refreshing (Zoho blocks a refresh token
    that mints more than 10 access tokens in 10 minutes: ``RateLimiter("10/10 minutes",
    key=...)``). When it has no room, :class:`RateLimited` is raised instead of calling the
    vendor.

    Thread-safe. When several threads get a 401 for the same stale token, only the first one's
    :meth:`refresh` fetches; the others find the token already replaced.
    """

    def __init__(
        self,
        fetch_token: TokenFetcher,
        *,
        header: str = "Authorization",
        prefix: str = "Bearer",
        skew: float = 60.0,
        refresh_limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.header = header
        self.prefix = prefix
        self.skew = skew
        self._fetch_token = fetch_token
        self._limiter = refresh_limiter
        self._clock = clock
        self._lock = threading.RLock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._applied = threading.local()
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"OAuthRefresher(header={self.header!r}, prefix={self.prefix!r})"

    def _fetch(self) -> str:
        if self._limiter is not None and not self._limiter.try_acquire():
            raise RateLimited(
                "not requesting another access token yet: the vendor would block the refresh "
                f"token beyond {'; '.join(str(item) for item in self._limiter.items)}",
                retry_after=self._limiter.wait_time(),
            )
        token, expires_in = self._fetch_token()
        if not isinstance(token, str) or not token:
            raise VendorError("the token endpoint returned no access token")
        try:
            lifetime = float(expires_in)
        except (TypeError, ValueError):
            raise VendorError("the token endpoint returned a non-numeric expires_in") from None
        skew = min(self.skew, max(lifetime, 0.0) / 2)
        self._token = token
        self._renew_at = self._clock() + lifetime - skew
        self.refreshes += 1
        return token

    def token(self) -> str:
        """The current access token, fetching a new one when none is cached or it is due."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                return self._fetch()
            return self._token

    def apply(self, headers: MutableMapping[str, str]) -> None:
        token = self.token()
        self._applied.token = token
        headers[self.header] = f"{self.prefix} {token}" if self.prefix else token

    def refresh(self) -> None:
        with self._lock:
            applied = getattr(self._applied, "token", None)
            if self._token is not None and applied is not None and applied != self._token:
                # Another thread already replaced the token this thread was refused with.
                return
            self._fetch()

    def invalidate(self) -> None:
        """Forget the cached token; the next request fetches a new one."""
        with self._lock:
            self._token = None


# --------------------------------------------------------------------------------------------
# Classifying answers


ResponseClassifier = Callable[[requests.Response], ConnectorError | None]
HeadroomParser = Callable[[requests.Response], Mapping[str, Headroom]]
"""Reads the rate-limit budgets one answer reports, by budget name; empty when it reports none."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    ``None`` when absent or unreadable; never negative. ``now`` (aware) is for tests.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    return max((when - reference).total_seconds(), 0.0)


def body_excerpt(response: requests.Response, limit: int = _EXCERPT_CHARS) -> str:
    """The start of the vendor's answer, whitespace collapsed, for an error message."""
    try:
        text = response.text
    except (RuntimeError, ValueError):
        return "(unreadable body)"
    text = " ".join(text.split())
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else text[:limit] + "..."


def _origin_and_path(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def default_classifier(response: requests.Response) -> ConnectorError | None:
    """Plain-HTTP meaning of a status code; vendor classifiers wrap it.

    2xx and 304 are fine. Other 3xx (redirects are not followed, see :class:`HttpClient`) are a
    :class:`VendorError` naming the new address. 401 → AuthExpired; 403 → AuthError;
    404 → RecordRejected ``NOT_FOUND``; 429 → RateLimited with ``Retry-After``; 503 with
    ``Retry-After`` → RateLimited (the vendor says it is busy, not that it failed);
    408, 5xx gateway errors → TransientError; anything else → VendorError. Messages quote the
    first 300 characters of the body and nothing of the request.
    """
    status = response.status_code
    if status < 300 or status == 304:
        return None
    excerpt = body_excerpt(response)
    if status < 400:
        location = response.headers.get("Location")
        where = _origin_and_path(location) if location else "an unnamed address"
        return VendorError(
            f"HTTP {status}: the vendor redirects to {where}; update the base URL if it moved"
        )
    if status == 401:
        return AuthExpired(f"HTTP 401, credentials refused or expired: {excerpt}")
    if status == 403:
        return AuthError(
            f"HTTP 403, permission denied (check the credentials' scopes and rights): {excerpt}"
        )
    if status == 404:
        return RecordRejected(f"HTTP 404, not found: {excerpt}", code="NOT_FOUND")
    if status == 429:
        return RateLimited(
            f"HTTP 429, rate limited: {excerpt}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status == 503 and response.headers.get("Retry-After"):
        return RateLimited(
            f"HTTP 503, busy: {excerpt}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status in _TRANSIENT_STATUSES:
        return TransientError(f"HTTP {status}: {excerpt}")
    return VendorError(f"HTTP {status}: {excerpt}")


@dataclass(frozen=True, slots=True)
class HeaderBudget:
    """Where an answer's headers give the figures of one rate-limit budget.

    ``remaining`` and ``limit`` name headers holding whole numbers; ``window_ms`` a header with
    the window's length in milliseconds, or ``window`` the window's name when no header gives it.
    """

    remaining: str
    limit: str | None = None
    window_ms: str | None = None
    window: str | None = None


def headroom_from_headers(budgets: Mapping[str, HeaderBudget]) -> HeadroomParser:
    """A headroom parser reading each named budget from the answer's headers.

    HubSpot: ``{"10s": HeaderBudget("X-HubSpot-RateLimit-Remaining", "X-HubSpot-RateLimit-Max",
    window_ms="X-HubSpot-RateLimit-Interval-Milliseconds"), "daily": ...}``. A budget whose
    ``remaining`` header is absent or not a number is left out (HubSpot search answers carry
    none, nor do its OAuth answers the daily ones).
    """

    def parse(response: requests.Response) -> dict[str, Headroom]:
        found: dict[str, Headroom] = {}
        for name, budget in budgets.items():
            left = _int_header(response, budget.remaining)
            if left is None:
                continue
            figures = Headroom(remaining=left)
            most = _int_header(response, budget.limit) if budget.limit else None
            if most is not None:
                figures["limit"] = most
            ms = _int_header(response, budget.window_ms) if budget.window_ms else None
            if ms is not None and ms > 0:
                figures["window"] = window_text(ms / 1000)
            elif budget.window is not None:
                figures["window"] = budget.window
            found[name] = figures
        return found

    return parse


def window_text(seconds: float) -> str:
    """A budget's window as people write it: ``10s``, ``10min``, ``1h``."""
    for size, suffix in ((3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{suffix}"
    return f"{seconds:g}s"


def _int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# The client


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A successful answer: status, headers (case-insensitive), parsed JSON and raw text.

    ``json`` is ``None`` for an empty body (Zoho's 204, 304) or when JSON was not expected.
    """

    status: int
    headers: Mapping[str, str]
    json: Any
    text: str
    elapsed_ms: float


@dataclass
class ClientStats:
    """Counters for benchmarks and run reports.

    ``requests`` counts every attempt, answered or not; ``no_answer`` those that got no HTTP
    answer (refused, timed out, reset); ``by_status`` the answered ones by status code;
    ``retries`` the waits before another attempt.
    """

    requests: int = 0
    retries: int = 0
    no_answer: int = 0
    by_status: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "no_answer": self.no_answer,
            "by_status": dict(sorted(self.by_status.items())),
        }


class RequestOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`HttpClient.request`, for the method shortcuts."""

    params: Mapping[str, Any] | None
    json: Any
    data: Mapping[str, Any] | str | bytes | None
    headers: Mapping[str, str] | None
    idempotent: bool | None
    expect_json: bool


class _NoAnswerError(Exception):
    """A connection that was never made: the request cannot have reached the vendor."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"could not connect to {host}: {reason}")
        self.host = host
        self.reason = reason


@dataclass(slots=True)
class _Call:
    method: str
    url: str
    shown: str
    params: Mapping[str, Any] | None
    json: Any
    data: Mapping[str, Any] | str | bytes | None
    headers: Mapping[str, str] | None
    expect_json: bool
    attempts: int = 0


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: args, urllib3's ``reason``, cause and context."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        stack.extend(item for item in linked if isinstance(item, BaseException))


def _never_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    return isinstance(exc, requests.ConnectionError) and any(
        isinstance(cause, NewConnectionError) for cause in _causes(exc)
    )


def _failure_reason(exc: requests.RequestException, timeouts: Timeouts) -> str:
    # Built from types and errno text only: str(exc) holds the full URL with its query string.
    causes = list(_causes(exc))
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {timeouts.connect:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no answer within the {timeouts.read:g} s read timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake or certificate verification failed"
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        return "the answer was cut off or garbled"
    if any(isinstance(cause, NameResolutionError) for cause in causes):
        return "DNS lookup failed"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    if any(isinstance(cause, NewConnectionError) for cause in causes):
        return "connection failed"
    names = {type(cause).__name__ for cause in causes}
    if "RemoteDisconnected" in names:
        return "the server closed the connection without answering"
    return f"connection error ({type(exc).__name__})"


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    default_port = 443 if scheme == "https" else 80
    return (scheme, parts.hostname or "", parts.port or default_port)


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def retry_transient(
    action: Callable[[], _T],
    *,
    max_attempts: int = 5,
    max_wait: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Run ``action`` (which makes its own requests), retrying it as HttpClient retries an
    idempotent request: on TransientError, waiting a 429's ``retry_after`` when given.

    For a step outside any client's own retries, such as fetching the first access token that
    names the API host (Zoho's ``api_domain``).
    """
    backoff = wait_exponential_jitter(multiplier=0.5, max=30.0, jitter=0.5)

    def wait(retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, max_wait)
        return min(backoff(retry_state), max_wait)

    retrying = Retrying(
        stop=stop_after_attempt(max_attempts),
        wait=wait,
        retry=retry_if_exception(lambda exc: isinstance(exc, TransientError)),
        sleep=sleep,
        reraise=True,
    )
    return retrying(action)


NO_AUTH = NoAuth()


class HttpClient:
    """One vendor account's HTTP client: throttled, authenticated, classified, retried.

    ``system`` names the configured system in every error and log line. ``base_url`` is the API
    root; requests name a path below it (``/crm/v3/objects/contacts``) or an absolute URL on the
    same host (a vendor's own next-page link). ``max_attempts`` counts the first try.
    ``max_wait`` caps any single wait, including the vendor's ``Retry-After``. ``sleep`` is
    injectable for tests. ``secrets`` lists extra strings to scrub from messages and logs
    (a Bitrix24 webhook code inside the base URL). Redirects are not followed: a vendor that
    moved (Bitrix24 portal rename) is reported, and credentials never travel to another host.

    Thread-safe as far as ``requests.Session`` is.
    """

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        session: requests.Session | None = None,
        auth: Authenticator = NO_AUTH,
        classifier: ResponseClassifier = default_classifier,
        rate_limiter: RateLimiter | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        max_attempts: int = 5,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        headroom_parser: HeadroomParser | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectorConfigError(
                f"base URL must be http(s)://host/...: {_origin_and_path(base_url)}",
                system=system,
            )
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.system = system
        self.base_url = base_url.rstrip("/")
        self._base_path = parts.path.rstrip("/")
        self._origin = _origin(base_url)
        self._owns_session = session is None
        self.session = (
            session if session is not None else make_session(user_agent=_default_user_agent())
        )
        if self.session.verify is False:
            raise ConnectorConfigError(
                "TLS verification is off on this session; crmhub always verifies "
                "(give a CA bundle instead)",
                system=system,
            )
        self.auth = auth
        self.classifier = classifier
        self.rate_limiter = rate_limiter
        self.timeouts = timeouts
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.headroom_parser = headroom_parser
        self._sleep = sleep
        static = [s for s in secrets if len(s) >= _MIN_SECRET_LEN]
        if parts.password and len(parts.password) >= _MIN_SECRET_LEN:
            static.append(parts.password)
        self._static_secrets = tuple(static)
        self._backoff = wait_exponential_jitter(multiplier=0.5, max=30.0, jitter=0.5)
        self._stats_lock = threading.Lock()
        self.stats = ClientStats()
        # Per budget, the figures of the latest answer that reported it (see HeadroomParser).
        self.last_headroom: dict[str, Headroom] = {}

    def __repr__(self) -> str:
        return f"HttpClient({self.system!r}, {_origin_and_path(self.base_url)!r})"

    # -- public API ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        expect_json: bool = True,
    ) -> HttpResponse:
        """Send one request, with throttling, auth refresh and safe retries.

        ``idempotent`` defaults to True for GET, HEAD, PUT, DELETE and OPTIONS and False for
        POST and PATCH; pass True for a POST that only reads (HubSpot search, Bitrix24 list
        methods) or upserts. Raises :mod:`connectors.errors` types, all carrying ``system``.
        """
        verb = method.upper()
        try:
            url, shown = self._resolve(path_or_url)
            safe = idempotent if idempotent is not None else verb in IDEMPOTENT_METHODS
            call = _Call(verb, url, shown, params, json, data, headers, expect_json)
            try:
                return self._send_with_retries(call, safe)
            except AuthExpired as expired:
                log.info("%s: %s; refreshing credentials", self.system, expired.message)
            self.auth.refresh()
            try:
                return self._send_with_retries(call, safe)
            except AuthExpired as again:
                vendor_said = again.message.removeprefix(f"{verb} {shown}: ")
                raise AuthError(
                    f"{verb} {shown}: credentials refused again after renewing them; check the "
                    f"credentials configured for system {self.system!r} ({vendor_said})",
                    system=self.system,
                ) from None
        except ConnectorError as exc:
            if exc.system is None:
                exc.system = self.system
            raise

    def get(self, path_or_url: str, **options: Unpack[RequestOptions]) -> HttpResponse:
        return self.request("GET", path_or_url, **options)

    def post(self, path_or_url: str, **options: Unpack[RequestOptions]) -> HttpResponse:
        return self.request("POST", path_or_url, **options)

    def put(self, path_or_url: str, **options: Unpack[RequestOptions]) -> HttpResponse:
        return self.request("PUT", path_or_url, **options)

    def patch(self, path_or_url: str, **options: Unpack[RequestOptions]) -> HttpResponse:
        return self.request("PATCH", path_or_url, **options)

    def delete(self, path_or_url: str, **options: Unpack[RequestOptions]) -> HttpResponse:
        return self.request("DELETE", path_or_url, **options)

    def close(self) -> None:
        """Close the session if this client made it; a session passed in belongs to its owner."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _resolve(self, path_or_url: str) -> tuple[str, str]:
        """The URL to send to, and the path to show (below the base URL, no query)."""
        if "://" in path_or_url:
            parts = urlsplit(path_or_url)
            if _origin(path_or_url) != self._origin:
                # A vendor-supplied link must not carry our credentials to another host.
                raise VendorError(
                    f"refusing to send credentials to {_origin_and_path(path_or_url)}, "
                    f"which is not below {_origin_and_path(self.base_url)}"
                )
            path = parts.path
            if self._base_path and path.startswith(self._base_path):
                path = path[len(self._base_path) :]
            return path_or_url, path or "/"
        relative = path_or_url.lstrip("/")
        url = f"{self.base_url}/{relative}" if relative else self.base_url
        return url, "/" + relative.split("?", 1)[0]

    def _send_with_retries(self, call: _Call, safe: bool) -> HttpResponse:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(partial(self._retryable, safe=safe)),
            sleep=self._sleep,
            before_sleep=partial(self._before_sleep, call),
            reraise=True,
        )
        try:
            return retrying(self._attempt, call)
        except _NoAnswerError as exc:
            raise Unreachable(
                f"could not connect to {exc.host} ({exc.reason}) after "
                f"{call.attempts} attempt{'s' if call.attempts != 1 else ''}",
                system=self.system,
            ) from None

    @staticmethod
    def _retryable(exc: BaseException, *, safe: bool) -> bool:
        if isinstance(exc, _NoAnswerError | RateLimited):
            return True
        return isinstance(exc, TransientError) and safe

    def _wait(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_wait)
        return min(self._backoff(retry_state), self.max_wait)

    def _before_sleep(self, call: _Call, retry_state: RetryCallState) -> None:
        with self._stats_lock:
            self.stats.retries += 1
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, ConnectorError):
            reason = exc.message  # already names the method and path
        else:
            reason = f"{call.method} {call.shown}: {exc}"
        wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
        log.warning(
            "%s: %s; retry %d of %d in %.1f s",
            self.system,
            reason,
            retry_state.attempt_number,
            self.max_attempts - 1,
            wait,
        )

    def _count(self, status: int | None) -> None:
        with self._stats_lock:
            self.stats.requests += 1
            if status is None:
                self.stats.no_answer += 1
            else:
                self.stats.by_status[status] += 1

    def _secrets_for(self, headers: Mapping[str, str], call: _Call) -> list[str]:
        found = list(self._static_secrets)
        for name, value in headers.items():
            if _SECRET_NAME.search(name):
                found.append(value)
                found.extend(value.split()[1:])  # the token without its "Bearer" prefix
        query = parse_qsl(urlsplit(call.url).query)
        for name, value in [*query, *(call.params or {}).items()]:
            if _SECRET_NAME.search(name) and isinstance(value, str):
                found.append(value)
        if isinstance(call.data, Mapping):
            for name, value in call.data.items():
                if _SECRET_NAME.search(str(name)) and isinstance(value, str):
                    found.append(value)
        # Longest first, so a header value is scrubbed whole before its token part.
        return sorted({s for s in found if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)

    def _shown_with_params(self, call: _Call) -> str:
        names = [name for name, _ in parse_qsl(urlsplit(call.url).query, keep_blank_values=True)]
        names.extend(call.params or {})
        return f"{call.shown} [{', '.join(dict.fromkeys(names))}]" if names else call.shown

    def _attempt(self, call: _Call) -> HttpResponse:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(call.headers or {})
        self.auth.apply(headers)
        secrets = self._secrets_for(headers, call)
        call.attempts += 1
        data, as_json = call.data, call.json
        if as_json is not None and data is None:
            # orjson: a 100-record batch encodes in a tenth of the time json takes, as UTF-8.
            try:
                data = orjson.dumps(as_json)
            except TypeError:
                pass  # a value orjson does not know: requests' own encoding decides
            else:
                as_json = None
                headers.setdefault("Content-Type", "application/json")
        started = time.monotonic()
        try:
            response = self.session.request(
                call.method,
                call.url,
                params=call.params,
                json=as_json,
                data=data,
                headers=headers,
                timeout=self.timeouts.as_tuple(),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            elapsed = (time.monotonic() - started) * 1000
            self._count(None)
            reason = _failure_reason(exc, self.timeouts)
            log.debug(
                "%s: %s %s -> no answer (%s) in %.0f ms",
                self.system,
                call.method,
                self._shown_with_params(call),
                reason,
                elapsed,
            )
            raise self._translate_failure(exc, call, reason) from None
        elapsed = (time.monotonic() - started) * 1000
        self._count(response.status_code)
        log.debug(
            "%s: %s %s -> %d in %.0f ms",
            self.system,
            call.method,
            self._shown_with_params(call),
            response.status_code,
            elapsed,
        )
        self._record_headroom(response)
        error = self.classifier(response)
        if error is not None:
            raise self._finish_error(error, call, secrets)
        return self._success(response, call, secrets, elapsed)

    def _translate_failure(
        self, exc: requests.RequestException, call: _Call, reason: str
    ) -> Exception:
        host = urlsplit(call.url).hostname or "the vendor"
        if isinstance(exc, requests.exceptions.SSLError):
            # A certificate problem does not heal by retrying.
            return Unreachable(
                f"could not connect to {host}: {reason}; check the server certificate or the "
                "CA bundle setting",
                system=self.system,
            )
        if _never_sent(exc):
            return _NoAnswerError(host, reason)
        if isinstance(
            exc,
            requests.exceptions.InvalidURL
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidSchema
            | requests.exceptions.InvalidHeader,
        ):
            return ConnectorConfigError(
                f"{call.method} {call.shown}: the request is malformed ({type(exc).__name__}); "
                "check the base URL and the credentials' characters",
                system=self.system,
            )
        return TransientError(
            f"{call.method} {call.shown}: {reason} (the vendor may have processed it)",
            system=self.system,
        )

    def _finish_error(
        self, error: ConnectorError, call: _Call, secrets: Sequence[str]
    ) -> ConnectorError:
        if error.system is None:
            error.system = self.system
        message = _redact(f"{call.method} {call.shown}: {error.message}", secrets)
        error.message = message
        error.args = (message,)
        return error

    def _record_headroom(self, response: requests.Response) -> None:
        if self.headroom_parser is None:
            return
        try:
            reported = self.headroom_parser(response)
        except (KeyError, TypeError, ValueError) as exc:
            log.debug("%s: unreadable rate-limit headers (%s)", self.system, type(exc).__name__)
            return
        # An answer that reports some budgets leaves the others as last reported.
        self.last_headroom.update(reported)

    def _success(
        self, response: requests.Response, call: _Call, secrets: Sequence[str], elapsed: float
    ) -> HttpResponse:
        text = response.text if response.content else ""
        body: Any = None
        if call.expect_json and text.strip() and response.status_code not in _NO_BODY_STATUSES:
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                body = None
            try:
                if body is None:
                    # Not UTF-8 JSON as orjson reads it (another charset, say): requests'
                    # decoding, which honours the declared encoding, has the last word.
                    body = response.json()
            except ValueError:
                content_type = response.headers.get("Content-Type", "no content type")[:60]
                excerpt = _redact(body_excerpt(response, 100), secrets)
                raise TransientError(
                    f"{call.method} {call.shown}: {self.system} returned a malformed body "
                    f"(HTTP {response.status_code}, {content_type}): {excerpt}",
                    system=self.system,
                ) from None
        return HttpResponse(
            status=response.status_code,
            headers=CaseInsensitiveDict(response.headers),
            json=body,
            text=text,
            elapsed_ms=elapsed,
        )
