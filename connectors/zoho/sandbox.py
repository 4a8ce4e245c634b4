"""A local emulator of Zoho CRM's REST API v8 and its OAuth token endpoint.

Public entry points: :class:`ZohoApi` (the :class:`~connectors.sandbox.VendorApi` that
``crmhub sandbox zoho`` serves through :class:`~connectors.sandbox.Sandbox`).

What it reproduces (facts in part B and the emulator checklist of part C of
``/work/shared/vendors/hubspot-zoho.md``; real bodies in ``samples/zoho-*``):

* ``POST /oauth/v2/token`` (refresh-token grant, form or query) answering with ``api_domain`` =
  the sandbox's own URL, tokens of ``options.token_ttl`` (default 3,600 s), Zoho's
  ``invalid_code``/``invalid_client`` answers and its "Access Denied" throttle after 10 tokens in
  10 minutes per refresh token. ``Authorization: Zoho-oauthtoken``; an expired, revoked or
  unknown token gets 401 ``INVALID_TOKEN``, none at all 401 ``AUTHENTICATION_FAILURE``. After
  ``revoke_credentials`` the old refresh token gets ``{"error": "invalid_code"}`` (HTTP 200, as
  Zoho answers a refresh token it no longer knows).
* ``GET /crm/{v}/{Module}``: ``fields`` required (≤ 50), ``per_page`` ≤ 200, ``page``/
  ``page_token`` (exclusive; tokens bound to the query, 24-hour expiry), 400
  ``DISCRETE_PAGINATION_LIMIT_EXCEEDED`` past 2,000 records without a token, ``sort_by`` (default
  ``id``) and ``sort_order`` (default ``desc``), ``ids``, ``If-Modified-Since`` (304 when nothing is
  newer), 204 when empty, the ``info`` block; ``GET /crm/{v}/{Module}/{id}``.
* ``/deleted`` (``type``, paging, ``If-Modified-Since``), ``/search`` (``criteria`` with
  and/or and the documented operators, ``email``, ``phone``, ``word``; text ``equals`` matches
  like *contains*, as Zoho's does; 2,000-record cap).
* Writes: insert, bulk update, upsert (``duplicate_check_fields``, ``action``,
  ``duplicate_field``), delete by ``ids``; ≤ 100 per call; per-record results in input order with
  201/200 when all succeed, 207 when some fail, 400 with ``data[]`` when all fail;
  ``MANDATORY_NOT_FOUND``, ``INVALID_DATA`` (unknown field, malformed email, bad type, text
  longer than its field with ``maximum_length``, lookup to a missing record, unknown id) with
  ``api_name``/``json_path``.
* ``GET /crm/{v}/settings/fields?module=`` (field metadata, the fields' ``api_name``,
  ``data_type`` and, for picklists, ``pick_list_values`` with ``display_value`` and
  ``actual_value``): see :data:`FIELD_TYPES` and :data:`PICKLISTS` for what is described.
* Limits: Zoho's concurrency limit (20 in flight, Enterprise) and a rolling 24-hour credit
  budget (70,000: Enterprise with 20 users), or ``options.rate_limit`` requests per second; the
  answer is 429 ``TOO_MANY_REQUESTS`` in Zoho's envelope, with no rate-limit headers (none are
  documented).

Date-times are written in the API user's time zone (+05:30, as in Zoho's documentation) with
whole seconds; the account keeps milliseconds internally (``SandboxClock``). Records are indexed
by (modified time, id) in ``SortedList``s, so paging 20,000 records costs no sort per request.
Deviations, for want of facts: the deleted list is ordered oldest first; the Deals stage
picklist also accepts ``Prospecting`` (a stage many orgs add; the canonical first stage).
"""

from __future__ import annotations

import random
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Final

from sortedcontainers import SortedList

from connectors.sampledata import (
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
)
from connectors.timeparse import parse_vendor_datetime
from connectors.zoho.fields import (
    DUPLICATE_CHECK,
    FIELDS,
    LOOKUPS,
    MANDATORY,
    MANY_LOOKUPS,
    MODULES,
    READ_ONLY,
    format_zoho_datetime,
    present,
)

__all__ = ["FIELD_TYPES", "PICKLISTS", "ZohoApi"]

USER_OFFSET: Final = timedelta(hours=5, minutes=30)
TOKEN_TTL: Final = 3600.0
TOKENS_PER_WINDOW: Final = 10
TOKEN_WINDOW_SECONDS: Final = 600.0
CONCURRENCY: Final = 20
DAILY_CREDITS: Final = 70_000
MAX_PER_PAGE: Final = 200
MAX_FIELDS: Final = 50
MAX_WRITE: Final = 100
DISCRETE_LIMIT: Final = 2000
PAGINATION_CEILING: Final = 100_000
PAGE_TOKEN_HOURS: Final = 24
MAX_CRITERIA: Final = 10
# The server's per-second window is this much shorter than the one connector_settings gives the
# client, so a client that keeps exactly to its budget is not punished for loopback jitter.
_JITTER_SECONDS: Final = 0.02

