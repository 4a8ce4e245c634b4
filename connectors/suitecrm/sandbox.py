"""A local emulator of SuiteCRM's V8 JSON:API and its OAuth2 token endpoint.

Public entry points: :class:`SuiteCrmApi` (the :class:`~connectors.sandbox.VendorApi` that
``crmhub sandbox suitecrm`` serves through :class:`~connectors.sandbox.Sandbox`).

What it reproduces (facts: section 1 and the checklist of section 6 of
``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md``; real bodies in
``samples/suitecrm-*``):

* Roots: 8.x's ``/legacy/Api`` by default, 7.x's ``/Api`` with ``api_root="/Api"``; any other
  path is Slim's 404 HTML page. ``POST {root}/access_token`` (JSON or form body) with two OAuth
  clients, each bound to its grant (``client_credentials``; ``password`` for user ``admin``,
  with rotating refresh tokens of a month); League's error bodies (``invalid_client`` 401,
  ``invalid_grant`` 400, ``invalid_request`` 401 for a bad refresh token,
  ``unsupported_grant_type`` 400); access tokens of ``options.token_ttl`` (default 3,600 s); an
  expired, unknown, revoked or missing bearer gets 401 ``access_denied`` with League's hint.
  ``revoke_credentials`` gives both clients new secrets and revokes every token.
* ``GET {root}/V8/module/{Module}``: ``fields[Module]`` (the object name works too) checked
  against the module's attributes; ``page[size]``/``page[number]`` with ``meta.total-pages``,
  ``records-on-this-page`` and unencoded ``/V8/...`` links only when ``page[size]`` is given;
  **20 rows and no paging data without it**; ``sort`` on one field, ``-`` for descending, **rows
  in a new random order on every request without it**, and rows sharing a second in random order
  with it; ``filter[field][op]`` (eq, neq, gt, gte, lt, lte, like) joined by
  ``filter[operator]`` (and/or), values compared as MySQL does (case-insensitively, datetimes
  as UTC ``YYYY-MM-DD HH:MM:SS``), ``email1`` through the address join, relate fields
  (``account_id``, ``account_name``) failing as the SQL they produce does;
  ``filter[deleted][eq]=1`` returns only soft-deleted rows; the empty-list message.
* ``GET/DELETE {root}/V8/module/{Module}/{id}``, ``POST``/``PATCH {root}/V8/module`` (201 both,
  the full record echoed), client-supplied ``data.id`` (UUID; "already exist" when taken),
  ``data`` keys other than type/id/attributes refused, unknown attributes refused, a
  ``date_modified`` sent kept instead of stamped, ``null`` in a PATCH ignored (SuiteCRM#10210)
  and ``""`` clearing, ``account_id`` linking the primary account, soft deletes bumping
  ``date_modified``; relationships (``GET``/``POST``/``DELETE .../relationships/{link}``) for
  accounts, contacts and opportunities; ``GET {root}/V8/current-user``.
* Every error is HTTP 400 with ``{"errors": {"status": 400, "title": null, "detail": ...}}``
  and SuiteCRM's own detail texts.
* Dates: stored to the millisecond (``SandboxClock``), compared at whole seconds as the
  database does, shown as ``DATE_ATOM`` whose wall clock is UTC but whose offset is the
  server's zone (``server_offset``, default -05:00: the SuiteCRM#9952 mislabel), with seconds
  zeroed when ``zero_seconds`` (SuiteCRM#10912). ``email1_patch_bug`` makes PATCH ignore
  ``email1`` as releases before 2025 do (SuiteCRM#10513).

Deviations, for want of facts: a malformed ``email1`` is refused with a 400 (detail
``Invalid email address: <value>``) where SuiteCRM's own handling is unverified; SuiteCRM has no
rate limit of its own, so ``options.rate_limit`` is enforced as the proxy in front of a site
would, with 429, ``Retry-After`` and an ``errors`` body; faults are 500s in the ``errors``
shape. Rows are indexed by (modified time, id) in ``SortedList``s, so paging 20,000 records
sorts nothing per request.
"""

from __future__ import annotations

import math
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

from sortedcontainers import SortedList

from connectors.sampledata import (
    SampleCompany,
    SampleContact,
    sample_account,
    typed_country,
    typed_phone,
)
from connectors.sandbox import (
    ApiRequest,
    ApiResponse,
    Fault,
    RollingWindow,
    SandboxClock,
    SandboxOptions,
    TokenIssuer,
    json_response,
    rate_window,
    retry_after,
)
from connectors.suitecrm.fields import FIELDS, MODULES, OBJECT_NAMES, format_atom

__all__ = ["SuiteCrmApi"]

