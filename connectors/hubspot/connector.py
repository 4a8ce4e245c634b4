"""The HubSpot connector: CRM v3 objects for records, v4 associations for references.

Public entry points: :class:`HubSpotConnector` (``vendor = "hubspot"``; also ``headroom``, the
:class:`~connectors.base.ReportsHeadroom` protocol, and ``picklist``, the
:class:`~connectors.base.DescribesPicklists` one), :class:`HubSpotSettings`,
:data:`ASSOCIATIONS` and :data:`MODIFIED_PROPERTY`.

Reads: a full read lists ``GET /crm/v3/objects/{type}`` (100 a page, ``after`` cursor: an id
keyset, which an edit mid-read cannot shift; only the mapped properties); an incremental read
searches on the modified-date property, each page a fresh "modified >= newest handed out" query
rather than an offset, so a record edited while the read pages is never skipped
(:mod:`connectors.hubspot.search`), within the search API's own budget of 5 requests a second.
References are pseudo-fields (contacts ``company_id``; deals ``company_id`` and ``contact_ids``)
read with one v4 association batch read per page and target type, and written back with v4 batch
create/archive after the properties (a plain create carries them inline). Every read asks for
``hs_merged_object_ids`` so the hub can relink merged records (:attr:`RemoteRecord.merged_ids`).

Writes: batch create/update/upsert of at most 100 records. Contacts with an email are created
through ``batch/upsert`` keyed on email, so a create retried after a crash finds the record it
made. A batch HubSpot refuses whole for one bad record (400) is split until the bad record stands
alone, so the rest is written; a 207 answer is matched back to its inputs by
``objectWriteTraceId`` and id. A create that hits an existing contact's email (409 ``CONFLICT``,
"Existing ID: N") becomes an update of that contact. A plain ``batch/create`` sends each record's
associations with it, so HubSpot makes both at once: a run killed between the create and a later
association call would leave a deal without its company, and so without the match key (name
within company) by which the next run recognises the deal as its own.

Picklists: ``GET /crm/v3/properties/{type}`` describes every property of an object type, once
per connector; an ``enumeration`` property accepts its options' ``value``s (hidden options too:
HubSpot hides them from its forms only). The deal ``pipeline`` and ``dealstage`` properties come
with no options and ``externalOptions`` (recorded from live portals): their values are the
pipeline and stage ids of ``GET /crm/v3/pipelines/deals``, also fetched once.

Headroom: every answer but search's carries the ten-second budget's ``X-HubSpot-RateLimit-*``
headers, and answers to a private-app token also the daily budget's (``-Daily``,
``-Daily-Remaining``; OAuth calls get no daily ones); ``headroom`` hands on the latest of each.
No header says when a budget refills (the daily one at midnight in the account's time zone).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

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
    ConnectorError,
    RecordRejected,
    VendorError,
    setting_path,
)
from connectors.http import (
    Authenticator,
    BearerToken,
    HeaderBudget,
    HttpClient,
    HttpSettings,
    NoAuth,
    OAuthRefresher,
    headroom_from_headers,
)
from connectors.hubspot.errors import (
    ContactExists,
    classify_response,
    classify_token_response,
    rejection,
)
from connectors.hubspot.search import (
    LIMIT as SEARCH_LIMIT,
)
from connectors.hubspot.search import (
    SearchCursor,
    cursor_from_state,
    cursor_state,
    decode_token,
    encode_token,
)
from connectors.ratelimit import RateLimiter
from connectors.timeparse import parse_vendor_datetime, to_epoch_ms

__all__ = ["ASSOCIATIONS", "MODIFIED_PROPERTY", "HubSpotConnector", "HubSpotSettings"]

log = logging.getLogger("crmhub.hubspot")

DEFAULT_BASE_URL = "https://api.hubapi.com"
OBJECT_TYPES = ("companies", "contacts", "deals")
MODIFIED_PROPERTY: Mapping[str, str] = {
    # Filtering contacts on hs_lastmodifieddate silently finds nothing (airbyte PR #85019).
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
MERGED = "hs_merged_object_ids"
BATCH = 100  # HubSpot's batch input limit, and the list endpoint's largest page
RATE_LIMIT_HEADERS: Mapping[str, HeaderBudget] = {
    "10s": HeaderBudget(
        remaining="X-HubSpot-RateLimit-Remaining",
        limit="X-HubSpot-RateLimit-Max",
        window_ms="X-HubSpot-RateLimit-Interval-Milliseconds",
    ),
    "daily": HeaderBudget(
        remaining="X-HubSpot-RateLimit-Daily-Remaining",
        limit="X-HubSpot-RateLimit-Daily",
        window="day",
    ),
}


@dataclass(frozen=True, slots=True)
class AssociationField:
    """A reference pseudo-field backed by v4 associations to ``to_type``.

    ``type_id`` is the HUBSPOT_DEFINED association type written (and, for a single reference,
    the one that marks the value among several associated records: the primary).
    """

    name: str
    to_type: str
    type_id: int
    many: bool


ASSOCIATIONS: Mapping[str, tuple[AssociationField, ...]] = {
    "contacts": (AssociationField("company_id", "companies", 1, many=False),),
    "deals": (
        AssociationField("company_id", "companies", 5, many=False),
        AssociationField("contact_ids", "contacts", 3, many=True),
    ),
}
"""Reference pseudo-fields per object type (type ids: HS-PY ``association_type.py``)."""

# Enumeration properties whose options live in the pipelines API, not in the properties API
# (which lists them empty, with ``externalOptions``): the part of a pipeline each one names.
_PIPELINE_OPTIONS: Mapping[tuple[str, str], str] = {
    ("deals", "pipeline"): "pipeline",
    ("deals", "dealstage"): "stage",
}


@dataclass(frozen=True, slots=True)
class _Enumeration:
    """An enumeration property as the properties API describes it: its option values, and
    whether HubSpot keeps its options elsewhere (pipelines, owners)."""

    values: frozenset[str]
    external: bool


# Properties asked for by ``find`` when no read has told us what the field map wants.
_DEFAULT_PROPERTIES: Mapping[str, tuple[str, ...]] = {
    "companies": ("name", "domain", "website", "phone", "city", "country"),
    "contacts": ("email", "firstname", "lastname", "phone", "company_id"),
    "deals": ("dealname", "amount", "dealstage", "pipeline", "closedate"),
}


class HubSpotSettings(HttpSettings):
    """Settings of a ``connector: hubspot`` system.

    Either a private-app ``token``, or OAuth: ``client_id``, ``client_secret`` and
    ``refresh_token`` (access tokens are fetched from ``token_url`` and renewed before they
    expire and on a 401; a token HubSpot refuses is an AuthError naming the setting to change).
    The rate settings are the client's own budget; the defaults are
    HubSpot's lowest tier (Free/Starter private apps: 100 per 10 s, 250,000 a day; search 5 per
    second, kept at 4 so clock jitter never meets HubSpot's counter). ``max_concurrency`` is
    how many write batches go out at once: HubSpot sets no limit on requests in flight, only the
    budgets above, which still pace them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = DEFAULT_BASE_URL
    token: SecretStr | None = Field(default=None, description="private-app access token")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    token_url: str | None = Field(
        default=None, description="OAuth token endpoint; default <base_url>/oauth/v1/token"
    )
    requests_per_10s: int = Field(default=100, ge=1, le=1_000_000)
    daily_limit: int = Field(default=250_000, ge=1)
    search_per_second: int = Field(default=4, ge=1, le=100)
    rate_limit_storage: str = "memory://"
    page_size: int = Field(default=BATCH, ge=1, le=BATCH)
    max_concurrency: int = Field(default=4, ge=1, le=10)

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> HubSpotSettings:
        oauth = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }
        given = [name for name, value in oauth.items() if value]
        if self.token is not None and given:
            raise ValueError(f"give either token or OAuth credentials, not both ({given[0]})")
        if self.token is None and len(given) != len(oauth):
            missing = [name for name in oauth if name not in given]
            raise ValueError(
                "needs a private-app token, or OAuth client_id, client_secret and "
                f"refresh_token (missing: {', '.join(missing)})"
            )
        return self


