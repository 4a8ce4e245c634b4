"""Finds connectors through the ``crmhub.connectors`` entry-point group.

Public entry points: :func:`available_connectors`, :func:`load_connector`,
:class:`UnknownConnectorError`.

Third parties add a connector by declaring an entry point in their own package; nothing here
lists vendors by hand.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import cast

from connectors.base import ConnectorFactory

GROUP = "crmhub.connectors"


class UnknownConnectorError(LookupError):
    """No installed connector has this name."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(
            f"unknown connector {name!r} (installed: {', '.join(available) or 'none'})"
        )
        self.name = name
        self.available = available


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_connectors() -> list[str]:
    """Names of every installed connector, sorted."""
    return sorted(_entry_points())


def load_connector(name: str) -> ConnectorFactory:
    """The connector class registered under ``name``."""
    try:
        entry_point = _entry_points()[name]
    except KeyError:
        raise UnknownConnectorError(name, available_connectors()) from None
    return cast(ConnectorFactory, entry_point.load())
