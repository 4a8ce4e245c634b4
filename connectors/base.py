"""The connector protocol: what the hub asks of every CRM connector.

Public entry points: :class:`Connector`, :class:`ConnectorFactory`, :class:`RemoteRecord`,
:class:`Page`, :class:`WriteResult`, :class:`Capabilities`, :class:`SweepsIds`,
:class:`ReportsHeadroom` with :class:`Headroom`, :func:`validated_settings`.

A connector speaks its vendor's API and vendor-shaped field names; it knows nothing of links,
canonical ids or merge rules. The hub maps vendor fields to the canonical schema with the field
maps of ``mappings/`` and translates references (a contact's company) to the vendor's own ids
before it calls ``create`` or ``update``.

Glossary (see DESIGN.md): an *object type* is ``companies``, ``contacts`` or ``deals``; a
*remote id* is the vendor's id of a record, always a string here; *modified_at* is the vendor's
own last-modified time, timezone-aware UTC.
"""

from __future__ import annotations

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
    """

    object_types: frozenset[str]
    max_batch: int = 100
    detects_deletes: bool = False
    upsert_keys: Mapping[str, str] = field(default_factory=dict)
    modified_precision: timedelta = timedelta(milliseconds=1)


@runtime_checkable
class Connector(Protocol):
    """One configured CRM account. All methods may raise :mod:`connectors.errors` types."""

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
