"""A blocking client-side rate limiter on top of the ``limits`` library.

Public entry points: :class:`RateLimiter` (``acquire``, ``try_acquire``, ``wait_time``,
``windows``).

Throttling happens *before* a request is sent, so a connector spends at most its vendor's budget
instead of discovering the limit through 429s. Several rates can apply at once (HubSpot: 100 per
10 seconds and 250,000 per day); a request goes out only when every one has room.

The budget is identified by ``key`` (the vendor account) inside a ``limits`` storage. Limiters in
one process that name the same storage URI and key share one budget; with a Redis URI, several
processes do. The moving-window strategy is used because vendors count rolling windows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from limits import RateLimitItem
from limits.errors import ConfigurationError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from limits.util import parse_many

from connectors.errors import ConnectorConfigError

__all__ = ["RateLimiter"]

log = logging.getLogger("crmhub.ratelimit")

_NAMESPACE = "crmhub"
# The window's reset time comes from the storage's clock; a floor keeps a reset that is already
# due (clock skew, rounding) from turning the wait loop into a busy spin.
_MIN_WAIT = 0.01
# Waits longer than this are worth a warning: a daily budget running dry blocks the sync.
_LOUD_WAIT = 5.0

_storages: dict[str, Storage] = {}
_storages_lock = threading.Lock()


def _shared_storage(uri: str) -> Storage:
    # One storage per URI per process, so two limiters with the same key share a budget even
    # on memory://, as they would on Redis.
    with _storages_lock:
        storage = _storages.get(uri)
        if storage is None:
            try:
                created = storage_from_string(uri)
            except ConfigurationError as exc:
                raise ConnectorConfigError(f"unusable rate-limit storage URI: {exc}") from None
            if not isinstance(created, Storage):
                raise ConnectorConfigError(
                    "rate-limit storage must be synchronous (no async+ scheme)"
                )
            storage = created
            _storages[uri] = storage
        return storage


def _parse_rates(rates: str | Sequence[str]) -> list[RateLimitItem]:
    texts = [rates] if isinstance(rates, str) else list(rates)
    items: list[RateLimitItem] = []
    for text in texts:
        try:
            items.extend(parse_many(text))
        except ValueError:
            raise ConnectorConfigError(f"not a rate limit: {text!r}") from None
    if not items:
        raise ConnectorConfigError("a rate limiter needs at least one rate")
    return items


class RateLimiter:
    """Blocks until every rate in ``rates`` allows ``cost`` more requests for ``key``.

    ``rates`` are ``limits`` strings such as ``"100/10 seconds"`` or ``"250000/day"``. ``sleep``
    and ``clock`` are injectable for tests; ``clock`` must tell the same time as the storage
    (``time.time`` for memory and Redis storage). Thread-safe.
    """

    def __init__(
        self,
        rates: str | Sequence[str],
        *,
        key: str,
        storage_uri: str = "memory://",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not key:
            raise ConnectorConfigError("a rate limiter needs a key naming the vendor account")
        self.key = key
        self.items = _parse_rates(rates)
        self._strategy = MovingWindowRateLimiter(_shared_storage(storage_uri))
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._smallest = min(item.amount for item in self.items)

    def __repr__(self) -> str:
        rates = "; ".join(str(item) for item in self.items)
        return f"RateLimiter({rates!r}, key={self.key!r})"

    @property
    def windows(self) -> tuple[tuple[int, float], ...]:
        """These rates as (requests, seconds) pairs: ``100/10 seconds`` is ``(100, 10.0)``."""
        return tuple((item.amount, float(item.get_expiry())) for item in self.items)

    def _check_cost(self, cost: int) -> None:
        if cost < 1:
            raise ValueError(f"cost must be at least 1, not {cost}")
        if cost > self._smallest:
            # The window could never hold it; acquire would wait forever.
            raise ValueError(f"cost {cost} exceeds the smallest rate ({self._smallest})")

    def _wait_for(self, item: RateLimitItem) -> float:
        stats = self._strategy.get_window_stats(item, _NAMESPACE, self.key)
        return max(stats.reset_time - self._clock(), _MIN_WAIT)

    def _try(self, cost: int) -> float | None:
        """Take ``cost`` from every rate, or the seconds to wait before trying again."""
        with self._lock:
            for item in self.items:
                if not self._strategy.test(item, _NAMESPACE, self.key, cost=cost):
                    return self._wait_for(item)
            for item in self.items:
                # Another process may win the race between test and hit. A rate already hit
                # stays spent: over-counting wastes a little budget, under-counting gets 429s.
                if not self._strategy.hit(item, _NAMESPACE, self.key, cost=cost):
                    return self._wait_for(item)
        return None

    def try_acquire(self, cost: int = 1) -> bool:
        """Take ``cost`` now if every rate has room; never blocks."""
        self._check_cost(cost)
        return self._try(cost) is None

    def wait_time(self, cost: int = 1) -> float:
        """Seconds until ``cost`` could be taken (0.0 when it could be now); takes nothing."""
        self._check_cost(cost)
        with self._lock:
            waits = [
                self._wait_for(item)
                for item in self.items
                if not self._strategy.test(item, _NAMESPACE, self.key, cost=cost)
            ]
        return max(waits, default=0.0)

    def acquire(self, cost: int = 1) -> float:
        """Block until ``cost`` is taken from every rate; return the seconds slept."""
        self._check_cost(cost)
        waited = 0.0
        while (wait := self._try(cost)) is not None:
            if wait >= _LOUD_WAIT:
                log.warning(
                    "rate limit for %s reached; waiting %.1f s for budget (%s)",
                    self.key,
                    wait,
                    "; ".join(str(item) for item in self.items),
                )
            else:
                log.debug("rate limit for %s reached; waiting %.2f s", self.key, wait)
            self._sleep(wait)
            waited += wait
        return waited
