"""The SuiteCRM connector (V8 JSON:API, SuiteCRM 7.10+ and 8.x): Accounts, Contacts, Opportunities.

Public entry points: :class:`SuiteCrmConnector`, :class:`SuiteCrmSettings`.

How it talks to SuiteCRM (facts: section 1 of
``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md``):

* Auth: OAuth2 ``client_credentials`` or ``password`` grant at ``{root}/access_token``, the root
  being ``/legacy/Api`` (8.x) or ``/Api`` (7.x), detected on the first token request unless
  ``api_root`` says (:mod:`connectors.suitecrm.auth`). Tokens live an hour and are renewed
  before they expire, or on a 401; the password grant's refresh token is used when there is one.
  A refusal (``invalid_client``, ``invalid_grant``) is an AuthError naming the settings to change.
* Reads: ``GET {root}/V8/module/{Module}`` with ``fields[Module]``, ``page[size]`` and ``sort``
  always (without them SuiteCRM pages silently at 20 rows, in no stable order). SuiteCRM pages
  by offset (``page[number]``) and sorts on one field only, so an offset read sorted by
  ``date_modified`` loses a record whenever one behind it is edited mid-read (it jumps to the
  end and everything after it moves up a place; the hub's cursor then passes the record for
  good), and rows sharing a second come in any order. So reads are keyset-paged, always on
  page 1: each page asks ``filter[date_modified][gte]`` = the newest second handed out so far
  (``since``'s second at first) and drops what it handed out already in that second, whose
  ids the page token carries. An edited record simply comes back, with its new stamp, later in
  the same read. When a whole page lies in one second (a bulk import), time cannot advance:
  that second (also one filling over half a page) is then read on its own, ``[gte second,
  lt second + 1)`` sorted by ``id`` with ``filter[id][gt]`` the last id handed out (keyset
  again), and the read resumes after it (the window is a minute when the page shows only
  whole minutes: a server zeroing seconds). A query is finished when its page has no
  ``links.next`` or is short. Every page costs one call.
* Dates: SuiteCRM writes the UTC wall clock with a wrong offset on servers not set to UTC
  (SuiteCRM#9952), so the offset is ignored unless ``trust_offsets``; filters are sent as
  ``YYYY-MM-DD HH:MM:SS`` in UTC. Stamps have whole seconds (``modified_precision`` one
  second); on releases that zero the seconds (SuiteCRM#10912) set ``minute_stamps`` and the
  precision, the keyset step and the hub's overlap become a minute.
* Deletes: soft; ``read_deletes`` is the same keyset read with ``filter[deleted][eq]=1``
  (SuiteCRM bumps ``date_modified`` when it marks a row deleted).
* Writes: one call per record (V8 has no batch endpoint). A create carries a client-made UUID
  (``data.id``), so sending it again is harmless: it is retried like an idempotent request, a
  "Bean ... is already exist" answer for our own id means the first attempt went through, and a
  create the hub repeats after an error reuses the id of the attempt whose outcome was unknown.
  Updates are ``PATCH`` without ``date_modified`` (which SuiteCRM would keep instead of stamping,
  hiding our write from the next read); ``None`` is sent as ``""`` (SuiteCRM ignores ``null``,
  SuiteCRM#10210). A PATCH whose ``email1`` SuiteCRM silently ignored (SuiteCRM#10513, fixed
  2025) is reported as rejected rather than believed. References are ``account_id`` on Contacts
  and Opportunities, which SuiteCRM links (and unlinks the previous account) on write.
* Errors: every failure is HTTP 400 with ``errors`` an object (:mod:`connectors.suitecrm.errors`).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar, Final, Literal
from urllib.parse import urlsplit

import requests
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from connectors.base import (
    Capabilities,
    Page,
    RemoteRecord,
    VendorFields,
    WriteResult,
    validated_settings,
)
from connectors.errors import ConnectorConfigError, RecordRejected, VendorError
from connectors.http import (
    HttpClient,
    HttpResponse,
    HttpSettings,
    NoAuth,
    OAuthRefresher,
    make_session,
)
from connectors.paging import dig, pack_token, unpack_token
from connectors.ratelimit import RateLimiter
from connectors.suitecrm.auth import TokenSource, classify_token_answer
from connectors.suitecrm.errors import classify_suitecrm
from connectors.suitecrm.fields import (
    DEFAULT_FIELDS,
    MODULES,
    READ_ONLY,
    format_db_datetime,
    module_for,
    parse_suitecrm_datetime,
    present,
)

__all__ = ["SuiteCrmConnector", "SuiteCrmSettings"]

MAX_BATCH: Final = 50  # records per create/update/delete call of the hub (sent one by one)
_TOKEN_KIND: Final = "suitecrm/1"  # noqa: S105 - a page-token format, not a secret
_USER_AGENT: Final = "crmhub-suitecrm"
# Clock skew between the site and us that a stamp "from the future" may show before it means
# the offsets are real (see _check_clock).
_FUTURE_TOLERANCE: Final = timedelta(minutes=10)


# --------------------------------------------------------------------------------------------
# Settings


class SuiteCrmSettings(HttpSettings):
    """Settings of a ``connector: suitecrm`` system.

    ``base_url`` is the site root (``https://crm.example.com``, or a sub-path the site lives
    under); ``api_root`` is ``/legacy/Api`` (8.x), ``/Api`` (7.x) or ``/Api/index.php`` (7.x
    without rewrite rules), detected when left out. ``grant_type`` defaults to ``password``
    when a ``username`` is given, else ``client_credentials``. ``rate_limit`` (``limits``
    syntax) is the client-side budget: SuiteCRM has no throttle of its own, so it protects a
    self-hosted PHP server; ``rate_limit_storage`` shares it (Redis) across workers.
    ``page_size`` is ``page[size]`` (SuiteCRM sets no maximum; each listed row costs the server
    a bean load). ``max_concurrency`` is how many write requests go out at once (V8 takes one
    record a request, so over a real network this divides a large sync's write time; the
    default 2 leaves most of a small PHP-FPM pool, five workers by default, to the site's
    users). ``ca_bundle`` names a PEM file for a site behind a private CA.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    api_root: str | None = Field(default=None, pattern=r"^/[\w./-]*$")
    grant_type: Literal["client_credentials", "password"] | None = None
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    username: str | None = None
    password: SecretStr | None = None
    trust_offsets: bool = False
    minute_stamps: bool = False
    page_size: int = Field(default=200, ge=1, le=1000)
    rate_limit: str = "10/second"
    rate_limit_storage: str = "memory://"
    max_concurrency: int = Field(default=2, ge=1, le=10)
    ca_bundle: str | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the site's http(s) URL such as https://crm.example.com")
        return value.rstrip("/")

    @field_validator("api_root")
    @classmethod
    def _root(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value is not None else None

    @field_validator("client_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")  # usually an unset ${VAR}
        return value

    @model_validator(mode="after")
    def _grant_has_credentials(self) -> SuiteCrmSettings:
        if self.effective_grant == "password":
            if not self.username:
                raise ValueError("username: the password grant needs a user name")
            if self.password is None or not self.password.get_secret_value():
                raise ValueError("password: the password grant needs the user's password")
        return self

    @property
    def effective_grant(self) -> Literal["client_credentials", "password"]:
        if self.grant_type is not None:
            return self.grant_type
        return "password" if self.username else "client_credentials"


# --------------------------------------------------------------------------------------------
# Keyset reads


def _floor(instant: datetime, step: int) -> int:
    """The start (epoch seconds) of the ``step``-second slot holding ``instant``."""
    return math.floor(instant.timestamp()) // step * step


def _db(epoch: int) -> str:
    return format_db_datetime(datetime.fromtimestamp(epoch, UTC))


def _links_next(body: Mapping[str, Any]) -> bool:
    return bool(dig(body, ("links", "next")))


# --------------------------------------------------------------------------------------------
# The connector


class SuiteCrmConnector:
    """One SuiteCRM site (see the module docstring)."""

    settings_model: ClassVar[type[BaseModel]] = SuiteCrmSettings
    vendor: ClassVar[str] = "suitecrm"

    def __init__(
        self,
        system: str,
        settings: SuiteCrmSettings | Mapping[str, Any],
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.system = system
        settings = validated_settings(SuiteCrmSettings, settings, system=system, vendor="SuiteCRM")
        self.settings = settings
        self._step = 60 if settings.minute_stamps else 1
        try:
            self._limiter = RateLimiter(
                settings.rate_limit,
                key=f"suitecrm:{settings.base_url}:{settings.client_id}",
                storage_uri=settings.rate_limit_storage,
            )
            self._own_session = session is None
            self.session = session or make_session(
                user_agent=_USER_AGENT, ca_bundle=settings.ca_bundle
            )
        except ConnectorConfigError as exc:
            raise ConnectorConfigError(
                f"rate_limit, rate_limit_storage or ca_bundle: {exc.message}", system=system
            ) from None
        options: dict[str, Any] = {
            "session": self.session,
            "rate_limiter": self._limiter,
            "timeouts": settings.timeouts,
        }
        if sleep is not None:
            options["sleep"] = sleep
        self._options = options
        token_client = HttpClient(
            system,
            settings.base_url,
            auth=NoAuth(),
            classifier=partial(
                classify_token_answer, system=system, grant=settings.effective_grant
            ),
            **options,
        )
        password = settings.password
        self._tokens = TokenSource(
            token_client,
            grant=settings.effective_grant,
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value,
            username=settings.username,
            password=password.get_secret_value if password is not None else None,
            api_root=settings.api_root,
        )
        self.auth = OAuthRefresher(self._tokens)
        self._http: HttpClient | None = None
        self._lock = threading.Lock()
        # Creates whose outcome is unknown (the call failed without a verdict): payload
        # fingerprint -> the id they were sent with, reused when the hub sends them again.
        self._pending: dict[str, str] = {}
        # Fingerprints of the creates on their way now: a second record with the same payload
        # sent meanwhile (from another writer thread) is another record, with an id of its own.
        self._in_flight: set[str] = set()
        self.capabilities = Capabilities(
            object_types=frozenset(MODULES),
            max_batch=MAX_BATCH,
            detects_deletes=True,
            # No upsert: a repeated create is made harmless by its client-made id instead.
            upsert_keys={},
            modified_precision=timedelta(seconds=self._step),
            read_page_size=settings.page_size,
            records_per_write_request=1,
            rate_windows=self._limiter.windows,
            write_concurrency=settings.max_concurrency,
        )

    def __repr__(self) -> str:
        return f"SuiteCrmConnector({self.system!r})"

    # ----------------------------------------------------------------- plumbing

    @property
    def http(self) -> HttpClient:
        """The V8 client, made once the API root is known (configured, or found by the first
        token request)."""
        with self._lock:
            if self._http is None:
                if self._tokens.root is None:
                    self.auth.token()
                root = self._tokens.root
                assert root is not None  # set by the token request
                self._http = HttpClient(
                    self.system,
                    self.settings.base_url + root,
                    auth=self.auth,
                    classifier=classify_suitecrm,
                    **self._options,
                )
            return self._http

    def _request(self, method: str, path: str, **options: Any) -> HttpResponse:
        headers = {"Accept": "application/vnd.api+json"}
        if "json" in options:
            headers["Content-Type"] = "application/vnd.api+json"
        return self.http.request(method, path, headers=headers, **options)

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None
        self._tokens.client.close()
        if self._own_session:
            self.session.close()

    def _record(self, module: str, item: Any, names: Sequence[str]) -> RemoteRecord:
        if not isinstance(item, Mapping) or not item.get("id"):
            raise VendorError(
                f"SuiteCRM returned a {module} record without an id", system=self.system
            )
        found = item.get("attributes")
        attributes: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        stamp = attributes.get("date_modified")
        try:
            modified = parse_suitecrm_datetime(str(stamp), trust_offset=self.settings.trust_offsets)
        except ValueError:
            raise VendorError(
                f"SuiteCRM returned {module} record {item['id']} without a readable "
                f"date_modified ({str(stamp)[:40]!r})",
                system=self.system,
            ) from None
        listed = names or [name for name in attributes if name != "date_modified"]
        values = {name: present(attributes.get(name)) for name in listed}
        return RemoteRecord(str(item["id"]), modified, values)

    @staticmethod
    def _wanted(fields: Sequence[str]) -> list[str]:
        asked = [name for name in dict.fromkeys(fields) if name != "id"]
        return asked if "date_modified" in asked else [*asked, "date_modified"]

    # ----------------------------------------------------------------- reads

    def check(self) -> None:
        self._request(
            "GET",
            "/V8/module/Contacts",
            params={"fields[Contacts]": "date_modified", "page[size]": 1, "page[number]": 1},
        )

    def read_changes(
        self,
        object_type: str,
        since: datetime | None,
        page_token: str | None,
        fields: Sequence[str],
    ) -> Page:
        """One page, keyset-paged on ``date_modified`` (see the module docstring)."""
        module = module_for(object_type)
        names = [name for name in dict.fromkeys(fields) if name not in ("id", "date_modified")]
        return self._keyset(module, since, page_token, names, deleted=False)

    def read_deletes(
        self, object_type: str, since: datetime | None, page_token: str | None
    ) -> Page:
        """Soft-deleted records since ``since``: the keyset read of ``filter[deleted][eq]=1``,
        each stamped with the ``date_modified`` the deletion set."""
        return self._keyset(module_for(object_type), since, page_token, [], deleted=True)

    def _keyset(
        self,
        module: str,
        since: datetime | None,
        page_token: str | None,
        names: list[str],
        *,
        deleted: bool,
    ) -> Page:
        step = self._step
        state: dict[str, Any]
        if page_token:
            state = unpack_token(page_token, kind=_TOKEN_KIND)
            if state.get("o") != module or bool(state.get("d")) != deleted:
                raise ConnectorConfigError(
                    f"this page token belongs to another SuiteCRM read ({state.get('o')})",
                    system=self.system,
                )
        else:
            state = {"o": module, "d": int(deleted), "m": "n", "i": []}
            if since is not None:
                state["k"] = _floor(since, step)
        key: int | None = state.get("k")
        seen = set(state.get("i") or ())
        tie = state.get("m") == "t"
        params: dict[str, Any] = {
            f"fields[{module}]": ",".join(self._wanted(names)),
            "page[size]": self.settings.page_size,
            "page[number]": 1,
        }
        if deleted:
            params["filter[deleted][eq]"] = 1
        width = int(state.get("w", step))  # a crowded window's length, in seconds
        if tie:
            assert key is not None
            params["filter[date_modified][gte]"] = _db(key)
            params["filter[date_modified][lt]"] = _db(key + width)
            if state.get("a"):
                params["filter[id][gt]"] = state["a"]
            params["sort"] = "id"
        else:
            if key is not None:
                params["filter[date_modified][gte]"] = _db(key)
            params["sort"] = "date_modified"
        body = self._request("GET", f"/V8/module/{module}", params=params).json
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
            raise VendorError(f"SuiteCRM's {module} list has no data array", system=self.system)
        records = [self._record(module, item, names) for item in body["data"]]
        if deleted:
            records = [RemoteRecord(r.id, r.modified_at, {}, deleted=True) for r in records]
        self._check_clock(module, records)
        more = _links_next(body) and len(records) >= self.settings.page_size
        # Every record of this answer is stamped at or after the key in the database, whatever
        # it shows: a server that zeroes seconds (minute_stamps unset) shows older stamps. The
        # key therefore never moves back, so the read always progresses.
        slots = [
            _floor(record.modified_at, step)
            if key is None
            else max(_floor(record.modified_at, step), key)
            for record in records
        ]
        handed = [
            record
            for record, slot in zip(records, slots, strict=True)
            if not (record.id in seen and (tie or slot == key))
        ]
        handed.sort(key=lambda record: record.modified_at)  # stable: ties keep SuiteCRM's order
        base = {"o": module, "d": int(deleted)}
        if tie:
            assert key is not None
            if not more:
                # The crowded window is done; go on after it.
                following = {**base, "m": "n", "k": key + width, "i": []}
                return Page(handed, pack_token(following, kind=_TOKEN_KIND))
            last = records[-1].id
            left = sorted(i for i in seen if i > last)  # ids up to `last` never come again
            following = {**base, "m": "t", "k": key, "w": width, "a": last, "i": left}
            return Page(
                handed,
                pack_token(following, kind=_TOKEN_KIND),
            )
        if not more:
            return Page(handed, None)
        newest = max(slots)
        at_newest = {r.id for r, slot in zip(records, slots, strict=True) if slot == newest}
        crowded = min(slots) == newest or 2 * len(at_newest) > self.settings.page_size
        if newest == key:
            at_newest |= seen
        following = {**base, "m": "n", "k": newest, "i": sorted(at_newest)}
        if crowded:
            # A page wholly inside one second cannot move the key: read that second by id. So
            # is one ending with over half a page of it: asking from that second again would
            # spend most of the next page on what was handed out already. A page showing only
            # whole minutes comes from a server that zeroes seconds (minute_stamps unset): its
            # window is the minute, or the read would walk it a second at a time.
            width = step
            if step < 60 and all(r.modified_at.second == 0 for r in records):
                width = 60
            start = newest // width * width
            following.update(m="t", k=start, w=width)
            if start != newest:
                following["i"] = sorted(at_newest | seen)
        return Page(handed, pack_token(following, kind=_TOKEN_KIND))

    def _check_clock(self, module: str, records: Sequence[RemoteRecord]) -> None:
        """Refuse stamps from the future: the wall clock shown is local time, not UTC (a
        server that converts correctly); read as UTC it would move the cursor past records."""
        if self.settings.trust_offsets or not records:
            return
        latest = max(record.modified_at for record in records)
        if latest > datetime.now(UTC) + _FUTURE_TOLERANCE:
            raise ConnectorConfigError(
                f"SuiteCRM stamped a {module} record {latest.isoformat()} read as UTC, which "
                "is in the future: this server writes local time with a correct offset; set "
                "trust_offsets: true",
                system=self.system,
            )

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> list[RemoteRecord]:
        module = module_for(object_type)
        names = [name for name in dict.fromkeys(fields) if name not in ("id", "date_modified")]
        params = {f"fields[{module}]": ",".join(self._wanted(names))}
        found: list[RemoteRecord] = []
        for record_id in dict.fromkeys(ids):
            try:
                response = self._request("GET", f"/V8/module/{module}/{record_id}", params=params)
            except RecordRejected as exc:
                if exc.code == "NOT_FOUND":
                    continue  # missing or deleted (SuiteCRM merges delete the duplicates)
                raise
            data = response.json.get("data") if isinstance(response.json, Mapping) else None
            found.append(self._record(module, data, names))
        return found

    def find(self, object_type: str, field: str, values: Sequence[str]) -> list[RemoteRecord]:
        """Records whose ``field`` equals a value, case-insensitively: one filtered list per
        value (a filter takes one value per field and operator; ``email1`` is matched through
        SuiteCRM's email-address join)."""
        module = module_for(object_type)
        names = list(dict.fromkeys([*DEFAULT_FIELDS[module], field]))
        wanted = {value.casefold() for value in values if value}
        found: dict[str, RemoteRecord] = {}
        for value in sorted(wanted):
            number = 1
            while True:
                params = {
                    f"fields[{module}]": ",".join(self._wanted(names)),
                    f"filter[{field}][eq]": value,
                    "sort": "date_modified",
                    "page[size]": self.settings.page_size,
                    "page[number]": number,
                }
                body = self._request("GET", f"/V8/module/{module}", params=params).json
                items = body.get("data") if isinstance(body, Mapping) else None
                for item in items or []:
                    record = self._record(module, item, names)
                    got = record.fields.get(field)
                    if isinstance(got, str) and got.casefold() in wanted:
                        found[record.id] = record
                if not isinstance(body, Mapping) or not _links_next(body) or not items:
                    break
                number += 1
        return sorted(found.values(), key=lambda record: (record.modified_at, record.id))

    # ----------------------------------------------------------------- writes

    def create(self, object_type: str, records: Sequence[VendorFields]) -> list[WriteResult]:
        module = module_for(object_type)
        return [self._create_one(module, record) for record in records]

    def _create_one(self, module: str, fields: VendorFields) -> WriteResult:
        attributes = _attributes(fields, creating=True)
        fingerprint = hashlib.sha256(
            json.dumps([module, attributes], sort_keys=True, default=str).encode("utf-8")
        ).hexdigest()
        with self._lock:
            if fingerprint in self._in_flight:
                # The twin of a create on its way: another record, its id kept nowhere.
                record_id, fingerprint = str(uuid.uuid4()), ""
            else:
                record_id = self._pending.setdefault(fingerprint, str(uuid.uuid4()))
                self._in_flight.add(fingerprint)
        body = {"data": {"type": module, "id": record_id, "attributes": attributes}}
        try:
            # Idempotent thanks to the id: a retry after a lost answer meets "already exist".
            response = self._request("POST", "/V8/module", json=body, idempotent=True)
        except RecordRejected as exc:
            if exc.code != "ALREADY_EXISTS":
                self._settled(fingerprint)
                return WriteResult(None, None, exc)
            result = self._existing(module, record_id, exc)
            self._settled(fingerprint)
            return result
        else:
            self._settled(fingerprint)
        finally:
            # Without a verdict (the call failed) the id stays pending for the hub's next send.
            with self._lock:
                self._in_flight.discard(fingerprint)
        return self._written(module, response)

    def _settled(self, fingerprint: str) -> None:
        # Still in flight here, so no twin can take the id before it is forgotten.
        with self._lock:
            self._pending.pop(fingerprint, None)

    def _existing(self, module: str, record_id: str, refusal: RecordRejected) -> WriteResult:
        """Our own earlier create of ``record_id`` went through: report what it stored."""
        try:
            response = self._request(
                "GET",
                f"/V8/module/{module}/{record_id}",
                params={f"fields[{module}]": "date_modified"},
            )
        except RecordRejected:
            return WriteResult(None, None, refusal)
        return self._written(module, response)

    def _written(self, module: str, response: HttpResponse) -> WriteResult:
        data = response.json.get("data") if isinstance(response.json, Mapping) else None
        record = self._record(module, data, ())
        return WriteResult(record.id, record.modified_at)

    def update(
        self, object_type: str, changes: Sequence[tuple[str, VendorFields]]
    ) -> list[WriteResult]:
        module = module_for(object_type)
        results: list[WriteResult] = []
        for record_id, fields in changes:
            attributes = _attributes(fields, creating=False)
            body = {"data": {"type": module, "id": record_id, "attributes": attributes}}
            try:
                response = self._request("PATCH", "/V8/module", json=body, idempotent=True)
            except RecordRejected as exc:
                results.append(WriteResult(None, None, exc))
                continue
            result = self._written(module, response)
            ignored = self._email_ignored(response, attributes)
            results.append(WriteResult(None, None, ignored) if ignored else result)
        return results

    def _email_ignored(
        self, response: HttpResponse, attributes: Mapping[str, Any]
    ) -> RecordRejected | None:
        sent = attributes.get("email1")
        if not isinstance(sent, str) or not sent:
            return None
        stored = dig(response.json, ("data", "attributes", "email1"))
        if isinstance(stored, str) and stored.casefold() == sent.casefold():
            return None
        return RecordRejected(
            f"SuiteCRM stored the other fields but ignored the new email1 {sent!r} (it still "
            f"holds {stored!r}): a known bug of PATCH before SuiteCRM 7.14.7/8.8 "
            "(SuiteCRM#10513); upgrade, or change the address in SuiteCRM",
            code="EMAIL1_NOT_UPDATED",
            field="email1",
            system=self.system,
        )

    def delete(self, object_type: str, ids: Sequence[str]) -> list[WriteResult]:
        module = module_for(object_type)
        results: list[WriteResult] = []
        for record_id in ids:
            try:
                self._request("DELETE", f"/V8/module/{module}/{record_id}")
            except RecordRejected as exc:
                results.append(WriteResult(None, None, exc))
                continue
            results.append(WriteResult(record_id))
        return results


def _attributes(fields: VendorFields, *, creating: bool) -> dict[str, Any]:
    """Vendor fields as V8 attributes: text for numbers, ``""`` to clear, no computed fields."""
    attributes: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "id" or name in READ_ONLY:
            continue  # a date_modified sent back would be kept, not stamped (facts 1.5)
        if isinstance(value, list | tuple):
            value = value[0] if value else None  # a one-id reference shown as a list
        if value is None:
            if creating:
                continue
            value = ""  # null is skipped by SuiteCRM's save (SuiteCRM#10210); "" clears
        elif isinstance(value, bool):
            value = int(value)
        elif isinstance(value, Decimal):
            value = str(value)
        attributes[name] = value
    return attributes
