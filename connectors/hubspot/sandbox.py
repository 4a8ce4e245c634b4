"""A local emulator of HubSpot's CRM API: the ``crmhub sandbox hubspot`` account.

Public entry points: :class:`HubSpotApi` (the :class:`~connectors.sandbox.VendorApi` served by
:class:`~connectors.sandbox.Sandbox`), :class:`DailyBudget`, :data:`PROPERTIES`,
:data:`DEAL_STAGES` and :data:`INDUSTRIES`.

What it reproduces (facts: shared/vendors/hubspot-zoho.md part A and the PART C checklist):

- auth: ``Authorization: Bearer`` with the private-app token it prints, or OAuth access tokens
  from ``POST /oauth/v1/token`` (``grant_type=refresh_token``, form-encoded, ``expires_in`` 1800
  or ``options.token_ttl``); an expired token gets the real ``EXPIRED_AUTHENTICATION`` 401;
  ``GET /oauth/v1/access-tokens/{token}`` describes a token; after ``revoke_credentials`` the
  old refresh token gets 400 ``BAD_REFRESH_TOKEN`` and the old private-app and access tokens
  401 ``INVALID_AUTHENTICATION``;
- objects ``contacts``, ``companies``, ``deals`` (also ``0-1``/``0-2``/``0-3``): list (``limit``
  default 10, max 100, opaque ``after``, ``paging`` absent on the last page, unknown properties
  ignored, ``archived=true`` lists only archived records), get, create, patch, delete (archive),
  batch read/create/update/upsert/archive (at most 100 inputs), merge;
- search: filters (``EQ NEQ LT LTE GT GTE BETWEEN IN NOT_IN HAS_PROPERTY NOT_HAS_PROPERTY
  CONTAINS_TOKEN NOT_CONTAINS_TOKEN``), one sort in either documented form, ``limit`` up to 200,
  numeric-string ``after`` offsets, 400 past the 10,000th result, ``total``, no rate headers;
- v4 associations: batch read (numeric ``toObjectId``, ``NO_ASSOCIATIONS_FOUND`` → 207), batch
  create with HUBSPOT_DEFINED type ids (a primary also gets its unlabeled twin, one primary per
  record), batch archive, batch associate/default;
- validation: unknown or read-only properties fail the whole request (400 ``VALIDATION_ERROR``,
  as the recorded batch-create body does); a bad value (``INVALID_EMAIL``, ``INVALID_OPTION``
  for a stage, ``INVALID_DATE``, text over 65,536 characters) fails a single-object request, an
  untraced batch create whole, and otherwise only its record: a 207 ``VALIDATION_ERROR`` item
  naming the input by ``objectWriteTraceId`` (batch create with every input traced, upsert) or
  id (update, which always allows partial success); a duplicate contact email is 409
  ``CONFLICT`` "Contact already exists. Existing ID: N" — in a batch create a 207 error when every
  input carries ``objectWriteTraceId``, else the whole batch fails; batch update of a missing id
  is a 207 ``OBJECT_NOT_FOUND``; duplicate ids in a batch are a 400;
- rate limits: a rolling 10-second window (190, or ``10 * options.rate_limit``) and a daily budget
  (1,000,000 calls from midnight to midnight in the account's time zone, UTC here, by the
  account's clock) with the ``X-HubSpot-RateLimit-*`` headers (OAuth calls get no Daily ones), 429
  bodies with ``policyName``; search has its own 5-per-second bucket with HubSpot's "secondly"
  message. ``Retry-After`` is not sent (HubSpot does not reliably send it) unless
  :attr:`HubSpotApi.send_retry_after` is set;
- merges: contacts and companies keep the primary's id, a merged deal gets a new id; a read of a
  merged-away id answers with the survivor, whose ``hs_merged_object_ids`` lists it;
- metadata: ``GET /crm/v3/properties/{type}`` describes every known property (``name``,
  ``label``, ``type``, ``fieldType``, ``options`` of ``{label, value, hidden, ...}``), and
  ``GET /crm/v3/pipelines/deals`` the default pipeline. As on HubSpot, ``pipeline`` and
  ``dealstage`` (and the owner and contact pipeline properties) come with no options and
  ``externalOptions``: their values live in the pipelines (owners) APIs; the deal currency is
  described the same way for want of a recorded answer [U].
  ``industry`` lists a subset of HubSpot's real industry options (:data:`INDUSTRIES`);
  ``lifecyclestage``, ``hs_lead_status`` and ``dealtype`` HubSpot's default ones. Of these
  enumerations only ``dealstage`` refuses other values (``INVALID_OPTION``), as before; HubSpot
  refuses them for every enumeration.

Association changes do not touch the modified date, as on HubSpot.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import orjson
from sortedcontainers import SortedList

from connectors.sampledata import COUNTRY_NAMES, sample_account, typed_phone
from connectors.sandbox import (
    ApiRequest,
    ApiResponse,
    Fault,
    RollingWindow,
    SandboxClock,
    SandboxOptions,
    TokenIssuer,
)
from connectors.timeparse import parse_vendor_datetime, to_epoch_ms

__all__ = ["DEAL_STAGES", "INDUSTRIES", "PROPERTIES", "DailyBudget", "HubSpotApi"]

DEFAULT_TTL = 1800.0
TEN_SECONDS = 10.0
DEFAULT_PER_TEN_SECONDS = 190
DAILY = 1_000_000
SEARCH_PER_SECOND = 5
SEARCH_CAP = 10_000
SEARCH_MAX_LIMIT = 200
LIST_MAX_LIMIT = 100
BATCH_MAX = 100
ASSOCIATION_PAGE = 500

TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
_ALIASES = {
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    "companies": "companies",
    "company": "companies",
    "0-2": "companies",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
}
_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
MODIFIED = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}

_SYSTEM = frozenset({"createdate", "hs_object_id", "hs_merged_object_ids"})
PROPERTIES: Mapping[str, frozenset[str]] = {
    "contacts": frozenset(
        [
            "email",
            "firstname",
            "lastname",
            "phone",
            "mobilephone",
            "company",
            "jobtitle",
            "address",
            "city",
            "state",
            "zip",
            "country",
            "website",
            "lifecyclestage",
            "hs_lead_status",
            "hubspot_owner_id",
            "hs_pipeline",
            "associatedcompanyid",
            "hs_all_contact_vids",
            "hs_email_domain",
            "lastmodifieddate",
        ]
    )
    | _SYSTEM,
    "companies": frozenset(
        [
            "name",
            "domain",
            "website",
            "industry",
            "phone",
            "address",
            "address2",
            "city",
            "state",
            "zip",
            "country",
            "numberofemployees",
            "annualrevenue",
            "description",
            "hubspot_owner_id",
            "lifecyclestage",
            "hs_parent_company_id",
            "num_associated_contacts",
            "hs_lastmodifieddate",
        ]
    )
    | _SYSTEM,
    "deals": frozenset(
        [
            "dealname",
            "amount",
            "dealstage",
            "pipeline",
            "closedate",
            "hubspot_owner_id",
            "dealtype",
            "description",
            "deal_currency_code",
            "hs_lastmodifieddate",
        ]
    )
    | _SYSTEM,
}
"""Known properties per object type (facts A7); others are refused on writes, ignored on reads."""

READ_ONLY: Mapping[str, frozenset[str]] = {
    "contacts": _SYSTEM
    | {"lastmodifieddate", "associatedcompanyid", "hs_all_contact_vids", "hs_email_domain"},
    "companies": _SYSTEM | {"hs_lastmodifieddate", "num_associated_contacts"},
    "deals": _SYSTEM | {"hs_lastmodifieddate"},
}
_DATETIME = frozenset({"createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate"})
_DEFAULT_SHOWN = {
    "contacts": ("firstname", "lastname", "email"),
    "companies": ("name", "domain"),
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage"),
}
DEAL_STAGES: tuple[tuple[str, str, str], ...] = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2"),
    ("qualifiedtobuy", "Qualified To Buy", "0.4"),
    ("presentationscheduled", "Presentation Scheduled", "0.6"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
    ("contractsent", "Contract Sent", "0.9"),
    ("closedwon", "Closed Won", "1.0"),
    ("closedlost", "Closed Lost", "0.0"),
)
_STAGE_IDS = frozenset(stage for stage, _, _ in DEAL_STAGES)
# Seed data: canonical stage → default-pipeline stage id (the order of both funnels).
_SEED_STAGES = dict(
    zip(
        (
            "prospecting",
            "qualification",
            "needs_analysis",
            "proposal",
            "negotiation",
            "closed_won",
            "closed_lost",
        ),
        (stage for stage, _, _ in DEAL_STAGES),
        strict=True,
    )
)
_INDUSTRIES = {
    "Software": "COMPUTER_SOFTWARE",
    "Transportation": "TRANSPORTATION_TRUCKING_RAILROAD",
    "Food & Beverages": "FOOD_BEVERAGES",
    "Hospital & Health Care": "HOSPITAL_HEALTH_CARE",
    "Renewables & Environment": "RENEWABLES_ENVIRONMENT",
    "Biotechnology": "BIOTECHNOLOGY",
    "Financial Services": "FINANCIAL_SERVICES",
    "Design": "DESIGN",
    "Machinery": "MACHINERY",
    "Retail": "RETAIL",
}
INDUSTRIES: tuple[tuple[str, str], ...] = (
    ("ACCOUNTING", "Accounting"),
    ("AIRLINES_AVIATION", "Airlines/Aviation"),
    ("AUTOMOTIVE", "Automotive"),
    ("BANKING", "Banking"),
    ("BIOTECHNOLOGY", "Biotechnology"),
    ("COMPUTER_HARDWARE", "Computer Hardware"),
    ("COMPUTER_SOFTWARE", "Computer Software"),
    ("CONSTRUCTION", "Construction"),
    ("CONSUMER_GOODS", "Consumer Goods"),
    ("DESIGN", "Design"),
    ("EDUCATION_MANAGEMENT", "Education Management"),
    ("FINANCIAL_SERVICES", "Financial Services"),
    ("FOOD_BEVERAGES", "Food & Beverages"),
    ("GOVERNMENT_ADMINISTRATION", "Government Administration"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    ("HOSPITALITY", "Hospitality"),
    ("INFORMATION_TECHNOLOGY_AND_SERVICES", "Information Technology and Services"),
    ("INSURANCE", "Insurance"),
    ("INTERNET", "Internet"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain"),
    ("MACHINERY", "Machinery"),
    ("MANAGEMENT_CONSULTING", "Management Consulting"),
    ("MARKETING_AND_ADVERTISING", "Marketing and Advertising"),
    ("PHARMACEUTICALS", "Pharmaceuticals"),
    ("REAL_ESTATE", "Real Estate"),
    ("RENEWABLES_ENVIRONMENT", "Renewables & Environment"),
    ("RETAIL", "Retail"),
    ("TELECOMMUNICATIONS", "Telecommunications"),
    ("TRANSPORTATION_TRUCKING_RAILROAD", "Transportation/Trucking/Railroad"),
    ("WIRELESS", "Wireless"),
)
"""The sandbox's ``industry`` options as (value, label): 30 of HubSpot's ~150, with the values
and labels public code that reads HubSpot portals shows for them; every seeded one among them."""
_LIFECYCLE_STAGES = (
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)
_LEAD_STATUSES = (
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
)
_DEAL_TYPES = (("newbusiness", "New Business"), ("existingbusiness", "Existing Business"))
_OPTIONS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "industry": INDUSTRIES,
    "lifecyclestage": _LIFECYCLE_STAGES,
    "hs_lead_status": _LEAD_STATUSES,
    "dealtype": _DEAL_TYPES,
}
# How the properties API describes each known property: name → (label, type, fieldType).
# Shapes from HubSpot's properties spec and from fixtures recorded on live portals (address,
# mobilephone, associatedcompanyid, hs_pipeline, pipeline, dealstage); the types of the
# read-only bookkeeping properties hs_all_contact_vids and hs_merged_object_ids are not
# checked against a portal [U].
_DESCRIPTIONS: Mapping[str, tuple[str, str, str]] = {
    "email": ("Email", "string", "text"),
    "firstname": ("First Name", "string", "text"),
    "lastname": ("Last Name", "string", "text"),
    "phone": ("Phone Number", "string", "phonenumber"),
    "mobilephone": ("Mobile Phone Number", "string", "phonenumber"),
    "company": ("Company Name", "string", "text"),
    "jobtitle": ("Job Title", "string", "text"),
    "address": ("Street Address", "string", "text"),
    "address2": ("Street Address 2", "string", "text"),
    "city": ("City", "string", "text"),
    "state": ("State/Region", "string", "text"),
    "zip": ("Postal Code", "string", "text"),
    "country": ("Country/Region", "string", "text"),
    "website": ("Website URL", "string", "text"),
    "lifecyclestage": ("Lifecycle Stage", "enumeration", "radio"),
    "hs_lead_status": ("Lead Status", "enumeration", "radio"),
    "hubspot_owner_id": ("Owner", "enumeration", "select"),
    "hs_pipeline": ("Pipeline", "enumeration", "select"),
    "associatedcompanyid": ("Primary Associated Company ID", "number", "number"),
    "hs_all_contact_vids": ("All vids for a contact", "string", "text"),
    "hs_email_domain": ("Email Domain", "string", "text"),
    "lastmodifieddate": ("Last Modified Date", "datetime", "date"),
    "createdate": ("Create Date", "datetime", "date"),
    "hs_object_id": ("Record ID", "number", "number"),
    "hs_merged_object_ids": ("Merged record IDs", "string", "text"),
    "name": ("Company name", "string", "text"),
    "domain": ("Company Domain Name", "string", "text"),
    "industry": ("Industry", "enumeration", "select"),
    "numberofemployees": ("Number of Employees", "number", "number"),
    "annualrevenue": ("Annual Revenue", "number", "number"),
    "description": ("Description", "string", "textarea"),
    "hs_parent_company_id": ("Parent Company", "number", "number"),
    "num_associated_contacts": ("Number of Associated Contacts", "number", "number"),
    "hs_lastmodifieddate": ("Last Modified Date", "datetime", "date"),
    "dealname": ("Deal Name", "string", "text"),
    "amount": ("Amount", "number", "number"),
    "dealstage": ("Deal Stage", "enumeration", "radio"),
    "pipeline": ("Pipeline", "enumeration", "select"),
    "closedate": ("Close Date", "datetime", "date"),
    "dealtype": ("Deal Type", "enumeration", "radio"),
    "deal_currency_code": ("Currency", "enumeration", "select"),
}
# Enumerations whose options HubSpot keeps elsewhere: pipelines, owners, account currencies.
_EXTERNAL_OPTIONS = frozenset(
    {"dealstage", "pipeline", "hs_pipeline", "hubspot_owner_id", "deal_currency_code"}
)
# Properties HubSpot keeps out of its UI (the recorded fixtures show the first two hidden).
_HIDDEN = frozenset(
    {"associatedcompanyid", "hs_pipeline", "hs_all_contact_vids", "hs_merged_object_ids"}
)
_GROUPS = {
    "contacts": "contactinformation",
    "companies": "companyinformation",
    "deals": "dealinformation",
}
# HUBSPOT_DEFINED association types (HS-PY association_type.py): type → (inverse, unlabeled twin).
_INVERSE = {1: 2, 2: 1, 279: 280, 280: 279, 3: 4, 4: 3, 5: 6, 6: 5, 341: 342, 342: 341}
_UNLABELED_TWIN = {1: 279, 2: 280, 5: 341, 6: 342}
_PRIMARY = frozenset({1, 5})
_LABELS = {1: "Primary", 5: "Primary"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# "When the value is added through the CRM, the character limit is 65,536 characters" for text
# properties (knowledge.hubspot.com/properties/property-field-types-in-hubspot). The code of
# the refusal is not documented (UNVERIFIED): it is named like HubSpot's other value codes.
MAX_VALUE_LENGTH = 65_536
_TOO_LONG = "VALUE_TOO_LONG"
# Codes about a property name rather than a value refuse the whole request, whatever the batch
# (as in the recorded invalid-properties answer); value codes refuse one record of a batch
# that may partly succeed.
_SCHEMA_CODES = frozenset({"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"})
_ID_BASE = {"contacts": 101_000_000_000, "companies": 29_000_000_000, "deals": 18_000_000_000}


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _iso_ms(ms: int) -> str:
    return _iso(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))


def _correlation() -> str:
    return str(uuid.uuid4())


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, orjson.dumps(payload), dict(headers or {}))


def _error(status: int, message: str, category: str | None = None, **extra: Any) -> ApiResponse:
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": _correlation()}
    if category is not None:
        body["category"] = category
    body.update(extra)
    return _json(status, body)


class _Refused(Exception):
    """A whole request refused with a HubSpot error answer."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__("refused")
        self.response = response


