"""A local emulator of Bitrix24's REST API (``crm.company/contact/deal.*``, ``batch``, OAuth).

Public entry points: :class:`Bitrix24Api` (the :class:`~connectors.sandbox.VendorApi` served by
``crmhub sandbox bitrix24``), :class:`OperatingTime`, :data:`PORTAL_OFFSET`.

What it models (facts: ``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md`` §2, §6):

* Paths: ``/rest/<method>[.json]`` with ``auth=<token>`` (query, JSON or form body), and
  inbound webhooks ``/rest/<user>/<code>/<method>[.json]``; parameters as JSON, form data or PHP
  query strings, top-level names in any case. ``/oauth/token/`` plays ``oauth.bitrix.info``:
  ``grant_type=refresh_token`` mints an access token (1 h, or ``options.token_ttl``) and a new
  refresh token (earlier refresh tokens stay usable here, until ``revoke_credentials`` revokes
  them all, the access tokens and the webhook code too).
* Errors in Bitrix24's envelope ``{"error", "error_description"}``: 401 ``expired_token``,
  ``invalid_token``, ``NO_AUTH_FOUND``; 503 ``QUERY_LIMIT_EXCEEDED``; 404
  ``ERROR_METHOD_NOT_FOUND``; 400 with an empty code for entity errors (``Not found``, ``ID is
  not defined or invalid.``, an invalid e-mail, a contact without a name).
* The leaky bucket: every request on the portal adds one, the bucket drains 2 a second
  (``options.rate_limit``), and a request that would fill it past 50 (at higher rates
  ``25 * rate``) is refused with 503 ``QUERY_LIMIT_EXCEEDED``. Token requests do not count
  (another server). A batch counts as one.
* ``batch``: at most 50 commands (``ERROR_BATCH_LENGTH_EXCEEDED``), no nested batch,
  ``$result[key][...]`` references to earlier commands, ``halt``, always HTTP 200 with
  ``result``/``result_error``/``result_total``/``result_next``/``result_time`` — and PHP's
  serialization: an empty map is ``[]``, and a map whose keys are ``0..n`` becomes a list.
* Every answer's ``time`` (and each batch command's in ``result_time``): ``start``, ``finish``,
  ``duration``, ``processing``, the portal-time ``date_start``/``date_finish``, and the method's
  operating budget: ``operating``, the seconds this application (or webhook) spent executing
  the method in the last ten minutes, counted in one-minute buckets, and
  ``operating_reset_at``, when the oldest of those buckets leaves the window (ten minutes on
  when there is none). Commands inside a batch count for their own methods, the batch itself
  for nothing, as Bitrix24's limits page says. The budget is reported, not enforced
  (:attr:`Bitrix24Api.operating` takes test charges).
* Lists: 50 rows a page by ``start`` (``-1``: no count), ``next``/``total``; ``order`` on any
  field (without one, rows come in id order); ``filter`` with the ``>=``, ``>``, ``<=``, ``<``,
  ``@``, ``!@``, ``%``, ``=``, ``!`` prefixes; ``select`` where ``*`` never includes the
  multifields. Every value is a string; ``DATE_MODIFY`` whole seconds at the portal's offset
  (+03:00), dates as midnight there.
* Multifields: items with their own ``ID``; on update an item with an ``ID`` is changed
  (deleted with ``DELETE: "Y"`` or an empty ``VALUE``), one without is **appended**, and an
  empty list changes nothing.
* Unknown field names are ignored, as Bitrix24 does; deleted records simply vanish from lists.
* ``crm.duplicate.findbycomm`` (EMAIL, PHONE; case-insensitive e-mails),
  ``crm.deal.contact.items.get/set/delete``, ``crm.contact.company.items.get``.

``insert``/``modify``/``remove``/``snapshot`` take and give records as the connector shows them
(:mod:`connectors.bitrix24.wire`).
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

from sortedcontainers import SortedList

from connectors.bitrix24.wire import (
    CONTACT_IDS_FIELD,
    DATE_FIELDS,
    ENTITIES,
    format_portal_datetime,
    multifield_changes,
    multifields_of,
    parse_query,
    present_record,
)
from connectors.sampledata import sample_account, typed_country, typed_phone
from connectors.sandbox import (
    ApiRequest,
    ApiResponse,
    Fault,
    SandboxClock,
    SandboxOptions,
    TokenIssuer,
    json_response,
)
from connectors.timeparse import parse_vendor_datetime

__all__ = ["PORTAL_OFFSET", "Bitrix24Api", "OperatingTime"]

PORTAL_OFFSET: Final = timedelta(hours=3)  # the portal's time zone (Moscow, as many are)
TOKEN_TTL: Final = 3600.0
DEFAULT_RATE: Final = 2.0
DEFAULT_BURST: Final = 50
PAGE: Final = 50
MAX_COMMANDS: Final = 50
OPERATING_WINDOW: Final = 600  # seconds: ten one-minute buckets
_USER_ID: Final = "1"
_MULTI_KINDS: Final = ("PHONE", "EMAIL", "WEB", "IM")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_RESULT_REF = re.compile(r"^\$result\[([^\]]+)\]((?:\[[^\]]*\])*)$")
_PREFIXES: Final = ("!@", ">=", "<=", "=%", "%=", "!=", ">", "<", "@", "%", "=", "!")


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "company": _names(
        "ID TITLE COMPANY_TYPE LOGO LEAD_ID HAS_PHONE HAS_EMAIL HAS_IMOL "
        "ASSIGNED_BY_ID CREATED_BY_ID MODIFY_BY_ID BANKING_DETAILS INDUSTRY REVENUE "
        "CURRENCY_ID EMPLOYEES COMMENTS DATE_CREATE DATE_MODIFY OPENED IS_MY_COMPANY "
        "ORIGINATOR_ID ORIGIN_ID ORIGIN_VERSION ADDRESS ADDRESS_2 ADDRESS_CITY "
        "ADDRESS_POSTAL_CODE ADDRESS_REGION ADDRESS_PROVINCE ADDRESS_COUNTRY "
        "ADDRESS_COUNTRY_CODE"
    ),
    "contact": _names(
        "ID HONORIFIC NAME SECOND_NAME LAST_NAME PHOTO BIRTHDATE TYPE_ID SOURCE_ID "
        "SOURCE_DESCRIPTION POST COMMENTS OPENED EXPORT ASSIGNED_BY_ID COMPANY_ID "
        "LEAD_ID HAS_PHONE HAS_EMAIL HAS_IMOL DATE_CREATE DATE_MODIFY CREATED_BY_ID "
        "MODIFY_BY_ID ORIGINATOR_ID ORIGIN_ID ORIGIN_VERSION ADDRESS ADDRESS_2 "
        "ADDRESS_CITY ADDRESS_POSTAL_CODE ADDRESS_REGION ADDRESS_PROVINCE "
        "ADDRESS_COUNTRY ADDRESS_COUNTRY_CODE"
    ),
    "deal": _names(
        "ID TITLE TYPE_ID CATEGORY_ID STAGE_ID STAGE_SEMANTIC_ID IS_NEW PROBABILITY "
        "CURRENCY_ID OPPORTUNITY IS_MANUAL_OPPORTUNITY TAX_VALUE COMPANY_ID CONTACT_ID "
        "BEGINDATE CLOSEDATE OPENED CLOSED COMMENTS ADDITIONAL_INFO ASSIGNED_BY_ID "
        "CREATED_BY_ID MODIFY_BY_ID DATE_CREATE DATE_MODIFY SOURCE_ID ORIGINATOR_ID "
        "ORIGIN_ID"
    ),
}
_READ_ONLY: Final = frozenset(
    {"ID", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID", "MODIFY_BY_ID", "HAS_PHONE"}
    | {"HAS_EMAIL", "HAS_IMOL", "STAGE_SEMANTIC_ID", "IS_NEW", "CLOSED", "CONTACT_ID"}
)
_MONEY: Final = frozenset({"OPPORTUNITY", "REVENUE", "TAX_VALUE"})
_STAGES: Final[Mapping[str, str]] = {
    "prospecting": "NEW",
    "qualification": "PREPARATION",
    "needs_analysis": "PREPAYMENT_INVOICE",
    "proposal": "EXECUTING",
    "negotiation": "FINAL_INVOICE",
    "closed_won": "WON",
    "closed_lost": "LOSE",
}
_SEMANTIC: Final[Mapping[str, str]] = {"WON": "S", "LOSE": "F", "APOLOGY": "F"}
_ENTITY_NAMES: Final[Mapping[str, str]] = {
    "company": "Company",
    "contact": "Contact",
    "deal": "Deal",
}


class _Refused(Exception):
    """A method's error: HTTP status and Bitrix24's (often empty) code and description."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


