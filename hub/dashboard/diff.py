"""Before/after of an audit entry's changed fields, with what changed inside text marked.

Public entry points: :func:`field_diffs`, :class:`FieldDiff`, :class:`Segment`, :func:`shown`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["same", "removed", "added"]
EMPTY = "∅"


@dataclass(frozen=True)
class Segment:
    kind: Kind
    text: str


@dataclass(frozen=True)
class FieldDiff:
    """One field: its before and after as segments, unchanged text marked ``same``."""

    field: str
    before: tuple[Segment, ...]
    after: tuple[Segment, ...]


def shown(value: Any) -> str:
    """A value as the dashboard prints it: text as it is, ∅ for none, JSON for the rest."""
    if value is None:
        return EMPTY
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def field_diffs(changes: Mapping[str, Sequence[Any]] | None) -> list[FieldDiff]:
    """Each changed field, in the entry's order. Two texts are compared word by word, so a
    corrected typo shows as one word replaced; anything else is replaced whole."""
    diffs = []
    for name, pair in (changes or {}).items():
        before, after = (pair[0], pair[1]) if len(pair) == 2 else (None, None)
        diffs.append(FieldDiff(name, *_segments(before, after)))
    return diffs


def _segments(before: Any, after: Any) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    if before == after:
        return (Segment("same", shown(before)),), (Segment("same", shown(after)),)
    if not (isinstance(before, str) and isinstance(after, str)):
        # An empty side is shown as empty, not as something removed or added.
        return (
            (Segment("same" if before is None else "removed", shown(before)),),
            (Segment("same" if after is None else "added", shown(after)),),
        )
    old, new = _words(before), _words(after)
    left: list[Segment] = []
    right: list[Segment] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            left.append(Segment("same", "".join(old[i1:i2])))
            right.append(Segment("same", "".join(new[j1:j2])))
            continue
        if i2 > i1:
            left.append(Segment("removed", "".join(old[i1:i2])))
        if j2 > j1:
            right.append(Segment("added", "".join(new[j1:j2])))
    return tuple(left), tuple(right)


def _words(text: str) -> list[str]:
    """Words with the spaces after them, so joining the pieces gives the text back."""
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(word)
        pieces.append(" ")
    return [piece for piece in pieces[:-1] if piece]
