"""The Bitrix24 connector (REST ``crm.company.*``, ``crm.contact.*``, ``crm.deal.*``, ``batch``).

Public entry points: :class:`Bitrix24Connector` (also ``list_ids``, the
:class:`~connectors.base.SweepsIds` protocol, and ``headroom``, the
:class:`~connectors.base.ReportsHeadroom` one), :class:`Bitrix24Settings`,
:func:`classify_bitrix24` and :func:`classify_oauth`.

How it talks to Bitrix24 (facts: ``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md``
section 2; wire formats and how records are shown to the hub: :mod:`connectors.bitrix24.wire`):

* Auth: an inbound webhook URL (``https://<portal>/rest/<user>/<code>/``; the code is a secret
  and is scrubbed from every message), or an OAuth application: the configured access token is
  used until the portal answers 401 ``expired_token``, then ``oauth_url`` mints a new one from
  the refresh token (Bitrix24 rotates refresh tokens: the newest is kept in memory). The access
  token travels as the ``auth`` query parameter, as Bitrix24 wants it. A refused webhook or
  refresh (``invalid_grant``, ``invalid_client``) is an AuthError naming the setting to change.
* Everything goes through ``POST /rest/batch.json`` with at most 50 commands (``c0`` ... keys:
  numeric keys would be turned into a JSON list by the portal's PHP and lose which command
  failed), ``halt: 0`` so one bad record does not stop the others, and each command's result
  and error read from ``result``/``result_error``.
* Limits: Bitrix24 counts requests in a leaky bucket (2 a second drained, 50 deep; Enterprise
  5 and 250). The client throttles itself before sending with a rolling window of ``burst``
  requests per ``ceil(burst / requests_per_second)`` seconds, which never overfills the bucket
  and sustains at most the drain rate; 503 ``QUERY_LIMIT_EXCEEDED`` (another client on the
  portal) and 429 ``OPERATION_TIME_LIMIT`` are waited out and retried. A batch counts as one
  request, so reads pack 50 list commands (2,500 records) into one request and writes 50
  records.
* Headroom: the leaky bucket is never reported, but every answer's ``time`` gives the seconds
  of a method's operating budget spent in the last ten minutes (``operating``) and when some
  of it frees (``operating_reset_at``). ``headroom`` reports one budget, ``operating``: of
  every method's latest figures, those of the method nearest its limit, named in ``scope``, so
  one line tells whether Bitrix24 is about to block a method. Both the batch's own ``time``
  and each command's ``result_time`` are read: Bitrix24's limits page charges commands to
  their own methods, while an SDK reports portals charging the batch; reading both is right
  either way. The limit is not in the answer: it is the 480 s the limits page gives for cloud
  portals. A portal whose answers carry no ``operating`` (self-hosted, its limiter off)
  reports nothing.
* Reads: ``crm.<entity>.list`` ordered by ``DATE_MODIFY`` then ``ID``, ``select`` naming the
  multifields (``PHONE``, ``EMAIL``, ``WEB``) explicitly (a mask never includes them). A page is
  one batch request: the first of a read holds 4 list commands (200 records: most incremental
  reads find little, and every list command spends the method's operating-time budget), the
  following ones 50 (2,500 records), so a full read of 5,000 contacts takes 3 requests. Reads
  are keyset-paged: each request starts from the position (second, id) of the last record
  handed out, with one command for the rest of that second (``>=DATE_MODIFY`` that second,
  ``<DATE_MODIFY`` the next, ``>ID`` the last id) and the others paging by ``start`` from the
  next second on. An edit made while the hub pages moves a record to the end, where the next
  request meets it again; only inside one batch request (milliseconds on the portal) can an
  edit shift the ``start`` offsets of the commands after it. A second holding more records
  than one command returns (a bulk import) is paged through with every command of the next
  request before moving on. ``DATE_MODIFY`` is in the portal's time zone and whole seconds: it
  is parsed to UTC, and ``modified_precision`` is one second. Page tokens are the position
  as base64url-encoded JSON.
* Writes: ``crm.<entity>.add``/``update`` with ``REGISTER_SONET_EVENT=N``. Multifields are
  rewritten by item ``ID``: an update first reads the records' current items (one request for
  50 records) and sends ``{"ID", "VALUE"}`` or ``{"ID", "DELETE": "Y"}``, adding an item only
  when there is none. A contact create first asks ``crm.duplicate.findbycomm`` for its email
  (one command per record, one request per batch) and updates the contact found instead of
  adding a duplicate, so a create repeated after a crash is harmless.
* References: ``COMPANY_ID`` on contacts and deals; a deal's contacts are the pseudo-field
  ``CONTACT_IDS``: read with ``crm.deal.contact.items.get`` (lists never return it), written as
  the ``CONTACT_IDS`` field on add and with ``crm.deal.contact.items.set`` (``items.delete`` to
  clear) on update.
* Deletes: Bitrix24 lists never show deleted records, and the connector does not claim to
  detect them (``read_deletes`` is empty). The hub sweeps ids instead: ``list_ids`` pages every
  live id (``select ID``, ``>ID`` keyset, 2,500 ids a request), and a linked id no longer listed
  was deleted. A page whose commands saw the count drop (a delete during the request, which
  shifts ``start`` offsets) is cut before the drop, so no live id is ever skipped.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Final, NamedTuple
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from requests.auth import AuthBase

from connectors.base import (
    Capabilities,
    Headroom,
    Page,
    RemoteRecord,
    VendorFields,
    WriteResult,
    validated_settings,
)
from connectors.bitrix24.wire import (
    CONTACT_IDS_FIELD as CONTACT_IDS,
)
from connectors.bitrix24.wire import (
    ENTITIES,
    build_query,
    multifield_changes,
    multifields_of,
    present_record,
)
from connectors.errors import (
    AuthError,
    AuthExpired,
    ConnectorConfigError,
    ConnectorError,
    RateLimited,
    RecordRejected,
    TransientError,
    VendorError,
    credentials_refused,
    setting_path,
)
from connectors.http import (
    HttpClient,
    HttpSettings,
    NoAuth,
    OAuthRefresher,
    body_excerpt,
    default_classifier,
)
from connectors.paging import pack_token, unpack_token
from connectors.ratelimit import RateLimiter
from connectors.timeparse import parse_vendor_datetime

__all__ = ["Bitrix24Connector", "Bitrix24Settings", "classify_bitrix24", "classify_oauth"]

OAUTH_URL: Final = "https://oauth.bitrix.info/oauth/token/"
MAX_COMMANDS: Final = 50  # per batch request (ERROR_BATCH_LENGTH_EXCEEDED beyond)
LIST_PAGE: Final = 50  # rows per list command, fixed by Bitrix24
MAX_BATCH: Final = 50  # records per write call: one command each, one request
FIRST_COMMANDS: Final = 4  # list commands in the first request of a read (200 records)
# A method's operating budget on a cloud portal: seconds of execution per ten minutes.
OPERATING_LIMIT: Final = 480
# The header the client's authenticator fills; moved into Bitrix24's ``auth`` parameter just
# before sending (its name says "auth", so the HTTP layer scrubs its value from messages).
AUTH_HEADER: Final = "X-Bitrix24-Auth"
_THROTTLED: Final = frozenset({"QUERY_LIMIT_EXCEEDED", "OVERLOAD_LIMIT", "OPERATION_TIME_LIMIT"})
_AUTH_REFRESH: Final = frozenset({"expired_token", "invalid_token", "NO_AUTH_FOUND"})
_OAUTH_REFUSED: Final = frozenset(
    {"invalid_grant", "invalid_client", "invalid_request", "PAYMENT_REQUIRED", "wrong_client"}
)
_ALWAYS_SELECTED: Final = ("ID", "DATE_MODIFY")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Settings


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


class Bitrix24Settings(HttpSettings):
    """Settings of a ``connector: bitrix24`` system.

    Either ``webhook_url`` (an inbound webhook with the ``crm`` scope) or an OAuth application:
    ``base_url`` (the portal, ``https://example.bitrix24.com``), ``client_id``,
    ``client_secret``, ``refresh_token`` and optionally a current ``access_token``.
    ``oauth_url`` is Bitrix24's token server. ``requests_per_second`` and ``burst`` describe the
    portal's leaky bucket (2 and 50; Enterprise 5 and 250), shared through
    ``rate_limit_storage``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: SecretStr | None = None
    base_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    oauth_url: str = OAUTH_URL
    requests_per_second: float = Field(default=2.0, gt=0, le=1000)
    burst: int = Field(default=50, ge=1, le=10_000)
    rate_limit_storage: str = "memory://"

    @model_validator(mode="after")
    def _one_way_in(self) -> Bitrix24Settings:
        for name in ("base_url", "oauth_url"):
            value = getattr(self, name)
            if value is not None:
                try:
                    _url(value)
                except ValueError:
                    raise ValueError(f"{name}: must be an http(s) URL") from None
        if self.webhook_url is not None:
            try:
                _url(self.webhook_url.get_secret_value())
            except ValueError:
                raise ValueError(
                    "webhook_url: must be https://<portal>/rest/<user>/<code>/"
                ) from None
            oauth = [n for n in ("client_id", "client_secret", "refresh_token") if getattr(self, n)]
            if oauth:
                raise ValueError(f"give webhook_url or OAuth keys, not both ({', '.join(oauth)})")
            return self
        missing = [
            name
            for name in ("base_url", "client_id", "client_secret", "refresh_token")
            if not _filled(getattr(self, name))
        ]
        if missing:
            raise ValueError(
                f"webhook_url, or OAuth keys: missing {', '.join(missing)} (give a webhook URL, "
                "or the portal's base_url with the application's client_id, client_secret and "
                "refresh_token)"
            )
        return self

    def window(self) -> str:
        """The client-side budget as a ``limits`` rolling window (see the module docstring)."""
        seconds = max(math.ceil(self.burst / self.requests_per_second), 1)
        return f"{self.burst} per {seconds} second"


def _filled(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value().strip())
    return bool(value)


# --------------------------------------------------------------------------------------------
# Classifying Bitrix24's answers


def _error_body(response: requests.Response) -> tuple[str, str] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, Mapping) or "error" not in body:
        return None
    return str(body.get("error") or ""), _clean(body.get("error_description"))


