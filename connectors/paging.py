"""Paginators: what to send for the first page, and for the next one given a page's body.

Public entry points: :class:`Paginator` (the protocol), :class:`CursorPaginator`,
:class:`PageNumberPaginator`, :class:`OffsetPaginator`, :func:`iterate_pages`,
:func:`default_items`, :func:`dig`, and the page-token codec :func:`pack_token` /
:func:`unpack_token`.

A paginator is a small stateful object with three methods: ``first_params()`` (and reset),
``next_params(body)`` (``None`` when there is no next page) and ``items(body)`` (the records of
a page). Parameters go to the query string or the JSON body, as the vendor wants; the paginator
does not care. Three kinds cover the vendors:

* cursor: HubSpot ``after`` (``paging.next.after``), Zoho ``page_token``
  (``info.next_page_token``);
* page number: SuiteCRM ``page[number]``/``page[size]`` (stop on no ``links.next``), Zoho
  ``page``/``per_page`` (``info.more_records``);
* offset: Bitrix24 ``start``/``next`` (fixed 50 per page), Insightly ``skip``/``top``, Apptivo
  ``startIndex``/``numRecords``/``countOfRecords``.

A paginator that would ask for the same page twice raises :class:`VendorError` instead of
looping forever.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from connectors.errors import ConnectorConfigError, ConnectorError, VendorError

if TYPE_CHECKING:
    from connectors.http import HttpClient

__all__ = [
    "CursorPaginator",
    "ItemsGetter",
    "OffsetPaginator",
    "PageNumberPaginator",
    "Paginator",
    "default_items",
    "dig",
    "iterate_pages",
    "pack_token",
    "unpack_token",
]

ItemsGetter = Callable[[Any], list[Any]]

_ITEM_KEYS = ("results", "data", "result", "items")


def dig(body: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` inside nested mappings, or ``None`` when any step is missing."""
    value = body
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def default_items(body: Any) -> list[Any]:
    """The records of a page in the common envelopes.

    A bare list (Insightly), ``results`` (HubSpot), ``data`` (Zoho, SuiteCRM), ``result``
    (Bitrix24), ``result.items`` (Bitrix24 ``crm.item.list``); ``None`` (Zoho's 204) is empty.
    """
    if body is None:
        return []
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for key in _ITEM_KEYS:
            value = body.get(key)
            if isinstance(value, list):
                return value
            if isinstance(value, Mapping) and isinstance(value.get("items"), list):
                return list(value["items"])
    raise ValueError("cannot find the records in this page body; give the paginator items=")


class Paginator(Protocol):
    """Pagination of one listing; ``first_params`` starts (or restarts) it."""

    def first_params(self) -> dict[str, Any]:
        """Parameters for the first page."""
        ...

    def next_params(self, body: Any) -> dict[str, Any] | None:
        """Parameters for the page after the one whose body this is; ``None`` at the end."""
        ...

    def items(self, body: Any) -> list[Any]:
        """The records of the page whose body this is."""
        ...


class CursorPaginator:
    """An opaque cursor read from each page and sent back for the next.

    HubSpot: the defaults. Zoho: ``CursorPaginator("page_token", ("info", "next_page_token"),
    "per_page", 200)``. A missing, null or empty cursor ends the listing. ``limit_param=None``
    sends no page size.
    """

    def __init__(
        self,
        cursor_param: str = "after",
        cursor_path: Sequence[str] = ("paging", "next", "after"),
        limit_param: str | None = "limit",
        limit: int = 100,
        *,
        items: ItemsGetter = default_items,
    ) -> None:
        self.cursor_param = cursor_param
        self.cursor_path = tuple(cursor_path)
        self.limit_param = limit_param
        self.limit = limit
        self._items = items
        self._seen: set[str] = set()

    def _base(self) -> dict[str, Any]:
        return {self.limit_param: self.limit} if self.limit_param else {}

    def first_params(self) -> dict[str, Any]:
        self._seen = set()
        return self._base()

    def next_params(self, body: Any) -> dict[str, Any] | None:
        cursor = dig(body, self.cursor_path)
        if cursor is None or cursor == "":
            return None
        token = str(cursor)
        if token in self._seen:
            raise VendorError(f"the vendor sent the page cursor {self.cursor_param} twice")
        self._seen.add(token)
        return {**self._base(), self.cursor_param: token}

    def items(self, body: Any) -> list[Any]:
        return self._items(body)


class PageNumberPaginator:
    """Numbered pages of a fixed size.

    With ``has_more`` the vendor's flag decides (an empty page also stops); without it, a page
    holding fewer than ``size`` records is the last. SuiteCRM: ``PageNumberPaginator(
    "page[number]", "page[size]", 100, has_more=lambda body: bool(dig(body, ("links", "next"))))``.
    """

    def __init__(
        self,
        page_param: str = "page",
        size_param: str = "per_page",
        size: int = 200,
        has_more: Callable[[Any], bool] | None = None,
        start: int = 1,
        *,
        items: ItemsGetter = default_items,
    ) -> None:
        if size < 1:
            raise ValueError(f"page size must be positive, not {size}")
        self.page_param = page_param
        self.size_param = size_param
        self.size = size
        self.has_more = has_more
        self.start = start
        self._items = items
        self.page = start

    def first_params(self) -> dict[str, Any]:
        self.page = self.start
        return {self.page_param: self.page, self.size_param: self.size}

    def next_params(self, body: Any) -> dict[str, Any] | None:
        count = len(self.items(body))
        if self.has_more is not None:
            # The vendor's own flag wins over counting: a vendor that caps the page size below
            # ours would make every page look short and end the listing early.
            if not self.has_more(body) or count == 0:
                return None
        elif count < self.size:
            return None
        self.page += 1
        return {self.page_param: self.page, self.size_param: self.size}

    def items(self, body: Any) -> list[Any]:
        return self._items(body)


class OffsetPaginator:
    """A record offset, either read from each page (``next_path``) or counted by the client.

    Bitrix24: the defaults (``start``, fixed 50 per page, ``next`` in each page). Insightly:
    ``OffsetPaginator("skip", "top", 500, next_path=None)``. Apptivo: ``OffsetPaginator(
    "startIndex", "numRecords", 100, next_path=None, total_path=("countOfRecords",))``. With
    ``next_path`` the listing ends when the page carries no next offset (or no records);
    without it, on a short page. It also ends when the offset reaches the total at
    ``total_path``.
    """

    def __init__(
        self,
        offset_param: str = "start",
        limit_param: str | None = None,
        limit: int = 50,
        next_path: Sequence[str] | None = ("next",),
        total_path: Sequence[str] | None = None,
        *,
        start: int = 0,
        items: ItemsGetter = default_items,
    ) -> None:
        if limit < 1:
            raise ValueError(f"page size must be positive, not {limit}")
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.limit = limit
        self.next_path = tuple(next_path) if next_path is not None else None
        self.total_path = tuple(total_path) if total_path is not None else None
        self.start = start
        self._items = items
        self.offset = start

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {self.offset_param: self.offset}
        if self.limit_param:
            params[self.limit_param] = self.limit
        return params

    def first_params(self) -> dict[str, Any]:
        self.offset = self.start
        return self._params()

    def next_params(self, body: Any) -> dict[str, Any] | None:
        count = len(self.items(body))
        if self.next_path is not None:
            # The vendor's next offset wins over counting (see PageNumberPaginator).
            following = dig(body, self.next_path)
            if following is None or following == "" or count == 0:
                return None
            try:
                offset = int(following)
            except (TypeError, ValueError):
                raise VendorError(
                    f"the vendor sent a non-numeric next offset {following!r}"
                ) from None
        else:
            if count < self.limit:
                return None
            offset = self.offset + count
        if self.total_path is not None:
            total = dig(body, self.total_path)
            if isinstance(total, int | str) and str(total).isdigit() and offset >= int(total):
                return None
        if offset <= self.offset:
            raise VendorError(f"the vendor sent a next offset {offset} that does not advance")
        self.offset = offset
        return self._params()

    def items(self, body: Any) -> list[Any]:
        return self._items(body)


def iterate_pages(
    client: HttpClient,
    method: str,
    path: str,
    paginator: Paginator,
    *,
    params: Mapping[str, Any] | None = None,
    json_body: Mapping[str, Any] | None = None,
    items: ItemsGetter | None = None,
    idempotent: bool | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[tuple[list[Any], Any]]:
    """Yield ``(records, body)`` for every page of one listing, lazily.

    The paginator's parameters go into ``json_body`` when one is given (HubSpot search, Bitrix24
    POST methods), else into the query string. ``items`` overrides the paginator's own. A read
    sent as POST is not retried on 5xx unless ``idempotent=True``; listings are, so say so.
    """
    get_items = items if items is not None else paginator.items
    page_params: dict[str, Any] | None = paginator.first_params()
    while page_params is not None:
        if json_body is not None:
            response = client.request(
                method,
                path,
                params=params,
                json={**json_body, **page_params},
                headers=headers,
                idempotent=idempotent,
            )
        else:
            response = client.request(
                method,
                path,
                params={**(params or {}), **page_params},
                headers=headers,
                idempotent=idempotent,
            )
        body = response.json
        yield get_items(body), body
        try:
            page_params = paginator.next_params(body)
        except ConnectorError as exc:
            if exc.system is None:
                exc.system = client.system
            raise


def pack_token(state: Mapping[str, Any], *, kind: str) -> str:
    """A page token the hub can store and hand back after a restart: ``state`` as compact JSON,
    zlib-compressed (keyset tokens carry lists of ids sharing long prefixes) and URL-safe
    base64 without padding. ``kind`` names the connector and the token's format version, so a
    token of another connector or an older format is refused by :func:`unpack_token`.
    """
    raw = json.dumps({**state, "_": kind}, separators=(",", ":"), sort_keys=True)
    packed = zlib.compress(raw.encode("utf-8"), 9)
    return base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def unpack_token(token: str, *, kind: str) -> dict[str, Any]:
    """The state :func:`pack_token` packed with the same ``kind``; anything else is a
    :class:`ConnectorConfigError` quoting the token's start (a token is not a secret)."""
    try:
        packed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        state = json.loads(zlib.decompress(packed))
    except (binascii.Error, zlib.error, ValueError):
        state = None
    if not isinstance(state, dict) or state.pop("_", None) != kind:
        raise ConnectorConfigError(f"not a page token of format {kind}: {token[:40]!r}")
    return state