def _text(value: Any) -> str:
    """A property value as HubSpot takes it: text, ``""`` to clear."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return ";".join(str(item) for item in value)  # multi-select (enumeration) properties
    return str(value)


def _id_key(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)


class HubSpotConnector:
    """One HubSpot account (portal)."""

    settings_model: ClassVar[type[BaseModel]] = HubSpotSettings
    vendor: ClassVar[str] = "hubspot"

    def __init__(
        self,
        system: str,
        settings: HubSpotSettings | Mapping[str, Any],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``sleep`` is how the clients wait between retries (injectable for tests)."""
        self.system = system
        self.settings = validated_settings(
            HubSpotSettings, settings, system=system, vendor="HubSpot"
        )
        s = self.settings
        base_url = s.base_url.rstrip("/")
        account = (
            s.client_id
            or hashlib.sha256(s.token.get_secret_value().encode() if s.token else b"").hexdigest()
        )
        key = "hubspot:" + hashlib.sha256(f"{base_url}|{account}".encode()).hexdigest()[:16]
        limiter = RateLimiter(
            [f"{s.requests_per_10s}/10 seconds", f"{s.daily_limit}/day"],
            key=key,
            storage_uri=s.rate_limit_storage,
        )
        self.capabilities = Capabilities(
            object_types=frozenset(OBJECT_TYPES),
            max_batch=BATCH,
            detects_deletes=True,
            upsert_keys={"contacts": "email"},
            read_page_size=s.page_size,
            read_calls_per_record={
                object_type: len(fields) / s.page_size
                for object_type, fields in ASSOCIATIONS.items()
            },
            rate_windows=limiter.windows,
            write_concurrency=s.max_concurrency,
        )
        self._auth = self._authenticator(base_url)
        self._api = HttpClient(
            system,
            base_url,
            auth=self._auth,
            classifier=classify_response,
            sleep=sleep,
            rate_limiter=limiter,
            timeouts=s.timeouts,
            headroom_parser=headroom_from_headers(RATE_LIMIT_HEADERS),
        )
        # Search has its own per-second bucket and is exempt from the ten-second one (HS-OAS
        # x-hubspot-rate-limit-exemptions), so it gets a client of its own on the same session.
        self._search = HttpClient(
            system,
            base_url,
            session=self._api.session,
            auth=self._auth,
            classifier=classify_response,
            sleep=sleep,
            rate_limiter=RateLimiter(
                f"{s.search_per_second}/second",
                key=f"{key}:search",
                storage_uri=s.rate_limit_storage,
            ),
            timeouts=self._api.timeouts,
        )
        # What the field map asked for last, per object type: ``find`` has no field list.
        self._fields: dict[str, tuple[str, ...]] = {}
        # Metadata read once per connector; the lock also keeps two threads from both asking.
        self._metadata_lock = threading.Lock()
        self._enumerations: dict[str, Mapping[str, _Enumeration]] = {}
        self._pipelines: dict[str, Mapping[str, frozenset[str]]] = {}

    def _authenticator(self, base_url: str) -> Authenticator:
        s = self.settings
        if s.token is not None:
            return BearerToken(
                s.token.get_secret_value(),
                refused=(
                    "HubSpot refused the private-app token (it was rotated, or the private app "
                    "deleted): create a new one or copy the app's current token (Settings > "
                    "Integrations > Private Apps) and set "
                    f"{setting_path(self.system, 'token')}"
                ),
            )
        # The settings validator saw to it that all three are there.
        assert s.client_id is not None
        assert s.client_secret is not None
        assert s.refresh_token is not None
        client_id = s.client_id
        secret = s.client_secret.get_secret_value()
        refresh = s.refresh_token.get_secret_value()
        token_url = urlsplit(s.token_url or f"{base_url}/oauth/v1/token")
        # The client sits at the origin, so its messages show the token endpoint's path.
        oauth = HttpClient(
            self.system,
            f"{token_url.scheme}://{token_url.netloc}",
            auth=NoAuth(),
            classifier=partial(classify_token_response, system=self.system),
            secrets=(secret, refresh),
        )

        def fetch() -> tuple[str, float]:
            # Refreshing is safe to repeat: HubSpot refresh tokens do not rotate or expire.
            answer = oauth.post(
                token_url.path or "/",
                data={
                    "grant_type": "refresh_token",
                    "client_id": client_id,
                    "client_secret": secret,
                    "refresh_token": refresh,
                },
                idempotent=True,
            ).json
            if not isinstance(answer, Mapping):
                raise VendorError("the OAuth token endpoint answered without a JSON object")
            return str(answer.get("access_token") or ""), float(answer.get("expires_in") or 0)

        return OAuthRefresher(fetch)

    def headroom(self) -> Mapping[str, Headroom]:
        """The ten-second and (private-app tokens only) daily budgets, as last reported."""
        return dict(self._api.last_headroom)

    def picklist(self, object_type: str, vendor_field: str) -> frozenset[str] | None:
        """The option values of an enumeration property; None for any other property, for a
        reference pseudo-field and for a property HubSpot does not know.

        A deal stage accepts the stage ids of every deal pipeline here, though HubSpot takes a
        stage only with its own pipeline. Options HubSpot keeps elsewhere than in pipelines
        (owners, business units) are not looked up: None, so they are not checked.
        """
        self._check_type(object_type)
        enumeration = self._described(object_type).get(vendor_field)
        if enumeration is None:
            return None
        part = _PIPELINE_OPTIONS.get((object_type, vendor_field))
        if part is not None:
            return self._pipeline_options(object_type)[part]
        if enumeration.external and not enumeration.values:
            return None
        return enumeration.values

    def _described(self, object_type: str) -> Mapping[str, _Enumeration]:
        with self._metadata_lock:
            found = self._enumerations.get(object_type)
            if found is None:
                body = self._api.get(f"/crm/v3/properties/{object_type}").json
                found = self._enumerations[object_type] = _parse_enumerations(body)
            return found

    def _pipeline_options(self, object_type: str) -> Mapping[str, frozenset[str]]:
        with self._metadata_lock:
            found = self._pipelines.get(object_type)
            if found is None:
                body = self._api.get(f"/crm/v3/pipelines/{object_type}").json
                found = self._pipelines[object_type] = _parse_pipelines(body)
            return found

    # ------------------------------------------------------------------------------- reads

    def check(self) -> None:
        try:
            self._api.get(
                "/crm/v3/objects/contacts", params={"limit": 1, "properties": "hs_object_id"}
            )
        except RecordRejected as exc:
            raise VendorError(f"HubSpot refused the check call: {exc.message}") from None

    def read_changes(
        self,
        object_type: str,
        since: datetime | None,
        page_token: str | None,
        fields: Sequence[str],
    ) -> Page:
        self._check_type(object_type)
        self._fields[object_type] = tuple(fields)
        state = decode_token(page_token) if page_token else None
        if state is None:
            if since is None:
                return self._list_page(object_type, None, fields, archived=False)
            return self._search_page(object_type, SearchCursor.start(to_epoch_ms(since)), fields)
        if state["m"] == "l":
            return self._list_page(object_type, str(state["a"]), fields, archived=False)
        return self._search_page(object_type, cursor_from_state(state), fields)

    def read_deletes(
        self, object_type: str, since: datetime | None, page_token: str | None
    ) -> Page:
        """Archived records (``archived=true`` lists only those), filtered by ``archivedAt``.

        HubSpot has no time filter on archived records, so every call pages through all of
        them; records archived before ``since`` are left out of the pages.
        """
        self._check_type(object_type)
        after = str(decode_token(page_token)["a"]) if page_token else None
        params: dict[str, Any] = {"limit": BATCH, "archived": "true", "properties": "hs_object_id"}
        if after:
            params["after"] = after
        body = self._api.get(f"/crm/v3/objects/{object_type}", params=params).json
        records = []
        for item in _results(body):
            stamp = item.get("archivedAt") or item.get("updatedAt")
            if not stamp:
                continue
            archived = f"archived {object_type} {item['id']}"
            deleted_at = _vendor_stamp(stamp, archived, "archive time")
            if since is None or deleted_at >= since:
                records.append(RemoteRecord(str(item["id"]), deleted_at, {}, deleted=True))
        following = _next_after(body)
        return Page(records, encode_token({"m": "l", "a": following}) if following else None)

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> list[RemoteRecord]:
        """Current state by id; a merged-away id comes back as its survivor, naming it in
        ``merged_ids``."""
        self._check_type(object_type)
        properties, wanted = self._split_fields(object_type, fields)
        records: dict[str, RemoteRecord] = {}
        for start in range(0, len(ids), BATCH):
            chunk = list(dict.fromkeys(ids[start : start + BATCH]))
            body = self._api.post(
                f"/crm/v3/objects/{object_type}/batch/read",
                params={"archived": "false"},
                json={"properties": properties, "inputs": [{"id": i} for i in chunk]},
                idempotent=True,
            ).json
            # Unknown ids come back in errors[] (207) and are left out; a merged-away id comes
            # back as its survivor, whose hs_merged_object_ids names it.
            for item in _results(body):
                record = self._record(object_type, item, fields)
                records[record.id] = record
        found = list(records.values())
        return self._with_associations(object_type, found, wanted)

    def find(self, object_type: str, field: str, values: Sequence[str]) -> list[RemoteRecord]:
        """Records whose property equals one of ``values``, compared case-insensitively."""
        self._check_type(object_type)
        if any(field == assoc.name for assoc in ASSOCIATIONS.get(object_type, ())):
            raise VendorError(f"cannot search HubSpot {object_type} by the association {field}")
        fields = self._fields.get(object_type) or _DEFAULT_PROPERTIES[object_type]
        properties, wanted = self._split_fields(object_type, [*fields, field])
        folded = sorted({str(v).strip().casefold() for v in values if str(v).strip()})
        found: dict[str, RemoteRecord] = {}
        for start in range(0, len(folded), BATCH):
            chunk = folded[start : start + BATCH]
            request: dict[str, Any] = {
                "filterGroups": [
                    {"filters": [{"propertyName": field, "operator": "IN", "values": chunk}]}
                ],
                "properties": properties,
                "limit": SEARCH_LIMIT,
            }
            while True:
                body = self._search.post(
                    f"/crm/v3/objects/{object_type}/search", json=request, idempotent=True
                ).json
                for item in _results(body):
                    record = self._record(object_type, item, [*fields, field])
                    if str(record.fields.get(field) or "").strip().casefold() in chunk:
                        found[record.id] = record
                following = _next_after(body)
                if not following:
                    break
                request = {**request, "after": following}
        return self._with_associations(object_type, list(found.values()), wanted)

    # ------------------------------------------------------------------------------- writes

    def create(self, object_type: str, records: Sequence[VendorFields]) -> list[WriteResult]:
        self._check_type(object_type)
        self._check_batch(records)
        outcomes: list[WriteResult | None] = [None] * len(records)
        properties = [self._properties(object_type, fields) for fields in records]
        by_email = [
            i
            for i, props in enumerate(properties)
            if object_type == "contacts" and props.get("email")
        ]
        plain = [i for i in range(len(records)) if i not in set(by_email)]
        conflicts: list[tuple[int, str]] = []
        # Records HubSpot made just now have no associations to read before writing them; a
        # plain create wrote them already.
        fresh: set[int] = set()
        associated: set[int] = set()
        if by_email:
            self._upsert_contacts(by_email, properties, outcomes, fresh)
        if plain:
            self._create_plain(object_type, plain, records, properties, outcomes, conflicts)
            associated.update(i for i in plain if outcomes[i] is not None)
        if conflicts:
            # The contact exists already: the create becomes an update of that contact, linked
            # to it, so a create retried after a lost answer is not a duplicate.
            changed = self._update_batch(
                object_type, [(existing, properties[i]) for i, existing in conflicts]
            )
            for (i, _), result in zip(conflicts, changed, strict=True):
                outcomes[i] = result
        done = [o if o is not None else self._missing() for o in outcomes]
        return self._write_associations(
            object_type, records, done, creating=True, fresh=fresh, associated=associated
        )

    def update(
        self, object_type: str, changes: Sequence[tuple[str, VendorFields]]
    ) -> list[WriteResult]:
        self._check_type(object_type)
        self._check_batch(changes)
        outcomes: list[WriteResult] = [WriteResult(rid) for rid, _ in changes]
        pending = [
            (i, rid, self._properties(object_type, fields))
            for i, (rid, fields) in enumerate(changes)
        ]
        with_properties = [(i, rid, props) for i, rid, props in pending if props]
        if with_properties:
            results = self._update_batch(
                object_type, [(rid, props) for _, rid, props in with_properties]
            )
            for (i, _, _), result in zip(with_properties, results, strict=True):
                outcomes[i] = result
        return self._write_associations(
            object_type, [fields for _, fields in changes], outcomes, creating=False
        )

    def delete(self, object_type: str, ids: Sequence[str]) -> list[WriteResult]:
        """Archive (HubSpot's delete; restorable for 90 days). Archiving twice is not an error."""
        self._check_type(object_type)
        self._check_batch(ids)
        if ids:
            self._api.post(
                f"/crm/v3/objects/{object_type}/batch/archive",
                json={"inputs": [{"id": rid} for rid in ids]},
                idempotent=True,
                expect_json=False,
            )
        return [WriteResult(rid) for rid in ids]

    def close(self) -> None:
        self._search.close()
        self._api.close()

    # ------------------------------------------------------------------------------- reading

    def _check_type(self, object_type: str) -> None:
        if object_type not in OBJECT_TYPES:
            raise RecordRejected(
                f"HubSpot connector has no object type {object_type!r}",
                code="INVALID_OBJECT_TYPE",
                system=self.system,
            )

    def _check_batch(self, items: Sequence[Any]) -> None:
        if len(items) > BATCH:
            raise ConnectorError(
                f"a HubSpot batch takes at most {BATCH} records, got {len(items)}",
                system=self.system,
            )

    def _split_fields(
        self, object_type: str, fields: Sequence[str]
    ) -> tuple[list[str], list[AssociationField]]:
        """Properties to request (always the modified date and merges) and association fields."""
        pseudo = {assoc.name: assoc for assoc in ASSOCIATIONS.get(object_type, ())}
        wanted = [pseudo[f] for f in dict.fromkeys(fields) if f in pseudo]
        properties = [f.split(".", 1)[0] for f in fields if f not in pseudo]
        properties.extend((MODIFIED_PROPERTY[object_type], MERGED))
        return list(dict.fromkeys(properties)), wanted

    def _record(
        self, object_type: str, item: Mapping[str, Any], fields: Sequence[str]
    ) -> RemoteRecord:
        props: Mapping[str, Any] = item.get("properties") or {}
        record_id = str(item["id"])
        stamp = props.get(MODIFIED_PROPERTY[object_type]) or item.get("updatedAt")
        modified_at = _vendor_stamp(stamp, f"{object_type} {record_id}", "modified time")
        merged = props.get(MERGED)
        merged_ids = (
            tuple(m for m in str(merged).split(";") if m.strip() and m != record_id)
            if merged
            else ()
        )
        values = {f: props.get(f) for f in fields} if fields else dict(props)
        return RemoteRecord(record_id, modified_at, values, merged_ids=merged_ids)

    def _list_page(
        self, object_type: str, after: str | None, fields: Sequence[str], *, archived: bool
    ) -> Page:
        properties, wanted = self._split_fields(object_type, fields)
        params: dict[str, Any] = {
            "limit": self.settings.page_size,
            "properties": ",".join(properties),
            "archived": "true" if archived else "false",
        }
        if after:
            params["after"] = after
        body = self._api.get(f"/crm/v3/objects/{object_type}", params=params).json
        records = [self._record(object_type, item, fields) for item in _results(body)]
        records = self._with_associations(object_type, records, wanted)
        following = _next_after(body)
        return Page(records, encode_token({"m": "l", "a": following}) if following else None)

    def _search_page(self, object_type: str, cursor: SearchCursor, fields: Sequence[str]) -> Page:
        properties, wanted = self._split_fields(object_type, fields)
        modified = MODIFIED_PROPERTY[object_type]
        body = self._search.post(
            f"/crm/v3/objects/{object_type}/search",
            json=cursor.request(modified, properties),
            idempotent=True,
        ).json
        records = [self._record(object_type, item, fields) for item in _results(body)]
        seen = [(r.id, to_epoch_ms(r.modified_at)) for r in records]
        # Only whether more follows matters: the next page is a fresh query, not an offset.
        drop, following = cursor.advance(seen, _next_after(body) is not None)
        records = [r for r in records if r.id not in drop]
        records = self._with_associations(object_type, records, wanted)
        token = encode_token(cursor_state(following)) if following is not None else None
        return Page(records, token)

    # ------------------------------------------------------------------------------- associations

    def _associations(
        self, from_type: str, to_type: str, ids: Sequence[str]
    ) -> dict[str, dict[str, set[int]]]:
        """``{from id: {to id: {type ids}}}`` through v4 batch read, following per-id paging."""
        found: dict[str, dict[str, set[int]]] = {rid: {} for rid in ids}
        inputs: list[dict[str, Any]] = [{"id": rid} for rid in dict.fromkeys(ids)]
        while inputs:
            body = self._api.post(
                f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                json={"inputs": inputs},
                idempotent=True,
            ).json
            inputs = []
            # Ids without associations come back in errors[] (NO_ASSOCIATIONS_FOUND): nothing to do.
            for result in _results(body):
                source = str((result.get("from") or {}).get("id"))
                links = found.setdefault(source, {})
                for target in result.get("to") or ():
                    types = {
                        int(t["typeId"])
                        for t in target.get("associationTypes") or ()
                        if isinstance(t, Mapping) and t.get("typeId") is not None
                    }
                    # v4 sends toObjectId as a JSON number though the spec says string.
                    links.setdefault(str(target["toObjectId"]), set()).update(types)
                following = _next_after(result)
                if following:
                    inputs.append({"id": source, "after": following})
        return found

    def _with_associations(
        self, object_type: str, records: list[RemoteRecord], wanted: Sequence[AssociationField]
    ) -> list[RemoteRecord]:
        if not wanted or not records:
            return records
        ids = [r.id for r in records]
        values: dict[str, dict[str, Any]] = {rid: {} for rid in ids}
        for assoc in wanted:
            links = self._associations(object_type, assoc.to_type, ids)
            for rid in ids:
                values[rid][assoc.name] = _reference_value(assoc, links.get(rid, {}))
        return [
            RemoteRecord(r.id, r.modified_at, {**r.fields, **values[r.id]}, r.deleted, r.merged_ids)
            for r in records
        ]

    def _write_associations(
        self,
        object_type: str,
        inputs: Sequence[VendorFields],
        outcomes: list[WriteResult],
        *,
        creating: bool,
        fresh: set[int] | frozenset[int] = frozenset(),
        associated: set[int] | frozenset[int] = frozenset(),
    ) -> list[WriteResult]:
        """Make each written record's associations what its pseudo-fields say.

        Current associations are read first (an upserted contact may have some already; the
        ``fresh`` inputs, made by this very call, have none), then missing ones created with
        the HUBSPOT_DEFINED type and stale ones archived; the ``associated`` inputs, created
        with theirs inline, are left as they are. A record
        whose association write fails is reported as failed: its properties were written, the
        hub retries it, and writing the same values again is harmless.
        """
        for assoc in ASSOCIATIONS.get(object_type, ()):
            targets = {
                i: _wanted_ids(fields[assoc.name])
                for i, fields in enumerate(inputs)
                if assoc.name in fields
                and i not in associated
                and outcomes[i].ok
                and outcomes[i].remote_id
            }
            if not targets:
                continue
            ids = {i: str(outcomes[i].remote_id) for i in targets}
            existing = [rid for i, rid in ids.items() if i not in fresh]
            current = self._associations(object_type, assoc.to_type, existing) if existing else {}
            to_create: list[tuple[int, str, str]] = []
            to_remove: list[tuple[int, str, str]] = []
            for i, want in targets.items():
                rid = ids[i]
                have = current.get(rid, {})
                mine = set(have) if assoc.many else _primary_ids(assoc, have)
                to_create.extend(
                    (i, rid, t)
                    for t in sorted(want, key=_id_key)
                    if t not in have or assoc.type_id not in have[t]
                )
                to_remove.extend((i, rid, t) for t in sorted(mine - want, key=_id_key))
            failures = self._associate(object_type, assoc, to_create, to_remove)
            for i, message in failures.items():
                verb = "creating" if creating else "updating"
                outcomes[i] = WriteResult(
                    None,
                    None,
                    RecordRejected(
                        f"{object_type} {ids[i]}: properties written, but {verb} its "
                        f"{assoc.name} association failed: {message}",
                        code="ASSOCIATION_FAILED",
                        field=assoc.name,
                        system=self.system,
                    ),
                )
        return outcomes

    def _associate(
        self,
        object_type: str,
        assoc: AssociationField,
        to_create: list[tuple[int, str, str]],
        to_remove: list[tuple[int, str, str]],
    ) -> dict[int, str]:
        failures: dict[int, str] = {}
        path = f"/crm/v4/associations/{object_type}/{assoc.to_type}"
        spec = _hubspot_defined(assoc)
        for start in range(0, len(to_remove), BATCH):
            chunk = to_remove[start : start + BATCH]
            grouped: dict[str, list[str]] = {}
            for _, rid, target in chunk:
                grouped.setdefault(rid, []).append(target)
            self._association_call(
                f"{path}/batch/archive",
                [
                    {"from": {"id": rid}, "to": [{"id": t} for t in ts]}
                    for rid, ts in grouped.items()
                ],
                chunk,
                failures,
                json_answer=False,
            )
        for start in range(0, len(to_create), BATCH):
            chunk = to_create[start : start + BATCH]
            self._association_call(
                f"{path}/batch/create",
                [{"from": {"id": rid}, "to": {"id": t}, "types": spec} for _, rid, t in chunk],
                chunk,
                failures,
                json_answer=True,
            )
        return failures

    def _association_call(
        self,
        path: str,
        inputs: list[dict[str, Any]],
        chunk: list[tuple[int, str, str]],
        failures: dict[int, str],
        *,
        json_answer: bool,
    ) -> None:
        try:
            response = self._api.post(
                path, json={"inputs": inputs}, idempotent=True, expect_json=json_answer
            )
        except RecordRejected as exc:
            for i, _, _ in chunk:
                failures.setdefault(i, exc.message)
            return
        errors = response.json.get("errors") if isinstance(response.json, Mapping) else None
        for error in errors or ():
            named = _named_ids(error)
            message = str(error.get("message") or error.get("category") or "rejected")
            hit = [i for i, rid, t in chunk if rid in named or t in named]
            # An error that names no input we sent cannot be placed: fail them all, safely.
            for i in hit or [i for i, _, _ in chunk]:
                failures.setdefault(i, message)

    # ------------------------------------------------------------------------------- writing

    def _properties(self, object_type: str, fields: VendorFields) -> dict[str, str]:
        pseudo = {assoc.name for assoc in ASSOCIATIONS.get(object_type, ())}
        return {name: _text(value) for name, value in fields.items() if name not in pseudo}

    def _missing(self) -> WriteResult:
        return WriteResult(
            None,
            None,
            RecordRejected(
                "HubSpot answered without a result for this record",
                code="NO_RESULT",
                system=self.system,
            ),
        )

    def _batch(
        self,
        path: str,
        inputs: list[dict[str, Any]],
        *,
        idempotent: bool,
    ) -> list[Mapping[str, Any] | RecordRejected]:
        """Send a batch; where HubSpot refuses it whole (400/409/404) for one record, split it
        until that record stands alone. Returns, per input, its result or its rejection; a 200/207
        answer is returned as a mapping with ``results``/``errors`` under the key ``_answer``."""
        try:
            body = self._api.post(path, json={"inputs": inputs}, idempotent=idempotent).json
        except RecordRejected as exc:
            if len(inputs) == 1:
                exc.system = self.system
                return [exc]
            half = len(inputs) // 2
            return self._batch(path, inputs[:half], idempotent=idempotent) + self._batch(
                path, inputs[half:], idempotent=idempotent
            )
        return _match(inputs, body if isinstance(body, Mapping) else {}, self.system)

    def _upsert_contacts(
        self,
        order: list[int],
        properties: list[dict[str, str]],
        outcomes: list[WriteResult | None],
        fresh: set[int],
    ) -> None:
        inputs = [
            {
                "id": properties[i]["email"],
                "idProperty": "email",
                "properties": properties[i],
                "objectWriteTraceId": str(i),
            }
            for i in order
        ]
        # Upserting the same values twice gives the same record: safe to retry.
        answers = self._batch("/crm/v3/objects/contacts/batch/upsert", inputs, idempotent=True)
        for i, answer in zip(order, answers, strict=True):
            outcomes[i] = self._outcome(answer)
            if isinstance(answer, Mapping) and answer.get("new") is True:
                fresh.add(i)

    def _create_plain(
        self,
        object_type: str,
        order: list[int],
        records: Sequence[VendorFields],
        properties: list[dict[str, str]],
        outcomes: list[WriteResult | None],
        conflicts: list[tuple[int, str]],
    ) -> None:
        # Every input carries a trace id: only then does HubSpot answer 207 instead of failing
        # the whole batch for one record.
        inputs: list[dict[str, Any]] = []
        for i in order:
            item: dict[str, Any] = {"properties": properties[i], "objectWriteTraceId": str(i)}
            inline = _inline_associations(object_type, records[i])
            if inline:
                item["associations"] = inline
            inputs.append(item)
        answers = self._batch(
            f"/crm/v3/objects/{object_type}/batch/create", inputs, idempotent=False
        )
        for i, answer in zip(order, answers, strict=True):
            if isinstance(answer, ContactExists):
                conflicts.append((i, answer.existing_id))
                continue
            outcomes[i] = self._outcome(answer)

    def _update_batch(
        self, object_type: str, changes: Sequence[tuple[str, dict[str, str]]]
    ) -> list[WriteResult]:
        inputs = [{"id": rid, "properties": props} for rid, props in changes]
        answers = self._batch(
            f"/crm/v3/objects/{object_type}/batch/update", inputs, idempotent=True
        )
        return [self._outcome(answer) for answer in answers]

    def _outcome(self, answer: Mapping[str, Any] | RecordRejected) -> WriteResult:
        if isinstance(answer, RecordRejected):
            answer.system = self.system
            return WriteResult(None, None, answer)
        try:
            modified_at = parse_vendor_datetime(str(answer["updatedAt"]))
        except (KeyError, ValueError):
            # The write happened; without a stamp the hub compares content on the next read.
            modified_at = None
        return WriteResult(str(answer["id"]), modified_at)