def _clean(description: object) -> str:
    return _HTML_BREAK.sub(" ", str(description or "")).strip()


def classify_bitrix24(
    response: requests.Response, *, throttle_wait: float = 1.0
) -> ConnectorError | None:
    """Bitrix24's answer in the taxonomy: its envelope ``{"error", "error_description"}``.

    401 (``expired_token``, ``invalid_token``, ``NO_AUTH_FOUND``) → AuthExpired (refresh once);
    403 → AuthError; 503 ``QUERY_LIMIT_EXCEEDED``/``OVERLOAD_LIMIT`` and 429
    ``OPERATION_TIME_LIMIT`` → RateLimited (Bitrix24 sends no Retry-After: ``throttle_wait``
    is how long the bucket takes to drain a request or two); 5xx → TransientError; other
    errors → VendorError quoting the vendor.
    """
    status = response.status_code
    if status < 300:
        return None
    parsed = _error_body(response)
    if parsed is None:
        return default_classifier(response)
    code, description = parsed
    text = f"HTTP {status} {code or 'error'}: {description or body_excerpt(response, 120)}"
    if code in _THROTTLED or status == 429:
        wait = None if code == "OPERATION_TIME_LIMIT" else throttle_wait
        return RateLimited(text, retry_after=wait)
    if status == 401 or code in _AUTH_REFRESH:
        return AuthExpired(text)
    if status == 403:
        return AuthError(f"{text}; check the webhook's or application's crm scope and rights")
    if status >= 500:
        return TransientError(text)
    if code == "ERROR_METHOD_NOT_FOUND":
        return ConnectorConfigError(f"{text}; check base_url or webhook_url")
    return VendorError(text)


def classify_oauth(
    response: requests.Response, *, system: str | None = None
) -> ConnectorError | None:
    """The token server's answer: a refused grant or client is the user's to fix, in the
    settings of ``system`` it names."""
    status = response.status_code
    if status < 300:
        return None
    parsed = _error_body(response)
    if parsed is None or (parsed[0] not in _OAUTH_REFUSED and status not in (400, 401, 403)):
        return default_classifier(response)
    code, description = parsed
    said = f"HTTP {status} {code or 'error'}: {description or body_excerpt(response, 120)}"
    client_id, client_secret, refresh_token = (
        setting_path(system, key) for key in ("client_id", "client_secret", "refresh_token")
    )
    if code == "invalid_grant":
        return credentials_refused(
            "the refresh token",
            said,
            "it was revoked (the application reinstalled), lapsed after 180 days unused, or "
            "was replaced by a newer one (Bitrix24 issues one at each refresh); authorize the "
            f"application again and set {refresh_token} to the refresh token it gives",
        )
    if code in ("invalid_client", "wrong_client"):
        return credentials_refused(
            "the application's client credentials",
            said,
            f"set {client_id} and {client_secret} to the application's",
        )
    return credentials_refused(
        "the token refresh", said, f"check {client_id}, {client_secret} and {refresh_token}"
    )


# --------------------------------------------------------------------------------------------
# Auth


class _TokenInQuery(AuthBase):
    """Moves the access token from :data:`AUTH_HEADER` to Bitrix24's ``auth`` parameter."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = request.headers.pop(AUTH_HEADER, None)
        if token and request.url is not None:
            request.prepare_url(request.url, {"auth": token})
        return request


class _WebhookAuth(NoAuth):
    """A webhook carries its credential in the URL; a refusal cannot be renewed."""

    def __init__(self, system: str) -> None:
        self._setting = setting_path(system, "webhook_url")

    def refresh(self) -> None:
        raise AuthError(
            "the portal refused the webhook URL (the webhook was deleted, expired, or lost its "
            "crm scope): create an inbound webhook with the crm scope and set "
            f"{self._setting} to its URL"
        )

    def __repr__(self) -> str:
        return "_WebhookAuth()"


class _OAuthTokens:
    """The configured access token first, then refresh-token grants at ``oauth_url``."""

    def __init__(self, settings: Bitrix24Settings, client: HttpClient) -> None:
        self._client = client
        # Absolute, trailing slash kept: the token server answers /oauth/token without it
        # with a redirect, which the client does not follow.
        self._url = settings.oauth_url
        self._client_id = settings.client_id or ""
        self._secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
        self._refresh = settings.refresh_token.get_secret_value() if settings.refresh_token else ""
        self._initial = settings.access_token.get_secret_value() if settings.access_token else ""
        self._lock = threading.Lock()

    def __call__(self) -> tuple[str, float]:
        with self._lock:
            if self._initial:
                # Its age is unknown: used until the portal says expired_token.
                token, self._initial = self._initial, ""
                return token, 3600.0
            response = self._client.get(
                self._url,
                params={
                    "grant_type": "refresh_token",
                    "client_id": self._client_id,
                    "client_secret": self._secret,
                    "refresh_token": self._refresh,
                },
            )
            body = response.json if isinstance(response.json, Mapping) else {}
            fresh = body.get("access_token")
            if not isinstance(fresh, str) or not fresh:
                raise VendorError("Bitrix24's token server answered without an access_token")
            rotated = body.get("refresh_token")
            if isinstance(rotated, str) and rotated:
                self._refresh = rotated
            return fresh, float(body.get("expires_in") or 3600)


# --------------------------------------------------------------------------------------------
# Batches


@dataclass(frozen=True, slots=True)
class _Batch:
    """One batch's per-command outcomes, by command key."""

    result: Mapping[str, Any]
    error: Mapping[str, Any]
    total: Mapping[str, Any]
    next: Mapping[str, Any]


def _as_map(value: Any) -> dict[str, Any]:
    # PHP sends an empty map as [] and a map with keys 0..n as a list.
    if isinstance(value, Mapping):
        return {str(key): inner for key, inner in value.items()}
    if isinstance(value, list):
        return {str(index): inner for index, inner in enumerate(value)}
    return {}