_Problem = tuple[str, str, str]  # property name, HubSpot's code, its message


def _validation_fields(problems: list[_Problem]) -> dict[str, Any]:
    """``message``/``category``/``errors`` in the shape of the recorded invalid-properties body."""
    listed = [
        {"isValid": False, "message": message, "error": code, "name": name}
        for name, code, message in problems
    ]
    return {
        "message": "Property values were not valid: " + orjson.dumps(listed).decode("utf-8"),
        "category": "VALIDATION_ERROR",
        "errors": [
            {"message": message, "code": code, "context": {"propertyName": [name]}}
            for name, code, message in problems
        ],
    }


def _validation(problems: list[_Problem]) -> _Refused:
    """The whole request refused: 400 VALIDATION_ERROR."""
    fields = _validation_fields(problems)
    return _Refused(_error(400, fields.pop("message"), fields.pop("category"), **fields))


def _validation_item(problems: list[_Problem], context: Mapping[str, list[str]]) -> dict[str, Any]:
    """One record refused inside a 207 batch answer: a StandardError naming it in ``context``
    (its ``objectWriteTraceId``, or its id on an update)."""
    return {"status": "error", **_validation_fields(problems), "context": dict(context)}


def _item_context(item: Mapping[str, Any], record_id: str | None = None) -> dict[str, list[str]]:
    context: dict[str, list[str]] = {}
    if "objectWriteTraceId" in item:
        context["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
    if record_id is not None:
        context["ids"] = [record_id]
    return context


@dataclass(slots=True)
class _Record:
    id: int
    props: dict[str, str | None]
    created: str
    updated_ms: int
    archived_at: str | None = None


@dataclass(slots=True)
class _Table:
    object_type: str
    next_id: int
    live: dict[int, _Record] = field(default_factory=dict)
    ids: SortedList = field(default_factory=SortedList)
    by_modified: SortedList = field(default_factory=SortedList)  # (modified ms, id)
    archived: dict[int, _Record] = field(default_factory=dict)
    archived_ids: SortedList = field(default_factory=SortedList)
    merged_into: dict[int, int] = field(default_factory=dict)
    emails: dict[str, int] = field(default_factory=dict)  # case-folded email → contact id

    def put(self, record: _Record) -> None:
        # A SortedList keeps duplicates: an updated record must not be listed twice.
        if record.id not in self.live:
            self.ids.add(record.id)
        self.live[record.id] = record
        self.by_modified.add((record.updated_ms, record.id))
        email = record.props.get("email")
        if email:
            self.emails[email.casefold()] = record.id

    def unindex(self, record: _Record) -> None:
        self.by_modified.discard((record.updated_ms, record.id))
        email = record.props.get("email")
        if email and self.emails.get(email.casefold()) == record.id:
            del self.emails[email.casefold()]

    def resolve(self, record_id: int) -> _Record | None:
        seen = 0
        while record_id in self.merged_into and seen < 50:
            record_id = self.merged_into[record_id]
            seen += 1
        return self.live.get(record_id)


class DailyBudget:
    """HubSpot's daily request budget: calls counted since the last midnight of ``clock``."""

    def __init__(self, limit: int, clock: Callable[[], datetime]) -> None:
        self.limit = limit
        self._clock = clock
        self._day = clock().date()
        self._used = 0
        self._lock = threading.Lock()

    def _roll(self) -> None:
        today = self._clock().date()
        if today != self._day:
            self._day, self._used = today, 0

    def hit(self) -> bool:
        """Count one call if the day has room; False (nothing counted) when it has none."""
        with self._lock:
            self._roll()
            if self._used >= self.limit:
                return False
            self._used += 1
            return True

    def remaining(self) -> int:
        with self._lock:
            self._roll()
            return self.limit - self._used


class HubSpotApi:
    """The emulated HubSpot account; thread-safe behind one lock."""

    vendor: ClassVar[str] = "hubspot"

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.clock = SandboxClock()
        self._lock = threading.RLock()
        rng = random.Random(f"hubspot-credentials:{options.seed}")  # noqa: S311 - sandbox ids
        hexes = [f"{rng.getrandbits(128):032x}" for _ in range(4)]
        self.private_app_token = f"pat-sandbox-{hexes[0][:8]}-{hexes[0][8:]}"
        self.client_id = str(uuid.UUID(hexes[1]))
        self.client_secret = str(uuid.UUID(hexes[2]))
        self.refresh_token = f"sandbox-refresh-{hexes[3]}"
        self.hub_id = 44_000_000 + options.seed % 1_000_000
        ttl = options.token_ttl if options.token_ttl is not None else DEFAULT_TTL
        self.tokens = TokenIssuer("sandbox-oauth-", ttl)
        self.per_ten_seconds = (
            max(1, round(options.rate_limit * TEN_SECONDS))
            if options.rate_limit is not None
            else DEFAULT_PER_TEN_SECONDS
        )
        self.burst = RollingWindow(self.per_ten_seconds, TEN_SECONDS)
        self.daily = DailyBudget(DAILY, self.clock.now)
        self.search_bucket = RollingWindow(SEARCH_PER_SECOND, 1.0)
        self.send_retry_after = False
        self._tables = {t: _Table(t, _ID_BASE[t] + 1) for t in TYPE_IDS}
        # (from type, to type) → from id → to id → type ids; both directions are stored.
        self._links: dict[tuple[str, str], dict[int, dict[int, set[int]]]] = {}

    # ------------------------------------------------------------------ VendorApi: set-up

    def connector_settings(self, base_url: str) -> dict[str, Any]:
        """An OAuth ``systems`` entry whose client budget stays inside this account's limits."""
        return {
            "connector": "hubspot",
            "base_url": base_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            # A tenth below the window: the client's clock and ours never line up exactly.
            "requests_per_10s": max(1, int(self.per_ten_seconds * 0.9)),
            "daily_limit": DAILY,
            "search_per_second": SEARCH_PER_SECOND - 1,
        }

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    def revoke_credentials(self) -> None:
        """The app uninstalled and installed again, its private-app token rotated: the old
        refresh token gets ``BAD_REFRESH_TOKEN``, the old tokens 401 ``INVALID_AUTHENTICATION``."""
        with self._lock:
            self.tokens.revoke_all()
            self.private_app_token = f"pat-sandbox-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
            self.refresh_token = f"sandbox-refresh-{secrets.token_hex(16)}"

    def fault_response(self, fault: Fault, request: ApiRequest) -> ApiResponse:
        if fault is Fault.RATE_LIMIT:
            # HubSpot sends Retry-After on some 429s and not others; the injected ones carry it
            # (1 s), the emulated window's own ones do not unless ``send_retry_after`` is set.
            answer = self._too_many("TEN_SECONDLY_ROLLING", request)
            answer.headers["Retry-After"] = "1"
            return answer
        # HubSpot's 5xx answers carry its usual error body.
        return _error(
            502 if request.method == "GET" else 500,
            "internal error",
            "INTERNAL_ERROR" if request.method != "GET" else None,
        )

    def seed_records(self, contacts: int, seed: int) -> None:
        """Lay out ``sample_account(contacts, seed)`` as a HubSpot portal would hold it."""
        account = sample_account(contacts, seed)
        rng = random.Random(f"hubspot-layout:{seed}")  # noqa: S311 - sample data
        now = self.clock.now()
        total = max(len(account.companies) + len(account.contacts) + len(account.deals), 1)
        span_ms = 365 * 86_400_000
        start_ms = to_epoch_ms(now) - span_ms - 86_400_000
        counter = 0

        def stamps() -> tuple[int, int]:
            nonlocal counter
            created = start_ms + counter * span_ms // total
            counter += 1
            modified = min(created + rng.randrange(0, 30 * 86_400_000), to_epoch_ms(now) - 60_000)
            return created, max(modified, created)

        with self._lock:
            company_ids: dict[int, int] = {}
            for c in account.companies:
                created, modified = stamps()
                props = {
                    "name": c.name,
                    "domain": c.domain if rng.random() < 0.9 else c.domain.upper(),
                    "website": c.website,
                    "phone": typed_phone(c.phone, rng) if c.phone else None,
                    "industry": _INDUSTRIES.get(c.industry, c.industry.upper()),
                    "numberofemployees": str(c.employees),
                    "annualrevenue": str(c.annual_revenue),
                    "city": c.city,
                    "country": COUNTRY_NAMES.get(c.country, c.country)
                    if rng.random() < 0.8
                    else c.country,
                }
                company_ids[c.key] = self._store("companies", props, created, modified).id
            contact_ids: dict[int, int] = {}
            for p in account.contacts:
                created, modified = stamps()
                email = p.email if rng.random() < 0.85 else _capitalised(p.email)
                props = {
                    "firstname": p.first_name,
                    "lastname": p.last_name,
                    "email": email,
                    "phone": typed_phone(p.phone, rng) if p.phone else None,
                    "mobilephone": typed_phone(p.mobile, rng) if p.mobile else None,
                    "jobtitle": p.job_title,
                    "city": p.city,
                    "country": COUNTRY_NAMES.get(p.country, p.country),
                    "lifecyclestage": rng.choice(("lead", "lead", "customer", "opportunity")),
                }
                record = self._store("contacts", props, created, modified)
                contact_ids[p.key] = record.id
                company = company_ids.get(p.company_key)
                if company is not None:
                    self._link("contacts", record.id, "companies", company, 1)
            for d in account.deals:
                created, modified = stamps()
                props = {
                    "dealname": d.name,
                    "amount": str(d.amount),
                    "deal_currency_code": d.currency,
                    "dealstage": _SEED_STAGES[d.stage],
                    "pipeline": "default",
                    "closedate": f"{d.close_date.isoformat()}T00:00:00.000Z",
                }
                record = self._store("deals", props, created, modified)
                company = company_ids.get(d.company_key)
                if company is not None:
                    self._link("deals", record.id, "companies", company, 5)
                for key in d.contact_keys:
                    if key in contact_ids:
                        self._link("deals", record.id, "contacts", contact_ids[key], 3)

    # ------------------------------------------------------------------ VendorApi: behind the API

    def insert(self, object_type: str, fields: Mapping[str, Any]) -> str:
        props, refs = self._split_pseudo(object_type, fields)
        with self._lock:
            try:
                values = self._validated(object_type, props, creating=True)
                self._check_email_free(object_type, values, None)
            except _Refused as refused:
                raise ValueError(refused.response.body.decode("utf-8")) from None
            now = to_epoch_ms(self.clock.now())
            record = self._store(object_type, values, now, now)
            self._set_refs(object_type, record.id, refs)
            return str(record.id)

    def modify(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None:
        props, refs = self._split_pseudo(object_type, fields)
        with self._lock:
            record = self._table(object_type).resolve(int(record_id))
            if record is None:
                raise KeyError(f"no {object_type} record {record_id}")
            try:
                values = self._validated(object_type, props, creating=False)
                self._check_email_free(object_type, values, record.id)
            except _Refused as refused:
                raise ValueError(refused.response.body.decode("utf-8")) from None
            self._apply(object_type, record, values)
            self._set_refs(object_type, record.id, refs)

    def remove(self, object_type: str, record_id: str) -> None:
        with self._lock:
            self._archive(object_type, int(record_id))

    def snapshot(self, object_type: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            table = self._table(object_type)
            writable = PROPERTIES[object_type] - READ_ONLY[object_type]
            result: dict[str, dict[str, Any]] = {}
            for record in table.live.values():
                values: dict[str, Any] = {
                    k: v for k, v in record.props.items() if k in writable and v not in (None, "")
                }
                values.update(self._refs_of(object_type, record.id))
                result[str(record.id)] = values
            return result

    def merge(self, object_type: str, primary: str, merged: str) -> str:
        """Merge ``merged`` into ``primary`` as the UI would; returns the survivor's id."""
        with self._lock:
            return str(self._merge(object_type, int(primary), int(merged)).id)

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: ApiRequest) -> ApiResponse:
        path = request.path.rstrip("/") or "/"
        if path == "/oauth/v1/token":
            return self._token(request)
        if path.startswith("/oauth/v1/access-tokens/"):
            return self._token_info(path.rsplit("/", 1)[1])
        token = (request.header("authorization") or "").removeprefix("Bearer ").strip()
        oauth = token != self.private_app_token
        if oauth:
            state = self.tokens.check(token)
            if state == "expired":
                return self._expired()
            if state != "valid":
                return _error(
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                )
        parts = path.strip("/").split("/")
        searching = request.method == "POST" and parts[-1] == "search"
        if searching:
            if not self.search_bucket.hit():
                return self._too_many("SECONDLY", request)
        else:
            if not self.burst.hit():
                return self._too_many("TEN_SECONDLY_ROLLING", request)
            if not self.daily.hit():
                return self._too_many("DAILY", request)
        try:
            with self._lock:
                response = self._route(request, parts)
        except _Refused as refused:
            response = refused.response
        except (ValueError, TypeError, KeyError, AttributeError):
            response = _error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        if not searching:
            response.headers.update(self._rate_headers(oauth))
        return response

    def _rate_headers(self, oauth: bool) -> dict[str, str]:
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.burst.limit),
            "X-HubSpot-RateLimit-Remaining": str(self.burst.remaining()),
        }
        if not oauth:  # OAuth calls get no daily headers (HubSpot changelog)
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily.limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.daily.remaining())
        return headers

    def _too_many(self, policy: str, request: ApiRequest) -> ApiResponse:
        if policy == "SECONDLY":
            body = {
                "status": "error",
                "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": _correlation(),
                "policyName": "SECONDLY",
            }
            return _json(429, body)
        message = (
            "You have reached your daily limit."
            if policy == "DAILY"
            else "You have reached your ten_secondly_rolling limit."
        )
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": _correlation(),
            "policyName": policy,
            "requestId": str(uuid.uuid4()),
        }
        headers: dict[str, str] = {}
        if policy == "TEN_SECONDLY_ROLLING":
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": str(self.burst.limit),
                "X-HubSpot-RateLimit-Remaining": "0",
            }
            if self.send_retry_after:
                headers["Retry-After"] = str(max(1, round(self.burst.retry_after() + 0.5)))
        return _json(429, body, headers)

    def _expired(self) -> ApiResponse:
        expired_at = _iso(self.clock.now())
        return _error(
            401,
            "The OAuth token used to make this call expired 0 second(s) ago.",
            "EXPIRED_AUTHENTICATION",
            context={"expire time": [expired_at]},
        )

    def _token(self, request: ApiRequest) -> ApiResponse:
        if request.method != "POST":
            return _error(405, "Method not allowed")
        form = {k: v[0] for k, v in request.form().items() if v}
        if form.get("grant_type") != "refresh_token":
            return _json(
                400,
                {
                    "status": "BAD_GRANT_TYPE",
                    "message": "grant_type must be refresh_token here",
                    "correlationId": _correlation(),
                },
            )
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return _json(
                400,
                {
                    "status": "BAD_CLIENT_ID",
                    "message": "missing or unknown client id",
                    "correlationId": _correlation(),
                },
            )
        if form.get("refresh_token") != self.refresh_token:
            return _json(
                400,
                {
                    "status": "BAD_REFRESH_TOKEN",
                    "message": "missing or unknown refresh token",
                    "correlationId": _correlation(),
                },
            )
        return _json(
            200,
            {
                "token_type": "bearer",
                "refresh_token": self.refresh_token,
                "access_token": self.tokens.issue(),
                "expires_in": round(self.tokens.ttl),
                "token_use": "access_token",
                "hub_id": self.hub_id,
            },
        )

    def _token_info(self, token: str) -> ApiResponse:
        state = self.tokens.check(token)
        if state != "valid":
            return _error(404, "Token not found or expired", "EXPIRED_AUTHENTICATION")
        return _json(
            200,
            {
                "token": token,
                "hub_id": self.hub_id,
                "app_id": 1,
                "token_type": "access",
                "scopes": [f"crm.objects.{t}.{rw}" for t in TYPE_IDS for rw in ("read", "write")],
                "expires_in": round(self.tokens.ttl),
            },
        )

    def _route(self, request: ApiRequest, parts: list[str]) -> ApiResponse:
        method = request.method
        if parts[:3] == ["crm", "v3", "properties"] and len(parts) == 4 and method == "GET":
            object_type = _ALIASES.get(parts[3])
            if object_type is None:
                return _error(400, f"Unable to infer object type from: {parts[3]}")
            archived = (request.arg("archived") or "false").lower() == "true"
            # No property of this account was ever archived.
            shown = [] if archived else _described_properties(object_type)
            return _json(200, {"results": shown})
        if parts[:3] == ["crm", "v3", "pipelines"] and len(parts) == 4 and method == "GET":
            if parts[3] != "deals":
                return _error(404, f"Unable to infer object type from: {parts[3]}")
            return _json(200, {"results": [_pipeline()]})
        if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
            object_type = _ALIASES.get(parts[3])
            if object_type is None:
                return _error(400, f"Unable to infer object type from: {parts[3]}")
            rest = parts[4:]
            if not rest:
                if method == "GET":
                    return self._list(object_type, request)
                if method == "POST":
                    return self._create_one(object_type, request.json())
            elif rest == ["search"] and method == "POST":
                return self._search(object_type, request.json())
            elif rest == ["merge"] and method == "POST":
                body = request.json()
                survivor = self._merge(
                    object_type, int(body["primaryObjectId"]), int(body["objectIdToMerge"])
                )
                return _json(200, self._shown(object_type, survivor, None))
            elif len(rest) == 2 and rest[0] == "batch" and method == "POST":
                return self._batch(object_type, rest[1], request)
            elif len(rest) == 1 and rest[0].isdigit():
                return self._one(object_type, int(rest[0]), request)
        if parts[:3] == ["crm", "v4", "associations"] and len(parts) == 7 and parts[5] == "batch":
            from_type, to_type = _ALIASES.get(parts[3]), _ALIASES.get(parts[4])
            if from_type is None or to_type is None or method != "POST":
                return _error(400, f"Unable to infer object type from: {parts[3]}/{parts[4]}")
            return self._associations(from_type, to_type, parts[6], request.json())
        if (
            parts[:3] == ["crm", "v4", "associations"]
            and len(parts) == 8
            and parts[5:] == ["batch", "associate", "default"]
        ):
            from_type, to_type = _ALIASES.get(parts[3]), _ALIASES.get(parts[4])
            if from_type and to_type:
                return self._associate_default(from_type, to_type, request.json())
        return _error(404, "resource not found")

    # ------------------------------------------------------------------ objects

    def _table(self, object_type: str) -> _Table:
        return self._tables[object_type]

    def _shown(
        self,
        object_type: str,
        record: _Record,
        asked: Iterable[str] | None,
        *,
        search: bool = False,
    ) -> dict[str, Any]:
        known = PROPERTIES[object_type]
        names = list(asked) if asked else list(_DEFAULT_SHOWN[object_type])
        names.extend(("createdate", MODIFIED[object_type], "hs_object_id"))
        props = record.props
        shown = {name: props.get(name) for name in names if name in known}
        updated = _iso_ms(record.updated_ms)
        body: dict[str, Any] = {
            "id": str(record.id),
            "properties": shown,
            "createdAt": record.created,
            "updatedAt": updated,
            "archived": record.archived_at is not None,
        }
        if record.archived_at is not None:
            body["archivedAt"] = record.archived_at
        if search:
            body["url"] = (
                f"https://app.hubspot.com/contacts/{self.hub_id}/record/"
                f"{TYPE_IDS[object_type]}/{record.id}"
            )
        return body

    def _list(self, object_type: str, request: ApiRequest) -> ApiResponse:
        table = self._table(object_type)
        limit = min(max(int(request.arg("limit") or 10), 1), LIST_MAX_LIMIT)
        after = request.arg("after")
        start = int(after) if after and after.isdigit() else 0
        asked = _property_names(request.query.get("properties", []))
        archived = (request.arg("archived") or "false").lower() == "true"
        ids, records = (table.archived_ids, table.archived) if archived else (table.ids, table.live)
        position = ids.bisect_left(start)
        chosen = list(ids.islice(position, position + limit + 1))
        results = [self._shown(object_type, records[i], asked) for i in chosen[:limit]]
        body: dict[str, Any] = {"results": results}
        if len(chosen) > limit:
            following = str(chosen[limit])
            query = f"limit={limit}&after={following}"
            if asked:
                query += "&properties=" + quote(",".join(asked))
            body["paging"] = {
                "next": {
                    "after": following,
                    "link": f"https://api.hubapi.com/crm/v3/objects/{object_type}?{query}",
                }
            }
        return _json(200, body)

    def _one(self, object_type: str, record_id: int, request: ApiRequest) -> ApiResponse:
        table = self._table(object_type)
        if request.method == "DELETE":
            self._archive(object_type, record_id)
            return ApiResponse(204)
        record = table.resolve(record_id)
        if record is None:
            return _error(404, "resource not found")
        if request.method == "GET":
            asked = _property_names(request.query.get("properties", []))
            return _json(200, self._shown(object_type, record, asked))
        if request.method == "PATCH":
            props = dict(request.json().get("properties") or {})
            values = self._validated(object_type, props, creating=False)
            self._check_email_free(object_type, values, record.id)
            self._apply(object_type, record, values)
            return _json(200, self._shown(object_type, record, list(props)))
        return _error(405, "Method not allowed")

    def _create_one(self, object_type: str, body: Mapping[str, Any]) -> ApiResponse:
        props = dict(body.get("properties") or {})
        values = self._validated(object_type, props, creating=True)
        self._check_email_free(object_type, values, None)
        now = to_epoch_ms(self.clock.now())
        record = self._store(object_type, values, now, now)
        for item in body.get("associations") or ():
            for spec in item.get("types") or ():
                self._link_checked(
                    object_type, record.id, _guess_target(object_type, spec), item, spec
                )
        return _json(201, self._shown(object_type, record, list(props)))

    def _batch(self, object_type: str, operation: str, request: ApiRequest) -> ApiResponse:
        body = request.json()
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise _Refused(
                _error(400, "Invalid input JSON: inputs is required", "VALIDATION_ERROR")
            )
        if len(inputs) > BATCH_MAX:
            raise _Refused(
                _error(
                    400,
                    f"Batch input size {len(inputs)} exceeds the limit of {BATCH_MAX}",
                    "VALIDATION_ERROR",
                    context={"limit": [str(BATCH_MAX)]},
                )
            )
        started = _iso(self.clock.now())
        if operation == "read":
            results, errors = self._batch_read(object_type, body, inputs)
        elif operation == "create":
            results, errors = self._batch_create(object_type, inputs)
        elif operation == "update":
            results, errors = self._batch_update(object_type, inputs)
        elif operation == "upsert":
            results, errors = self._batch_upsert(object_type, inputs)
        elif operation == "archive":
            for item in inputs:
                self._archive(object_type, int(item["id"]))
            return ApiResponse(204)
        else:
            return _error(404, "resource not found")
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _iso(self.clock.now()),
        }
        if errors:
            answer["errors"] = errors
            answer["numErrors"] = len(errors)
        status = 207 if errors else (201 if operation == "create" else 200)
        return _json(status, answer)

    def _batch_read(
        self, object_type: str, body: Mapping[str, Any], inputs: list[Any]
    ) -> tuple[list[Any], list[Any]]:
        table = self._table(object_type)
        asked = _property_names(body.get("properties") or [])
        id_property = body.get("idProperty")
        results: dict[int, Any] = {}
        missing: list[str] = []
        for item in inputs:
            key = str(item["id"])
            record: _Record | None
            if id_property == "email":
                found = table.emails.get(key.casefold())
                record = table.live.get(found) if found is not None else None
            else:
                record = table.resolve(int(key)) if key.isdigit() else None
            if record is None:
                missing.append(key)
            else:
                results[record.id] = self._shown(object_type, record, asked)
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {_SINGULAR[object_type].upper()} objects, "
                    "they may be deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        return list(results.values()), errors

    def _batch_create(self, object_type: str, inputs: list[Any]) -> tuple[list[Any], list[Any]]:
        traced = all("objectWriteTraceId" in item for item in inputs)
        # Bad values and conflicts are found before anything is written: without trace ids one
        # bad record fails the batch whole, with them it is refused alone (207).
        validated: list[dict[str, str | None] | None] = []
        refused: dict[int, dict[str, Any]] = {}
        for n, item in enumerate(inputs):
            props = dict(item.get("properties") or {})
            if not traced:
                validated.append(self._validated(object_type, props, creating=True))
                continue
            values, error = self._validated_item(object_type, props, _item_context(item))
            validated.append(values)
            if error is not None:
                refused[n] = error
        claimed: dict[str, int | None] = {}
        conflicts: dict[int, int | None] = {}
        table = self._table(object_type)
        for n, values in enumerate(validated):
            email = (
                values.get("email") if values is not None and object_type == "contacts" else None
            )
            if not email:
                continue
            folded = email.casefold()
            if folded in table.emails:
                conflicts[n] = table.emails[folded]
            elif folded in claimed:
                conflicts[n] = None  # resolved below, once the first one has its id
            else:
                claimed[folded] = None
        if conflicts and not traced:
            first = next(iter(conflicts.values()))
            raise _Refused(_conflict(first))
        results: list[Any] = []
        errors: list[Any] = []
        now = to_epoch_ms(self.clock.now())
        for n, (item, values) in enumerate(zip(inputs, validated, strict=True)):
            trace = item.get("objectWriteTraceId")
            if values is None:
                errors.append(refused[n])
                continue
            if n in conflicts:
                existing = conflicts[n]
                if existing is None:
                    existing = table.emails.get(str(values["email"]).casefold())
                errors.append(_conflict_item(existing, trace))
                continue
            record = self._store(object_type, values, now, now)
            for assoc in item.get("associations") or ():
                for spec in assoc.get("types") or ():
                    self._link_checked(
                        object_type, record.id, _guess_target(object_type, spec), assoc, spec
                    )
            shown = self._shown(object_type, record, list(values))
            if trace is not None:
                shown["objectWriteTraceId"] = trace
            results.append(shown)
        return results, errors

    def _batch_update(self, object_type: str, inputs: list[Any]) -> tuple[list[Any], list[Any]]:
        table = self._table(object_type)
        ids = [str(item["id"]) for item in inputs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise _Refused(
                _error(
                    400,
                    f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. "
                    "IDs must be unique",
                    "VALIDATION_ERROR",
                    context={"ids": duplicates},
                )
            )
        # Batch update always allows partial success: a bad value refuses its record alone.
        checked = [
            self._validated_item(
                object_type,
                dict(item.get("properties") or {}),
                _item_context(item, str(item["id"])),
            )
            for item in inputs
        ]
        results, errors, missing = [], [], []
        for item, (values, error) in zip(inputs, checked, strict=True):
            key = str(item["id"])
            record = table.resolve(int(key)) if key.isdigit() else None
            if record is None:
                missing.append(key)
                continue
            if values is None:
                errors.append(error)
                continue
            email = values.get("email")
            if object_type == "contacts" and email:
                owner = table.emails.get(email.casefold())
                if owner is not None and owner != record.id:
                    errors.append(_conflict_item(owner, item.get("objectWriteTraceId"), key))
                    continue
            self._apply(object_type, record, values)
            shown = self._shown(object_type, record, list(values))
            if "objectWriteTraceId" in item:
                shown["objectWriteTraceId"] = item["objectWriteTraceId"]
            results.append(shown)
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {_SINGULAR[object_type].upper()} objects, "
                    "they may be deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        return results, errors

    def _batch_upsert(self, object_type: str, inputs: list[Any]) -> tuple[list[Any], list[Any]]:
        table = self._table(object_type)
        validated: list[dict[str, str | None] | None] = []
        errors: list[Any] = []
        for item in inputs:
            if item.get("idProperty") != "email" or object_type != "contacts":
                raise _Refused(
                    _error(
                        400,
                        f"idProperty {item.get('idProperty')!r} is not a unique-value property",
                        "VALIDATION_ERROR",
                    )
                )
            # The id is the email: a malformed one refuses its record like a property would.
            props = {**dict(item.get("properties") or {}), "email": str(item["id"])}
            values, error = self._validated_item(
                object_type, props, _item_context(item, str(item["id"]))
            )
            if error is not None:
                errors.append(error)
            validated.append(values)
        results = []
        now = to_epoch_ms(self.clock.now())
        for item, values in zip(inputs, validated, strict=True):
            if values is None:
                continue
            owner = table.emails.get(str(item["id"]).casefold())
            record = table.live.get(owner) if owner is not None else None
            if record is None:
                record, new = self._store(object_type, values, now, now), True
            else:
                values.pop("email", None)  # the key matched case-insensitively; keep the stored one
                self._apply(object_type, record, values)
                new = False
            shown = self._shown(object_type, record, list(values))
            shown["new"] = new
            if "objectWriteTraceId" in item:
                shown["objectWriteTraceId"] = item["objectWriteTraceId"]
            results.append(shown)
        return results, errors

    def _validated(
        self, object_type: str, props: Mapping[str, Any], *, creating: bool
    ) -> dict[str, str | None]:
        """The values to store; any problem refuses the whole request (400)."""
        values, problems = self._check_properties(object_type, props)
        if problems:
            raise _validation(problems)
        return values

    def _validated_item(
        self, object_type: str, props: Mapping[str, Any], context: Mapping[str, list[str]]
    ) -> tuple[dict[str, str | None] | None, dict[str, Any] | None]:
        """The values to store, or the 207 error item refusing this record alone; a property
        that does not exist or is read-only still refuses the whole request."""
        values, problems = self._check_properties(object_type, props)
        if any(code in _SCHEMA_CODES for _, code, _ in problems):
            raise _validation(problems)
        if problems:
            return None, _validation_item(problems, context)
        return values, None

    def _check_properties(
        self, object_type: str, props: Mapping[str, Any]
    ) -> tuple[dict[str, str | None], list[_Problem]]:
        known, read_only = PROPERTIES[object_type], READ_ONLY[object_type]
        problems: list[_Problem] = []
        values: dict[str, str | None] = {}
        for name, raw in props.items():
            if name not in known:
                problems.append(
                    (name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if name in read_only:
                problems.append(
                    (
                        name,
                        "READ_ONLY_VALUE",
                        f'"{name}" is a read only property; its value cannot be set.',
                    )
                )
                continue
            text = None if raw is None else str(raw)
            if text == "":
                text = None
            if text is not None and len(text) > MAX_VALUE_LENGTH:
                problems.append(
                    (
                        name,
                        _TOO_LONG,
                        f'Property "{name}" has a value of {len(text):,} characters; '
                        f"the limit is {MAX_VALUE_LENGTH:,}",
                    )
                )
                continue
            if text is not None and name == "email" and not _EMAIL.match(text):
                problems.append((name, "INVALID_EMAIL", f"Email address {text} is invalid"))
                continue
            if text is not None and name == "dealstage" and text not in _STAGE_IDS:
                allowed = ", ".join(sorted(_STAGE_IDS))
                problems.append(
                    (
                        name,
                        "INVALID_OPTION",
                        f"{text} was not one of the allowed options: [{allowed}]",
                    )
                )
                continue
            if text is not None and name in _DATETIME:
                try:
                    text = _iso(parse_vendor_datetime(text))
                except ValueError:
                    problems.append(
                        (name, "INVALID_DATE", f"{text} is not a valid date or timestamp")
                    )
                    continue
            values[name] = text
        return values, problems

    def _check_email_free(
        self,
        object_type: str,
        values: Mapping[str, str | None],
        own_id: int | None,
    ) -> None:
        email = values.get("email")
        if object_type != "contacts" or not email:
            return
        owner = self._table(object_type).emails.get(email.casefold())
        if owner is not None and owner != own_id:
            raise _Refused(_conflict(owner))

    def _store(
        self, object_type: str, values: Mapping[str, str | None], created: int, modified: int
    ) -> _Record:
        table = self._table(object_type)
        record_id = table.next_id
        table.next_id += 1
        props: dict[str, str | None] = {k: v for k, v in values.items() if v is not None}
        props["hs_object_id"] = str(record_id)
        props["createdate"] = _iso_ms(created)
        props[MODIFIED[object_type]] = _iso_ms(modified)
        if object_type == "contacts":
            props["hs_all_contact_vids"] = str(record_id)
            if props.get("email"):
                props["hs_email_domain"] = str(props["email"]).rsplit("@", 1)[-1].lower()
        record = _Record(record_id, props, _iso_ms(created), modified)
        table.put(record)
        return record

    def _apply(self, object_type: str, record: _Record, values: Mapping[str, str | None]) -> None:
        table = self._table(object_type)
        table.unindex(record)
        for name, value in values.items():
            if value is None:
                record.props.pop(name, None)
            else:
                record.props[name] = value
        if object_type == "contacts" and "email" in values:
            email = record.props.get("email")
            if email:
                record.props["hs_email_domain"] = email.rsplit("@", 1)[-1].lower()
            else:
                record.props.pop("hs_email_domain", None)
        stamp = max(to_epoch_ms(self.clock.now()), record.updated_ms + 1)
        record.updated_ms = stamp
        record.props[MODIFIED[object_type]] = _iso_ms(stamp)
        table.put(record)

    def _archive(self, object_type: str, record_id: int) -> None:
        table = self._table(object_type)
        record = table.live.pop(record_id, None)
        if record is None:
            return  # archiving twice, or an unknown id, is not an error on HubSpot
        table.unindex(record)
        table.ids.discard(record_id)
        record.archived_at = _iso(self.clock.now())
        table.archived[record_id] = record
        table.archived_ids.add(record_id)

    def _merge(self, object_type: str, primary: int, merged: int) -> _Record:
        table = self._table(object_type)
        keep, gone = table.resolve(primary), table.resolve(merged)
        if keep is None or gone is None or keep.id == gone.id:
            raise _Refused(_error(400, f"Cannot merge {primary} and {merged}", "VALIDATION_ERROR"))
        absorbed = [gone.id, *_split_ids(gone.props.get("hs_merged_object_ids"))]
        if object_type == "deals":
            # Merging deals mints a new deal; both old ids answer with it.
            values = {k: v for k, v in gone.props.items() if k not in READ_ONLY[object_type]}
            values.update({k: v for k, v in keep.props.items() if k not in READ_ONLY[object_type]})
            now = to_epoch_ms(self.clock.now())
            survivor = self._store(object_type, values, now, now)
            absorbed = [keep.id, *_split_ids(keep.props.get("hs_merged_object_ids")), *absorbed]
            self._move_links(object_type, keep.id, survivor.id)
            self._retire(table, keep, survivor.id)
        else:
            survivor = keep
        self._move_links(object_type, gone.id, survivor.id)
        self._retire(table, gone, survivor.id)
        fill = {
            k: v
            for k, v in gone.props.items()
            if k not in READ_ONLY[object_type] and k != "email" and not survivor.props.get(k)
        }
        merged_ids = [*_split_ids(survivor.props.get("hs_merged_object_ids")), *absorbed]
        survivor.props["hs_merged_object_ids"] = ";".join(str(i) for i in dict.fromkeys(merged_ids))
        if object_type == "contacts":
            vids = [survivor.id, *merged_ids]
            survivor.props["hs_all_contact_vids"] = ";".join(str(i) for i in dict.fromkeys(vids))
        self._apply(object_type, survivor, fill)
        if object_type == "contacts":
            email = gone.props.get("email")
            if email:  # the absorbed address still finds the survivor
                table.emails.setdefault(email.casefold(), survivor.id)
        return survivor

    def _retire(self, table: _Table, record: _Record, survivor: int) -> None:
        table.live.pop(record.id, None)
        table.unindex(record)
        table.ids.discard(record.id)
        table.merged_into[record.id] = survivor

    # ------------------------------------------------------------------ search

    def _search(self, object_type: str, body: Mapping[str, Any]) -> ApiResponse:
        table = self._table(object_type)
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
        if limit > SEARCH_MAX_LIMIT or limit < 1:
            raise _Refused(
                _error(400, f"limit must be between 1 and {SEARCH_MAX_LIMIT}", "VALIDATION_ERROR")
            )
        if after + limit > SEARCH_CAP:
            raise _Refused(
                _error(
                    400,
                    f"Paging past {SEARCH_CAP} results is not supported; narrow the search",
                    "VALIDATION_ERROR",
                )
            )
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups):
            raise _Refused(
                _error(
                    400,
                    "Too many filter groups or filters (at most 5 groups of 6 filters)",
                    "VALIDATION_ERROR",
                )
            )
        modified = MODIFIED[object_type]
        sort_name, descending = _sort(body.get("sorts"))
        asked = _property_names(body.get("properties") or [])
        fast = _index_range(groups, modified) if sort_name in (None, modified) else None
        if fast is not None and not descending:
            low, high = fast
            start = table.by_modified.bisect_left((low, -1))
            stop = (
                table.by_modified.bisect_left((high + 1, -1))
                if high is not None
                else len(table.by_modified)
            )
            total = stop - start
            keys = table.by_modified.islice(start + after, min(start + after + limit, stop))
            page = [table.live[record_id] for _, record_id in keys]
        else:
            matches = [r for r in self._candidates(table, groups, modified) if _matches(r, groups)]
            key = _sort_key(sort_name or "hs_object_id", modified)
            matches.sort(key=key, reverse=descending)
            total = len(matches)
            page = matches[after : after + limit]
        answer: dict[str, Any] = {
            "total": total,
            "results": [self._shown(object_type, r, asked, search=True) for r in page],
        }
        if after + len(page) < total:
            answer["paging"] = {"next": {"after": str(after + len(page))}}
        return _json(200, answer)

    def _candidates(
        self, table: _Table, groups: list[Mapping[str, Any]], modified: str
    ) -> list[_Record]:
        if len(groups) == 1:
            bounds = _group_range(groups[0], modified)
            if bounds is not None:
                low, high = bounds
                start = table.by_modified.bisect_left((low, -1))
                stop = (
                    table.by_modified.bisect_left((high + 1, -1))
                    if high is not None
                    else len(table.by_modified)
                )
                return [table.live[i] for _, i in table.by_modified.islice(start, stop)]
        return list(table.live.values())

    # ------------------------------------------------------------------ associations

    def _links_of(self, from_type: str, to_type: str) -> dict[int, dict[int, set[int]]]:
        return self._links.setdefault((from_type, to_type), {})

    def _link(self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int) -> None:
        types = {type_id}
        if type_id in _UNLABELED_TWIN:
            types.add(_UNLABELED_TWIN[type_id])
        if type_id in _PRIMARY:
            # One primary per record: the previous primary stays associated, unlabeled.
            for other, other_types in self._links_of(from_type, to_type).get(from_id, {}).items():
                if other != to_id and type_id in other_types:
                    other_types.discard(type_id)
                    back = self._links_of(to_type, from_type).get(other, {}).get(from_id)
                    if back is not None:
                        back.discard(_INVERSE[type_id])
        self._links_of(from_type, to_type).setdefault(from_id, {}).setdefault(to_id, set()).update(
            types
        )
        inverse = {_INVERSE.get(t, t) for t in types}
        self._links_of(to_type, from_type).setdefault(to_id, {}).setdefault(from_id, set()).update(
            inverse
        )
        self._sync_associated_company(from_type, from_id, to_type, to_id)

    def _unlink(self, from_type: str, from_id: int, to_type: str, to_id: int) -> None:
        self._links_of(from_type, to_type).get(from_id, {}).pop(to_id, None)
        self._links_of(to_type, from_type).get(to_id, {}).pop(from_id, None)
        self._sync_associated_company(from_type, from_id, to_type, to_id)

    def _sync_associated_company(
        self, from_type: str, from_id: int, to_type: str, to_id: int
    ) -> None:
        # Contacts mirror their primary company in the read-only associatedcompanyid property.
        pair = {from_type: from_id, to_type: to_id}
        if set(pair) != {"contacts", "companies"}:
            return
        contact = self._tables["contacts"].live.get(pair["contacts"])
        if contact is None:
            return
        primary = [
            c
            for c, types in self._links_of("contacts", "companies").get(contact.id, {}).items()
            if 1 in types
        ]
        if primary:
            contact.props["associatedcompanyid"] = str(primary[0])
        else:
            contact.props.pop("associatedcompanyid", None)

    def _move_links(self, object_type: str, old: int, new: int) -> None:
        for (from_type, to_type), table in list(self._links.items()):
            if from_type != object_type or old not in table:
                continue
            for target, types in list(table[old].items()):
                for type_id in sorted(types):
                    # A primary brings its unlabeled twin along; a lone twin moves by itself.
                    twin_of = [p for p, twin in _UNLABELED_TWIN.items() if twin == type_id]
                    if not (twin_of and twin_of[0] in types):
                        self._link(from_type, new, to_type, target, type_id)
                self._unlink(from_type, old, to_type, target)

    def _live(self, object_type: str, record_id: int) -> bool:
        return record_id in self._tables[object_type].live

    def _associations(
        self, from_type: str, to_type: str, operation: str, body: Mapping[str, Any]
    ) -> ApiResponse:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or len(inputs) > 1000:
            raise _Refused(_error(400, "inputs must be a list of at most 1000", "VALIDATION_ERROR"))
        started = _iso(self.clock.now())
        results: list[Any] = []
        errors: list[Any] = []
        if operation == "read":
            for item in inputs:
                source = self._tables[from_type].resolve(int(item["id"]))
                links = self._links_of(from_type, to_type).get(source.id, {}) if source else {}
                live = sorted(t for t in links if self._live(to_type, t))
                offset = int(item.get("after") or 0)
                chunk = live[offset : offset + ASSOCIATION_PAGE]
                if not chunk:
                    errors.append(_no_associations(from_type, to_type, str(item["id"])))
                    continue
                result: dict[str, Any] = {
                    "from": {"id": str(item["id"])},
                    "to": [
                        {
                            "toObjectId": target,
                            "associationTypes": [
                                {
                                    "category": "HUBSPOT_DEFINED",
                                    "typeId": t,
                                    "label": _LABELS.get(t),
                                }
                                for t in sorted(links[target])
                            ],
                        }
                        for target in chunk
                    ],
                }
                if offset + ASSOCIATION_PAGE < len(live):
                    result["paging"] = {"next": {"after": str(offset + ASSOCIATION_PAGE)}}
                results.append(result)
            status = 207 if errors else 200
        elif operation == "create":
            for item in inputs:
                for spec in item.get("types") or ():
                    outcome = self._link_checked(
                        from_type, int(item["from"]["id"]), to_type, item, spec
                    )
                    (results if "fromObjectId" in outcome else errors).append(outcome)
            status = 207 if errors else 201
        elif operation == "archive":
            for item in inputs:
                for target in item.get("to") or ():
                    self._unlink(from_type, int(item["from"]["id"]), to_type, int(target["id"]))
            return ApiResponse(204)
        else:
            return _error(404, "resource not found")
        answer: dict[str, Any] = {
            "completedAt": _iso(self.clock.now()),
            "status": "COMPLETE",
            "startedAt": started,
            "results": results,
        }
        if errors:
            answer["errors"] = errors
            answer["numErrors"] = len(errors)
        return _json(status, answer)

    def _associate_default(
        self, from_type: str, to_type: str, body: Mapping[str, Any]
    ) -> ApiResponse:
        default = {
            ("contacts", "companies"): 279,
            ("companies", "contacts"): 280,
            ("deals", "companies"): 341,
            ("companies", "deals"): 342,
            ("deals", "contacts"): 3,
            ("contacts", "deals"): 4,
        }
        type_id = default.get((from_type, to_type))
        results: list[Any] = []
        errors: list[Any] = []
        for item in body.get("inputs") or ():
            spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
            outcome = self._link_checked(from_type, int(item["from"]["id"]), to_type, item, spec)
            (results if "fromObjectId" in outcome else errors).append(outcome)
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            answer["errors"] = errors
            answer["numErrors"] = len(errors)
        return _json(207 if errors else 200, answer)

    def _link_checked(
        self,
        from_type: str,
        from_id: int,
        to_type: str,
        item: Mapping[str, Any],
        spec: Mapping[str, Any],
    ) -> dict[str, Any]:
        target = str((item.get("to") or {}).get("id"))
        type_id = spec.get("associationTypeId")
        for object_type, raw in ((from_type, str(from_id)), (to_type, target)):
            if not raw.isdigit() or not self._live(object_type, int(raw)):
                return {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "subCategory": "crm.associations.INVALID_IDENTIFIER",
                    "message": f"{raw} is not a valid ID",
                    "context": {"id": [raw]},
                }
        to_id = int(target)
        if from_type == to_type and from_id == to_id:
            return {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": f"Object {from_id} cannot be associated to itself ({from_id})",
            }
        if not isinstance(type_id, int) or _INVERSE.get(type_id) is None:
            return {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "subCategory": "crm.associations.INVALID_ASSOCIATION_TYPE",
                "message": f"{type_id} is not a valid association type id",
                "context": {"typeId": [str(type_id)]},
            }
        self._link(from_type, from_id, to_type, to_id, type_id)
        return {
            "fromObjectTypeId": TYPE_IDS[from_type],
            "fromObjectId": from_id,
            "toObjectTypeId": TYPE_IDS[to_type],
            "toObjectId": to_id,
            "labels": [_LABELS[type_id]] if type_id in _LABELS else [],
        }

    # ------------------------------------------------------------------ pseudo-fields

    def _split_pseudo(
        self, object_type: str, fields: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        pseudo = (
            {"company_id", "contact_ids"}
            if object_type == "deals"
            else ({"company_id"} if object_type == "contacts" else set())
        )
        props = {k: v for k, v in fields.items() if k not in pseudo}
        refs = {k: v for k, v in fields.items() if k in pseudo}
        return props, refs

    def _set_refs(self, object_type: str, record_id: int, refs: Mapping[str, Any]) -> None:
        for name, value in refs.items():
            to_type, type_id = (
                ("contacts", 3)
                if name == "contact_ids"
                else (
                    "companies",
                    1 if object_type == "contacts" else 5,
                )
            )
            wanted = (
                {int(v) for v in value or ()}
                if name == "contact_ids"
                else ({int(value)} if value not in (None, "") else set())
            )
            current = self._links_of(object_type, to_type).get(record_id, {})
            mine = (
                set(current)
                if name == "contact_ids"
                else {t for t, types in current.items() if type_id in types}
            )
            for target in mine - wanted:
                self._unlink(object_type, record_id, to_type, target)
            for target in wanted - mine:
                if not self._live(to_type, target):
                    raise KeyError(f"no {to_type} record {target}")
                self._link(object_type, record_id, to_type, target, type_id)

    def _refs_of(self, object_type: str, record_id: int) -> dict[str, Any]:
        refs: dict[str, Any] = {}
        if object_type in ("contacts", "deals"):
            primary = 1 if object_type == "contacts" else 5
            links = self._links_of(object_type, "companies").get(record_id, {})
            chosen = sorted(
                t for t, types in links.items() if primary in types and self._live("companies", t)
            )
            if chosen:
                refs["company_id"] = str(chosen[0])
        if object_type == "deals":
            links = self._links_of("deals", "contacts").get(record_id, {})
            refs["contact_ids"] = [str(t) for t in sorted(links) if self._live("contacts", t)]
        return refs


# ---------------------------------------------------------------------------------- helpers


def _conflict(existing: int | None) -> ApiResponse:
    message = "Contact already exists" + (f". Existing ID: {existing}" if existing else "")
    return _error(409, message, "CONFLICT")


def _conflict_item(existing: int | None, trace: Any, own: str | None = None) -> dict[str, Any]:
    context: dict[str, list[str]] = {}
    if trace is not None:
        context["objectWriteTraceId"] = [str(trace)]
    if existing is not None:
        context["existingId"] = [str(existing)]
    if own is not None:
        context["ids"] = [own]
    return {
        "status": "error",
        "category": "CONFLICT",
        "message": f"Contact already exists. Existing ID: {existing}",
        "context": context,
    }


def _no_associations(from_type: str, to_type: str, from_id: str) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        "message": f"No {_SINGULAR[to_type]} is associated with {_SINGULAR[from_type]} {from_id}.",
        "context": {
            "fromObjectId": [from_id],
            "fromObjectType": [_SINGULAR[from_type]],
            "toObjectType": [_SINGULAR[to_type]],
        },
    }


def _guess_target(object_type: str, spec: Mapping[str, Any]) -> str:
    type_id = spec.get("associationTypeId")
    targets = {
        1: "companies",
        279: "companies",
        5: "companies",
        341: "companies",
        3: "contacts",
        2: "contacts",
        280: "contacts",
        4: "deals",
        6: "deals",
        342: "deals",
    }
    return targets.get(type_id if isinstance(type_id, int) else -1, object_type)


def _split_ids(value: str | None) -> list[int]:
    return [int(v) for v in (value or "").split(";") if v.strip().isdigit()]


def _property_names(raw: Iterable[Any]) -> list[str]:
    names: list[str] = []
    for item in raw:
        names.extend(part.strip() for part in str(item).split(",") if part.strip())
    return list(dict.fromkeys(names))


def _sort(raw: Any) -> tuple[str | None, bool]:
    """The sort property and direction; both documented forms (objects or "-name" strings)."""
    if not raw:
        return None, False
    first = raw[0]
    if isinstance(first, Mapping):
        return str(first.get("propertyName")), str(first.get("direction", "")).upper() == (
            "DESCENDING"
        )
    text = str(first)
    return text.lstrip("-"), text.startswith("-")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float(to_epoch_ms(parse_vendor_datetime(text)))
    except ValueError:
        return None


def _value(record: _Record, name: str) -> str | None:
    if name == "hs_object_id":
        return str(record.id)
    return record.props.get(name)


def _compare(actual: str, wanted: str) -> int:
    left, right = _number(actual), _number(wanted)
    if left is not None and right is not None:
        return (left > right) - (left < right)
    a, b = actual.casefold(), wanted.casefold()
    return (a > b) - (a < b)


def _filter_ok(record: _Record, flt: Mapping[str, Any]) -> bool:
    name = str(flt.get("propertyName"))
    operator = str(flt.get("operator", "EQ")).upper()
    actual = _value(record, name)
    if operator == "HAS_PROPERTY":
        return actual not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return actual in (None, "")
    if operator in ("IN", "NOT_IN"):
        values = [str(v) for v in flt.get("values") or ()]
        inside = actual is not None and any(_compare(actual, v) == 0 for v in values)
        return inside if operator == "IN" else not inside
    if actual is None:
        return operator in ("NEQ", "NOT_CONTAINS_TOKEN")
    wanted = str(flt.get("value", ""))
    if operator == "CONTAINS_TOKEN":
        return wanted.strip("*").casefold() in actual.casefold()
    if operator == "NOT_CONTAINS_TOKEN":
        return wanted.strip("*").casefold() not in actual.casefold()
    if operator == "BETWEEN":
        high = str(flt.get("highValue", ""))
        return _compare(actual, wanted) >= 0 and _compare(actual, high) <= 0
    order = _compare(actual, wanted)
    checks: dict[str, Callable[[int], bool]] = {
        "EQ": lambda o: o == 0,
        "NEQ": lambda o: o != 0,
        "LT": lambda o: o < 0,
        "LTE": lambda o: o <= 0,
        "GT": lambda o: o > 0,
        "GTE": lambda o: o >= 0,
    }
    check = checks.get(operator)
    if check is None:
        raise _Refused(_error(400, f"Unknown filter operator {operator}", "VALIDATION_ERROR"))
    return check(order)


def _matches(record: _Record, groups: list[Mapping[str, Any]]) -> bool:
    if not groups:
        return True
    return any(all(_filter_ok(record, f) for f in g.get("filters") or ()) for g in groups)


def _group_range(group: Mapping[str, Any], modified: str) -> tuple[int, int | None] | None:
    """The modified-time range (ms, inclusive) a filter group's modified-date filters allow."""
    low, high = 0, None
    found = False
    for flt in group.get("filters") or ():
        if flt.get("propertyName") != modified:
            continue
        operator = str(flt.get("operator", "")).upper()
        value = _number(str(flt.get("value", "")))
        if value is None:
            return None
        ms = int(value)
        found = True
        if operator == "GTE":
            low = max(low, ms)
        elif operator == "GT":
            low = max(low, ms + 1)
        elif operator == "EQ":
            low, high = max(low, ms), ms if high is None else min(high, ms)
        elif operator in ("LT", "LTE"):
            top = ms - 1 if operator == "LT" else ms
            high = top if high is None else min(high, top)
        elif operator == "BETWEEN":
            upper = _number(str(flt.get("highValue", "")))
            if upper is None:
                return None
            low, high = max(low, ms), int(upper) if high is None else min(high, int(upper))
        else:
            return None
    return (low, high) if found else None


def _index_range(groups: list[Mapping[str, Any]], modified: str) -> tuple[int, int | None] | None:
    """The range when the whole query is one group of modified-date filters (the fast path)."""
    if len(groups) != 1:
        return None
    filters = groups[0].get("filters") or []
    if not filters or any(f.get("propertyName") != modified for f in filters):
        return None
    return _group_range(groups[0], modified)


def _sort_key(name: str, modified: str) -> Callable[[_Record], Any]:
    if name == "hs_object_id":
        return lambda r: r.id
    if name == modified:
        return lambda r: (r.updated_ms, r.id)

    def key(record: _Record) -> Any:
        value = record.props.get(name)
        number = _number(value) if value is not None else None
        return (value is None, number if number is not None else 0.0, (value or "").casefold())

    return key


def _capitalised(email: str) -> str:
    local, _, domain = email.partition("@")
    return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain


def _described_properties(object_type: str) -> list[dict[str, Any]]:
    """Every known property of ``object_type`` as ``GET /crm/v3/properties`` describes it."""
    epoch = "2019-08-06T02:41:08.304Z"
    read_only = READ_ONLY[object_type]
    described = []
    for order, name in enumerate(sorted(PROPERTIES[object_type])):
        label, kind, field_type = _DESCRIPTIONS[name]
        external = name in _EXTERNAL_OPTIONS
        described.append(
            {
                "updatedAt": epoch,
                "createdAt": epoch,
                "name": name,
                "label": label,
                "type": kind,
                "fieldType": field_type,
                "description": "",
                "groupName": _GROUPS[object_type],
                "options": [
                    {
                        "label": option_label,
                        "value": value,
                        "description": "",
                        "displayOrder": position,
                        "hidden": False,
                    }
                    for position, (value, option_label) in enumerate(_OPTIONS.get(name, ()))
                ],
                "displayOrder": order,
                "calculated": False,
                "externalOptions": external,
                "hasUniqueValue": False,
                "hidden": name in _HIDDEN,
                "hubspotDefined": True,
                "modificationMetadata": {
                    "archivable": True,
                    "readOnlyDefinition": True,
                    "readOnlyValue": name in read_only,
                },
                "formField": name not in read_only and not external,
                "dataSensitivity": "non_sensitive",
            }
        )
    return described


def _pipeline() -> dict[str, Any]:
    epoch = "1970-01-01T00:00:00Z"
    return {
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "id": "default",
        "stages": [
            {
                "label": label,
                "displayOrder": order,
                "metadata": {"isClosed": str(stage.startswith("closed")).lower(), "probability": p},
                "id": stage,
                "createdAt": epoch,
                "updatedAt": epoch,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                "archived": False,
            }
            for order, (stage, label, p) in enumerate(DEAL_STAGES)
        ],
        "createdAt": epoch,
        "updatedAt": epoch,
        "archived": False,
    }
