"""Matching: which canonical record an unlinked vendor record belongs to.

Public entry points: :func:`record_keys`, :class:`Matcher`, :class:`Assignment`.

A sync's match rules are ordered, e.g. companies ``[domain, name]``; each rule is one field or
several (deals: name *and* company). Two records match when the first rule both of them can
answer gives the same key — so two companies with one domain match, two with different domains
never match on their shared name, and a company without a domain falls back to its name. A
record that would join a canonical record already holding a record of the same system is a
duplicate inside that system: reported, never merged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mappings.normalize import match_key

Rule = tuple[str, ...]
Keys = dict[int, str]  # rule index -> key string


def record_keys(values: Mapping[str, Any], rules: Sequence[Rule]) -> Keys:
    """The match key of every rule this record can answer (all the rule's fields present)."""
    keys: Keys = {}
    for index, rule in enumerate(rules):
        parts: list[str] = []
        for name in rule:
            value = values.get(name)
            key = None if value is None or value == "" else match_key(name, value)
            if not key:
                break
            parts.append(key)
        else:
            keys[index] = "+".join(rule) + "=" + "\x1f".join(parts)
    return keys


def decisive_match(a: Keys, b: Keys) -> int | None:
    """The rule that decides between two records: equal there → that rule's index, else None."""
    for index in sorted(a.keys() & b.keys()):
        return index if a[index] == b[index] else None
    return None


@dataclass(slots=True)
class _Group:
    canonical_id: str
    keys: Keys
    members: dict[str, str] = field(default_factory=dict)  # system -> remote id
    existing: bool = False


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where an unlinked record goes: joins ``canonical_id`` (``matched``), starts it, or is a
    ``duplicate_of`` another record of its own system."""

    canonical_id: str | None
    matched: bool
    rule: str
    duplicate_of: str | None = None


class Matcher:
    """Groups the unlinked records of one object pass, against existing canonical records too.

    Feed it the existing candidates for a batch (``add_existing``) before assigning the batch's
    records; its memory is one small entry per key, not the records themselves.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._index: dict[str, list[_Group]] = {}
        self._existing: set[str] = set()

    def add_existing(self, canonical_id: str, keys: Keys, members: Mapping[str, str]) -> None:
        """A canonical record already in the store, with the systems it is linked in."""
        if canonical_id in self._existing:
            return
        self._existing.add(canonical_id)
        self._register(_Group(canonical_id, dict(keys), dict(members), existing=True))

    def assign(self, system: str, remote_id: str, keys: Keys, new_id: str) -> Assignment:
        """Match one record, or start a new canonical record with ``new_id``."""
        for index in sorted(keys):
            for group in self._index.get(keys[index], ()):
                rule_index = decisive_match(keys, group.keys)
                if rule_index is None:
                    continue
                rule = "matched on " + "+".join(self.rules[rule_index])
                if system in group.members:
                    return Assignment(None, False, rule, duplicate_of=group.members[system])
                group.members[system] = remote_id
                for extra, key in keys.items():
                    if extra not in group.keys:
                        group.keys[extra] = key
                        self._index.setdefault(key, []).append(group)
                return Assignment(group.canonical_id, True, rule)
        self._register(_Group(new_id, dict(keys), {system: remote_id}))
        return Assignment(new_id, False, f"new record from {system}")

    def _register(self, group: _Group) -> None:
        for key in group.keys.values():
            self._index.setdefault(key, []).append(group)


def all_keys(keys_by_record: Iterable[Keys]) -> set[str]:
    """Every key string of a batch, for one store query of existing candidates."""
    return {key for keys in keys_by_record for key in keys.values()}