def _command(method: str, params: Mapping[str, Any]) -> str:
    query = build_query(params)
    return f"{method}?{query}" if query else method


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------------------------
# Operating time


class _Operating(NamedTuple):
    """One method's operating budget as an answer reported it."""

    used: float
    resets_at: datetime | None


def _operating(time_block: Any) -> _Operating | None:
    """The operating figures of an answer's ``time`` block; None when it has none."""
    if not isinstance(time_block, Mapping):
        return None
    used = time_block.get("operating")
    if isinstance(used, bool) or not isinstance(used, int | float):
        return None
    reset = time_block.get("operating_reset_at")
    if isinstance(reset, bool) or not isinstance(reset, int | float):
        return _Operating(float(used), None)
    try:
        return _Operating(float(used), datetime.fromtimestamp(reset, UTC))
    except (OverflowError, OSError, ValueError):  # a time no calendar holds
        return _Operating(float(used), None)


def _method_of(command: str) -> str:
    return command.partition("?")[0].lower().removesuffix(".json")


# --------------------------------------------------------------------------------------------
# Page tokens


_PAGE_STATE_FORMAT: Final = "bitrix24/1"


def _encode(state: Mapping[str, Any]) -> str:
    """A read position (``k`` second, ``d`` last id, ``c`` crowded) as an opaque string."""
    return pack_token(state, kind=_PAGE_STATE_FORMAT)


def _decode(token: str) -> dict[str, Any]:
    return unpack_token(token, kind=_PAGE_STATE_FORMAT)


def _filter_time(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).isoformat()


@dataclass(slots=True)
class _Fetched:
    """Raw rows of one read request in (second, id) order; whether the read is done, and
    whether the request ended inside a second crowded beyond what its commands reached."""

    rows: list[tuple[int, int, dict[str, Any]]]
    done: bool
    crowded: bool


# --------------------------------------------------------------------------------------------
# The connector


