"""Shared fixtures for the HTTP toolkit tests: a strict ``responses`` mock and sample bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> Any:
    """A recorded vendor body from ``samples/`` (provenance in the ``.src.txt`` beside it)."""
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def connection_refused(url: str = "/") -> requests.ConnectionError:
    """What requests raises when nothing listens: ConnectionError caused by NewConnectionError."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock
