"""The audit trail's hash chain: sealing entries as they are appended, verifying, pruning.

Public entry points: :func:`seal`, :func:`take_append_lock`, :func:`verify`,
:func:`verify_file`, :func:`prune`, :func:`entry_hash`, :class:`Verification`, :class:`Finding`,
:class:`Pruned`, :class:`AuditError`, :class:`ArchiveError`, :data:`GENESIS`, :data:`ENTRY_COLUMNS`.

Every audit entry stores ``prev_hash``, the hash of the entry appended just before it, and
``hash``, SHA-256 over its own content and ``prev_hash`` (:func:`entry_hash`). The id is not part
of the hash: the chain's order is the links between hashes, so entries whose ids were swapped
are reported as reordered, not as edited. Ids are given here, one after another, so a removed
entry also leaves a gap. The ``audit_chain`` row holds the newest entry's id and hash (the head),
which is what tells a removed newest entry from one never written; ``audit_anchors`` holds one
row per prune: the hash the oldest remaining entry follows.

Appends are serialised by a lock held until the appending transaction commits: a
transaction-level advisory lock on PostgreSQL; on SQLite, the database's single write lock,
taken by writing the head row before reading it. One read of the head per transaction, hashes
computed here, in Python.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update

from hub.tables import audit_anchors, audit_chain, audit_entries, utcnow

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry ever appended."""

# pg_advisory_xact_lock key of audit appends: any constant of our own ("audit").
_APPEND_LOCK_KEY = 0x6175646974

# How far back a broken link looks for the entry it names, to tell reordered from removed.
# Bounds the memory of a verification whatever the length of the chain.
_RECENT = 10_000

# An audit entry's fields, in the order archives (`audit prune --export`) and CSV logs use.
ENTRY_COLUMNS = (
    "id",
    "at",
    "run_id",
    "sync",
    "system",
    "object_type",
    "remote_id",
    "canonical_id",
    "action",
    "changes",
    "reason",
    "prev_hash",
    "hash",
)


class AuditError(Exception):
    """A prune that cannot be done, or an export that cannot be read: the message says why,
    and nothing was deleted. ``exit_code`` is the CLI's: 2 for a request to correct, 1 when the
    chain or the file is damaged or another prune ran meanwhile."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ArchiveError(AuditError):
    """An export file that cannot be read as audit entries (damaged, or not an export)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


@lru_cache(maxsize=4096)
def _instant(at: datetime) -> str:
    # A page's entries share one timestamp: cached.
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r} in an audit entry")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(entry: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 of an entry's content and the hash of the entry before it.

    The serialisation is a contract: every stored chain was hashed with it, so it never
    changes. Times count to the microsecond in UTC; ``changes`` is hashed as the JSON it is
    stored as (keys sorted).
    """
    body = (
        prev_hash,
        _instant(entry["at"]),
        entry.get("run_id"),
        entry["sync"],
        entry.get("system"),
        entry["object_type"],
        entry.get("remote_id"),
        entry.get("canonical_id"),
        entry["action"],
        entry.get("changes"),
        entry.get("reason"),
    )
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


# --------------------------------------------------------------------------- append


def _lock_head(conn: Connection) -> tuple[int, str]:
    """Take the append lock for the rest of the transaction; the head's id and hash."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK_KEY})
        head = conn.execute(select(audit_chain.c.last_id, audit_chain.c.last_hash)).first()
    else:
        # Writing the head first: on SQLite a transaction's first write waits for the database's
        # write lock, and the head read after it cannot be one another writer is about to move.
        head = conn.execute(
            update(audit_chain)
            .values(last_id=audit_chain.c.last_id)
            .returning(audit_chain.c.last_id, audit_chain.c.last_hash)
        ).first()
    if head is None:
        raise RuntimeError("the audit chain has no head row: the database is not migrated")
    return int(head.last_id), str(head.last_hash)


def take_append_lock(conn: Connection) -> None:
    """Take the append lock for the rest of the transaction, ahead of its first append.

    For a transaction that changes rows a sync's page commit changes after its own append
    (conflicts, failed records) before it knows what to append: taking the locks in the same
    order as the sync, the two never wait for each other in a cycle.
    """
    _lock_head(conn)


