"""The connector protocol: what the hub asks of every CRM connector.

Public entry points: :class:`Connector`, :class:`ConnectorFactory`, :class:`RemoteRecord`,
:class:`Page`, :class:`WriteResult`, :class:`Capabilities`, :class:`SweepsIds`,
:class:`ReportsHeadroom` with :class:`Headroom`, :class:`DescribesPicklists`,
:func:`validated_settings`.

A connector speaks its vendor's API and vendor-shaped field names; it knows nothing of links,
canonical ids or merge rules. The hub maps vendor fields to the canonical schema with the field
maps of ``mappings/`` and translates references (a contact's company) to the vendor's own ids
before it calls ``create`` or ``update``.

Glossary (see DESIGN.md): an *object type* is ``companies``, ``contacts`` or ``deals``; a
*remote id* is the vendor's id of a record, always a string here; *modified_at* is the vendor's
own last-modified time, timezone-aware UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, TypedDict, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from connectors.errors import ConnectorConfigError, RecordRejected

SettingsT = TypeVar("SettingsT", bound=BaseModel)

VendorFields = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RemoteRecord:
    """One vendor record as read: its id, its modified time and its vendor-named fields.

    ``merged_ids`` lists the ids of records the vendor merged into this one (HubSpot's
    ``hs_merged_object_ids``, Zoho's merge): the hub moves their links here instead of creating
    a duplicate.
    """

    id: str
    modified_at: datetime
    fields: VendorFields
    deleted: bool = False
    merged_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a read. ``next_token`` is opaque to the hub; ``None`` means the last page."""

    records: Sequence[RemoteRecord]
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one record in a batch write, in the order the records were sent.

    On success ``remote_id`` and ``modified_at`` describe the stored record. On failure
    ``error`` holds the vendor's rejection in its own words and the rest of the batch stands.
    """

    remote_id: str | None
    modified_at: datetime | None = None
    error: RecordRejected | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector can do, so the hub plans without trial and error.

    ``upsert_keys`` names, per object type, the vendor field on which ``create`` upserts: a create
    on such an object type is idempotent, so the hub need not look the record up first after a
    crash. ``max_batch`` is the most records one write call takes. ``modified_precision`` is
    how finely the vendor stamps modified times: at a second (Zoho), an edit made in the same
    second as the hub's own write carries the same stamp, so the hub compares content instead
    of trusting an unchanged stamp.

    Two figures let a planner tell what a run costs before it starts. ``read_page_size`` is
    how many records one page of a full read (``read_changes`` with ``since=None``) returns
    when the account has more, as this connector is configured; one page is one list request,
    though a vendor may spend more on it (HubSpot reads each page's associations, Bitrix24 a
    deal page's contacts), and a connector's first page may be smaller (Bitrix24: 200, then
    2,500). ``records_per_write_request`` is how many records one write request carries
    (None: ``max_batch``; SuiteCRM, Insightly and Apptivo take one record per request however
    many the hub hands over at once). ``rate_windows`` are the connector's own client-side rate
    limits as (requests, seconds) pairs — HubSpot's ``((100, 10.0), (250000, 86400.0))`` —
    empty when it does not throttle itself; :meth:`least_seconds` turns them into the least
    time a number of requests can take.

    ``write_concurrency`` is how many write calls (``create``/``update``/``delete``, one batch
    each) the hub may have in flight on this connector at once, from as many threads: more than
    1 only where the connector is safe to call that way and the vendor allows as many requests
    in flight. Over a real network a batch spends most of its time waiting for the vendor, so
    this divides a large sync's write time nearly by its value.
    """

    object_types: frozenset[str]
    max_batch: int = 100
    detects_deletes: bool = False
    upsert_keys: Mapping[str, str] = field(default_factory=dict)
    modified_precision: timedelta = timedelta(milliseconds=1)
    read_page_size: int = 100
    # Calls a full read of every mapped field spends per record beyond its list pages, by
    # object type: HubSpot reads each page's associations (one call per association type a
    # page: 2/100 for deals), Bitrix24 a deal's contacts (one request per 50 deals).
    read_calls_per_record: Mapping[str, float] = field(default_factory=dict)
    records_per_write_request: int | None = None
    rate_windows: tuple[tuple[int, float], ...] = ()
    write_concurrency: int = 1

    @property
    def write_request_size(self) -> int:
        return self.records_per_write_request or self.max_batch

    @property
    def requests_per_second(self) -> float | None:
        """The sustained rate the windows allow, the tightest of them (100 per 10 s and
        250,000 a day sustain 250,000 / 86,400 ≈ 2.9 a second); None when unthrottled."""
        if not self.rate_windows:
            return None
        return min(amount / seconds for amount, seconds in self.rate_windows)

    def least_seconds(self, requests: int) -> float | None:
        """The least time ``requests`` can take under the rate windows, starting with every
        window's budget unspent (1,000 calls at 100 per 10 s: 90 s); None when unthrottled."""
        if not self.rate_windows:
            return None
        return max(
            max(0, math.ceil(requests / amount) - 1) * seconds
            for amount, seconds in self.rate_windows
        )


@runtime_checkable
class Connector(Protocol):
    """One configured CRM account. All methods may raise :mod:`connectors.errors` types.

    The hub calls a connector from one thread at a time (its reads on a reader thread), except
    its writes when ``capabilities.write_concurrency`` allows several at once.
    """

    system: str
    capabilities: Capabilities

    def check(self) -> None:
        """Reach the vendor and prove the credentials work; raise AuthError or Unreachable."""

    def read_changes(
        self,
        object_type: str,
        since: datetime | None,
        page_token: str | None,
        fields: Sequence[str],
    ) -> Page:
        """Records modified at or after ``since`` (all when None), one page.

        A vendor whose stamps are coarser than ``since`` may also return records up to
        ``capabilities.modified_precision`` older; the hub drops what it has seen already.
        """

    def read_deletes(
        self, object_type: str, since: datetime | None, page_token: str | None
    ) -> Page:
        """Records deleted at or after ``since``, as ``RemoteRecord(deleted=True)``, one page."""

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> list[RemoteRecord]:
        """The current state of the records with these ids; ids that do not exist are omitted."""

    def find(self, object_type: str, field: str, values: Sequence[str]) -> list[RemoteRecord]:
        """Records whose vendor ``field`` equals one of ``values`` (case-insensitively)."""

    def create(self, object_type: str, records: Sequence[VendorFields]) -> list[WriteResult]:
        """Create records; one result per record, in order."""

    def update(
        self, object_type: str, changes: Sequence[tuple[str, VendorFields]]
    ) -> list[WriteResult]:
        """Apply partial updates ``(remote_id, fields)``; a None value clears the field."""

    def delete(self, object_type: str, ids: Sequence[str]) -> list[WriteResult]:
        """Delete (or archive, where the vendor only archives) the records with these ids."""

    def close(self) -> None:
        """Release sessions and sockets."""


@runtime_checkable
class SweepsIds(Protocol):
    """A connector whose vendor never reports deletes (Bitrix24) offers the hub its live ids.

    The hub compares them with its links now and then: a linked id no longer listed was
    deleted. ``list_ids`` pages through every live record's id of an object type, cheaply
    (ids only); ``next_token`` None ends it.
    """

    def list_ids(self, object_type: str, page_token: str | None) -> tuple[list[str], str | None]:
        """One page of the ids of every live record of ``object_type``."""


@runtime_checkable
class DescribesPicklists(Protocol):
    """A connector whose vendor describes the values its picklist fields accept.

    A planner asks before a migration which source values the target would refuse. Values are
    the vendor's stored ones, as records carry them on the wire (HubSpot's option ``value``
    ``COMPUTER_SOFTWARE``, not its label; Zoho's ``actual_value``). The vendor's metadata is
    fetched once per object type and connector, however many fields are asked about.
    """

    def picklist(self, object_type: str, vendor_field: str) -> frozenset[str] | None:
        """The values the vendor accepts in this field, or None when it is not a picklist
        (free text, number...). Raises connectors.errors types like any call."""


class Headroom(TypedDict, total=False):
    """What a vendor last said about one of its rate-limit budgets, in its own figures.

    Every key is optional: a vendor says what it says. ``remaining`` is what is left of the
    budget and ``used`` what is spent (Bitrix24 reports its operating time spent, not left);
    ``limit`` is the budget's size; ``unit`` what they count, ``"requests"`` unless said
    (``"seconds"``: Bitrix24's operating time); ``window`` the span the budget covers as text
    (``"10s"``, ``"day"``, ``"10min"``); ``resets_at`` when the vendor says it refills,
    ISO-8601 UTC; ``scope`` what the budget is kept for when that is narrower than the account
    (Bitrix24 keeps one per REST method).
    """

    remaining: int | float
    used: int | float
    limit: int | float
    unit: str
    window: str
    resets_at: str
    scope: str


@runtime_checkable
class ReportsHeadroom(Protocol):
    """A connector whose vendor tells, in its answers, how much of its rate limits is left.

    ``headroom`` returns, per named budget (``"10s"``, ``"daily"``, ``"operating"``), the
    figures of the latest answer that reported that budget in this connector's life (one run),
    and nothing for a budget no answer reported. Only what the vendor said: a connector never
    fills in an estimate of its own, so a vendor that reports nothing is not a ReportsHeadroom.
    """

    def headroom(self) -> Mapping[str, Headroom]:
        """The latest figures of each budget the vendor reported, by budget name."""


class ConnectorFactory(Protocol):
    """What the ``crmhub.connectors`` entry point names: a class built from its settings.

    ``settings_model`` validates the system's keys of the config file (credentials, base URL);
    ``vendor`` names the default field map in ``mappings/maps/<vendor>.yaml``.
    """

    settings_model: ClassVar[type[BaseModel]]
    vendor: ClassVar[str]

    def __call__(self, system: str, settings: Any) -> Connector: ...


def validated_settings(
    model: type[SettingsT], settings: SettingsT | Mapping[str, Any], *, system: str, vendor: str
) -> SettingsT:
    """``settings`` as ``model``: as given when it is one, else validated from a mapping, every
    problem named by its key in one :class:`ConnectorConfigError` (values are never quoted:
    they may be credentials)."""
    if isinstance(settings, model):
        return settings
    try:
        return model.model_validate(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'settings'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ConnectorConfigError(
            f"invalid {vendor} settings: {problems}", system=system
        ) from None