# ------------------------------------------------------------------------------------ helpers


def _vendor_stamp(stamp: Any, record: str, what: str) -> datetime:
    """A record's date-time as HubSpot sent it; garbage there is HubSpot's answer that cannot be
    used (VendorError naming the record and the value), never a crash of the run."""
    try:
        return parse_vendor_datetime(str(stamp))
    except ValueError:
        shown = "nothing" if not stamp else repr(str(stamp)[:40])
        raise VendorError(f"HubSpot {record} came without a readable {what} ({shown})") from None


def _results(body: Any) -> list[Mapping[str, Any]]:
    if not isinstance(body, Mapping):
        raise VendorError("HubSpot answered without a JSON object")
    results = body.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise VendorError("HubSpot answered with results that are not a list")
    return [r for r in results if isinstance(r, Mapping)]


def _parse_enumerations(body: Any) -> dict[str, _Enumeration]:
    """The enumeration properties of a ``GET /crm/v3/properties/{type}`` answer, by name."""
    found: dict[str, _Enumeration] = {}
    for prop in _results(body):
        name = prop.get("name")
        if prop.get("type") != "enumeration" or not isinstance(name, str):
            continue
        values = frozenset(
            str(option["value"])
            for option in prop.get("options") or ()
            if isinstance(option, Mapping) and option.get("value") is not None
        )
        found[name] = _Enumeration(values, external=bool(prop.get("externalOptions")))
    return found