_ID_BASE: Final = 6_493_490_000_001_000_000  # 19 digits, like the samples' ids
_USER: Final = {
    "name": "Sandbox Admin",
    "id": "6493490000000486001",
    "email": "admin@sandbox.example",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBERS: Final = frozenset({"Amount", "Annual_Revenue", "Exchange_Rate", "Probability"})
_INTEGERS: Final = frozenset({"Employees"})
_DATES: Final = frozenset({"Closing_Date", "Date_of_Birth"})
_BOOLEANS: Final = frozenset({"Email_Opt_Out"})
# Text longer than its field is refused per record: INVALID_DATA with details.maximum_length
# (zoho/crm-oas v8.0 record/operations/createRecords/examples/response-400-invaliddatalength.md).
# Lengths are the fields' metadata `length`: First_Name 40 and Company 200, which converts into
# Account_Name (crm-oas v8.0 fields/operations/getFields/examples/response-200-fullexample.md);
# Last_Name 80 (the ZOHO.CRM.META.getFields sample of Zoho's embedded-app SDK); Description a
# large text area of 32,000; every other text field single-line, 255 ("Text: Maximum 255
# characters", zoho.com/crm/help/customization/custom-fields.html). Lookups are ids, not text.
_MAX_LENGTH: Final[Mapping[str, int]] = {
    "First_Name": 40,
    "Last_Name": 80,
    "Account_Name": 200,
    "Description": 32_000,
}
_SINGLE_LINE_MAX: Final = 255
_MODULE_NAMES: Final = frozenset(MODULES.values())
_DEFAULT_PIPELINE: Final = "Standard (Standard)"
# Canonical stage → the stage's actual value in this org (zoho-deals-fields-meta-stage.json).
_STAGES: Final = {
    "prospecting": "Prospecting",
    "qualification": "Qualification",
    "needs_analysis": "Needs Analysis",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "closed_won": "Closed Won",
    "closed_lost": "Closed Lost",
}
_LAST_ID: Final = "9" * 20  # sorts after every 19-digit id

# What ``GET /settings/fields`` says of each field: its Zoho data type. Seen in Zoho's own
# samples (v7 field-meta page, a Leads module: text, email, phone, integer, currency, picklist,
# ownerlookup; the Deals Stage fixture: picklist); the others are Zoho's types for such fields,
# not checked against a live org [U]. Standard picklists whose default options no source here
# showed (Account_Type, Ownership, Salutation, Lead_Source, Type, Reason_For_Loss__s,
# Record_Status__s) are not described, nor are Tag, Account_Number and SIC_Code, whose types
# no source here showed: the sandbox stores any text in them.
_TYPE_OF: Final[Mapping[str, str]] = {
    "id": "bigint",
    "Owner": "ownerlookup",
    "Created_By": "ownerlookup",
    "Modified_By": "ownerlookup",
    "Created_Time": "datetime",
    "Modified_Time": "datetime",
    "Last_Activity_Time": "datetime",
    "Description": "textarea",
    "Email": "email",
    "Secondary_Email": "email",
    "Phone": "phone",
    "Mobile": "phone",
    "Home_Phone": "phone",
    "Other_Phone": "phone",
    "Fax": "phone",
    "Website": "website",
    "Industry": "picklist",
    "Rating": "picklist",
    "Stage": "picklist",
    "Pipeline": "picklist",
    "Currency": "picklist",
    "Employees": "integer",
    "Probability": "integer",
    "Annual_Revenue": "currency",
    "Amount": "currency",
    "Expected_Revenue": "currency",
    "Exchange_Rate": "double",
    "Closing_Date": "date",
    "Date_of_Birth": "date",
    "Email_Opt_Out": "boolean",
    "Locked__s": "boolean",
}
_UNDESCRIBED: Final = frozenset(
    {
        "Tag",
        "Account_Number",
        "Account_Type",
        "Ownership",
        "SIC_Code",
        "Salutation",
        "Lead_Source",
        "Type",
        "Reason_For_Loss__s",
        "Record_Status__s",
    }
)
FIELD_TYPES: Final[Mapping[str, Mapping[str, str]]] = {
    module: {
        name: _TYPE_OF.get(name) or ("lookup" if name in LOOKUPS[module] else "text")
        for name in sorted(names - _UNDESCRIBED)
    }
    for module, names in FIELDS.items()
}
"""Module → field API name → the Zoho ``data_type`` the field metadata gives it."""

_Option = tuple[str, str]  # (display_value, actual_value)
# Deals Stage: the default pipeline's stages as a real org's field metadata lists them
# (samples/zoho-deals-fields-meta-stage.json, with probabilities), and Prospecting, which this
# org adds (see the module docstring; its probability is this org's choice). The display
# value is what Zoho's UI shows; records carry the actual value.
_STAGE_OPTIONS: Final[tuple[tuple[str, str, int], ...]] = (
    ("Prospecting", "Prospecting", 10),
    ("Qualification", "Qualification", 10),
    ("Needs Analysis", "Needs Analysis", 20),
    ("Value Proposition", "Value Proposition", 40),
    ("Identify Decision Makers", "Id. Decision Makers", 60),
    ("Proposal/Price Quote", "Proposal/Price Quote", 75),
    ("Negotiation/Review", "Negotiation/Review", 90),
    ("Closed Won", "Closed Won", 100),
    ("Closed Lost", "Closed Lost", 0),
    ("Closed Lost to Competition", "Closed Lost to Competition", 0),
)
PICKLISTS: Final[Mapping[tuple[str, str], tuple[_Option, ...]]] = {
    ("Deals", "Stage"): tuple((display, actual) for display, actual, _ in _STAGE_OPTIONS),
    ("Deals", "Pipeline"): ((_DEFAULT_PIPELINE, _DEFAULT_PIPELINE),),
    # The currencies this org has enabled: those its seed deals are in.
    ("Deals", "Currency"): (("USD", "USD"), ("EUR", "EUR"), ("GBP", "GBP")),
    # Zoho's default Industry options, as the v7 field-meta page's sample lists them (the
    # global-picklist page's sample agrees on the display values): one actual value differs
    # from its display value.
    ("Accounts", "Industry"): (
        ("-None-", "-None-"),
        ("ASP (Application Service Provider)", "ASP (Application Service Provider)"),
        ("Data/Telecom OEM", "Data/Telecom OEM"),
        ("ERP (Enterprise Resource Planning)", "ERP (Enterprise Resource Planning)"),
        ("Government/Military", "Government/Military"),
        ("Large Enterprise", "Large Enterprise"),
        ("ManagementISV", "ManagementISV"),
        ("MSP (Management Service Provider)", "MSP (Management Service Provider)"),
        ("Network Equipment Enterprise", "Network Equipment (Enterprise)"),
        ("Non-management ISV", "Non-management ISV"),
        ("Optical Networking", "Optical Networking"),
        ("Service Provider", "Service Provider"),
        ("Small/Medium Enterprise", "Small/Medium Enterprise"),
        ("Storage Equipment", "Storage Equipment"),
        ("Storage Service Provider", "Storage Service Provider"),
        ("Systems Integrator", "Systems Integrator"),
        ("Wireless Industry", "Wireless Industry"),
    ),
    # Zoho's default Rating options (the same page's Leads Rating, which converts into this).
    ("Accounts", "Rating"): (
        ("-None-", "-None-"),
        ("Acquired", "Acquired"),
        ("Active", "Active"),
        ("Market Failed", "Market Failed"),
        ("Project Cancelled", "Project Cancelled"),
        ("Shut Down", "ShutDown"),
    ),
}
"""(module, field) → the picklist's options as (display value, actual value), in order."""
_JSON_TYPES: Final[Mapping[str, str]] = {
    "bigint": "string",
    "ownerlookup": "jsonobject",
    "lookup": "jsonobject",
    "integer": "integer",
    "currency": "double",
    "double": "double",
    "boolean": "boolean",
}


def _error(
    status: int, code: str, message: str, details: Mapping[str, Any] | None = None
) -> ApiResponse:
    return json_response(
        status,
        {"code": code, "details": dict(details or {}), "message": message, "status": "error"},
    )


def _record_error(code: str, message: str, details: Mapping[str, Any]) -> dict[str, Any]:
    return {"code": code, "details": dict(details), "message": message, "status": "error"}


_NOT_FOUND_URL = (
    "INVALID_URL_PATTERN",
    "Please check if the URL trying to access is a correct one",
)


@dataclass(slots=True)
class _Row:
    id: str
    created: datetime
    modified: datetime
    fields: dict[str, Any]  # lookups as id strings (Contact_Name too)


@dataclass
class _Module:
    name: str
    rows: dict[str, _Row] = field(default_factory=dict)
    by_modified: SortedList = field(default_factory=SortedList)  # (modified, id)
    by_id: SortedList = field(default_factory=SortedList)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_deleted: SortedList = field(default_factory=SortedList)  # (deleted_time, id)
    # Casefolded value of the duplicate-check field → ids holding it, for upsert.
    keys: dict[str, set[str]] = field(default_factory=dict)

    def key_of(self, row: _Row) -> str | None:
        value = row.fields.get(DUPLICATE_CHECK[self.name])
        return value.casefold() if isinstance(value, str) and value else None

    def put(self, row: _Row) -> None:
        old = self.rows.get(row.id)
        if old is not None:
            self._unindex(old)
        self.rows[row.id] = row
        self.by_modified.add((row.modified, row.id))
        self.by_id.add(row.id)
        key = self.key_of(row)
        if key is not None:
            self.keys.setdefault(key, set()).add(row.id)

    def drop(self, record_id: str) -> _Row:
        row = self.rows.pop(record_id)
        self._unindex(row)
        return row

    def _unindex(self, row: _Row) -> None:
        self.by_modified.remove((row.modified, row.id))
        self.by_id.remove(row.id)
        key = self.key_of(row)
        if key is not None:
            holders = self.keys.get(key)
            if holders is not None:
                holders.discard(row.id)
                if not holders:
                    del self.keys[key]


@dataclass(frozen=True, slots=True)
class _PageToken:
    bound_to: tuple[Any, ...]
    offset: int
    expires: datetime


class _CriteriaError(ValueError):
    pass


# --------------------------------------------------------------------------------------------
# Search criteria: ((Field:operator:value)and(...))or(...), values escaped with backslashes

_Predicate = Callable[[Any], bool]
_Render = Callable[[Any, str], Any]


class _Criteria:
    def __init__(self, text: str, render: _Render) -> None:
        self.text = text
        self.pos = 0
        self.count = 0
        self.render = render

    def parse(self) -> _Predicate:
        predicate = self._expr()
        if self.pos != len(self.text):
            raise _CriteriaError(f"unexpected text at {self.pos}")
        if self.count > MAX_CRITERIA:
            raise _CriteriaError(f"more than {MAX_CRITERIA} criteria")
        return predicate

    def _expr(self) -> _Predicate:
        terms = [self._group()]
        joins: list[str] = []
        while self.text.startswith(("and", "or"), self.pos):
            join = "and" if self.text.startswith("and", self.pos) else "or"
            self.pos += len(join)
            joins.append(join)
            terms.append(self._group())
        if not joins:
            return terms[0]
        if len(set(joins)) > 1:
            raise _CriteriaError("mixing and/or needs parentheses")
        if joins[0] == "and":
            return lambda row: all(term(row) for term in terms)
        return lambda row: any(term(row) for term in terms)

    def _group(self) -> _Predicate:
        if not self.text.startswith("(", self.pos):
            raise _CriteriaError(f"expected ( at {self.pos}")
        self.pos += 1
        inner = self._expr() if self.text.startswith("(", self.pos) else self._comparison()
        if not self.text.startswith(")", self.pos):
            raise _CriteriaError(f"expected ) at {self.pos}")
        self.pos += 1
        return inner

    def _comparison(self) -> _Predicate:
        end = self.text.find(":", self.pos)
        second = self.text.find(":", end + 1) if end >= 0 else -1
        if end < 0 or second < 0:
            raise _CriteriaError("expected field:operator:value")
        name, operator = self.text[self.pos : end], self.text[end + 1 : second]
        self.pos = second + 1
        chars: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] != ")":
            if self.text[self.pos] == "\\" and self.pos + 1 < len(self.text):
                self.pos += 1
            chars.append(self.text[self.pos])
            self.pos += 1
        self.count += 1
        return self._test(name, operator, "".join(chars))

    def _test(self, name: str, operator: str, value: str) -> _Predicate:
        render = self.render

        def text(row: Any) -> str:
            found = present("", name, render(row, name))
            return "" if found is None else str(found).casefold()

        wanted = value.casefold()
        if operator == "equals":
            # Zoho's equals on text behaves like "contains" (facts B3).
            return lambda row: wanted in text(row) if wanted else not text(row)
        if operator == "not_equal":
            return lambda row: text(row) != wanted
        if operator == "starts_with":
            return lambda row: text(row).startswith(wanted)
        if operator == "in":
            options = {v.strip().casefold() for v in value.split(",")}
            return lambda row: text(row) in options
        if operator in ("greater_than", "greater_equal", "less_than", "less_equal"):
            limit = _comparable(value)

            def compare(row: Any) -> bool:
                raw = render(row, name)
                if raw is None:
                    return False
                mine = _comparable(str(raw))
                if type(mine) is not type(limit):
                    return False
                return {
                    "greater_than": mine > limit,  # type: ignore[operator]
                    "greater_equal": mine >= limit,  # type: ignore[operator]
                    "less_than": mine < limit,  # type: ignore[operator]
                    "less_equal": mine <= limit,  # type: ignore[operator]
                }[operator]

            return compare
        raise _CriteriaError(f"unsupported operator {operator!r}")


