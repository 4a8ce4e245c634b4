"""Reading a vendor's pages on a thread, a few pages ahead of the pass that stages them.

Public entry point: :func:`read_ahead`.

A cursor-paged list (HubSpot's ``after``, Zoho's page token) can only be read one page after
another, so its pace is the vendor's latency per page. Fetched on their own thread, the pages
arrive while the pass maps, stages and reconciles the ones before; a bounded queue keeps memory
to a few pages however far ahead the vendor could run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import Protocol, TypeVar

from hub.logs import carry_context

__all__ = ["read_ahead"]

# How long the reader waits on a full queue before it looks again whether it should stop.
_POLL_SECONDS = 0.1


class _Paged(Protocol):
    @property
    def next_token(self) -> str | None: ...


PageT = TypeVar("PageT", bound=_Paged)
_END = object()


def read_ahead(
    fetch: Callable[[str | None], PageT], *, depth: int, name: str
) -> Generator[PageT, None, None]:
    """The pages ``fetch(None)``, then ``fetch(page.next_token)`` until a page has none,
    fetched on a thread called ``name`` at most ``depth`` pages ahead of the caller.

    An error of ``fetch`` is raised here, after the pages before it. Closing the generator
    stops the reader; it returns once a fetch in progress has finished, so the connector is
    never left with a call in flight.
    """
    if depth < 1:
        raise ValueError(f"read-ahead depth must be 1 or more, not {depth}")
    pages: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        token: str | None = None
        try:
            while not stop.is_set():
                page = fetch(token)
                if not hand_over(page):
                    return
                token = page.next_token
                if not token:
                    break
        except BaseException as exc:  # raised again on the caller's thread
            hand_over(exc)
            return
        hand_over(_END)

    reader = threading.Thread(target=carry_context(read), name=name, daemon=True)
    reader.start()
    try:
        while True:
            item = pages.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        reader.join()
