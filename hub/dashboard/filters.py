"""The audit log's filters as they arrive in a URL: the same as ``crmhub log``'s options.

Public entry points: :func:`audit_filter`, :class:`FilterError`, :data:`AUDIT_PARAMETERS`,
:data:`AUDIT_ACTIONS`.

The explorer's form and ``/api/audit`` share these names, so a page's address is also the
API call that returns its entries: ``sync``, ``system``, ``object``, ``record``, ``action``,
``since`` and ``until`` (a date/time or an age like ``2h``), ``run`` and ``limit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from hub.admin import AuditFilter, parse_moment

AUDIT_PARAMETERS = ("sync", "system", "object", "record", "action", "since", "until", "run")
# Suggested in the explorer's form; the filter takes any action the log holds.
AUDIT_ACTIONS = (
    "create",
    "update",
    "delete",
    "reject",
    "link",
    "unlink",
    "relink",
    "detach",
    "conflict",
    "choose",
    "resolve",
    "retry",
    "discard",
)


class FilterError(ValueError):
    """A filter value that cannot be used; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def audit_filter(
    params: Mapping[str, str], *, default_limit: int, max_limit: int, now: datetime
) -> AuditFilter:
    """The filter that ``params`` (a query string) asks for. Empty values are no filter, as
    an untouched form field sends them; ``limit`` keeps the newest entries, at most
    ``max_limit``."""
    given = {name: value.strip() for name, value in params.items() if value.strip()}
    return AuditFilter(
        sync=given.get("sync"),
        system=given.get("system"),
        object_type=given.get("object"),
        record=given.get("record"),
        action=given.get("action"),
        since=_moment(given, "since", now),
        until=_moment(given, "until", now),
        run_id=_number(given, "run", minimum=1),
        limit=min(_number(given, "limit", minimum=1) or default_limit, max_limit),
    )


def _moment(given: Mapping[str, str], name: str, now: datetime) -> datetime | None:
    if name not in given:
        return None
    try:
        return parse_moment(given[name], now)
    except ValueError as exc:
        raise FilterError(name, str(exc)) from None


def _number(given: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    if name not in given:
        return None
    text = given[name]
    if not (text.isascii() and text.isdigit()) or int(text) < minimum:
        raise FilterError(name, f"{text!r} is not a whole number of at least {minimum}")
    return int(text)