def _comparable(value: str) -> float | datetime | str:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_vendor_datetime(value)
    except ValueError:
        return value.casefold()


# --------------------------------------------------------------------------------------------
# The emulator


class ZohoApi:
    """Zoho CRM behind ``Sandbox`` (see the module docstring)."""

    vendor: ClassVar[str] = "zoho"

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.clock = SandboxClock()
        self._lock = threading.RLock()
        self._modules = {name: _Module(name) for name in _MODULE_NAMES}
        self._next_id = 0
        self._page_tokens: dict[str, _PageToken] = {}
        ttl = self.options.token_ttl if self.options.token_ttl is not None else TOKEN_TTL
        self.tokens = TokenIssuer("1000.", ttl)
        self.client_id = "1000." + secrets.token_hex(12).upper()
        self.client_secret = secrets.token_hex(20)
        self.refresh_token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        self._token_window = RollingWindow(TOKENS_PER_WINDOW, TOKEN_WINDOW_SECONDS)
        self.window_limit, self.window_seconds = (
            rate_window(self.options.rate_limit)
            if self.options.rate_limit is not None
            else (DAILY_CREDITS, 86_400.0)
        )
        self._requests = (
            RollingWindow(self.window_limit, self.window_seconds - _JITTER_SECONDS)
            if self.options.rate_limit is not None
            else RollingWindow(DAILY_CREDITS, 86_400.0)
        )
        self._in_flight = 0
        self._flight_lock = threading.Lock()

    # ----------------------------------------------------------------- VendorApi: setup

    def connector_settings(self, base_url: str) -> dict[str, Any]:
        if self.options.rate_limit is not None:
            budget = f"{self.window_limit} per {self.window_seconds:g} second"
        else:
            budget = f"{DAILY_CREDITS - 10_000}/day"
        return {
            "connector": "zoho",
            "base_url": base_url,
            "accounts_url": base_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "rate_limit": budget,
            "max_concurrency": 10,
        }

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    def revoke_credentials(self) -> None:
        """The refresh token revoked (and with it every access token it minted, as Zoho
        documents) and a new one generated, with its own budget of 10 tokens per 10 minutes."""
        with self._lock:
            self.tokens.revoke_all()
            self.refresh_token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
            self._token_window = RollingWindow(TOKENS_PER_WINDOW, TOKEN_WINDOW_SECONDS)

    def fault_response(self, fault: Fault, request: ApiRequest) -> ApiResponse:
        if fault is Fault.RATE_LIMIT:
            return self._too_many()
        return _error(500, "INTERNAL_ERROR", "Internal Server Error")

    # ----------------------------------------------------------------- VendorApi: the account

    def seed_records(self, contacts: int, seed: int) -> None:
        account = sample_account(contacts, seed)
        total = len(account.companies) + len(account.contacts) + len(account.deals)
        start = self.clock.now() - timedelta(seconds=total)
        stamps = (start + timedelta(seconds=i) for i in range(total))
        accounts: dict[int, str] = {}
        people: dict[int, str] = {}
        with self._lock:
            for company in account.companies:
                rng = random.Random(f"{seed}:zoho:company:{company.key}")  # noqa: S311
                accounts[company.key] = self._store(
                    "Accounts",
                    {
                        "Account_Name": company.name,
                        "Website": company.website if rng.random() < 0.7 else company.domain,
                        "Phone": typed_phone(company.phone, rng),
                        "Industry": company.industry,
                        "Employees": company.employees,
                        "Annual_Revenue": float(company.annual_revenue),
                        "Billing_City": company.city,
                        "Billing_Country": typed_country(company.country, rng),
                    },
                    next(stamps),
                )
            for person in account.contacts:
                rng = random.Random(f"{seed}:zoho:contact:{person.key}")  # noqa: S311
                people[person.key] = self._store(
                    "Contacts", _contact_fields(person, accounts, rng), next(stamps)
                )
            for deal in account.deals:
                fields: dict[str, Any] = {
                    "Deal_Name": deal.name,
                    "Amount": _number(deal.amount),
                    "Currency": deal.currency,
                    "Stage": _STAGES[deal.stage],
                    "Pipeline": _DEFAULT_PIPELINE,
                    "Closing_Date": deal.close_date.isoformat(),
                    "Account_Name": accounts.get(deal.company_key),
                    "Contact_Name": people.get(deal.contact_keys[0]),
                }
                self._store("Deals", fields, next(stamps))

    def insert(self, object_type: str, fields: Mapping[str, Any]) -> str:
        module = MODULES[object_type]
        with self._lock:
            return self._store(module, self._from_presented(module, fields), self.clock.now())

    def modify(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None:
        table = self._modules[MODULES[object_type]]
        with self._lock:
            row = table.rows[record_id]
            changed = {**row.fields, **self._from_presented(table.name, fields)}
            table.put(_Row(row.id, row.created, self.clock.now(), changed))

    def remove(self, object_type: str, record_id: str) -> None:
        with self._lock:
            self._delete(self._modules[MODULES[object_type]], record_id)

    def snapshot(self, object_type: str) -> dict[str, dict[str, Any]]:
        module = MODULES[object_type]
        with self._lock:
            return {
                row.id: {name: self._presented(module, name, v) for name, v in row.fields.items()}
                for row in self._modules[module].rows.values()
            }

    def _from_presented(self, module: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(fields) - FIELDS[module])
        if unknown:
            raise ValueError(f"{module} has no fields {', '.join(unknown)}")
        stored = {}
        for name, value in fields.items():
            if name in MANY_LOOKUPS.get(module, ()) and isinstance(value, list | tuple):
                value = value[0] if value else None
            stored[name] = value
        return stored

    def _presented(self, module: str, name: str, value: Any) -> Any:
        if name in MANY_LOOKUPS.get(module, ()):
            return [value] if value else []
        return value

    def _store(self, module: str, fields: dict[str, Any], stamp: datetime) -> str:
        self._next_id += 1
        record_id = str(_ID_BASE + self._next_id * 2 + 1)
        self._modules[module].put(_Row(record_id, stamp, stamp, fields))
        return record_id

    def _delete(self, table: _Module, record_id: str) -> None:
        row = table.drop(record_id)
        now = self.clock.now()
        table.deleted[record_id] = {
            "deleted_by": {"name": _USER["name"], "id": _USER["id"]},
            "id": record_id,
            "display_name": self._display_name(table.name, row),
            "type": "recycle",
            "created_by": {"name": _USER["name"], "id": _USER["id"]},
            "deleted_time": now,
        }
        table.by_deleted.add((now, record_id))

    # ----------------------------------------------------------------- HTTP

    def handle(self, request: ApiRequest) -> ApiResponse:
        if request.path == "/oauth/v2/token":
            if request.method != "POST":
                return _error(405, "METHOD_NOT_ALLOWED", "The HTTP method is not allowed")
            return self._token(request)
        match = re.fullmatch(r"/crm/v\d+/(.+)", request.path)
        if match is None:
            return _error(404, *_NOT_FOUND_URL)
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        with self._flight_lock:
            if self._in_flight >= CONCURRENCY:
                return self._too_many()
            self._in_flight += 1
        try:
            if not self._requests.hit():
                return self._too_many()
            return self._route(request, match.group(1).strip("/").split("/"))
        finally:
            with self._flight_lock:
                self._in_flight -= 1

    def _too_many(self) -> ApiResponse:
        return _error(
            429,
            "TOO_MANY_REQUESTS",
            "Number of API requests for the 24 hour period is exceeded or the concurrency "
            "limit of the user for the app is exceeded",
        )

    def _authenticate(self, request: ApiRequest) -> ApiResponse | None:
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token.strip():
            return _error(401, "AUTHENTICATION_FAILURE", "Authentication failed")
        if self.tokens.check(token.strip()) != "valid":
            return _error(401, "INVALID_TOKEN", "invalid oauth token")
        return None

    def _token(self, request: ApiRequest) -> ApiResponse:
        try:
            form = request.form()
        except UnicodeDecodeError:
            form = {}
        values = {**{k: v for k, v in request.query.items()}, **form}

        def one(name: str) -> str:
            found = values.get(name)
            return found[0] if found else ""

        # Zoho answers refusals with HTTP 200 and an "error" key.
        if one("grant_type") != "refresh_token":
            return json_response(200, {"error": "unsupported_grant_type"})
        if not secrets.compare_digest(one("client_id"), self.client_id) or not (
            secrets.compare_digest(one("client_secret"), self.client_secret)
        ):
            return json_response(200, {"error": "invalid_client"})
        if not secrets.compare_digest(one("refresh_token"), self.refresh_token):
            return json_response(200, {"error": "invalid_code"})
        if not self._token_window.hit():
            return json_response(
                400,
                {
                    "error_description": "You have made too many requests continuously. "
                    "Please try again after some time.",
                    "error": "Access Denied",
                    "status": "failure",
                },
            )
        ttl = self.tokens.ttl
        host = request.header("host") or "127.0.0.1"
        return json_response(
            200,
            {
                "access_token": self.tokens.issue(),
                "scope": "ZohoCRM.modules.ALL ZohoCRM.settings.ALL",
                "api_domain": f"http://{host}",
                "token_type": "Bearer",
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            },
        )

    def _route(self, request: ApiRequest, parts: list[str]) -> ApiResponse:
        module = parts[0]
        if parts == ["settings", "fields"] and request.method == "GET":
            return self._field_metadata(request)
        if module not in _MODULE_NAMES:
            if module == "settings" or module in ("org", "users", "coql"):
                return _error(404, *_NOT_FOUND_URL)
            return _error(
                400,
                "INVALID_MODULE",
                "the module name given seems to be invalid",
                {"resource_path_index": 0},
            )
        table = self._modules[module]
        method = request.method
        with self._lock:
            if len(parts) == 1:
                handlers: dict[str, Callable[[_Module, ApiRequest], ApiResponse]] = {
                    "GET": self._list,
                    "POST": self._insert,
                    "PUT": self._update,
                    "DELETE": self._delete_many,
                }
                handler = handlers.get(method)
                if handler is not None:
                    return handler(table, request)
            elif len(parts) == 2:
                sub = parts[1]
                if sub == "upsert" and method == "POST":
                    return self._upsert(table, request)
                if sub == "deleted" and method == "GET":
                    return self._deleted(table, request)
                if sub == "search" and method == "GET":
                    return self._search(table, request)
                if sub.isdigit() and method == "GET":
                    return self._get_one(table, request, sub)
        return _error(404, *_NOT_FOUND_URL)

    # ----------------------------------------------------------------- rendering

    def _display_name(self, module: str, row: _Row) -> str | None:
        f = row.fields
        if module == "Contacts":
            return " ".join(p for p in (f.get("First_Name"), f.get("Last_Name")) if p) or None
        name = f.get("Account_Name" if module == "Accounts" else "Deal_Name")
        return str(name) if name else None

    def _wire_value(self, module: str, row: _Row, name: str) -> Any:
        if name == "id":
            return row.id
        if name == "Modified_Time":
            return format_zoho_datetime(row.modified, USER_OFFSET)
        if name == "Created_Time":
            return format_zoho_datetime(row.created, USER_OFFSET)
        if name in ("Owner", "Created_By", "Modified_By"):
            return dict(_USER)
        if name == "Full_Name" and module == "Contacts":
            return self._display_name(module, row)
        value = row.fields.get(name)
        target = LOOKUPS.get(module, {}).get(name)
        if target in self._modules and value is not None:
            linked = self._modules[target].rows.get(value)
            if linked is None:
                return None
            return {"name": self._display_name(target, linked), "id": value}
        return value

    def _render(self, module: str, row: _Row, names: list[str] | None) -> dict[str, Any]:
        listed = names if names is not None else ["id", *sorted(FIELDS[module] - {"id"})]
        rendered = {name: self._wire_value(module, row, name) for name in listed}
        rendered["id"] = row.id
        return rendered

    def _fields_arg(
        self, module: str, request: ApiRequest, required: bool
    ) -> list[str] | ApiResponse | None:
        raw = request.arg("fields")
        if not raw:
            if not required:
                return None
            return _error(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                {"param": "fields"},
            )
        names = [n.strip() for n in raw.split(",") if n.strip()]
        if len(names) > MAX_FIELDS:
            return _error(
                400,
                "LIMIT_EXCEEDED",
                "fields limit exceeded",
                {"limit": MAX_FIELDS, "param": "fields"},
            )
        for name in names:
            if name not in FIELDS[module]:
                return _error(
                    400,
                    "INVALID_DATA",
                    "the field name given seems to be invalid",
                    {"api_name": name},
                )
        return names

    def _since(self, request: ApiRequest) -> datetime | ApiResponse | None:
        raw = request.header("if-modified-since")
        if not raw:
            return None
        try:
            return parse_vendor_datetime(raw)
        except ValueError:
            return _error(400, "INVALID_DATA", "invalid data", {"header_name": "If-Modified-Since"})

    def _int_arg(self, request: ApiRequest, name: str, default: int) -> int | ApiResponse:
        raw = request.arg(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": name})
        return value

    # ----------------------------------------------------------------- metadata

    def _field_metadata(self, request: ApiRequest) -> ApiResponse:
        module = request.arg("module")
        if not module:
            return _error(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                {"param": "module"},
            )
        if module not in _MODULE_NAMES:
            return _error(400, "INVALID_MODULE", "the module name given seems to be invalid", {})
        return json_response(
            200,
            {
                "fields": [
                    _field_meta(module, name, data_type, n)
                    for n, (name, data_type) in enumerate(FIELD_TYPES[module].items())
                ]
            },
        )

    # ----------------------------------------------------------------- reads

    def _get_one(self, table: _Module, request: ApiRequest, record_id: str) -> ApiResponse:
        names = self._fields_arg(table.name, request, required=False)
        if isinstance(names, ApiResponse):
            return names
        row = table.rows.get(record_id)
        if row is None:
            return ApiResponse(204)
        return json_response(200, {"data": [self._render(table.name, row, names)]})

    def _list(self, table: _Module, request: ApiRequest) -> ApiResponse:
        names = self._fields_arg(table.name, request, required=True)
        if isinstance(names, ApiResponse):
            return names
        assert names is not None
        ids = request.arg("ids")
        if ids is not None:
            rows = [
                table.rows[i] for i in sorted(set(ids.split(",")), reverse=True) if i in table.rows
            ]
            if not rows:
                return ApiResponse(204)
            found = {"per_page": MAX_PER_PAGE, "count": len(rows), "page": 1, "more_records": False}
            return json_response(
                200, {"data": [self._render(table.name, r, names) for r in rows], "info": found}
            )
        per_page = self._int_arg(request, "per_page", MAX_PER_PAGE)
        if isinstance(per_page, ApiResponse):
            return per_page
        per_page = min(per_page, MAX_PER_PAGE)
        sort_by = request.arg("sort_by") or "id"
        sort_order = request.arg("sort_order") or "desc"
        if sort_by not in ("id", "Created_Time", "Modified_Time"):
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": "sort_by"})
        if sort_order not in ("asc", "desc"):
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": "sort_order"})
        since = self._since(request)
        if isinstance(since, ApiResponse):
            return since
        token_arg = request.arg("page_token")
        if token_arg is not None and request.arg("page") is not None:
            return _error(
                400,
                "AMBIGUITY_DURING_PROCESSING",
                "ambiguity while processing the request",
                {"ambiguity_due_to": ["page", "page_token"]},
            )
        bound = (table.name, tuple(names), per_page, sort_by, sort_order, since)
        now = self.clock.now()
        if token_arg is not None:
            stored = self._page_tokens.get(token_arg)
            if stored is None:
                return _error(400, "INVALID_DATA", "invalid data", {"param_name": "page_token"})
            if stored.expires <= now:
                return _error(
                    400, "EXPIRED_VALUE", "the page token has expired", {"param_name": "page_token"}
                )
            if stored.bound_to != bound:
                return _error(
                    400,
                    "TOKEN_BOUND_DATA_MISMATCH",
                    "the parameters do not match the ones the page token was issued for",
                    {"param_name": "page_token"},
                )
            offset = stored.offset
            page_number = offset // per_page + 1
        else:
            page_number_or_error = self._int_arg(request, "page", 1)
            if isinstance(page_number_or_error, ApiResponse):
                return page_number_or_error
            page_number = page_number_or_error
            offset = (page_number - 1) * per_page
            if offset + per_page > DISCRETE_LIMIT:
                return _error(
                    400,
                    "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                    "You can only get the first 2000 records without using page_token param",
                    {"limit": DISCRETE_LIMIT},
                )
        if offset >= PAGINATION_CEILING:
            return _error(
                400,
                "PAGINATION_LIMIT_EXCEEDED",
                "pagination limit exceeded",
                {"limit": PAGINATION_CEILING},
            )
        matching, rows = self._window(table, since, sort_by, sort_order, offset, per_page + 1)
        if since is not None and matching == 0:
            return ApiResponse(304)
        more = len(rows) > per_page
        rows = rows[:per_page]
        if not rows:
            return ApiResponse(204)
        next_token: str | None = None
        expiry: str | None = None
        if more:
            next_token = secrets.token_hex(8)
            expires = now + timedelta(hours=PAGE_TOKEN_HOURS)
            self._page_tokens[next_token] = _PageToken(bound, offset + per_page, expires)
            expiry = format_zoho_datetime(expires, USER_OFFSET)
            if len(self._page_tokens) > 10_000:
                self._page_tokens = {k: v for k, v in self._page_tokens.items() if v.expires > now}
        info: dict[str, Any] = {
            "call": False,
            "per_page": per_page,
            "next_page_token": next_token,
            "count": len(rows),
            "sort_by": sort_by,
            "page": page_number,
            "previous_page_token": None,
            "page_token_expiry": expiry,
            "sort_order": sort_order,
            "email": False,
            "more_records": more,
        }
        data = [self._render(table.name, row, names) for row in rows]
        return json_response(200, {"data": data, "info": info})

    def _window(
        self,
        table: _Module,
        since: datetime | None,
        sort_by: str,
        sort_order: str,
        offset: int,
        count: int,
    ) -> tuple[int, list[_Row]]:
        """How many records match, and ``count`` of them from ``offset`` in the asked order."""
        if sort_by == "Modified_Time":
            index = table.by_modified
            # "Modified after" the header: strictly later, at the account's millisecond precision.
            start = index.bisect_right((since, _LAST_ID)) if since is not None else 0
            matching = len(index) - start
            if sort_order == "asc":
                keys = index[start + offset : start + offset + count]
            else:
                high = len(index) - offset
                keys = list(reversed(index[max(start, high - count) : max(high, start)]))
            return matching, [table.rows[record_id] for _, record_id in keys]
        # id order is creation order, so Created_Time sorts the same way.
        if since is None:
            ids: list[str] = list(table.by_id)
        else:
            ids = [i for i in table.by_id if table.rows[i].modified > since]
        if sort_order == "desc":
            ids.reverse()
        return len(ids), [table.rows[i] for i in ids[offset : offset + count]]

    def _deleted(self, table: _Module, request: ApiRequest) -> ApiResponse:
        kind = request.arg("type") or "all"
        if kind not in ("all", "recycle", "permanent"):
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": "type"})
        per_page = self._int_arg(request, "per_page", MAX_PER_PAGE)
        page = self._int_arg(request, "page", 1)
        if isinstance(per_page, ApiResponse):
            return per_page
        if isinstance(page, ApiResponse):
            return page
        per_page = min(per_page, MAX_PER_PAGE)
        since = self._since(request)
        if isinstance(since, ApiResponse):
            return since
        start = table.by_deleted.bisect_right((since, _LAST_ID)) if since is not None else 0
        if kind == "permanent" or start >= len(table.by_deleted):
            return ApiResponse(304) if since is not None else ApiResponse(204)
        offset = start + (page - 1) * per_page
        keys = table.by_deleted[offset : offset + per_page + 1]
        more = len(keys) > per_page
        if not keys:
            return ApiResponse(204)
        data = []
        for _, record_id in keys[:per_page]:
            entry = dict(table.deleted[record_id])
            entry["deleted_time"] = format_zoho_datetime(entry["deleted_time"], USER_OFFSET)
            data.append(entry)
        info = {"per_page": per_page, "count": len(data), "page": page, "more_records": more}
        return json_response(200, {"data": data, "info": info})

    def _search(self, table: _Module, request: ApiRequest) -> ApiResponse:
        names = self._fields_arg(table.name, request, required=False)
        if isinstance(names, ApiResponse):
            return names
        per_page = self._int_arg(request, "per_page", MAX_PER_PAGE)
        page = self._int_arg(request, "page", 1)
        if isinstance(per_page, ApiResponse):
            return per_page
        if isinstance(page, ApiResponse):
            return page
        per_page = min(per_page, MAX_PER_PAGE)
        if page * per_page > DISCRETE_LIMIT:
            return _error(
                400, "LIMIT_REACHED", "search results limit reached", {"limit": DISCRETE_LIMIT}
            )
        module = table.name

        def render(row: _Row, name: str) -> Any:
            return self._wire_value(module, row, name)

        criteria = request.arg("criteria")
        try:
            if criteria:
                predicate = _Criteria(criteria, render).parse()
            elif request.arg("email"):
                predicate = _Criteria(f"(Email:equals:{request.arg('email')})", render).parse()
            elif request.arg("phone"):
                predicate = _Criteria(f"(Phone:equals:{request.arg('phone')})", render).parse()
            elif request.arg("word"):
                word = (request.arg("word") or "").casefold()
                predicate = _word_predicate(module, word, render)
            else:
                return _error(
                    400,
                    "REQUIRED_PARAM_MISSING",
                    "One of the expected parameter is missing",
                    {"param": "criteria"},
                )
        except _CriteriaError as exc:
            return _error(400, "INVALID_QUERY", "invalid query formed", {"reason": str(exc)})
        hits = [table.rows[i] for i in table.by_id if predicate(table.rows[i])]
        chunk = hits[(page - 1) * per_page : page * per_page]
        if not chunk:
            return ApiResponse(204)
        more = len(hits) > page * per_page
        info = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": more}
        data = [self._render(module, row, names) for row in chunk]
        return json_response(200, {"data": data, "info": info})

    # ----------------------------------------------------------------- writes

    def _body_rows(self, request: ApiRequest) -> list[Any] | ApiResponse:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "INVALID_DATA", "body", {"expected_data_type": "jsonobject"})
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            return _error(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                {"param": "data"},
            )
        if len(rows) > MAX_WRITE:
            return _error(400, "LIMIT_EXCEEDED", "the limit exceeded", {"limit": MAX_WRITE})
        return rows

    def _checked(
        self, module: str, item: Any, index: int, existing: _Row | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The fields to store, or Zoho's per-record error for ``data[index]``."""
        if not isinstance(item, dict):
            return None, _record_error(
                "INVALID_DATA", "invalid data", {"expected_data_type": "jsonobject"}
            )

        def where(name: str) -> dict[str, Any]:
            return {"api_name": name, "json_path": f"$.data[{index}].{name}"}

        stored: dict[str, Any] = {}
        for name, value in item.items():
            if name == "id" or name.startswith("$") or name in READ_ONLY:
                continue
            if name not in FIELDS[module]:
                return None, _record_error("INVALID_DATA", "invalid data", where(name))
            problem, clean = self._clean(module, name, value)
            if problem is not None:
                return None, _record_error(
                    "INVALID_DATA", "invalid data", {**where(name), "expected_data_type": problem}
                )
            limit = _text_limit(module, name)
            if isinstance(clean, str) and limit is not None and len(clean) > limit:
                return None, _record_error(
                    "INVALID_DATA", "invalid data", {"maximum_length": limit, **where(name)}
                )
            stored[name] = clean
        merged = {**(existing.fields if existing else {}), **stored}
        for name in MANDATORY[module]:
            if merged.get(name) in (None, ""):
                return None, _record_error(
                    "MANDATORY_NOT_FOUND", "required field not found", where(name)
                )
        if module == "Deals" and not merged.get("Pipeline"):
            stored["Pipeline"] = _DEFAULT_PIPELINE
        return stored, None

    def _clean(self, module: str, name: str, value: Any) -> tuple[str | None, Any]:
        if value is None:
            return None, None
        target = LOOKUPS.get(module, {}).get(name)
        if target is not None:
            if not isinstance(value, dict) or not value.get("id"):
                return "jsonobject", None
            linked = str(value["id"])
            if target in self._modules and linked not in self._modules[target].rows:
                return "lookup", None
            return None, linked
        if name in ("Email", "Secondary_Email"):
            if not isinstance(value, str) or (value and not _EMAIL.match(value)):
                return "email", None
            return None, value
        if name in _NUMBERS:
            try:
                number = float(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None:
                return "double", None
            return None, int(number) if number.is_integer() else number
        if name in _INTEGERS:
            if isinstance(value, bool) or not isinstance(value, int | str):
                return "integer", None
            try:
                return None, int(value)
            except ValueError:
                return "integer", None
        if name in _DATES:
            if not isinstance(value, str) or not _DAY.match(value):
                return "date", None
            try:
                date.fromisoformat(value)
            except ValueError:
                return "date", None
            return None, value
        if name in _BOOLEANS:
            return (None, value) if isinstance(value, bool) else ("boolean", None)
        if isinstance(value, bool | dict | list):
            return "text", None
        return None, value if isinstance(value, str) else str(value)

    def _success(self, module: str, row: _Row, message: str, **extra: Any) -> dict[str, Any]:
        user = {"name": _USER["name"], "id": _USER["id"]}
        return {
            "code": "SUCCESS",
            **extra,
            "details": {
                "Modified_Time": format_zoho_datetime(row.modified, USER_OFFSET),
                "Modified_By": user,
                "Created_Time": format_zoho_datetime(row.created, USER_OFFSET),
                "id": row.id,
                "Created_By": user,
            },
            "message": message,
            "status": "success",
        }

    def _answer(self, results: list[dict[str, Any]], all_ok_status: int) -> ApiResponse:
        ok = sum(1 for r in results if r["status"] == "success")
        status = all_ok_status if ok == len(results) else (207 if ok else 400)
        return json_response(status, {"data": results})

    def _insert(self, table: _Module, request: ApiRequest) -> ApiResponse:
        rows = self._body_rows(request)
        if isinstance(rows, ApiResponse):
            return rows
        results: list[dict[str, Any]] = []
        for index, item in enumerate(rows):
            stored, error = self._checked(table.name, item, index, None)
            if stored is None:
                results.append(error or _record_error("INVALID_DATA", "invalid data", {}))
                continue
            record_id = self._store(table.name, stored, self.clock.now())
            results.append(self._success(table.name, table.rows[record_id], "record added"))
        return self._answer(results, 201)

    def _update(self, table: _Module, request: ApiRequest) -> ApiResponse:
        rows = self._body_rows(request)
        if isinstance(rows, ApiResponse):
            return rows
        results: list[dict[str, Any]] = []
        for index, item in enumerate(rows):
            record_id = str(item.get("id")) if isinstance(item, dict) and item.get("id") else None
            if record_id is None:
                results.append(
                    _record_error(
                        "MANDATORY_NOT_FOUND",
                        "required field not found",
                        {"api_name": "id", "json_path": f"$.data[{index}].id"},
                    )
                )
                continue
            existing = table.rows.get(record_id)
            if existing is None:
                results.append(
                    _record_error(
                        "INVALID_DATA",
                        "the id given seems to be invalid",
                        {"api_name": "id", "json_path": f"$.data[{index}].id", "id": record_id},
                    )
                )
                continue
            stored, error = self._checked(table.name, item, index, existing)
            if stored is None:
                results.append(error or _record_error("INVALID_DATA", "invalid data", {}))
                continue
            row = _Row(record_id, existing.created, self.clock.now(), {**existing.fields, **stored})
            table.put(row)
            results.append(self._success(table.name, row, "record updated"))
        return self._answer(results, 200)

    def _upsert(self, table: _Module, request: ApiRequest) -> ApiResponse:
        rows = self._body_rows(request)
        if isinstance(rows, ApiResponse):
            return rows
        body = request.json()
        checks = body.get("duplicate_check_fields") or [DUPLICATE_CHECK[table.name]]
        if not isinstance(checks, list) or any(c not in FIELDS[table.name] for c in checks):
            return _error(
                400, "INVALID_DATA", "invalid data", {"api_name": "duplicate_check_fields"}
            )
        results: list[dict[str, Any]] = []
        for index, item in enumerate(rows):
            existing = self._match(table, item, checks) if isinstance(item, dict) else None
            stored, error = self._checked(table.name, item, index, existing)
            if stored is None:
                results.append(error or _record_error("INVALID_DATA", "invalid data", {}))
                continue
            now = self.clock.now()
            if existing is None:
                record_id = self._store(table.name, stored, now)
                row = table.rows[record_id]
                results.append(
                    self._success(
                        table.name, row, "record added", duplicate_field=None, action="insert"
                    )
                )
                continue
            row = _Row(existing.id, existing.created, now, {**existing.fields, **stored})
            table.put(row)
            matched = next(c for c in checks if _same(existing.fields.get(c), item.get(c)))
            results.append(
                self._success(
                    table.name, row, "record updated", duplicate_field=matched, action="update"
                )
            )
        return self._answer(results, 200)

    def _match(self, table: _Module, item: Mapping[str, Any], checks: list[str]) -> _Row | None:
        for check in checks:
            value = item.get(check)
            if not isinstance(value, str) or not value:
                continue
            if check == DUPLICATE_CHECK[table.name]:
                holders = table.keys.get(value.casefold())
                if holders:
                    # Several matches: the oldest record wins (which one Zoho picks is unverified).
                    return table.rows[min(holders)]
                continue
            for row in table.rows.values():
                if _same(row.fields.get(check), value):
                    return row
        return None

    def _delete_many(self, table: _Module, request: ApiRequest) -> ApiResponse:
        raw = request.arg("ids")
        if not raw:
            return _error(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                {"param": "ids"},
            )
        ids = [i for i in raw.split(",") if i]
        if len(ids) > MAX_WRITE:
            return _error(400, "LIMIT_EXCEEDED", "the limit exceeded", {"limit": MAX_WRITE})
        results = []
        for record_id in ids:
            if record_id not in table.rows:
                results.append(
                    _record_error(
                        "INVALID_DATA", "the id given seems to be invalid", {"id": record_id}
                    )
                )
                continue
            self._delete(table, record_id)
            results.append(
                {
                    "code": "SUCCESS",
                    "details": {"id": record_id},
                    "message": "record deleted",
                    "status": "success",
                }
            )
        return self._answer(results, 200)


def _field_meta(module: str, name: str, data_type: str, position: int) -> dict[str, Any]:
    """One field as ``GET /settings/fields`` shows it (the keys a client reads, in the shape of
    the samples; the many UI keys are left out)."""
    field_id = str(_ID_BASE - 1_000_000 + 1000 * sorted(_MODULE_NAMES).index(module) + position)
    options = PICKLISTS.get((module, name), ())
    stages = {actual: chance for _, actual, chance in _STAGE_OPTIONS}
    target = LOOKUPS.get(module, {}).get(name)
    limit = _text_limit(module, name) if data_type in ("text", "textarea") else None
    return {
        "api_name": name,
        "field_label": name.removesuffix("__s").replace("_", " "),
        "display_label": name.removesuffix("__s").replace("_", " "),
        "data_type": data_type,
        "json_type": _JSON_TYPES.get(data_type, "string"),
        "id": field_id,
        "custom_field": False,
        "visible": True,
        "read_only": False,
        "field_read_only": name in READ_ONLY,
        "system_mandatory": name in MANDATORY[module],
        "length": limit if limit is not None else 120,
        "lookup": {"module": {"api_name": target}} if data_type == "lookup" and target else {},
        "pick_list_values": [
            {
                "display_value": display,
                "sequence_number": n + 1,
                "reference_value": display,
                "actual_value": actual,
                "id": str(int(field_id) + 100_000 * (n + 1)),
                "type": "used",
                **({"probability": stages[actual]} if (module, name) == ("Deals", "Stage") else {}),
            }
            for n, (display, actual) in enumerate(options)
        ],
    }


def _text_limit(module: str, name: str) -> int | None:
    if name in LOOKUPS.get(module, {}):
        return None  # a lookup holds a record id, checked for existence instead
    return _MAX_LENGTH.get(name, _SINGLE_LINE_MAX)


def _same(stored: Any, sent: Any) -> bool:
    return (
        isinstance(stored, str) and isinstance(sent, str) and stored.casefold() == sent.casefold()
    )


def _word_predicate(module: str, word: str, render: _Render) -> _Predicate:
    names = sorted(FIELDS[module])

    def matches(row: Any) -> bool:
        return any(isinstance(v := render(row, n), str) and word in v.casefold() for n in names)

    return matches


def _number(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _contact_fields(
    person: SampleContact, accounts: Mapping[int, str], rng: random.Random
) -> dict[str, Any]:
    email = person.email
    if rng.random() < 0.15:
        local, _, domain = email.partition("@")
        email = ".".join(part.capitalize() for part in local.split(".")) + "@" + domain
    fields: dict[str, Any] = {
        "First_Name": person.first_name,
        "Last_Name": person.last_name,
        "Email": email,
        "Phone": typed_phone(person.phone, rng),
        "Title": person.job_title,
        "Account_Name": accounts.get(person.company_key),
        "Mailing_City": person.city,
        "Mailing_Country": typed_country(person.country, rng),
    }
    if person.mobile:
        fields["Mobile"] = typed_phone(person.mobile, rng)
    return fields
