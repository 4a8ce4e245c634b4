"""What every vendor sandbox shares: the local HTTP server, fault injection and bookkeeping.

Public entry points: :class:`Sandbox` (a vendor API served on loopback: ``start``, ``stop``,
``serve_forever``, ``inject``, ``observe``, ``calls``), :class:`SandboxOptions`,
:class:`VendorApi` (the protocol a vendor's emulator implements), :class:`ApiRequest`,
:class:`ApiResponse`, :class:`Exchange`, :data:`Observer`, :class:`Fault`, :class:`RollingWindow`,
:class:`TokenIssuer`, :class:`CallLog`, :class:`SandboxClock`, :func:`json_response`,
:func:`rate_window` and :func:`load_sandbox`.

A sandbox is a product feature (``crmhub sandbox hubspot``, ``crmhub demo``), and what the
contract suite and the benchmarks run against: a connector that passes against its sandbox should
work against the vendor. So each vendor's emulator (``connectors/<vendor>/sandbox.py``) models
the vendor's documented paths, payloads, paging, errors, token expiry and rate limits; this module
gives them the rest, once:

- a threaded HTTP/1.1 server bound to 127.0.0.1 (keep-alive, so clients reuse connections as
  they would against the vendor);
- latency and randomly injected faults (``fault_rate``) plus scripted ones (:meth:`Sandbox.inject`)
  for tests: a vendor-shaped 5xx or 429, a connection reset, a stalled answer, an HTML error page
  from a "proxy", a truncated JSON body;
- a call log (per route and per second) that benchmarks and rate-limit tests read;
- observers (:meth:`Sandbox.observe`) that see every exchange at two moments: once the account
  has acted on a request but before its answer leaves, and once the answer is out. That is where
  a trace is taken, or where a test stops its client at an exact point: say, after the vendor
  created a record and before the client learned its id;
- rolling-window counters and an OAuth token issuer with expiry and revocation, which each
  emulator uses in its vendor's own shapes; with :meth:`VendorApi.revoke_credentials` a test or
  a demo revokes an account's credentials mid-run, as a user revoking an app's access would.

Faults are decided before the vendor emulator sees the request, so an injected fault never
changes the emulated account: like a real 5xx from a load balancer, the request did not happen.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import secrets
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, urlsplit

from connectors.errors import ConnectorConfigError

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "CallLog",
    "Exchange",
    "Fault",
    "Observer",
    "RollingWindow",
    "Sandbox",
    "SandboxClock",
    "SandboxOptions",
    "TokenIssuer",
    "VendorApi",
    "json_response",
    "load_sandbox",
    "rate_window",
    "retry_after",
    "sandbox_vendors",
]

log = logging.getLogger("crmhub.sandbox")

LOOPBACK = "127.0.0.1"


class Fault(StrEnum):
    """A failure the sandbox can put in place of the vendor's answer."""

    SERVER_ERROR = "server_error"  # a 5xx in the vendor's own error shape
    RATE_LIMIT = "rate_limit"  # a 429 in the vendor's own shape, with its headers
    RESET = "reset"  # the connection closed without an answer
    STALL = "stall"  # no answer for ``stall_seconds``, then the connection closed
    HTML = "html"  # a 502 HTML page, as a proxy in front of the vendor sends
    TRUNCATED = "truncated"  # the vendor's real answer cut off half-way (malformed JSON)


