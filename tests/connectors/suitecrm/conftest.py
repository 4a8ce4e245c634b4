"""Fixtures of the SuiteCRM tests: every test starts with no API root remembered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.suitecrm.auth import forget_detected_roots


@pytest.fixture(autouse=True)
def _fresh_roots() -> Iterator[None]:
    # The root found for a site is remembered per process (auth.py); one test's must not
    # answer for the next, which may serve the other root on the same address.
    forget_detected_roots()
    yield
    forget_detected_roots()
