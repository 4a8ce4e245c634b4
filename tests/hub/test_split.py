"""Split runs: a large first sync decided by its run, its writes sent by worker tasks and the run.

What a user notices: every record arrives exactly once in every system, whichever worker sent
it, with its references; the run's report and audit log count every write its workers made;
and a run or worker that dies mid-way leaves nothing undone or done twice.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select

from hub import store
from hub.engine import LEASE_TTL, SyncEngine
from hub.report import RunReport
from hub.tables import audit_entries, pending_writes
from tests.hub.harness import Harness

Helper = Callable[[Harness, str, int, str], None]


class Killed(BaseException):
    """Stands for the process dying: not an error the engine may catch."""


def account(h: Harness) -> None:
    """30 companies and 100 people in a, 20 people in b of whom 10 are also in a."""
    companies = [h.add("a", "companies", name=f"Co {i}", domain=f"co{i}.com") for i in range(30)]
    for i in range(100):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com", company_id=companies[i % 30])
    for i in range(90, 110):
        h.add("b", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")


def split_engine(h: Harness, helper: Helper | None, **options: object) -> SyncEngine:
    """The run as a worker runs it: ``helper`` stands for the worker tasks it starts."""
    started: list[str] = []

    def splitter(object_type: str, run_id: int, owner: str) -> None:
        started.append(object_type)
        if helper is not None:
            helper(h, object_type, run_id, owner)

    engine = h.engine(splitter=splitter, split_min_records=25, **options)
    engine.started = started  # type: ignore[attr-defined]
    return engine


def worker_sending(pages: int) -> tuple[Helper, list[RunReport]]:
    """A worker task that sends about ``pages`` pages of 20 and then stops (its queue is shut)."""
    reports: list[RunReport] = []

    def helper(h: Harness, object_type: str, run_id: int, owner: str) -> None:
        engines: list[SyncEngine] = []

        def enough() -> bool:
            sent = engines[0].helping
            return sent is not None and sent.writes >= pages * 20

        engine = h.engine(owner=owner, should_stop=enough)
        engines.append(engine)
        reports.append(engine.help(object_type, run_id))

    return helper, reports


def assert_converged(h: Harness) -> None:
    a, b = h.records("a", "contacts"), h.records("b", "contacts")
    for records in (a, b):
        emails = Counter(r["email"] for r in records)
        assert set(emails) == {f"p{i}@x.com" for i in range(110)}
        assert max(emails.values()) == 1  # nobody twice
    assert {r["name"] for r in h.records("b", "companies")} == {f"Co {i}" for i in range(30)}
    # References arrived too: each of b's copies names b's copy of its company.
    b_companies = {r.id: r.fields["name"] for r in h.stores["b"].all("companies")}
    for i in range(90):
        person = h.by("b", "contacts", "email", f"p{i}@x.com")
        assert b_companies[person["company_id"]] == f"Co {i % 30}"


def creates_in_audit(db: Engine) -> Counter[str]:
    with db.connect() as conn:
        rows = conn.execute(
            select(
                audit_entries.c.system, audit_entries.c.object_type, audit_entries.c.remote_id
            ).where(audit_entries.c.action == "create")
        ).all()
    assert len(rows) == len(set(rows))  # one entry per record made
    return Counter(system for system, _, _ in rows)


def pending_rows(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(pending_writes)).scalar_one())


def test_workers_and_the_run_share_out_a_first_syncs_writes_and_each_record_arrives_once(
    db: Engine,
) -> None:
    h = Harness(db, objects=("companies", "contacts"), page_size=20)
    account(h)
    helper, helped = worker_sending(pages=2)
    engine = split_engine(h, helper)

    report = engine.run()

    assert engine.started == ["companies", "contacts"]  # type: ignore[attr-defined]
    assert_converged(h)
    # The worker tasks sent some pages, the run the rest; the run's report counts both.
    assert all(r.writes > 0 for r in helped)
    assert sum(r.writes for r in helped) < report.writes
    assert report.counts["companies"]["b"]["created"] == 30
    assert report.counts["contacts"]["b"]["created"] == 90
    assert report.counts["contacts"]["a"]["created"] == 10
    assert creates_in_audit(db) == {"b": 120, "a": 10}
    assert pending_rows(db) == 0
    assert report.exit_code == 0
    h.run_without_writes()


def test_a_sync_below_the_split_threshold_runs_as_ever(db: Engine) -> None:
    h = Harness(db, objects=("companies", "contacts"), page_size=20)
    for i in range(10):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    engine = split_engine(h, None)
    engine.run()
    assert engine.started == []  # type: ignore[attr-defined]
    assert len(h.records("b", "contacts")) == 10


def test_a_split_run_that_dies_before_its_workers_start_is_finished_by_the_next_run(
    db: Engine,
) -> None:
    h = Harness(db, objects=("companies", "contacts"), page_size=20)
    account(h)

    def die(h: Harness, object_type: str, run_id: int, owner: str) -> None:
        raise Killed()

    with pytest.raises(Killed):
        split_engine(h, die).run()
    assert h.records("b", "companies") == []  # decided, deferred, not sent
    assert pending_rows(db) > 0

    h.run()  # an ordinary run, in-process

    assert_converged(h)
    assert creates_in_audit(db) == {"b": 120, "a": 10}
    assert pending_rows(db) == 0


def owner_of_a_process_that_ended() -> str:
    code = "from hub.lease_owner import process_owner; print(process_owner())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_page_held_by_a_worker_that_died_is_sent_by_the_run(db: Engine) -> None:
    h = Harness(db, objects=("companies", "contacts"), page_size=20)
    account(h)
    dead = owner_of_a_process_that_ended()
    claimed: list[int] = []

    def worker_dies_holding_a_page(h: Harness, object_type: str, run_id: int, owner: str) -> None:
        with db.begin() as conn:
            claim = store.claim_deferred(conn, "test", object_type, dead, h.clock(), LEASE_TTL)
        assert claim is not None
        claimed.append(claim.id)

    report = split_engine(h, worker_dies_holding_a_page).run()

    assert len(claimed) == 2  # one page of each object type
    assert_converged(h)
    assert report.counts["contacts"]["b"]["created"] == 90
    assert pending_rows(db) == 0


def test_a_worker_whose_claim_lapsed_cannot_take_its_page_back(db: Engine) -> None:
    h = Harness(db, objects=("contacts",), page_size=20)
    now = h.clock()
    with db.begin() as conn:
        row = store.add_pending(conn, "test", "contacts", [("c1", "b", "create")], 1, now)
        assert row is not None
        conn.execute(pending_writes.update().values(deferred=True))
        first = store.claim_deferred(conn, "test", "contacts", "slow-worker", now, LEASE_TTL)
        assert first is not None
        # Alive for all anyone knows, so no one else may take it while the claim holds...
        assert store.claim_deferred(conn, "test", "contacts", "other", now, LEASE_TTL) is None
        # ...and once it has lapsed, another worker does, and the first sends nothing.
        later = now + LEASE_TTL * 2
        second = store.claim_deferred(conn, "test", "contacts", "other", later, LEASE_TTL)
        assert second is not None
        assert second.intents == [("c1", "b", "create")]
        assert not store.take_deferred(conn, row, "slow-worker")
        assert store.take_deferred(conn, row, "other")