# The random faults of ``fault_rate``: each equally likely. STALL is left out because it makes a
# client wait out its read timeout; tests script it with ``inject`` and a short timeout.
RANDOM_FAULTS: tuple[Fault, ...] = (
    Fault.SERVER_ERROR,
    Fault.RATE_LIMIT,
    Fault.RESET,
    Fault.HTML,
    Fault.TRUNCATED,
)


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """How a sandbox behaves; ``crmhub sandbox`` builds one from its options.

    ``records`` seeds the account with that many contacts (and a tenth as many companies, a
    fifth as many deals). ``seed`` makes the data and the random faults reproducible.
    ``rate_limit``, when set, replaces the vendor's request budget with this many requests per
    second (each emulator spreads it over its vendor's own window). ``token_ttl`` overrides how
    long the vendor's access tokens live, so tests can watch them expire. ``faults`` are what
    ``fault_rate`` draws from, each equally likely; add ``Fault.STALL`` (with a short
    ``stall_seconds``) to have requests time out too.
    """

    records: int = 0
    seed: int = 0
    latency_ms: float = 0.0
    rate_limit: float | None = None
    fault_rate: float = 0.0
    stall_seconds: float = 5.0
    token_ttl: float | None = None
    faults: tuple[Fault, ...] = RANDOM_FAULTS

    def __post_init__(self) -> None:
        if self.records < 0:
            raise ValueError(f"records must be 0 or more, not {self.records}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, not {self.fault_rate}")
        if self.latency_ms < 0:
            raise ValueError(f"latency must be 0 ms or more, not {self.latency_ms}")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError(f"rate limit must be positive, not {self.rate_limit}")
        if not self.faults:
            raise ValueError("faults must name at least one fault for fault_rate to draw")


# --------------------------------------------------------------------------------------------
# Requests and responses as the emulators see them


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP request, parsed: ``query`` and ``form`` keep repeated keys as lists."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body as JSON; raises ValueError (the emulator answers 400) when it is not."""
        if not self.body:
            raise ValueError("the request body is empty")
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)


@dataclass(slots=True)
class ApiResponse:
    """An answer: status, headers and body bytes."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> ApiResponse:
    """A JSON answer with ``payload`` serialized compactly, as vendors send it."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return ApiResponse(status, body, dict(headers or {}))


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and the sandbox's answer to it, as an :data:`Observer` sees them.

    ``number`` counts the sandbox's requests from 1, in the order they arrived. ``response`` is
    None when the connection is dropped without an answer (an injected fault); ``fault`` names
    the injected fault behind the answer, if any. ``sent`` is False while the answer is still
    to leave (the emulated account has already acted on the request) and True once it has been
    written to the connection, or the connection closed.
    """

    number: int
    request: ApiRequest
    response: ApiResponse | None
    fault: Fault | None
    sent: bool = False


Observer = Callable[[Exchange], None]
"""Called twice per request (see :meth:`Sandbox.observe`), on the thread serving it."""


class VendorApi(Protocol):
    """What a vendor emulator implements; :class:`Sandbox` serves it.

    ``handle`` answers one request exactly as the vendor would, including the vendor's own rate
    limiting and auth errors. ``fault_response`` gives the vendor-shaped answer for an injected
    :attr:`Fault.SERVER_ERROR` or :attr:`Fault.RATE_LIMIT`. ``connector_settings`` is the
    ``systems`` entry of a crmhub config (credentials included) that reaches this emulator at
    ``base_url``. ``expire_tokens`` makes every access token issued so far expire now.
    ``revoke_credentials`` does what a user does who revokes crmhub's access in the vendor's UI
    and then grants it again: every credential issued so far (the refresh token, private-app
    token, webhook or client secret a config holds, and each access token minted from them) is
    refused from then on, in the vendor's own error shapes, and ``connector_settings`` hands out
    new ones. ``seed_records`` fills the account with realistic data. The ``insert``/``modify``/
    ``remove``/``snapshot`` methods reach the account behind the API's back, with vendor field
    names, as a user editing in the vendor's UI would; tests and the demo use them.
    """

    vendor: ClassVar[str]

    def handle(self, request: ApiRequest) -> ApiResponse: ...

    def fault_response(self, fault: Fault, request: ApiRequest) -> ApiResponse: ...

    def connector_settings(self, base_url: str) -> dict[str, Any]: ...

    def expire_tokens(self) -> None: ...

    def revoke_credentials(self) -> None: ...

    def seed_records(self, contacts: int, seed: int) -> None: ...

    def insert(self, object_type: str, fields: Mapping[str, Any]) -> str: ...

    def modify(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None: ...

    def remove(self, object_type: str, record_id: str) -> None: ...

    def snapshot(self, object_type: str) -> dict[str, dict[str, Any]]: ...


# --------------------------------------------------------------------------------------------
# Building blocks the emulators use


class SandboxClock:
    """The emulated vendor's clock: wall time, millisecond precision, shiftable by tests."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            instant = datetime.now(UTC) + self._offset
        return instant.replace(microsecond=instant.microsecond // 1000 * 1000)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


class RollingWindow:
    """A rolling-window request budget, as vendors count it: ``limit`` calls per ``seconds``."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic):
        if limit < 1 or seconds <= 0:
            raise ValueError("a window needs a positive limit and length")
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        while self._hits and self._hits[0] <= now - self.seconds:
            self._hits.popleft()

    def hit(self) -> bool:
        """Count one call if the window has room; False (nothing counted) when it has none."""
        with self._lock:
            now = self._clock()
            self._trim(now)
            if len(self._hits) >= self.limit:
                return False
            self._hits.append(now)
            return True

    def remaining(self) -> int:
        with self._lock:
            self._trim(self._clock())
            return self.limit - len(self._hits)

    def retry_after(self) -> float:
        """Seconds until the oldest counted call leaves the window."""
        with self._lock:
            now = self._clock()
            self._trim(now)
            if len(self._hits) < self.limit:
                return 0.0
            return max(self._hits[0] + self.seconds - now, 0.0)


def retry_after(wait: float) -> str:
    """A ``Retry-After`` value for a wait of ``wait`` seconds: whole seconds, rounded up, at
    least one (a client told 0 would come straight back)."""
    return str(max(math.ceil(wait), 1))


def rate_window(rate: float) -> tuple[int, float]:
    """``SandboxOptions.rate_limit`` (requests a second) as ``(requests, seconds)`` of a rolling
    window at least a second long: 10 → (10, 1.0); 0.4 → (1, 3.0), never faster than asked."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, not {rate}")
    if rate >= 1:
        return int(rate), 1.0
    return 1, float(math.ceil(1 / rate))


