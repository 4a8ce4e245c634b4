"""RateLimiter: windows fill, acquire blocks until they free, budgets are shared by key."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from connectors.errors import ConnectorConfigError
from connectors.ratelimit import RateLimiter


def fresh_key() -> str:
    # The memory storage is shared per process, as Redis would be; tests must not share keys.
    return f"test-{uuid.uuid4()}"


def test_try_acquire_refuses_when_the_window_is_full() -> None:
    limiter = RateLimiter("3/minute", key=fresh_key())

    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert 59 < limiter.wait_time() <= 60


def test_every_rate_must_allow() -> None:
    limiter = RateLimiter(["100/10 seconds", "2/day"], key=fresh_key())

    assert limiter.try_acquire()
    assert limiter.try_acquire()
    assert not limiter.try_acquire()  # the 10-second burst still has room; the day does not
    assert limiter.wait_time() > 86000


def test_cost_takes_several_at_once() -> None:
    limiter = RateLimiter("5/minute", key=fresh_key())

    assert limiter.try_acquire(cost=4)
    assert not limiter.try_acquire(cost=2)
    assert limiter.try_acquire(cost=1)


def test_acquire_does_not_sleep_when_there_is_room() -> None:
    slept: list[float] = []
    limiter = RateLimiter("10/second", key=fresh_key(), sleep=slept.append)

    assert limiter.acquire() == 0.0
    assert slept == []


def test_acquire_blocks_until_the_window_frees() -> None:
    # limits' memory storage reads the real clock, so this one test waits for a real
    # 1-second window (the library's smallest granularity) to free.
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    limiter = RateLimiter("2/second", key=fresh_key(), sleep=sleep)
    limiter.acquire()
    limiter.acquire()

    started = time.monotonic()
    waited = limiter.acquire()
    elapsed = time.monotonic() - started

    assert slept, "the third acquire should have slept"
    assert waited == pytest.approx(sum(slept))
    assert 0.5 < elapsed < 1.5
    assert 0.5 < slept[0] <= 1.0  # computed from the window, not a blind poll


def test_limiters_with_the_same_key_share_a_budget() -> None:
    key = fresh_key()
    first = RateLimiter("2/minute", key=key)
    second = RateLimiter("2/minute", key=key)
    other = RateLimiter("2/minute", key=fresh_key())

    assert first.try_acquire()
    assert second.try_acquire()
    assert not first.try_acquire()
    assert not second.try_acquire()
    assert other.try_acquire()


def test_threads_never_overspend() -> None:
    limiter = RateLimiter("5/minute", key=fresh_key())
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        got = limiter.try_acquire()
        with lock:
            results.append(got)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(True) == 5


def test_bad_configuration_is_reported() -> None:
    with pytest.raises(ConnectorConfigError, match="not a rate limit"):
        RateLimiter("lots", key=fresh_key())
    with pytest.raises(ConnectorConfigError, match="storage"):
        RateLimiter("1/second", key=fresh_key(), storage_uri="nosuch://host")
    with pytest.raises(ConnectorConfigError, match="key"):
        RateLimiter("1/second", key="")
    with pytest.raises(ValueError, match="exceeds"):
        RateLimiter("2/second", key=fresh_key()).acquire(cost=3)