TOKEN_TTL: Final = 3600.0
REFRESH_TTL: Final = 30 * 86_400.0  # P1M
DEFAULT_ROWS: Final = 20  # list_max_entries_per_page, what a list without page[size] gets
JSON_API: Final = "application/vnd.api+json"
# The server's window is this much shorter than the one connector_settings gives the client,
# so a client keeping exactly to its budget is not punished for loopback jitter.
_JITTER_SECONDS: Final = 0.02
_ADMIN: Final = {"id": "1", "user_name": "admin", "full_name": "Administrator"}
_OPERATORS: Final = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "like"})
_RELATE: Final = frozenset(
    {
        "account_id",
        "account_name",
        "full_name",
        "assigned_user_name",
        "modified_by_name",
        "created_by_name",
    }
)
_DATETIMES: Final = frozenset({"date_modified", "date_entered"})
_DECIMALS: Final = frozenset({"amount", "amount_usdollar"})
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FILTER = re.compile(r"^filter\[(\w+)\](?:\[(\w+)\])?$")
_ALIASES: Final = {**{m: m for m in OBJECT_NAMES}, **{o: m for m, o in OBJECT_NAMES.items()}}
# Link name of each module → (related module, how the link is stored).
_LINKS: Final[Mapping[str, Mapping[str, str]]] = {
    "Contacts": {"accounts": "Accounts", "opportunities": "Opportunities"},
    "Accounts": {"contacts": "Contacts", "opportunities": "Opportunities"},
    "Opportunities": {"accounts": "Accounts", "contacts": "Contacts"},
}
_STAGE_KEYS: Final = {
    "prospecting": ("Prospecting",),
    "qualification": ("Qualification",),
    "needs_analysis": ("Needs Analysis", "Value Proposition", "Id. Decision Makers"),
    "proposal": ("Proposal/Price Quote",),
    "negotiation": ("Negotiation/Review",),
    "closed_won": ("Closed Won",),
    "closed_lost": ("Closed Lost",),
}
_PROBABILITY: Final = {
    "Prospecting": 10,
    "Qualification": 20,
    "Needs Analysis": 25,
    "Value Proposition": 30,
    "Id. Decision Makers": 40,
    "Proposal/Price Quote": 65,
    "Negotiation/Review": 80,
    "Closed Won": 100,
    "Closed Lost": 0,
}
# The sample industries as SuiteCRM's industry_dom keys.
_INDUSTRIES: Final = {
    "Software": "Technology",
    "Transportation": "Transportation",
    "Food & Beverages": "Hospitality",
    "Hospital & Health Care": "Healthcare",
    "Renewables & Environment": "Environmental",
    "Biotechnology": "Biotechnology",
    "Financial Services": "Finance",
    "Design": "Media",
    "Machinery": "Machinery",
    "Retail": "Retail",
}
_NOT_FOUND_PAGE: Final = (
    b"<html><head><title>404 Page Not Found</title></head><body><h1>Page Not Found</h1>"
    b"<p>The page you are looking for could not be found.</p></body></html>"
)