def _parse_pipelines(body: Any) -> dict[str, frozenset[str]]:
    """The live pipeline ids and stage ids of a ``GET /crm/v3/pipelines/{type}`` answer."""
    pipelines: set[str] = set()
    stages: set[str] = set()
    for pipeline in _results(body):
        if pipeline.get("archived") or pipeline.get("id") is None:
            continue
        pipelines.add(str(pipeline["id"]))
        stages.update(
            str(stage["id"])
            for stage in pipeline.get("stages") or ()
            if isinstance(stage, Mapping)
            and stage.get("id") is not None
            and not stage.get("archived")
        )
    return {"pipeline": frozenset(pipelines), "stage": frozenset(stages)}


def _next_after(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return None
    paging = body.get("paging")
    following = (paging or {}).get("next") if isinstance(paging, Mapping) else None
    after = following.get("after") if isinstance(following, Mapping) else None
    return str(after) if after not in (None, "") else None


def _wanted_ids(value: Any) -> set[str]:
    if value is None or value == "":
        return set()
    items: Iterable[Any] = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return {str(item).strip() for item in items if item is not None and str(item).strip()}


def _hubspot_defined(assoc: AssociationField) -> list[dict[str, Any]]:
    return [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": assoc.type_id}]


def _inline_associations(object_type: str, fields: VendorFields) -> list[dict[str, Any]]:
    """A new record's associations, as ``batch/create`` takes them with its properties."""
    return [
        {"to": {"id": target}, "types": _hubspot_defined(assoc)}
        for assoc in ASSOCIATIONS.get(object_type, ())
        if assoc.name in fields
        for target in sorted(_wanted_ids(fields[assoc.name]), key=_id_key)
    ]


def _primary_ids(assoc: AssociationField, have: Mapping[str, set[int]]) -> set[str]:
    return {target for target, types in have.items() if assoc.type_id in types}


def _reference_value(assoc: AssociationField, links: Mapping[str, set[int]]) -> Any:
    if assoc.many:
        return sorted(links, key=_id_key)
    primary = sorted(_primary_ids(assoc, links), key=_id_key)
    if primary:
        return primary[0]
    # No primary label (older data): the lowest id, so the value is stable from read to read.
    return min(links, key=_id_key) if links else None


def _named_ids(error: Mapping[str, Any]) -> set[str]:
    """Every id an error item names in its context, plus numbers in its message."""
    named: set[str] = set()
    context = error.get("context")
    if isinstance(context, Mapping):
        for values in context.values():
            if isinstance(values, list):
                named.update(str(v) for v in values)
    message = str(error.get("message") or "")
    named.update(word.strip("().,:") for word in message.split() if word.strip("().,:").isdigit())
    return named


def _match(
    inputs: list[dict[str, Any]], body: Mapping[str, Any], system: str
) -> list[Mapping[str, Any] | RecordRejected]:
    """Each input's result or rejection from a 200/207 batch answer.

    HubSpot does not promise input order, so results are matched by ``objectWriteTraceId``,
    then by id, then by email (upserts), and what is left in input order. Errors are matched by
    the trace id or the ids in their context.
    """
    answers: list[Mapping[str, Any] | RecordRejected | None] = [None] * len(inputs)
    by_trace = {
        str(x["objectWriteTraceId"]): n for n, x in enumerate(inputs) if "objectWriteTraceId" in x
    }
    by_id = {str(x["id"]).casefold(): n for n, x in enumerate(inputs) if "id" in x}
    for error in body.get("errors") or ():
        if not isinstance(error, Mapping):
            continue
        rejected = rejection(error, system=system)
        context = error.get("context")
        traces = context.get("objectWriteTraceId") if isinstance(context, Mapping) else None
        spots = [by_trace[str(t)] for t in traces or () if str(t) in by_trace]
        if not spots:
            spots = [by_id[n.casefold()] for n in _named_ids(error) if n.casefold() in by_id]
        for n in spots:
            answers[n] = rejected
    leftovers: list[Mapping[str, Any]] = []
    for result in _results(body):
        trace = result.get("objectWriteTraceId")
        slot = by_trace.get(str(trace)) if trace is not None else None
        if slot is None:
            slot = by_id.get(str(result.get("id")).casefold())
        if slot is None:
            email = (result.get("properties") or {}).get("email")
            slot = by_id.get(str(email).casefold()) if email else None
        if slot is None or answers[slot] is not None:
            leftovers.append(result)
            continue
        answers[slot] = result
    free = iter(n for n, a in enumerate(answers) if a is None)
    for result in leftovers:
        spare = next(free, None)
        if spare is None:
            break
        answers[spare] = result
    return [
        a
        if a is not None
        else RecordRejected(
            "HubSpot answered without a result for this record", code="NO_RESULT", system=system
        )
        for a in answers
    ]
