"""The Apptivo connector (``dao/v6`` API): customers, contacts and opportunities.

Public entry points: :class:`ApptivoConnector`, :class:`ApptivoSettings`,
:func:`classify_apptivo`.

How it talks to Apptivo (facts: section 4 of
``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md``; [U] marks what no source
verified, chosen here and emulated the same way by the sandbox):

* One URL per app below ``base_url`` (``https://api.apptivo.com/app/dao/v6``): ``contacts``,
  ``customers``, ``opportunities``; the operation in ``a=``; ``apiKey`` and ``accessKey`` on
  every request's query string; record JSON in a form field (``contactData=...``) of a POST.
* Failures arrive as HTTP 200 with ``"status":"FAILURE"`` and a ``message`` [V]; refused keys
  are one of them (the message naming the key [U]), turned into an AuthError naming
  ``systems.<name>.api_key``/``access_key``. Other failures of a write reject that record.
* Dates are the account's display format and time zone (``date_format``, ``datetime_format``,
  ``timezone``, explicit settings); ``lastUpdateDate`` has whole seconds, so
  ``modified_precision`` is a second.
* Reads: ``a=getAll`` sorted ``sortColumn=lastUpdateDate&sortDir=asc`` [U: the column name],
  then ``a=getAllByAdvancedSearch`` with ``searchData={"lastUpdateDateFrom": <stamp>}`` [U:
  no source shows a date-range key] from the newest second handed out so far, dropping the ids
  handed out in that second (the page token carries them). The search serves at most 5,000
  rows from one query (``startIndex + numRecords``; facts 4.3 [C]): moving the window's start
  on every page keeps each query's offset at 0 however large the account, and an edit during a
  read brings the record back later instead of shifting offsets past an unread one. Only a
  page wholly inside one second pages by ``startIndex`` within that second.
* Deletes: Apptivo reports none, so the hub sweeps ids (:meth:`ApptivoConnector.list_ids`,
  the same windowed read). Deleting is ``a=delete&<app>Id=`` [U: undocumented].
* Writes: one call per record. ``a=save`` creates; ``a=update`` names the changed attributes
  (``attributeNames``, ``attributeName`` on customers [V]); changed e-mails or addresses are
  sent as the whole collection, read first with ``getById``, with ``isEmailAddressUpdate`` /
  ``isAddressUpdate`` [V]. ``None`` clears a field (sent as ``""``). The created or updated
  record is read from whichever envelope the app uses (top level, ``data``,
  ``responseObject``, ``customer``) [V]. ``salesStageId`` is left to Apptivo to resolve from
  ``salesStageName`` [U]: stage names are the tenant's (``getConfigData``).
* Limits: none published; clients throttle themselves (facts 4.7), so ``rate_limit`` defaults
  to 2 requests a second. A 429 (with ``Retry-After``) is waited out [U].
* Not covered: a deal's contact (``opportunityContactId`` holds one contact where the hub keeps
  a list), custom attributes, labels, ``userName`` impersonation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Final

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.apptivo.wire import (
    APPS,
    COLLECTIONS,
    App,
    DisplayFormats,
    app_for,
    expand,
    flatten,
)
from connectors.base import (
    Capabilities,
    Page,
    RemoteRecord,
    VendorFields,
    WriteResult,
    validated_settings,
)
from connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    RecordRejected,
    VendorError,
    credentials_refused,
    setting_path,
)
from connectors.http import HttpClient, HttpSettings, body_excerpt, default_classifier
from connectors.paging import pack_token, unpack_token
from connectors.ratelimit import RateLimiter

__all__ = ["DEFAULT_BASE_URL", "SEARCH_WINDOW", "ApptivoConnector", "ApptivoSettings"]

DEFAULT_BASE_URL: Final = "https://api.apptivo.com/app/dao/v6"
SEARCH_WINDOW: Final = 5000  # rows one query serves, startIndex + numRecords (facts 4.3)
MAX_BATCH: Final = 50  # records per create/update/delete call of the hub (sent one by one)
_TOKEN_KIND: Final = "apptivo/1"  # noqa: S105 - a page-token format, not a secret
_STAMP: Final = "lastUpdateDate"
_AUTH_WORDS = re.compile(r"api\s*key|access\s*key|authenticat|unauthori", re.IGNORECASE)
_NOT_FOUND_WORDS = re.compile(r"not\s+found|does\s+not\s+exist|no\s+such", re.IGNORECASE)
_WINDOW_WORDS = re.compile(r"result window", re.IGNORECASE)


class ApptivoSettings(HttpSettings):
    """Settings of a ``connector: apptivo`` system.

    ``api_key`` and ``access_key`` come from Business Settings → API Access. ``date_format``,
    ``datetime_format`` (``strftime`` patterns) and ``timezone`` must match the display
    preferences of the user the keys belong to: Apptivo writes every date that way.
    ``rate_limit`` (``limits`` syntax) is the client's own budget, shared through
    ``rate_limit_storage``. ``page_size`` is ``numRecords``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr
    access_key: SecretStr
    date_format: str = "%m/%d/%Y"
    datetime_format: str = "%b %d, %Y %I:%M:%S %p"
    timezone: str = "UTC"
    page_size: int = Field(default=250, ge=1, le=SEARCH_WINDOW)
    rate_limit: str = "2/second"
    rate_limit_storage: str = "memory://"

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be the API's http(s) URL, such as " + DEFAULT_BASE_URL)
        return value.rstrip("/")

    @field_validator("api_key", "access_key")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")  # usually an unset ${VAR}
        return value

    @model_validator(mode="after")
    def _formats_read_back(self) -> ApptivoSettings:
        DisplayFormats(self.date_format, self.datetime_format, self.timezone)
        return self

    @property
    def formats(self) -> DisplayFormats:
        return DisplayFormats(self.date_format, self.datetime_format, self.timezone)


