"""The Insightly connector (API v3.1): Organisations, Contacts, Opportunities.

Public entry points: :class:`InsightlyConnector` (also ``list_ids``, the
:class:`~connectors.base.SweepsIds` protocol, and ``headroom``, the
:class:`~connectors.base.ReportsHeadroom` one), :class:`InsightlySettings` and
:func:`classify_insightly`.

How it talks to Insightly (facts: ``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md``
section 3; [V] verified, [C] corroborated, [U] assumed here):

* Auth: HTTP Basic with the API key as the user name and an empty password, against the pod's
  ``base_url`` (``https://api.<pod>.insightly.com/v3.1``, shown under the key in User
  Settings). A 401 is final (a key cannot be renewed): an AuthError naming
  ``systems.<name>.api_key`` and ``base_url`` (a wrong pod also answers 401). ``check`` calls
  ``GET /Instance``.
* Reads: ``GET /<Object>?brief=true&skip=&top=`` (everything) or ``GET
  /<Object>/Search?updated_after_utc=&brief=true&skip=&top=`` (changes): bare JSON arrays in
  record-id order, ``top`` at most 500. Offsets drift when a record before the offset is
  deleted mid-read, so each page starts one row early, on the last row handed out: rows up to
  that id are dropped, and a page that no longer reaches back to it (more rows vanished) is
  asked again from one page earlier. An edit mid-read cannot reorder rows (the order is by id).
  ``updated_after_utc`` is exclusive and whole-second [C] (Airbyte subtracts a second), so a
  read since ``t`` asks for after ``floor(t) - 1 s``; ``DATE_UPDATED_UTC`` is
  ``YYYY-MM-DD HH:MM:SS`` in UTC, so ``modified_precision`` is one second.
* Deletes: Insightly reports none [C]; ``read_deletes`` is empty and the hub sweeps ids
  (``list_ids``: ``brief=true`` pages of 500, with the same one-row overlap, and a page that
  lost its anchor asked again, so a delete mid-sweep never hides a live id).
* Writes: one request per record. ``POST /<Object>`` creates (200 with the record); ``PUT
  /<Object>`` with the id field updates only the fields sent, ``null`` clearing one [V]
  (v3.1's partial PUT); ``DELETE /<Object>/{id}`` answers 202, and a 404 there counts as done
  (already gone). A create is not retried after an answer that never came (it may have
  happened); the hub finds it by e-mail before creating it again (no upsert key).
* Opportunities: ``BID_AMOUNT`` (sent as a JSON number, ``BID_TYPE`` "Fixed Bid" on create
  unless given) is the amount; ``OPPORTUNITY_VALUE`` is computed by Insightly and never sent.
  The stage is shown as the pseudo-field ``STAGE``: ``OPPORTUNITY_STATE`` (``WON``, ``LOST``,
  ``ABANDONED``, ``SUSPENDED``) for a closed opportunity, else the ``STAGE_NAME`` of its
  ``STAGE_ID`` from ``GET /PipelineStages`` (read once per connector). Writing a state sets
  ``OPPORTUNITY_STATE``; writing a stage name sets ``OPPORTUNITY_STATE`` ``OPEN`` and, since
  ``PIPELINE_ID``/``STAGE_ID`` are read-only in PUT [V], moves the opportunity with ``PUT
  /Opportunities/{id}/PipelineStage`` ``{"STAGE_ID"}`` (same pipeline) or ``PUT
  /Opportunities/{id}/Pipeline`` ``{"PIPELINE_ID", "PIPELINE_STAGE_CHANGE": {"STAGE_ID"}}``
  (another one) — payload names [U]: the generated v3.1 client's models, in the upper case of
  every other v3 field. On create both ids go in the POST [U]. A stage name found in several
  pipelines resolves to the one of ``pipeline_id`` when set, else to the lowest pipeline id. A
  ``None`` stage leaves the stage as it is (an opportunity always has a state).
  ``FORECAST_CLOSE_DATE`` is written as ``YYYY-MM-DD 00:00:00``.
* References: ``ORGANISATION_ID`` on contacts and opportunities, shown as a string id. An
  opportunity's contacts (its ``LINKS``) are not synced.
* Limits: 10 requests a second and a daily cap by plan [C]; the client throttles itself with
  ``rate_limit`` (``limits`` syntax; 9 a second by default, since the client's window and
  Insightly's never line up; add the plan's cap, ``9/second;40000/day``), and 429
  answers are waited out per ``Retry-After``. Every answer's ``X-RateLimit-Limit`` and
  ``X-RateLimit-Remaining`` are taken as the daily budget [U: the headers are what the Go
  client reads; that they count the day is assumed] and reported by ``headroom`` as ``daily``.
* Errors: ``{"Message": ...}`` [U]; 400 and 417 on a write reject that record alone; 403 is an
  AuthError (the key's user lacks the permission, or API access is off for the user).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import (
    Capabilities,
    Headroom,
    Page,
    RemoteRecord,
    VendorFields,
    WriteResult,
    validated_settings,
)
from connectors.errors import (
    AuthError,
    ConnectorConfigError,
    ConnectorError,
    RateLimited,
    RecordRejected,
    VendorError,
    setting_path,
)
from connectors.http import (
    BasicAuth,
    HeaderBudget,
    HttpClient,
    HttpSettings,
    body_excerpt,
    default_classifier,
    headroom_from_headers,
    parse_retry_after,
)
from connectors.insightly.wire import (
    CLOSED_STATES,
    MAX_TOP,
    OBJECTS,
    STAGE_FIELD,
    InsightlyObject,
    format_insightly_datetime,
    present_record,
    wire_fields,
)
from connectors.paging import pack_token, unpack_token
from connectors.ratelimit import RateLimiter
from connectors.timeparse import parse_vendor_datetime

__all__ = ["InsightlyConnector", "InsightlySettings", "classify_insightly"]

MAX_BATCH: Final = 50  # records per write call of the hub (sent one request each)
_TOKEN_KIND: Final = "insightly/1"  # noqa: S105 - a page-token format, not a secret


# --------------------------------------------------------------------------------------------
# Settings


class InsightlySettings(HttpSettings):
    """Settings of a ``connector: insightly`` system.

    ``base_url`` is the API URL shown under the API key in Insightly's User Settings
    (``https://api.na1.insightly.com/v3.1``); ``api_key`` the key itself. ``rate_limit``
    (``limits`` syntax) is the client-side budget, shared through ``rate_limit_storage``:
    Insightly allows 10 requests a second, plus a daily cap by plan that can be added
    (``9/second;40000/day``); the default keeps one a second spare, as the client's window and
    Insightly's never line up, and two requests in flight would otherwise meet its limit now and
    then. ``page_size`` is ``top`` (at most 500). ``pipeline_id`` picks the pipeline whose
    stage a stage name means when several pipelines have a stage so named.
    ``max_concurrency`` is how many write requests go out at once: Insightly takes one record a
    request, so one at a time a round trip over 100 ms keeps a sync under the 10 a second it
    allows; ``rate_limit`` still paces them however many are in flight.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    api_key: SecretStr
    rate_limit: str = "9/second"
    rate_limit_storage: str = "memory://"
    page_size: int = Field(default=MAX_TOP, ge=2, le=MAX_TOP)  # 2: room past the anchor row
    pipeline_id: int | None = None
    max_concurrency: int = Field(default=2, ge=1, le=10)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the API URL, such as https://api.na1.insightly.com/v3.1")
        return value.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")  # usually an unset ${VAR}
        return value


# --------------------------------------------------------------------------------------------
# Classifying Insightly's answers


def _vendor_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return body_excerpt(response, 200)
    if isinstance(body, Mapping) and isinstance(body.get("Message"), str):
        return str(body["Message"])
    return body_excerpt(response, 200)


def classify_insightly(response: requests.Response) -> ConnectorError | None:
    """Insightly's answer in the taxonomy.

    400 (invalid request) and 417 (delete failed) → RecordRejected quoting ``Message``; 401 →
    AuthExpired (the client turns it into the AuthError of a key that cannot be renewed); 403 →
    AuthError; 404 → RecordRejected ``NOT_FOUND``; 429 → RateLimited with ``Retry-After``; the
    rest as plain HTTP.
    """
    status = response.status_code
    if status < 300:
        return None
    if status in (400, 417):
        return RecordRejected(
            f"HTTP {status}: {_vendor_message(response)}", code=str(status), field=None
        )
    if status == 403:
        return AuthError(
            f"HTTP 403: {_vendor_message(response)}; the API key's user lacks permission for "
            "this object, or API access is turned off for the user"
        )
    if status == 429:
        return RateLimited(
            f"HTTP 429, rate limited: {_vendor_message(response)}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    return default_classifier(response)


_DAILY_BUDGET = headroom_from_headers(
    {"daily": HeaderBudget("X-RateLimit-Remaining", "X-RateLimit-Limit", window="day")}
)


# --------------------------------------------------------------------------------------------
# Pipelines


@dataclass(frozen=True, slots=True)
class _Stage:
    stage_id: int
    pipeline_id: int
    name: str


class _Pipelines:
    """The account's pipeline stages, by id and by name, read once (``GET /PipelineStages``)."""

    def __init__(self, rows: Sequence[Any], preferred_pipeline: int | None) -> None:
        self.by_id: dict[int, _Stage] = {}
        self.by_name: dict[str, _Stage] = {}
        stages = []
        for row in rows:
            if not isinstance(row, Mapping):
                continue
            try:
                stages.append(
                    _Stage(int(row["STAGE_ID"]), int(row["PIPELINE_ID"]), str(row["STAGE_NAME"]))
                )
            except (KeyError, TypeError, ValueError):
                continue
        for stage in stages:
            self.by_id[stage.stage_id] = stage
        # The preferred pipeline first, then by pipeline id: the first stage of a name wins.
        for stage in sorted(
            stages, key=lambda s: (s.pipeline_id != preferred_pipeline, s.pipeline_id)
        ):
            self.by_name.setdefault(stage.name.casefold(), stage)


# --------------------------------------------------------------------------------------------
# The connector


class InsightlyConnector:
    """One Insightly instance (see the module docstring)."""

    settings_model: ClassVar[type[BaseModel]] = InsightlySettings
    vendor: ClassVar[str] = "insightly"

    def __init__(
        self,
        system: str,
        settings: InsightlySettings | Mapping[str, Any],
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.system = system
        settings = validated_settings(
            InsightlySettings, settings, system=system, vendor="Insightly"
        )
        self.settings = settings
        try:
            limiter = RateLimiter(
                settings.rate_limit,
                key=f"insightly:{settings.base_url}",
                storage_uri=settings.rate_limit_storage,
            )
        except ConnectorConfigError as exc:
            raise ConnectorConfigError(
                f"rate_limit or rate_limit_storage: {exc.message}", system=system
            ) from None
        refused = (
            "Insightly refused the API key (HTTP 401): check "
            f"{setting_path(system, 'api_key')} (User Settings, API section) and that "
            f"{setting_path(system, 'base_url')} is the API URL shown under it (its pod)"
        )
        options: dict[str, Any] = {}
        if sleep is not None:
            options["sleep"] = sleep
        self._http = HttpClient(
            system,
            settings.base_url,
            session=session,
            auth=BasicAuth(settings.api_key.get_secret_value(), refused=refused),
            classifier=classify_insightly,
            rate_limiter=limiter,
            timeouts=settings.timeouts,
            headroom_parser=_DAILY_BUDGET,
            **options,
        )
        self._headers = {"Accept": "application/json"}
        self._lock = threading.Lock()
        self._pipelines: _Pipelines | None = None
        self.capabilities = Capabilities(
            object_types=frozenset(OBJECTS),
            max_batch=MAX_BATCH,
            detects_deletes=False,
            upsert_keys={},
            modified_precision=timedelta(seconds=1),
            # Every page after the first starts on the row the last one ended with.
            read_page_size=settings.page_size - 1,
            records_per_write_request=1,
            rate_windows=limiter.windows,
            write_concurrency=settings.max_concurrency,
        )

    def __repr__(self) -> str:
        return f"InsightlyConnector({self.system!r})"

    def close(self) -> None:
        self._http.close()

    def headroom(self) -> Mapping[str, Headroom]:
        """The daily budget, as the latest answer's ``X-RateLimit-*`` headers gave it."""
        return dict(self._http.last_headroom)

    def check(self) -> None:
        self._get("/Instance")

    # ----------------------------------------------------------------- plumbing

    def _object(self, object_type: str) -> InsightlyObject:
        try:
            return OBJECTS[object_type]
        except KeyError:
            raise ConnectorConfigError(
                f"Insightly has no object type {object_type!r} (known: {', '.join(OBJECTS)})",
                system=self.system,
            ) from None

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return self._http.get(path, params=params, headers=self._headers).json
        except RecordRejected as exc:
            # A read Insightly calls invalid is our bug or its change, not a bad record.
            raise VendorError(exc.message, system=self.system) from None

    def _rows(self, body: Any, what: str) -> list[Mapping[str, Any]]:
        if not isinstance(body, list):
            raise VendorError(
                f"Insightly answered {what} with {type(body).__name__}, not a list",
                system=self.system,
            )
        return [row for row in body if isinstance(row, Mapping)]

    def _pipeline_stages(self) -> _Pipelines:
        with self._lock:
            if self._pipelines is None:
                rows = self._rows(self._get("/PipelineStages"), "GET /PipelineStages")
                self._pipelines = _Pipelines(rows, self.settings.pipeline_id)
            return self._pipelines

    def _id_of(self, kind: InsightlyObject, row: Mapping[str, Any]) -> int:
        try:
            return int(row[kind.id_field])
        except (KeyError, TypeError, ValueError):
            raise VendorError(
                f"Insightly returned a {kind.name} without a readable {kind.id_field}",
                system=self.system,
            ) from None

    def _record(
        self, object_type: str, row: Mapping[str, Any], fields: Sequence[str]
    ) -> RemoteRecord:
        kind = OBJECTS[object_type]
        record_id = self._id_of(kind, row)
        stamp = row.get("DATE_UPDATED_UTC")
        try:
            modified = parse_vendor_datetime(str(stamp))
        except ValueError:
            raise VendorError(
                f"Insightly returned {kind.name} {record_id} without a readable "
                f"DATE_UPDATED_UTC ({str(stamp)[:40]!r})",
                system=self.system,
            ) from None
        shown = self._present(object_type, row)
        wanted = fields or list(shown)
        return RemoteRecord(str(record_id), modified, {name: shown.get(name) for name in wanted})

    def _present(self, object_type: str, row: Mapping[str, Any]) -> dict[str, Any]:
        return present_record(object_type, row, self._stage_name)

    def _stage_name(self, stage_id: int) -> str | None:
        stage = self._pipeline_stages().by_id.get(stage_id)
        return stage.name if stage is not None else None

    # ----------------------------------------------------------------- reads

    def read_changes(
        self,
        object_type: str,
        since: datetime | None,
        page_token: str | None,
        fields: Sequence[str],
    ) -> Page:
        kind = self._object(object_type)
        if page_token:
            state = unpack_token(page_token, kind=_TOKEN_KIND)
        else:
            state = {"skip": 0, "last": 0}
            if since is not None:
                # Exclusive and whole-second: ask from the second before since's second.
                after = since.replace(microsecond=0) - timedelta(seconds=1)
                state["after"] = format_insightly_datetime(after).replace(" ", "T") + "Z"
        params: dict[str, Any] = {"brief": "true"}
        path = f"/{kind.path}"
        if "after" in state:
            path += "/Search"
            params["updated_after_utc"] = state["after"]
        rows, following = self._anchored_page(kind, path, params, state)
        records = [self._record(object_type, row, fields) for row in rows]
        token = pack_token({**state, **following}, kind=_TOKEN_KIND) if following else None
        return Page(records, token)

    def _anchored_page(
        self,
        kind: InsightlyObject,
        path: str,
        params: Mapping[str, Any],
        state: Mapping[str, Any],
    ) -> tuple[list[Mapping[str, Any]], dict[str, int] | None]:
        """The rows after id ``state["last"]``, from offset ``state["skip"]`` (which points at
        the row of that id, one row early), and the state of the next page (None: done)."""
        top = self.settings.page_size
        skip = int(state.get("skip", 0))
        last = int(state.get("last", 0))
        while True:
            body = self._get(path, {**params, "skip": skip, "top": top})
            page = self._rows(body, f"GET {path}")
            ids = [self._id_of(kind, row) for row in page]
            if skip > 0 and (not ids or ids[0] > last):
                # Rows before the offset vanished (deleted mid-read), the anchor row no longer
                # where it was: this page may have slipped past records after it. Ask one
                # page earlier.
                skip = max(skip - top, 0)
                continue
            break
        fresh = [row for row, row_id in zip(page, ids, strict=True) if row_id > last]
        if len(page) < top:
            return fresh, None
        newest = max(ids)
        # The next page starts on this page's last row, the anchor it must reach back to.
        return fresh, {"skip": skip + len(page) - 1, "last": max(newest, last)}

    def read_deletes(
        self, object_type: str, since: datetime | None, page_token: str | None
    ) -> Page:
        # Insightly reports no deletes; the hub sweeps ids (list_ids) instead.
        self._object(object_type)
        return Page([], None)

    def list_ids(self, object_type: str, page_token: str | None) -> tuple[list[str], str | None]:
        """One page of the ids of every live record, in id order (see the module docstring)."""
        kind = self._object(object_type)
        state = unpack_token(page_token, kind=_TOKEN_KIND) if page_token else {}
        rows, following = self._anchored_page(kind, f"/{kind.path}", {"brief": "true"}, state)
        ids = [str(self._id_of(kind, row)) for row in rows]
        return ids, pack_token(following, kind=_TOKEN_KIND) if following else None

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> list[RemoteRecord]:
        kind = self._object(object_type)
        records: list[RemoteRecord] = []
        for record_id in dict.fromkeys(ids):
            if not str(record_id).isdigit():
                continue
            row = self._get_one(kind, str(record_id))
            if row is not None:
                records.append(self._record(object_type, row, fields))
        return records

    def _get_one(self, kind: InsightlyObject, record_id: str) -> Mapping[str, Any] | None:
        try:
            response = self._http.get(
                f"/{kind.path}/{record_id}", params={"brief": "true"}, headers=self._headers
            )
        except RecordRejected as exc:
            if exc.code == "NOT_FOUND":
                return None  # deleted, or not visible to the key's user
            raise VendorError(exc.message, system=self.system) from None
        if not isinstance(response.json, Mapping):
            raise VendorError(
                f"Insightly answered GET /{kind.path}/{{id}} without an object",
                system=self.system,
            )
        return response.json

    def find(self, object_type: str, field: str, values: Sequence[str]) -> list[RemoteRecord]:
        kind = self._object(object_type)
        found: dict[str, RemoteRecord] = {}
        for value in dict.fromkeys(v for v in values if v):
            body = self._get(
                f"/{kind.path}/Search",
                {"field_name": field, "field_value": value, "brief": "true", "top": MAX_TOP},
            )
            wanted = value.strip().casefold()
            for row in self._rows(body, f"GET /{kind.path}/Search"):
                # Insightly's own matching is not documented; only equal values count.
                if str(row.get(field) or "").strip().casefold() == wanted:
                    record = self._record(object_type, row, [field])
                    found.setdefault(record.id, record)
        return list(found.values())

    # ----------------------------------------------------------------- writes

    def create(self, object_type: str, records: Sequence[VendorFields]) -> list[WriteResult]:
        kind = self._object(object_type)
        results: list[WriteResult] = []
        for record in records:
            try:
                body = self._wire(object_type, record)
                if object_type == "deals":
                    body = self._new_deal(body, record)
                response = self._http.post(f"/{kind.path}", json=body, headers=self._headers)
                results.append(self._written(kind, response.json))
            except RecordRejected as exc:
                results.append(self._rejected(exc, record))
        return results

    def update(
        self, object_type: str, changes: Sequence[tuple[str, VendorFields]]
    ) -> list[WriteResult]:
        kind = self._object(object_type)
        results: list[WriteResult] = []
        for record_id, record in changes:
            try:
                if not str(record_id).isdigit():
                    raise RecordRejected(f"not an Insightly id: {str(record_id)[:40]!r}")
                body = {kind.id_field: int(record_id), **self._wire(object_type, record)}
                stage = None
                if object_type == "deals" and record.get(STAGE_FIELD) is not None:
                    stage = self._stage_for(str(record[STAGE_FIELD]))
                    body["OPPORTUNITY_STATE"] = (
                        "OPEN" if isinstance(stage, _Stage) else str(record[STAGE_FIELD]).upper()
                    )
                response = self._http.put(f"/{kind.path}", json=body, headers=self._headers)
                row = response.json
                if isinstance(stage, _Stage):
                    row = self._move_to_stage(record_id, row, stage)
                results.append(self._written(kind, row))
            except RecordRejected as exc:
                results.append(self._rejected(exc, record))
        return results

    def delete(self, object_type: str, ids: Sequence[str]) -> list[WriteResult]:
        kind = self._object(object_type)
        results: list[WriteResult] = []
        for record_id in ids:
            try:
                self._http.delete(
                    f"/{kind.path}/{record_id}", headers=self._headers, expect_json=False
                )
            except RecordRejected as exc:
                if exc.code != "NOT_FOUND":  # already gone is what was asked
                    results.append(self._rejected(exc, {}))
                    continue
            results.append(WriteResult(str(record_id)))
        return results

    def _wire(self, object_type: str, record: VendorFields) -> dict[str, Any]:
        try:
            return wire_fields(object_type, record)
        except ValueError as exc:
            raise RecordRejected(str(exc), field=str(exc).split(" ", 1)[0]) from None

    def _new_deal(self, body: dict[str, Any], record: VendorFields) -> dict[str, Any]:
        if body.get("BID_AMOUNT") is not None:
            body.setdefault("BID_TYPE", "Fixed Bid")
        wanted = record.get(STAGE_FIELD)
        if wanted is None:
            body.setdefault("OPPORTUNITY_STATE", "OPEN")
            return body
        stage = self._stage_for(str(wanted))
        if isinstance(stage, _Stage):
            body.update(
                OPPORTUNITY_STATE="OPEN", PIPELINE_ID=stage.pipeline_id, STAGE_ID=stage.stage_id
            )
        else:
            body["OPPORTUNITY_STATE"] = stage
        return body

    def _stage_for(self, value: str) -> _Stage | str:
        """A closed state (upper case) or the pipeline stage of that name."""
        if value.strip().upper() in CLOSED_STATES:
            return value.strip().upper()
        stages = self._pipeline_stages()
        stage = stages.by_name.get(value.strip().casefold())
        if stage is None:
            known = sorted({s.name for s in stages.by_id.values()} | CLOSED_STATES)
            raise RecordRejected(
                f"no pipeline stage or state {value!r} in this Insightly account "
                f"(it has {', '.join(known)})",
                code="UNKNOWN_STAGE",
                field=STAGE_FIELD,
            )
        return stage

    def _move_to_stage(self, record_id: str, row: Any, stage: _Stage) -> Any:
        current = row.get("PIPELINE_ID") if isinstance(row, Mapping) else None
        body: dict[str, Any]
        if current is not None and int(current) == stage.pipeline_id:
            if row.get("STAGE_ID") is not None and int(row["STAGE_ID"]) == stage.stage_id:
                return row
            path, body = f"/Opportunities/{record_id}/PipelineStage", {"STAGE_ID": stage.stage_id}
        else:
            path = f"/Opportunities/{record_id}/Pipeline"
            body = {
                "PIPELINE_ID": stage.pipeline_id,
                "PIPELINE_STAGE_CHANGE": {"STAGE_ID": stage.stage_id},
            }
        return self._http.put(path, json=body, headers=self._headers).json

    def _written(self, kind: InsightlyObject, row: Any) -> WriteResult:
        if not isinstance(row, Mapping):
            raise VendorError(
                f"Insightly answered a {kind.name} write without the record", system=self.system
            )
        record_id = self._id_of(kind, row)
        try:
            modified: datetime | None = parse_vendor_datetime(str(row.get("DATE_UPDATED_UTC")))
        except ValueError:
            modified = None
        return WriteResult(str(record_id), modified)

    def _rejected(self, error: RecordRejected, record: VendorFields) -> WriteResult:
        field = error.field
        if field is None:
            # Insightly names the field in its message ("EMAIL_ADDRESS ... is not valid").
            field = next((name for name in record if name in error.message), None)
        message = f"Insightly refused the record: {error.message}"
        return WriteResult(
            None, None, RecordRejected(message, code=error.code, field=field, system=self.system)
        )
