"""The Zoho CRM connector (REST API v8): Accounts, Contacts and Deals.

Public entry points: :class:`ZohoConnector` (also ``picklist``, the
:class:`~connectors.base.DescribesPicklists` protocol), :class:`ZohoSettings`,
:func:`classify_zoho`, :class:`ZohoApiError`.

How it talks to Zoho (facts in ``/work/shared/vendors/hubspot-zoho.md``, part B):

* Auth: OAuth refresh-token flow against the data centre's accounts server; the API host is the
  ``api_domain`` the token response names (unless ``api_url`` is set). The token is cached and
  shared per process (:mod:`connectors.zoho.auth`), refreshed on 401 ``INVALID_TOKEN``, and never
  minted more than 10 times in 10 minutes. A refused refresh (``invalid_code``: the refresh token;
  ``invalid_client``: the client) is an AuthError naming the setting to change.
* Reads: ``GET /crm/v8/{Module}?fields=…&per_page=200&sort_by=Modified_Time&sort_order=asc``.
  Zoho's ``page``/``page_token`` are offsets into that order, and a record edited while the hub
  pages jumps to the end, so every record behind it moves up one place and the one at the next
  page boundary would never be seen (its stamp is older than the newest the read saw, so the
  hub's cursor passes it for good). Reads are therefore keyset-paged on ``Modified_Time``: each
  page is page 1 of a fresh request ``If-Modified-Since`` the newest whole second handed out so
  far, minus the connector's one-second safety (Zoho says "after" and Airbyte found "at or
  after"; stamps are whole seconds), and the records that come back again are dropped: those
  older than that second, and those in it whose ids the page token carries. An edited record
  is then simply met again, with its new stamp, later in the same read. A full read starts with
  no header; an incremental one at ``since``'s second (nothing older is handed out). 304 and
  204 are an empty last page.
* The one exception (offset-paged, documented): when a whole page lies within one second and
  the second before it (a bulk import or mass update), asking again from that second cannot
  advance. The read then pages that same request on by ``page`` (and by ``page_token`` past
  Zoho's 2,000-record wall) until a page reaches a later second, and keyset-pages from there
  again. Inside such a window an edit can still hide one record at a page boundary, as before.
  If Zoho's page token is refused (24-hour expiry, params changed), the window is paged again
  from its start: an overlap, never a gap.
* Page tokens handed to the hub are JSON, zlib-compressed and base64url-encoded: ``k`` the key
  second (epoch seconds; absent on a full read's first window), ``i`` the ids handed out in that
  second, and inside a crowded window ``p`` (the next page number) or ``t`` (Zoho's token).
  Each page costs one list call. What each re-asking repeats (the key's second and the one
  before) is dropped, so a page yields that many fewer new records; a crowded window costs the
  calls it takes to page through it, plus at most one for the page that found it.
* Writes: contacts are created by upsert on ``Email`` (so a create repeated after a crash finds
  its record), other modules by insert; updates by bulk ``PUT``; every write sends
  ``trigger: []`` so Zoho workflows do not echo our writes back. Per-record results
  (``data[i]``) become :class:`~connectors.base.WriteResult`; a request-level rejection of a
  batch is bisected so the good records are still written.
* Lookups (``Account_Name``, ``Contact_Name``) are shown to the hub as id strings
  (:mod:`connectors.zoho.fields`).
* Picklists: ``GET /crm/v8/settings/fields?module={Module}`` describes a module's fields, once
  per connector. A ``picklist`` or ``multiselectpicklist`` field accepts its options'
  ``actual_value``s, which records carry (``Id. Decision Makers``, shown as "Identify Decision
  Makers"), except options of type ``unused`` (kept for old records, no longer offered: the
  response lists "both used and unused picklist values", Zoho's field-meta page) and
  ``-None-``, Zoho's placeholder for an empty field.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Literal
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import (
    Capabilities,
    Page,
    RemoteRecord,
    VendorFields,
    WriteResult,
    validated_settings,
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
)
from connectors.http import (
    HttpClient,
    HttpResponse,
    HttpSettings,
    default_classifier,
    parse_retry_after,
    retry_transient,
)
from connectors.paging import pack_token, unpack_token
from connectors.ratelimit import RateLimiter
from connectors.timeparse import parse_vendor_datetime
from connectors.zoho.auth import ACCOUNTS_URLS, shared_account
from connectors.zoho.fields import (
    DEFAULT_FIELDS,
    DUPLICATE_CHECK,
    MODULES,
    format_zoho_datetime,
    module_for,
    present,
    to_wire,
)

__all__ = ["ZohoApiError", "ZohoConnector", "ZohoSettings", "classify_zoho"]

MAX_FIELDS: Final = 50  # Zoho refuses more with LIMIT_EXCEEDED (facts B2)
MAX_BATCH: Final = 100  # records per write call, ids per delete or read call
DISCRETE_LIMIT: Final = 2000  # records reachable with page/per_page alone
MAX_CRITERIA: Final = 10  # criteria per search call
_NO_RECORDS: Final = frozenset({204, 304})
_PICKLIST_TYPES: Final = frozenset({"picklist", "multiselectpicklist"})
_NO_VALUE: Final = "-None-"  # Zoho's first option of a picklist: the field left empty

DataCenter = Literal["com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa"]


# --------------------------------------------------------------------------------------------
# Settings


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as https://accounts.zoho.com")
    return value.rstrip("/")


class ZohoSettings(HttpSettings):
    """Settings of a ``connector: zoho`` system.

    The token server is ``accounts_url`` when given, else ``base_url`` (the system's URL in the
    config; a sandbox serves tokens and API on one address), else the accounts server of
    ``data_center``. The API host is ``api_url`` when given, else the ``api_domain`` Zoho's
    token response names. ``rate_limit`` is the client-side budget (``limits`` syntax; Zoho
    counts credits per rolling 24 hours, 50,000 plus per-licence credits), shared through
    ``rate_limit_storage``; ``max_concurrency`` bounds requests in flight (Zoho's concurrency
    limit is 5 on the free edition, 10 to 25 on paid ones).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    refresh_token: SecretStr
    base_url: str | None = None
    accounts_url: str = ACCOUNTS_URLS["com"]
    data_center: DataCenter = "com"
    api_url: str | None = None
    api_version: str = Field(default="v8", pattern=r"^v[2-9][0-9]*$")
    rate_limit: str = "50000/day"
    rate_limit_storage: str = "memory://"
    max_concurrency: int = Field(default=5, ge=1, le=25)
    page_size: int = Field(default=200, ge=1, le=200)

    @field_validator("base_url", "accounts_url", "api_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    @field_validator("client_secret", "refresh_token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            # Usually an unset ${VAR} in the config file.
            raise ValueError("must not be empty")
        return value

    def token_server(self) -> str:
        """The accounts server to ask for access tokens (see the class docstring)."""
        explicit = "accounts_url" in self.model_fields_set
        if explicit and self.base_url is not None and self.base_url != self.accounts_url:
            raise ConnectorConfigError(
                "accounts_url and base_url name different token servers; give only one"
            )
        if explicit:
            return self.accounts_url
        if self.base_url is not None:
            return self.base_url
        return ACCOUNTS_URLS[self.data_center]


# --------------------------------------------------------------------------------------------
# Classifying Zoho's answers


class ZohoApiError(VendorError):
    """A request-level Zoho error with no better place in the taxonomy; ``code`` is Zoho's."""

    def __init__(self, message: str, *, code: str | None = None, system: str | None = None):
        super().__init__(message, system=system)
        self.code = code


_AUTH_REFUSED: Final = frozenset(
    {"OAUTH_SCOPE_MISMATCH", "NO_PERMISSION", "INVALID_CLIENT", "invalid_code", "invalid_client"}
)
_CONFIG: Final = frozenset({"INVALID_MODULE", "INVALID_URL_PATTERN", "INVALID_HOST"})
_RECORD: Final = frozenset(
    {
        "INVALID_DATA",
        "MANDATORY_NOT_FOUND",
        "DUPLICATE_DATA",
        "RECORD_LOCKED",
        "DEPENDENT_FIELD_MISSING",
        "NOT_ALLOWED",
        "MULTIPLE_OR_MULTI_ERRORS",
        "ALREADY_MODIFIED",
        "ID_ALREADY_DELETED",
    }
)
_PAGE_TOKEN_REFUSED: Final = frozenset({"EXPIRED_VALUE", "TOKEN_BOUND_DATA_MISMATCH"})


def _envelope(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _describe(code: str, message: Any, details: Any) -> str:
    text = f"{code}: {message}" if message else code
    if isinstance(details, Mapping) and details:
        shown = ", ".join(f"{k}={v}" for k, v in list(details.items())[:4] if k != "json_path")
        if shown:
            text += f" ({shown})"
    return text


def classify_zoho(response: requests.Response) -> ConnectorError | None:
    """Zoho's answer in the taxonomy: its envelope ``{code, details, message, status}``.

    A 4xx whose body holds ``data[]`` carries per-record results (all records refused) and is
    not an error of the request. ``INVALID_TOKEN`` → AuthExpired (refresh once); scope and
    client errors → AuthError; ``TOO_MANY_REQUESTS``/429 → RateLimited (``Retry-After`` when
    present: the facts found no Zoho rate-limit headers); unknown module or URL → config error;
    per-record codes at request level → RecordRejected with ``details.api_name`` as the field.
    """
    status = response.status_code
    if status < 300 or status == 304:
        return None
    body = _envelope(response) or {}
    if isinstance(body.get("data"), list):
        return None
    code = body.get("code")
    if not isinstance(code, str):
        return default_classifier(response)
    details = body.get("details")
    text = f"HTTP {status} " + _describe(code, body.get("message"), details)
    if code in ("INVALID_TOKEN", "AUTHENTICATION_FAILURE"):
        return AuthExpired(text)
    if code in _AUTH_REFUSED:
        return AuthError(f"{text}; check the OAuth client's scopes (ZohoCRM.modules.ALL)")
    if code == "TOO_MANY_REQUESTS" or status == 429:
        return RateLimited(text, retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if code in _CONFIG:
        return ConnectorConfigError(f"{text}; check api_url, api_version and the module names")
    if code in _RECORD:
        field = details.get("api_name") if isinstance(details, Mapping) else None
        return RecordRejected(text, code=code, field=field if isinstance(field, str) else None)
    if status >= 500:
        return TransientError(text)
    return ZohoApiError(text, code=code)


# --------------------------------------------------------------------------------------------
# Page tokens handed to the hub


# v2: keyset state; zlib inside pack_token keeps a page of 19-digit ids short.
_PAGE_STATE_FORMAT: Final = "zoho/2"


def _encode(state: Mapping[str, Any]) -> str:
    return pack_token(state, kind=_PAGE_STATE_FORMAT)


def _decode(token: str) -> dict[str, Any]:
    return unpack_token(token, kind=_PAGE_STATE_FORMAT)


def _second(instant: datetime) -> int:
    """The whole second (epoch) of ``instant``: Zoho stamps and compares at seconds."""
    return math.floor(instant.timestamp())


def _since_header(since: datetime) -> str:
    # Zoho compares at whole seconds and documents "modified after": a second earlier than
    # the floor of ``since`` reads everything at or after it (the hub dedupes the overlap).
    floor = since.replace(microsecond=0) - timedelta(seconds=1)
    return format_zoho_datetime(floor)


def _escape(value: str) -> str:
    # Search criteria values escape parentheses and commas with a backslash (facts B3).
    return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace(",", "\\,")


# --------------------------------------------------------------------------------------------
# The connector


class ZohoConnector:
    """One Zoho CRM org (see the module docstring)."""

    settings_model: ClassVar[type[BaseModel]] = ZohoSettings
    vendor: ClassVar[str] = "zoho"

    def __init__(
        self,
        system: str,
        settings: ZohoSettings | Mapping[str, Any],
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.system = system
        settings = validated_settings(ZohoSettings, settings, system=system, vendor="Zoho")
        self.settings = settings
        try:
            token_server = settings.token_server()
            self._account = shared_account(
                system=system,
                accounts_url=token_server,
                client_id=settings.client_id,
                client_secret=settings.client_secret.get_secret_value(),
                refresh_token=settings.refresh_token.get_secret_value(),
                storage_uri=settings.rate_limit_storage,
                max_concurrency=settings.max_concurrency,
                session=session,
                sleep=sleep,
            )
            self._limiter = RateLimiter(
                settings.rate_limit,
                key=f"{self._account.key}:api",
                storage_uri=settings.rate_limit_storage,
            )
        except ConnectorConfigError as exc:
            raise ConnectorConfigError(
                f"rate_limit or URLs: {exc.message}", system=system
            ) from None
        self._session = session
        self._sleep = sleep
        self._http: HttpClient | None = None
        self._http_lock = threading.Lock()
        # Field metadata, read once per module; the lock also keeps two threads from both asking.
        self._picklists: dict[str, Mapping[str, frozenset[str]]] = {}
        self._picklists_lock = threading.Lock()
        self.capabilities = Capabilities(
            object_types=frozenset(MODULES),
            max_batch=MAX_BATCH,
            detects_deletes=True,
            upsert_keys={"contacts": "Email"},
            # Modified_Time has whole seconds only.
            modified_precision=timedelta(seconds=1),
            read_page_size=settings.page_size,
            rate_windows=self._limiter.windows,
            # The account's slots bound every request in flight, these batches included.
            write_concurrency=settings.max_concurrency,
        )

    def __repr__(self) -> str:
        return f"ZohoConnector({self.system!r})"

    # ----------------------------------------------------------------- plumbing

    @property
    def http(self) -> HttpClient:
        """The API client, made once the API host is known (after the first token)."""
        with self._http_lock:
            if self._http is None:
                domain = self.settings.api_url
                if domain is None:
                    try:
                        # Outside any client's retries: a 429 or a blip here is waited out.
                        retry_transient(
                            self._account.auth.token,
                            sleep=self._sleep if self._sleep is not None else time.sleep,
                        )
                    except ConnectorError as exc:
                        exc.system = exc.system or self.system
                        raise
                    domain = self._account.api_domain
                assert domain is not None  # set by the token fetch
                options: dict[str, Any] = {"timeouts": self.settings.timeouts}
                if self._session is not None:
                    options["session"] = self._session
                if self._sleep is not None:
                    options["sleep"] = self._sleep
                self._http = HttpClient(
                    self.system,
                    f"{domain}/crm/{self.settings.api_version}",
                    auth=self._account.auth,
                    classifier=classify_zoho,
                    rate_limiter=self._limiter,
                    **options,
                )
            return self._http

    def _request(self, method: str, path: str, **options: Any) -> HttpResponse:
        client = self.http
        with self._account.slots:
            return client.request(method, path, **options)

    def close(self) -> None:
        with self._http_lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _record(self, module: str, raw: Any, fields: Sequence[str]) -> RemoteRecord:
        if not isinstance(raw, Mapping) or raw.get("id") is None:
            raise VendorError(f"Zoho returned a {module} record without an id", system=self.system)
        try:
            modified = parse_vendor_datetime(raw["Modified_Time"])
        except (KeyError, TypeError, ValueError):
            raise VendorError(
                f"Zoho returned {module} record {raw['id']} without a readable Modified_Time",
                system=self.system,
            ) from None
        names = fields or [name for name in raw if name != "id"]
        values = {name: present(module, name, raw.get(name)) for name in names}
        return RemoteRecord(str(raw["id"]), modified, values)

    def _fields(self, object_type: str, module: str, fields: Sequence[str]) -> list[str]:
        asked = [f for f in dict.fromkeys(fields or DEFAULT_FIELDS[module]) if f != "id"]
        wanted = asked if "Modified_Time" in asked else [*asked, "Modified_Time"]
        if len(wanted) > MAX_FIELDS:
            # Modified_Time is the connector's own: the extras are the map's last fields.
            own = [f for f in wanted if f != "Modified_Time"]
            extras = ", ".join(own[MAX_FIELDS - 1 :])
            raise ConnectorConfigError(
                f"Zoho reads at most {MAX_FIELDS} fields per call ({object_type} asks for "
                f"{len(wanted)}, Modified_Time included); drop these from the field map: "
                f"{extras}",
                system=self.system,
            )
        return wanted

    # ----------------------------------------------------------------- metadata

    def picklist(self, object_type: str, vendor_field: str) -> frozenset[str] | None:
        """The values a picklist field accepts (see the module docstring); None for any other
        field and for one Zoho does not describe."""
        module = module_for(object_type)
        with self._picklists_lock:
            found = self._picklists.get(module)
            if found is None:
                response = self._request("GET", "/settings/fields", params={"module": module})
                found = self._picklists[module] = _parse_picklists(response, self.system)
        return found.get(vendor_field)

    # ----------------------------------------------------------------- reads

    def check(self) -> None:
        self._request("GET", "/Contacts", params={"fields": "Last_Name", "per_page": 1})

    def read_changes(
        self,
        object_type: str,
        since: datetime | None,
        page_token: str | None,
        fields: Sequence[str],
    ) -> Page:
        """One page, keyset-paged on ``Modified_Time`` (see the module docstring)."""
        module = module_for(object_type)
        wanted = self._fields(object_type, module, fields)
        state: dict[str, Any]
        if page_token:
            state = _decode(page_token)
        else:
            state = {"k": _second(since)} if since is not None else {}
        try:
            response = self._list(module, wanted, state)
        except (RecordRejected, ZohoApiError) as exc:
            if "t" not in state or exc.code not in (_PAGE_TOKEN_REFUSED | {"INVALID_DATA"}):
                raise
            # Zoho's page token expired (24 h) or no longer fits the query: page the crowded
            # window again from its start; the hub drops what it has seen (overlap, no gap).
            state = {name: state[name] for name in ("k", "i") if name in state}
            response = self._list(module, wanted, state)
        if response.status in _NO_RECORDS or not isinstance(response.json, dict):
            return Page([], None)
        body = response.json
        raw = body.get("data")
        if not isinstance(raw, list):
            raise VendorError(f"Zoho's {module} list has no data array", system=self.system)
        records = [self._record(module, item, fields or DEFAULT_FIELDS[module]) for item in raw]
        key: int | None = state.get("k")
        seen = frozenset(state.get("i") or ())
        # The request asked from the second before the key, so it repeats what this read handed
        # out already: everything older than the key (and, on the first page, older than
        # since's second) and the ids of the key's own second the token names.
        handed = [
            record
            for record in records
            if key is None
            or _second(record.modified_at) > key
            or (_second(record.modified_at) == key and record.id not in seen)
        ]
        if not _info(body).get("more_records") or not records:
            return Page(handed, None)
        stamps = [_second(record.modified_at) for record in records]
        newest = max(stamps)
        if min(stamps) < newest - 1:
            # Asking again from `newest` re-reads only the seconds newest-1 and newest, and this
            # page holds more than those, so the next request gets further. It also holds all
            # of `newest`'s records (they sort last), so their ids are all the token needs.
            ids = sorted(
                {r.id for r, stamp in zip(records, stamps, strict=True) if stamp == newest}
            )
            return Page(handed, _encode({"k": newest, "i": ids}))
        # The whole page lies in one second and the one before it: asking again from there
        # would return this very page. Page on through this request's window by offset.
        following: dict[str, Any] = {n: state[n] for n in ("k", "i") if n in state}
        page = state.get("p", 1) if "t" not in state else None
        if isinstance(page, int) and (page + 1) * self.settings.page_size <= DISCRETE_LIMIT:
            following["p"] = page + 1
        else:
            zoho_token = _info(body).get("next_page_token")
            if not isinstance(zoho_token, str) or not zoho_token:
                raise VendorError(
                    f"Zoho's {module} list has more records but no next_page_token",
                    system=self.system,
                )
            following["t"] = zoho_token
        return Page(handed, _encode(following))

    def _list(self, module: str, wanted: Sequence[str], state: Mapping[str, Any]) -> HttpResponse:
        params: dict[str, Any] = {
            "fields": ",".join(wanted),
            "per_page": self.settings.page_size,
            "sort_by": "Modified_Time",
            "sort_order": "asc",
        }
        if "t" in state:
            params["page_token"] = state["t"]  # page and page_token together are refused
        else:
            params["page"] = state.get("p", 1)
        headers = {}
        if state.get("k") is not None:
            key = datetime.fromtimestamp(state["k"], UTC)
            headers["If-Modified-Since"] = _since_header(key)
        return self._request("GET", f"/{module}", params=params, headers=headers)

    def read_deletes(
        self, object_type: str, since: datetime | None, page_token: str | None
    ) -> Page:
        module = module_for(object_type)
        state: dict[str, Any] = (
            _decode(page_token)
            if page_token
            else {"s": since.isoformat() if since else None, "p": 1}
        )
        floor = datetime.fromisoformat(str(state["s"])) if state.get("s") else None
        headers = {"If-Modified-Since": _since_header(floor)} if floor else {}
        params = {"type": "all", "page": state.get("p", 1), "per_page": self.settings.page_size}
        response = self._request("GET", f"/{module}/deleted", params=params, headers=headers)
        if response.status in _NO_RECORDS or not isinstance(response.json, dict):
            return Page([], None)
        body = response.json
        records: list[RemoteRecord] = []
        for item in body.get("data") or []:
            if not isinstance(item, Mapping) or item.get("id") is None:
                continue
            try:
                deleted_at = parse_vendor_datetime(item["deleted_time"])
            except (KeyError, TypeError, ValueError):
                raise VendorError(
                    f"Zoho's deleted {module} record {item['id']} has no readable deleted_time",
                    system=self.system,
                ) from None
            if floor is None or deleted_at >= floor:
                records.append(RemoteRecord(str(item["id"]), deleted_at, {}, deleted=True))
        records.sort(key=lambda r: (r.modified_at, r.id))
        info = _info(body)
        if not info.get("more_records"):
            return Page(records, None)
        following = {"s": state.get("s"), "p": int(state.get("p", 1)) + 1}
        return Page(records, _encode(following))

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> list[RemoteRecord]:
        module = module_for(object_type)
        wanted = self._fields(object_type, module, fields)
        found: list[RemoteRecord] = []
        for chunk in _chunks(list(dict.fromkeys(ids)), MAX_BATCH):
            params = {"ids": ",".join(chunk), "fields": ",".join(wanted)}
            response = self._request("GET", f"/{module}", params=params)
            body = response.json
            if response.status in _NO_RECORDS or not isinstance(body, dict):
                continue
            for item in body.get("data") or []:
                found.append(self._record(module, item, fields or DEFAULT_FIELDS[module]))
        return found

    def find(self, object_type: str, field: str, values: Sequence[str]) -> list[RemoteRecord]:
        module = module_for(object_type)
        wanted = self._fields(object_type, module, [*DEFAULT_FIELDS[module], field])
        targets = {v.casefold() for v in values if v}
        found: dict[str, RemoteRecord] = {}
        for chunk in _chunks(sorted(targets), MAX_CRITERIA):
            criteria = "or".join(f"({field}:equals:{_escape(v)})" for v in chunk)
            for item in self._search(
                module, f"({criteria})" if len(chunk) > 1 else criteria, wanted
            ):
                value = present(module, field, item.get(field))
                # Zoho's "equals" matches text loosely; keep exact (case-insensitive) matches.
                if isinstance(value, str) and value.casefold() in targets:
                    record = self._record(module, item, ())
                    found[record.id] = record
        return sorted(found.values(), key=lambda r: (r.modified_at, r.id))

    def _search(self, module: str, criteria: str, wanted: Sequence[str]) -> Iterator[Any]:
        page = 1
        while True:
            params = {
                "criteria": criteria,
                "fields": ",".join(wanted),
                "page": page,
                "per_page": self.settings.page_size,
            }
            response = self._request("GET", f"/{module}/search", params=params)
            body = response.json
            if response.status in _NO_RECORDS or not isinstance(body, dict):
                return
            yield from body.get("data") or []
            info = body.get("info") or {}
            # Search stops at 2,000 records; a find by a handful of emails never gets there.
            if (
                not info.get("more_records")
                or (page + 1) * self.settings.page_size > DISCRETE_LIMIT
            ):
                return
            page += 1

    # ----------------------------------------------------------------- writes

    def create(self, object_type: str, records: Sequence[VendorFields]) -> list[WriteResult]:
        module = module_for(object_type)
        rows = [self._wire(module, record) for record in records]
        if module == "Contacts":
            extra = {"duplicate_check_fields": [DUPLICATE_CHECK[module]], "trigger": []}
            return self._write("POST", f"/{module}/upsert", rows, extra, idempotent=True)
        return self._write("POST", f"/{module}", rows, {"trigger": []}, idempotent=False)

    def update(
        self, object_type: str, changes: Sequence[tuple[str, VendorFields]]
    ) -> list[WriteResult]:
        module = module_for(object_type)
        rows = [{**self._wire(module, fields), "id": record_id} for record_id, fields in changes]
        return self._write("PUT", f"/{module}", rows, {"trigger": []}, idempotent=True)

    def delete(self, object_type: str, ids: Sequence[str]) -> list[WriteResult]:
        module = module_for(object_type)
        results: list[WriteResult] = []
        for chunk in _chunks(list(ids), MAX_BATCH):
            params = {"ids": ",".join(chunk), "wf_trigger": "false"}
            response = self._request("DELETE", f"/{module}", params=params)
            results.extend(self._results(response.json, len(chunk), chunk))
        return results

    def _wire(self, module: str, fields: VendorFields) -> dict[str, Any]:
        return {name: to_wire(module, name, value) for name, value in fields.items()}

    def _write(
        self,
        method: str,
        path: str,
        rows: list[dict[str, Any]],
        extra: Mapping[str, Any],
        *,
        idempotent: bool,
    ) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in _chunks(rows, MAX_BATCH):
            results.extend(self._send(method, path, chunk, extra, idempotent))
        return results

    def _send(
        self,
        method: str,
        path: str,
        rows: list[dict[str, Any]],
        extra: Mapping[str, Any],
        idempotent: bool,
    ) -> list[WriteResult]:
        try:
            response = self._request(
                method, path, json={"data": rows, **extra}, idempotent=idempotent
            )
        except RecordRejected as exc:
            # Zoho refused the whole request over one record: write the rest without it.
            if len(rows) == 1:
                return [WriteResult(None, None, exc)]
            half = len(rows) // 2
            return [
                *self._send(method, path, rows[:half], extra, idempotent),
                *self._send(method, path, rows[half:], extra, idempotent),
            ]
        return self._results(response.json, len(rows))

    def _results(
        self, body: Any, count: int, ids: Sequence[str] | None = None
    ) -> list[WriteResult]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != count:
            raise VendorError(
                f"Zoho answered a write of {count} records with "
                f"{len(data) if isinstance(data, list) else 'no'} results",
                system=self.system,
            )
        results = [self._result(item) for item in data]
        if ids is not None:
            # Deletes: match by the id each result names, in case Zoho reorders them.
            by_id = {r.remote_id: r for r in results if r.remote_id is not None}
            failed = iter(r for r in results if r.remote_id is None)
            results = [by_id.get(i) or next(failed, WriteResult(i)) for i in ids]
        return results

    def _result(self, item: Any) -> WriteResult:
        if not isinstance(item, Mapping):
            raise VendorError(
                "Zoho returned a write result that is not an object", system=self.system
            )
        found = item.get("details")
        details: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        if item.get("status") == "success":
            record_id = details.get("id")
            if record_id is None:
                raise VendorError("Zoho reported success without a record id", system=self.system)
            stamp = details.get("Modified_Time")
            return WriteResult(str(record_id), parse_vendor_datetime(stamp) if stamp else None)
        code = str(item.get("code") or "UNKNOWN")
        field = details.get("api_name")
        message = _describe(code, item.get("message"), details)
        duplicate = details.get("duplicate_record")
        if code == "DUPLICATE_DATA" and isinstance(duplicate, Mapping) and duplicate.get("id"):
            # Zoho names the record holding the value; the hub's dead letter shows it so a
            # person can link the two instead of creating a third.
            message += f"; the existing record is {duplicate['id']}"
        return WriteResult(
            None,
            None,
            RecordRejected(
                message,
                code=code,
                field=field if isinstance(field, str) else None,
                system=self.system,
            ),
        )


def _parse_picklists(response: HttpResponse, system: str) -> dict[str, frozenset[str]]:
    """The picklist fields of a ``GET /settings/fields`` answer and the values each accepts."""
    if response.status in _NO_RECORDS:
        return {}  # Zoho answers 204 for a module without fields
    body = response.json
    fields = body.get("fields") if isinstance(body, Mapping) else None
    if not isinstance(fields, list):
        raise VendorError("Zoho's field metadata came without a fields list", system=system)
    found: dict[str, frozenset[str]] = {}
    for field in fields:
        if not isinstance(field, Mapping) or field.get("data_type") not in _PICKLIST_TYPES:
            continue
        found[str(field.get("api_name"))] = frozenset(
            str(option["actual_value"])
            for option in field.get("pick_list_values") or ()
            if isinstance(option, Mapping)
            and option.get("actual_value") not in (None, _NO_VALUE)
            and option.get("type") != "unused"
        )
    return found


def _info(body: Mapping[str, Any]) -> Mapping[str, Any]:
    info = body.get("info")
    return info if isinstance(info, Mapping) else {}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