class Bitrix24Connector:
    """One Bitrix24 portal (see the module docstring)."""

    settings_model: ClassVar[type[BaseModel]] = Bitrix24Settings
    vendor: ClassVar[str] = "bitrix24"

    def __init__(
        self,
        system: str,
        settings: Bitrix24Settings | Mapping[str, Any],
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.system = system
        settings = validated_settings(Bitrix24Settings, settings, system=system, vendor="Bitrix24")
        self.settings = settings
        options: dict[str, Any] = {"timeouts": settings.timeouts}
        token_options: dict[str, Any] = {"timeouts": settings.timeouts}
        if sleep is not None:
            options["sleep"] = token_options["sleep"] = sleep
        secrets: list[str] = []
        if settings.webhook_url is not None:
            root = settings.webhook_url.get_secret_value().rstrip("/")
            secrets = [root, *[p for p in urlsplit(root).path.split("/") if len(p) >= 6]]
            auth: Any = _WebhookAuth(system)
            self._token_client: HttpClient | None = None
        else:
            assert settings.base_url is not None  # checked by the settings model
            root = f"{settings.base_url.rstrip('/')}/rest"
            token_server = urlsplit(settings.oauth_url)
            # At the origin, so that messages show the token endpoint's path.
            self._token_client = HttpClient(
                system,
                f"{token_server.scheme}://{token_server.netloc}",
                classifier=partial(classify_oauth, system=system),
                max_attempts=3,
                **token_options,
            )
            auth = OAuthRefresher(
                _OAuthTokens(settings, self._token_client), header=AUTH_HEADER, prefix=""
            )
        portal = urlsplit(root).netloc
        try:
            limiter = RateLimiter(
                settings.window(),
                key=f"bitrix24:{portal}",
                storage_uri=settings.rate_limit_storage,
            )
        except ConnectorConfigError as exc:
            raise ConnectorConfigError(
                f"rate_limit_storage or budget: {exc.message}", system=system
            ) from None
        wait = 2.0 / settings.requests_per_second

        def classify(response: requests.Response) -> ConnectorError | None:
            return classify_bitrix24(response, throttle_wait=min(max(wait, 0.5), 10.0))

        if session is not None:
            options["session"] = session
        self.http = HttpClient(
            system,
            root,
            auth=auth,
            classifier=classify,
            rate_limiter=limiter,
            secrets=secrets,
            **options,
        )
        # The client's session (its own, or the one given) carries the token in the query.
        self.http.session.auth = _TokenInQuery()
        self.capabilities = Capabilities(
            object_types=frozenset(ENTITIES),
            max_batch=MAX_BATCH,
            detects_deletes=False,
            # A contact create asks crm.duplicate.findbycomm for its email first and updates
            # the contact found: it upserts on EMAIL, so a create retried after a crash is safe.
            upsert_keys={"contacts": "EMAIL"},
            modified_precision=timedelta(seconds=1),
            # A page is one batch request of list commands: 2,500 records (the first 200).
            read_page_size=MAX_COMMANDS * LIST_PAGE,
            # A deal's contacts: one crm.deal.contact.items.get command each, 50 to a batch.
            read_calls_per_record={"deals": 1 / MAX_COMMANDS},
            rate_windows=limiter.windows,
        )
        # Per method, its operating budget as the latest answer that reported it said.
        self._operating: dict[str, _Operating] = {}
        self._operating_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Bitrix24Connector({self.system!r})"

    def close(self) -> None:
        self.http.close()
        if self._token_client is not None:
            self._token_client.close()

    # ----------------------------------------------------------------- plumbing

    def _entity(self, object_type: str) -> str:
        try:
            return ENTITIES[object_type]
        except KeyError:
            raise ConnectorConfigError(
                f"Bitrix24 has no object type {object_type!r} (known: {', '.join(ENTITIES)})",
                system=self.system,
            ) from None

    def _batch(self, commands: Mapping[str, str], *, reads: bool) -> _Batch:
        """One ``batch`` request (at most 50 commands)."""
        assert len(commands) <= MAX_COMMANDS
        response = self.http.post(
            "/batch.json", json={"halt": 0, "cmd": dict(commands)}, idempotent=reads
        )
        body = response.json
        outer = body.get("result") if isinstance(body, Mapping) else None
        if not isinstance(outer, Mapping):
            raise VendorError(
                "Bitrix24 answered a batch without its result envelope", system=self.system
            )
        self._note_operating(body.get("time"), commands, _as_map(outer.get("result_time")))
        return _Batch(
            _as_map(outer.get("result")),
            _as_map(outer.get("result_error")),
            _as_map(outer.get("result_total")),
            _as_map(outer.get("result_next")),
        )

    def _note_operating(
        self, batch_time: Any, commands: Mapping[str, str], command_times: Mapping[str, Any]
    ) -> None:
        """Keep each method's operating figures from a batch answer (a method several commands
        ran reports a running sum: the largest is its latest)."""
        reported: dict[str, _Operating] = {}
        for method, time_block in [
            ("batch", batch_time),
            *((_method_of(command), command_times.get(key)) for key, command in commands.items()),
        ]:
            figures = _operating(time_block)
            if figures is not None and (
                method not in reported or figures.used > reported[method].used
            ):
                reported[method] = figures
        with self._operating_lock:
            self._operating.update(reported)

    def headroom(self) -> Mapping[str, Headroom]:
        """``operating``: the latest figures of the method nearest its operating limit."""
        with self._operating_lock:
            if not self._operating:
                return {}
            method, figures = max(self._operating.items(), key=lambda item: item[1].used)
        budget = Headroom(
            used=figures.used,
            limit=OPERATING_LIMIT,
            unit="seconds",
            window="10min",
            scope=method,
        )
        if figures.resets_at is not None:
            budget["resets_at"] = figures.resets_at.isoformat()
        return {"operating": budget}

    def _batches(self, commands: Sequence[tuple[str, str]], *, reads: bool) -> _Batch:
        """Commands in as many batch requests as it takes, their outcomes merged."""
        result: dict[str, Any] = {}
        error: dict[str, Any] = {}
        total: dict[str, Any] = {}
        following: dict[str, Any] = {}
        for chunk in _chunks(commands, MAX_COMMANDS):
            batch = self._batch(dict(chunk), reads=reads)
            result.update(batch.result)
            error.update(batch.error)
            total.update(batch.total)
            following.update(batch.next)
        return _Batch(result, error, total, following)

    def _read_failure(self, batch: _Batch) -> None:
        """A read command that failed fails the read, in the taxonomy."""
        for key, problem in batch.error.items():
            code, description = _problem(problem)
            text = f"batch command {key}: {code or 'error'}: {description}"
            if code in _THROTTLED:
                raise RateLimited(text, system=self.system)
            if code in _AUTH_REFRESH:
                raise AuthExpired(text, system=self.system)
            raise VendorError(text, system=self.system)

    def _select(self, object_type: str, fields: Sequence[str]) -> list[str]:
        multis = multifields_of(object_type)
        wanted: list[str] = list(_ALWAYS_SELECTED)
        for name in fields:
            real = multis[name].kind if name in multis else name
            if name == CONTACT_IDS and object_type == "deals":
                continue
            if real not in wanted:
                wanted.append(real)
        return wanted

    def _presented_names(self, object_type: str, fields: Sequence[str]) -> list[str]:
        return [name for name in dict.fromkeys(fields) if name not in _ALWAYS_SELECTED]

    def _record(
        self, object_type: str, raw: Mapping[str, Any], names: Sequence[str]
    ) -> RemoteRecord:
        record_id = raw.get("ID")
        if record_id is None:
            raise VendorError(
                f"Bitrix24 returned a {object_type} row without ID", system=self.system
            )
        try:
            modified = parse_vendor_datetime(raw["DATE_MODIFY"])
        except (KeyError, TypeError, ValueError):
            raise VendorError(
                f"Bitrix24 returned {object_type} {record_id} without a readable DATE_MODIFY",
                system=self.system,
            ) from None
        values = present_record(object_type, raw, [n for n in names if n != CONTACT_IDS])
        if CONTACT_IDS in names:
            values[CONTACT_IDS] = raw.get(CONTACT_IDS, [])
        return RemoteRecord(str(record_id), modified, values)

    def _with_deal_contacts(
        self, object_type: str, rows: list[dict[str, Any]], names: Sequence[str]
    ) -> None:
        """Fill ``CONTACT_IDS`` of deal rows from ``crm.deal.contact.items.get``."""
        if object_type != "deals" or CONTACT_IDS not in names or not rows:
            return
        commands = [
            (f"c{index}", _command("crm.deal.contact.items.get", {"id": row["ID"]}))
            for index, row in enumerate(rows)
        ]
        batch = self._batches(commands, reads=True)
        self._read_failure(batch)
        for index, row in enumerate(rows):
            items = batch.result.get(f"c{index}")
            bindings = (
                [item for item in items if isinstance(item, Mapping)]
                if isinstance(items, list)
                else []
            )
            bindings.sort(key=lambda b: (b.get("IS_PRIMARY") != "Y", int(b.get("SORT") or 0)))
            row[CONTACT_IDS] = [str(b["CONTACT_ID"]) for b in bindings if b.get("CONTACT_ID")]

    # ----------------------------------------------------------------- reads

    def check(self) -> None:
        batch = self._batch(
            {"c0": _command("crm.contact.list", {"select": ["ID"], "start": -1})}, reads=True
        )
        self._read_failure(batch)

    def read_changes(
        self,
        object_type: str,
        since: datetime | None,
        page_token: str | None,
        fields: Sequence[str],
    ) -> Page:
        entity = self._entity(object_type)
        select = self._select(object_type, fields)
        names = self._presented_names(object_type, fields)
        if page_token:
            state = _decode(page_token)
        elif since is None:
            state = {}
        else:
            # Stamps are whole seconds: the whole of since's second, ids above 0.
            state = {"k": math.floor(since.timestamp()), "d": 0}
        # The first request of a read is small (most incremental reads find little, and
        # every list command spends the method's operating-time budget); later ones are full.
        commands = FIRST_COMMANDS if page_token is None else MAX_COMMANDS
        fetched = self._fetch(entity, select, state, commands)
        if not fetched.rows and not fetched.done:
            # The crowded second emptied meanwhile (its rows edited away): look past it.
            fetched = self._fetch(entity, select, {**state, "c": 0}, commands)
        if not fetched.rows:
            return Page([], None)
        second, last_id, _ = fetched.rows[-1]
        next_state: dict[str, Any] = {"k": second, "d": last_id}
        if fetched.crowded:
            next_state["c"] = 1
        next_token = None if fetched.done else _encode(next_state)
        rows = [row for _, _, row in fetched.rows]
        self._with_deal_contacts(object_type, rows, names)
        return Page([self._record(object_type, row, names) for row in rows], next_token)

    def _fetch(
        self, entity: str, select: list[str], state: Mapping[str, Any], commands_max: int
    ) -> _Fetched:
        """One batch request of list commands from the position ``state`` names."""
        order = {"DATE_MODIFY": "ASC", "ID": "ASC"}
        method = f"crm.{entity}.list"
        within: list[str] = []
        after: list[str] = []
        key = state.get("k")
        if key is None:
            after = [
                _command(method, {"order": order, "select": select, "start": n * LIST_PAGE})
                for n in range(commands_max)
            ]
        else:
            crowded = bool(state.get("c"))
            same_second = {
                ">=DATE_MODIFY": _filter_time(int(key)),
                "<DATE_MODIFY": _filter_time(int(key) + 1),
                ">ID": int(state.get("d") or 0),
            }
            count = commands_max if crowded else 1
            within = [
                _command(
                    method,
                    {
                        "filter": same_second,
                        "order": order,
                        "select": select,
                        "start": n * LIST_PAGE,
                    },
                )
                for n in range(count)
            ]
            later = {">=DATE_MODIFY": _filter_time(int(key) + 1)}
            after = [
                _command(
                    method,
                    {"filter": later, "order": order, "select": select, "start": n * LIST_PAGE},
                )
                for n in range(commands_max - count)
            ]
        commands = [(f"w{n}", cmd) for n, cmd in enumerate(within)]
        commands += [(f"a{n}", cmd) for n, cmd in enumerate(after)]
        batch = self._batch(dict(commands), reads=True)
        self._read_failure(batch)

        def rows_of(prefix: str, count: int) -> tuple[list[dict[str, Any]], bool]:
            rows: list[dict[str, Any]] = []
            more = False
            for n in range(count):
                page = batch.result.get(f"{prefix}{n}")
                if isinstance(page, list):
                    rows.extend(row for row in page if isinstance(row, dict))
                more = f"{prefix}{n}" in batch.next
                if not more:
                    break
            return rows, more

        within_rows, within_more = rows_of("w", len(within))
        if within_more:
            # The second holds more than these commands reached: finish it before moving on.
            return _Fetched(self._keyed(within_rows), done=False, crowded=True)
        after_rows, after_more = rows_of("a", len(after))
        # A request spent wholly on a crowded second has not looked past it yet.
        done = bool(after) and not after_more
        return _Fetched(self._keyed(within_rows + after_rows), done=done, crowded=False)

    def _keyed(self, rows: list[dict[str, Any]]) -> list[tuple[int, int, dict[str, Any]]]:
        keyed: dict[int, tuple[int, int, dict[str, Any]]] = {}
        for row in rows:
            try:
                stamp = parse_vendor_datetime(row["DATE_MODIFY"])
                record_id = int(row["ID"])
            except (KeyError, TypeError, ValueError):
                raise VendorError(
                    "Bitrix24 returned a row without a readable ID or DATE_MODIFY",
                    system=self.system,
                ) from None
            # An id met twice (edited while the batch ran) keeps its newest version.
            keyed.pop(record_id, None)
            keyed[record_id] = (math.floor(stamp.timestamp()), record_id, row)
        return sorted(keyed.values(), key=lambda item: (item[0], item[1]))

    def read_deletes(
        self, object_type: str, since: datetime | None, page_token: str | None
    ) -> Page:
        # Bitrix24 lists never show deleted records; the hub sweeps ids (list_ids) instead.
        self._entity(object_type)
        return Page([], None)

    def list_ids(self, object_type: str, page_token: str | None) -> tuple[list[str], str | None]:
        """Ids of every live record, 2,500 a request, by ``>ID`` keyset (see the docstring)."""
        entity = self._entity(object_type)
        last = int(_decode(page_token).get("d", 0)) if page_token else 0
        commands = {
            f"c{n}": _command(
                f"crm.{entity}.list",
                {
                    "filter": {">ID": last},
                    "order": {"ID": "ASC"},
                    "select": ["ID"],
                    "start": n * LIST_PAGE,
                },
            )
            for n in range(MAX_COMMANDS)
        }
        batch = self._batch(commands, reads=True)
        self._read_failure(batch)
        ids: list[int] = []
        first_total: int | None = None
        more = False
        for n in range(MAX_COMMANDS):
            key = f"c{n}"
            total = _int(batch.total.get(key))
            if first_total is None:
                first_total = total
            elif total is not None and first_total is not None and total < first_total:
                # A record was deleted while the batch ran: later offsets skipped a live id.
                more = True
                break
            page = batch.result.get(key)
            if isinstance(page, list):
                ids.extend(int(row["ID"]) for row in page if isinstance(row, Mapping))
            more = key in batch.next
            if not more:
                break
        if not ids:
            return [], None
        return [str(i) for i in ids], _encode({"d": max(ids)}) if more else None

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> list[RemoteRecord]:
        entity = self._entity(object_type)
        wanted = [int(i) for i in dict.fromkeys(ids) if str(i).isdigit()]
        if not wanted:
            return []
        rows = self._rows_by_id(entity, wanted, self._select(object_type, fields))
        names = self._presented_names(object_type, fields)
        ordered = [rows[i] for i in wanted if i in rows]
        self._with_deal_contacts(object_type, ordered, names)
        return [self._record(object_type, row, names) for row in ordered]

    def _rows_by_id(
        self, entity: str, ids: Sequence[int], select: Sequence[str]
    ) -> dict[int, dict[str, Any]]:
        commands = [
            (
                f"c{n}",
                _command(
                    f"crm.{entity}.list",
                    {"filter": {"@ID": list(chunk)}, "order": {"ID": "ASC"}, "select": select},
                ),
            )
            for n, chunk in enumerate(_chunks(ids, LIST_PAGE))
        ]
        batch = self._batches(commands, reads=True)
        self._read_failure(batch)
        rows: dict[int, dict[str, Any]] = {}
        for page in batch.result.values():
            if isinstance(page, list):
                for row in page:
                    if isinstance(row, dict) and str(row.get("ID", "")).isdigit():
                        rows[int(row["ID"])] = row
        return rows

    def find(self, object_type: str, field: str, values: Sequence[str]) -> list[RemoteRecord]:
        entity = self._entity(object_type)
        wanted = [v for v in dict.fromkeys(values) if v]
        if not wanted:
            return []
        multifield = multifields_of(object_type).get(field)
        if multifield is not None and multifield.kind in ("EMAIL", "PHONE"):
            found = self._duplicates(entity, multifield.kind, wanted)
            ids = sorted({i for matches in found.values() for i in matches})
        else:
            commands = [
                (
                    f"c{n}",
                    _command(
                        f"crm.{entity}.list",
                        {"filter": {field: value}, "order": {"ID": "ASC"}, "select": ["ID"]},
                    ),
                )
                for n, value in enumerate(wanted)
            ]
            batch = self._batches(commands, reads=True)
            self._read_failure(batch)
            ids = sorted(
                {
                    int(row["ID"])
                    for page in batch.result.values()
                    if isinstance(page, list)
                    for row in page
                    if isinstance(row, Mapping)
                }
            )
        folded = {v.strip().casefold() for v in wanted}
        records = self.read(object_type, [str(i) for i in ids], [field])
        return [
            r
            for r in records
            if isinstance(r.fields.get(field), str)
            and str(r.fields[field]).strip().casefold() in folded
        ]

    def _duplicates(self, entity: str, kind: str, values: Sequence[str]) -> dict[str, list[int]]:
        """``crm.duplicate.findbycomm`` for each value: the ids of its entity that hold it."""
        commands = [
            (
                f"c{n}",
                _command(
                    "crm.duplicate.findbycomm",
                    {"entity_type": entity.upper(), "type": kind, "values": [value]},
                ),
            )
            for n, value in enumerate(values)
        ]
        batch = self._batches(commands, reads=True)
        self._read_failure(batch)
        found: dict[str, list[int]] = {}
        for n, value in enumerate(values):
            result = batch.result.get(f"c{n}")
            matches = result.get(entity.upper()) if isinstance(result, Mapping) else None
            if isinstance(matches, list):
                found[value] = sorted(int(i) for i in matches if str(i).isdigit())
        return found

    # ----------------------------------------------------------------- writes

    def create(self, object_type: str, records: Sequence[VendorFields]) -> list[WriteResult]:
        entity = self._entity(object_type)
        results: list[WriteResult | None] = [None] * len(records)
        existing: dict[int, str] = {}
        if object_type == "contacts":
            emails = {
                index: str(record["EMAIL"]).strip()
                for index, record in enumerate(records)
                if record.get("EMAIL")
            }
            found = self._duplicates(entity, "EMAIL", sorted(set(emails.values())))
            for index, email in emails.items():
                if found.get(email):
                    existing[index] = str(found[email][0])
        if existing:
            # A create repeated after a crash (or a contact the portal has already) updates it.
            updated = self.update(
                object_type, [(existing[index], records[index]) for index in sorted(existing)]
            )
            for index, result in zip(sorted(existing), updated, strict=True):
                results[index] = result
        todo = [index for index in range(len(records)) if index not in existing]
        commands = [
            (f"c{index}", self._add_command(object_type, entity, records[index])) for index in todo
        ]
        batch = self._batches(commands, reads=False)
        for index in todo:
            key = f"c{index}"
            new_id = batch.result.get(key)
            if key in batch.error or new_id in (None, False):
                results[index] = self._rejected(batch.error.get(key))
            else:
                results[index] = WriteResult(str(new_id))
        return [result if result is not None else self._rejected(None) for result in results]

    def _add_command(self, object_type: str, entity: str, record: VendorFields) -> str:
        fields = self._wire_fields(object_type, record)
        fields.update(multifield_changes(object_type, record, {}))
        contacts = record.get(CONTACT_IDS) if object_type == "deals" else None
        if contacts:
            fields[CONTACT_IDS] = [str(i) for i in contacts]
        return _command(
            f"crm.{entity}.add", {"fields": fields, "params": {"REGISTER_SONET_EVENT": "N"}}
        )

    def _wire_fields(self, object_type: str, record: VendorFields) -> dict[str, Any]:
        multis = multifields_of(object_type)
        return {
            name: "" if value is None else value
            for name, value in record.items()
            if name not in multis and name != CONTACT_IDS and name not in _ALWAYS_SELECTED
        }

    def update(
        self, object_type: str, changes: Sequence[tuple[str, VendorFields]]
    ) -> list[WriteResult]:
        entity = self._entity(object_type)
        multis = multifields_of(object_type)
        current: dict[int, dict[str, Any]] = {}
        kinds = sorted({multis[n].kind for _, f in changes for n in f if n in multis})
        ids = [int(i) for i, _ in changes if str(i).isdigit()]
        if kinds and ids:
            current = self._rows_by_id(entity, ids, ["ID", *kinds])
        commands: list[tuple[str, str]] = []
        keys: list[list[str]] = []
        for index, (record_id, record) in enumerate(changes):
            mine: list[str] = []
            row = current.get(int(record_id)) if str(record_id).isdigit() else None
            fields = self._wire_fields(object_type, record)
            fields.update(multifield_changes(object_type, record, row or {}))
            contacts_changed = object_type == "deals" and CONTACT_IDS in record
            if fields or not contacts_changed:
                mine.append(f"u{index}")
                commands.append(
                    (
                        f"u{index}",
                        _command(
                            f"crm.{entity}.update",
                            {
                                "id": record_id,
                                "fields": fields,
                                "params": {
                                    "REGISTER_SONET_EVENT": "N",
                                    "REGISTER_HISTORY_EVENT": "N",
                                },
                            },
                        ),
                    )
                )
            if contacts_changed:
                mine.append(f"b{index}")
                commands.append((f"b{index}", self._deal_contacts_command(record_id, record)))
            keys.append(mine)
        batch = self._batches(commands, reads=False)
        results: list[WriteResult] = []
        for (record_id, _), mine in zip(changes, keys, strict=True):
            failed = [key for key in mine if key in batch.error or batch.result.get(key) is False]
            if failed:
                results.append(self._rejected(batch.error.get(failed[0])))
            else:
                results.append(WriteResult(str(record_id)))
        return results

    def _deal_contacts_command(self, deal_id: str, record: VendorFields) -> str:
        contacts = [str(i) for i in record.get(CONTACT_IDS) or []]
        if not contacts:
            # PHP cannot send an empty list in a query string: clearing is its own method.
            return _command("crm.deal.contact.items.delete", {"id": deal_id})
        items = [
            {"CONTACT_ID": contact, "SORT": 10 * (n + 1), "IS_PRIMARY": "Y" if n == 0 else "N"}
            for n, contact in enumerate(contacts)
        ]
        return _command("crm.deal.contact.items.set", {"id": deal_id, "items": items})

    def delete(self, object_type: str, ids: Sequence[str]) -> list[WriteResult]:
        entity = self._entity(object_type)
        commands = [
            (f"c{n}", _command(f"crm.{entity}.delete", {"id": record_id}))
            for n, record_id in enumerate(ids)
        ]
        batch = self._batches(commands, reads=False)
        return [
            self._rejected(batch.error.get(f"c{n}"))
            if f"c{n}" in batch.error
            else WriteResult(str(record_id))
            for n, record_id in enumerate(ids)
        ]

    def _rejected(self, problem: Any) -> WriteResult:
        code, description = _problem(problem)
        lowered = description.lower()
        field = None
        if "mail" in lowered:
            field = "EMAIL"
        elif "phone" in lowered:
            field = "PHONE"
        message = f"Bitrix24 refused the record: {code + ': ' if code else ''}{description}"
        return WriteResult(
            None, None, RecordRejected(message, code=code or None, field=field, system=self.system)
        )


def _problem(problem: Any) -> tuple[str, str]:
    if isinstance(problem, Mapping):
        return str(problem.get("error") or ""), _clean(problem.get("error_description"))
    return "", "no result and no error for this command"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