def seal(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The entries as rows to insert in this transaction: each with its id, ``prev_hash`` and
    ``hash``, following the chain's head, which moves to the last of them.

    Holds the append lock until the transaction ends, so call it as late in the transaction
    as the caller can and insert the rows before committing.
    """
    if not entries:
        return []
    last_id, last_hash = _lock_head(conn)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        last_id += 1
        changes = entry.get("changes")
        row = {
            **entry,
            "id": last_id,
            "changes": dict(changes) if changes else None,
            "prev_hash": last_hash,
        }
        last_hash = row["hash"] = entry_hash(row, last_hash)
        rows.append(row)
    conn.execute(update(audit_chain).values(last_id=last_id, last_hash=last_hash))
    return rows


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the chain, named by the entry it concerns.

    ``problem`` is ``edited`` (its content, hash or link was changed), ``removed`` (entries ``id``
    through ``through`` are gone) or ``reordered`` (it no longer follows the entry it was
    appended after); ``detail`` says so in a sentence.
    """

    id: int
    problem: str
    detail: str
    through: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "through": self.through,
            "problem": self.problem,
            "detail": self.detail,
        }


@dataclass
class Verification:
    """What a walk of the chain found: how many entries, where they start and end, and what is
    wrong (nothing, when :attr:`ok`)."""

    entries: int = 0
    first_id: int | None = None
    last_id: int | None = None
    # The hash the oldest entry follows (GENESIS, or the anchor of the last prune), and the
    # hash of the newest entry walked.
    start_hash: str = GENESIS
    head_hash: str = GENESIS
    findings: list[Finding] = field(default_factory=list)
    anchors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "start_hash": self.start_hash,
            "head_hash": self.head_hash,
            "problems": [finding.as_dict() for finding in self.findings],
            "anchors": self.anchors,
        }


class _Walk:
    """Checks entries one at a time, in id order, in constant memory.

    Each entry must hash to its ``hash`` and name, as ``prev_hash``, the hash of the entry
    before it. When it names another, the walk tells why: that entry sits elsewhere in the
    chain (reordered), ids are missing in between (removed), or no entry has that hash — the one
    before was re-hashed after an edit, which shows once the walk ends without finding it.
    """

    def __init__(self, start_id: int, start_hash: str, start_name: str) -> None:
        self.result = Verification(start_hash=start_hash, head_hash=start_hash)
        self.start_id = start_id
        self.start_name = start_name
        self.prev_id = start_id
        self.prev_hash = start_hash
        # hash → id of the newest entries, and of the moved ones among them.
        self.recent: OrderedDict[str, int] = OrderedDict()
        self.moved: set[int] = set()
        self.edited: set[int] = set()
        # A broken link waiting to be explained: the hash an entry names → (that entry, the
        # entry it sits after).
        self.dangling: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def add(self, finding: Finding) -> None:
        self.result.findings.append(finding)
        if finding.problem == "reordered":
            self.moved.add(finding.id)
        elif finding.problem == "edited":
            self.edited.add(finding.id)

    def feed(self, entry: Mapping[str, Any]) -> None:
        entry_id, stored, prev = int(entry["id"]), entry["hash"], entry["prev_hash"]
        result = self.result
        result.entries += 1
        if result.first_id is None:
            result.first_id = entry_id
        if entry_hash(entry, prev) != stored:
            self.add(Finding(entry_id, "edited", "its content no longer matches its hash"))
        waiting = self.dangling.pop(stored, None)
        if waiting is not None and entry_id not in self.moved:
            later, sits_after = waiting
            self.add(
                Finding(
                    later,
                    "reordered",
                    f"it was appended right after entry {entry_id}, "
                    f"but sits after {self._name(sits_after)}",
                )
            )
        if prev != self.prev_hash:
            self._broken_link(entry_id, prev)
        self.recent[stored] = entry_id
        if len(self.recent) > _RECENT:
            self.recent.popitem(last=False)
        self.prev_id, self.prev_hash = entry_id, stored
        result.last_id, result.head_hash = entry_id, stored

    def _broken_link(self, entry_id: int, prev: str) -> None:
        earlier = self.recent.get(prev)
        if earlier is not None:
            if earlier not in self.moved:
                self.add(
                    Finding(
                        entry_id,
                        "reordered",
                        f"it was appended right after entry {earlier}, "
                        f"but sits after {self._name(self.prev_id)}",
                    )
                )
        elif entry_id > self.prev_id + 1:
            self.add(
                Finding(
                    self.prev_id + 1,
                    "removed",
                    f"entry {entry_id} was appended after an entry that is no longer there",
                    through=entry_id - 1 if entry_id - 1 > self.prev_id + 1 else None,
                )
            )
        else:
            self.dangling[prev] = (entry_id, self.prev_id)
            if len(self.dangling) > _RECENT:
                self._unexplained(*self.dangling.popitem(last=False)[1])

    def _unexplained(self, entry_id: int, sits_after: int) -> None:
        if sits_after == self.start_id:
            self.add(
                Finding(
                    entry_id,
                    "edited",
                    f"it does not follow {self.start_name}: its prev_hash was rewritten, or "
                    "the entries before it were removed and the rest renumbered",
                )
            )
        elif sits_after not in self.edited:
            self.add(
                Finding(
                    sits_after,
                    "edited",
                    f"entry {entry_id} after it names a different hash: this entry was "
                    f"re-hashed after an edit, or entry {entry_id} was rewritten",
                )
            )

    def finish(self) -> Verification:
        while self.dangling:
            self._unexplained(*self.dangling.popitem(last=False)[1])
        self.result.findings.sort(key=lambda finding: finding.id)
        return self.result

    def _name(self, entry_id: int) -> str:
        return self.start_name if entry_id == self.start_id else f"entry {entry_id}"


