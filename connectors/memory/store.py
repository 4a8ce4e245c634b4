"""An in-process CRM: the vendor behind the in-memory connector.

Public entry points: :class:`MemoryStore`, :data:`DEFAULT_PROPERTIES`.

It behaves like a small vendor rather than a dict: it mints ids, stamps modified times from a
clock (which tests control), keeps tombstones so deletes can be read back, validates what it is
sent (unknown properties, malformed emails, duplicate contact emails, missing required names)
and rejects bad records with the same :class:`~connectors.errors.RecordRejected` a real
connector returns, so the sync engine is proven against real failure modes. It can persist
itself to a JSON file so that separate ``crmhub`` processes see one account.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sortedcontainers import SortedList

from connectors.errors import RecordRejected

Clock = Callable[[], datetime]

# The properties this "vendor" knows for each object type, as a CRM's schema would declare them.
DEFAULT_PROPERTIES: dict[str, frozenset[str]] = {
    "companies": frozenset(
        [
            "name",
            "domain",
            "website",
            "phone",
            "industry",
            "numberofemployees",
            "annualrevenue",
            "address",
            "city",
            "state",
            "zip",
            "country",
            "description",
        ]
    ),
    "contacts": frozenset(
        [
            "firstname",
            "lastname",
            "email",
            "phone",
            "mobilephone",
            "jobtitle",
            "company_id",
            "address",
            "city",
            "state",
            "zip",
            "country",
        ]
    ),
    "deals": frozenset(
        [
            "dealname",
            "amount",
            "deal_currency_code",
            "dealstage",
            "closedate",
            "pipeline",
            "company_id",
            "contact_ids",
        ]
    ),
}
REQUIRED: dict[str, str] = {"companies": "name", "deals": "dealname"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def _millisecond_clock() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(slots=True)
class StoredRecord:
    id: str
    modified_at: datetime
    fields: dict[str, Any]
    # Records merged into this one, as HubSpot's hs_merged_object_ids lists them.
    merged_ids: tuple[str, ...] = ()


class _ObjectTable:
    """One object type: records by id, an index ordered by (modified time, id), tombstones."""

    def __init__(self) -> None:
        self.records: dict[str, StoredRecord] = {}
        self.by_modified: SortedList = SortedList()
        self.tombstones: SortedList = SortedList()
        # Emails are unique per account, as in HubSpot; the index keeps that check O(1).
        self.emails: dict[str, str] = {}
        # Merged-away id → survivor id: like HubSpot, the old id still answers for the survivor.
        self.merged_into: dict[str, str] = {}
        self.next_id = 1

    def resolve(self, record_id: str) -> str:
        while record_id in self.merged_into:
            record_id = self.merged_into[record_id]
        return record_id

    def put(self, record: StoredRecord) -> None:
        old = self.records.get(record.id)
        if old is not None:
            self._unindex(old)
        self.records[record.id] = record
        self.by_modified.add((record.modified_at, _sort_id(record.id)))
        email = record.fields.get("email")
        if isinstance(email, str):
            self.emails[email.casefold()] = record.id

    def remove(self, record_id: str, deleted_at: datetime) -> None:
        self._unindex(self.records.pop(record_id))
        self.tombstones.add((deleted_at, _sort_id(record_id)))

    def _unindex(self, record: StoredRecord) -> None:
        self.by_modified.remove((record.modified_at, _sort_id(record.id)))
        email = record.fields.get("email")
        if isinstance(email, str) and self.emails.get(email.casefold()) == record.id:
            del self.emails[email.casefold()]


def _sort_id(record_id: str) -> tuple[int, str]:
    # Numeric ids sort numerically, like a vendor's, so paging order is stable and natural.
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)


def _unsort_id(key: tuple[int, str]) -> str:
    return key[1] or str(key[0])


class MemoryStore:
    """A thread-safe in-memory CRM account with optional JSON persistence."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        path: Path | None = None,
        extra_properties: Mapping[str, Sequence[str]] | None = None,
        unique_emails: bool = True,
    ) -> None:
        self.clock: Clock = clock or _millisecond_clock
        self.path = path
        self.unique_emails = unique_emails
        self._lock = threading.RLock()
        self._tables = {name: _ObjectTable() for name in DEFAULT_PROPERTIES}
        self.properties = {
            name: props | frozenset((extra_properties or {}).get(name, ()))
            for name, props in DEFAULT_PROPERTIES.items()
        }
        self.calls: dict[str, int] = {}
        self._dirty = False
        if path is not None and path.exists():
            self._load(path)

    # ----------------------------------------------------------------- reading

    def changed_since(
        self,
        object_type: str,
        since: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[StoredRecord]:
        """Up to ``limit`` records modified at or after ``since``, ordered by (modified, id),
        starting after the ``after`` position of a previous page."""
        table = self._table(object_type)
        with self._lock:
            if after is not None:
                start = table.by_modified.bisect_right((after[0], _sort_id(after[1])))
            elif since is not None:
                start = table.by_modified.bisect_left((since, (-1, "")))
            else:
                start = 0
            keys = table.by_modified.islice(start, start + limit)
            return [table.records[_unsort_id(sort_id)] for _, sort_id in keys]

    def deleted_since(self, object_type: str, since: datetime | None) -> list[tuple[datetime, str]]:
        table = self._table(object_type)
        with self._lock:
            start = 0 if since is None else table.tombstones.bisect_left((since, (-1, "")))
            return [(at, _unsort_id(key)) for at, key in table.tombstones.islice(start, None)]

    def get(self, object_type: str, record_id: str) -> StoredRecord | None:
        """The record with this id, or the one it was merged into; None when there is none."""
        table = self._table(object_type)
        return table.records.get(table.resolve(record_id))

    def all(self, object_type: str) -> list[StoredRecord]:
        with self._lock:
            return list(self._table(object_type).records.values())

    def count(self, object_type: str) -> int:
        return len(self._table(object_type).records)

    def find(self, object_type: str, field: str, values: Sequence[str]) -> list[StoredRecord]:
        wanted = {str(v).casefold() for v in values}
        with self._lock:
            return [
                record
                for record in self._table(object_type).records.values()
                if str(record.fields.get(field, "")).casefold() in wanted
            ]

    # ----------------------------------------------------------------- writing

    def create(self, object_type: str, fields: Mapping[str, Any]) -> StoredRecord:
        with self._lock:
            table = self._table(object_type)
            values = self._validated(object_type, fields, record_id=None)
            missing = REQUIRED.get(object_type)
            if missing and not values.get(missing):
                raise RecordRejected(
                    f"Property {missing!r} is required", code="REQUIRED_FIELD", field=missing
                )
            record = StoredRecord(str(table.next_id), self._stamp(), values)
            table.next_id += 1
            table.put(record)
            self._dirty = True
            return record

    def update(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> StoredRecord:
        with self._lock:
            table = self._table(object_type)
            record_id = table.resolve(record_id)
            current = table.records.get(record_id)
            if current is None:
                raise RecordRejected(
                    f"{object_type} record {record_id} does not exist", code="NOT_FOUND"
                )
            changes = self._validated(object_type, fields, record_id=record_id)
            merged = {**current.fields, **changes}
            merged = {k: v for k, v in merged.items() if v not in (None, "")}
            missing = REQUIRED.get(object_type)
            if missing and not merged.get(missing):
                raise RecordRejected(
                    f"Property {missing!r} is required", code="REQUIRED_FIELD", field=missing
                )
            record = StoredRecord(record_id, self._stamp(), merged, current.merged_ids)
            table.put(record)
            self._dirty = True
            return record

    def delete(self, object_type: str, record_id: str) -> datetime:
        with self._lock:
            table = self._table(object_type)
            if record_id not in table.records:
                raise RecordRejected(
                    f"{object_type} record {record_id} does not exist", code="NOT_FOUND"
                )
            deleted_at = self._stamp()
            table.remove(record_id, deleted_at)
            self._dirty = True
            return deleted_at

    def merge(self, object_type: str, survivor_id: str, absorbed_id: str) -> StoredRecord:
        """Merge ``absorbed_id`` into ``survivor_id``, as a user merging duplicates in the UI.

        The survivor keeps its values and takes the absorbed record's where it has none; the
        absorbed record is deleted and listed in the survivor's ``merged_ids``.
        """
        with self._lock:
            table = self._table(object_type)
            survivor, absorbed = table.records.get(survivor_id), table.records.get(absorbed_id)
            if survivor is None or absorbed is None or survivor_id == absorbed_id:
                raise RecordRejected(
                    f"cannot merge {object_type} {absorbed_id} into {survivor_id}",
                    code="INVALID_MERGE",
                )
            stamp = self._stamp()
            table.remove(absorbed_id, stamp)
            table.merged_into[absorbed_id] = survivor_id
            merged = StoredRecord(
                survivor_id,
                stamp,
                {**absorbed.fields, **survivor.fields},
                (*survivor.merged_ids, *absorbed.merged_ids, absorbed_id),
            )
            table.put(merged)
            self._dirty = True
            return merged

    def count_call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    # ----------------------------------------------------------------- persistence

    def save(self) -> None:
        """Write the account to ``path`` atomically (a crash leaves the old file or the new).

        Only after a change: a dry run or a check never creates or rewrites the file."""
        if self.path is None or not self._dirty:
            return
        with self._lock:
            data = {
                name: {
                    "next_id": table.next_id,
                    "records": [
                        [r.id, r.modified_at.isoformat(), r.fields, list(r.merged_ids)]
                        for r in table.records.values()
                    ],
                    "tombstones": [
                        [at.isoformat(), _unsort_id(key)] for at, key in table.tombstones
                    ],
                    "merged_into": table.merged_into,
                }
                for name, table in self._tables.items()
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            self._dirty = False

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for name, table_data in data.items():
                if name not in self._tables:
                    raise ValueError(f"unknown object type {name!r}")
                table = self._tables[name]
                table.next_id = int(table_data["next_id"])
                for record_id, modified, fields, *merged in table_data["records"]:
                    table.put(
                        StoredRecord(
                            record_id,
                            datetime.fromisoformat(modified),
                            fields,
                            tuple(merged[0]) if merged else (),
                        )
                    )
                table.merged_into = dict(table_data.get("merged_into", {}))
                for deleted_at, record_id in table_data["tombstones"]:
                    table.tombstones.add((datetime.fromisoformat(deleted_at), _sort_id(record_id)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"{path}: not a memory-connector store file ({detail})") from exc

    # ----------------------------------------------------------------- internals

    def _table(self, object_type: str) -> _ObjectTable:
        try:
            return self._tables[object_type]
        except KeyError:
            raise RecordRejected(
                f"unknown object type {object_type!r}", code="INVALID_OBJECT_TYPE"
            ) from None

    def _stamp(self) -> datetime:
        stamp = self.clock()
        if stamp.tzinfo is None:
            raise ValueError("the memory store's clock must return aware datetimes")
        return stamp.astimezone(UTC)

    def _validated(
        self, object_type: str, fields: Mapping[str, Any], *, record_id: str | None
    ) -> dict[str, Any]:
        known = self.properties[object_type]
        values: dict[str, Any] = {}
        for name, value in fields.items():
            if name not in known or not _PROPERTY_NAME.match(name):
                raise RecordRejected(
                    f"Property {name!r} does not exist on {object_type}",
                    code="PROPERTY_DOESNT_EXIST",
                    field=name,
                )
            if isinstance(value, (dict, set)):
                raise RecordRejected(
                    f"Property {name!r} takes a scalar or a list, not {type(value).__name__}",
                    code="INVALID_VALUE",
                    field=name,
                )
            values[name] = value
        email = values.get("email")
        if object_type == "contacts" and email:
            if not isinstance(email, str) or not _EMAIL.match(email):
                raise RecordRejected(
                    f"Email address {email!r} is invalid", code="INVALID_EMAIL", field="email"
                )
            existing = self._tables["contacts"].emails.get(email.casefold())
            if self.unique_emails and existing is not None and existing != record_id:
                raise RecordRejected(
                    f"Contact already exists. Existing ID: {existing}",
                    code="CONFLICT",
                    field="email",
                )
        return values


class ShiftedClock:
    """A deterministic clock for tests and benchmarks: each call is ``step`` after the last,
    and :meth:`advance` lets time pass between calls."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self._now = start - step
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._now += self._step
            return self._now

    def advance(self, span: timedelta) -> None:
        with self._lock:
            self._now += span


def shifted_clock(start: datetime, step: timedelta) -> ShiftedClock:
    """A :class:`ShiftedClock` starting at ``start``."""
    return ShiftedClock(start, step)