class _Refused(Exception):
    """An answer other than success, raised from deep inside a handler."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _error(detail: str, status: int = 400) -> ApiResponse:
    response = json_response(
        status, {"errors": {"status": status, "title": None, "detail": detail}}
    )
    response.content_type = JSON_API
    return response


def _refuse(detail: str) -> _Refused:
    return _Refused(_error(detail))


def _oauth(status: int, error: str, description: str, hint: str | None = None) -> ApiResponse:
    body: dict[str, Any] = {"error": error, "error_description": description}
    if hint:
        body["hint"] = hint
    body["message"] = description
    return json_response(status, body)


def _document(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> ApiResponse:
    response = json_response(status, payload, headers)
    response.content_type = JSON_API
    return response


@dataclass(slots=True)
class _Row:
    id: str
    created: datetime
    modified: datetime
    fields: dict[str, str]  # stored as the database holds them: text, "" for empty
    deleted: bool = False


@dataclass
class _Table:
    module: str
    rows: dict[str, _Row] = field(default_factory=dict)
    live: SortedList = field(default_factory=SortedList)  # (modified, id)
    gone: SortedList = field(default_factory=SortedList)  # (modified, id) of deleted rows
    emails: dict[str, set[str]] = field(default_factory=dict)  # casefolded email1 → live ids

    def index(self, deleted: bool) -> SortedList:
        return self.gone if deleted else self.live

    def put(self, row: _Row) -> None:
        old = self.rows.get(row.id)
        if old is not None:
            self._unindex(old)
        self.rows[row.id] = row
        self.index(row.deleted).add((row.modified, row.id))
        email = row.fields.get("email1")
        if email and not row.deleted:
            self.emails.setdefault(email.casefold(), set()).add(row.id)

    def _unindex(self, row: _Row) -> None:
        self.index(row.deleted).remove((row.modified, row.id))
        email = row.fields.get("email1")
        if email and not row.deleted:
            holders = self.emails.get(email.casefold())
            if holders is not None:
                holders.discard(row.id)
                if not holders:
                    del self.emails[email.casefold()]


@dataclass(frozen=True, slots=True)
class _Condition:
    field: str
    op: str
    value: str


def _second(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)


def _db_datetime(value: str) -> datetime:
    """A filter value as MySQL casts it to DATETIME: the wall clock, offsets ignored."""
    text = value.strip().replace("T", " ")[:19]
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        try:
            parsed = datetime.strptime(text[:10], "%Y-%m-%d")
        except ValueError:
            raise _refuse("Database failure. Please refer to suitecrm.log for details.") from None
    return parsed.replace(tzinfo=UTC)


def _like(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)


class SuiteCrmApi:
    """SuiteCRM behind ``Sandbox`` (see the module docstring)."""

    vendor: ClassVar[str] = "suitecrm"

    def __init__(
        self,
        options: SandboxOptions | None = None,
        *,
        api_root: str = "/legacy/Api",
        server_offset: timedelta = timedelta(hours=-5),
        zero_seconds: bool = False,
        email1_patch_bug: bool = False,
    ) -> None:
        self.options = options or SandboxOptions()
        self.api_root = api_root.rstrip("/")
        self.server_offset = server_offset
        self.zero_seconds = zero_seconds
        self.email1_patch_bug = email1_patch_bug
        self.clock = SandboxClock()
        self._lock = threading.RLock()
        self._tables = {module: _Table(module) for module in OBJECT_NAMES}
        self._opportunity_contacts: dict[str, set[str]] = {}
        ttl = self.options.token_ttl if self.options.token_ttl is not None else TOKEN_TTL
        self.tokens = TokenIssuer("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.", ttl)
        # One OAuth client per grant: SuiteCRM binds a client to the grant it was made for.
        self.clients = {
            str(uuid.uuid4()): ("client_credentials", secrets.token_hex(16)),
            str(uuid.uuid4()): ("password", secrets.token_hex(16)),
        }
        self.username = "admin"
        self.password = secrets.token_urlsafe(12)
        self._refresh: dict[str, tuple[str, datetime]] = {}  # refresh token → (client, expiry)
        self._random = random.Random(self.options.seed)  # noqa: S311 - emulated disorder
        if self.options.rate_limit is not None:
            self.window_limit, self.window_seconds = rate_window(self.options.rate_limit)
            self._requests: RollingWindow | None = RollingWindow(
                self.window_limit, self.window_seconds - _JITTER_SECONDS
            )
        else:
            self.window_limit, self.window_seconds = 0, 1.0
            self._requests = None

    # ----------------------------------------------------------------- VendorApi: setup

    def client_for(self, grant: str) -> tuple[str, str]:
        """(client id, secret) of the OAuth client made for ``grant``."""
        return next((cid, secret) for cid, (g, secret) in self.clients.items() if g == grant)

    def connector_settings(self, base_url: str) -> dict[str, Any]:
        client_id, client_secret = self.client_for("password")
        if self._requests is not None:
            budget = f"{self.window_limit} per {self.window_seconds:g} second"
        else:
            budget = "1000/second"  # SuiteCRM has no limit; only the PHP server's speed
        return {
            "connector": "suitecrm",
            "base_url": base_url,
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": client_secret,
            "username": self.username,
            "password": self.password,
            "rate_limit": budget,
        }

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    def revoke_credentials(self) -> None:
        """An admin gave each OAuth client a new secret and revoked every token (Admin → OAuth2
        Clients and Tokens): the old secret gets 401 ``invalid_client``, old refresh tokens
        ``invalid_request``, old access tokens ``access_denied`` "Access token has been revoked"."""
        with self._lock:
            self.tokens.revoke_all()
            self.clients = {
                client_id: (grant, secrets.token_hex(16))
                for client_id, (grant, _) in self.clients.items()
            }
            self._refresh.clear()

    def fault_response(self, fault: Fault, request: ApiRequest) -> ApiResponse:
        if fault is Fault.RATE_LIMIT:
            return self._too_many(1.0)
        return _error("Internal Server Error", 500)

    def _too_many(self, wait: float) -> ApiResponse:
        response = _error("Too Many Requests", 429)
        response.headers["Retry-After"] = retry_after(wait)
        return response

    # ----------------------------------------------------------------- VendorApi: the account

    def seed_records(self, contacts: int, seed: int) -> None:
        account = sample_account(contacts, seed)
        stamps = account.stamps(self.clock.now())
        accounts: dict[int, str] = {}
        people: dict[int, str] = {}
        with self._lock:
            for company in account.companies:
                rng = random.Random(f"{seed}:suitecrm:company:{company.key}")  # noqa: S311
                accounts[company.key] = self._store(
                    "Accounts", _account_fields(company, rng), next(stamps)
                )
            for person in account.contacts:
                rng = random.Random(f"{seed}:suitecrm:contact:{person.key}")  # noqa: S311
                fields = _contact_fields(person, rng)
                fields["account_id"] = accounts.get(person.company_key, "")
                people[person.key] = self._store("Contacts", fields, next(stamps))
            for deal in account.deals:
                rng = random.Random(f"{seed}:suitecrm:deal:{deal.key}")  # noqa: S311
                stage = rng.choice(_STAGE_KEYS[deal.stage])
                opportunity = self._store(
                    "Opportunities",
                    {
                        "name": deal.name[:50],  # name is varchar(50)
                        "amount": _decimal_text(deal.amount),
                        "currency_id": "-99",
                        "sales_stage": stage,
                        "probability": str(_PROBABILITY[stage]),
                        "date_closed": deal.close_date.isoformat(),
                        "account_id": accounts.get(deal.company_key, ""),
                    },
                    next(stamps),
                )
                self._opportunity_contacts[opportunity] = {
                    people[key] for key in deal.contact_keys if key in people
                }

    def bulk_import(self, object_type: str, rows: list[Mapping[str, Any]]) -> list[str]:
        """Records imported in one go (SuiteCRM's CSV import): all stamped the same second."""
        module = MODULES[object_type]
        now = self.clock.now()
        with self._lock:
            return [self._store(module, self._stored(module, row), now) for row in rows]

    def insert(self, object_type: str, fields: Mapping[str, Any]) -> str:
        module = MODULES[object_type]
        with self._lock:
            return self._store(module, self._stored(module, fields), self.clock.now())

    def modify(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None:
        table = self._tables[MODULES[object_type]]
        with self._lock:
            row = table.rows[record_id]
            if row.deleted:
                raise KeyError(record_id)
            changed = {**row.fields, **self._stored(table.module, fields)}
            table.put(_Row(row.id, row.created, self.clock.now(), changed))

    def remove(self, object_type: str, record_id: str) -> None:
        table = self._tables[MODULES[object_type]]
        with self._lock:
            self._mark_deleted(table, table.rows[record_id])

    def snapshot(self, object_type: str) -> dict[str, dict[str, Any]]:
        table = self._tables[MODULES[object_type]]
        with self._lock:
            return {
                row.id: {name: value for name, value in row.fields.items() if value != ""}
                for row in table.rows.values()
                if not row.deleted
            }

    def _stored(self, module: str, fields: Mapping[str, Any]) -> dict[str, str]:
        unknown = sorted(set(fields) - FIELDS[module])
        if unknown:
            raise ValueError(f"{module} has no fields {', '.join(unknown)}")
        return {name: _text(name, value) for name, value in fields.items()}

    def _store(self, module: str, fields: dict[str, str], stamp: datetime, row_id: str = "") -> str:
        record_id = row_id or str(uuid.uuid4())
        self._tables[module].put(_Row(record_id, stamp, stamp, fields))
        return record_id

    def _mark_deleted(self, table: _Table, row: _Row) -> None:
        if row.deleted:
            raise KeyError(row.id)
        table.put(_Row(row.id, row.created, self.clock.now(), row.fields, deleted=True))

    # ----------------------------------------------------------------- HTTP

    def handle(self, request: ApiRequest) -> ApiResponse:
        if self._requests is not None and not self._requests.hit():
            return self._too_many(self._requests.retry_after())
        if not request.path.startswith(self.api_root + "/"):
            return ApiResponse(404, _NOT_FOUND_PAGE, content_type="text/html; charset=UTF-8")
        path = request.path[len(self.api_root) :]
        if path == "/access_token":
            if request.method != "POST":
                return ApiResponse(405, b"Method not allowed", content_type="text/html")
            return self._token(request)
        parts = path.strip("/").split("/")
        if parts[0] != "V8":
            return ApiResponse(404, _NOT_FOUND_PAGE, content_type="text/html; charset=UTF-8")
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        try:
            with self._lock:
                return self._route(request, parts[1:])
        except _Refused as refusal:
            return refusal.response

    def _authenticate(self, request: ApiRequest) -> ApiResponse | None:
        header = request.header("authorization")
        if not header:
            return _oauth(
                401,
                "access_denied",
                "The resource owner or authorization server denied the request.",
                'Missing "Authorization" header',
            )
        token = header.removeprefix("Bearer ").strip()
        state = self.tokens.check(token)
        if state != "valid":
            return _oauth(
                401,
                "access_denied",
                "The resource owner or authorization server denied the request.",
                "Access token has been revoked"
                if state == "revoked"
                else "Access token could not be verified",
            )
        return None

    def _token(self, request: ApiRequest) -> ApiResponse:
        values: dict[str, Any]
        content_type = request.header("content-type") or ""
        try:
            if "json" in content_type:
                loaded = request.json()
                values = loaded if isinstance(loaded, dict) else {}
            else:
                values = {k: v[0] for k, v in request.form().items()}
        except (ValueError, UnicodeDecodeError):
            values = {}

        def one(name: str) -> str:
            value = values.get(name)
            return value if isinstance(value, str) else ""

        grant = one("grant_type")
        if grant not in ("client_credentials", "password", "refresh_token"):
            return _oauth(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
                "Check that all required parameters have been provided",
            )
        client = self.clients.get(one("client_id"))
        allowed = client[0] if client else None
        if (
            client is None
            or not secrets.compare_digest(one("client_secret"), client[1])
            or (grant != "refresh_token" and grant != allowed)
        ):
            return _oauth(401, "invalid_client", "Client authentication failed")
        with self._lock:
            if grant == "refresh_token":
                held = self._refresh.pop(one("refresh_token"), None)
                if held is None or held[0] != one("client_id"):
                    return _oauth(
                        401,
                        "invalid_request",
                        "The refresh token is invalid.",
                        "Token has been revoked",
                    )
                if held[1] <= self.clock.now():
                    return _oauth(
                        401, "invalid_request", "The refresh token is invalid.", "Token has expired"
                    )
            elif grant == "password" and not (
                one("username") == self.username
                and secrets.compare_digest(one("password"), self.password)
            ):
                return _oauth(400, "invalid_grant", "The user credentials were incorrect.")
            ttl = self.tokens.ttl
            body: dict[str, Any] = {
                "token_type": "Bearer",
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                "access_token": self.tokens.issue(),
            }
            if allowed == "password":
                refresh = "def50200" + secrets.token_hex(40)
                expiry = self.clock.now() + timedelta(seconds=REFRESH_TTL)
                self._refresh[refresh] = (one("client_id"), expiry)
                body["refresh_token"] = refresh
        return json_response(200, body)

    def _route(self, request: ApiRequest, parts: list[str]) -> ApiResponse:
        method = request.method
        if parts == ["current-user"] and method == "GET":
            attributes = {"user_name": _ADMIN["user_name"], "full_name": _ADMIN["full_name"]}
            return _document(200, {"data": {"type": "User", "id": "1", "attributes": attributes}})
        if parts == ["logout"] and method == "POST":
            return _document(200, {"meta": {"message": "You have been successfully logged out"}})
        if not parts or parts[0] != "module":
            return ApiResponse(404, _NOT_FOUND_PAGE, content_type="text/html; charset=UTF-8")
        rest = parts[1:]
        if not rest:
            if method == "POST":
                return self._create(request)
            if method == "PATCH":
                return self._update(request)
        elif len(rest) == 1 and method == "GET":
            return self._list(self._table(rest[0]), request)
        elif len(rest) == 2:
            table = self._table(rest[0])
            if method == "GET":
                return self._get(table, rest[1], request)
            if method == "DELETE":
                row = self._live(table, rest[1])
                self._mark_deleted(table, row)
                message = f"Record with id {row.id} is deleted"
                return _document(200, {"meta": {"message": message}, "data": []})
        elif len(rest) in (4, 5) and rest[2] == "relationships":
            return self._relationship(request, self._table(rest[0]), rest[1], rest[3:])
        return ApiResponse(404, _NOT_FOUND_PAGE, content_type="text/html; charset=UTF-8")

    def _table(self, name: str) -> _Table:
        module = _ALIASES.get(name)
        if module is None:
            raise _refuse(f"Module {name} does not exist")
        return self._tables[module]

    def _live(self, table: _Table, record_id: str) -> _Row:
        row = table.rows.get(record_id)
        if row is None or row.deleted:
            raise _refuse(f"{table.module} module with id {record_id} is not found")
        return row

    # ----------------------------------------------------------------- rendering

    def _value(self, table: _Table, row: _Row, name: str) -> str:
        if name == "id":
            return row.id
        if name in _DATETIMES:
            stamp = row.modified if name == "date_modified" else row.created
            return format_atom(stamp, self.server_offset, zero_seconds=self.zero_seconds)
        if name == "deleted":
            return "1" if row.deleted else "0"
        if name in ("created_by", "modified_user_id", "assigned_user_id"):
            return _ADMIN["id"]
        if name in ("created_by_name", "modified_by_name", "assigned_user_name"):
            return _ADMIN["full_name"]
        if name == "full_name":
            return " ".join(
                p for p in (row.fields.get("first_name"), row.fields.get("last_name")) if p
            )
        if name == "account_name":
            account = self._tables["Accounts"].rows.get(row.fields.get("account_id") or "")
            return account.fields.get("name", "") if account and not account.deleted else ""
        if name == "amount_usdollar":
            return row.fields.get("amount", "")
        return row.fields.get(name, "")

    def _render(self, table: _Table, row: _Row, names: list[str] | None) -> dict[str, Any]:
        listed = names if names is not None else sorted(FIELDS[table.module])
        attributes = {name: self._value(table, row, name) for name in listed if name != "id"}
        links = {
            related: {
                "links": {"related": f"/V8/module/{table.module}/{row.id}/relationships/{link}"}
            }
            for link, related in _LINKS[table.module].items()
        }
        item: dict[str, Any] = {"type": OBJECT_NAMES[table.module], "id": row.id}
        if attributes:
            item["attributes"] = attributes
        item["relationships"] = links
        return item

    def _fields(self, table: _Table, request: ApiRequest) -> list[str] | None:
        keys = [k for k in request.query if k.startswith("fields[")]
        if not keys:
            return None
        names = [n for n in (request.arg(keys[0]) or "").split(",") if n]
        missing = [n for n in names if n != "id" and n not in FIELDS[table.module]]
        if missing:
            several = len(missing) > 1
            raise _refuse(
                f"The following field{'s' if several else ''} in {OBJECT_NAMES[table.module]} "
                f"module {'are' if several else 'is'} not found: {', '.join(missing)}"
            )
        return names

    # ----------------------------------------------------------------- reads

    def _get(self, table: _Table, record_id: str, request: ApiRequest) -> ApiResponse:
        row = self._live(table, record_id)
        return _document(200, {"data": self._render(table, row, self._fields(table, request))})

    def _page(self, request: ApiRequest) -> tuple[int | None, int]:
        size = number = None
        for key in request.query:
            if not key.startswith("page["):
                continue
            option = key[5:-1]
            if option not in ("size", "number"):
                raise _refuse(
                    f'The option "{option}" does not exist. Defined options are: "number", "size".'
                )
            value = request.arg(key) or ""
            if not value.isdigit() or int(value) < 1:
                raise _refuse('The option "page" with value array is invalid.')
            if option == "size":
                size = int(value)
            else:
                number = int(value)
        return size, number or 1

    def _conditions(
        self, table: _Table, request: ApiRequest
    ) -> tuple[list[_Condition], bool, bool]:
        """(conditions, joined by OR, deleted rows wanted)."""
        conditions: list[_Condition] = []
        any_of = False
        deleted = False
        for key, values in request.query.items():
            match = _FILTER.match(key)
            if match is None:
                if key.startswith("filter"):
                    raise _refuse('The option "filter" with value array is invalid.')
                continue
            name, op = match.group(1), match.group(2)
            if op is None:
                if name == "operator":
                    any_of = (values[0] or "").lower() == "or"
                    continue
                raise _refuse(f"Filter field {name} must be an array")
            if name != "id" and name not in FIELDS[table.module]:
                raise _refuse(
                    f"Filter field {name} in {OBJECT_NAMES[table.module]} module is not found"
                )
            if op.lower() not in _OPERATORS:
                raise _refuse(f"Filter operator {op} is invalid")
            if name == "deleted":
                deleted = values[0] == "1"
                continue
            if name in _RELATE:
                # Non-db fields pass validation and then break the generated SQL.
                raise _refuse("Database failure. Please refer to suitecrm.log for details.")
            conditions.extend(_Condition(name, op.lower(), value) for value in values[-1:])
        return conditions, any_of, deleted

    def _test(self, table: _Table, condition: _Condition) -> Callable[[_Row], bool]:
        name, op, value = condition.field, condition.op, condition.value
        if name in _DATETIMES:
            limit = _db_datetime(value)

            def stamp(row: _Row) -> datetime:
                return _second(row.modified if name == "date_modified" else row.created)

            return _comparison(op, stamp, limit, value)
        if name == "id":
            return _comparison(op, lambda row: row.id, value, value)
        folded = value.casefold()
        return _comparison(op, lambda row: self._value(table, row, name).casefold(), folded, value)

    def _list(self, table: _Table, request: ApiRequest) -> ApiResponse:
        names = self._fields(table, request)
        size, number = self._page(request)
        conditions, any_of, deleted = self._conditions(table, request)
        sort = request.arg("sort")
        if sort is not None and not re.fullmatch(r"-?\w+", sort):
            raise _refuse(f'The option "sort" with value "{sort}" is invalid.')
        sort_field = sort.lstrip("-") if sort else None
        if sort_field is not None and sort_field != "id" and sort_field not in FIELDS[table.module]:
            raise _refuse(
                f"Sort field {sort_field} in {OBJECT_NAMES[table.module]} module is not found"
            )
        limit = size if size is not None else DEFAULT_ROWS
        offset = (number - 1) * limit if size is not None else 0
        rows, count = self._select(table, conditions, any_of, deleted, sort, offset + limit)
        chunk = rows[offset : offset + limit]
        if not chunk:
            message = "Request was successful, but there is no result"
            return _document(200, {"meta": {"message": message}, "data": []})
        payload: dict[str, Any] = {}
        if size is not None:
            pages = math.ceil(count / size)
            payload["meta"] = {"total-pages": pages, "records-on-this-page": len(chunk)}
        payload["data"] = [self._render(table, row, names) for row in chunk]
        if size is not None:
            payload["links"] = _links(table.module, request, number, math.ceil(count / size))
        return _document(200, payload)

    def _select(
        self,
        table: _Table,
        conditions: list[_Condition],
        any_of: bool,
        deleted: bool,
        sort: str | None,
        wanted: int,
    ) -> tuple[list[_Row], int]:
        """The first ``wanted`` rows in the requested order, and how many match in all."""
        index = table.index(deleted)
        low: datetime | None = None
        high: datetime | None = None
        rest = list(conditions)
        if not any_of:
            # date_modified ranges come off the index; the other conditions filter.
            rest = []
            for condition in conditions:
                bounds = _range(condition) if condition.field == "date_modified" else None
                if bounds is None:
                    rest.append(condition)
                    continue
                low = bounds[0] if low is None or (bounds[0] and bounds[0] > low) else low
                if bounds[1] is not None:
                    high = bounds[1] if high is None or bounds[1] < high else high
        tests = [self._test(table, condition) for condition in rest]
        email_eq = next(
            (c for c in rest if c.field == "email1" and c.op == "eq" and not any_of), None
        )
        if email_eq is not None:
            # The email-address join: a few rows by their address.
            ids = table.emails.get(email_eq.value.casefold(), set())
            keys: Iterator[tuple[datetime, str]] = iter(
                sorted((table.rows[i].modified, i) for i in ids)
            )
        else:
            keys = index.irange(
                (low, "") if low is not None else None,
                (high, "") if high is not None else None,
                inclusive=(True, False),
            )
        if any_of:
            matches: Callable[[_Row], bool] = (
                (lambda row: any(test(row) for test in tests)) if tests else (lambda row: True)
            )
        else:
            matches = lambda row: all(test(row) for test in tests)  # noqa: E731
        rows = (table.rows[key[1]] for key in keys)
        candidates = (row for row in rows if row.deleted == deleted and matches(row))
        field_name = sort.lstrip("-") if sort else None
        descending = bool(sort and sort.startswith("-"))
        if field_name == "date_modified" and not descending and not tests and email_eq is None:
            count = _count(index, low, high)
            return self._tie_shuffled(candidates, wanted), count
        everything = list(candidates)
        if field_name is None:
            self._random.shuffle(everything)  # no ORDER BY: whatever order the database likes
        elif field_name == "date_modified":
            everything = self._tie_shuffled(iter(everything), len(everything))
            if descending:
                everything.reverse()
        else:
            everything.sort(
                key=lambda row: (self._value(table, row, field_name).casefold(), row.id),
                reverse=descending,
            )
        return everything[:wanted], len(everything)

    def _tie_shuffled(self, rows: Iterator[_Row], wanted: int) -> list[_Row]:
        """Rows in date_modified order, those sharing a second in a random order (MySQL's
        order among equal sort keys is not defined), the first ``wanted`` of them, the last
        tie group complete."""
        out: list[_Row] = []
        group: list[_Row] = []
        for row in rows:
            if group and _second(row.modified) != _second(group[0].modified):
                self._random.shuffle(group)
                out.extend(group)
                group = []
                if len(out) >= wanted:
                    return out
            group.append(row)
        self._random.shuffle(group)
        out.extend(group)
        return out

    # ----------------------------------------------------------------- writes

    def _data(self, request: ApiRequest) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise _refuse('The required option "data" is missing.') from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise _refuse('The required option "data" is missing.')
        extra = sorted(set(data) - {"type", "id", "attributes"})
        if extra:
            raise _refuse(
                f'The option "{extra[0]}" does not exist. Defined options are: "attributes", '
                '"id", "type".'
            )
        if not isinstance(data.get("type"), str):
            raise _refuse('The required option "type" is missing.')
        attributes = data.get("attributes", {})
        if not isinstance(attributes, dict):
            raise _refuse('The option "attributes" with value array is invalid.')
        return data

    def _checked(
        self, table: _Table, attributes: Mapping[str, Any], *, patch: bool
    ) -> dict[str, Any]:
        for name, value in attributes.items():
            if name != "id" and name not in FIELDS[table.module]:
                raise _refuse(f"Property {name} in {OBJECT_NAMES[table.module]} module is invalid")
            if name == "email1" and isinstance(value, str) and value and not _EMAIL.match(value):
                raise _refuse(f"Invalid email address: {value}")
        kept = {}
        for name, value in attributes.items():
            if name == "id" or (patch and value is None):
                continue  # SuiteCRM's save skips null properties (SuiteCRM#10210)
            if patch and name == "email1" and self.email1_patch_bug:
                continue
            kept[name] = value
        return kept

    def _apply(
        self, row_fields: dict[str, str], attributes: Mapping[str, Any]
    ) -> tuple[datetime | None, datetime | None, bool]:
        """Store ``attributes``; the kept date_modified/date_entered, and a deletion."""
        modified = entered = None
        deleting = False
        for name, value in attributes.items():
            if name == "date_modified" and value:
                modified = _db_datetime(str(value))
            elif name == "date_entered" and value:
                entered = _db_datetime(str(value))
            elif name == "deleted":
                deleting = str(value) == "1"
            elif name not in _DATETIMES:
                row_fields[name] = _text(name, value)
        return modified, entered, deleting

    def _create(self, request: ApiRequest) -> ApiResponse:
        data = self._data(request)
        table = self._table(data["type"])
        record_id = data.get("id")
        if record_id is not None:
            if not isinstance(record_id, str) or not _UUID.match(record_id):
                raise _refuse(f'The option "id" with value "{record_id}" is invalid.')
            if record_id in table.rows:
                raise _refuse(f"Bean {table.module} with id {record_id} is already exist")
        attributes = self._checked(table, data.get("attributes", {}), patch=False)
        fields: dict[str, str] = {}
        modified, entered, _ = self._apply(fields, attributes)
        now = self.clock.now()
        new_id = self._store(table.module, fields, now, record_id or "")
        row = table.rows[new_id]
        if modified or entered:
            table.put(_Row(row.id, entered or now, modified or now, row.fields))
            row = table.rows[new_id]
        return _document(201, {"data": self._render(table, row, None)})

    def _update(self, request: ApiRequest) -> ApiResponse:
        data = self._data(request)
        table = self._table(data["type"])
        record_id = data.get("id")
        if not isinstance(record_id, str) or not record_id:
            raise _refuse('The required option "id" is missing.')
        row = self._live(table, record_id)
        attributes = self._checked(table, data.get("attributes", {}), patch=True)
        fields = dict(row.fields)
        modified, entered, deleting = self._apply(fields, attributes)
        stamp = modified or self.clock.now()
        updated = _Row(row.id, entered or row.created, stamp, fields, deleted=deleting)
        table.put(updated)
        return _document(201, {"data": self._render(table, updated, None)})

    # ----------------------------------------------------------------- relationships

    def _related_ids(self, table: _Table, row: _Row, link: str) -> list[str]:
        related = _LINKS[table.module][link]
        if related == "Accounts":
            account = row.fields.get("account_id")
            return [account] if account else []
        if table.module == "Opportunities":
            return sorted(self._opportunity_contacts.get(row.id, set()))
        if table.module == "Accounts":
            others = self._tables[related]
            return sorted(
                r.id
                for r in others.rows.values()
                if not r.deleted and r.fields.get("account_id") == row.id
            )
        # Contacts → Opportunities
        return sorted(o for o, people in self._opportunity_contacts.items() if row.id in people)

    def _relationship(
        self, request: ApiRequest, table: _Table, record_id: str, rest: list[str]
    ) -> ApiResponse:
        row = self._live(table, record_id)
        link = rest[0]
        if link not in _LINKS[table.module]:
            raise _refuse(
                f"Cannot load relationship {link} for {OBJECT_NAMES[table.module]} module"
            )
        related = self._tables[_LINKS[table.module][link]]
        if request.method == "GET" and len(rest) == 1:
            ids = [
                i
                for i in self._related_ids(table, row, link)
                if i in related.rows and not related.rows[i].deleted
            ]
            if not ids:
                message = (
                    f"There is no relationship set in {OBJECT_NAMES[table.module]} module with "
                    f"{link} link field"
                )
                return _document(200, {"meta": {"message": message}, "data": []})
            items = []
            for other in ids:
                item = self._render(related, related.rows[other], None)
                item.pop("relationships", None)
                item["links"] = {"self": f"V8/module/{OBJECT_NAMES[related.module]}/{other}"}
                items.append(item)
            meta = {
                "total-records": len(items),
                "total-pages": 1,
                "records-on-this-page": len(items),
            }
            return _document(200, {"meta": meta, "data": items})
        if request.method == "POST" and len(rest) == 1:
            data = self._data(request)
            other_id = data.get("id")
            if not isinstance(other_id, str):
                raise _refuse('The required option "id" is missing.')
            partner = self._live(related, other_id)
            self._link(table, row, related, partner, add=True)
            return _document(
                201, {"meta": _link_message(table, row, related, partner, link), "data": []}
            )
        if request.method == "DELETE" and len(rest) == 2:
            if rest[1] not in self._related_ids(table, row, link):
                raise _refuse(
                    f"Module with {rest[1]} id is not related to {OBJECT_NAMES[table.module]}"
                )
            gone = self._live(related, rest[1])
            self._link(table, row, related, gone, add=False)
            message = (
                f"Relationship has been deleted between {table.module} and {related.module} "
                f"using link {link}"
            )
            return _document(200, {"meta": {"message": message}, "data": []})
        return ApiResponse(404, _NOT_FOUND_PAGE, content_type="text/html; charset=UTF-8")

    def _link(self, table: _Table, row: _Row, related: _Table, other: _Row, *, add: bool) -> None:
        # Linking touches the relationship table only: neither record's date_modified moves.
        pair = {table.module: row, related.module: other}
        if "Opportunities" in pair and "Contacts" in pair:
            people = self._opportunity_contacts.setdefault(pair["Opportunities"].id, set())
            if add:
                people.add(pair["Contacts"].id)
            else:
                people.discard(pair["Contacts"].id)
            return
        holder = pair["Contacts"] if "Contacts" in pair else pair["Opportunities"]
        holder.fields["account_id"] = pair["Accounts"].id if add else ""


def _link_message(
    table: _Table, row: _Row, related: _Table, other: _Row, link: str
) -> dict[str, Any]:
    return {
        "message": (
            f"{related.module} record with id {other.id} has been related to {table.module} "
            f"record with id {row.id} using link {link}"
        ),
        "sourceModule": table.module,
        "sourceModuleLabel": table.module,
        "sourceId": row.id,
        "relatedModule": related.module,
        "relatedModuleLabel": related.module,
        "relatedId": other.id,
        "relationshipLink": link,
    }


def _comparison(
    op: str, get: Callable[[_Row], Any], limit: Any, raw: str
) -> Callable[[_Row], bool]:
    if op == "eq":
        return lambda row: bool(get(row) == limit)
    if op == "neq":
        return lambda row: bool(get(row) != limit)
    if op == "gt":
        return lambda row: bool(get(row) > limit)
    if op == "gte":
        return lambda row: bool(get(row) >= limit)
    if op == "lt":
        return lambda row: bool(get(row) < limit)
    if op == "lte":
        return lambda row: bool(get(row) <= limit)
    pattern = _like(raw)
    return lambda row: bool(pattern.match(str(get(row))))


def _range(condition: _Condition) -> tuple[datetime | None, datetime | None] | None:
    """A date_modified condition as [low, high) on the index (whole seconds), if it is one."""
    if condition.op in ("neq", "like"):
        return None
    at = _db_datetime(condition.value)
    after = at + timedelta(seconds=1)
    return {
        "eq": (at, after),
        "gt": (after, None),
        "gte": (at, None),
        "lt": (None, at),
        "lte": (None, after),
    }[condition.op]


def _count(index: SortedList, low: datetime | None, high: datetime | None) -> int:
    start = index.bisect_left((low, "")) if low is not None else 0
    end = index.bisect_left((high, "")) if high is not None else len(index)
    return max(end - start, 0)


def _links(module: str, request: ApiRequest, number: int, pages: int) -> dict[str, str]:
    """Paging links as SuiteCRM builds them: the request's own query with page[number]
    replaced, URL-decoded (literal brackets), below ``/V8`` (no API root)."""

    def to(page: int) -> str:
        query = [
            f"{key}={page if key == 'page[number]' else values[0]}"
            for key, values in request.query.items()
        ]
        if "page[number]" not in request.query:
            query.append(f"page[number]={page}")
        return f"/V8/module/{module}?" + "&".join(query)

    links: dict[str, str] = {}
    if number > 1:
        links["first"] = to(1)
        links["prev"] = to(number - 1)
    if number + 1 <= pages:
        links["next"] = to(number + 1)
        links["last"] = to(pages)
    return links


def _text(name: str, value: Any) -> str:
    """A value as SuiteCRM's database holds it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple):
        return str(value[0]) if value else ""
    if name in _DECIMALS and value != "":
        return _decimal_text(value)
    return str(value)


def _decimal_text(value: Any) -> str:
    """A currency value as MySQL's decimal(26,6) gives it back."""
    try:
        return f"{Decimal(str(value)):.6f}"
    except InvalidOperation:
        return str(value)


def _account_fields(company: SampleCompany, rng: random.Random) -> dict[str, str]:
    website = rng.choice((company.website, f"http://{company.domain}", f"www.{company.domain}"))
    return {
        "name": company.name,
        "account_type": "Customer",
        "website": website,
        "phone_office": (typed_phone(company.phone, rng) if company.phone else ""),
        "industry": _INDUSTRIES.get(company.industry, "Other"),
        "employees": str(company.employees),
        "annual_revenue": str(company.annual_revenue),
        "billing_address_city": company.city,
        "billing_address_country": typed_country(company.country, rng),
    }


def _contact_fields(person: SampleContact, rng: random.Random) -> dict[str, str]:
    email = person.email
    if rng.random() < 0.15:
        local, _, domain = email.partition("@")
        email = ".".join(part.capitalize() for part in local.split(".")) + "@" + domain
    return {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email1": email,
        "phone_work": (typed_phone(person.phone, rng) if person.phone else ""),
        "phone_mobile": (typed_phone(person.mobile, rng) if person.mobile else ""),
        "title": person.job_title or "",
        "primary_address_city": person.city,
        "primary_address_country": typed_country(person.country, rng),
    }
