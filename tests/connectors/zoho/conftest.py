"""Fixtures of the Zoho tests: every test starts with no cached Zoho token in the process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.zoho.auth import clear_shared_accounts


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    # Connectors share one token per set of credentials per process (auth.py); a token cached
    # by one test must not answer for the next.
    clear_shared_accounts()
    yield
    clear_shared_accounts()
