"""Matching: which canonical record an unlinked vendor record belongs to.

Public entry points: :func:`record_keys`, :class:`Matcher`, :class:`Assignment`,
:class:`Group`, :class:`GroupIndex` (and :class:`MemoryGroupIndex`).

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
from typing import Any, NamedTuple, Protocol

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
class Group:
    """A canonical record being assembled: the keys it answers to, one member per system."""

    canonical_id: str
    keys: Keys
    members: dict[str, str] = field(default_factory=dict)  # system -> remote id
    existing: bool = False


class Assignment(NamedTuple):
    """Where an unlinked record goes: joins ``canonical_id`` (``matched``), starts it, or is a
    ``duplicate_of`` another record of its own system."""

    # A named tuple, not a frozen dataclass: one per record read, and a frozen dataclass's
    # __init__ costs four times as much.
    canonical_id: str | None
    matched: bool
    rule: str
    duplicate_of: str | None = None


class GroupIndex(Protocol):
    """Where the matcher keeps its groups between batches: in memory, or on disk."""

    def load(self, keys: Iterable[str]) -> list[Group]:
        """Every group holding any of these keys."""

    def save(self, groups: Iterable[Group]) -> None:
        """Store new or changed groups, and the keys that find them."""


class MemoryGroupIndex:
    """A dict-backed index, for small passes and tests."""

    def __init__(self) -> None:
        self._groups: dict[str, Group] = {}
        self._by_key: dict[str, set[str]] = {}

    def load(self, keys: Iterable[str]) -> list[Group]:
        ids = {gid for key in keys for gid in self._by_key.get(key, ())}
        return [self._groups[gid] for gid in sorted(ids)]

    def save(self, groups: Iterable[Group]) -> None:
        by_key = self._by_key
        for group in groups:
            gid = group.canonical_id
            self._groups[gid] = group
            for key in group.keys.values():
                # Most keys are new: no empty set made and thrown away for the others.
                holders = by_key.get(key)
                if holders is None:
                    by_key[key] = {gid}
                else:
                    holders.add(gid)


class Matcher:
    """Groups the unlinked records of one object pass, against existing canonical records too.

    Work goes in batches: ``prefetch`` the batch's keys (one index look-up), feed the existing
    canonical candidates (``add_existing``), ``assign`` each record, then ``flush``. Between
    batches the groups live in the index — on disk in a real pass — so memory holds one batch,
    not the account.
    """

    def __init__(self, rules: Sequence[Rule], index: GroupIndex | None = None) -> None:
        self.rules = tuple(rules)
        self.index: GroupIndex = index if index is not None else MemoryGroupIndex()
        self._cache: dict[str, list[Group]] = {}
        self._groups: dict[str, Group] = {}
        self._loaded: set[str] = set()
        self._dirty: dict[str, Group] = {}

    def prefetch(self, keys: Iterable[str]) -> None:
        """Load the groups of a batch's keys in one look-up."""
        wanted = set(keys) - self._loaded
        if wanted:
            for group in self.index.load(wanted):
                self._remember(group)
            self._loaded |= wanted

    def add_existing(self, canonical_id: str, keys: Keys, members: Mapping[str, str]) -> None:
        """A canonical record already in the store, with the systems it is linked in."""
        self.prefetch(keys.values())
        if canonical_id in self._groups:
            return
        group = Group(canonical_id, dict(keys), dict(members), existing=True)
        self._remember(group)
        self._dirty[canonical_id] = group

    def assign(self, system: str, remote_id: str, keys: Keys, new_id: str) -> Assignment:
        """Match one record, or start a new canonical record with ``new_id``."""
        self.prefetch(keys.values())
        for index in sorted(keys):
            for group in self._cache.get(keys[index], ()):
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
                        self._cache.setdefault(key, []).append(group)
                self._dirty[group.canonical_id] = group
                return Assignment(group.canonical_id, True, rule)
        group = Group(new_id, dict(keys), {system: remote_id})
        self._remember(group)
        self._dirty[new_id] = group
        return Assignment(new_id, False, f"new record from {system}")

    def flush(self) -> None:
        """Save what this batch changed and forget the batch."""
        self.index.save(self._dirty.values())
        self._cache.clear()
        self._groups.clear()
        self._loaded.clear()
        self._dirty.clear()

    def _remember(self, group: Group) -> None:
        if group.canonical_id in self._groups:
            return
        self._groups[group.canonical_id] = group
        for key in group.keys.values():
            self._cache.setdefault(key, []).append(group)


def all_keys(keys_by_record: Iterable[Keys]) -> set[str]:
    """Every key string of a batch, for one store query of existing candidates."""
    return {key for keys in keys_by_record for key in keys.values()}
