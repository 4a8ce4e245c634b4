"""The run after one that was killed outright: no finally, no cleanup, no last commit.

What a user notices: ``crmhub sync`` right after a killed one starts, instead of claiming the
sync is "already running" until the dead run's lease expires; and the audit log has a create
entry for every record the killed run made on a vendor, though that run never recorded it.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert, select

from hub import store
from hub.engine import LeaseHeldError, Mode
from hub.lease_owner import process_owner
from hub.ledger import INTERRUPTED_CREATE
from hub.tables import audit_entries, leases, runs
from tests.hub.harness import Harness


class Killed(BaseException):
    """Stands for the process dying: not an error the engine may catch."""


def hold_lease(h: Harness, owner: str) -> None:
    """The lease row a run leaves when it dies: its own, unexpired for a long while yet."""
    now = h.clock()
    with h.db.begin() as conn:
        conn.execute(
            insert(leases).values(
                sync=h.spec.name, owner=owner, acquired_at=now, expires_at=now + timedelta(hours=1)
            )
        )


def owner_of_a_process_that_ended() -> str:
    """The owner id a run of another process on this machine had; that process has exited."""
    code = "from hub.lease_owner import process_owner; print(process_owner())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_lease_left_by_a_killed_run_on_this_machine_does_not_hold_up_the_next(db: Engine) -> None:
    h = Harness(db)
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    hold_lease(h, owner_of_a_process_that_ended())
    with h.db.begin() as conn:  # the killed run's own row, never finished
        killed_run = store.start_run(conn, h.spec.name, h.clock())

    report = h.run()

    assert report.status == "succeeded"
    assert [r["email"] for r in h.records("b", "contacts")] == ["ann@x.com"]
    with h.db.connect() as conn:
        statuses = dict(conn.execute(select(runs.c.id, runs.c.status)).all())
    assert statuses == {killed_run: "killed", report.run_id: "succeeded"}


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param(process_owner(), id="a live process on this machine"),
        pytest.param("elsewhere.example:4242:0123abcd", id="a process on another machine"),
    ],
)
def test_a_lease_whose_holder_may_be_running_still_keeps_the_sync_waiting(
    db: Engine, holder: str
) -> None:
    h = Harness(db)
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    hold_lease(h, holder)

    with pytest.raises(LeaseHeldError, match="already running"):
        h.run()
    assert h.records("b", "contacts") == []


@pytest.mark.parametrize("target", ["both", "write"])
def test_records_a_killed_run_created_get_their_create_entry_from_the_next_run(
    db: Engine, target: Mode
) -> None:
    # A reading target meets them when it reads and matches them; a write-only one when it
    # looks for them before creating again. Either way they are crmhub's creates.
    h = Harness(db, {"a": "both", "b": target}, unique_emails=False)
    for i in range(5):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")

    def die_after_create(operation: str, object_type: str, results: object) -> None:
        if operation == "create":
            raise Killed()

    h.connectors["b"].after_write = die_after_create
    with pytest.raises(Killed):
        h.run()
    made = {record.id for record in h.stores["b"].all("contacts")}
    assert len(made) == 5  # on the vendor, and not in the audit log

    h.connectors["b"].after_write = None
    h.run()

    with db.connect() as conn:
        creates = conn.execute(
            select(audit_entries.c.remote_id, audit_entries.c.reason, audit_entries.c.changes)
            .where(audit_entries.c.system == "b", audit_entries.c.action == "create")
            .order_by(audit_entries.c.id)
        ).all()
    assert {remote_id for remote_id, _, _ in creates} == made
    assert len(creates) == 5
    assert {reason for _, reason, _ in creates} == {INTERRUPTED_CREATE}
    assert all(changes["email"][0] is None for _, _, changes in creates)