def _anchor_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "pruned_at": row.pruned_at.isoformat(),
        "before": row.before.isoformat(),
        "first_id": row.first_id,
        "last_id": row.last_id,
        "entries": row.entries,
        "first_prev_hash": row.first_prev_hash,
        "last_hash": row.last_hash,
        "export": row.export,
    }


def verify(db: Engine, *, batch: int = 2000) -> Verification:
    """Walk the whole chain in the database, oldest first, streamed in constant memory.

    Starts from the anchor of the last prune (or :data:`GENESIS`), and ends at the head row:
    newest entries that were removed show as missing there. Entries appended while the walk
    runs are checked too.
    """
    with db.connect() as conn:
        head = conn.execute(select(audit_chain.c.last_id, audit_chain.c.last_hash)).one()
        anchors = conn.execute(select(audit_anchors).order_by(audit_anchors.c.id)).all()
    walk: _Walk
    if anchors:
        last = anchors[-1]
        walk = _Walk(
            last.last_id, last.last_hash, f"the anchor of the prune of {last.pruned_at:%Y-%m-%d}"
        )
    else:
        walk = _Walk(0, GENESIS, "the start of the chain")
    walk.result.anchors = [_anchor_dict(anchor) for anchor in anchors]
    previous = GENESIS
    for anchor in anchors:
        if anchor.first_prev_hash != previous:
            walk.add(
                Finding(
                    anchor.first_id,
                    "removed",
                    f"the prune of {anchor.pruned_at:%Y-%m-%d} (entries {anchor.first_id} to "
                    f"{anchor.last_id}) does not follow the prune before it",
                )
            )
        previous = anchor.last_hash
    with db.connect() as conn:
        streamed = conn.execution_options(yield_per=batch).execute(
            select(audit_entries).order_by(audit_entries.c.id)
        )
        for row in streamed:
            entry = dict(row._mapping)
            walk.feed(entry)
            if entry["id"] == head.last_id and entry["hash"] != head.last_hash:
                walk.add(
                    Finding(
                        head.last_id,
                        "edited",
                        "its hash is not the one the chain's head recorded when it was appended",
                    )
                )
    if walk.prev_id < head.last_id:
        walk.add(
            Finding(
                walk.prev_id + 1,
                "removed",
                f"the chain's head names entry {head.last_id} as the newest",
                through=head.last_id if head.last_id > walk.prev_id + 1 else None,
            )
        )
    return walk.finish()