def classify_apptivo(response: requests.Response, *, system: str) -> ConnectorError | None:
    """Apptivo's answers in the error taxonomy: plain HTTP first, then the ``FAILURE`` bodies
    of HTTP 200 (see the module docstring)."""
    if response.status_code in (401, 403):
        return _keys_refused(system, f"HTTP {response.status_code}: {body_excerpt(response)}")
    error = default_classifier(response)
    if error is not None or not response.content:
        return error
    try:
        body = response.json()
    except ValueError:
        return None  # the client reports a malformed body as transient
    if not isinstance(body, Mapping) or str(body.get("status", "")).upper() != "FAILURE":
        return None
    message = str(body.get("message") or body.get("responseMessage") or body_excerpt(response))
    if _AUTH_WORDS.search(message):
        return _keys_refused(system, f"HTTP 200 FAILURE: {message}")
    if _WINDOW_WORDS.search(message):
        return VendorError(f"Apptivo refused the page: {message}")
    code = "NOT_FOUND" if _NOT_FOUND_WORDS.search(message) else "FAILURE"
    field = body.get("field")
    return RecordRejected(
        f"Apptivo refused: {message}", code=code, field=str(field) if field else None
    )


def _keys_refused(system: str, vendor_said: str) -> ConnectorError:
    return credentials_refused(
        "the API key pair",
        vendor_said,
        "create a new pair in Apptivo (Business Settings → API Access) and set "
        f"{setting_path(system, 'api_key')} and {setting_path(system, 'access_key')}",
    )


def _unwrap(app: App, body: Any) -> Mapping[str, Any] | None:
    """The record in a ``save``/``update``/``getById`` answer, whatever its envelope."""
    if not isinstance(body, Mapping):
        return None
    if body.get("id") or body.get(app.id_param):
        return body
    for key in (app.envelope, "data", "responseObject", "customer"):
        inner = body.get(key) if key else None
        if isinstance(inner, Mapping) and (inner.get("id") or inner.get(app.id_param)):
            return inner
    return None


