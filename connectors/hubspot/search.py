"""Incremental reads through HubSpot's search API, keyset-paged so edits made mid-read lose nothing.

Public entry points: :class:`SearchCursor` (``start``, ``request``, ``advance``), :data:`LIMIT`,
and the page-token codec :func:`encode_token` / :func:`decode_token`.

HubSpot's search pages with an ``after`` *offset* into the sorted result. Sorted by the
modified-date property, that offset is unsafe: a record edited between two page requests jumps
from its place to the end, every record behind it moves up one place, and the record that was
just past the page boundary is skipped. Its modified time is older than the newest the read saw,
so the hub's cursor passes it and the update is lost for good.

So no page uses an offset. Every page is a fresh search "modified >= T", sorted ascending, 200 a
page, where T (``floor``) is the newest modified time handed out so far (``since`` at first).
Whatever the read has not handed out yet is still at or after T, wherever edits moved it, so the
next page finds it; an edit of a record already handed out only makes it come back, with its new
value, later in the same read. The records stamped exactly T that were already handed out come
back first and are dropped: their ids travel in the token (``seen``). Since no query pages past
its first page, HubSpot's 10,000-result cap on one query is never met.

When the ids already handed out at T are few (≤ 100), the query leaves them out itself
("modified == T and hs_object_id NOT_IN seen" or "modified > T"), so a page brings 200 new
records even after batch writes stamped many records alike.

Time alone cannot move past an instant shared by a page's worth of records (HubSpot's month-end
jobs stamp >10k records alike; airbyte #43317): when 200 ids at one instant have been handed out,
the cursor switches to a *tie* query ("modified == T and hs_object_id > last id", sorted by
``hs_object_id``), which is keyset-paged too, then resumes with "modified >= T + 1 ms". That rare
case costs one extra search call at its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.errors import ConnectorConfigError, VendorError
from connectors.paging import pack_token, unpack_token

__all__ = ["LIMIT", "SearchCursor", "decode_token", "encode_token"]

LIMIT = 200  # the search API's largest page
OBJECT_ID = "hs_object_id"
# The most ids one NOT_IN filter is given (HubSpot documents no bound; 100 matches its batch
# limits). More ids at one instant fall back to "modified >= floor" and dropping repeats.
NOT_IN_LIMIT = 100


def _id_order(record_id: str) -> tuple[int, str]:
    # HubSpot compares hs_object_id as a number: "99" < "100".
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)


@dataclass(frozen=True, slots=True)
class SearchCursor:
    """Where an incremental read stands.

    ``floor`` (epoch ms) is the inclusive lower bound of the next query: the newest modified time
    handed out so far. ``seen`` holds the ids handed out that are stamped exactly ``floor``, so
    the next page can drop them. ``tie_after`` is set in tie mode: the last ``hs_object_id``
    returned among the records stamped exactly ``floor`` (``"0"`` before the first tie page).
    """

    floor: int
    seen: tuple[str, ...] = ()
    tie_after: str | None = None

    @classmethod
    def start(cls, since_ms: int) -> SearchCursor:
        return cls(floor=since_ms)

    def request(self, modified: str, properties: Sequence[str]) -> dict[str, Any]:
        """The JSON body of this page's ``POST /crm/v3/objects/{type}/search``: never an
        ``after`` offset, so no edit between two pages can shift a record past a page edge."""
        if self.tie_after is not None:
            filters = [
                {"propertyName": modified, "operator": "EQ", "value": str(self.floor)},
                {"propertyName": OBJECT_ID, "operator": "GT", "value": self.tie_after},
            ]
            sort = OBJECT_ID
        elif self.seen and len(self.seen) <= NOT_IN_LIMIT:
            # What is left at the floor instant, or anything later: no record handed out comes
            # back, so a page holds 200 new records even when writes stamped many alike.
            return {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": modified, "operator": "EQ", "value": str(self.floor)},
                            {
                                "propertyName": OBJECT_ID,
                                "operator": "NOT_IN",
                                "values": list(self.seen),
                            },
                        ]
                    },
                    {
                        "filters": [
                            {"propertyName": modified, "operator": "GT", "value": str(self.floor)}
                        ]
                    },
                ],
                "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
                "properties": list(properties),
                "limit": LIMIT,
            }
        else:
            filters = [{"propertyName": modified, "operator": "GTE", "value": str(self.floor)}]
            sort = modified
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": LIMIT,
        }

    def advance(
        self, page: Sequence[tuple[str, int]], more: bool
    ) -> tuple[set[str], SearchCursor | None]:
        """Ids of ``page`` ((id, modified ms) in the order received) to drop as already handed
        out, and the cursor of the next page (None: the read is complete). ``more`` says whether
        HubSpot's answer had a next page."""
        if self.tie_after is not None:
            return self._advance_tie(page, more)
        drop = {rid for rid, at in page if at == self.floor and rid in self.seen}
        if not more or not page:
            # An empty page that claims more has nothing to page from; ending the read is safe:
            # the hub's cursor only moves to the newest record it was handed.
            return drop, None
        newest = max(self.floor, *(at for _, at in page))
        carried = self.seen if newest == self.floor else ()
        seen = tuple(dict.fromkeys([*carried, *(rid for rid, at in page if at == newest)]))
        if len(seen) >= LIMIT or (newest == self.floor and len(seen) == len(self.seen)):
            # A page's worth of records share one instant (or the page brought nothing new):
            # "modified >= floor" would answer the same page again. Page the instant by id.
            return drop, SearchCursor(floor=newest, seen=seen, tie_after="0")
        return drop, SearchCursor(floor=newest, seen=seen)

    def _advance_tie(
        self, page: Sequence[tuple[str, int]], more: bool
    ) -> tuple[set[str], SearchCursor | None]:
        drop = {rid for rid, _ in page if rid in self.seen}
        if not more or not page:
            return drop, SearchCursor(floor=self.floor + 1)
        last = page[-1][0]
        # Ids at or below the keyset never come back: the token need not carry them.
        seen = tuple(rid for rid in self.seen if _id_order(rid) > _id_order(last))
        return drop, SearchCursor(floor=self.floor, seen=seen, tie_after=last)


_PAGE_STATE_FORMAT = "hubspot/1"


def encode_token(state: dict[str, Any]) -> str:
    """An opaque, restart-safe page token (:func:`connectors.paging.pack_token`)."""
    return pack_token(state, kind=_PAGE_STATE_FORMAT)


def decode_token(token: str) -> dict[str, Any]:
    state = unpack_token(token, kind=_PAGE_STATE_FORMAT)
    if "m" not in state:
        raise ConnectorConfigError(
            f"not a page token of format {_PAGE_STATE_FORMAT}: {token[:40]!r}"
        )
    return state


def cursor_state(cursor: SearchCursor) -> dict[str, Any]:
    """The token state of a search cursor: ``f`` floor, ``s`` seen ids, ``x`` tie keyset."""
    state: dict[str, Any] = {"m": "s", "f": cursor.floor, "s": list(cursor.seen)}
    if cursor.tie_after is not None:
        state["x"] = cursor.tie_after
    return state


def cursor_from_state(state: dict[str, Any]) -> SearchCursor:
    # Tokens of the earlier offset paging carry the same f/s/x plus keys ignored here; resuming
    # one re-reads from its floor, which may hand a record out twice but never skips one.
    try:
        tie = state.get("x")
        return SearchCursor(
            floor=int(state["f"]),
            seen=tuple(str(v) for v in state.get("s") or ()),
            tie_after=None if tie is None else str(tie),
        )
    except (KeyError, TypeError, ValueError):
        raise VendorError("unreadable HubSpot search page token") from None
