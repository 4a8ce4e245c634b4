"""The links a dry run would make, kept on disk for the rest of that run.

Public entry points: :class:`PlannedLinks` and :data:`PLANNED_ID`.

A dry run commits nothing, yet a later object type needs the links an earlier one would have
made: a deal's company resolves through them (and with it the deal's match key, name+company),
and a reference is planned as written only when its record would exist in the target. They
wait here, in a private SQLite file in the temp folder like the spool's, so a dry run of a
million records holds no more of them in memory than one of a thousand. Closing deletes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from itertools import islice

__all__ = ["PLANNED_ID", "PlannedLinks"]

PLANNED_ID = "(to be created)"
"""The remote id a dry run writes in a reference to a record it would create."""

_SCHEMA = """
CREATE TABLE planned (
    object_type TEXT NOT NULL,
    system TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    canonical_id TEXT NOT NULL,
    PRIMARY KEY (object_type, system, remote_id)
) WITHOUT ROWID;
CREATE INDEX planned_canonical ON planned (object_type, canonical_id);
"""
# Ids per query: one JSON array each.
_CHUNK = 1000


class PlannedLinks:
    """(object type, system, remote id) ↔ canonical id, for one dry run."""

    def __init__(self, directory: str | None = None) -> None:
        self._path: str | None = None
        self._db: sqlite3.Connection | None = None
        self._directory = directory

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            fd, self._path = tempfile.mkstemp(
                prefix="crmhub-dry-run-", suffix=".sqlite", dir=self._directory
            )
            os.close(fd)
            self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.executescript(_SCHEMA)
        return self._db

    def add(self, object_type: str, links: Iterable[tuple[str, str, str]]) -> None:
        """Remember (system, remote id, canonical id) triples of one object type; a record
        the run would create has the remote id :data:`PLANNED_ID` in its system."""
        rows = [
            # Placeholders differ per record: the key is (object type, system, remote id).
            (object_type, system, f"{PLANNED_ID} {cid}" if rid == PLANNED_ID else rid, cid)
            for system, rid, cid in links
        ]
        if not rows:
            return
        db = self._open()
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO planned VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")

    def canonical_ids(
        self, object_type: str, system: str, remote_ids: Iterable[str]
    ) -> dict[str, str]:
        """remote id → canonical id, for those of ``remote_ids`` the run would link."""
        if self._db is None:
            return {}
        found: dict[str, str] = {}
        for chunk in _chunks(remote_ids):
            found.update(
                self._db.execute(
                    "SELECT remote_id, canonical_id FROM planned WHERE object_type = ? AND "
                    "system = ? AND remote_id IN (SELECT value FROM json_each(?))",
                    (object_type, system, json.dumps(chunk)),
                )
            )
        return found

    def remote_ids(
        self, object_type: str, canonical_ids: Iterable[str]
    ) -> dict[str, dict[str, str]]:
        """canonical id → system → remote id (or :data:`PLANNED_ID`) the run would link."""
        if self._db is None:
            return {}
        found: dict[str, dict[str, str]] = {}
        for chunk in _chunks(canonical_ids):
            rows = self._db.execute(
                "SELECT canonical_id, system, remote_id FROM planned WHERE object_type = ? AND "
                "canonical_id IN (SELECT value FROM json_each(?))",
                (object_type, json.dumps(chunk)),
            )
            for cid, system, rid in rows:
                found.setdefault(cid, {})[system] = (
                    PLANNED_ID if rid.startswith(PLANNED_ID) else rid
                )
        return found

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            self._path = None


def _chunks(items: Iterable[str]) -> Iterable[Sequence[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, _CHUNK)):
        yield chunk
