"""Named two-way value transforms that field maps apply between vendor and canonical values.

Public entry points: :class:`Transform`, :data:`TRANSFORMS` and :func:`register_transform`.

A transform turns a vendor's value into something the canonical schema accepts
(``to_canonical``) and a canonical value into what the vendor's API expects (``to_vendor``).
The schema normalizes again after ``to_canonical``, so a transform only has to bridge
*representation* (epoch milliseconds, "Y"/"N", a JSON list); the canonical rules live in one
place. Both directions accept None and return None for blank input, and are lenient about the
input's type, because ``to_vendor`` of a value map's vendor value gets text.

Built in: ``string`` (the default), ``int``, ``decimal``, ``number``, ``date``,
``epoch_ms_date``, ``bool``, ``lines`` and ``list``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from mappings.errors import NormalizeError
from mappings.normalize import (
    normalize_date,
    normalize_decimal,
    normalize_int,
    normalize_multiline,
    normalize_text,
    to_date,
    to_decimal,
)

__all__ = ["TRANSFORMS", "Transform", "register_transform"]


@dataclass(frozen=True, slots=True)
class Transform:
    """A pair of functions between a vendor's representation and the canonical one.

    Both raise ``ValueError`` (usually :class:`~mappings.errors.NormalizeError`) on a value they
    cannot convert; the field map turns that into a MappingError naming the fields.
    """

    name: str
    to_canonical: Callable[[Any], Any]
    to_vendor: Callable[[Any], Any]
    description: str = ""


def _number(v: object) -> int | float | None:
    d = to_decimal(v)
    if d is None:
        return None
    return int(d) if d == d.to_integral_value() else float(d)


_EPOCH = date(1970, 1, 1)


def _epoch_ms(v: object) -> int | None:
    d = to_date(v)
    return None if d is None else (d - _EPOCH).days * 86_400_000


_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


def _bool(v: object) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        s = v.strip().casefold()
        if not s:
            return None
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    raise NormalizeError(v, "is not a yes/no value (expected true/false, Y/N, 1/0 or yes/no)")


def _list(v: object) -> list[str] | None:
    if v is None:
        return None
    items: Iterable[object]
    if isinstance(v, str):
        s = v.strip()
        if s.startswith("["):
            try:
                parsed = json.loads(s)
            except ValueError:
                parsed = None
            if not isinstance(parsed, list):
                raise NormalizeError(v, "is not a JSON list")
            items = parsed
        else:
            items = s.split(";")
    elif isinstance(v, list | tuple | set | frozenset):
        items = v
    else:
        items = [v]
    values = sorted({s for s in map(normalize_text, items) if s is not None})
    return values or None


TRANSFORMS: dict[str, Transform] = {}
"""Transforms by the name a field map uses in ``transform:``. Add yours with
:func:`register_transform` before loading the maps that use them."""


def register_transform(transform: Transform) -> Transform:
    """Make a transform available to field maps under ``transform.name``; returns it."""
    TRANSFORMS[transform.name] = transform
    return transform


for _t in (
    Transform(
        "string", normalize_text, normalize_text, "text both ways (numbers become their text)"
    ),
    Transform("int", normalize_int, normalize_int, "whole number both ways"),
    Transform(
        "decimal",
        normalize_decimal,
        normalize_decimal,
        "number or numeric text to canonical decimal text; written as text",
    ),
    Transform("number", _number, _number, "JSON number both ways: int when whole, else float"),
    Transform("date", normalize_date, normalize_date, "ISO date (YYYY-MM-DD) both ways"),
    Transform(
        "epoch_ms_date",
        normalize_date,
        _epoch_ms,
        "milliseconds since 1970 UTC (at midnight) on the vendor side, ISO date canonically",
    ),
    Transform("bool", _bool, _bool, "true/false, Y/N, 1/0, yes/no on read; a boolean on write"),
    Transform(
        "lines",
        normalize_multiline,
        normalize_multiline,
        "newline-joined text both ways (a list of lines is joined on read)",
    ),
    Transform(
        "list",
        _list,
        _list,
        "a list (or ';'-separated or JSON-list text) to a sorted list of text; a list on write",
    ),
):
    register_transform(_t)
del _t
