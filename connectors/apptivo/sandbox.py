"""A local emulator of Apptivo's ``dao/v6`` API for contacts, customers and opportunities.

Public entry points: :class:`ApptivoApi` (the :class:`~connectors.sandbox.VendorApi` that
``crmhub sandbox apptivo`` serves through :class:`~connectors.sandbox.Sandbox`).

What it reproduces (facts: section 4 and the checklist of section 6 of
``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md``; no real Apptivo bodies were
found, so shapes follow the documented request samples and client libraries):

* ``/app/dao/v6/<app>?a=<action>`` for ``contacts``, ``customers`` and ``opportunities``;
  parameters in the query string or a form body alike; record JSON in ``contactData`` /
  ``customerData`` / ``opportunityData``.
* ``apiKey`` + ``accessKey`` on every request; a wrong or revoked pair gets **HTTP 200**
  ``{"status":"FAILURE","message":"Invalid apiKey or accessKey"}``, as every failure does.
* ``getAll`` / ``getAllByAdvancedSearch`` answer ``{"data":[...],"countOfRecords":N}`` paged
  by ``startIndex``/``numRecords`` (50 by default), sorted by ``sortColumn`` (``lastUpdateDate``,
  ``creationDate``; ties by id) and ``sortDir``; no query serves rows past the 5,000th
  (``startIndex + numRecords > 5000`` fails). ``getAllBySearchText`` matches ``searchText``
  anywhere in a record's text, case-insensitively. ``getById`` answers the record at the top
  level; ``getConfigData`` the app's picklists (opportunity sales stages).
* ``save`` and ``update`` answer the record in each app's envelope: contacts at the top level,
  customers in ``customer``, opportunities in ``data``. ``update`` applies only the attributes
  named by ``attributeNames`` (``attributeName`` on customers); a named attribute missing from
  the data is cleared. Dates are written in the account's display format (``%b %d, %Y
  %I:%M:%S %p`` stamps, ``%m/%d/%Y`` days) and time zone (``America/New_York``), stamps to
  the second.

Assumed where no source says ([U] in the facts), and mirrored by the connector: the
``lastUpdateDateFrom`` key of ``searchData`` (records stamped at or after that second),
``a=delete``, the failure messages, and rate limiting: Apptivo publishes no limit, so
``options.rate_limit`` is enforced with HTTP 429, ``Retry-After`` and a ``FAILURE`` body.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final

from connectors.apptivo.wire import APPS, App, DisplayFormats, expand, flatten
from connectors.sampledata import COUNTRY_NAMES, sample_account, typed_phone
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

__all__ = ["ROOT", "SALES_STAGES", "ApptivoApi"]

ROOT: Final = "/app/dao/v6"
WINDOW: Final = 5000
DEFAULT_PAGE: Final = 50
# The stock sales stages of a new account [U]: (id, name), in pipeline order.
SALES_STAGES: Final = (
    (1001, "Prospecting"),
    (1002, "Qualification"),
    (1003, "Needs Analysis"),
    (1004, "Proposal"),
    (1005, "Negotiation"),
    (1006, "Closed Won"),
    (1007, "Closed Lost"),
)
_STAGE_OF_CANONICAL: Final = {
    "prospecting": "Prospecting",
    "qualification": "Qualification",
    "needs_analysis": "Needs Analysis",
    "proposal": "Proposal",
    "negotiation": "Negotiation",
    "closed_won": "Closed Won",
    "closed_lost": "Closed Lost",
}
_REQUIRED: Final = {"contacts": "lastName", "customers": "customerName"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_JITTER_SECONDS: Final = 0.02  # the client's window is a hair longer than ours
_BY_NAME: Final = {app.name: app for app in APPS.values()}


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _failure(message: str, status: int = 200) -> ApiResponse:
    return json_response(status, {"status": "FAILURE", "message": message})


@dataclass(slots=True)
class _Row:
    id: int
    created: datetime
    modified: datetime
    data: dict[str, Any]


def _second(instant: datetime) -> int:
    return math.floor(instant.timestamp())


class ApptivoApi:
    """Apptivo behind ``Sandbox`` (see the module docstring)."""

    vendor: ClassVar[str] = "apptivo"

    def __init__(
        self, options: SandboxOptions | None = None, *, timezone: str = "America/New_York"
    ) -> None:
        self.options = options or SandboxOptions()
        self.formats = DisplayFormats("%m/%d/%Y", "%b %d, %Y %I:%M:%S %p", timezone)
        self.clock = SandboxClock()
        self._lock = threading.RLock()
        self._rows: dict[str, dict[int, _Row]] = {app.name: {} for app in APPS.values()}
        self._ids = itertools.count(35_000_001)
        self.api_key = secrets.token_hex(16)
        self.access_key = secrets.token_hex(16)
        if self.options.rate_limit is not None:
            self.window_limit, self.window_seconds = rate_window(self.options.rate_limit)
            self._requests: RollingWindow | None = RollingWindow(
                self.window_limit, self.window_seconds - _JITTER_SECONDS
            )
        else:
            self.window_limit, self.window_seconds = 0, 1.0
            self._requests = None

    # ----------------------------------------------------------------- VendorApi: setup

    def connector_settings(self, base_url: str) -> dict[str, Any]:
        if self._requests is not None:
            budget = f"{self.window_limit} per {self.window_seconds:g} second"
        else:
            budget = "1000/second"
        return {
            "connector": "apptivo",
            "base_url": base_url + ROOT,
            "api_key": self.api_key,
            "access_key": self.access_key,
            "date_format": self.formats.date_format,
            "datetime_format": self.formats.datetime_format,
            "timezone": str(self.formats.zone),
            "rate_limit": budget,
        }

    def expire_tokens(self) -> None:
        """Nothing expires: Apptivo's key pairs live until they are regenerated."""

    def revoke_credentials(self) -> None:
        """The key pair regenerated in Business Settings → API Access: the old one fails."""
        with self._lock:
            self.api_key = secrets.token_hex(16)
            self.access_key = secrets.token_hex(16)

    def fault_response(self, fault: Fault, request: ApiRequest) -> ApiResponse:
        if fault is Fault.RATE_LIMIT:
            return self._too_many(1.0)
        return _failure("Internal Server Error", 500)

    def _too_many(self, wait: float) -> ApiResponse:
        response = _failure("Too many requests", 429)
        response.headers["Retry-After"] = retry_after(wait)
        return response

    # ----------------------------------------------------------------- VendorApi: the account

    def seed_records(self, contacts: int, seed: int) -> None:
        account = sample_account(contacts, seed)
        stamps = account.stamps(self.clock.now())
        customers: dict[int, int] = {}
        people: dict[int, int] = {}
        with self._lock:
            for company in account.companies:
                rng = random.Random(f"{seed}:apptivo:company:{company.key}")  # noqa: S311
                customers[company.key] = self._store(
                    "customers",
                    {
                        "customerName": company.name,
                        "website": company.website,
                        "industryName": company.industry,
                        "annualRevenue": str(company.annual_revenue),
                        "phoneNumbers": [_phone(typed_phone(company.phone, rng), mobile=False)],
                        "addresses": [_address(company.city, company.country)],
                    },
                    next(stamps),
                )
            for person in account.contacts:
                rng = random.Random(f"{seed}:apptivo:contact:{person.key}")  # noqa: S311
                phones = [_phone(typed_phone(person.phone, rng), mobile=False)]
                if person.mobile:
                    phones.append(_phone(typed_phone(person.mobile, rng), mobile=True))
                data: dict[str, Any] = {
                    "firstName": person.first_name,
                    "lastName": person.last_name,
                    "emailAddresses": [_email(person.email)],
                    "phoneNumbers": phones,
                    "addresses": [_address(person.city, person.country)],
                    "accountId": customers.get(person.company_key, ""),
                }
                if person.job_title:
                    data["jobTitle"] = person.job_title
                people[person.key] = self._store("contacts", data, next(stamps))
            for deal in account.deals:
                stage = _STAGE_OF_CANONICAL[deal.stage]
                self._store(
                    "opportunities",
                    {
                        "opportunityName": deal.name,
                        "amount": str(deal.amount),
                        "currencyCode": deal.currency,
                        "salesStageName": stage,
                        "salesStageId": dict((n, i) for i, n in SALES_STAGES)[stage],
                        "closeDate": self.formats.format_date(deal.close_date),
                        "opportunityCustomerId": customers.get(deal.company_key, ""),
                        "opportunityContactId": people.get(deal.contact_keys[0], ""),
                    },
                    next(stamps),
                )

    def insert(self, object_type: str, fields: Mapping[str, Any]) -> str:
        app = APPS[object_type]
        with self._lock:
            data = expand(app, fields, self.formats)
            return str(self._store(app.name, data, self.clock.now()))

    def modify(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None:
        app = APPS[object_type]
        with self._lock:
            row = self._rows[app.name][int(record_id)]
            row.data.update(expand(app, fields, self.formats, row.data))
            row.modified = self.clock.now()

    def remove(self, object_type: str, record_id: str) -> None:
        with self._lock:
            del self._rows[APPS[object_type].name][int(record_id)]

    def snapshot(self, object_type: str) -> dict[str, dict[str, Any]]:
        """Every record as the connector's flat vendor fields, by id."""
        app = APPS[object_type]
        with self._lock:
            return {
                str(row.id): flatten(app, self._render(app, row), self.formats)
                for row in self._rows[app.name].values()
            }

    def _store(self, name: str, data: dict[str, Any], stamp: datetime) -> int:
        record_id = next(self._ids)
        self._rows[name][record_id] = _Row(record_id, stamp, stamp, data)
        return record_id

    def _render(self, app: App, row: _Row) -> dict[str, Any]:
        return {
            **row.data,
            "id": str(row.id),
            app.id_param: row.id,
            "objectStatus": 0,
            "creationDate": self.formats.format_datetime(row.created),
            "lastUpdateDate": self.formats.format_datetime(row.modified),
        }

    # ----------------------------------------------------------------- HTTP

    def handle(self, request: ApiRequest) -> ApiResponse:
        if self._requests is not None and not self._requests.hit():
            return self._too_many(self._requests.retry_after())
        name = request.path.removeprefix(ROOT + "/").strip("/")
        app = _BY_NAME.get(name) if request.path.startswith(ROOT + "/") else None
        if app is None:
            return ApiResponse(
                404, b"<html><body>Not Found</body></html>", content_type="text/html"
            )
        params = {key: values[0] for key, values in request.query.items() if values}
        if request.method == "POST":
            params.update({key: values[0] for key, values in request.form().items() if values})
        with self._lock:
            if (params.get("apiKey"), params.get("accessKey")) != (self.api_key, self.access_key):
                return _failure("Invalid apiKey or accessKey")
            try:
                return json_response(200, self._act(app, params.get("a", ""), params))
            except _Refused as refusal:
                return _failure(refusal.message)

    def _act(self, app: App, action: str, params: Mapping[str, str]) -> Any:
        if action == "getConfigData":
            return self._config(app)
        if action in ("getAll", "getAllByAdvancedSearch", "getAllBySearchText"):
            return self._list(app, action, params)
        if action == "getById":
            return self._render(app, self._row(app, params))
        if action == "save":
            return self._save(app, params)
        if action == "update":
            return self._update(app, params)
        if action == "delete":
            del self._rows[app.name][self._row(app, params).id]
            return {"status": "SUCCESS", "responseCode": "0"}
        raise _Refused(f"Unknown action: {action or '(none)'}")

    def _config(self, app: App) -> dict[str, Any]:
        config: dict[str, Any] = {
            "phoneTypes": [
                {"code": "PHONE_BUSINESS", "name": "Business"},
                {"code": "PHONE_MOBILE", "name": "Mobile"},
            ],
            "emailTypes": [{"code": "BUSINESS", "name": "Business"}],
        }
        if app.name == "opportunities":
            config["salesStages"] = [{"id": i, "name": n} for i, n in SALES_STAGES]
        return config

    def _row(self, app: App, params: Mapping[str, str]) -> _Row:
        raw = params.get(app.id_param, "")
        row = self._rows[app.name].get(int(raw)) if raw.isdigit() else None
        if row is None:
            raise _Refused(f"{app.name[:-1].capitalize()} not found: {raw}")
        return row

    def _list(self, app: App, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        start = _number(params.get("startIndex"), 0, "startIndex")
        size = _number(params.get("numRecords"), DEFAULT_PAGE, "numRecords")
        if start + size > WINDOW:
            raise _Refused(
                f"Result window is too large: startIndex + numRecords must be at most {WINDOW}"
            )
        rows = list(self._rows[app.name].values())
        if action == "getAllByAdvancedSearch":
            rows = self._searched(rows, params.get("searchData") or "{}")
        elif action == "getAllBySearchText":
            text = (params.get("searchText") or "").casefold()
            rows = [
                row for row in rows if text in json.dumps(row.data, ensure_ascii=False).casefold()
            ]
        column = params.get("sortColumn") or "creationDate"
        if column not in ("lastUpdateDate", "creationDate", "_score"):
            raise _Refused(f"Invalid sortColumn: {column}")
        newest = column == "lastUpdateDate"
        rows.sort(key=lambda row: (_second(row.modified if newest else row.created), row.id))
        if params.get("sortDir", "asc").lower() == "desc":
            rows.reverse()
        page = rows[start : start + size]
        return {"data": [self._render(app, row) for row in page], "countOfRecords": len(rows)}

    def _searched(self, rows: list[_Row], search_data: str) -> list[_Row]:
        try:
            criteria = json.loads(search_data)
        except ValueError:
            raise _Refused("Invalid searchData") from None
        if not isinstance(criteria, dict):
            raise _Refused("Invalid searchData")
        since = criteria.get("lastUpdateDateFrom")
        if since:
            try:
                floor = _second(self.formats.parse_datetime(str(since)))
            except ValueError:
                raise _Refused(f"Invalid date: {since}") from None
            rows = [row for row in rows if _second(row.modified) >= floor]
        return rows

    def _data(self, app: App, params: Mapping[str, str]) -> dict[str, Any]:
        try:
            data = json.loads(params.get(app.data_param) or "")
        except ValueError:
            raise _Refused(f"Invalid {app.data_param}") from None
        if not isinstance(data, dict):
            raise _Refused(f"Invalid {app.data_param}")
        return data

    def _checked(self, app: App, data: dict[str, Any]) -> dict[str, Any]:
        required = _REQUIRED.get(app.name)
        if required and not str(data.get(required) or "").strip():
            raise _Refused(f"{required} is required")
        if app.name == "opportunities":
            if not str(data.get("opportunityName") or "").strip():
                raise _Refused("opportunityName is required")
            stage = data.get("salesStageName")
            stages = {n: i for i, n in SALES_STAGES}
            if stage:
                if stage not in stages:
                    raise _Refused(f"Invalid salesStageName: {stage}")
                data["salesStageId"] = stages[stage]
            close = data.get("closeDate")
            if close:
                try:
                    self.formats.parse_date(str(close))
                except ValueError:
                    raise _Refused(f"Invalid closeDate: {close}") from None
        for entry in data.get("emailAddresses") or []:
            address = str(entry.get("emailAddress") or "")
            if not _EMAIL.match(address):
                raise _Refused(f"Invalid email address: {address}")
        for name in ("accountId", "opportunityCustomerId"):
            self._reference(data, name, "customers")
        self._reference(data, "opportunityContactId", "contacts")
        return data

    def _reference(self, data: Mapping[str, Any], name: str, target: str) -> None:
        value = data.get(name)
        if value in (None, ""):
            return
        if not str(value).isdigit() or int(value) not in self._rows[target]:
            raise _Refused(f"Invalid {name}: {value}")

    def _answer(self, app: App, row: _Row) -> dict[str, Any]:
        record = self._render(app, row)
        return {app.envelope: record} if app.envelope else record

    def _save(self, app: App, params: Mapping[str, str]) -> dict[str, Any]:
        data = self._checked(app, self._data(app, params))
        for name in ("id", app.id_param, "creationDate", "lastUpdateDate"):
            data.pop(name, None)
        record_id = self._store(app.name, data, self.clock.now())
        return self._answer(app, self._rows[app.name][record_id])

    def _update(self, app: App, params: Mapping[str, str]) -> dict[str, Any]:
        row = self._row(app, params)
        raw = params.get(app.attribute_param)
        try:
            names = json.loads(raw) if raw else None
        except ValueError:
            names = None
        if not isinstance(names, list) or not names:
            raise _Refused(f"{app.attribute_param} is required")
        data = self._data(app, params)
        changed = {**row.data, **{str(n): data.get(str(n), "") for n in names}}
        row.data = self._checked(app, changed)
        row.modified = self.clock.now()
        return self._answer(app, row)


def _number(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise _Refused(f"Invalid {name}: {raw}")
    return int(raw)


def _phone(number: str, *, mobile: bool) -> dict[str, str]:
    if mobile:
        return {"phoneNumber": number, "phoneTypeCode": "PHONE_MOBILE", "phoneType": "Mobile"}
    return {"phoneNumber": number, "phoneTypeCode": "PHONE_BUSINESS", "phoneType": "Business"}


def _email(address: str) -> dict[str, str]:
    return {"emailAddress": address, "emailTypeCode": "BUSINESS", "emailType": "Business"}


def _address(city: str, country: str) -> dict[str, str]:
    return {
        "addressTypeCode": "1",
        "addressType": "Billing Address",
        "city": city,
        "countryCode": country,
        "countryName": COUNTRY_NAMES.get(country, country),
    }
