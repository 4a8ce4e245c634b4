"""Turns a page's decisions and the vendors' answers into state-store rows.

Public entry points: :class:`PageLedger`, :func:`link_update`.

Links, base values, match keys, conflicts and the audit entries that explain them are written
for every page; this module says what those rows are, so the engine only says when.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from hub import store
from hub.matching import Rule, record_keys
from hub.planning import Plan
from mappings.schema import content_hash

Count = Callable[[str, str, str], None]

# Why a record crmhub created gets its create entry only in the run after: the run that created
# it was stopped between the vendor's answer and the commit that would have recorded it.
INTERRUPTED_CREATE = "created by an earlier run that stopped before recording it"


class PageLedger:
    """Row builders for one object type of one run."""

    def __init__(
        self,
        sync: str,
        object_type: str,
        run_id: int | None,
        rules: tuple[Rule, ...],
        deletes: str,
        count: Count,
    ) -> None:
        self.sync = sync
        self.object_type = object_type
        self.run_id = run_id
        self.rules = rules
        self.deletes = deletes
        self.count = count

    def decisions(
        self,
        plans: list[Plan],
        known_conflicts: Mapping[tuple[str, str], store.ConflictRow],
        page: store.PageWrites,
        now: datetime,
        interrupted: Mapping[tuple[str, str], str] | None = None,
        stampless: Collection[tuple[str, str]] = (),
    ) -> None:
        """What the hub decided for a page, before any vendor write.

        ``interrupted`` holds the intents earlier runs left, (canonical id, system) → kind: a
        record linked now where one of them meant to create it is that create's work.
        ``stampless`` names (system, remote id) versions whose links keep no modified time, so
        the next run maps them again instead of trusting an unchanged stamp.
        """
        # Conflicts a person resolved, by record: looked up per plan rather than scanning every
        # known conflict of the page for each record.
        resolved: dict[str, list[tuple[str, store.ConflictRow]]] = {}
        for (known_cid, name), conflict in known_conflicts.items():
            if conflict.status == "resolved":
                resolved.setdefault(known_cid, []).append((name, conflict))
        for plan in plans:
            cid = plan.canonical_id
            for system in plan.deleted_in:
                link = plan.links[system]
                page.removed_links.append((cid, system))
                if not plan.deleted:
                    # deletes: unlink — remember that this system deliberately has no copy.
                    row = self.link_row(
                        cid,
                        system,
                        link.remote_id,
                        link.remote_modified_at,
                        link.remote_hash,
                        "unlinked: deleted there",
                        now,
                    )
                    row["detached"] = True
                    page.new_links.append(row)
                page.audit.append(
                    self.audit(
                        system,
                        link.remote_id,
                        cid,
                        "delete" if plan.deleted else "unlink",
                        None,
                        f"deleted in {system}; deletes: {self.deletes}",
                        now,
                    )
                )
            for system, version in plan.versions.items():
                row = self.link_row(
                    cid,
                    system,
                    version.remote_id,
                    None if (system, version.remote_id) in stampless else version.modified_at,
                    version.hash,
                    plan.rules.get(system, ""),
                    now,
                )
                if version.fresh:
                    if system in plan.links:  # replaces a detached link
                        page.removed_links.append((cid, system))
                    page.new_links.append(row)
                    if interrupted and interrupted.get((cid, system)) == "create":
                        page.audit.append(
                            self.interrupted_create(
                                system, version.remote_id, cid, version.values, now
                            )
                        )
                    page.audit.append(
                        self.audit(system, version.remote_id, cid, "link", None, row["rule"], now)
                    )
                else:
                    page.changed_links.append(link_update(row))
            self._base(plan, page, now)
            self._conflicts(plan, known_conflicts, resolved.get(cid, ()), page, now)

    def _base(self, plan: Plan, page: store.PageWrites, now: datetime) -> None:
        cid = plan.canonical_id
        only = next(iter(plan.versions.values())) if len(plan.versions) == 1 else None
        # A record new from one system is that system's version: its hash is known already.
        digest = only.hash if only and only.values == plan.values else content_hash(plan.values)
        if plan.base is None:
            if plan.deleted:
                return
            page.new_records.append(
                {
                    "id": cid,
                    "sync": self.sync,
                    "object_type": self.object_type,
                    "base": plan.values,
                    "hash": digest,
                    "deleted": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        elif plan.base.hash != digest or plan.deleted != plan.base.deleted:
            page.changed_records.append(
                {
                    "b_id": cid,
                    "base": plan.values,
                    "hash": digest,
                    "deleted": plan.deleted,
                    "updated_at": now,
                }
            )
            page.dropped_keys.append(cid)
        else:
            return
        if plan.deleted:
            return
        for key in record_keys(plan.values, self.rules).values():
            page.new_keys.append(
                {
                    "sync": self.sync,
                    "object_type": self.object_type,
                    "key": key,
                    "canonical_id": cid,
                }
            )

    def _conflicts(
        self,
        plan: Plan,
        known: Mapping[tuple[str, str], store.ConflictRow],
        resolved: Collection[tuple[str, store.ConflictRow]],
        page: store.PageWrites,
        now: datetime,
    ) -> None:
        cid = plan.canonical_id
        held = plan.base.values if plan.base is not None else {}
        for name, row in resolved:
            page.applied_conflicts.append(row.id)
            page.audit.append(
                self.audit(
                    None,
                    None,
                    cid,
                    "resolve",
                    {name: [held.get(name, row.base), row.resolution]},
                    f"conflict {row.id} resolved by a person",
                    now,
                )
            )
        for conflict in plan.conflicts:
            previous = known.get((cid, conflict.field))
            if previous is not None and previous.status == "open":
                page.superseded_conflicts.append(previous.id)
            candidates = {
                c.system: {
                    "value": c.value,
                    "modified_at": c.modified_at.isoformat() if c.modified_at else None,
                }
                for c in conflict.contenders
            }
            page.new_conflicts.append(
                {
                    "sync": self.sync,
                    "object_type": self.object_type,
                    "canonical_id": cid,
                    "field": conflict.field,
                    "base": conflict.base,
                    "candidates": candidates,
                    "status": "open" if conflict.winner is None else "settled",
                    "winner": conflict.winner,
                    "resolution": conflict.value,
                    "policy": conflict.policy,
                    "run_id": self.run_id,
                    "created_at": now,
                    "resolved_at": None if conflict.winner is None else now,
                }
            )
            # One entry per losing side: its value (before) and what the record keeps (after).
            for loser in conflict.contenders:
                if loser.system == conflict.winner:
                    continue
                self.count(self.object_type, loser.system, "conflicts")
                if conflict.winner is None:
                    reason = "waiting for a person: crmhub conflicts list"
                else:
                    reason = (
                        f"{conflict.policy}: {conflict.winner}'s value kept over {loser.system}'s"
                    )
                page.audit.append(
                    self.audit(
                        loser.system,
                        self._remote_id(plan, loser.system),
                        cid,
                        "conflict",
                        {conflict.field: [loser.value, conflict.value]},
                        reason,
                        now,
                    )
                )

    def _remote_id(self, plan: Plan, system: str) -> str | None:
        version = plan.versions.get(system)
        if version is not None:
            return version.remote_id
        link = plan.links.get(system)
        return link.remote_id if link is not None else None

    def audit(
        self,
        system: str | None,
        remote_id: str | None,
        cid: str | None,
        action: str,
        changes: Mapping[str, Any] | None,
        reason: str,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "at": now,
            "run_id": self.run_id,
            "sync": self.sync,
            "system": system,
            "object_type": self.object_type,
            "remote_id": remote_id,
            "canonical_id": cid,
            "action": action,
            "changes": dict(changes) if changes else None,
            "reason": reason,
        }

    def interrupted_create(
        self, system: str, remote_id: str, cid: str, values: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        """The create entry an interrupted run never committed, for the record it made, with
        the values found on the vendor."""
        changes = {name: [None, value] for name, value in sorted(values.items())}
        return self.audit(system, remote_id, cid, "create", changes, INTERRUPTED_CREATE, now)

    def link_row(
        self,
        cid: str,
        system: str,
        remote_id: str,
        modified_at: datetime | None,
        digest: str,
        rule: str,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "sync": self.sync,
            "object_type": self.object_type,
            "canonical_id": cid,
            "system": system,
            "remote_id": remote_id,
            "remote_modified_at": modified_at,
            "remote_hash": digest,
            "rule": rule,
            "linked_at": now,
            "updated_at": now,
        }


def link_update(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "b_canonical_id": row["canonical_id"],
        "b_system": row["system"],
        "remote_modified_at": row["remote_modified_at"],
        "remote_hash": row["remote_hash"],
        "updated_at": row["updated_at"],
    }