@dataclass(slots=True)
class _Outcome:
    result: Any
    total: int | None = None
    next: int | None = None


@dataclass(slots=True)
class _Table:
    """One entity's rows (raw Bitrix24 shape), indexed by (modified second, id) and by id."""

    entity: str
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[int, int] = field(default_factory=dict)
    by_modified: SortedList = field(default_factory=SortedList)
    ids: SortedList = field(default_factory=SortedList)

    def put(self, record_id: int, row: dict[str, Any], second: int) -> None:
        old = self.seconds.get(record_id)
        if old is not None:
            self.by_modified.remove((old, record_id))
        else:
            self.ids.add(record_id)
        self.rows[record_id] = row
        self.seconds[record_id] = second
        self.by_modified.add((second, record_id))

    def drop(self, record_id: int) -> None:
        second = self.seconds.pop(record_id)
        self.by_modified.remove((second, record_id))
        self.ids.remove(record_id)
        del self.rows[record_id]


class _LeakyBucket:
    """Bitrix24's request counter: +1 a request, drains ``rate`` a second, full at ``depth``."""

    def __init__(self, rate: float, depth: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.depth = depth
        self._clock = clock
        self._level = 0.0
        self._last = clock()
        self._lock = threading.Lock()

    def hit(self) -> bool:
        with self._lock:
            now = self._clock()
            self._level = max(self._level - (now - self._last) * self.rate, 0.0)
            self._last = now
            if self._level + 1 > self.depth:
                return False
            self._level += 1
            return True


class OperatingTime:
    """Bitrix24's per-method operating budget: seconds spent executing a method, per caller (an
    application or a webhook), summed over the last ten minutes in one-minute buckets."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._spent: dict[tuple[str, str], dict[int, float]] = {}  # → minute → seconds
        self._lock = threading.Lock()

    def charge(self, caller: str, method: str, seconds: float) -> None:
        """Count ``seconds`` of ``method``'s execution for ``caller``, now."""
        with self._lock:
            buckets = self._spent.setdefault((caller, method), {})
            minute = int(self._clock() // 60)
            buckets[minute] = buckets.get(minute, 0.0) + seconds

    def report(self, caller: str, method: str) -> tuple[float, int]:
        """``(operating, operating_reset_at)``: the seconds counted in the window, and the Unix
        time the oldest counted bucket leaves it (ten minutes from now when none counts)."""
        with self._lock:
            now = self._clock()
            oldest_kept = int(now // 60) - OPERATING_WINDOW // 60 + 1
            buckets = self._spent.get((caller, method), {})
            for minute in [m for m in buckets if m < oldest_kept]:
                del buckets[minute]
            if not buckets:
                return 0.0, int(now) + OPERATING_WINDOW
            return sum(buckets.values()), min(buckets) * 60 + OPERATING_WINDOW


def _php(value: Mapping[str, Any]) -> Any:
    """A map as PHP's json_encode writes an array: ``[]`` when empty, a list for keys 0..n."""
    if not value:
        return []
    keys = list(value)
    if keys == [str(n) for n in range(len(keys))]:
        return [value[k] for k in keys]
    return dict(value)


def _error(status: int, code: str, description: str) -> ApiResponse:
    return json_response(status, {"error": code, "error_description": description})


# --------------------------------------------------------------------------------------------
# The emulator


class Bitrix24Api:
    """A Bitrix24 portal behind ``Sandbox`` (see the module docstring)."""

    vendor: ClassVar[str] = "bitrix24"

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.clock = SandboxClock()
        self._lock = threading.RLock()
        self._tables = {entity: _Table(entity) for entity in ENTITIES.values()}
        self._deal_contacts: dict[int, list[int]] = {}
        self._next_id = {entity: 0 for entity in ENTITIES.values()}
        self._next_item = 0
        ttl = self.options.token_ttl if self.options.token_ttl is not None else TOKEN_TTL
        self.tokens = TokenIssuer("", ttl)
        self.client_id = "local." + secrets.token_hex(7) + "." + secrets.token_hex(4)
        self.client_secret = secrets.token_urlsafe(36)
        self._refresh_tokens = {secrets.token_hex(16)}
        self._revoked_refresh_tokens: set[str] = set()
        self.refresh_token = next(iter(self._refresh_tokens))
        self.webhook_user = "1"
        self.webhook_code = secrets.token_hex(8)
        self.member_id = secrets.token_hex(16)
        if self.options.rate_limit is None:
            self.rate, self.burst = DEFAULT_RATE, DEFAULT_BURST
        else:
            self.rate = self.options.rate_limit
            self.burst = min(max(DEFAULT_BURST, round(25 * self.rate)), 10_000)
        self._bucket = _LeakyBucket(self.rate, self.burst)
        self.operating = OperatingTime()

    # ----------------------------------------------------------------- VendorApi: setup

    def refresh_tokens_issued(self) -> list[str]:
        """Every refresh token this portal has handed out, rotated ones included (Bitrix24
        issues a new one with each access token), so a test can check none leaked."""
        with self._lock:
            return list(self._refresh_tokens)

    def connector_settings(self, base_url: str) -> dict[str, Any]:
        return {
            "connector": "bitrix24",
            "base_url": base_url,
            "oauth_url": f"{base_url}/oauth/token/",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "access_token": self.tokens.issue(),
            "refresh_token": self.refresh_token,
            "requests_per_second": self.rate,
            "burst": self.burst,
        }

    def webhook_url(self, base_url: str) -> str:
        """The inbound webhook URL of this portal (the other way a connector authenticates)."""
        return f"{base_url}/rest/{self.webhook_user}/{self.webhook_code}/"

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    def revoke_credentials(self) -> None:
        """The application reinstalled and the webhook made anew: old refresh tokens get 400
        ``invalid_grant``, old access tokens 401 ``invalid_token``, the old webhook URL 401
        ``NO_AUTH_FOUND``."""
        with self._lock:
            self.tokens.revoke_all()
            self._revoked_refresh_tokens.update(self._refresh_tokens)
            self.refresh_token = secrets.token_hex(16)
            self._refresh_tokens.add(self.refresh_token)
            self.webhook_code = secrets.token_hex(8)

    def fault_response(self, fault: Fault, request: ApiRequest) -> ApiResponse:
        if fault is Fault.RATE_LIMIT:
            return _error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        return _error(500, "INTERNAL_SERVER_ERROR", "Internal server error")

    # ----------------------------------------------------------------- VendorApi: the account

    def seed_records(self, contacts: int, seed: int) -> None:
        account = sample_account(contacts, seed)
        stamps = account.stamps(self.clock.now())
        companies: dict[int, int] = {}
        people: dict[int, int] = {}
        with self._lock:
            for company in account.companies:
                rng = random.Random(f"{seed}:bitrix24:company:{company.key}")  # noqa: S311
                website = company.website if rng.random() < 0.7 else company.domain
                companies[company.key] = self._create(
                    "company",
                    {
                        "TITLE": company.name,
                        "COMPANY_TYPE": "CUSTOMER",
                        "INDUSTRY": company.industry,
                        "REVENUE": company.annual_revenue,
                        "CURRENCY_ID": "USD",
                        "ADDRESS_CITY": company.city,
                        "ADDRESS_COUNTRY": typed_country(company.country, rng),
                        "PHONE": [{"VALUE": typed_phone(company.phone, rng), "VALUE_TYPE": "WORK"}],
                        "WEB": [{"VALUE": website, "VALUE_TYPE": "WORK"}],
                    },
                    next(stamps),
                )
            for person in account.contacts:
                rng = random.Random(f"{seed}:bitrix24:contact:{person.key}")  # noqa: S311
                email = person.email
                if rng.random() < 0.15:
                    email = email[0].upper() + email[1:]
                phones = [{"VALUE": typed_phone(person.phone, rng), "VALUE_TYPE": "WORK"}]
                if person.mobile:
                    phones.append(
                        {"VALUE": typed_phone(person.mobile, rng), "VALUE_TYPE": "MOBILE"}
                    )
                people[person.key] = self._create(
                    "contact",
                    {
                        "NAME": person.first_name,
                        "LAST_NAME": person.last_name,
                        "POST": person.job_title,
                        "TYPE_ID": "CLIENT",
                        "SOURCE_ID": "SELF",
                        "COMPANY_ID": companies.get(person.company_key),
                        "ADDRESS_CITY": person.city,
                        "ADDRESS_COUNTRY": typed_country(person.country, rng),
                        "EMAIL": [{"VALUE": email, "VALUE_TYPE": "WORK"}],
                        "PHONE": phones,
                    },
                    next(stamps),
                )
            for deal in account.deals:
                contact_ids = [people[k] for k in deal.contact_keys if k in people]
                self._create(
                    "deal",
                    {
                        "TITLE": deal.name,
                        "OPPORTUNITY": deal.amount,
                        "CURRENCY_ID": deal.currency,
                        "STAGE_ID": _STAGES.get(deal.stage, "NEW"),
                        "CLOSEDATE": deal.close_date.isoformat(),
                        "COMPANY_ID": companies.get(deal.company_key),
                        CONTACT_IDS_FIELD: contact_ids,
                    },
                    next(stamps),
                )

    def insert(self, object_type: str, fields: Mapping[str, Any]) -> str:
        entity = ENTITIES[object_type]
        with self._lock:
            raw = self._from_presented(object_type, fields, {})
            return str(self._create(entity, raw, self.clock.now()))

    def modify(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None:
        entity = ENTITIES[object_type]
        with self._lock:
            table = self._tables[entity]
            row = table.rows[int(record_id)]
            raw = self._from_presented(object_type, fields, row)
            self._change(entity, int(record_id), raw, self.clock.now())

    def remove(self, object_type: str, record_id: str) -> None:
        with self._lock:
            self._drop(ENTITIES[object_type], int(record_id))

    def snapshot(self, object_type: str) -> dict[str, dict[str, Any]]:
        entity = ENTITIES[object_type]
        names = [n for n in _FIELDS[entity] if n != "ID"] + list(multifields_of(object_type))
        with self._lock:
            table = self._tables[entity]
            shown: dict[str, dict[str, Any]] = {}
            for record_id, row in table.rows.items():
                fields = present_record(object_type, row, names)
                if entity == "deal":
                    fields[CONTACT_IDS_FIELD] = [
                        str(c) for c in self._deal_contacts.get(record_id, [])
                    ]
                shown[str(record_id)] = fields
            return shown

    def _from_presented(
        self, object_type: str, fields: Mapping[str, Any], current: Mapping[str, Any]
    ) -> dict[str, Any]:
        entity = ENTITIES[object_type]
        multis = multifields_of(object_type)
        known = set(_FIELDS[entity]) | set(multis)
        if entity == "deal":
            known.add(CONTACT_IDS_FIELD)
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"Bitrix24 {entity} has no fields {', '.join(unknown)}")
        raw = {name: value for name, value in fields.items() if name not in multis}
        raw.update(multifield_changes(object_type, fields, current))
        return raw

    # ----------------------------------------------------------------- storage

    def _stamp(self, instant: datetime) -> tuple[str, int]:
        second = int(instant.timestamp() // 1)
        when = datetime.fromtimestamp(second, UTC)
        return format_portal_datetime(when, PORTAL_OFFSET), second

    def _create(self, entity: str, fields: Mapping[str, Any], instant: datetime) -> int:
        self._next_id[entity] += 1
        record_id = self._next_id[entity]
        stamp, second = self._stamp(instant)
        row: dict[str, Any] = dict.fromkeys(_FIELDS[entity])
        row.update(
            {
                "ID": str(record_id),
                "DATE_CREATE": stamp,
                "DATE_MODIFY": stamp,
                "CREATED_BY_ID": _USER_ID,
                "MODIFY_BY_ID": _USER_ID,
                "ASSIGNED_BY_ID": _USER_ID,
                "OPENED": "Y",
            }
        )
        if entity == "contact":
            row["EXPORT"] = "Y"
        if entity == "deal":
            row.update(
                {
                    "TITLE": f"Deal #{record_id}",
                    "CATEGORY_ID": "0",
                    "STAGE_ID": "NEW",
                    "OPPORTUNITY": "0.00",
                    "IS_MANUAL_OPPORTUNITY": "N",
                    "TYPE_ID": "SALE",
                    "CLOSEDATE": _portal_date((instant + timedelta(days=7)).date()),
                    "BEGINDATE": _portal_date(instant.date()),
                }
            )
            self._deal_contacts[record_id] = []
        if entity == "company":
            row.update({"COMPANY_TYPE": "CUSTOMER", "IS_MY_COMPANY": "N"})
        self._apply(entity, record_id, row, fields)
        self._tables[entity].put(record_id, row, second)
        return record_id

    def _change(
        self, entity: str, record_id: int, fields: Mapping[str, Any], when: datetime
    ) -> None:
        table = self._tables[entity]
        row = dict(table.rows[record_id])
        self._apply(entity, record_id, row, fields)
        stamp, second = self._stamp(when)
        row["DATE_MODIFY"] = stamp
        table.put(record_id, row, second)

    def _apply(
        self, entity: str, record_id: int, row: dict[str, Any], fields: Mapping[str, Any]
    ) -> None:
        """Write ``fields`` (Bitrix24's wire shape) into ``row`` as Bitrix24 stores them."""
        for name, value in fields.items():
            key = name.upper()
            if key in _MULTI_KINDS:
                self._apply_items(row, key, value)
            elif key == CONTACT_IDS_FIELD and entity == "deal":
                ids = value if isinstance(value, list) else [value]
                self._deal_contacts[record_id] = [int(v) for v in ids if str(v).isdigit()]
            elif key in _FIELDS[entity] and key not in _READ_ONLY:
                row[key] = _stored(key, value)
        if entity == "deal":
            contacts = self._deal_contacts.get(record_id, [])
            row["CONTACT_ID"] = str(contacts[0]) if contacts else None
            stage = str(row.get("STAGE_ID") or "NEW")
            row["STAGE_SEMANTIC_ID"] = _SEMANTIC.get(stage.split(":")[-1], "P")
            row["CLOSED"] = "Y" if row["STAGE_SEMANTIC_ID"] != "P" else "N"
        row["HAS_PHONE"] = "Y" if row.get("PHONE") else "N"
        row["HAS_EMAIL"] = "Y" if row.get("EMAIL") else "N"
        if entity != "deal":
            row["HAS_IMOL"] = "N"

    def _apply_items(self, row: dict[str, Any], kind: str, sent: Any) -> None:
        items: list[dict[str, str]] = [dict(item) for item in row.get(kind) or []]
        entries = list(sent.values()) if isinstance(sent, Mapping) else sent
        if not isinstance(entries, list):
            return
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            value = str(entry.get("VALUE") or "").strip()
            item_id = str(entry.get("ID") or "")
            if item_id:
                found = next((item for item in items if item["ID"] == item_id), None)
                if found is None:
                    continue
                if str(entry.get("DELETE", "")).upper() == "Y" or not value:
                    items.remove(found)
                else:
                    found["VALUE"] = value
                    found["VALUE_TYPE"] = str(entry.get("VALUE_TYPE") or found["VALUE_TYPE"])
            elif value:
                # No ID: appended, whatever is there already (the duplicate-phone trap).
                self._next_item += 1
                items.append(
                    {
                        "ID": str(self._next_item),
                        "VALUE_TYPE": str(entry.get("VALUE_TYPE") or "WORK").upper(),
                        "VALUE": value,
                        "TYPE_ID": kind,
                    }
                )
        row[kind] = items or None

    def _drop(self, entity: str, record_id: int) -> None:
        self._tables[entity].drop(record_id)
        if entity == "deal":
            self._deal_contacts.pop(record_id, None)
        if entity == "contact":
            for deal_id, contacts in self._deal_contacts.items():
                if record_id in contacts:
                    contacts.remove(record_id)
                    deals = self._tables["deal"]
                    deals.rows[deal_id]["CONTACT_ID"] = str(contacts[0]) if contacts else None

    # ----------------------------------------------------------------- HTTP

    def handle(self, request: ApiRequest) -> ApiResponse:
        path = request.path
        if path.rstrip("/") == "/oauth/token":
            return self._token(request)
        if not path.startswith("/rest/"):
            return _error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        try:
            params = _params(request)
        except ValueError:
            return _error(400, "INVALID_REQUEST", "The request body is not valid JSON")
        rest = path[len("/rest/") :]
        webhook = re.fullmatch(r"(\d+)/([^/]+)/(.+)", rest)
        if webhook is not None:
            if (webhook.group(1), webhook.group(2)) != (self.webhook_user, self.webhook_code):
                return _error(401, "NO_AUTH_FOUND", "Wrong authorization data")
            method = webhook.group(3)
            caller = "webhook"
        else:
            method = rest
            caller = "application"
            refused = self._authenticate(params)
            if refused is not None:
                return refused
        params.pop("auth", None)
        method = method.removesuffix(".json").lower()
        if not self._bucket.hit():
            return _error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        started = time.time()
        with self._lock:
            if method == "batch":
                return self._batch(params, started, caller)
            try:
                outcome = self._call(method, params)
            except _Refused as refused_call:
                return _error(refused_call.status, refused_call.code, refused_call.description)
            finally:
                self.operating.charge(caller, method, time.time() - started)
        body: dict[str, Any] = {"result": outcome.result}
        if outcome.next is not None:
            body["next"] = outcome.next
        if outcome.total is not None:
            body["total"] = outcome.total
        body["time"] = self._time(started, caller, method)
        return json_response(200, body)

    def _authenticate(self, params: Mapping[str, Any]) -> ApiResponse | None:
        token = params.get("auth")
        if not isinstance(token, str) or not token:
            return _error(401, "NO_AUTH_FOUND", "Wrong authorization data")
        state = self.tokens.check(token)
        if state == "expired":
            return _error(401, "expired_token", "The access token provided has expired.")
        if state != "valid":
            return _error(401, "invalid_token", "The access token provided is invalid.")
        return None

    def _token(self, request: ApiRequest) -> ApiResponse:
        params = {key: values[0] for key, values in request.query.items() if values}
        if request.method == "POST" and request.body:
            params.update({k: v[0] for k, v in request.form().items() if v})
        if (
            params.get("client_id") != self.client_id
            or params.get("client_secret") != self.client_secret
        ):
            return _error(401, "invalid_client", "Invalid client credentials")
        if params.get("grant_type") != "refresh_token":
            return _error(400, "invalid_request", "Unsupported grant_type")
        with self._lock:
            presented = params.get("refresh_token")
            if presented not in self._refresh_tokens or presented in self._revoked_refresh_tokens:
                return _error(400, "invalid_grant", "Invalid refresh token")
            fresh = secrets.token_hex(16)
            self._refresh_tokens.add(fresh)
        host = request.header("host") or "127.0.0.1"
        expires_in = int(self.tokens.ttl) if self.tokens.ttl >= 1 else 1
        return json_response(
            200,
            {
                "access_token": self.tokens.issue(),
                "client_endpoint": f"http://{host}/rest/",
                "domain": "oauth.bitrix.info",
                "expires": int(time.time() + self.tokens.ttl),
                "expires_in": expires_in,
                "member_id": self.member_id,
                "refresh_token": fresh,
                "scope": "crm",
                "server_endpoint": "https://oauth.bitrix.info/rest/",
                "status": "L",
                "user_id": 1,
            },
        )

    def _time(self, started: float, caller: str, method: str) -> dict[str, Any]:
        finish = time.time()
        offset = timezone(PORTAL_OFFSET)
        operating, reset_at = self.operating.report(caller, method)
        return {
            "start": started,
            "finish": finish,
            "duration": finish - started,
            "processing": finish - started,
            "date_start": datetime.fromtimestamp(int(started), offset).isoformat(),
            "date_finish": datetime.fromtimestamp(int(finish), offset).isoformat(),
            "operating_reset_at": reset_at,
            "operating": operating,
        }

    def _batch(self, params: Mapping[str, Any], started: float, caller: str) -> ApiResponse:
        commands = params.get("cmd")
        if not isinstance(commands, Mapping):
            commands = dict(enumerate(commands)) if isinstance(commands, list) else {}
        if len(commands) > MAX_COMMANDS:
            return _error(400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
        halt = str(params.get("halt", "0")) not in ("0", "", "false", "N")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        following: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for raw_key, command in commands.items():
            key = str(raw_key)
            method, _, query = str(command).partition("?")
            method = method.lower().removesuffix(".json")
            command_started = time.time()
            try:
                if method == "batch":
                    raise _Refused(
                        405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch"
                    )
                call_params = _resolve(_lower_top(parse_query(query)), results)
                call_params.pop("auth", None)
                outcome = self._call(method, call_params)
            except _Refused as refused:
                errors[key] = {"error": refused.code, "error_description": refused.description}
                if halt:
                    break
                continue
            finally:
                if method != "batch":
                    self.operating.charge(caller, method, time.time() - command_started)
            results[key] = outcome.result
            times[key] = self._time(command_started, caller, method)
            if outcome.total is not None:
                totals[key] = outcome.total
            if outcome.next is not None:
                following[key] = outcome.next
        body = {
            "result": {
                "result": _php(results),
                "result_error": _php(errors),
                "result_total": _php(totals),
                "result_next": _php(following),
                "result_time": _php(times),
            },
            # A batch spends no budget of its own: its commands count for their methods.
            "time": self._time(started, caller, "batch"),
        }
        return json_response(200, body)

    # ----------------------------------------------------------------- methods

    def _call(self, method: str, params: Mapping[str, Any]) -> _Outcome:
        if method == "crm.duplicate.findbycomm":
            return self._findbycomm(params)
        if method.startswith("crm.deal.contact.items."):
            return self._deal_contacts_call(method.rsplit(".", 1)[1], params)
        if method == "crm.contact.company.items.get":
            row = self._row("contact", params)
            company = row.get("COMPANY_ID")
            if not company:
                return _Outcome([])
            return _Outcome(
                [{"COMPANY_ID": int(company), "SORT": 10, "ROLE_ID": 0, "IS_PRIMARY": "Y"}]
            )
        parts = method.split(".")
        if len(parts) == 3 and parts[0] == "crm" and parts[1] in self._tables:
            entity, action = parts[1], parts[2]
            if action == "list":
                return self._list(entity, params)
            if action == "get":
                return _Outcome(_rendered(self._row(entity, params), None))
            if action == "add":
                return _Outcome(self._add(entity, params))
            if action == "update":
                return _Outcome(self._update(entity, params))
            if action == "delete":
                self._row(entity, params)
                self._drop(entity, int(str(params["id"])))
                return _Outcome(True)
        raise _Refused(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")

    def _row(self, entity: str, params: Mapping[str, Any]) -> dict[str, Any]:
        raw = params.get("id")
        if raw is None or not str(raw).isdigit() or int(str(raw)) <= 0:
            raise _Refused(400, "", "ID is not defined or invalid.")
        row = self._tables[entity].rows.get(int(str(raw)))
        if row is None:
            raise _Refused(400, "", "Not found")
        return row

    def _fields_param(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        fields = params.get("fields")
        if isinstance(fields, list) and not fields:
            fields = {}
        if not isinstance(fields, Mapping):
            raise _Refused(400, "", "Parameter 'fields' must be array.")
        return {str(name).upper(): value for name, value in fields.items()}

    def _validate(self, entity: str, merged: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
        for kind in ("EMAIL",):
            entries = fields.get(kind)
            entries = list(entries.values()) if isinstance(entries, Mapping) else entries
            for entry in entries if isinstance(entries, list) else []:
                value = str(entry.get("VALUE") or "").strip() if isinstance(entry, Mapping) else ""
                if value and not _EMAIL.match(value):
                    raise _Refused(400, "", f"Invalid e-mail address: {value}")
        if entity == "contact" and not any(
            str(merged.get(name) or "").strip() for name in ("NAME", "LAST_NAME", "SECOND_NAME")
        ):
            raise _Refused(400, "", 'The required field "Name" or "Last name" is missing.<br>')

    def _add(self, entity: str, params: Mapping[str, Any]) -> int:
        fields = self._fields_param(params)
        self._validate(entity, fields, fields)
        return self._create(entity, fields, self.clock.now())

    def _update(self, entity: str, params: Mapping[str, Any]) -> bool:
        row = self._row(entity, params)
        fields = self._fields_param(params)
        merged = {**row, **{k: v for k, v in fields.items() if k in _FIELDS[entity]}}
        self._validate(entity, merged, fields)
        self._change(entity, int(row["ID"]), fields, self.clock.now())
        return True

    def _deal_contacts_call(self, action: str, params: Mapping[str, Any]) -> _Outcome:
        row = self._row("deal", params)
        deal_id = int(row["ID"])
        if action == "get":
            contacts = self._deal_contacts.get(deal_id, [])
            return _Outcome(
                [
                    {
                        "CONTACT_ID": contact,
                        "SORT": 10 * (n + 1),
                        "ROLE_ID": 0,
                        "IS_PRIMARY": "Y" if n == 0 else "N",
                    }
                    for n, contact in enumerate(contacts)
                ]
            )
        if action in ("set", "delete"):
            items = params.get("items") if action == "set" else []
            if action == "set" and not isinstance(items, list):
                raise _Refused(400, "", "Parameter 'items' must be array.")
            ranked = sorted(
                (item for item in items or [] if isinstance(item, Mapping)),
                key=lambda i: (str(i.get("IS_PRIMARY", "N")) != "Y", int(str(i.get("SORT") or 0))),
            )
            contacts = [
                int(str(i["CONTACT_ID"])) for i in ranked if str(i.get("CONTACT_ID")).isdigit()
            ]
            missing = [c for c in contacts if c not in self._tables["contact"].rows]
            if missing:
                raise _Refused(400, "", f"Contact with ID {missing[0]} is not found")
            self._change("deal", deal_id, {CONTACT_IDS_FIELD: contacts}, self.clock.now())
            return _Outcome(True)
        raise _Refused(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")

    def _findbycomm(self, params: Mapping[str, Any]) -> _Outcome:
        kind = str(params.get("type") or "").upper()
        entity_type = str(params.get("entity_type") or "").upper()
        values = params.get("values")
        if kind not in ("EMAIL", "PHONE") or not isinstance(values, list):
            raise _Refused(400, "", "Parameter 'type' or 'values' is not valid.")
        if len(values) > 20:
            raise _Refused(400, "", "Too many values (maximum is 20).")
        wanted = {_comm_key(kind, str(v)) for v in values}
        found: dict[str, list[int]] = {}
        for entity in ("contact", "company"):
            if entity_type and entity_type != entity.upper():
                continue
            ids = [
                record_id
                for record_id, row in self._tables[entity].rows.items()
                if any(
                    _comm_key(kind, str(item["VALUE"])) in wanted for item in row.get(kind) or []
                )
            ]
            if ids:
                found[entity.upper()] = ids
        return _Outcome(found or [])

    def _list(self, entity: str, params: Mapping[str, Any]) -> _Outcome:
        table = self._tables[entity]
        raw_filter = params.get("filter")
        criteria = raw_filter if isinstance(raw_filter, Mapping) else {}
        order = params.get("order")
        order_by = [
            (str(name).upper(), str(direction).upper() == "DESC")
            for name, direction in (order.items() if isinstance(order, Mapping) else [])
        ]
        try:
            start = int(str(params.get("start") or 0))
        except ValueError:
            start = 0
        predicates: list[Callable[[dict[str, Any]], bool]] = []
        low: int | None = None
        high: int | None = None
        id_low: int | None = None
        ids_in: list[int] | None = None
        for raw_key, value in criteria.items():
            prefix, name = _split_filter(str(raw_key))
            if name == "DATE_MODIFY" and prefix in (">=", ">", "<", "<="):
                second = _filter_second(value)
                if prefix in (">=", ">"):
                    bound = second if prefix == ">=" else second + 1
                    low = bound if low is None else max(low, bound)
                else:
                    bound = second if prefix == "<" else second + 1
                    high = bound if high is None else min(high, bound)
            elif name == "ID" and prefix in (">", ">=") and str(value).isdigit():
                bound = int(str(value)) + (1 if prefix == ">" else 0)
                id_low = bound if id_low is None else max(id_low, bound)
            elif name == "ID" and prefix in ("@", "=") and ids_in is None:
                listed = value if isinstance(value, list) else [value]
                ids_in = [int(str(v)) for v in listed if str(v).isdigit()]
            else:
                predicates.append(_predicate(prefix, name, value))
        if id_low is not None and (
            ids_in is not None or _reads_modified_index(order_by, low, high)
        ):
            predicates.append(_at_least(id_low))
        # Where rows come from, already in some order: the modified index, the id index, or
        # the ids asked for. The two indexes are sliced by position when nothing else filters.
        by_modified = _modified_order(order_by)
        descending = any(d for _, d in order_by)
        sorted_already = not order_by
        if ids_in is not None:
            source: Any = sorted(i for i in set(ids_in) if i in table.rows)
            sorted_already = sorted_already or (order_by == [("ID", False)])
            lo_pos, hi_pos = 0, len(source)
        elif _reads_modified_index(order_by, low, high):
            source = table.by_modified
            sorted_already = sorted_already or (by_modified and not descending)
            lo_pos = source.bisect_left((low, -1)) if low is not None else 0
            hi_pos = source.bisect_left((high, -1)) if high is not None else len(source)
        else:
            source = table.ids
            sorted_already = sorted_already or (order_by == [("ID", False)])
            lo_pos = source.bisect_left(id_low) if id_low is not None else 0
            hi_pos = len(source)
        counting = start >= 0
        first = max(start, 0)
        if not predicates and sorted_already:
            count = max(hi_pos - lo_pos, 0)
            window = source[lo_pos + first : min(lo_pos + first + PAGE, hi_pos)]
            page = [item[1] if isinstance(item, tuple) else item for item in window]
        else:
            ids = [item[1] if isinstance(item, tuple) else item for item in source[lo_pos:hi_pos]]
            ids = [i for i in ids if all(test(table.rows[i]) for test in predicates)]
            if not sorted_already:
                ids = _ordered(table, ids, order_by)
            count = len(ids)
            page = ids[first : first + PAGE]
        select = params.get("select")
        chosen = [str(s).upper() for s in select] if isinstance(select, list) else None
        rows = [_rendered(table.rows[i], chosen) for i in page]
        following = first + PAGE if counting and first + PAGE < count else None
        return _Outcome(rows, total=count if counting else 0, next=following)


# --------------------------------------------------------------------------------------------
# Helpers


def _params(request: ApiRequest) -> dict[str, Any]:
    """Query, then a JSON or form body, merged; PHP bracket keys nested; top names lowered."""
    pairs = [(name, value) for name, values in request.query.items() for value in values]
    params: dict[str, Any] = parse_query(urlencode(pairs))
    if request.body:
        if "json" in (request.header("content-type") or ""):
            body = json.loads(request.body)
            if isinstance(body, Mapping):
                params.update(body)
        else:
            params.update(parse_query(request.body.decode("utf-8")))
    return _lower_top(params)


def _lower_top(params: Mapping[str, Any]) -> dict[str, Any]:
    return {str(name).lower(): value for name, value in params.items()}


def _resolve(value: Any, results: Mapping[str, Any]) -> Any:
    """``$result[key][...]`` references to earlier commands' results, substituted."""
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, results) for v in value]
    if isinstance(value, str):
        match = _RESULT_REF.match(value)
        if match is not None:
            found: Any = results.get(match.group(1))
            for step in re.findall(r"\[([^\]]*)\]", match.group(2)):
                if isinstance(found, list) and step.isdigit() and int(step) < len(found):
                    found = found[int(step)]
                elif isinstance(found, Mapping):
                    found = found.get(step)
                else:
                    found = None
            return "" if found is None else str(found) if not isinstance(found, list) else found
    return value


def _modified_order(order_by: Sequence[tuple[str, bool]]) -> bool:
    return [name for name, _ in order_by] in (["DATE_MODIFY", "ID"], ["DATE_MODIFY"])


def _reads_modified_index(
    order_by: Sequence[tuple[str, bool]], low: int | None, high: int | None
) -> bool:
    """Whether a list reads from the modified-time index (else from the id index)."""
    return _modified_order(order_by) or low is not None or high is not None


def _at_least(low_id: int) -> Callable[[dict[str, Any]], bool]:
    def test(row: dict[str, Any]) -> bool:
        return int(row["ID"]) >= low_id

    return test


def _split_filter(key: str) -> tuple[str, str]:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return prefix, key[len(prefix) :].upper()
    return "=", key.upper()


def _filter_second(value: Any) -> int:
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Refused(400, "", f"Invalid date value: {text}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone(PORTAL_OFFSET))
    return int(parsed.timestamp() // 1)


def _comparable(name: str, value: Any) -> Any:
    if value is None:
        return None
    text = str(value)
    if name == "ID" or (name.endswith("_ID") and text.isdigit()):
        return int(text) if text.isdigit() else text.casefold()
    if name.startswith("DATE_") or name in DATE_FIELDS:
        try:
            return parse_vendor_datetime(text if "T" in text or " " in text else text + "T00:00:00")
        except ValueError:
            return text.casefold()
    try:
        return Decimal(text)
    except InvalidOperation:
        return text.casefold()


def _predicate(prefix: str, name: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    listed = [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def values_of(row: dict[str, Any]) -> list[Any]:
        if name in _MULTI_KINDS:
            return [str(item["VALUE"]).casefold() for item in row.get(name) or []]
        return [_comparable(name, row.get(name))]

    def test(row: dict[str, Any]) -> bool:
        mine = values_of(row)
        if name in _MULTI_KINDS:
            wanted = {v.casefold() for v in listed}
            hit = any(v in wanted for v in mine)
            return not hit if prefix in ("!", "!=", "!@") else hit
        own = mine[0]
        if prefix in ("%", "=%", "%="):
            needle = listed[0].strip("%").casefold()
            return own is not None and needle in str(own).casefold()
        targets = [_comparable(name, v) for v in listed]
        if prefix in ("=", "@"):
            return own in targets
        if prefix in ("!", "!=", "!@"):
            return own not in targets
        if own is None:
            return False
        try:
            return bool(
                {
                    ">=": own >= targets[0],
                    ">": own > targets[0],
                    "<=": own <= targets[0],
                    "<": own < targets[0],
                }[prefix]
            )
        except TypeError:
            return False

    return test


def _ordered(table: _Table, ids: list[int], order_by: list[tuple[str, bool]]) -> list[int]:
    for name, descending in reversed(order_by):

        def key(record_id: int, name: str = name) -> tuple[int, Any]:
            value = _comparable(name, table.rows[record_id].get(name))
            return (value is None, value if value is not None else 0)

        def text(record_id: int, name: str = name) -> str:
            return str(table.rows[record_id].get(name))

        try:
            ids.sort(key=key, reverse=descending)
        except TypeError:
            ids.sort(key=text, reverse=descending)
    return ids


def _rendered(row: Mapping[str, Any], select: list[str] | None) -> dict[str, Any]:
    """A row as a list or get answers it: scalars for ``*``, multifields only when named."""
    if select is None or not select:
        wanted = [name for name in row if name not in _MULTI_KINDS] + [
            kind for kind in _MULTI_KINDS if row.get(kind)
        ]
    else:
        names = ["ID"] if "ID" not in select else []
        for name in select:
            if name in ("*", "UF_*"):
                names.extend(n for n in row if n not in _MULTI_KINDS and n not in names)
            elif name in row and name not in names:
                names.append(name)
        wanted = names
    shown: dict[str, Any] = {}
    for name in wanted:
        value = row.get(name)
        if name in _MULTI_KINDS:
            if value:
                shown[name] = [dict(item) for item in value]
        else:
            shown[name] = value
    return shown


def _stored(name: str, value: Any) -> str | None:
    """A field value as Bitrix24 keeps it: a string (money with 2 decimals, dates at midnight)."""
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0] if value else ""
    text = str(value).strip() if not isinstance(value, bool) else ("Y" if value else "N")
    if name in ("COMPANY_ID", "LEAD_ID") and text in ("", "0"):
        return None
    if name in _MONEY and text:
        try:
            return f"{Decimal(text):.2f}"
        except InvalidOperation:
            return "0.00"
    if name in DATE_FIELDS and text:
        try:
            return _portal_date(date.fromisoformat(text[:10]))
        except ValueError:
            return None
    return text


def _portal_date(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=timezone(PORTAL_OFFSET)).isoformat()


def _comm_key(kind: str, value: str) -> str:
    if kind == "EMAIL":
        return value.strip().casefold()
    return re.sub(r"\D", "", value)