def _file_entries(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
                entry["at"] = datetime.fromisoformat(entry["at"])
                if not all(name in entry for name in ENTRY_COLUMNS):
                    raise KeyError(sorted(set(ENTRY_COLUMNS) - set(entry)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ArchiveError(
                    f"{path} line {number} is not an audit entry ({type(exc).__name__}: {exc})"
                ) from exc
            yield entry


def verify_file(path: Path) -> Verification:
    """Walk an export written by :func:`prune` (JSON Lines, oldest first), streamed.

    The file alone cannot say what its first entry follows: its :attr:`Verification.start_hash`
    is that entry's ``prev_hash``, to compare with the anchor before it (or GENESIS), and its
    :attr:`Verification.head_hash` is the anchor the prune recorded.
    """
    entries = _file_entries(path)
    first = next(entries, None)
    if first is None:
        return Verification()
    walk = _Walk(int(first["id"]) - 1, first["prev_hash"], "the entry the export starts after")
    walk.feed(first)
    for entry in entries:
        walk.feed(entry)
    return walk.finish()


# --------------------------------------------------------------------------- prune


@dataclass(frozen=True)
class Pruned:
    """What a prune did: ``entries`` entries, ids ``first_id`` to ``last_id``, written to
    ``export`` and deleted; ``anchor`` is the hash the oldest remaining entry follows."""

    entries: int
    first_id: int | None
    last_id: int | None
    anchor: str | None
    export: Path | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "anchor": self.anchor,
            "export": str(self.export) if self.export else None,
        }


def _last_prunable(conn: Connection, before: datetime) -> int:
    """The id of the newest entry that goes: the chain is pruned from its start, so it stops
    at the first entry from ``before`` on, even if entries after that one are older (two syncs
    appending with clocks a little apart)."""
    first_kept = conn.execute(
        select(func.min(audit_entries.c.id)).where(audit_entries.c.at >= before)
    ).scalar()
    if first_kept is not None:
        return int(first_kept) - 1
    newest = conn.execute(select(func.max(audit_entries.c.id))).scalar()
    return int(newest) if newest is not None else 0


def _export_line(entry: Mapping[str, Any]) -> bytes:
    row = {name: entry[name] for name in ENTRY_COLUMNS}
    row["at"] = _instant(entry["at"])
    return orjson.dumps(row) + b"\n"


def prune(db: Engine, before: datetime, export: Path, *, batch: int = 2000) -> Pruned:
    """Archive the oldest entries, up to the first one at or after ``before``, to ``export``
    (JSON Lines, each entry with its hashes), then delete them and record the anchor the
    remaining chain starts from.

    Refuses (:class:`AuditError`, nothing deleted) when ``export`` exists or when the entries
    to prune do not verify: pruning would destroy the evidence. The file is complete and
    flushed to disk before anything is deleted.
    """
    if export.exists():
        raise AuditError(f"{export} exists: prune writes a new file and never replaces one")
    with db.connect() as conn:
        anchor = conn.execute(
            select(audit_anchors.c.last_id, audit_anchors.c.last_hash)
            .order_by(audit_anchors.c.id.desc())
            .limit(1)
        ).first()
        last_id = _last_prunable(conn, before)
    start_id, start_hash = (anchor.last_id, anchor.last_hash) if anchor else (0, GENESIS)
    if last_id <= start_id:
        return Pruned(0, None, None, None, None)
    walk = _Walk(
        start_id, start_hash, "the anchor of the last prune" if anchor else "the start of the chain"
    )
    partial = export.with_name(export.name + ".partial")
    try:
        with partial.open("wb") as out, db.connect() as conn:
            streamed = conn.execution_options(yield_per=batch).execute(
                select(audit_entries)
                .where(audit_entries.c.id <= last_id)
                .order_by(audit_entries.c.id)
            )
            for row in streamed:
                entry = dict(row._mapping)
                walk.feed(entry)
                out.write(_export_line(entry))
            out.flush()
            os.fsync(out.fileno())
        checked = walk.finish()
        if not checked.ok or checked.last_id is None:
            problems = "; ".join(
                f"entry {finding.id} {finding.problem}" for finding in checked.findings[:5]
            )
            raise AuditError(
                f"the entries to prune do not verify ({problems or 'none found'}): "
                "nothing pruned; crmhub audit verify says more",
                exit_code=1,
            )
        try:
            os.link(partial, export)  # unlike a rename, never replaces a file made meanwhile
        except FileExistsError:
            raise AuditError(
                f"{export} exists: prune writes a new file and never replaces one"
            ) from None
    finally:
        partial.unlink(missing_ok=True)
    _sync_directory(export.parent)
    with db.begin() as conn:
        _lock_head(conn)
        newest = conn.execute(select(func.max(audit_anchors.c.last_id))).scalar()
        if (newest or 0) != start_id:
            raise AuditError(
                f"another prune ran meanwhile: nothing pruned by this one ({export} is a copy)",
                exit_code=1,
            )
        conn.execute(delete(audit_entries).where(audit_entries.c.id <= checked.last_id))
        conn.execute(
            insert(audit_anchors).values(
                pruned_at=utcnow(),
                before=before,
                first_id=checked.first_id,
                last_id=checked.last_id,
                entries=checked.entries,
                first_prev_hash=start_hash,
                last_hash=checked.head_hash,
                export=str(export),
            )
        )
    return Pruned(checked.entries, checked.first_id, checked.last_id, checked.head_hash, export)


def _sync_directory(folder: Path) -> None:
    # The rename is durable only once the directory itself is flushed.
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