class TokenIssuer:
    """OAuth access tokens with a lifetime, as a vendor's token endpoint mints them, which can
    expire early (:meth:`expire_all`) or be revoked (:meth:`revoke_all`)."""

    def __init__(self, prefix: str, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.prefix = prefix
        self.ttl = ttl
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._revoked: set[str] = set()
        self._lock = threading.Lock()
        self.issued = 0

    def issue(self) -> str:
        token = f"{self.prefix}{secrets.token_hex(16)}"
        with self._lock:
            self._expiry[token] = self._clock() + self.ttl
            self.issued += 1
        return token

    def minted(self) -> list[str]:
        """Every access token issued so far, expired ones included (to check none leaked)."""
        with self._lock:
            return list(self._expiry)

    def check(self, token: str | None) -> str:
        """``"valid"``, ``"expired"``, ``"revoked"`` or ``"unknown"``."""
        if not token:
            return "unknown"
        with self._lock:
            expires = self._expiry.get(token)
            revoked = token in self._revoked
        if expires is None:
            return "unknown"
        if revoked:
            return "revoked"
        return "valid" if self._clock() < expires else "expired"

    def expire_all(self) -> None:
        with self._lock:
            now = self._clock()
            self._expiry = dict.fromkeys(self._expiry, now)

    def revoke_all(self) -> None:
        """Revoke every token issued so far, as a vendor does with the access tokens of a grant
        the user revoked: ``check`` answers ``"revoked"`` for them from now on, while tokens
        issued afterwards (from new credentials) are valid."""
        with self._lock:
            self._revoked.update(self._expiry)


class CallLog:
    """Every request the sandbox answered (faults included): by route, status and second; and
    the most it was answering at once (``peak_in_flight``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.by_second: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self._in_flight = 0
        self.peak_in_flight = 0

    def arrive(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def record(self, method: str, path: str, status: int | None, fault: Fault | None) -> None:
        """Count one request; ``status`` None when the connection was dropped."""
        route = f"{method} {path}"
        with self._lock:
            self.by_route[route] += 1
            self.by_second[int(time.time())] += 1
            if status is not None:
                self.by_status[status] += 1
            if fault is not None:
                self.faults[fault.value] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_route.values())

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """Calls whose method (when given) and path prefix match."""
        with self._lock:
            return sum(
                n
                for route, n in self.by_route.items()
                if (method is None or route.startswith(method + " "))
                and route.split(" ", 1)[1].startswith(path_prefix)
            )

    def peak_in(self, seconds: int) -> int:
        """The most calls in any ``seconds`` consecutive whole seconds."""
        with self._lock:
            counts = dict(self.by_second)
        return max((sum(counts.get(s + i, 0) for i in range(seconds)) for s in counts), default=0)

    def reset(self) -> None:
        with self._lock:
            self.by_route.clear()
            self.by_status.clear()
            self.by_second.clear()
            self.faults.clear()
            self.peak_in_flight = self._in_flight


# --------------------------------------------------------------------------------------------
# The server


_HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


class Sandbox:
    """A vendor emulator served over HTTP on loopback.

    ``start()`` serves from a background thread on a free port (or ``port``) and returns the base
    URL; ``serve_forever()`` serves in the foreground until interrupted. ``inject(fault, times,
    path)`` scripts faults for the next matching requests, before any random ones.
    ``observe(observer)`` shows every exchange to ``observer`` until the returned function is
    called.
    """

    def __init__(
        self,
        api: VendorApi,
        options: SandboxOptions | None = None,
        *,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self.api = api
        self.options = options or SandboxOptions()
        self.calls = CallLog()
        self._random = random.Random(self.options.seed)  # noqa: S311 - reproducible faults
        self._random_lock = threading.Lock()
        self._scripted: list[tuple[Fault, str]] = []
        self._scripted_lock = threading.Lock()
        self._observers: tuple[Observer, ...] = ()
        self._observers_lock = threading.Lock()
        self._arrived = 0
        self._server = _Server((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    @property
    def vendor(self) -> str:
        return self.api.vendor

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def connector_settings(self) -> dict[str, Any]:
        """A config ``systems`` entry (connector, base URL, credentials) reaching this sandbox."""
        return self.api.connector_settings(self.url)

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-{self.vendor}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving and release the port (from any thread, after start or serve_forever)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def inject(self, fault: Fault, times: int = 1, path: str = "") -> None:
        """Answer the next ``times`` requests whose path starts with ``path`` with ``fault``."""
        with self._scripted_lock:
            self._scripted.extend((fault, path) for _ in range(times))

    def observe(self, observer: Observer) -> Callable[[], None]:
        """Show ``observer`` every request from now on; returns the function that stops it.

        The observer is called twice per request: with ``sent`` False once the answer is
        decided (the emulated account has acted on the request; nothing has left yet), and with
        ``sent`` True once the answer is out. It runs on the thread serving the request, so
        several may run at once, and the client waits while it runs; an observer that raises
        is logged and changes nothing about the answer.
        """
        with self._observers_lock:
            self._observers = (*self._observers, observer)

        def stop() -> None:
            with self._observers_lock:
                self._observers = tuple(o for o in self._observers if o is not observer)

        return stop

    def _notify(self, exchange: Exchange) -> None:
        for observer in self._observers:
            try:
                observer(exchange)
            except Exception:
                log.exception("sandbox %s: an observer failed", self.vendor)

    def _fault_for(self, request: ApiRequest) -> Fault | None:
        with self._scripted_lock:
            for index, (fault, prefix) in enumerate(self._scripted):
                if request.path.startswith(prefix):
                    del self._scripted[index]
                    return fault
        if self.options.fault_rate > 0:
            with self._random_lock:
                if self._random.random() < self.options.fault_rate:
                    return self._random.choice(self.options.faults)
        return None

    def answer(self, request: ApiRequest) -> Exchange:
        """The exchange for ``request``: the response to send (None: drop the connection) and
        the fault behind it, if any. Observers have seen it when this returns."""
        with self._observers_lock:
            self._arrived += 1
            number = self._arrived
        self.calls.arrive()
        try:
            if self.options.latency_ms:
                time.sleep(self.options.latency_ms / 1000)
            fault = self._fault_for(request)
            response, fault = self._answer(request, fault)
        finally:
            self.calls.leave()
        self.calls.record(
            request.method, request.path, response.status if response else None, fault
        )
        exchange = Exchange(number, request, response, fault)
        self._notify(exchange)
        return exchange

    def _sent(self, exchange: Exchange) -> None:
        """The answer has left (or the connection was dropped): tell the observers."""
        self._notify(replace(exchange, sent=True))

    def _answer(
        self, request: ApiRequest, fault: Fault | None
    ) -> tuple[ApiResponse | None, Fault | None]:
        if fault is None:
            return self._handled(request), None
        if fault in (Fault.SERVER_ERROR, Fault.RATE_LIMIT):
            return self.api.fault_response(fault, request), fault
        if fault is Fault.HTML:
            return ApiResponse(502, _HTML_PAGE, content_type="text/html"), fault
        if fault is Fault.TRUNCATED:
            # The vendor did the work; only its answer is lost on the way (so reads only: a
            # write whose answer is garbled is the crash-between-write-and-commit case, which
            # the fault tests of the engine cover separately).
            if request.method != "GET":
                return self.api.fault_response(Fault.SERVER_ERROR, request), Fault.SERVER_ERROR
            real = self._handled(request)
            cut = real.body[: max(len(real.body) // 2, 1)]
            return ApiResponse(real.status, cut, real.headers, real.content_type), fault
        if fault is Fault.STALL:
            time.sleep(self.options.stall_seconds)
        return None, fault

    def _handled(self, request: ApiRequest) -> ApiResponse:
        try:
            return self.api.handle(request)
        except Exception:
            # An emulator bug must look like what it is to the client: a 500, logged here.
            log.exception("sandbox %s failed on %s %s", self.vendor, request.method, request.path)
            return self.api.fault_response(Fault.SERVER_ERROR, request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up before its answer is out (killed, timed out) is no fault of
        # the sandbox's: no traceback for it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("sandbox: a client hung up before its answer was sent")
            return
        super().handle_error(request, client_address)


def _handler_for(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"crmhub-sandbox-{sandbox.vendor}"
        sys_version = ""
        # Headers and body go out in two writes; with Nagle on, the body waits for the client's
        # delayed ACK of the headers (~40 ms a request on keep-alive connections).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = ApiRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            exchange = sandbox.answer(request)
            try:
                self._write_answer(exchange.response)
            finally:
                sandbox._sent(exchange)

        def _write_answer(self, response: ApiResponse | None) -> None:
            if response is None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(response.status, _reason(response.status))
            if response.body or response.status not in (204, 304):
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        # http.server dispatches on these names.
        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            # Query strings can hold credentials (Bitrix24's auth=, Zoho's refresh_token=):
            # log the method and the path only.
            log.debug("%s %s", self.command, urlsplit(self.path).path)

    return Handler


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --------------------------------------------------------------------------------------------
# Finding sandboxes

SANDBOX_GROUP = "crmhub.sandboxes"


def sandbox_vendors() -> list[str]:
    """Vendors with a sandbox, from the ``crmhub.sandboxes`` entry-point group."""
    return sorted(ep.name for ep in entry_points(group=SANDBOX_GROUP))


def load_sandbox(
    vendor: str, options: SandboxOptions | None = None, *, port: int = 0, host: str = LOOPBACK
) -> Sandbox:
    """A :class:`Sandbox` of ``vendor``'s emulator, seeded as ``options`` say (not started).

    Raises ConnectorConfigError for an unknown vendor and OSError when the port is taken.
    """
    options = options or SandboxOptions()
    found = [ep for ep in entry_points(group=SANDBOX_GROUP) if ep.name == vendor]
    if not found:
        known = ", ".join(sandbox_vendors()) or "none installed"
        raise ConnectorConfigError(f"no sandbox for vendor {vendor!r} (known: {known})")
    factory: Callable[[SandboxOptions], VendorApi] = found[0].load()
    api = factory(options)
    if options.records:
        api.seed_records(options.records, options.seed)
    return Sandbox(api, options, host=host, port=port)
