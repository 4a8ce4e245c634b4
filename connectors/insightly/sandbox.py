"""A local emulator of Insightly's API v3.1 (Organisations, Contacts, Opportunities).

Public entry points: :class:`InsightlyApi` (the :class:`~connectors.sandbox.VendorApi` served by
``crmhub sandbox insightly``), :data:`PIPELINE_STAGES`.

What it models (facts: ``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md`` §3, §6;
where they are unverified, the choices of :mod:`connectors.insightly.connector`):

* Paths below ``/v3.1`` (the pod's API URL): ``GET /Instance``; per object
  (``Organisations``, ``Contacts``, ``Opportunities``) ``GET /<Object>`` and
  ``GET /<Object>/Search`` (``field_name``/``field_value``, ``updated_after_utc``), both with
  ``brief``, ``skip``, ``top`` (default 100, above 500 a 400) and ``count_total`` (the total in
  ``X-Total-Count``), answering bare JSON arrays in id order; ``GET``/``DELETE
  /<Object>/{id}`` (202 Accepted, 404 when missing); ``POST /<Object>`` (200 with the record;
  an id in the body is ignored); ``PUT /<Object>`` with the id field, a partial update where
  ``null`` clears; ``PUT /Opportunities/{id}/PipelineStage`` and ``/Pipeline``;
  ``GET /Pipelines`` and ``GET /PipelineStages``.
* Auth: HTTP Basic with the API key as the user name, with or without the ``:`` and empty
  password; anything else is 401. ``revoke_credentials`` replaces the key.
* Records: upper-case fields, integer ids, ``DATE_CREATED_UTC``/``DATE_UPDATED_UTC`` as
  ``YYYY-MM-DD HH:MM:SS`` in UTC (whole seconds), every write stamping the update time;
  ``brief=true`` leaves out the sub-collections (``CUSTOMFIELDS``, ``TAGS``, ``LINKS``, ...).
  ``updated_after_utc`` is exclusive and compared to the second; it takes ``...Z`` ISO or
  ``YYYY-MM-DD HH:MM:SS``. Search matches ``field_value`` whole, ignoring case.
* Opportunities: ``OPPORTUNITY_VALUE`` computed from ``BID_AMOUNT``, ``BID_TYPE`` and
  ``BID_DURATION``; ``PIPELINE_ID``, ``STAGE_ID`` and ``OPPORTUNITY_VALUE`` ignored in PUT
  (read-only), accepted in POST; ``OPPORTUNITY_STATE`` one of Open, Won, Lost, Abandoned,
  Suspended in any case, stored upper case. One pipeline, "Sales", with :data:`PIPELINE_STAGES`.
  Seeded opportunities carry ``LINKS`` to their contacts.
* Validation (400 ``{"Message"}``): a contact's malformed ``EMAIL_ADDRESS``, a missing name, an
  ``ORGANISATION_ID`` or stage that does not exist, a non-numeric ``BID_AMOUNT``, a malformed
  body.
* Limits: 10 requests a second (``options.rate_limit`` instead) in a rolling window and a daily
  cap (:data:`DAILY_LIMIT`); over either, 429 with ``Retry-After``. Every answer past auth
  carries ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining`` for the day.
* Faults: a 500 ``{"Message": "An error has occurred."}``, a 429 as above.

``insert``/``modify``/``remove``/``snapshot`` take and give records as the connector shows them
(:func:`connectors.insightly.wire.present_record`: ids as text, the ``STAGE`` pseudo-field).
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

from connectors.insightly.wire import (
    CLOSED_STATES,
    MAX_TOP,
    OBJECTS,
    STAGE_FIELD,
    error_body,
    format_insightly_datetime,
    present_record,
    wire_fields,
)
from connectors.sampledata import sample_account, typed_country, typed_phone
from connectors.sandbox import (
    ApiRequest,
    ApiResponse,
    Fault,
    RollingWindow,
    SandboxClock,
    SandboxOptions,
    json_response,
    rate_window,
    retry_after,
)
from connectors.timeparse import parse_vendor_datetime

__all__ = ["DAILY_LIMIT", "PIPELINE_STAGES", "InsightlyApi"]

API_ROOT: Final = "/v3.1"
PER_SECOND: Final = 10
DAILY_LIMIT: Final = 100_000  # the Enterprise plan's requests a day
DEFAULT_TOP: Final = 100
PIPELINE_ID: Final = 500001
PIPELINE_STAGES: Final[Mapping[int, str]] = {
    600001: "Prospecting",
    600002: "Qualification",
    600003: "Needs Analysis",
    600004: "Proposal",
    600005: "Negotiation",
}
_SEED_STAGES: Final[Mapping[str, int]] = dict(
    zip(
        ("prospecting", "qualification", "needs_analysis", "proposal", "negotiation"),
        PIPELINE_STAGES,
        strict=True,
    )
)
_SEED_STATES: Final = {"closed_won": "WON", "closed_lost": "LOST"}
_STATES: Final = CLOSED_STATES | {"OPEN"}
_FIRST_ID: Final = {"companies": 110000001, "contacts": 210000001, "deals": 310000001}
_BY_PATH: Final = {kind.path: object_type for object_type, kind in OBJECTS.items()}
_NAME_FIELD: Final = {"companies": "ORGANISATION_NAME", "deals": "OPPORTUNITY_NAME"}
_SUB_COLLECTIONS: Final = ("CUSTOMFIELDS", "TAGS", "DATES", "EMAILDOMAINS", "LINKS")
_PUT_READ_ONLY: Final = frozenset({"PIPELINE_ID", "STAGE_ID", "OPPORTUNITY_VALUE"})
_STAMPS: Final = frozenset({"DATE_CREATED_UTC", "DATE_UPDATED_UTC"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# BID_TYPE → whether the bid is per period (multiplied by BID_DURATION).
_PERIODS: Final[Mapping[str, bool]] = {
    "Fixed Bid": False,
    "Per Hour": True,
    "Per Day": True,
    "Per Week": True,
    "Per Month": True,
    "Per Year": True,
}
_USER_ID: Final = 1700001


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class InsightlyApi:
    """An Insightly instance behind ``Sandbox`` (see the module docstring)."""

    vendor: ClassVar[str] = "insightly"

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.clock = SandboxClock()
        self._lock = threading.RLock()
        self._records: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in OBJECTS}
        self._next_id = dict(_FIRST_ID)
        self.api_key = self._new_key()
        if self.options.rate_limit is None:
            self.window_limit, self.window_seconds = PER_SECOND, 1.0
        else:
            self.window_limit, self.window_seconds = rate_window(self.options.rate_limit)
        self._window = RollingWindow(self.window_limit, self.window_seconds)
        self.daily_limit = DAILY_LIMIT
        self._day = ""
        self._spent_today = 0

    @staticmethod
    def _new_key() -> str:
        return secrets.token_hex(4) + "-" + secrets.token_hex(16)

    # ----------------------------------------------------------------- VendorApi: setup

    def connector_settings(self, base_url: str) -> dict[str, Any]:
        # One below the window when there is room: the client's clock and ours never line up.
        budget = max(self.window_limit - 1, 1) if self.window_limit > 2 else self.window_limit
        return {
            "connector": "insightly",
            "base_url": f"{base_url}{API_ROOT}",
            "api_key": self.api_key,
            "rate_limit": f"{budget} per {self.window_seconds:g} second",
        }

    def expire_tokens(self) -> None:
        """Insightly's API keys do not expire: nothing to do."""

    def revoke_credentials(self) -> None:
        """The user generated a new API key (User Settings): the old one gets 401."""
        with self._lock:
            self.api_key = self._new_key()

    def fault_response(self, fault: Fault, request: ApiRequest) -> ApiResponse:
        if fault is Fault.RATE_LIMIT:
            return self._too_many(1.0)
        return json_response(500, error_body("An error has occurred."))

    def seed_records(self, contacts: int, seed: int) -> None:
        account = sample_account(contacts, seed)
        stamps = account.stamps(self.clock.now())
        companies: dict[int, int] = {}
        people: dict[int, int] = {}
        with self._lock:
            for company in account.companies:
                rng = random.Random(f"{seed}:insightly:company:{company.key}")  # noqa: S311
                companies[company.key] = self._store(
                    "companies",
                    {
                        "ORGANISATION_NAME": company.name,
                        "PHONE": typed_phone(company.phone, rng),
                        "WEBSITE": company.website if rng.random() < 0.7 else company.domain,
                        "ADDRESS_BILLING_CITY": company.city,
                        "ADDRESS_BILLING_COUNTRY": typed_country(company.country, rng),
                        "EMAILDOMAINS": [{"EMAIL_DOMAIN": company.domain}],
                    },
                    next(stamps),
                )
            for person in account.contacts:
                rng = random.Random(f"{seed}:insightly:contact:{person.key}")  # noqa: S311
                people[person.key] = self._store(
                    "contacts",
                    {
                        "FIRST_NAME": person.first_name,
                        "LAST_NAME": person.last_name,
                        "EMAIL_ADDRESS": person.email,
                        "PHONE": typed_phone(person.phone, rng),
                        "PHONE_MOBILE": typed_phone(person.mobile, rng) if person.mobile else None,
                        "TITLE": person.job_title,
                        "ORGANISATION_ID": companies.get(person.company_key),
                        "ADDRESS_MAIL_CITY": person.city,
                        "ADDRESS_MAIL_COUNTRY": typed_country(person.country, rng),
                    },
                    next(stamps),
                )
            for deal in account.deals:
                stage = _SEED_STAGES.get(deal.stage)
                record_id = self._store(
                    "deals",
                    {
                        "OPPORTUNITY_NAME": deal.name,
                        "BID_AMOUNT": int(deal.amount),
                        "BID_CURRENCY": deal.currency,
                        "BID_TYPE": "Fixed Bid",
                        "OPPORTUNITY_STATE": _SEED_STATES.get(deal.stage, "OPEN"),
                        "FORECAST_CLOSE_DATE": f"{deal.close_date.isoformat()} 00:00:00",
                        "ORGANISATION_ID": companies.get(deal.company_key),
                        "PIPELINE_ID": PIPELINE_ID if stage else None,
                        "STAGE_ID": stage,
                    },
                    next(stamps),
                )
                self._records["deals"][record_id]["LINKS"] = [
                    _link("Opportunity", record_id, "Contact", people[key], n)
                    for n, key in enumerate(deal.contact_keys)
                    if key in people
                ]

    # ----------------------------------------------------------------- VendorApi: the UI

    def insert(self, object_type: str, fields: Mapping[str, Any]) -> str:
        with self._lock:
            stored = self._from_shown(object_type, fields)
            if object_type == "deals":
                stored.setdefault("OPPORTUNITY_STATE", "OPEN")
            return str(self._store(object_type, stored, self.clock.now()))

    def modify(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None:
        with self._lock:
            record = self._records[object_type][int(record_id)]
            record.update(self._from_shown(object_type, fields))
            self._touch(object_type, record)

    def remove(self, object_type: str, record_id: str) -> None:
        with self._lock:
            del self._records[object_type][int(record_id)]

    def snapshot(self, object_type: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                str(record_id): present_record(object_type, record, PIPELINE_STAGES.get)
                for record_id, record in self._records[object_type].items()
            }

    def _from_shown(self, object_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Fields as the connector shows them (STAGE included), as this account stores them."""
        stored = self._normalized(object_type, wire_fields(object_type, fields))
        stage = fields.get(STAGE_FIELD) if object_type == "deals" else None
        if stage is not None:
            if str(stage).upper() in CLOSED_STATES:
                stored["OPPORTUNITY_STATE"] = str(stage).upper()
            else:
                by_name = {name.casefold(): i for i, name in PIPELINE_STAGES.items()}
                stored.update(
                    OPPORTUNITY_STATE="OPEN",
                    PIPELINE_ID=PIPELINE_ID,
                    STAGE_ID=by_name[str(stage).casefold()],
                )
        return stored

    # ----------------------------------------------------------------- requests

    def handle(self, request: ApiRequest) -> ApiResponse:
        if not self._authorized(request):
            return json_response(401, error_body("Authorization has been denied for this request."))
        budget = self._spend()
        if budget is not None:
            return budget
        try:
            status, payload, extra = self._route(request)
        except _Refused as refused:
            return self._with_limits(json_response(refused.status, error_body(refused.message)))
        if status == 202:
            return self._with_limits(ApiResponse(202, b"", content_type="text/plain"))
        return self._with_limits(json_response(status, payload, extra))

    def _authorized(self, request: ApiRequest) -> bool:
        header = request.header("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        # Both the documented "key:" and the bare key that older clients send are accepted.
        user, _, password = decoded.partition(":")
        with self._lock:
            return secrets.compare_digest(user, self.api_key) and password == ""

    def _spend(self) -> ApiResponse | None:
        with self._lock:
            today = self.clock.now().date().isoformat()
            if today != self._day:
                self._day, self._spent_today = today, 0
            if self._spent_today >= self.daily_limit:
                now = self.clock.now()
                midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
                return self._too_many((midnight.replace(tzinfo=UTC) - now).total_seconds())
            if not self._window.hit():
                return self._too_many(self._window.retry_after())
            self._spent_today += 1
        return None

    def _limit_headers(self) -> dict[str, str]:
        with self._lock:
            left = max(self.daily_limit - self._spent_today, 0)
        return {"X-RateLimit-Limit": str(self.daily_limit), "X-RateLimit-Remaining": str(left)}

    def _with_limits(self, response: ApiResponse) -> ApiResponse:
        response.headers.update(self._limit_headers())
        return response

    def _too_many(self, wait: float) -> ApiResponse:
        headers = {"Retry-After": retry_after(wait), **self._limit_headers()}
        return json_response(429, error_body("API user limit reached."), headers)

    def _route(self, request: ApiRequest) -> tuple[int, Any, dict[str, str] | None]:
        if not request.path.startswith(API_ROOT + "/"):
            raise _Refused(404, "No HTTP resource was found that matches the request URI.")
        parts = request.path[len(API_ROOT) + 1 :].strip("/").split("/")
        method = request.method
        if parts == ["Instance"] and method == "GET":
            return 200, self._instance(), None
        if parts == ["Pipelines"] and method == "GET":
            return 200, [_pipeline()], None
        if parts == ["PipelineStages"] and method == "GET":
            return 200, _stages(), None
        object_type = _BY_PATH.get(parts[0])
        if object_type is None:
            raise _Refused(404, "No HTTP resource was found that matches the request URI.")
        rest = parts[1:]
        with self._lock:
            if not rest and method == "GET":
                return self._list(object_type, request, None)
            if rest == ["Search"] and method == "GET":
                return self._list(object_type, request, self._search_filter(request))
            if not rest and method == "POST":
                return 200, self._create(object_type, _body(request)), None
            if not rest and method == "PUT":
                return 200, self._update(object_type, _body(request)), None
            if len(rest) == 1 and rest[0].isdigit():
                record = self._find(object_type, int(rest[0]))
                if method == "GET":
                    return 200, _shown(record, _flag(request, "brief")), None
                if method == "DELETE":
                    del self._records[object_type][int(rest[0])]
                    return 202, None, None
            if (
                object_type == "deals"
                and method == "PUT"
                and len(rest) == 2
                and rest[0].isdigit()
                and rest[1] in ("PipelineStage", "Pipeline")
            ):
                record = self._find(object_type, int(rest[0]))
                return 200, self._change_stage(record, rest[1], _body(request)), None
        raise _Refused(405, f"The requested resource does not support http method '{method}'.")

    def _instance(self) -> dict[str, Any]:
        return {
            "INSTANCE_NAME": "crmhub sandbox",
            "INSTANCE_SUBDOMAIN": "crmhub-sandbox",
            "PLAN_NAME": "Enterprise",
            "NEW_USER_EXPERIENCE_ENABLED": True,
        }

    def _find(self, object_type: str, record_id: int) -> dict[str, Any]:
        record = self._records[object_type].get(record_id)
        if record is None:
            raise _Refused(404, f"{OBJECTS[object_type].name} not found.")
        return record

    # ----------------------------------------------------------------- lists

    def _search_filter(self, request: ApiRequest) -> Any:
        after_text = request.arg("updated_after_utc")
        name, value = request.arg("field_name"), request.arg("field_value")
        after: datetime | None = None
        if after_text:
            try:
                after = parse_vendor_datetime(after_text).replace(microsecond=0)
            except ValueError:
                raise _Refused(400, f"Invalid updated_after_utc: {after_text}") from None
        if (name is None) != (value is None):
            raise _Refused(400, "field_name and field_value must be given together.")

        def matches(record: Mapping[str, Any]) -> bool:
            if after is not None:
                stamp = parse_vendor_datetime(str(record["DATE_UPDATED_UTC"]))
                if stamp <= after:
                    return False
            if name is not None and value is not None:
                held = record.get(name)
                return held is not None and str(held).casefold() == value.casefold()
            return True

        return matches

    def _list(
        self, object_type: str, request: ApiRequest, matches: Any
    ) -> tuple[int, Any, dict[str, str] | None]:
        try:
            skip = int(request.arg("skip") or 0)
            top = int(request.arg("top") or DEFAULT_TOP)
        except ValueError:
            raise _Refused(400, "skip and top must be whole numbers.") from None
        if skip < 0 or top < 1 or top > MAX_TOP:
            raise _Refused(400, f"top must be between 1 and {MAX_TOP}, skip 0 or more.")
        rows = [
            record
            for _, record in sorted(self._records[object_type].items())
            if matches is None or matches(record)
        ]
        brief = _flag(request, "brief")
        page = [_shown(record, brief) for record in rows[skip : skip + top]]
        headers = {"X-Total-Count": str(len(rows))} if _flag(request, "count_total") else None
        return 200, page, headers

    # ----------------------------------------------------------------- writes

    def _create(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in body.items() if k != OBJECTS[object_type].id_field}
        if object_type == "deals":
            fields.setdefault("OPPORTUNITY_STATE", "OPEN")
        self._validate(object_type, fields, creating=True)
        record_id = self._store(object_type, fields, self.clock.now())
        return _shown(self._records[object_type][record_id], brief=False)

    def _update(self, object_type: str, body: Any) -> dict[str, Any]:
        id_field = OBJECTS[object_type].id_field
        try:
            record_id = int(body[id_field])
        except (KeyError, TypeError, ValueError):
            raise _Refused(400, f"{id_field} is required.") from None
        record = self._find(object_type, record_id)
        changes = {
            k: v
            for k, v in body.items()
            if k != id_field and k not in _STAMPS and k not in _PUT_READ_ONLY
        }
        merged = {**record, **changes}
        self._validate(object_type, merged, creating=False)
        record.update(self._normalized(object_type, changes))
        self._touch(object_type, record)
        return _shown(record, brief=False)

    def _change_stage(self, record: dict[str, Any], endpoint: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise _Refused(400, "The request is invalid.")
        change = body.get("PIPELINE_STAGE_CHANGE") if endpoint == "Pipeline" else body
        stage_id = change.get("STAGE_ID") if isinstance(change, Mapping) else None
        pipeline_id = body.get("PIPELINE_ID") if endpoint == "Pipeline" else record["PIPELINE_ID"]
        if pipeline_id != PIPELINE_ID:
            raise _Refused(400, f"Invalid PIPELINE_ID: {pipeline_id}")
        if stage_id not in PIPELINE_STAGES:
            raise _Refused(400, f"Invalid STAGE_ID: {stage_id}")
        record["PIPELINE_ID"], record["STAGE_ID"] = pipeline_id, stage_id
        self._touch("deals", record)
        return _shown(record, brief=False)

    def _validate(self, object_type: str, fields: Mapping[str, Any], *, creating: bool) -> None:
        name_field = _NAME_FIELD.get(object_type)
        if name_field is not None and not str(fields.get(name_field) or "").strip():
            raise _Refused(400, f"{name_field} is required.")
        if object_type == "contacts":
            if not (fields.get("FIRST_NAME") or fields.get("LAST_NAME")):
                raise _Refused(400, "FIRST_NAME or LAST_NAME is required.")
            email = fields.get("EMAIL_ADDRESS")
            if email and not _EMAIL.match(str(email)):
                raise _Refused(400, f"EMAIL_ADDRESS '{email}' is not a valid email address.")
        organisation = fields.get("ORGANISATION_ID")
        if organisation is not None and (
            not isinstance(organisation, int) or organisation not in self._records["companies"]
        ):
            raise _Refused(400, f"Invalid ORGANISATION_ID: {organisation}")
        if object_type == "deals":
            state = str(fields.get("OPPORTUNITY_STATE") or "").upper()
            if state not in _STATES:
                raise _Refused(400, f"Invalid OPPORTUNITY_STATE: {fields.get('OPPORTUNITY_STATE')}")
            amount = fields.get("BID_AMOUNT")
            if amount is not None and (isinstance(amount, bool) or not _numeric(amount)):
                raise _Refused(400, f"Invalid BID_AMOUNT: {amount}")
            if fields.get("BID_TYPE") is not None and fields["BID_TYPE"] not in _PERIODS:
                raise _Refused(400, f"Invalid BID_TYPE: {fields['BID_TYPE']}")
            if creating and fields.get("STAGE_ID") is not None:
                if fields.get("PIPELINE_ID") != PIPELINE_ID:
                    raise _Refused(400, f"Invalid PIPELINE_ID: {fields.get('PIPELINE_ID')}")
                if fields["STAGE_ID"] not in PIPELINE_STAGES:
                    raise _Refused(400, f"Invalid STAGE_ID: {fields['STAGE_ID']}")

    def _normalized(self, object_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        stored = dict(fields)
        if object_type == "deals" and stored.get("OPPORTUNITY_STATE") is not None:
            stored["OPPORTUNITY_STATE"] = str(stored["OPPORTUNITY_STATE"]).upper()
        return stored

    def _store(self, object_type: str, fields: Mapping[str, Any], stamp: datetime) -> int:
        record_id = self._next_id[object_type]
        self._next_id[object_type] += 1
        when = format_insightly_datetime(stamp)
        record: dict[str, Any] = {OBJECTS[object_type].id_field: record_id}
        record.update({k: v for k, v in self._normalized(object_type, fields).items()})
        record.update(
            OWNER_USER_ID=_USER_ID,
            DATE_CREATED_UTC=when,
            DATE_UPDATED_UTC=when,
            VISIBLE_TO="EVERYONE",
        )
        for collection in _SUB_COLLECTIONS:
            record.setdefault(collection, [])
        if object_type == "deals":
            _value_of(record)
        self._records[object_type][record_id] = record
        return record_id

    def _touch(self, object_type: str, record: dict[str, Any]) -> None:
        if object_type == "deals":
            _value_of(record)
        record["DATE_UPDATED_UTC"] = format_insightly_datetime(self.clock.now())


# --------------------------------------------------------------------------------------------
# Helpers


def _body(request: ApiRequest) -> Any:
    try:
        body = request.json()
    except ValueError:
        raise _Refused(400, "The request is invalid.") from None
    if not isinstance(body, dict):
        raise _Refused(400, "The request is invalid.")
    return body


def _flag(request: ApiRequest, name: str) -> bool:
    return (request.arg(name) or "").lower() == "true"


def _shown(record: Mapping[str, Any], brief: bool) -> dict[str, Any]:
    shown = json.loads(json.dumps(record))
    if brief:
        for collection in _SUB_COLLECTIONS:
            shown.pop(collection, None)
    return dict(shown)


def _numeric(value: Any) -> bool:
    try:
        Decimal(str(value))
    except InvalidOperation:
        return False
    return isinstance(value, int | float)


def _value_of(record: dict[str, Any]) -> None:
    """OPPORTUNITY_VALUE as Insightly computes it: the bid, times the duration per period."""
    amount = record.get("BID_AMOUNT")
    if amount is None:
        record["OPPORTUNITY_VALUE"] = None
        return
    periodic = _PERIODS.get(str(record.get("BID_TYPE") or "Fixed Bid"), False)
    duration = record.get("BID_DURATION") or 1
    record["OPPORTUNITY_VALUE"] = amount * duration if periodic else amount


def _link(
    object_name: str, object_id: int, linked_name: str, linked_id: int, n: int
) -> dict[str, Any]:
    return {
        "LINK_ID": object_id * 10 + n,
        "OBJECT_NAME": object_name,
        "OBJECT_ID": object_id,
        "LINK_OBJECT_NAME": linked_name,
        "LINK_OBJECT_ID": linked_id,
        "ROLE": None,
        "DETAILS": None,
        "RELATIONSHIP_ID": None,
        "IS_FORWARD": None,
    }


def _pipeline() -> dict[str, Any]:
    return {
        "PIPELINE_ID": PIPELINE_ID,
        "PIPELINE_NAME": "Sales",
        "FOR_OPPORTUNITIES": True,
        "FOR_PROJECTS": False,
        "OWNER_USER_ID": _USER_ID,
    }


def _stages() -> list[dict[str, Any]]:
    return [
        {
            "STAGE_ID": stage_id,
            "PIPELINE_ID": PIPELINE_ID,
            "STAGE_NAME": name,
            "STAGE_ORDER": order,
            "ACTIVITYSET_ID": None,
            "OWNER_USER_ID": _USER_ID,
        }
        for order, (stage_id, name) in enumerate(PIPELINE_STAGES.items(), start=1)
    ]
