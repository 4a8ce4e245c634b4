"""A disk-backed staging area for the records one object pass has read.

Public entry points: :class:`Spool`, :class:`Staged`, :class:`SpoolGroupIndex`.

A run first reads the changes of every system, then reconciles them record by record; between
the two, the changes wait here rather than in memory, so a first sync of a million records
needs no more RAM than one of a thousand. It is a private SQLite file in the temp folder,
written without journaling (it is thrown away after the pass; a crash loses nothing that the
next run does not read again), independent of the state database, which may be PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from hub.matching import Group

_SCHEMA = """
CREATE TABLE staged (
    seq INTEGER PRIMARY KEY,
    system TEXT,
    remote_id TEXT,
    modified_at TEXT,
    vals TEXT,
    hash TEXT,
    canonical_id TEXT,
    fresh INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    rule TEXT
);
CREATE INDEX staged_canonical ON staged (canonical_id);
CREATE UNIQUE INDEX staged_remote ON staged (system, remote_id);
-- The records read and not deleted: a streamed pass counts and takes them every few pages,
-- while the rows it revisits and the deletes it read first wait for the end, however many.
CREATE INDEX staged_live ON staged (canonical_id) WHERE system IS NOT NULL AND deleted = 0;
CREATE TABLE match_groups (gid TEXT PRIMARY KEY, keys BLOB, members BLOB, existing INTEGER);
CREATE TABLE match_group_keys (key TEXT, gid TEXT, PRIMARY KEY (key, gid)) WITHOUT ROWID;
"""


class Staged(NamedTuple):
    """One record read in this pass (``system`` is None for a record revisited for the hub's
    own reasons: a pending write, a resolved conflict, a retried failure)."""

    # A named tuple rather than a frozen dataclass: a pass makes two per record (matching,
    # then reconciling), and a frozen dataclass's __init__ sets each field through
    # object.__setattr__, four times the cost of building the tuple.
    seq: int
    system: str | None
    remote_id: str | None
    modified_at: datetime | None
    values: dict[str, Any]
    hash: str | None
    canonical_id: str | None
    fresh: bool
    deleted: bool
    rule: str | None


_new_staged = tuple.__new__
_from_iso = datetime.fromisoformat
_loads = orjson.loads


def _staged(row: tuple[Any, ...]) -> Staged:
    seq, system, remote_id, modified, vals, hash_, canonical_id, fresh, deleted, rule = row
    return _new_staged(
        Staged,
        (
            seq,
            system,
            remote_id,
            _from_iso(modified) if modified else None,
            _loads(vals) if vals else {},
            hash_,
            canonical_id,
            fresh == 1,
            deleted == 1,
            rule,
        ),
    )


def _grouped(ids: list[str], rows: list[tuple[Any, ...]]) -> list[tuple[str, list[Staged]]]:
    """Staged rows ordered by canonical id, as ``(canonical id, its rows)`` in ``ids`` order."""
    page: dict[str, list[Staged]] = {cid: [] for cid in ids}
    for row in rows:
        page[row[6]].append(_staged(row))
    return list(page.items())


class Spool:
    """Staged records of one object pass; close() deletes the file."""

    def __init__(self, directory: str | None = None) -> None:
        fd, self.path = tempfile.mkstemp(prefix="crmhub-spool-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _batch(self) -> Iterator[None]:
        # Autocommit would make every row its own transaction; one per batch is ~50x faster.
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add_many(
        self,
        rows: Iterable[
            tuple[str, str, datetime, dict[str, Any] | None, str | None, str | None, bool]
        ],
    ) -> None:
        with self._batch():
            self._add_many(rows)

    def _add_many(
        self,
        rows: Iterable[
            tuple[str, str, datetime, dict[str, Any] | None, str | None, str | None, bool]
        ],
    ) -> None:
        self._db.executemany(
            # A record read twice in one pass (it changed while we paged, or it was deleted after
            # we read it) keeps only its latest state.
            "INSERT OR REPLACE INTO staged"
            " (system, remote_id, modified_at, vals, hash, canonical_id, deleted)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    system,
                    remote_id,
                    modified.isoformat(),
                    orjson.dumps(values) if values is not None else None,
                    hash_,
                    canonical_id,
                    int(deleted),
                )
                for system, remote_id, modified, values, hash_, canonical_id, deleted in rows
            ),
        )

    def revisit(self, canonical_ids: Iterable[str]) -> None:
        """Make the pass reconcile these canonical records even if no system changed them."""
        with self._batch():
            self._db.executemany(
                "INSERT INTO staged (canonical_id) VALUES (?)", ((cid,) for cid in canonical_ids)
            )

    def unlinked(self, batch: int) -> Iterator[list[Staged]]:
        """Records not yet tied to a canonical record, in read order, ``batch`` at a time."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT seq, system, remote_id, modified_at, vals, hash, canonical_id, fresh,"
                " deleted, rule FROM staged WHERE canonical_id IS NULL AND deleted = 0"
                " AND system IS NOT NULL AND seq > ? ORDER BY seq LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [_staged(row) for row in rows]

    def assign(self, assignments: Iterable[tuple[str, str, int]]) -> None:
        """Tie staged records to canonical records: ``(canonical_id, rule, seq)``."""
        with self._batch():
            self._db.executemany(
                "UPDATE staged SET canonical_id = ?, rule = ?, fresh = 1 WHERE seq = ?",
                assignments,
            )

    def drop(self, seqs: Iterable[int]) -> None:
        with self._batch():
            self._db.executemany("DELETE FROM staged WHERE seq = ?", ((seq,) for seq in seqs))

    def groups(self, page_size: int) -> Iterator[list[tuple[str, list[Staged]]]]:
        """Staged records grouped by canonical record, ``page_size`` canonical records a page."""
        last = ""
        while True:
            ids = [
                row[0]
                for row in self._db.execute(
                    "SELECT DISTINCT canonical_id FROM staged WHERE canonical_id > ?"
                    " ORDER BY canonical_id LIMIT ?",
                    (last, page_size),
                )
            ]
            if not ids:
                return
            last = ids[-1]
            rows = self._db.execute(
                "SELECT seq, system, remote_id, modified_at, vals, hash, canonical_id, fresh,"
                " deleted, rule FROM staged WHERE canonical_id >= ? AND canonical_id <= ?"
                " ORDER BY canonical_id, seq",
                (ids[0], ids[-1]),
            ).fetchall()
            yield _grouped(ids, rows)

    def count_live(self) -> int:
        """Records read and not deleted, matched or not."""
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM staged INDEXED BY staged_live"
                " WHERE system IS NOT NULL AND deleted = 0"
            ).fetchone()[0]
        )

    def take_live_groups(self, page_size: int) -> list[list[tuple[str, list[Staged]]]]:
        """The groups (as :meth:`groups` makes them) of the canonical records that a record
        read and matched belongs to, ``page_size`` a page, taken out of the spool."""
        ids = [
            row[0]
            for row in self._db.execute(
                "SELECT DISTINCT canonical_id FROM staged WHERE system IS NOT NULL"
                " AND deleted = 0 AND canonical_id IS NOT NULL ORDER BY canonical_id"
            )
        ]
        pages = []
        with self._batch():
            for start in range(0, len(ids), page_size):
                chunk = ids[start : start + page_size]
                marks = ", ".join("?" for _ in chunk)
                rows = self._db.execute(
                    "SELECT seq, system, remote_id, modified_at, vals, hash, canonical_id,"  # noqa: S608
                    f" fresh, deleted, rule FROM staged WHERE canonical_id IN ({marks})"
                    " ORDER BY canonical_id, seq",
                    chunk,
                ).fetchall()
                pages.append(_grouped(chunk, rows))
                self._db.execute(
                    f"DELETE FROM staged WHERE canonical_id IN ({marks})",  # noqa: S608
                    chunk,
                )
        return pages

    def deletions(self) -> dict[str, set[str]]:
        """Canonical id → the systems whose linked record this pass saw deleted."""
        found: dict[str, set[str]] = {}
        for system, canonical_id in self._db.execute(
            "SELECT system, canonical_id FROM staged WHERE deleted = 1"
        ):
            found.setdefault(canonical_id, set()).add(system)
        return found

    def group_index(self) -> SpoolGroupIndex:
        """The matcher's groups, kept here so a pass of a million records matches in flat
        memory."""
        return SpoolGroupIndex(self._db)

    def count_unlinked(self) -> int:
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM staged WHERE canonical_id IS NULL AND deleted = 0"
                " AND system IS NOT NULL"
            ).fetchone()[0]
        )

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM staged").fetchone()[0])

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SpoolGroupIndex:
    """:class:`hub.matching.GroupIndex` on the spool's SQLite file."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def load(self, keys: Iterable[str]) -> list[Group]:
        wanted = sorted(set(keys))
        groups: list[Group] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._db.execute(
                "SELECT gid, keys, members, existing FROM match_groups WHERE gid IN"  # noqa: S608
                f" (SELECT gid FROM match_group_keys WHERE key IN ({marks}))",
                chunk,
            ).fetchall()
            groups.extend(
                Group(
                    gid,
                    {int(index): key for index, key in orjson.loads(keys_blob).items()},
                    orjson.loads(members),
                    bool(existing),
                )
                for gid, keys_blob, members, existing in rows
            )
        return groups

    def save(self, groups: Iterable[Group]) -> None:
        rows = [
            (
                group.canonical_id,
                orjson.dumps({str(i): key for i, key in group.keys.items()}),
                orjson.dumps(group.members),
                int(group.existing),
            )
            for group in groups
        ]
        if not rows:
            return
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO match_groups VALUES (?, ?, ?, ?)", rows)
            self._db.executemany(
                "INSERT OR IGNORE INTO match_group_keys VALUES (?, ?)",
                ((key, group.canonical_id) for group in groups for key in group.keys.values()),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