class ApptivoConnector:
    """One Apptivo account (see the module docstring)."""

    settings_model: ClassVar[type[BaseModel]] = ApptivoSettings
    vendor: ClassVar[str] = "apptivo"

    def __init__(
        self,
        system: str,
        settings: ApptivoSettings | Mapping[str, Any],
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.system = system
        settings = validated_settings(ApptivoSettings, settings, system=system, vendor="Apptivo")
        self.settings = settings
        self.formats = settings.formats
        try:
            limiter = RateLimiter(
                settings.rate_limit,
                key=f"apptivo:{settings.base_url}:{settings.api_key.get_secret_value()[:8]}",
                storage_uri=settings.rate_limit_storage,
            )
        except ConnectorConfigError as exc:
            raise ConnectorConfigError(
                f"rate_limit or rate_limit_storage: {exc.message}", system=system
            ) from None
        options: dict[str, Any] = {}
        if sleep is not None:
            options["sleep"] = sleep
        self.http = HttpClient(
            system,
            settings.base_url,
            session=session,
            classifier=partial(classify_apptivo, system=system),
            rate_limiter=limiter,
            timeouts=settings.timeouts,
            **options,
        )
        self.capabilities = Capabilities(
            object_types=frozenset(APPS),
            max_batch=MAX_BATCH,
            detects_deletes=False,  # the hub sweeps ids (list_ids)
            upsert_keys={},
            modified_precision=timedelta(seconds=1),
            read_page_size=settings.page_size,
            records_per_write_request=1,
            rate_windows=limiter.windows,
        )

    def __repr__(self) -> str:
        return f"ApptivoConnector({self.system!r})"

    # ----------------------------------------------------------------- plumbing

    def _call(
        self,
        app: App,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        data: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        query = {
            "a": action,
            **(params or {}),
            "apiKey": self.settings.api_key.get_secret_value(),
            "accessKey": self.settings.access_key.get_secret_value(),
        }
        if data is None:
            response = self.http.get(f"/{app.name}", params=query)
        else:
            form = {name: json.dumps(value, default=str) for name, value in data.items()}
            response = self.http.post(
                f"/{app.name}", params=query, data=form, idempotent=idempotent
            )
        return response.json

    def _record(self, app: App, item: Any, fields: Sequence[str]) -> RemoteRecord:
        if not isinstance(item, Mapping):
            raise VendorError(f"Apptivo sent a {app.name} record that is not an object")
        record_id = item.get(app.id_param) or item.get("id")
        stamp = item.get(_STAMP)
        if not record_id or not isinstance(stamp, str):
            raise VendorError(
                f"Apptivo sent a {app.name} record without {app.id_param} or {_STAMP}",
                system=self.system,
            )
        try:
            modified = self.formats.parse_datetime(stamp)
            flat = flatten(app, item, self.formats)
        except ValueError as exc:
            raise ConnectorConfigError(
                f"Apptivo wrote a {app.name} date the configured formats cannot read ({exc}); "
                f"set {setting_path(self.system, 'datetime_format')} and "
                f"{setting_path(self.system, 'date_format')} to the key owner's display "
                "preferences",
                system=self.system,
            ) from None
        if fields:
            flat = {name: flat[name] for name in fields if name in flat}
        return RemoteRecord(str(record_id), modified, flat)

    # ----------------------------------------------------------------- reads

    def check(self) -> None:
        app = APPS["contacts"]
        self._call(app, "getConfigData", {"objectId": app.object_id})

    def read_changes(
        self,
        object_type: str,
        since: datetime | None,
        page_token: str | None,
        fields: Sequence[str],
    ) -> Page:
        """One page of the windowed read on ``lastUpdateDate`` (see the module docstring)."""
        records, token = self._windowed(app_for(object_type), since, page_token, fields)
        return Page(records, token)

    def read_deletes(
        self, object_type: str, since: datetime | None, page_token: str | None
    ) -> Page:
        """Nothing: Apptivo reports no deletes; the hub sweeps ids with :meth:`list_ids`."""
        app_for(object_type)
        return Page([])

    def list_ids(self, object_type: str, page_token: str | None) -> tuple[list[str], str | None]:
        """One page of the ids of every live record: the full windowed read."""
        records, token = self._windowed(app_for(object_type), None, page_token, [_STAMP])
        return [record.id for record in records], token

    def _windowed(
        self, app: App, since: datetime | None, page_token: str | None, fields: Sequence[str]
    ) -> tuple[list[RemoteRecord], str | None]:
        if page_token:
            state = unpack_token(page_token, kind=_TOKEN_KIND)
            if state.get("o") != app.object_type:
                raise ConnectorConfigError(
                    f"this page token belongs to another Apptivo read ({state.get('o')})",
                    system=self.system,
                )
        else:
            state = {"o": app.object_type, "i": [], "s": 0}
            if since is not None:
                state["k"] = math.floor(since.timestamp())
        key: int | None = state.get("k")
        seen = set(state.get("i") or ())
        skip = int(state.get("s") or 0)
        size = min(self.settings.page_size, SEARCH_WINDOW - skip)
        params: dict[str, Any] = {
            "startIndex": skip,
            "numRecords": size,
            "sortColumn": _STAMP,
            "sortDir": "asc",
            "objectId": app.object_id,
        }
        if key is None:
            body = self._call(app, "getAll", params)
        else:
            stamp = self.formats.format_datetime(datetime.fromtimestamp(key, UTC))
            params["searchData"] = json.dumps({"lastUpdateDateFrom": stamp})
            body = self._call(app, "getAllByAdvancedSearch", params)
        items = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(items, list):
            raise VendorError(f"Apptivo's {app.name} list has no data array", system=self.system)
        wanted = list(dict.fromkeys([*fields, _STAMP])) if fields else []
        records = [self._record(app, item, wanted) for item in items]
        seconds = [math.floor(record.modified_at.timestamp()) for record in records]
        handed = [
            record
            for record, second in zip(records, seconds, strict=True)
            if not (record.id in seen and second == key)
        ]
        total = body.get("countOfRecords")
        served = skip + len(items)
        more = len(items) >= size and (not isinstance(total, int) or served < total)
        if not more:
            return handed, None
        newest = max(seconds)
        at_newest = {r.id for r, second in zip(records, seconds, strict=True) if second == newest}
        if min(seconds) < newest:
            # The usual case: the next window starts at the newest second, at offset 0.
            following = {"o": app.object_type, "k": newest, "s": 0, "i": sorted(at_newest)}
        else:
            # A full page inside one second cannot move the window: page within that second.
            offset = served if newest == key else len(items)
            if offset >= SEARCH_WINDOW:
                raise VendorError(
                    f"more than {SEARCH_WINDOW} Apptivo {app.name} records share the second "
                    f"{datetime.fromtimestamp(newest, UTC).isoformat()}, beyond what one "
                    "search serves",
                    system=self.system,
                )
            ids = at_newest | seen if newest == key else at_newest
            following = {"o": app.object_type, "k": newest, "s": offset, "i": sorted(ids)}
        return handed, pack_token(following, kind=_TOKEN_KIND)

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> list[RemoteRecord]:
        app = app_for(object_type)
        found: list[RemoteRecord] = []
        for record_id in dict.fromkeys(ids):
            stored = self._stored(app, record_id)
            if stored is not None:
                found.append(self._record(app, stored, fields))
        return found

    def _stored(self, app: App, record_id: str) -> Mapping[str, Any] | None:
        try:
            body = self._call(app, "getById", {app.id_param: record_id})
        except RecordRejected as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        return _unwrap(app, body)

    def find(self, object_type: str, field: str, values: Sequence[str]) -> list[RemoteRecord]:
        """Records whose ``field`` equals a value, case-insensitively: Apptivo's text search
        per value (it matches words anywhere), then an exact comparison here."""
        app = app_for(object_type)
        wanted = {value.casefold() for value in values if value}
        found: dict[str, RemoteRecord] = {}
        for value in sorted(wanted):
            start = 0
            while start < SEARCH_WINDOW:
                size = min(self.settings.page_size, SEARCH_WINDOW - start)
                params = {"searchText": value, "startIndex": start, "numRecords": size}
                body = self._call(app, "getAllBySearchText", params)
                items = body.get("data") if isinstance(body, Mapping) else None
                for item in items or []:
                    record = self._record(app, item, [])
                    got = record.fields.get(field)
                    if isinstance(got, str) and got.casefold() in wanted:
                        found[record.id] = record
                total = body.get("countOfRecords") if isinstance(body, Mapping) else None
                start += len(items or [])
                if not items or len(items) < size or (isinstance(total, int) and start >= total):
                    break
        return sorted(found.values(), key=lambda record: (record.modified_at, record.id))

    # ----------------------------------------------------------------- writes

    def create(self, object_type: str, records: Sequence[VendorFields]) -> list[WriteResult]:
        app = app_for(object_type)
        results: list[WriteResult] = []
        for fields in records:
            try:
                data = expand(app, _writable(fields), self.formats)
            except ValueError as exc:
                results.append(_rejected(f"cannot write this record: {exc}", self.system))
                continue
            data = {name: value for name, value in data.items() if value not in ("", [])}
            try:
                body = self._call(
                    app, "save", {"objectId": app.object_id}, data={app.data_param: data}
                )
            except RecordRejected as exc:
                results.append(WriteResult(None, None, exc))
                continue
            results.append(self._written(app, body))
        return results

    def _written(self, app: App, body: Any) -> WriteResult:
        stored = _unwrap(app, body)
        if stored is None:
            raise VendorError(
                f"Apptivo's {app.name} answer holds no record: {str(body)[:200]}",
                system=self.system,
            )
        record = self._record(app, stored, [])
        return WriteResult(record.id, record.modified_at)

    def update(
        self, object_type: str, changes: Sequence[tuple[str, VendorFields]]
    ) -> list[WriteResult]:
        app = app_for(object_type)
        results: list[WriteResult] = []
        for record_id, fields in changes:
            fields = _writable(fields)
            current: Mapping[str, Any] | None = None
            if any(name in COLLECTIONS for name in fields):
                current = self._stored(app, record_id)
                if current is None:
                    results.append(
                        _rejected(f"no {app.name} record {record_id}", self.system, "NOT_FOUND")
                    )
                    continue
            try:
                data = expand(app, fields, self.formats, current)
            except ValueError as exc:
                results.append(_rejected(f"cannot write this change: {exc}", self.system))
                continue
            params: dict[str, Any] = {
                app.id_param: record_id,
                "objectId": app.object_id,
                app.attribute_param: json.dumps(sorted(data)),
            }
            if "emailAddresses" in data:
                params["isEmailAddressUpdate"] = "true"
            if "addresses" in data:
                params["isAddressUpdate"] = "true"
            try:
                body = self._call(
                    app, "update", params, data={app.data_param: data}, idempotent=True
                )
            except RecordRejected as exc:
                results.append(WriteResult(None, None, exc))
                continue
            results.append(self._written(app, body))
        return results

    def delete(self, object_type: str, ids: Sequence[str]) -> list[WriteResult]:
        app = app_for(object_type)
        results: list[WriteResult] = []
        for record_id in ids:
            try:
                self._call(
                    app,
                    "delete",
                    {app.id_param: record_id, "objectId": app.object_id},
                    data={},
                    idempotent=True,
                )
            except RecordRejected as exc:
                results.append(WriteResult(None, None, exc))
                continue
            results.append(WriteResult(record_id))
        return results

    def close(self) -> None:
        self.http.close()


def _writable(fields: VendorFields) -> dict[str, Any]:
    """The fields a write may send: never the id or the stamps Apptivo keeps itself."""
    kept = {"id", _STAMP, "creationDate", "createdBy", "lastUpdatedBy"}
    kept.update(app.id_param for app in APPS.values())
    return {name: value for name, value in fields.items() if name not in kept}


def _rejected(message: str, system: str, code: str = "INVALID") -> WriteResult:
    return WriteResult(None, None, RecordRejected(message, code=code, system=system))
