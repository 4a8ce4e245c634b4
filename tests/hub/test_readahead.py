"""Pages read on a thread ahead of the pass: in order, a bounded number ahead, errors in place."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from hub.readahead import read_ahead


@dataclass
class FakePage:
    number: int
    next_token: str | None


class Vendor:
    """``pages`` pages; counts the fetches and the most any call overlapped another."""

    def __init__(self, pages: int, fail_at: int | None = None) -> None:
        self.pages = pages
        self.fail_at = fail_at
        self.fetched = 0
        self.in_flight = 0
        self.lock = threading.Lock()

    def fetch(self, token: str | None) -> FakePage:
        number = int(token) if token else 1
        with self.lock:
            self.in_flight += 1
            assert self.in_flight == 1, "the connector was called from two threads at once"
        try:
            if number == self.fail_at:
                raise RuntimeError(f"page {number} refused")
            time.sleep(0.001)
            self.fetched += 1
            return FakePage(number, str(number + 1) if number < self.pages else None)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_pages_come_in_order_and_the_reader_stays_within_its_depth() -> None:
    vendor = Vendor(30)
    seen = []
    for page in read_ahead(vendor.fetch, depth=3, name="test-reader"):
        time.sleep(0.005)  # the pass is slower than the vendor
        # Three in the queue and one fetched, waiting to be handed over.
        assert vendor.fetched - len(seen) <= 3 + 1 + 1
        seen.append(page.number)
    assert seen == list(range(1, 31))


def test_an_error_comes_after_the_pages_before_it() -> None:
    vendor = Vendor(10, fail_at=3)
    pages = read_ahead(vendor.fetch, depth=4, name="test-reader")
    assert [next(pages).number, next(pages).number] == [1, 2]
    with pytest.raises(RuntimeError, match="page 3 refused"):
        next(pages)


def test_closing_early_stops_the_reader_with_no_call_left_in_flight() -> None:
    vendor = Vendor(1000)
    pages = read_ahead(vendor.fetch, depth=2, name="test-reader")
    assert next(pages).number == 1
    assert next(pages).number == 2
    pages.close()
    fetched = vendor.fetched
    assert vendor.in_flight == 0
    assert fetched <= 2 + 2 + 1
    time.sleep(0.05)
    assert vendor.fetched == fetched
    assert not any(t.name == "test-reader" for t in threading.enumerate())
