"""Incremental reads through HubSpot's search API, past its 10,000-result cap, without loops.

Public entry points: :class:`SearchCursor` (``start``, ``request``, ``advance``), :data:`LIMIT`,
:data:`CAP`, and the page-token codec :func:`encode_token` / :func:`decode_token`.

HubSpot's search pages with an ``after`` offset and refuses (HTTP 400) any page past the 10,000th
result of one query. A read sorted by the modified-date property therefore runs in *windows*:
each window is a query "modified >= floor", paged by offset; before the next offset would cross
the cap, a new window starts at the last modified time seen (``floor``), skipping the ids already
returned at that instant. Restarting from a time alone loops forever when more records share one
millisecond than fit in a window (HubSpot's month-end jobs stamp >10k records alike; airbyte
#43317), so when the records of one instant fill a page, the cursor switches to a *tie* query
("modified == t and hs_object_id > last id", sorted by ``hs_object_id``), which pages by keyset
and has no cap, then resumes with the window "modified >= t + 1 ms".
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from connectors.errors import VendorError

__all__ = ["CAP", "LIMIT", "SearchCursor", "decode_token", "encode_token"]

LIMIT = 200  # the search API's largest page
CAP = 10_000  # results one search query pages through before HubSpot answers 400
OBJECT_ID = "hs_object_id"


@dataclass(frozen=True, slots=True)
class SearchCursor:
    """Where an incremental read stands.

    ``floor`` (epoch ms) is the window's inclusive lower bound and ``after`` the offset inside
    it; ``skip`` holds ids at ``floor`` that an earlier window already returned. ``tail_at`` and
    ``tail_ids`` are the newest instant returned in this window and the ids returned at it, so
    the next window can skip them. ``tie_after`` is set in tie mode: the last ``hs_object_id``
    returned among the records stamped exactly ``floor``.
    """

    floor: int
    after: int = 0
    skip: tuple[str, ...] = ()
    tail_at: int = 0
    tail_ids: tuple[str, ...] = ()
    tie_after: str | None = None

    @classmethod
    def start(cls, since_ms: int) -> SearchCursor:
        return cls(floor=since_ms, tail_at=since_ms)

    def request(self, modified: str, properties: Sequence[str]) -> dict[str, Any]:
        """The JSON body of this page's ``POST /crm/v3/objects/{type}/search``."""
        if self.tie_after is not None:
            filters = [
                {"propertyName": modified, "operator": "EQ", "value": str(self.floor)},
                {"propertyName": OBJECT_ID, "operator": "GT", "value": self.tie_after},
            ]
            sort = OBJECT_ID
        else:
            filters = [{"propertyName": modified, "operator": "GTE", "value": str(self.floor)}]
            sort = modified
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": LIMIT,
        }
        if self.after:
            body["after"] = str(self.after)
        return body

    def advance(
        self, page: Sequence[tuple[str, int]], next_after: str | None
    ) -> tuple[set[str], SearchCursor | None]:
        """Ids of ``page`` ((id, modified ms) in the order received) to drop as already
        returned, and the cursor of the next page (None: the read is complete)."""
        if self.tie_after is not None:
            return self._advance_tie(page, next_after)
        drop = {rid for rid, at in page if at == self.floor and rid in self.skip}
        tail_at, tail = self.tail_at, list(self.tail_ids)
        for rid, at in page:
            if at != tail_at:
                tail_at, tail = at, []
            tail.append(rid)
        if next_after is None:
            return drop, None
        try:
            offset = int(next_after)
        except ValueError:
            raise VendorError(f"HubSpot search sent a non-numeric after {next_after!r}") from None
        if len(tail) >= LIMIT:
            # A page's worth of records share one instant: time alone cannot move past them.
            return drop, SearchCursor(
                floor=tail_at, skip=tuple(tail), tail_at=tail_at, tie_after="0"
            )
        if offset + LIMIT > CAP:
            # The next window starts at the newest instant seen; its first page returns the ids
            # already read at that instant again, and ``skip`` drops them.
            return drop, SearchCursor(floor=tail_at, skip=tuple(tail), tail_at=tail_at)
        return drop, replace(self, after=offset, tail_at=tail_at, tail_ids=tuple(tail))

    def _advance_tie(
        self, page: Sequence[tuple[str, int]], next_after: str | None
    ) -> tuple[set[str], SearchCursor | None]:
        drop = {rid for rid, _ in page if rid in self.skip}
        if next_after is None or not page:
            following = self.floor + 1
            return drop, SearchCursor(floor=following, tail_at=following)
        return drop, replace(self, tie_after=page[-1][0])


def encode_token(state: dict[str, Any]) -> str:
    """An opaque, restart-safe page token (URL-safe base64 of compact JSON)."""
    raw = json.dumps(state, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError):
        raise VendorError(f"unreadable HubSpot page token {token[:40]!r}") from None
    if not isinstance(state, dict) or "m" not in state:
        raise VendorError(f"unreadable HubSpot page token {token[:40]!r}")
    return state


def cursor_state(cursor: SearchCursor) -> dict[str, Any]:
    return {
        "m": "s",
        "f": cursor.floor,
        "a": cursor.after,
        "s": list(cursor.skip),
        "t": cursor.tail_at,
        "i": list(cursor.tail_ids),
        "x": cursor.tie_after,
    }


def cursor_from_state(state: dict[str, Any]) -> SearchCursor:
    try:
        return SearchCursor(
            floor=int(state["f"]),
            after=int(state["a"]),
            skip=tuple(str(v) for v in state["s"]),
            tail_at=int(state["t"]),
            tail_ids=tuple(str(v) for v in state["i"]),
            tie_after=None if state["x"] is None else str(state["x"]),
        )
    except (KeyError, TypeError, ValueError):
        raise VendorError("unreadable HubSpot search page token") from None
